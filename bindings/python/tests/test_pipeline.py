"""classify, compute_mapping, evaluate (Report), callbacks and the experimental re-mapping."""
import json
import math
import unittest

import gem
from gem import _lib

from support import PROFILE_DICT, TRACE_COUNTS, TempDirCase, contiguous, hand_profile


def ref_latency(gpu, x):
    """SPEC 2's f_g(x), step interpolation, for the GPUs of PROFILE_DICT."""
    t, lat = PROFILE_DICT["gpus"][gpu]["tokens"], PROFILE_DICT["gpus"][gpu]["latency_us"]
    if x <= 0:
        return 0.0
    for n, v in zip(t, lat):
        if x <= n:
            return v
    return lat[-1] + (x - t[-1]) * (lat[-1] - lat[-2]) / (t[-1] - t[-2])


def ref_steps(counts, gpu_of):
    """Step latencies of SPEC 2 (per-expert cost model) for an unreplicated mapping."""
    out = []
    for layers in counts:
        total = 0.0
        for l, row in enumerate(layers):
            times = [PROFILE_DICT["gpus"][g]["overhead_us"] for g in range(2)]
            for e, n in enumerate(row):
                g = gpu_of[l][e]
                times[g] += ref_latency(g, n)
            total += max(times)
        out.append(total)
    return out


class TestEvaluate(TempDirCase):
    def test_matches_the_cost_model(self):
        with hand_profile() as p, gem.Trace.from_counts(TRACE_COUNTS) as t, \
                contiguous(2, 2, 4) as m:
            gpu_of = [[m.expert_gpu(l, e) for e in range(4)] for l in range(2)]
            steps = ref_steps(TRACE_COUNTS, gpu_of)
            with gem.evaluate(p, t, m) as r:
                self.assertEqual(r.steps, 3)
                self.assertAlmostEqual(r.mean, sum(steps) / 3, delta=1e-9 * r.mean)
                self.assertAlmostEqual(r.total, sum(steps), delta=1e-9 * r.total)
                self.assertAlmostEqual(r.max, max(steps), delta=1e-9 * r.max)
                srt = sorted(steps)
                self.assertAlmostEqual(r.p50, srt[math.ceil(0.5 * 3) - 1], delta=1e-6)
                self.assertAlmostEqual(r.p90, srt[math.ceil(0.9 * 3) - 1], delta=1e-6)
                self.assertAlmostEqual(r.p99, srt[2], delta=1e-6)
                self.assertEqual(r.get("mean"), r.mean)
                self.assertEqual(r.get(gem.Metric.P90), r.p90)
                for s in range(3):
                    self.assertAlmostEqual(r.step(s), steps[s], delta=1e-9 * steps[s])
                self.assertEqual(len(r.step_latencies()), 3)
                self.assertLessEqual(r.lower_bound, r.mean * (1 + 1e-12))
                self.assertGreaterEqual(r.imbalance, 1.0)
                gpus = r.gpus()
                self.assertEqual(len(gpus), 2)
                self.assertEqual(sum(c for _, c in gpus), 3 * 2)  # one straggler per (s, l)
                self.assertTrue(all(busy > 0 for busy, _ in gpus))
                d = r.to_dict()
                for key in ("mean", "p50", "p90", "p99", "total"):
                    self.assertAlmostEqual(d[key], r.get(key), delta=1e-9 * r.mean)
                self.assertEqual(json.loads(r.to_json()), d)
                self.assertIn("mean=", repr(r))
                self.assertGemError(gem.Status.OUT_OF_RANGE, r.step, 3)
                self.assertGemError(gem.Status.OUT_OF_RANGE, r.gpu, 2)

    def test_bound_slots(self):
        # the bound over mappings with these experts per GPU lies between the general bound
        # and the mapping's own mean, and the figures themselves do not change
        with hand_profile() as p, gem.Trace.from_counts(TRACE_COUNTS) as t, \
                contiguous(2, 2, 4) as m:
            with gem.evaluate(p, t, m) as r, gem.evaluate(p, t, m, bound_slots=1) as s:
                self.assertEqual(s.mean, r.mean)
                self.assertGreaterEqual(s.lower_bound, r.lower_bound * (1 - 1e-12))
                self.assertLessEqual(s.lower_bound, s.mean * (1 + 1e-12))
            self.assertGemError(gem.Status.INVALID_ARGUMENT, gem.evaluate, p, t, m,
                                bound_slots=2)

    def test_errors(self):
        with hand_profile() as p, gem.Trace.from_counts(TRACE_COUNTS) as t:
            with contiguous(2, 2, 5) as wrong:
                e = self.assertGemError(gem.Status.SHAPE_MISMATCH, gem.evaluate, p, t, wrong)
                self.assertTrue(e.message)
            with gem.Trace(2, 4) as partial, contiguous(2, 2, 4) as m:
                partial.set(1, 0, [1, 1, 1, 1])
                self.assertGemError(gem.Status.INCOMPLETE, gem.evaluate, p, partial, m)
            with self.assertRaises(TypeError):
                gem.evaluate(t, p, None)
        with self.assertRaises(TypeError):
            gem.Report()

    def test_report_outlives_inputs(self):
        p, t, m = hand_profile(), gem.Trace.from_counts(TRACE_COUNTS), contiguous(2, 2, 4)
        r = gem.evaluate(p, t, m)
        p.close(), t.close(), m.close()
        self.assertEqual(r.steps, 3)
        r.close()
        with self.assertRaises(ValueError):
            r.mean


