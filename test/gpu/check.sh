#!/bin/sh
# test/gpu/check.sh [BUILD_DIR] - libgem's checks on a machine WITH an NVIDIA GPU, in one
# short run (about 2 minutes on one H100/H200; the budget is 5).
#
#   1. builds libgem with CUDA, NCCL and hwloc (make; nvcc for sm_80, sm_89, sm_90);
#   2. test/gpu/check_gpu.c profiles every visible GPU for the Mixtral-8x7B expert (bf16),
#      refined and dense, and checks: each curve non-decreasing within noise; every sample's
#      coefficient of variation under 2%; the refined sweep times at most a quarter of the
#      dense sweep's tile boundaries and stays within 2% of it; one GPU's profile under 30 s.
#      Then NCCL all-to-all (algbw, busbw, pairwise matrix) and the hwloc topology;
#   3. the gem tool end to end: gem profile --backend cuda --topology, then map and eval
#      with that profile.
# Prints a table and "gpu check: PASSED" or "gpu check: FAILED"; exits non-zero on failure.
# Without a GPU, `sh test/gpu/check.sh BUILD --fake` runs the same steps on emulated devices
# (checks the script itself, not a GPU).
set -u

BUILD=${1:-build-gpu}
FAKE=
[ "${2:-}" = "--fake" ] && FAKE="--fake 2"
cd "$(dirname "$0")/../.." || exit 1
START=$(date +%s)
T=$(mktemp -d "${TMPDIR:-/tmp}/gem-gpu-check.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM
failed=0
step() { echo; echo "== $1 ($(($(date +%s) - START)) s)"; }
bad() { echo "FAIL: $1"; failed=$((failed + 1)); }

step "GPUs"
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=index,name,pci.bus_id,memory.total,clocks.max.sm,driver_version \
        --format=csv 2>&1 | head -n 17
else
    echo "nvidia-smi not found"
fi

step "build"
mkdir -p "$BUILD"
JOBS=$(nproc 2>/dev/null || echo 4)
if ! make -j"$JOBS" BUILD="$BUILD" NVCC_THREADS=0 lib "$BUILD/gem" "$BUILD/test/gpu_check" \
        >"$BUILD/gpu-check-build.log" 2>&1; then
    tail -n 30 "$BUILD/gpu-check-build.log"
    echo "gpu check: FAILED (build; log in $BUILD/gpu-check-build.log)"
    exit 1
fi
backends=$(make --no-print-directory BUILD="$BUILD" backends)
echo "$backends"
case "$backends" in *cuda*) ;; *) bad "libgem was built without CUDA (nvcc and cuBLAS under CUDA_HOME?)" ;; esac
case "$backends" in *nccl*) ;; *) echo "note: built without NCCL: all-to-all is not checked"; FAKE_NCCL=--no-nccl ;; esac

step "profile, refined and dense (test/gpu/check_gpu.c)"
# shellcheck disable=SC2086
timeout 200 "$BUILD/test/gpu_check" ${FAKE_NCCL:-} $FAKE
rc=$?
case $rc in
    0) ;;
    124) bad "gpu_check ran past 200 s" ;;
    1) bad "gpu_check: a check failed (see FAIL lines above)" ;;
    *) bad "gpu_check could not profile (exit $rc)" ;;
esac

step "gem profile --backend cuda --topology, then map and eval"
if [ -n "$FAKE" ]; then
    echo "(skipped with --fake: the tool has no emulated CUDA devices; using the sim)"
    PROFILE_ARGS="--backend sim --gpus 2"
else
    PROFILE_ARGS="--backend cuda --warmup-ms 500 --topology"
fi
# shellcheck disable=SC2086
if timeout 90 "$BUILD/gem" profile $PROFILE_ARGS -o "$T/p.json" 2>"$T/err"; then
    cat "$T/err"
    G=$(grep -c '"id":' "$T/p.json")
    if [ -z "$FAKE" ]; then
        grep -q '"latency_cv"' "$T/p.json" || bad "the profile has no latency_cv"
        grep -q '"pci_bus_id"' "$T/p.json" || bad "the profile has no pci_bus_id"
        grep -q '"cpuset"' "$T/p.json" || bad "--topology wrote no cpuset"
    fi
    if "$BUILD/gem" synth --steps 16 --layers 2 --experts 8 --tokens 512 -o "$T/t.csv" 2>"$T/err" &&
       "$BUILD/gem" map --policy gem --profile "$T/p.json" --trace "$T/t.csv" -o "$T/m.json" 2>"$T/err" &&
       "$BUILD/gem" eval --profile "$T/p.json" --trace "$T/t.csv" --mapping "$T/m.json" >"$T/eval" 2>"$T/err"; then
        echo "profile of $G GPU(s) maps and evaluates:"
        head -n 4 "$T/eval"
    else
        cat "$T/err"
        bad "map/eval with the measured profile"
    fi
else
    cat "$T/err"
    bad "gem profile $PROFILE_ARGS"
fi

echo
echo "elapsed: $(($(date +%s) - START)) s"
if [ "$failed" -eq 0 ]; then
    echo "gpu check: PASSED"
else
    echo "gpu check: FAILED ($failed)"
fi
[ "$failed" -eq 0 ]
