#!/usr/bin/env python3
"""The libgem pipeline from Python: profile (emulated GPUs), trace (imported or synthesized),
classification, placement with policy gem, evaluation against the default placement, and an
SGLang export (`--init-expert-location`).

    PYTHONPATH=bindings/python python3 examples/pipeline.py
    PYTHONPATH=bindings/python python3 examples/pipeline.py --import sglang dist.json --out map.json

The gem package finds libgem through $GEM_LIBRARY, the build tree or the system.
"""
import argparse
import json
import os
import sys
import tempfile

import gem


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--import", dest="imp", nargs=2, metavar=("FORMAT", "PATH"),
                    help="import routing data (sglang, wide_csv, tokens_jsonl) instead of "
                         "synthesizing a trace")
    ap.add_argument("--gpus", type=int, default=4)
    ap.add_argument("--spread", type=float, default=0.077)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", help="SGLang expert-location JSON to write (default: a temp file)")
    args = ap.parse_args()

    print("libgem %s (%s)" % (gem.version_string(), gem.library_path))
    with gem.Profile.sim(gpus=args.gpus, spread=args.spread, seed=args.seed) as profile:
        speeds = ", ".join("%.3f" % s for s in profile.speeds())
        print("profile: %d emulated GPUs, relative speeds %s" % (profile.num_gpus, speeds))

        if args.imp:
            trace = gem.Trace.import_(args.imp[0], args.imp[1], seed=args.seed)
            how = "imported from %s" % args.imp[1]
            if trace.import_note:
                print("import note: %s" % trace.import_note)
        else:
            trace = gem.Trace.synthesize(64, 8, 16, tokens_per_step=8192, skew=0.7,
                                         seed=args.seed)
            how = "synthesized"
        with trace:
            steps, layers, experts = trace.shape
            print("trace: %s, %d steps x %d layers x %d experts" % (how, steps, layers, experts))

            with gem.classify(trace) as cls:
                counts = cls.counts()
                print("classes: " + ", ".join("%d %s" % (counts[c], gem.class_name(c))
                                              for c in gem.ExpertClass))

                with gem.compute_mapping(profile, trace, "contiguous") as default, \
                        gem.compute_mapping(profile, trace, "gem", seed=args.seed,
                                            classification=cls) as mapping:
                    with gem.evaluate(profile, trace, default) as before, \
                            gem.evaluate(profile, trace, mapping) as after:
                        print("contiguous: mean %.1f us, p90 %.1f us" % (before.mean, before.p90))
                        print("gem:        mean %.1f us, p90 %.1f us (%.2fx faster mean; "
                              "lower bound %.1f us)" % (after.mean, after.p90,
                                                        before.mean / after.mean,
                                                        after.lower_bound))
                    out = args.out
                    if out is None:
                        fd, out = tempfile.mkstemp(prefix="gem-sglang-", suffix=".json")
                        os.close(fd)
                    mapping.export("sglang", out)
                    with open(out, encoding="utf-8") as f:
                        phys = json.load(f)["physical_to_logical_map"]
                    print("exported SGLang expert locations to %s (%d layers x %d slots); "
                          "layer 0: %s" % (out, len(phys), len(phys[0]), phys[0]))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except gem.GemError as e:
        print("pipeline: %s" % e, file=sys.stderr)
        sys.exit(1)