class TestClassify(TempDirCase):
    def test_classes(self):
        counts = [[[100, 0, 1, 1]], [[100, 50, 1, 0]], [[100, 0, 0, 1]], [[100, 0, 1, 1]]]
        with gem.Trace.from_counts(counts) as t, gem.classify(t) as c:
            self.assertEqual(c.shape, (4, 1, 4))
            info = c.get(0, 0)
            self.assertIs(info.cls, gem.ExpertClass.CONSISTENT)
            self.assertEqual(info.heavy_fraction, 1.0)
            self.assertEqual(info.mean_load, 100.0)
            self.assertEqual(info.mean_heavy_load, 100.0)
            self.assertIs(c.expert_class(0, 1), gem.ExpertClass.TEMPORAL)  # heavy in 1 of 4
            self.assertIs(c.expert_class(0, 3), gem.ExpertClass.COLD)
            self.assertEqual(len(c.classes(0)), 4)
            self.assertEqual(sum(c.counts().values()), 4)
            self.assertEqual(c.coactivation(0, 0, 1), 1)
            self.assertEqual(c.coactivation(0, 0, 0), 4)
            self.assertGemError(gem.Status.OUT_OF_RANGE, c.get, 0, 4)
        with gem.Trace.from_counts(counts) as t, gem.classify(t, consistent_min=1.0,
                                                              temporal_min=0.5) as c:
            self.assertIs(c.expert_class(0, 1), gem.ExpertClass.COLD)
        with self.assertRaises(TypeError):
            gem.Classification()

    def test_incomplete(self):
        with gem.Trace(1, 2) as t:
            t.set(1, 0, [1, 2])
            self.assertGemError(gem.Status.INCOMPLETE, gem.classify, t)


class TestComputeMapping(TempDirCase):
    def test_policies(self):
        with gem.Profile.sim(gpus=4, seed=1) as p, \
                gem.Trace.synthesize(32, 2, 8, tokens_per_step=128, skew=0.7, seed=2) as t:
            results = {}
            for policy in gem.Policy:
                if policy == gem.Policy.EXACT:
                    continue  # branch and bound: covered by the C tests
                with gem.compute_mapping(p, t, policy, seed=1) as m:
                    m.validate()
                    self.assertEqual(m.shape, (4, 2, 8))
                    with gem.evaluate(p, t, m) as r:
                        results[policy] = r.mean
            with gem.compute_mapping(p, t, "contiguous") as m:
                self.assertEqual([m.expert_gpu(0, e) for e in range(8)],
                                 [0, 0, 1, 1, 2, 2, 3, 3])
            # the search starts from the simple policies' answers: never worse than contiguous
            self.assertLessEqual(results[gem.Policy.GEM], results[gem.Policy.CONTIGUOUS])

    def test_deterministic_and_options(self):
        with gem.Profile.sim(gpus=4, seed=1) as p, \
                gem.Trace.synthesize(16, 2, 8, tokens_per_step=128, skew=0.7, seed=2) as t, \
                gem.Options(seed=5, restarts=2) as o:
            a = gem.compute_mapping(p, t, "gem", options=o)
            b = gem.compute_mapping(p, t, gem.Policy.GEM, options=o, threads=1)
            with gem.classify(t) as c:
                d = gem.compute_mapping(p, t, "gem", options=o, classification=c)
            self.assertEqual(a.to_dict()["layers"], b.to_dict()["layers"])
            self.assertEqual(a.to_dict()["layers"], d.to_dict()["layers"])
            self.assertEqual(o["threads"], 0)  # keywords went to a temporary copy
            self.assertEqual(a.policy_name, "gem")
            for m in (a, b, d):
                m.close()

    def test_replicas(self):
        with gem.Profile.sim(gpus=4, seed=1) as p, \
                gem.Trace.synthesize(16, 1, 8, tokens_per_step=128, skew=0.9, seed=2) as t, \
                gem.compute_mapping(p, t, "eplb", redundant_slots=4) as m:
            m.validate()
            self.assertEqual(m.num_placements(0), 12)

    def test_errors(self):
        with gem.Profile.sim(gpus=4, seed=1) as p, gem.Trace(1, 8) as t:
            t.set(1, 0, [1] * 8)
            self.assertGemError(gem.Status.INCOMPLETE, gem.compute_mapping, p, t)
            self.assertGemError(gem.Status.INVALID_ARGUMENT, gem.compute_mapping, p, t,
                                "no-such-policy")
        with gem.Profile.sim(gpus=4, seed=1) as p, \
                gem.Trace.synthesize(4, 1, 8, tokens_per_step=64, skew=0.5, seed=1) as t, \
                gem.Trace.synthesize(4, 2, 8, tokens_per_step=64, skew=0.5, seed=1) as t2, \
                gem.classify(t2) as c:
            self.assertGemError(gem.Status.SHAPE_MISMATCH, gem.compute_mapping, p, t, "gem",
                                classification=c)
            # 8 experts cannot fit in 4 GPUs of one expert's memory each
            self.assertGemError(gem.Status.INFEASIBLE, gem.compute_mapping, p, t, "gem",
                                expert_bytes=1000, gpu_memory=[1000] * 4)


