#!/bin/sh
# test/gpu/check.sh [BUILD_DIR] - libgem's checks on a machine WITH an NVIDIA GPU, in one run
# of at most 5 minutes. Run it as:  timeout 300 sh test/gpu/check.sh build-gpu
#
#   1. preflight: finds nvcc (CUDA_HOME), cuBLAS, NCCL and jansson, and says what is missing;
#      a machine without libjansson-dev can take Debian's .debs of libjansson4 and
#      libjansson-dev from $GEM_GPU_DEPS (default BUILD_DIR/deps; see docs/gpu-results.md);
#   2. builds libgem with CUDA (nvcc: sm_80, sm_89 and sm_90 machine code, compute_90 PTX),
#      NCCL and hwloc when found, the gem tool, and test/gpu/check_gpu.c;
#   3. check_gpu profiles every visible GPU for the Mixtral-8x7B expert (hidden 4096, ffn
#      14336, bf16), refined and dense, and checks: each curve non-decreasing within noise;
#      every sample's coefficient of variation under 2%; the refined sweep times at most a
#      quarter of the dense sweep's tile boundaries and stays within 2% of it; one GPU's
#      profile under 30 s. Then NCCL all-to-all and the hwloc topology (figures; a failure
#      there is a warning, not a failed check);
#   4. the gem tool end to end: gem profile --backend cuda, then map and eval with it;
#   5. a closing table: GPU, driver, boundaries timed (refined/dense), max error vs dense,
#      max cv, profile seconds per GPU, and the total wall time; then "gpu check: PASSED", or
#      "gpu check: FAILED" with every failed check named, and a non-zero exit.
#
# Time budget on one H200 (16 cores), estimated - it has not run on one yet:
#   build        ~20-60 s   (28 C files, probe.cu for 3 SASS targets + PTX, nvcc --threads 0)
#   check_gpu    ~10-20 s   context and cuBLAS load (~600 MB of libraries) 2-5 s; refined
#                           sweep: 2 s warm-up + <=16 points x 22 repeats x max(0.5 ms batch,
#                           one run: 0.08 ms at 64 tokens .. ~2.3 ms at 4096) <= 0.8 s; dense
#                           sweep: 0.5 s warm-up + 64 x 22 x ~1.3 ms average ~ 1.9 s; NCCL
#                           on one GPU: init 1-3 s + 17 sizes x 10 runs
#   gem profile  ~5-10 s    context, cuBLAS, 0.5 s warm-up, one refined sweep
#   total        ~1-1.5 min; each step is also capped (build 150 s, check_gpu 90 s, gem
#                45 s) and none may start past the 280 s mark, so the script ends inside 5 min.
#
# CHECK_DRY_RUN=1 (or `--dry-run` after BUILD_DIR) runs every step on a machine without a GPU:
# check_gpu profiles 2 model devices (an H200-like model of the expert, 1% noise per run) with
# the same sampler, checks and tables; gem profile uses the sim; NCCL is skipped. It checks
# this script and check_gpu, not a GPU. CHECK_DRY_NOISE=0.05 makes its cv check fail on purpose.
set -u

