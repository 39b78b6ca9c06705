"""Round trip against the C command-line tool: import an SGLang routing file, map it with policy
gem and a fixed seed, export it for SGLang; the bindings and `gem` must write the same map."""
import json
import subprocess
import unittest

import gem

from support import TempDirCase, cli_path

# 2 layers x 16 experts of aggregate counts (SGLang's expert-distribution recorder); the
# importer draws steps of top-8 routing from them.
LOGICAL_COUNT = [
    [900, 40, 310, 15, 620, 75, 205, 30, 1200, 5, 60, 410, 90, 700, 20, 150],
    [120, 800, 95, 410, 60, 330, 25, 500, 10, 990, 45, 70, 640, 35, 280, 15],
]
# The same layers recorded per step: [step][layer][expert].
LOGICAL_COUNT_STEPS = [
    [[90, 4, 31, 2, 62, 7, 20, 3], [12, 80, 9, 41, 6, 33, 2, 50]],
    [[10, 60, 2, 40, 1, 33, 9, 0], [70, 2, 33, 1, 0, 44, 5, 20]],
    [[88, 1, 30, 0, 65, 9, 22, 1], [11, 79, 10, 40, 7, 30, 3, 49]],
    [[5, 5, 5, 5, 90, 80, 1, 1], [30, 30, 30, 30, 2, 2, 60, 60]],
]


class TestRoundTrip(TempDirCase):
    def setUp(self):
        super().setUp()
        self.cli = cli_path()
        if self.cli is None:
            self.skipTest("the gem command-line tool is not built (looked next to %s, in "
                          "$GEM_CLI and in build/gem)" % gem.library_path)

    def run_cli(self, *args):
        proc = subprocess.run([self.cli] + list(args), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True, timeout=300)
        self.assertEqual(proc.returncode, 0, "gem %s failed:\n%s%s"
                         % (" ".join(args), proc.stdout, proc.stderr))
        return proc.stdout

    def round_trip(self, counts):
        src = self.write("in.json", json.dumps({"logical_count": counts}))
        with gem.Profile.sim(gpus=4, spread=0.077, seed=1) as p:
            p.write(self.path("p.json"))
        # the C tool
        self.run_cli("import", "--format", "sglang", src, "-o", self.path("t.csv"))
        self.run_cli("map", "--policy", "gem", "--profile", self.path("p.json"), "--trace",
                     self.path("t.csv"), "-o", self.path("m.json"), "--seed", "1")
        self.run_cli("export", "--format", "sglang", "--mapping", self.path("m.json"), "-o",
                     self.path("f.json"))
        with open(self.path("f.json"), encoding="utf-8") as f:
            expected = json.load(f)
        # the bindings, from the same files
        with gem.Profile.read(self.path("p.json")) as p, \
                gem.Trace.import_("sglang", src) as t, \
                gem.compute_mapping(p, t, policy="gem", seed=1) as m:
            with gem.Trace.read(self.path("t.csv")) as t_cli:
                self.assertEqual(t.to_counts(), t_cli.to_counts(),
                                 "the bindings and the tool imported different traces")
            got = json.loads(m.export_string("sglang"))
            m.export("sglang", self.path("f2.json"))
        self.assertEqual(got, expected)
        with open(self.path("f2.json"), encoding="utf-8") as f:
            self.assertEqual(json.load(f), expected)
        phys = got["physical_to_logical_map"]
        per_step = isinstance(counts[0][0], list)
        layers, experts = (len(counts[0]), len(counts[0][0])) if per_step else \
            (len(counts), len(counts[0]))
        self.assertEqual(len(phys), layers)
        for layer in phys:
            self.assertEqual(sorted(layer), list(range(experts)))

    def test_aggregate_counts(self):
        self.round_trip(LOGICAL_COUNT)

    def test_per_step_counts(self):
        self.round_trip(LOGICAL_COUNT_STEPS)


if __name__ == "__main__":
    unittest.main()
