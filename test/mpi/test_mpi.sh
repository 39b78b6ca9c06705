#!/bin/sh
# test_mpi.sh BUILD_DIR - `gem profile` under mpirun: 4 ranks of the sim backend write one
# merged profile that equals what one process writes for the same GPUs.
#
# A sim rank r of R emulates GPUs r*G .. r*G+G-1 of one seeded fleet of R*G GPUs; rank 0
# gathers the ranks' profiles in rank order and merges them. Checked here:
#   1. mpirun -np 4 gem profile --gpus 2 == gem profile --gpus 8, byte for byte (same seed,
#      with noise, so every GPU's curve differs);
#   2. each rank's own host name lands on its GPUs, in rank order (--host per rank);
#   3. explicit --slowdowns split over the ranks the same way;
#   4. a failing rank makes the whole run fail, and no profile is written.
# Needs Open MPI's mpirun; as root it sets OMPI_ALLOW_RUN_AS_ROOT(_CONFIRM). The last line is
# "mpi: N passed, M failed"; the exit status is non-zero on any failure.
set -u

BUILD=${1:-build}
GEM=$BUILD/gem
case $GEM in /*) ;; *) GEM=$(pwd)/$GEM ;; esac
[ -x "$GEM" ] || { echo "test_mpi.sh: $GEM not found (make BUILD=$BUILD all)" >&2; exit 1; }
command -v mpirun >/dev/null 2>&1 || { echo "test_mpi.sh: mpirun not found" >&2; exit 1; }
command -v python3 >/dev/null 2>&1 || { echo "test_mpi.sh: python3 is needed" >&2; exit 1; }

if [ "$(id -u)" = 0 ]; then
    OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    export OMPI_ALLOW_RUN_AS_ROOT OMPI_ALLOW_RUN_AS_ROOT_CONFIRM
fi
# One machine, no network: shared memory between the ranks, no warnings about interfaces.
OMPI_MCA_btl=self,vader OMPI_MCA_btl_vader_single_copy_mechanism=none
export OMPI_MCA_btl OMPI_MCA_btl_vader_single_copy_mechanism

T=$(mktemp -d "${TMPDIR:-/tmp}/gem-mpi-test.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM

passed=0
failed=0
pass() { passed=$((passed + 1)); }
fail() { failed=$((failed + 1)); echo "FAIL: $1"; [ -s "$T/err" ] && sed 's/^/    /' "$T/err" | head -n 8; }

mpi4() { timeout 300 mpirun --oversubscribe -np 4 "$@" >"$T/out" 2>"$T/err"; }

# 1. four ranks of two GPUs == one process of eight
if mpi4 "$GEM" profile --backend sim --gpus 2 --seed 7 --noise 0.02 --spread 0.3 -o "$T/p4.json" &&
   "$GEM" profile --backend sim --gpus 8 --seed 7 --noise 0.02 --spread 0.3 -o "$T/p1.json" 2>"$T/err"; then
    if cmp -s "$T/p4.json" "$T/p1.json"; then pass; else fail "4 ranks x 2 GPUs differ from 1 process x 8"; diff "$T/p4.json" "$T/p1.json" | head -n 6; fi
else
    fail "mpirun -np 4 gem profile --backend sim (or the single run) failed"
fi

# 2. host names from each rank, in rank order; everything else as one process writes it
# shellcheck disable=SC2016 # $0, $1 and the rank expand in the ranks' shells
if mpi4 sh -c 'exec "$0" profile --gpus 2 --seed 3 --host "node$OMPI_COMM_WORLD_RANK" -o "$1"' "$GEM" "$T/h4.json" &&
   "$GEM" profile --gpus 8 --seed 3 -o "$T/h1.json" 2>"$T/err"; then
    if python3 - "$T/h4.json" "$T/h1.json" <<'EOF'
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
hosts = [g["host"] for g in a["gpus"]]
assert hosts == ["node0", "node0", "node1", "node1", "node2", "node2", "node3", "node3"], hosts
assert [g["id"] for g in a["gpus"]] == list(range(8))
for g in a["gpus"] + b["gpus"]:
    del g["host"]
assert a == b, "curves differ"
EOF
    then pass; else fail "per-rank hosts"; fi
else
    fail "mpirun with per-rank --host failed"
fi

# 3. explicit slowdowns: the list is the fleet, split over the ranks
if mpi4 "$GEM" profile --slowdowns 1,1.1,1.2,1.3,1.4,1.5,1.6,1.7 -o "$T/s4.json" &&
   "$GEM" profile --slowdowns 1,1.1,1.2,1.3,1.4,1.5,1.6,1.7 -o "$T/s1.json" 2>"$T/err" &&
   cmp -s "$T/s4.json" "$T/s1.json"; then
    pass
else
    fail "--slowdowns over 4 ranks"
fi
if mpi4 "$GEM" profile --slowdowns 1,1.1,1.2 -o "$T/s3.json"; then
    fail "3 slowdowns over 4 ranks should be refused"
elif [ -e "$T/s3.json" ]; then
    fail "refused run left a file"
else
    pass
fi

# 4. one rank failing fails the run: rank 2 asks for an impossible grid
# shellcheck disable=SC2016 # expanded by each rank's shell
if mpi4 sh -c 'x=; [ "$OMPI_COMM_WORLD_RANK" = 2 ] && x="--tile 1 --max-tokens 2000000"
               exec "$0" profile -o "$1" $x' "$GEM" "$T/f4.json"; then
    fail "a failing rank went unnoticed"
elif [ -e "$T/f4.json" ]; then
    fail "a failing rank left a profile"
elif grep -q "rank 2" "$T/err"; then
    pass
else
    fail "the failure does not name rank 2"
fi

echo "mpi: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