BUILD=${1:-build-gpu}
DRY=${CHECK_DRY_RUN:-0}
case "${2:-}" in --dry-run|--fake) DRY=1 ;; esac
[ "$DRY" = 0 ] || DRY=1
cd "$(dirname "$0")/../.." || exit 1
START=$(date +%s)
BUDGET_S=280
T=$(mktemp -d "${TMPDIR:-/tmp}/gem-gpu-check.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM
: >"$T/failed"
elapsed() { echo $(($(date +%s) - START)); }
step() { echo; echo "== $1 ($(elapsed) s)"; }
bad() { echo "FAIL: $1"; echo "$1" >>"$T/failed"; }
note() { echo "note: $1"; }
# Seconds a step may take: its cap, or what is left of the budget (at least 1).
left() { l=$((BUDGET_S - $(elapsed))); [ "$l" -lt "$1" ] || l=$1; [ "$l" -ge 1 ] || l=1; echo "$l"; }
finish() {
    echo
    echo "== summary"
    printf '%-3s %-28s %-14s %9s %8s %7s %9s  %s\n' gpu name driver "timed" max_err max_cv \
        profile_s verdict
    if [ -s "$T/summary" ]; then
        g=0
        while IFS='|' read -r name drv timed dense err cv secs verdict; do
            printf '%-3s %-28.28s %-14.14s %9s %8s %7s %9s  %s\n' "$g" "$name" "$drv" \
                "$timed/$dense" "$err" "$cv" "$secs" "$verdict"
            g=$((g + 1))
        done <"$T/summary"
    else
        echo "(no GPU rows: check_gpu did not get as far as the checks)"
    fi
    total=$(elapsed)
    echo "total wall time: $total s (budget 300 s)"
    # Logs and the gem tool's profile, for a device run to bring back ($OUT there).
    KEEP=${CHECK_OUT:-${OUT:-}}
    if [ -n "$KEEP" ] && [ -d "$KEEP" ]; then
        for f in "$T/gpu_check.log" "$T/p.json" "$BUILD/gpu-check-build.log"; do
            [ -f "$f" ] && cp "$f" "$KEEP/" 2>/dev/null
        done
        [ -f "$T/p.json" ] && mv "$KEEP/p.json" "$KEEP/gem-profile.json" 2>/dev/null
    fi
    [ "$total" -lt 300 ] || bad "the check took $total s, over its 5 minutes"
    if [ -s "$T/gpu_check.log" ] && grep -q '^WARN' "$T/gpu_check.log"; then
        echo "warnings (not among the checks):"
        grep '^WARN' "$T/gpu_check.log" | sed 's/^WARN /  - /'
    fi
    n=$(wc -l <"$T/failed" | tr -d ' ')
    if [ "$n" -eq 0 ]; then
        echo "gpu check: PASSED${DRYTAG:-}"
        exit 0
    fi
    echo "gpu check: FAILED${DRYTAG:-} ($n):"
    sed 's/^/  - /' "$T/failed"
    exit 1
}
[ "$DRY" = 1 ] && DRYTAG=" (DRY RUN: no GPU was measured)"

step "GPUs"
DRIVER=
if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=index,name,pci.bus_id,memory.total,clocks.max.sm,driver_version \
        --format=csv 2>&1 | head -n 17
    DRIVER=$(nvidia-smi --query-gpu=driver_version --format=csv,noheader 2>/dev/null | head -n 1)
else
    echo "nvidia-smi not found"
fi
[ "$DRY" = 1 ] && echo "DRY RUN: model devices stand in for GPUs; nothing below measures one"

step "preflight"
MAKE_VARS=
for tool in make cc; do
    command -v "$tool" >/dev/null 2>&1 || { bad "$tool is not installed"; finish; }
done
# CUDA: CUDA_HOME, else /usr/local/cuda, else wherever nvcc is on the PATH.
if [ -z "${CUDA_HOME:-}" ]; then
    CUDA_HOME=/usr/local/cuda
    if [ ! -x "$CUDA_HOME/bin/nvcc" ] && command -v nvcc >/dev/null 2>&1; then
        CUDA_HOME=$(dirname "$(dirname "$(command -v nvcc)")")
    fi
fi
MAKE_VARS="CUDA_HOME=$CUDA_HOME"
if [ -x "$CUDA_HOME/bin/nvcc" ]; then
    echo "nvcc: $CUDA_HOME/bin/nvcc, $("$CUDA_HOME/bin/nvcc" --version | tail -n 1)"
else
    echo "nvcc: not found (CUDA_HOME=$CUDA_HOME)"
fi
# Directories holding a file named like $1 under the usual prefixes (pip's wheels included:
# /opt/*/.venv/lib/python3.*/site-packages/nvidia/... is 9 deep), one a line.
find_dirs() {
    for root in "$CUDA_HOME" /usr/local /usr/include /usr/lib /opt; do
        [ -d "$root" ] && find "$root" -maxdepth 10 -name "$1" 2>/dev/null
    done | while IFS= read -r f; do dirname "$f"; done
}
find_dir() { d=$(find_dirs "$1" | head -n 1); [ -n "$d" ] && echo "$d"; }
if [ -f "$CUDA_HOME/include/cublas_v2.h" ]; then
    echo "cuBLAS headers: $CUDA_HOME/include"
elif d=$(find_dir cublas_v2.h); then
    echo "cuBLAS headers: $d (not under CUDA_HOME)"
    MAKE_VARS="$MAKE_VARS CUBLAS_INC=$d"
else
    echo "cuBLAS headers: not found"
fi
if ls "$CUDA_HOME"/lib64/libcublas.so* >/dev/null 2>&1; then
    echo "cuBLAS library: $(ls "$CUDA_HOME"/lib64/libcublas.so.* 2>/dev/null | head -n 1)"
elif d=$(find_dir 'libcublas.so.[0-9]*'); then
    echo "cuBLAS library: $d (not under CUDA_HOME)"
    MAKE_VARS="$MAKE_VARS CUBLAS_LIBDIR=$d"
else
    echo "cuBLAS library: not found"
fi
if [ -f "$CUDA_HOME/include/nccl.h" ] || [ -f /usr/include/nccl.h ]; then
    echo "NCCL: found with CUDA or the system"
elif [ -n "${NCCL_HOME:-}" ]; then
    echo "NCCL: NCCL_HOME=$NCCL_HOME"
    MAKE_VARS="$MAKE_VARS NCCL_HOME=$NCCL_HOME"
else
    # an install of its own: PREFIX/include/nccl.h beside PREFIX/lib/libnccl.so* (other
    # nccl.h files, PyTorch's wrapper for one, have no library beside them)
    NCCL_FOUND=$(find_dirs nccl.h | while IFS= read -r d; do
        ls "$d"/../lib/libnccl.so* >/dev/null 2>&1 && { (cd "$d/.." && pwd); break; }
    done)
    if [ -n "$NCCL_FOUND" ]; then
        echo "NCCL: $NCCL_FOUND (a separate install)"
        MAKE_VARS="$MAKE_VARS NCCL_HOME=$NCCL_FOUND"
    else
        echo "NCCL: not found (all-to-all will not be measured)"
    fi
fi
# jansson: the system's, else Debian's .debs unpacked into the build directory.
# (CHECK_JANSSON_FROM_DEBS=1 takes the .debs even where the system has jansson: to try that path.)
if [ "${CHECK_JANSSON_FROM_DEBS:-0}" = 0 ] &&
   { pkg-config --exists jansson 2>/dev/null || [ -f /usr/include/jansson.h ]; }; then
    echo "jansson: the system's"
else
    DEPS=${GEM_GPU_DEPS:-$BUILD/deps}
    ROOT=$(mkdir -p "$BUILD" && cd "$BUILD" && pwd)/deps-root
    if ls "$DEPS"/libjansson*.deb >/dev/null 2>&1; then
        rm -rf "$ROOT" && mkdir -p "$ROOT"
        for deb in "$DEPS"/libjansson*.deb; do
            if command -v dpkg >/dev/null 2>&1; then dpkg -x "$deb" "$ROOT"
            else (cd "$T" && ar x "$deb" && tar -xf data.tar.* -C "$ROOT" && rm -f data.tar.* control.tar.* debian-binary)
            fi || bad "cannot unpack $deb"
        done
        lib=$(dirname "$(find "$ROOT" -name 'libjansson.so*' | head -n 1)")
        if [ -f "$ROOT/usr/include/jansson.h" ] && [ -e "$lib/libjansson.so" ]; then
            echo "jansson: unpacked from $DEPS into $ROOT"
            # the rpath lets libgem.so and gem find libjansson.so.4 there at run time
            JANSSON_CFLAGS="-I$ROOT/usr/include"
            JANSSON_LIBS="-L$lib -Wl,-rpath,$lib -ljansson"
        else
            bad "the .debs in $DEPS hold no jansson.h and libjansson.so (libjansson-dev and libjansson4 needed)"
        fi
    else
        bad "jansson is missing (no libjansson-dev here, no .debs in $DEPS): on a machine with apt, 'apt-get download libjansson4 libjansson-dev' into $DEPS (see docs/gpu-results.md)"
    fi
fi
[ -s "$T/failed" ] && finish

step "build"
mkdir -p "$BUILD"
JOBS=$(nproc 2>/dev/null || echo 4)
NVCC_THREADS=0 # one thread per core and architecture
if [ "$DRY" = 1 ]; then JOBS=2; NVCC_THREADS=2; fi # a shared machine without a GPU: stay narrow
# shellcheck disable=SC2086
if ! timeout "$(left 150)" make -j"$JOBS" BUILD="$BUILD" NVCC_THREADS=$NVCC_THREADS $MAKE_VARS \
        ${JANSSON_CFLAGS:+"JANSSON_CFLAGS=$JANSSON_CFLAGS"} \
        ${JANSSON_LIBS:+"JANSSON_LIBS=$JANSSON_LIBS"} \
        lib "$BUILD/gem" "$BUILD/test/gpu_check" >"$BUILD/gpu-check-build.log" 2>&1; then
    tail -n 30 "$BUILD/gpu-check-build.log"
    bad "build (log in $BUILD/gpu-check-build.log)"
    finish
fi
# shellcheck disable=SC2086
backends=$(make --no-print-directory BUILD="$BUILD" $MAKE_VARS backends)
echo "$backends"
NCCL_ARG=
case "$backends" in
    *cuda*) ;;
    *) if [ "$DRY" = 1 ]; then note "built without CUDA (fine for a dry run)"
       else bad "libgem was built without CUDA (see the preflight: nvcc, cuBLAS headers and library)"; finish; fi ;;