class TestCallbacks(TempDirCase):
    def test_runner_profile(self):
        def runner(device, tokens):
            return (1.0 + 0.5 * device) * (10.0 + tokens / 64.0)
        with gem.Options(profile_max_tokens=512, profile_repeats=1, profile_warmup_ms=0) as o:
            o.set_runner(runner, 2)
            with gem.Profile.measure("callback", o) as p:
                self.assertEqual(p.num_gpus, 2)
                s = p.speeds()
                self.assertEqual(s[0], 1.0)
                self.assertAlmostEqual(s[1], 1 / 1.5, places=6)

    def test_runner_exception_becomes_cause(self):
        class Boom(Exception):
            pass

        def runner(device, tokens):
            raise Boom("runner failed on device %d" % device)
        with gem.Options(profile_max_tokens=256, profile_repeats=1, profile_warmup_ms=0) as o:
            o.set_runner(runner, 1)
            with self.assertRaises(gem.GemError) as cm:
                gem.Profile.measure("callback", o)
            self.assertIsInstance(cm.exception.__cause__, Boom)
            self.assertTrue(cm.exception.message)

    def test_progress_and_cancel(self):
        with gem.Profile.sim(gpus=4, seed=1) as p, \
                gem.Trace.synthesize(16, 2, 8, tokens_per_step=128, skew=0.7, seed=2) as t, \
                gem.Options(seed=1) as o:
            calls = []
            o.set_progress(lambda what, done, total: calls.append((what, done, total)))
            gem.compute_mapping(p, t, "gem", options=o).close()
            if not calls:
                self.skipTest("policy gem reports no progress in this build")
            self.assertTrue(all(isinstance(w, str) for w, _, _ in calls))
            o.set_progress(lambda what, done, total: True)
            self.assertGemError(gem.Status.CANCELLED, gem.compute_mapping, p, t, "gem",
                                options=o)

            def broken(what, done, total):
                raise KeyError("from progress")
            o.set_progress(broken)
            with self.assertRaises(gem.GemError) as cm:
                gem.compute_mapping(p, t, "gem", options=o)
            self.assertEqual(cm.exception.status, gem.Status.CANCELLED)
            self.assertIsInstance(cm.exception.__cause__, KeyError)


class TestExperimental(TempDirCase):
    def setUp(self):
        super().setUp()
        if "gem_remap" in _lib.missing or "gem_drift" in _lib.missing:
            self.skipTest("this libgem has no experimental re-mapping")

    def test_remap_and_drift(self):
        with gem.Profile.sim(gpus=4, seed=1) as p, \
                gem.Trace.synthesize(32, 2, 8, tokens_per_step=128, skew=0.8, seed=2) as t:
            first, second = t.slice(0, 16), t.slice(16, 16)
            with gem.compute_mapping(p, first, "gem", seed=1) as m:
                ratio = gem.drift(p, first, second, m)
                self.assertGreater(ratio, 0)
                with gem.remap(p, second, m, max_moves=2) as r:
                    self.assertGreaterEqual(r.moves, 0)
                    self.assertLessEqual(r.moves, 2)
                    self.assertLessEqual(r.remapped_us, r.current_us * (1 + 1e-9))
                    self.assertIsInstance(r.recommend, bool)
                    mm = r.mapping
                mm.validate()  # the copy outlives the result
                mm.close()
            first.close(), second.close()


if __name__ == "__main__":
    unittest.main()
