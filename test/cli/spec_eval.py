#!/usr/bin/env python3
"""An independent implementation of SPEC section 2 (docs/SPEC.md), written from the SPEC text
alone, to hold `gem eval --json` against.

    spec_eval.py PROFILE.json TRACE.csv MAPPING.json      prints {"mean":..., "p50":..., ...}
    spec_eval.py --compare PROFILE TRACE MAPPING GEM_BIN  runs `gem eval --json` and checks
                                                          every key to 1e-9 relative

Standard library only.
"""
import bisect
import csv
import json
import math
import subprocess
import sys


def load_profile(path):
    with open(path) as f:
        doc = json.load(f)
    interp = doc.get("interpolation", "step")
    cost = doc.get("cost_model", "per_expert")
    gpus = sorted(doc["gpus"], key=lambda g: g["id"])
    curves = []
    for g in gpus:
        curves.append((float(g.get("overhead_us", 0.0)),
                       [int(x) for x in g["tokens"]], [float(t) for t in g["latency_us"]]))
    return interp, cost, curves


def latency(curve, interp, x):
    _, n, t = curve
    if x <= 0:
        return 0.0
    k = len(n)
    if x > n[-1]:
        if k == 1:
            return t[0] * x / n[0]
        return t[-1] + (x - n[-1]) * (t[-1] - t[-2]) / (n[-1] - n[-2])
    i = bisect.bisect_left(n, x)  # smallest i with n[i] >= x
    if interp == "step" or i == 0:
        return t[i]
    if x == n[i]:
        return t[i]
    return t[i - 1] + (x - n[i - 1]) * (t[i] - t[i - 1]) / (n[i] - n[i - 1])


def load_trace(path):
    rows = {}
    with open(path) as f:
        lines = [ln for ln in f if ln.strip() and not ln.lstrip().startswith("#")]
    reader = csv.reader(lines)
    header = next(reader)
    num_experts = len(header) - 2
    for rec in reader:
        rows[(int(rec[0]), int(rec[1]))] = [float(v) for v in rec[2:2 + num_experts]]
    steps = 1 + max(s for s, _ in rows)
    layers = 1 + max(l for _, l in rows)
    return steps, layers, rows


def load_mapping(path):
    with open(path) as f:
        doc = json.load(f)
    return [[(int(e), int(g), float(w)) for e, g, w in layer["placements"]]
            for layer in doc["layers"]]


def evaluate(profile, trace, mapping):
    interp, cost, curves = profile
    steps, layers, rows = trace
    step_lat = []
    for s in range(steps):
        total = 0.0
        for l in range(layers):
            n = rows[(s, l)]
            per_gpu = [c[0] for c in curves]
            tokens = [0.0] * len(curves)
            for e, g, w in mapping[l]:
                if cost == "per_expert":
                    per_gpu[g] += latency(curves[g], interp, w * n[e])
                else:
                    tokens[g] += w * n[e]
            if cost == "aggregate":
                per_gpu = [curves[g][0] + latency(curves[g], interp, tokens[g])
                           for g in range(len(curves))]
            total += max(per_gpu)
        step_lat.append(total)
    ordered = sorted(step_lat)

    def rank(p):
        k = max(1, math.ceil(p * len(ordered) / 100))
        return ordered[k - 1]

    return {"mean": sum(step_lat) / len(step_lat), "p50": rank(50), "p90": rank(90),
            "p99": rank(99), "total": sum(step_lat)}


def main(argv):
    if argv and argv[0] == "--compare":
        prof, tr, mp, gem = argv[1:5]
        ours = evaluate(load_profile(prof), load_trace(tr), load_mapping(mp))
        out = subprocess.run([gem, "eval", "--profile", prof, "--trace", tr, "--mapping", mp,
                              "--json"], check=True, capture_output=True, text=True).stdout
        theirs = json.loads(out)
        bad = [k for k in ours
               if abs(ours[k] - theirs[k]) > 1e-9 * max(abs(ours[k]), abs(theirs[k]), 1e-300)]
        for k in ours:
            print(f"{k:6s} spec {ours[k]!r:>24} gem {theirs[k]!r:>24}")
        if bad:
            print("MISMATCH in " + ", ".join(bad))
            return 1
        return 0
    print(json.dumps(evaluate(load_profile(argv[0]), load_trace(argv[1]), load_mapping(argv[2]))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
