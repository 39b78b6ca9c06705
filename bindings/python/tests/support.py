"""Fixtures shared by the tests: small hand-made profiles, traces and files."""
import json
import os
import shutil
import tempfile
import unittest

import gem

# Two GPUs, the second 10% slower; step interpolation on 64-token tiles.
PROFILE_DICT = {
    "format": "gem-profile", "version": 1,
    "interpolation": "step", "cost_model": "per_expert",
    "model": {"name": "Tiny", "hidden": 64, "ffn": 128, "dtype": "bf16"},
    "gpus": [
        {"id": 0, "name": "fast", "overhead_us": 5.0,
         "tokens": [64, 128, 192, 256], "latency_us": [100.0, 200.0, 300.0, 400.0]},
        {"id": 1, "name": "slow", "overhead_us": 5.0,
         "tokens": [64, 128, 192, 256], "latency_us": [110.0, 220.0, 330.0, 440.0]},
    ],
}
PROFILE_JSON = json.dumps(PROFILE_DICT)

# 3 steps x 2 layers x 4 experts.
TRACE_COUNTS = [
    [[10, 0, 5, 1], [3, 3, 3, 3]],
    [[12, 1, 0, 2], [0, 8, 1, 1]],
    [[9, 0, 6, 0], [2, 2, 5, 0]],
]
TRACE_CSV = "# a comment\nstep,layer,0,1,2,3\n" + "".join(
    "%d,%d,%s\n" % (s, l, ",".join(str(x) for x in row))
    for s, layers in enumerate(TRACE_COUNTS) for l, row in enumerate(layers))


def hand_profile():
    """The profile of PROFILE_DICT built through the setters."""
    p = gem.Profile(2)
    for g, gpu in enumerate(PROFILE_DICT["gpus"]):
        p.set_curve(g, gpu["tokens"], gpu["latency_us"])
        p.set_overhead(g, gpu["overhead_us"])
    return p


def contiguous(num_gpus, num_layers, num_experts):
    m = gem.Mapping(num_gpus, num_layers, num_experts)
    for l in range(num_layers):
        for e in range(num_experts):
            m.add(l, e, e * num_gpus // num_experts)
    return m


def cli_path():
    """The gem command-line tool next to the library under test, or None."""
    cand = []
    if os.environ.get("GEM_CLI"):
        cand.append(os.environ["GEM_CLI"])
    cand.append(os.path.join(os.path.dirname(os.path.realpath(gem.library_path)), "gem"))
    here = os.path.dirname(os.path.abspath(__file__))
    cand.append(os.path.normpath(os.path.join(here, "..", "..", "..", "build", "gem")))
    for c in cand:
        if os.path.isfile(c) and os.access(c, os.X_OK):
            return c
    return None


class TempDirCase(unittest.TestCase):
    """A TestCase with a fresh temporary directory self.dir."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="gem-py-")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def path(self, name):
        return os.path.join(self.dir, name)

    def write(self, name, text):
        p = self.path(name)
        with open(p, "w", encoding="utf-8") as f:
            f.write(text)
        return p

    def assertGemError(self, status, func, *args, **kwargs):
        with self.assertRaises(gem.GemError) as cm:
            func(*args, **kwargs)
        self.assertEqual(cm.exception.status, status, str(cm.exception))
        self.assertIsInstance(cm.exception.status, gem.Status)
        self.assertTrue(cm.exception.message, "GemError without a message")
        return cm.exception
