#!/bin/sh
# Runs cmocka test binaries one after another and adds up their results. The last line is
# "tests: N passed, M failed". Exits non-zero if any test (or binary) failed.
# Run from the repository root: tests find their fixtures relative to it.
passed=0; failed=0; broken=""
for bin in "$@"; do
    out=$("$bin" 2>&1); rc=$?
    printf '%s\n' "$out"
    p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -n 1)
    f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -n 1)
    passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
    if [ $rc -ne 0 ] && [ -z "$f" ]; then broken="$broken $bin"; failed=$((failed + 1)); fi
done
[ -n "$broken" ] && echo "crashed or failed without a cmocka summary:$broken"
echo "tests: $passed passed, $failed failed"
[ $failed -eq 0 ]
