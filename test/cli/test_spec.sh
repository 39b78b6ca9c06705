#!/bin/sh
# Holds `gem eval --json` against test/cli/spec_eval.py, an independent implementation of SPEC
# section 2 written from the SPEC text, on every combination of interpolation (step, linear)
# and cost model (per_expert, aggregate), with noisy (non-monotone) curves, one-sample curves,
# fractional loads and replicated experts. Every key must agree to 1e-9 relative.
# Usage: sh test/cli/test_spec.sh BUILD_DIR
set -u
BUILD=${1:-build}
GEM=$BUILD/gem
HERE=$(dirname "$0")
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
passed=0; failed=0
check() { # name profile trace mapping
    if python3 "$HERE/spec_eval.py" --compare "$2" "$3" "$4" "$GEM" >"$dir/out" 2>&1; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1)); echo "spec: FAIL $1"; cat "$dir/out"
    fi
}
# rewrite a profile's interpolation and cost model (and optionally cut curves to one sample)
variant() { # in out interp cost one_sample
    python3 - "$@" <<'PY'
import json, sys
src, dst, interp, cost, one = sys.argv[1:6]
doc = json.load(open(src))
doc["interpolation"], doc["cost_model"] = interp, cost
if one == "1":
    for g in doc["gpus"]:
        g["tokens"], g["latency_us"] = g["tokens"][3:4], g["latency_us"][3:4]
        g.pop("latency_cv", None)
json.dump(doc, open(dst, "w"))
PY
}
# a trace with fractional loads (SPEC: values are non-negative decimals)
fractional() { # in out
    python3 - "$1" "$2" <<'PY'
import sys
lines = open(sys.argv[1]).read().splitlines()
out = []
for i, ln in enumerate(lines):
    if ln.startswith("#") or ln.startswith("step"):
        out.append(ln); continue
    f = ln.split(",")
    out.append(",".join(f[:2] + [repr(float(v) * 0.37 + (0.25 if j % 3 == 0 else 0))
                                 for j, v in enumerate(f[2:])]))
open(sys.argv[2], "w").write("\n".join(out) + "\n")
PY
}

"$GEM" profile --gpus 4 --spread 0.2 --noise 0.05 --max-tokens 1024 --seed 3 -o "$dir/p.json" || exit 1
"$GEM" synth --steps 23 --layers 3 --experts 16 --tokens 3000 --skew 0.7 --seed 5 -o "$dir/t.csv" || exit 1
fractional "$dir/t.csv" "$dir/tf.csv"
for interp in step linear; do
    for cost in per_expert aggregate; do
        for one in 0 1; do
            pv="$dir/p-$interp-$cost-$one.json"
            variant "$dir/p.json" "$pv" $interp $cost $one
            for tr in t tf; do
                for pol in contiguous gem; do
                    "$GEM" map -q --policy $pol --profile "$pv" --trace "$dir/$tr.csv" -o "$dir/m.json" || exit 1
                    check "$interp/$cost/one=$one/$tr/$pol" "$pv" "$dir/$tr.csv" "$dir/m.json"
                done
                "$GEM" map -q --policy eplb --redundant-slots 6 --profile "$pv" --trace "$dir/$tr.csv" -o "$dir/m.json" || exit 1
                check "$interp/$cost/one=$one/$tr/eplb+replicas" "$pv" "$dir/$tr.csv" "$dir/m.json"
            done
        done
    done
done
echo "spec: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
