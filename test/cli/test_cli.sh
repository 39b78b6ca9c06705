#!/bin/sh
# test_cli.sh BUILD_DIR - end-to-end tests of the gem command-line tool.
#
# Runs every subcommand on small emulated inputs and checks exit statuses, outputs and error
# handling: each --help exits 0; profile -> synth -> map -> eval -> export works for every
# policy; eval --json is one JSON object with the contract's keys; compare lists every policy;
# eval and compare --svg draw well-formed pictures; the progress line shows on a terminal
# only; bad inputs exit non-zero with a message on standard error and leave no output file
# behind.
# The last line is "cli: N passed, M failed"; the exit status is non-zero on any failure.
set -u

BUILD=${1:-build}
GEM=$BUILD/gem
case $GEM in /*) ;; *) GEM=$(pwd)/$GEM ;; esac
if [ ! -x "$GEM" ]; then
    echo "test_cli.sh: $GEM not found (build it first: make BUILD=$BUILD all)" >&2
    exit 1
fi
command -v python3 >/dev/null 2>&1 || { echo "test_cli.sh: python3 is needed" >&2; exit 1; }

T=$(mktemp -d "${TMPDIR:-/tmp}/gem-cli-test.XXXXXX")
trap 'rm -rf "$T"' EXIT INT TERM
OUT=$T/stdout
ERR=$T/stderr

passed=0
failed=0
pass() { passed=$((passed + 1)); }
fail() {
    failed=$((failed + 1))
    echo "FAIL: $1"
    if [ -s "$ERR" ]; then sed 's/^/    stderr: /' "$ERR" | head -n 8; fi
}

# run CMD...: runs gem with stdout and stderr captured; sets rc.
run() {
    "$GEM" "$@" >"$OUT" 2>"$ERR"
    rc=$?
}

# ok NAME ARGS...: gem ARGS must exit 0.
ok() {
    name=$1; shift
    run "$@"
    if [ $rc -eq 0 ]; then pass; else fail "$name (exit $rc): gem $*"; fi
}

# bad NAME WANT_RC NEEDLE ARGS...: gem ARGS must exit WANT_RC (any non-zero for "x"), print
# nothing on stdout and a message holding NEEDLE on stderr.
bad() {
    name=$1; want=$2; needle=$3; shift 3
    run "$@"
    if [ $rc -eq 0 ]; then fail "$name: exit 0, expected failure: gem $*"; return; fi
    if [ "$want" != x ] && [ $rc -ne "$want" ]; then
        fail "$name: exit $rc, expected $want: gem $*"; return
    fi
    if [ -s "$OUT" ]; then fail "$name: wrote to stdout on failure"; return; fi
    if ! grep -q -- "$needle" "$ERR"; then fail "$name: stderr lacks '$needle'"; return; fi
    pass
}

# check NAME COMMAND...: a shell test (no gem call of its own).
check() {
    name=$1; shift
    if "$@"; then pass; else fail "$name"; fi
}

# json_check FILE PYTHON_EXPR: loads FILE as JSON into d, asserts the expression.
json_check() {
    python3 -S - "$1" "$2" <<'EOF'
import json, sys
with open(sys.argv[1]) as f:
    d = json.load(f)
if not eval("(" + sys.argv[2] + ")", {"d": d, "abs": abs, "all": all, "len": len, "sum": sum}):
    sys.exit(1)
EOF
}

no_file() { [ ! -e "$1" ]; }
no_temp_files() { [ -z "$(find "$T" -name '*.tmp*' -print)" ]; }

POLICIES="contiguous round_robin balanced speed_aware eplb gem"

# ---- help and version -------------------------------------------------------------------
ok "gem --help" --help
check "gem --help lists the commands" grep -q "compare" "$OUT"
ok "gem help" help
ok "gem version" version
check "gem version prints the version" grep -q "^gem [0-9]" "$OUT"
ok "gem --version" --version
for c in profile topo synth import classify map eval compare export version help; do
    ok "gem $c --help" $c --help
    check "gem $c --help prints a usage" grep -q "Usage: gem" "$OUT"
done
ok "gem help map" help map
check "gem help map is map's help" grep -q "Usage: gem map" "$OUT"
bad "gem without a command" 2 "Usage" 
bad "unknown command" 2 "no command 'frobnicate'" frobnicate
bad "help of an unknown command" 2 "frobnicate" help frobnicate

# ---- profile and synth ------------------------------------------------------------------
ok "profile sim" profile --backend sim -o "$T/p.json"
check "profile written" json_check "$T/p.json" 'd["format"] == "gem-profile" and len(d["gpus"]) == 4'

ok "synth" synth --steps 24 --layers 3 --experts 16 --tokens 256 --skew 0.7 --seed 5 -o "$T/t.csv"
check "synth header" sh -c "grep -v '^#' '$T/t.csv' | head -n 1 | grep -q '^step,layer,0,1,2'"
check "synth rows" sh -c "[ \$(grep -c '^[0-9]' '$T/t.csv') -eq 72 ]"
ok "synth same seed" synth --steps 24 --layers 3 --experts 16 --tokens 256 --skew 0.7 --seed 5 -o "$T/t2.csv"
check "synth is deterministic" cmp -s "$T/t.csv" "$T/t2.csv"
ok "synth other seed" synth --steps 24 --layers 3 --experts 16 --tokens 256 --skew 0.7 --seed 6 -o "$T/t3.csv"
check "synth seed changes the trace" sh -c "! cmp -s '$T/t.csv' '$T/t3.csv'"
ok "synth to stdout" synth --steps 2 --layers 1 --experts 4 --tokens 8 -o -
check "synth -o - prints the trace" grep -q "^step,layer,0,1,2,3" "$OUT"
check "synth row sums" python3 -c "
import csv, sys
rows = [r for r in csv.reader(open('$T/t.csv')) if r and not r[0].startswith('#')]
assert all(sum(float(x) for x in r[2:]) == 256 for r in rows[1:]), 'row sum'
"

# ---- map, eval and export with every policy ----------------------------------------------
P="--profile $T/p.json --trace $T/t.csv"
for pol in $POLICIES; do
    ok "map $pol" map --policy $pol $P -o "$T/m-$pol.json" --seed 3
    check "map $pol writes a mapping" json_check "$T/m-$pol.json" \
        'd["format"] == "gem-mapping" and d["num_gpus"] == 4 and len(d["layers"]) == 3'
    ok "eval $pol" eval $P --mapping "$T/m-$pol.json"
    check "eval $pol table" grep -q "mean" "$OUT"
    ok "eval --json $pol" eval $P --mapping "$T/m-$pol.json" --json
    cp "$OUT" "$T/e-$pol.json"
    check "eval --json $pol keys" json_check "$T/e-$pol.json" '
all(k in d for k in ("mean", "p50", "p90", "p99", "total", "lower_bound", "max", "steps",
                     "imbalance", "gpus"))
and d["steps"] == 24 and len(d["gpus"]) == 4
and all("busy_us" in g and "straggler_count" in g for g in d["gpus"])
and d["p50"] <= d["p90"] <= d["p99"] <= d["max"]
and abs(d["total"] / d["steps"] - d["mean"]) <= 1e-9 * d["mean"]
and d["lower_bound"] <= d["mean"] * (1 + 1e-12)
and sum(g["straggler_count"] for g in d["gpus"]) == 24 * 3'
    check "eval --json $pol is one line" sh -c "[ \$(wc -l < '$T/e-$pol.json') -eq 1 ]"
    ok "export sglang $pol" export --format sglang --mapping "$T/m-$pol.json" -o "$T/x-$pol.json"
    check "export sglang $pol content" json_check "$T/x-$pol.json" \
        'len(d["physical_to_logical_map"]) == 3 and all(sorted(r) == list(range(16)) for r in d["physical_to_logical_map"])'
done
# --bound-slots: the bound over mappings with gem's experts per GPU sits between the general
# bound and gem's own mean
ok "eval --bound-slots --json" eval $P --mapping "$T/m-gem.json" --json --bound-slots
check "eval --bound-slots bound between the general bound and the mean" python3 -S -c "
import json
s = json.load(open('$OUT')); g = json.load(open('$T/e-gem.json'))
assert g['lower_bound'] * (1 - 1e-12) <= s['lower_bound'] <= s['mean'] * (1 + 1e-12), (s, g)
assert s['mean'] == g['mean']
"
ok "eval --bound-slots table" eval $P --mapping "$T/m-gem.json" --bound-slots
check "eval --bound-slots table says which bound" grep -q "with these experts per GPU" "$OUT"
ok "export eplb" export --format eplb --mapping "$T/m-gem.json" -o "$T/x-eplb.json"
check "export eplb content" json_check "$T/x-eplb.json" '"phy2log" in d'
ok "export trtllm" export --format trtllm --mapping "$T/m-gem.json" -o "$T/x-trt.yaml"
check "export trtllm written" test -s "$T/x-trt.yaml"
ok "export to stdout" export --format sglang --mapping "$T/m-gem.json" -o -
check "export to stdout content" grep -q "physical_to_logical_map" "$OUT"
# --first-dense-layers: one row per model layer, the dense ones first in the trivial layout
ok "export --first-dense-layers" export --format sglang --mapping "$T/m-gem.json" --first-dense-layers 3 -o "$T/x-dense.json"
check "export --first-dense-layers rows" python3 -S -c "
import json
d = json.load(open('$T/x-dense.json'))['physical_to_logical_map']
x = json.load(open('$T/x-gem.json'))['physical_to_logical_map']
assert len(d) == 3 + 3 and d[3:] == x and all(r == list(range(16)) for r in d[:3])
"
ok "export trtllm --first-dense-layers" export --format trtllm --mapping "$T/m-gem.json" --first-dense-layers 3 -o -
check "export trtllm keys are the model's layers 3..5" sh -c "grep -q '^  3: ' '$OUT' && grep -q '^  5: ' '$OUT' && ! grep -q '^  [0-2]: ' '$OUT' && ! grep -q 'add their count' '$OUT'"
bad "export --first-dense-layers out of range" 2 "first-dense-layers" export --format sglang --mapping "$T/m-gem.json" --first-dense-layers 65537 -o "$T/x-x.json"

ok "map to stdout" map --policy balanced $P -o - -q
check "map -o - prints the mapping" grep -q '"gem-mapping"' "$OUT"
ok "map objective p90, restarts" map --policy gem $P -o "$T/m-p90.json" --objective p90 --restarts 2
ok "map replicated" map --policy eplb $P -o "$T/m-rep.json" --redundant-slots 4
ok "eval replicated" eval $P --mapping "$T/m-rep.json" --json
check "map with replicas has extra placements" json_check "$T/m-rep.json" \
    'all(len(l["placements"]) == 16 + 4 for l in d["layers"])'
# --comm: all-to-all time from the profile's measured figures, shown and added to the steps
python3 -S - "$T/p.json" "$T/p-a2a.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
d["alltoall"] = {"bytes": [65536, 1048576], "time_us": [[30, 120]] * len(d["gpus"])}
for i, g in enumerate(d["gpus"]):
    g["host"] = "node%d" % (i // 2)
json.dump(d, open(sys.argv[2], "w"))
PY
ok "eval --comm --json" eval --profile "$T/p-a2a.json" --trace "$T/t.csv" --mapping "$T/m-rep.json" --comm --json
cp "$OUT" "$T/e-comm.json"
ok "eval without --comm" eval --profile "$T/p-a2a.json" --trace "$T/t.csv" --mapping "$T/m-rep.json" --json
cp "$OUT" "$T/e-nocomm.json"
check "eval --comm reports comm and cross_host, added to the mean" python3 -c "
import json
c = json.load(open('$T/e-comm.json')); n = json.load(open('$T/e-nocomm.json'))
assert c['comm'] > 0 and 0 <= c['cross_host'] <= 1 and 'comm' not in n
assert abs(c['mean'] - n['mean'] - c['comm']) <= 1e-9 * c['mean']
"
ok "eval --comm table" eval --profile "$T/p-a2a.json" --trace "$T/t.csv" --mapping "$T/m-rep.json" --comm
check "eval --comm table shows all-to-all" grep -q "all-to-all" "$OUT"
bad "eval --comm without figures" 1 "alltoall" eval $P --mapping "$T/m-rep.json" --comm
# --experts-per-token: 8 is the default; fewer experts per token mean more tokens per step
ok "eval --comm --experts-per-token 8" eval --profile "$T/p-a2a.json" --trace "$T/t.csv" --mapping "$T/m-rep.json" --comm --json --experts-per-token 8
check "eval --experts-per-token 8 is the default" cmp -s "$OUT" "$T/e-comm.json"
ok "eval --comm --experts-per-token 1" eval --profile "$T/p-a2a.json" --trace "$T/t.csv" --mapping "$T/m-rep.json" --comm --json --experts-per-token 1
check "eval --experts-per-token 1 moves more" python3 -S -c "
import json
one = json.load(open('$OUT')); eight = json.load(open('$T/e-comm.json'))
assert one['comm'] > eight['comm'] and one['cross_host'] < eight['cross_host'], (one, eight)
"
bad "eval --experts-per-token without --comm" 2 "needs --comm" eval $P --mapping "$T/m-rep.json" --experts-per-token 2
bad "eval --experts-per-token 0" 2 "experts-per-token" eval --profile "$T/p-a2a.json" --trace "$T/t.csv" --mapping "$T/m-rep.json" --comm --experts-per-token 0
# the result does not depend on the number of threads
ok "map gem 1 thread" map --policy gem $P -o "$T/m-th1.json" --threads 1 --seed 7 -q
ok "map gem 2 threads" map --policy gem $P -o "$T/m-th2.json" --threads 2 --seed 7 -q
check "map is deterministic across threads" cmp -s "$T/m-th1.json" "$T/m-th2.json"
# GEM is never worse than the engines' default on the trace it was built for
check "gem beats contiguous" python3 -c "
import json
g = json.load(open('$T/e-gem.json')); c = json.load(open('$T/e-contiguous.json'))
assert g['mean'] <= c['mean'] * (1 + 1e-12), (g['mean'], c['mean'])"

# exact, on a case small enough for branch and bound
ok "synth tiny" synth --steps 6 --layers 1 --experts 6 --tokens 96 --seed 2 -o "$T/tiny.csv"
ok "profile 2 gpus" profile --backend sim --gpus 2 -o "$T/p2.json"
ok "map exact" map --policy exact --profile "$T/p2.json" --trace "$T/tiny.csv" -o "$T/m-exact.json" --time-limit-ms 5000
ok "eval exact" eval --profile "$T/p2.json" --trace "$T/tiny.csv" --mapping "$T/m-exact.json" --json

# ---- compare ----------------------------------------------------------------------------
ok "compare" compare $P
for pol in $POLICIES; do check "compare lists $pol" grep -q "^ *$pol " "$OUT"; done
check "compare prints the lower bound" grep -q "lower bound" "$OUT"
check "compare marks the best" grep -q "best" "$OUT"
ok "compare --json" compare $P --json
cp "$OUT" "$T/c.json"
check "compare --json content" json_check "$T/c.json" '
[p["policy"] for p in d["policies"]] == ["contiguous", "round_robin", "balanced", "speed_aware", "eplb", "gem"]
and min(p["ratio"] for p in d["policies"]) == 1 and d["lower_bound"] > 0
and all(p["mean"] >= d["lower_bound"] * (1 - 1e-12) for p in d["policies"])
and d["lower_bound"] * (1 - 1e-12) <= d["lower_bound_slots"]
and d["lower_bound_slots"] <= min(p["mean"] for p in d["policies"]) * (1 + 1e-12)'
ok "compare --policies" compare $P --policies balanced,gem --json
cp "$OUT" "$T/c2.json"
check "compare --policies runs those" json_check "$T/c2.json" \
    '[p["policy"] for p in d["policies"]] == ["balanced", "gem"]'
check "compare agrees with eval" python3 -c "
import json
c = {p['policy']: p for p in json.load(open('$T/c.json'))['policies']}
for pol in '$POLICIES'.split():
    e = json.load(open('$T/e-%s.json' % pol))
    # map in eval ran with --seed 3, compare with the default seed: only seedless ones compare
    if pol in ('contiguous', 'round_robin', 'balanced', 'speed_aware'):
        assert abs(c[pol]['mean'] - e['mean']) <= 1e-9 * e['mean'], pol"

# ---- pictures (--svg) -------------------------------------------------------------------
# svg_check FILE PYTHON_EXPR: FILE parses as XML (minidom); the expression sees the document
# d, bars(cls) (rects of a class: "bar", "idle"), texts (every <text>'s content) and refs
# (the dashed reference lines).
svg_check() {
    python3 -S - "$1" "$2" <<'EOF'
import sys, xml.dom.minidom
d = xml.dom.minidom.parse(sys.argv[1])
def bars(cls="bar"):
    return [r for r in d.getElementsByTagName("rect") if r.getAttribute("class") == cls]
texts = ["".join(n.data for n in t.childNodes if n.nodeType == n.TEXT_NODE)
         for t in d.getElementsByTagName("text")]
refs = [l for l in d.getElementsByTagName("line") if l.getAttribute("class") == "ref"]
env = {"d": d, "bars": bars, "texts": texts, "refs": refs, "any": any, "all": all, "len": len}
if not eval("(" + sys.argv[2] + ")", env):
    sys.exit(1)
EOF
}

EV="eval $P --mapping $T/m-balanced.json"
ok "eval --svg" $EV --svg "$T/busy.svg"
check "eval --svg still prints the figures" grep -q "mean" "$OUT"
check "eval --svg is well-formed XML" python3 -c "import xml.dom.minidom,sys; xml.dom.minidom.parse(sys.argv[1])" "$T/busy.svg"
check "eval --svg: one bar per GPU" svg_check "$T/busy.svg" '
d.documentElement.tagName == "svg" and len(bars()) == 4 and len(refs) == 1
and all(any(t == "GPU %d" % g for t in texts) for g in range(4))
and any("balanced" in t for t in texts) and any("ms" in t for t in texts)'
check "eval --svg: the dashed line is the mean layer time" python3 -S -c "
import json, re
e = json.load(open('$T/e-balanced.json'))
m = re.search(r'>balanced: ([0-9.]+) ms</text>', open('$T/busy.svg').read())
want = e['mean'] / 3 / 1000
assert m and abs(float(m.group(1)) - want) <= 1e-3 * want, (m and m.group(1), want)"
ok "eval --svg --json" $EV --svg "$T/busy-j.svg" --json
check "eval --svg --json prints JSON" json_check "$OUT" 'd["steps"] == 24'
ok "eval --svg --against" eval $P --mapping "$T/m-balanced.json" --against "$T/m-gem.json" --svg "$T/busy2.svg"
check "eval --against: one bar per GPU and mapping" svg_check "$T/busy2.svg" '
len(bars()) == 8 and len(refs) == 2
and any(t.startswith("balanced: mean step") for t in texts)
and any(t.startswith("gem: mean step") for t in texts)'
ok "eval --against the same policy" $EV --against "$T/m-balanced.json" --svg "$T/busy3.svg"
check "eval --against the same policy names the file" svg_check "$T/busy3.svg" \
    'len(bars()) == 8 and any("m-balanced.json" in t for t in texts)'
python3 -S -c "
import json, sys
d = json.load(open('$T/m-gem.json')); d['policy'] = 'a<b & \"c\" \u00e9\\x01'
json.dump(d, open('$T/m-odd.json', 'w'))"
ok "eval --svg, a policy name with markup" eval $P --mapping "$T/m-odd.json" --svg "$T/busy-odd.svg"
check "names are escaped" svg_check "$T/busy-odd.svg" \
    'any(t.startswith("a<b & \"c\" \u00e9?: mean step") for t in texts)'
ok "eval --svg to stdout" $EV --svg -
check "eval --svg - prints only the picture" svg_check "$OUT" 'len(bars()) == 4'
bad "eval --against without --svg" 2 "--against needs --svg" $EV --against "$T/m-gem.json"
bad "eval --svg into a missing folder" 1 "cannot write" $EV --svg "$T/no/such/dir/busy.svg"
check "no picture in a missing folder" no_file "$T/no/such/dir/busy.svg"
mkdir -p "$T/svgdir/taken.svg"
bad "eval --svg over a folder" 1 "cannot write" $EV --svg "$T/svgdir/taken.svg"
check "no file left beside a failed picture" sh -c "[ \"\$(ls -A '$T/svgdir')\" = taken.svg ]"
printf 'step,layer,0,1,2\n0,0,1,2\n' > "$T/svg-broken.csv"
bad "eval --svg of a malformed trace" 1 "line 2" eval --profile "$T/p.json" --trace "$T/svg-broken.csv" --mapping "$T/m-gem.json" --svg "$T/busy-x.svg"
check "no picture after a failed eval" no_file "$T/busy-x.svg"
bad "eval --against of another shape" 1 "shape mismatch" eval $P --mapping "$T/m-gem.json" --against "$T/m-exact.json" --svg "$T/busy-x.svg"
check "no picture after a failed --against" no_file "$T/busy-x.svg"
cp "$T/m-gem.json" "$T/busy-keep.svg"
bad "failed --svg over an existing file" 1 "line 2" eval --profile "$T/p.json" --trace "$T/svg-broken.csv" --mapping "$T/m-gem.json" --svg "$T/busy-keep.svg"
check "existing picture untouched" cmp -s "$T/m-gem.json" "$T/busy-keep.svg"

ok "compare --svg" compare $P --svg "$T/cmp.svg"
check "compare --svg still prints the table" grep -q "lower bound" "$OUT"
check "compare --svg: one bar per policy and the bound" svg_check "$T/cmp.svg" '
len(bars()) == 6 and len(refs) == 1 and any(t.startswith("lower bound: ") for t in texts)
and all(any(t == p for t in texts) for p in "contiguous round_robin balanced speed_aware eplb gem".split())
and any(t == "best" for t in texts)'
ok "compare --policies --svg" compare $P --policies balanced,gem --svg "$T/cmp2.svg" --json
check "compare --svg --json prints JSON" json_check "$OUT" 'len(d["policies"]) == 2'
check "compare --svg with two policies" svg_check "$T/cmp2.svg" 'len(bars()) == 2'
bad "compare --svg into a missing folder" 1 "cannot write" compare $P --svg "$T/no/such/dir/c.svg"
check "no temporary files after the pictures" no_temp_files

# ---- progress line: on a terminal only ----------------------------------------------------
run map --policy gem $P -o "$T/m-quiet.json" -q
check "map prints no progress off a terminal" test ! -s "$ERR"
run compare $P --policies balanced,gem
check "compare prints no progress off a terminal" test ! -s "$ERR"
# on_tty ARGS...: runs gem with standard error on a pseudo-terminal; prints what it showed there
on_tty() {
    python3 -S - "$GEM" "$@" <<'EOF'
import os, subprocess, sys
m, s = os.openpty()
p = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=s)
os.close(s)
out = b""
while True:
    try:
        chunk = os.read(m, 4096)
    except OSError:
        break
    if not chunk:
        break
    out += chunk
sys.stdout.write(out.decode("utf-8", "replace"))
sys.exit(p.wait())
EOF
}
if python3 -S -c "import os; os.openpty()" 2>/dev/null; then
    on_tty map --policy gem $P -o "$T/m-tty.json" -q >"$T/tty.txt"
    check "map shows progress on a terminal" python3 -S -c "
t = open('$T/tty.txt', newline='').read()
assert '[gem] map gem: layer 3/3 (100%)' in t, repr(t)
assert t.endswith('\r') and t.rstrip(' \r').endswith('s'), repr(t)  # erased at the end"
    check "progress does not change the mapping" cmp -s "$T/m-tty.json" "$T/m-quiet.json"
    on_tty compare $P --policies balanced,gem >"$T/tty2.txt"
    check "compare shows progress on a terminal" python3 -S -c "
t = open('$T/tty2.txt', newline='').read()
assert '[gem] compare 1/2 balanced' in t and '[gem] compare 2/2 gem' in t, repr(t)"
fi

# ---- classify ---------------------------------------------------------------------------
ok "classify" classify --trace "$T/t.csv"
check "classify table" grep -q "consistent" "$OUT"
ok "classify --json" classify --trace "$T/t.csv" --json --coactivation
cp "$OUT" "$T/cl.json"
check "classify --json content" json_check "$T/cl.json" '
d["num_layers"] == 3 and d["num_experts"] == 16 and len(d["layers"]) == 3
and all(l["consistent"] + l["temporal"] + l["cold"] == 16 and len(l["experts"]) == 16
        and len(l["coactivation"]) == 16 for l in d["layers"])
and all(e["class"] in ("cold", "consistent", "temporal") for l in d["layers"] for e in l["experts"])'
ok "classify options" classify --trace "$T/t.csv" --heavy-factor 1.5 --consistent-min 0.6 --temporal-min 0.1

# ---- import -----------------------------------------------------------------------------
printf '{"logical_count": [[10, 0, 5, 85], [25, 25, 25, 25]]}\n' > "$T/sg.json"
ok "import sglang" import --format sglang "$T/sg.json" -o "$T/imp.csv" --steps 10 --batch 32 --topk 2 --seed 4
check "import sglang rows" sh -c "[ \$(grep -c '^[0-9]' '$T/imp.csv') -eq 20 ]"
ok "import sglang again" import --format sglang "$T/sg.json" -o "$T/imp2.csv" --steps 10 --batch 32 --topk 2 --seed 4
check "import is deterministic" cmp -s "$T/imp.csv" "$T/imp2.csv"
ok "classify the import" classify --trace "$T/imp.csv"
# leading dense layers: import says how many, export with as many gives the recorder's rows
printf '{"logical_count": [[0, 0, 0, 0], [0, 0, 0, 0], [10, 0, 5, 85], [25, 25, 25, 25]]}\n' > "$T/sg-dense.json"
ok "import sglang with dense layers" import --format sglang "$T/sg-dense.json" -o "$T/imp-dense.csv"
check "import names the leading dense layers" grep -q "2 leading dense layers.*--first-dense-layers 2" "$ERR"
ok "map the import" map --policy balanced --profile "$T/p.json" --trace "$T/imp-dense.csv" -o "$T/m-dense.json" -q
ok "export it with its dense layers" export --format eplb --mapping "$T/m-dense.json" --first-dense-layers 2 -o "$T/x-dense-eplb.json"
check "export has one row per recorded layer" json_check "$T/x-dense-eplb.json" \
    'len(d["phy2log"]) == len(d["logcnt"]) == len(d["log2phy"]) == 4 and d["phy2log"][0] == [0, 1, 2, 3]'
printf ',dataset,iteration,layer_idx,0,1,2,3\n0,a,0,0,1,2,3,4\n1,a,0,1,4,3,2,1\n2,b,0,0,9,9,9,9\n3,a,1,0,5,5,5,5\n4,a,1,1,0,0,0,8\n5,b,0,1,9,9,9,9\n' > "$T/wide.csv"
ok "import wide-csv --filter" import --format wide-csv "$T/wide.csv" --filter dataset=a -o "$T/wide-t.csv"
check "import wide-csv rows" sh -c "[ \$(grep -c '^[0-9]' '$T/wide-t.csv') -eq 4 ]"
check "import wide-csv loads" grep -q '^1,1,0,0,0,8$' "$T/wide-t.csv"
bad "import wide-csv duplicate rows" 1 "gem import" import --format wide-csv "$T/wide.csv" -o "$T/wide-x.csv"
check "no trace after a failed import" no_file "$T/wide-x.csv"
cat > "$T/tokens.jsonl" <<'JSONL'
{"token_idx": 0, "layer": 0, "experts": [1, 2]}
{"token_idx": 0, "layer": 1, "experts": [0, 3]}
{"token_idx": 1, "layer": 0, "experts": [1, 3]}
{"token_idx": 1, "layer": 1, "experts": [2, 3]}
{"token_idx": 2, "layer": 0, "experts": [0, 1]}
{"token_idx": 2, "layer": 1, "experts": [0, 2]}
JSONL
ok "import tokens-jsonl" import --format tokens-jsonl "$T/tokens.jsonl" --batch 2 -o "$T/tok-t.csv"
check "import tokens-jsonl loads" sh -c "grep -q '^0,0,0,2,1,1\$' '$T/tok-t.csv' && grep -q '^1,1,1,0,1,0\$' '$T/tok-t.csv'"
bad "import missing input" 1 "nonexistent.json" import --format sglang "$T/nonexistent.json" -o "$T/imp3.csv"
check "import failure leaves no file" no_file "$T/imp3.csv"
bad "import unknown format" 2 "format" import --format parquet "$T/sg.json" -o "$T/imp3.csv"
bad "import without input" 2 "missing" import --format sglang -o "$T/imp3.csv"

# ---- bad inputs -------------------------------------------------------------------------
bad "missing profile file" 1 "nope.json" eval --profile "$T/nope.json" --trace "$T/t.csv" --mapping "$T/m-gem.json"
bad "missing trace file" 1 "nope.csv" map $P --trace "$T/nope.csv" -o "$T/m-x.json"
check "no mapping after a missing trace" no_file "$T/m-x.json"
printf 'step,layer,0,1,2\n0,0,1,2\n' > "$T/broken.csv"
bad "malformed trace" 1 "line 2" map --profile "$T/p.json" --trace "$T/broken.csv" -o "$T/m-x.json"
check "no mapping after a malformed trace" no_file "$T/m-x.json"
printf 'step,layer,0,1\n0,0,1,2\n1,0,1,-3\n' > "$T/negative.csv"
bad "negative load" 1 "line 3" eval --profile "$T/p.json" --trace "$T/negative.csv" --mapping "$T/m-gem.json"
printf '{"format": "gem-profile", "version": 1, "gpus": [' > "$T/broken.json"
bad "malformed profile" 1 "invalid input" map --profile "$T/broken.json" --trace "$T/t.csv" -o "$T/m-x.json"
check "no mapping after a malformed profile" no_file "$T/m-x.json"
bad "unknown policy" 2 "gem" map --policy nope $P -o "$T/m-x.json"
check "no mapping after an unknown policy" no_file "$T/m-x.json"
bad "unknown option" 2 "unknown option '--bogus'" map --bogus $P -o "$T/m-x.json"
bad "option without value" 2 "needs a value" map $P -o
bad "missing -o" 2 "missing --output" map $P
bad "missing --trace" 2 "missing --trace" eval --profile "$T/p.json" --mapping "$T/m-gem.json"
bad "stray argument" 2 "unexpected argument" eval $P --mapping "$T/m-gem.json" extra
bad "not a number" 2 "not an integer" synth --steps abc -o "$T/s-x.csv"
bad "skew out of range" 2 "outside" synth --skew 2 -o "$T/s-x.csv"
bad "unknown objective" 2 "objective" map $P --objective median -o "$T/m-x.json"
bad "unknown export format" 2 "format" export --format onnx --mapping "$T/m-gem.json" -o "$T/x-x.json"
bad "compare unknown policy" 2 "nope" compare $P --policies gem,nope
check "no output files after usage errors" sh -c "no() { [ ! -e \"\$1\" ]; }; no '$T/s-x.csv' && no '$T/x-x.json' && no '$T/m-x.json'"
ok "synth other shape" synth --steps 24 --layers 3 --experts 12 --tokens 64 -o "$T/t12.csv"
bad "shape mismatch" 1 "shape mismatch" eval --profile "$T/p.json" --trace "$T/t12.csv" --mapping "$T/m-gem.json"
bad "unwritable output" 1 "gem synth" synth --steps 2 --layers 1 --experts 4 -o "$T/no/such/dir/t.csv"
# a failed run leaves an existing output untouched
cp "$T/m-gem.json" "$T/keep.json"
bad "failure over an existing file" 1 "line 2" map --profile "$T/p.json" --trace "$T/broken.csv" -o "$T/keep.json"
check "existing output untouched" cmp -s "$T/m-gem.json" "$T/keep.json"
check "no temporary files left" no_temp_files

# ---- memory: one pipeline under valgrind ---------------------------------------------------
if [ -z "${GEM_CLI_NO_VALGRIND:-}" ] && command -v valgrind >/dev/null 2>&1; then
    VG="valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99 --quiet"
    for args in "synth --steps 8 --layers 2 --experts 8 --tokens 64 -o $T/vg.csv" \
                "map --policy gem --profile $T/p.json --trace $T/t.csv -o $T/vg.json -q" \
                "eval --profile $T/p.json --trace $T/t.csv --mapping $T/vg.json --json" \
                "compare --profile $T/p.json --trace $T/t.csv" \
                "classify --trace $T/t.csv --json --coactivation" \
                "export --format sglang --mapping $T/vg.json -o $T/vg-x.json" \
                "export --format eplb --mapping $T/vg.json --first-dense-layers 2 -o $T/vg-x2.json" \
                "map --policy nope --profile $T/p.json --trace $T/t.csv -o $T/vg2.json" \
                "eval --profile $T/p.json --trace $T/broken.csv --mapping $T/vg.json" \
                "eval --profile $T/p.json --trace $T/t.csv --mapping $T/vg.json --against $T/m-balanced.json --svg $T/vg.svg" \
                "compare --profile $T/p.json --trace $T/t.csv --svg $T/vg2.svg" \
                "compare --profile $T/p.json --trace $T/t.csv --svg $T/no/such/dir/vg.svg"; do
        # shellcheck disable=SC2086
        $VG "$GEM" $args >"$OUT" 2>"$ERR"
        rc=$?
        if [ $rc -eq 99 ]; then fail "valgrind: gem $args"; else pass; fi
    done
fi

# ---- remap (experimental) -----------------------------------------------------------------
# A mapping built on one trace, a window where routing drifted (another seed, more skew), on
# a fleet with a wide speed spread and enough tokens per step that placement matters.
ok "remap --help" remap --help
check "remap --help prints a usage" grep -q "Usage: gem remap" "$OUT"
check "remap --help says it is experimental" grep -q "EXPERIMENTAL" "$OUT"
ok "gem help remap" help remap
check "gem help remap is remap's help" grep -q "Usage: gem remap" "$OUT"
ok "gem --help (remap)" --help
check "gem --help lists remap as experimental" grep -q "^  remap .*experimental" "$OUT"
ok "remap: profile" profile --backend sim --spread 0.3 -o "$T/rp.json"
ok "remap: old trace" synth --steps 24 --layers 3 --experts 16 --tokens 16384 --skew 0.7 --seed 11 -o "$T/r-old.csv"
ok "remap: drifted window" synth --steps 24 --layers 3 --experts 16 --tokens 16384 --skew 0.9 --seed 12 -o "$T/r-win.csv"
ok "remap: current mapping" map --policy gem --profile "$T/rp.json" --trace "$T/r-old.csv" -o "$T/r-cur.json" -q
RI="--profile $T/rp.json --trace $T/r-win.csv --current $T/r-cur.json"
REV="eval --profile $T/rp.json --trace $T/r-win.csv --json --mapping"

# remap_check JSON PYTHON_EXPR: the remap --json object d obeys its contract (keys, the
# relations gem_remap guarantees) and the expression.
remap_check() {
    json_check "$1" '
all(k in d for k in ("current_us", "remapped_us", "unconstrained_us", "gain_pct",
                     "unconstrained_gain_pct", "moves", "max_moves", "bytes_moved",
                     "max_move_bytes", "min_gain", "recommend", "written", "drift", "steps"))
and d["experimental"] is True and d["steps"] == 24 and d["unit"] == "us"
and d["current_us"] > 0 and d["remapped_us"] > 0 and d["unconstrained_us"] > 0
and d["remapped_us"] <= d["current_us"] * (1 + 1e-9)
and (d["max_moves"] is None or 0 <= d["moves"] <= d["max_moves"])
and (d["max_move_bytes"] is None or d["bytes_moved"] <= d["max_move_bytes"])
and abs(d["gain_pct"] - (d["current_us"] - d["remapped_us"]) / d["current_us"] * 100) <= 1e-9
and abs(d["unconstrained_gain_pct"]
        - (d["current_us"] - d["unconstrained_us"]) / d["current_us"] * 100) <= 1e-9
and d["recommend"] == (d["moves"] > 0 and d["gain_pct"] / 100 >= d["min_gain"])
and (d["moves"] > 0 or d["remapped_us"] == d["current_us"])
and ('"$2"')'
}
# remap_moved CURRENT NEW: experts (layer, expert) whose GPUs differ between two mappings
remap_moved() {
    python3 -S -c "
import json, sys
def gpus(p):
    m = {}
    for l, layer in enumerate(json.load(open(p))['layers']):
        for e, g, s in layer['placements']:
            m.setdefault((l, e), set()).add(g)
    return m
a, b = gpus(sys.argv[1]), gpus(sys.argv[2])
print(sum(a[k] != b[k] for k in a))" "$1" "$2"
}

ok "remap --json --max-moves 3" remap $RI -o "$T/r-new.json" --json --max-moves 3 --expert-bytes 1000000
cp "$OUT" "$T/r1.json"
check "remap --json is one line" sh -c "[ \$(wc -l < '$T/r1.json') -eq 1 ]"
check "remap --json keys and relations" remap_check "$T/r1.json" \
    'd["max_moves"] == 3 and d["bytes_moved"] == d["moves"] * 1000000 and d["drift"] is None'
# the fixture is drifted enough that the budget finds a change worth making
check "remap recommends a change on the drifted window" json_check "$T/r1.json" \
    'd["recommend"] is True and d["moves"] > 0 and d["written"].endswith("r-new.json")'
check "remap wrote the recommended mapping" json_check "$T/r-new.json" \
    'd["format"] == "gem-mapping" and d["num_gpus"] == 4 and len(d["layers"]) == 3'
check "remap moved as many experts as it says" test "$(remap_moved "$T/r-cur.json" "$T/r-new.json")" = \
    "$(python3 -S -c 'import json, sys; print(json.load(open(sys.argv[1]))["moves"])' "$T/r1.json")"
ok "eval the re-mapped mapping" $REV "$T/r-new.json"
check "its mean is the reported remapped mean" python3 -S -c "
import json
r = json.load(open('$T/r1.json')); e = json.load(open('$OUT'))
assert abs(e['mean'] - r['remapped_us']) <= 1e-9 * r['remapped_us'], (e['mean'], r)"
ok "eval the current mapping on the window" $REV "$T/r-cur.json"
check "the reported current mean is eval's" python3 -S -c "
import json
r = json.load(open('$T/r1.json')); e = json.load(open('$OUT'))
assert abs(e['mean'] - r['current_us']) <= 1e-9 * r['current_us'], (e['mean'], r)"

# no budget: no move, no change, nothing written
ok "remap --max-moves 0" remap $RI -o "$T/r-k0.json" --json --max-moves 0
cp "$OUT" "$T/r0.json"
check "remap --max-moves 0 moves nothing" remap_check "$T/r0.json" \
    'd["moves"] == 0 and d["remapped_us"] == d["current_us"] and d["recommend"] is False and d["written"] is None and d["bytes_moved"] is None'
check "remap --max-moves 0 writes nothing" no_file "$T/r-k0.json"

# --min-gain 1 never recommends: nothing written, said so; --force writes anyway
ok "remap --min-gain 1" remap $RI -o "$T/r-g1.json" --min-gain 1
check "remap --min-gain 1 says keep the current mapping" grep -q "keep the current mapping" "$OUT"
check "remap table is marked experimental" grep -q "experimental" "$OUT"
check "remap --min-gain 1 writes nothing" no_file "$T/r-g1.json"
ok "remap --min-gain 1 --json" remap $RI -o "$T/r-g1.json" --min-gain 1 --json
cp "$OUT" "$T/rg1.json"
check "remap --min-gain 1 --json: not recommended, not written" remap_check "$T/rg1.json" \
    'd["recommend"] is False and d["written"] is None and d["min_gain"] == 1 and d["moves"] > 0'
check "remap --min-gain 1 --json writes nothing" no_file "$T/r-g1.json"
ok "remap --min-gain 1 --force --json" remap $RI -o "$T/r-force.json" --min-gain 1 --force --json
cp "$OUT" "$T/rf.json"
check "remap --force: written though not recommended" remap_check "$T/rf.json" \
    'd["recommend"] is False and d["written"].endswith("r-force.json")'
ok "eval the --force mapping" $REV "$T/r-force.json"
check "the --force mapping's mean is the reported remapped mean" python3 -S -c "
import json
r = json.load(open('$T/rf.json')); e = json.load(open('$OUT'))
assert abs(e['mean'] - r['remapped_us']) <= 1e-9 * r['remapped_us'], (e['mean'], r)"
ok "remap --min-gain 1 --force (table)" remap $RI -o "$T/r-force2.json" --min-gain 1 --force
check "remap --force says it wrote anyway" grep -q "anyway (--force)" "$OUT"
cp "$T/r-cur.json" "$T/r-stale.json"
ok "remap over an existing file, not recommended" remap $RI -o "$T/r-stale.json" --min-gain 1 -q
check "remap -q prints nothing" test ! -s "$OUT"
check "an existing file is left untouched when nothing is recommended" cmp -s "$T/r-cur.json" "$T/r-stale.json"

# the byte budget, and no limit at all
ok "remap --max-move-bytes" remap $RI -o "$T/r-b.json" --json --expert-bytes 1000000 --max-move-bytes 2500000
cp "$OUT" "$T/rb.json"
check "remap --max-move-bytes is kept" remap_check "$T/rb.json" \
    'd["max_move_bytes"] == 2500000 and d["bytes_moved"] <= 2500000 and d["moves"] <= 2 and d["bytes_moved"] == d["moves"] * 1000000'
ok "remap unlimited" remap $RI -o "$T/r-u.json" --json --min-gain 0
cp "$OUT" "$T/ru.json"
check "remap unlimited: keys and relations" remap_check "$T/ru.json" \
    'd["max_moves"] is None and d["max_move_bytes"] is None and d["bytes_moved"] is None'

# --built-on: the drift ratio, the current mapping's mean on the window / on its trace
ok "remap --built-on --json" remap $RI -o "$T/r-d.json" --json --built-on "$T/r-old.csv"
cp "$OUT" "$T/rd.json"
check "remap --built-on gives a drift ratio" remap_check "$T/rd.json" 'd["drift"] > 0'
ok "eval the current mapping on its own trace" eval --profile "$T/rp.json" --trace "$T/r-old.csv" --mapping "$T/r-cur.json" --json
check "drift = mean on the window / mean on the old trace" python3 -S -c "
import json
r = json.load(open('$T/rd.json')); e = json.load(open('$OUT'))
want = r['current_us'] / e['mean']
assert abs(r['drift'] - want) <= 1e-9 * want, (r['drift'], want)"
ok "remap --built-on (table)" remap $RI -o "$T/r-d2.json" --built-on "$T/r-old.csv"
check "remap table shows the drift" grep -q "drift  *[0-9]" "$OUT"

# the result does not depend on the number of threads
ok "remap 1 thread" remap $RI -o "$T/r-th1.json" --json --max-moves 3 --threads 1 --seed 4
sed "s/r-th1.json/r-thN.json/" "$OUT" > "$T/rth1.json"
ok "remap 2 threads" remap $RI -o "$T/r-th2.json" --json --max-moves 3 --threads 2 --seed 4
sed "s/r-th2.json/r-thN.json/" "$OUT" > "$T/rth2.json"
check "remap is deterministic across threads" sh -c "cmp -s '$T/rth1.json' '$T/rth2.json' && cmp -s '$T/r-th1.json' '$T/r-th2.json'"

# bad inputs: a message, a non-zero exit, no file
bad "remap without --current" 2 "missing --current" remap --profile "$T/rp.json" --trace "$T/r-win.csv" -o "$T/r-x.json"
bad "remap without --trace" 2 "missing --trace" remap --profile "$T/rp.json" --current "$T/r-cur.json" -o "$T/r-x.json"
bad "remap without --profile" 2 "missing --profile" remap --trace "$T/r-win.csv" --current "$T/r-cur.json" -o "$T/r-x.json"
bad "remap without -o" 2 "missing --output" remap $RI
bad "remap -o -" 2 "not accepted" remap $RI -o -
bad "remap --max-moves -2" 2 "max-moves: -2 is outside" remap $RI -o "$T/r-x.json" --max-moves -2
bad "remap --max-moves abc" 2 "not an integer" remap $RI -o "$T/r-x.json" --max-moves abc
bad "remap --min-gain 1.5" 2 "min-gain: 1.5 is outside" remap $RI -o "$T/r-x.json" --min-gain 1.5
bad "remap --min-gain -0.1" 2 "min-gain: -0.1 is outside" remap $RI -o "$T/r-x.json" --min-gain -0.1
bad "remap --max-move-bytes -2" 2 "max-move-bytes" remap $RI -o "$T/r-x.json" --max-move-bytes -2 --expert-bytes 10
bad "remap --max-move-bytes without --expert-bytes" 2 "needs --expert-bytes" remap $RI -o "$T/r-x.json" --max-move-bytes 1000
bad "remap --json -q" 2 "exclude" remap $RI -o "$T/r-x.json" --json -q
bad "remap missing current file" 1 "nope.json" remap --profile "$T/rp.json" --trace "$T/r-win.csv" --current "$T/nope.json" -o "$T/r-x.json"
bad "remap missing window file" 1 "nope.csv" remap --profile "$T/rp.json" --trace "$T/nope.csv" --current "$T/r-cur.json" -o "$T/r-x.json"
bad "remap missing --built-on file" 1 "nope-old.csv" remap $RI -o "$T/r-x.json" --built-on "$T/nope-old.csv"
ok "remap: window of another shape" synth --steps 4 --layers 3 --experts 12 --tokens 64 -o "$T/r-win12.csv"
bad "remap window of another shape" 1 "shape mismatch: trace has 3 layers x 12 experts but mapping has 3 x 16" remap --profile "$T/rp.json" --trace "$T/r-win12.csv" --current "$T/r-cur.json" -o "$T/r-x.json"
check "the shape mismatch names the files" grep -q "window $T/r-win12.csv, current $T/r-cur.json" "$ERR"
bad "remap profile of another shape" 1 "profile has 2 GPUs but mapping has 4" remap --profile "$T/p2.json" --trace "$T/r-win.csv" --current "$T/r-cur.json" -o "$T/r-x.json"
bad "remap --built-on of another shape" 1 "gem_drift: built_on: trace has 3 layers x 12" remap $RI -o "$T/r-x.json" --built-on "$T/r-win12.csv"
check "the drift's mismatch names the files" grep -q "built-on $T/r-win12.csv" "$ERR"
grep -v '^5,1,' "$T/r-win.csv" > "$T/r-inc.csv"
bad "remap incomplete window" 1 "no row for step 5 layer 1" remap --profile "$T/rp.json" --trace "$T/r-inc.csv" --current "$T/r-cur.json" -o "$T/r-x.json"
bad "remap malformed window" 1 "line 2" remap --profile "$T/rp.json" --trace "$T/broken.csv" --current "$T/r-cur.json" -o "$T/r-x.json"
python3 -S -c "
import json
d = json.load(open('$T/r-cur.json')); d['layers'][1]['placements'].pop(3)
json.dump(d, open('$T/r-badcur.json', 'w'))"
bad "remap invalid current mapping" 1 "expert 3 has no placement" remap --profile "$T/rp.json" --trace "$T/r-win.csv" --current "$T/r-badcur.json" -o "$T/r-x.json"
check "no mapping after failed remaps" no_file "$T/r-x.json"
bad "remap into a missing folder" 1 "no/such/dir" remap $RI -o "$T/no/such/dir/r.json" --min-gain 0
check "no mapping in a missing folder" no_file "$T/no/such/dir/r.json"
cp "$T/r-cur.json" "$T/r-keep.json"
bad "failed remap over an existing file" 1 "shape mismatch" remap --profile "$T/rp.json" --trace "$T/r-win12.csv" --current "$T/r-cur.json" -o "$T/r-keep.json" --force
check "existing output untouched after a failed remap" cmp -s "$T/r-cur.json" "$T/r-keep.json"
check "no temporary files after remap" no_temp_files
if [ -z "${GEM_CLI_NO_VALGRIND:-}" ] && command -v valgrind >/dev/null 2>&1; then
    VG="valgrind --leak-check=full --errors-for-leak-kinds=definite --error-exitcode=99 --quiet"
    for args in "remap $RI -o $T/vg-r.json --max-moves 3 --built-on $T/r-old.csv --json" \
                "remap $RI -o $T/vg-r2.json --min-gain 1 --force" \
                "remap --profile $T/p2.json --trace $T/r-win.csv --current $T/r-cur.json -o $T/vg-r3.json" \
                "remap $RI -o $T/vg-r4.json --built-on $T/r-win12.csv"; do
        # shellcheck disable=SC2086
        $VG "$GEM" $args >"$OUT" 2>"$ERR"
        rc=$?
        if [ $rc -eq 99 ]; then fail "valgrind: gem $args"; else pass; fi
    done
fi

echo "cli: $passed passed, $failed failed"
[ $failed -eq 0 ]