esac
case "$backends" in *nccl*) ;; *) note "built without NCCL: all-to-all is not checked"; NCCL_ARG=--no-nccl ;; esac

step "profile, refined and dense (test/gpu/check_gpu.c)"
export NCCL_DEBUG="${NCCL_DEBUG:-WARN}" # NCCL says why, if it fails
DRY_ARGS=
[ "$DRY" = 1 ] && DRY_ARGS="--dry-run 2 --dry-noise ${CHECK_DRY_NOISE:-0.01}"
# shellcheck disable=SC2086
{ timeout "$(left 90)" "$BUILD/test/gpu_check" $NCCL_ARG $DRY_ARGS --summary "$T/summary" \
      ${DRIVER:+--driver "$DRIVER"} 2>&1; echo $? >"$T/rc"; } | tee "$T/gpu_check.log"
rc=$(cat "$T/rc")
case $rc in
    0) ;;
    124) bad "check_gpu ran out of time (its share of the 5 minutes); its last line: $(tail -n 1 "$T/gpu_check.log")" ;;
    1) grep '^FAIL' "$T/gpu_check.log" | while IFS= read -r line; do bad "check_gpu: ${line#FAIL }"; done
       grep -q '^FAIL' "$T/gpu_check.log" || bad "check_gpu: a check failed" ;;
    2) bad "check_gpu could not profile: $(grep '^FAIL' "$T/gpu_check.log" | head -n 1 | sed 's/^FAIL: //')" ;;
    *) bad "check_gpu crashed or was killed (exit $rc)" ;;
