#!/bin/sh
# Runs each libFuzzer target for a bounded time on a copy of its seed corpus and fails if any
# reports a crash, a leak, a sanitizer error, a hang or an out-of-memory.
# Usage: sh fuzz/run_fuzz.sh FUZZ_DIR SECONDS TARGET...   (from the repository root; `make
# fuzz-run` calls it). Environment: FUZZ_TIMEOUT (seconds per input, default 25), FUZZ_MAX_LEN
# (bytes, default 4096), FUZZ_ARGS (more libFuzzer flags).
#
# Seeds are copied from fuzz/corpus/<target>/ into FUZZ_DIR/work/<target>/, where libFuzzer
# adds what it finds; the source tree is never written. Crashing inputs land in
# FUZZ_DIR/artifacts/ and the full log of each run in FUZZ_DIR/logs/.
set -u
dir=$1; secs=$2; shift 2
timeout=${FUZZ_TIMEOUT:-25}
max_len=${FUZZ_MAX_LEN:-4096}
mkdir -p "$dir/work" "$dir/artifacts" "$dir/logs"
failed=""
for t in "$@"; do
    bin="$dir/fuzz_$t"
    work="$dir/work/$t"
    log="$dir/logs/$t.log"
    mkdir -p "$work"
    if [ -d "fuzz/corpus/$t" ]; then cp fuzz/corpus/"$t"/* "$work"/ 2>/dev/null; fi
    dict=""
    [ -f "fuzz/dict/$t.dict" ] && dict="-dict=fuzz/dict/$t.dict"
    # detect_leaks: LeakSanitizer checks after every input that allocated more than it freed.
    ASAN_OPTIONS="detect_leaks=1:allocator_may_return_null=0${ASAN_OPTIONS:+:$ASAN_OPTIONS}" \
    UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1${UBSAN_OPTIONS:+:$UBSAN_OPTIONS}" \
        "$bin" -max_total_time="$secs" -timeout="$timeout" -max_len="$max_len" \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$dir/artifacts/$t-" \
        $dict ${FUZZ_ARGS:-} "$work" > "$log" 2>&1
    rc=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
    if [ $rc -eq 0 ]; then
        echo "fuzz: $t ok (${runs:-?} inputs in ${secs} s, $cov, corpus $(ls "$work" | wc -l))"
    else
        echo "fuzz: $t FAILED (exit $rc); end of $log:"
        tail -n 60 "$log"
        failed="$failed $t"
    fi
done
if [ -n "$failed" ]; then
    echo "fuzz: failed:$failed (inputs in $dir/artifacts/; reproduce with $dir/fuzz_TARGET FILE)"
    exit 1
fi
echo "fuzz: $# targets ran ${secs} s each without a report"