esac

step "gem profile, then map and eval with that profile"
if [ "$DRY" = 1 ]; then
    echo "(dry run: the tool profiles the sim; with a GPU it is --backend cuda)"
    PROFILE_ARGS="--backend sim --gpus 2"
else
    PROFILE_ARGS="--backend cuda --warmup-ms 500"
    case "$backends" in *hwloc*) PROFILE_ARGS="$PROFILE_ARGS --topology" ;; esac
fi
# shellcheck disable=SC2086
if timeout "$(left 45)" "$BUILD/gem" profile $PROFILE_ARGS -o "$T/p.json" 2>"$T/err"; then
    cat "$T/err"
    G=$(grep -c '"id":' "$T/p.json")
    if [ "$DRY" = 0 ]; then
        grep -q '"latency_cv"' "$T/p.json" || bad "the gem tool's profile has no latency_cv"
        grep -q '"pci_bus_id"' "$T/p.json" || bad "the gem tool's profile has no pci_bus_id"
        case "$PROFILE_ARGS" in *--topology*)
            grep -q '"cpuset"' "$T/p.json" || note "--topology found no cpuset (a VM may hide the GPU's PCI path)" ;;
        esac
    fi
    # shellcheck disable=SC2016
    if timeout "$(left 30)" sh -c '"$1/gem" synth --steps 16 --layers 2 --experts 8 --tokens 512 -o "$2/t.csv" &&
            "$1/gem" map --policy gem --profile "$2/p.json" --trace "$2/t.csv" -o "$2/m.json" &&
            "$1/gem" eval --profile "$2/p.json" --trace "$2/t.csv" --mapping "$2/m.json" >"$2/eval"' \
            sh "$BUILD" "$T" 2>"$T/err"; then
        echo "a profile of $G GPU(s) from the gem tool maps and evaluates:"
        head -n 4 "$T/eval"
    else
        cat "$T/err"
        bad "map/eval with the gem tool's profile"
    fi
else
    cat "$T/err"
    bad "gem profile $PROFILE_ARGS"
fi

finish
