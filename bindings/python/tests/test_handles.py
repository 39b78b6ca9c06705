"""Profile, Trace and Mapping: construction, accessors, files, errors, buffers, lifetime."""
import array
import gc
import json
import pathlib
import unittest

import gem

from support import (PROFILE_DICT, PROFILE_JSON, TRACE_COUNTS, TRACE_CSV, TempDirCase,
                     contiguous, hand_profile)

try:
    import numpy
except ImportError:  # numpy is optional: the buffer tests below cover the same paths
    numpy = None


class TestProfile(TempDirCase):
    def test_setters_and_getters(self):
        with hand_profile() as p:
            self.assertEqual(p.num_gpus, 2)
            self.assertEqual(p.curve(1), ([64, 128, 192, 256], [110.0, 220.0, 330.0, 440.0]))
            self.assertEqual(p.overhead(0), 5.0)
            self.assertIs(p.interpolation, gem.Interpolation.STEP)
            self.assertIs(p.cost_model, gem.CostModel.PER_EXPERT)
            # SPEC 2, step interpolation: the next sample at or above x; 0 tokens cost nothing.
            self.assertEqual(p.latency(0, 0), 0.0)
            self.assertEqual(p.latency(0, 1), 100.0)
            self.assertEqual(p.latency(0, 65), 200.0)
            # past the last sample: extrapolate with the last slope
            self.assertAlmostEqual(p.latency(1, 320), 440.0 + 64 * 110.0 / 64)
            p.interpolation = "linear"
            self.assertIs(p.interpolation, gem.Interpolation.LINEAR)
            self.assertAlmostEqual(p.latency(0, 96), 150.0)
            p.cost_model = gem.CostModel.AGGREGATE
            self.assertIs(p.cost_model, gem.CostModel.AGGREGATE)
            speeds = p.speeds()
            self.assertEqual(speeds[0], 1.0)
            self.assertAlmostEqual(speeds[1], 1 / 1.1)
            p.set_gpu_string(0, "name", "L40")
            self.assertEqual(p.gpu_string(0, "name"), "L40")
            self.assertIsNone(p.gpu_string(1, "host"))

    def test_curve_from_buffers(self):
        with gem.Profile(1) as p:
            p.set_curve(0, array.array("q", [64, 128]), memoryview(array.array("d", [1.0, 2.0])),
                        cv=[0.01, 0.02])
            self.assertEqual(p.curve(0), ([64, 128], [1.0, 2.0]))
            p.set_curve(0, array.array("i", [32]), array.array("f", [0.5]))
            self.assertEqual(p.curve(0), ([32], [0.5]))
            if numpy is not None:
                p.set_curve(0, numpy.array([64, 128]), numpy.array([3.0, 4.0]))
                self.assertEqual(p.curve(0), ([64, 128], [3.0, 4.0]))

    def test_bad_curves(self):
        with gem.Profile(1) as p:
            self.assertGemError(gem.Status.INVALID_ARGUMENT, p.set_curve, 0, [64, 128], [1.0])
            e = self.assertGemError(gem.Status.INVALID_INPUT, p.set_curve, 0, [128, 64],
                                    [1.0, 2.0])
            self.assertIn("0", e.message)
            self.assertGemError(gem.Status.OUT_OF_RANGE, p.set_curve, 5, [64], [1.0])
            with self.assertRaises(TypeError):
                p.set_curve(0, ["a"], [1.0])

    def test_file_round_trip(self):
        with hand_profile() as p:
            path = self.path("p.json")
            p.write(pathlib.Path(path))  # os.PathLike works as a path
            with gem.Profile.read(path) as q:
                self.assertEqual(q.curve(1), p.curve(1))
                self.assertEqual(q.overhead(1), 5.0)
            text = p.to_string()
            self.assertEqual(p.to_dict()["format"], "gem-profile")
            with gem.Profile.parse(text) as q, gem.Profile.parse(text.encode()) as r:
                self.assertEqual(q.num_gpus, 2)
                self.assertEqual(r.curve(0), p.curve(0))

    def test_read_spec_example(self):
        with gem.Profile.read(self.write("spec.json", PROFILE_JSON)) as p:
            self.assertEqual(p.num_gpus, 2)
            self.assertEqual(p.gpu_string(1, "name"), "slow")
            self.assertEqual(p.latency(1, 100), 220.0)

    def test_malformed_files(self):
        e = self.assertGemError(gem.Status.INVALID_INPUT, gem.Profile.read,
                                self.write("bad.json", "{\"format\": \"gem-profile\", "))
        self.assertIn("bad.json", e.message)
        bad = json.loads(PROFILE_JSON)
        bad["gpus"][1]["tokens"] = [64, 32, 192, 256]
        e = self.assertGemError(gem.Status.INVALID_INPUT, gem.Profile.parse, json.dumps(bad))
        self.assertIn("tokens", e.message)
        newer = dict(PROFILE_DICT, version=99)
        self.assertGemError(gem.Status.VERSION, gem.Profile.parse, json.dumps(newer))
        self.assertGemError(gem.Status.IO, gem.Profile.read, self.path("missing.json"))

    def test_sim(self):
        with gem.Profile.sim(gpus=3, spread=0.1, seed=2) as p:
            self.assertEqual(p.num_gpus, 3)
            speeds = p.speeds()
            self.assertEqual(max(speeds), 1.0)
            self.assertLess(min(speeds), 1.0)
        with gem.Profile.sim(slowdowns=[1.0, 1.0, 1.5, 1.0, 1.2]) as p:
            self.assertEqual(p.num_gpus, 5)
            s = p.speeds()
            self.assertLess(s[2], s[4])
            self.assertLess(s[4], s[0])
        with gem.Options(sim_gpus=2) as o, gem.Profile.measure("sim", o) as p:
            self.assertEqual(p.num_gpus, 2)
        self.assertGemError(gem.Status.INVALID_ARGUMENT, gem.Profile.sim, gpus=0)

    def test_unsupported_backends(self):
        self.assertGemError(gem.Status.NOT_SUPPORTED, gem.Profile.measure, gem.Backend.HWLOC)

    def test_hardware_backends_answer(self):
        # On a machine without a GPU these fail with a status that says why; with one they
        # work. Either way the call returns, with a message on failure.
        hardware = (gem.Status.NOT_SUPPORTED, gem.Status.NO_DEVICE, gem.Status.DEVICE)
        with gem.Profile.sim(gpus=2) as p:
            for call in (p.add_topology, p.measure_alltoall):
                try:
                    call()
                except gem.GemError as e:
                    self.assertIn(e.status, hardware, str(e))
                    self.assertTrue(e.message)
        try:
            gem.Profile.measure("cuda", profile_max_tokens=128, profile_repeats=1).close()
        except gem.GemError as e:
            self.assertIn(e.status, hardware, str(e))
            if not gem.has_backend("cuda"):
                self.assertEqual(e.status, gem.Status.NOT_SUPPORTED)

    def test_append_and_clone(self):
        with hand_profile() as a, hand_profile() as b:
            c = a.clone()
            a.append(b)
            self.assertEqual(a.num_gpus, 4)
            self.assertEqual(c.num_gpus, 2)
            self.assertEqual(a.curve(3), b.curve(1))
            c.close()
            with self.assertRaises(TypeError):
                a.append("not a profile")

    def test_closed_handle(self):
        p = hand_profile()
        p.close()
        with self.assertRaises(ValueError):
            p.num_gpus
        self.assertEqual(repr(p), "<gem.Profile closed>")


class TestTrace(TempDirCase):
    def test_from_counts_and_get(self):
        with gem.Trace.from_counts(TRACE_COUNTS) as t:
            self.assertEqual(t.shape, (3, 2, 4))
            self.assertEqual((t.num_steps, t.num_layers, t.num_experts, len(t)), (3, 2, 4, 3))
            self.assertEqual(t.get(1, 1), [0.0, 8.0, 1.0, 1.0])
            self.assertEqual(t.to_counts(), [[[float(x) for x in r] for r in s]
                                             for s in TRACE_COUNTS])
            t.validate()

    def test_from_flat_buffer(self):
        flat = array.array("d", [x for s in TRACE_COUNTS for r in s for x in r])
        with gem.Trace.from_counts(flat, num_layers=2, num_experts=4) as t:
            self.assertEqual(t.get(2, 0), [9.0, 0.0, 6.0, 0.0])
        with gem.Trace.from_counts(memoryview(flat).cast("B").cast("d", (3, 2, 4))) as t:
            self.assertEqual(t.shape, (3, 2, 4))
            self.assertEqual(t.get(0, 1), [3.0, 3.0, 3.0, 3.0])
        if numpy is not None:
            with gem.Trace.from_counts(numpy.array(TRACE_COUNTS, dtype=numpy.int64)) as t:
                self.assertEqual(t.get(1, 0), [12.0, 1.0, 0.0, 2.0])
        self.assertGemError(gem.Status.INVALID_ARGUMENT, gem.Trace.from_counts, flat)
        self.assertGemError(gem.Status.INVALID_ARGUMENT, gem.Trace.from_counts,
                            [[[1, 2], [3]]])

    def test_record(self):
        with gem.Trace(1, 4) as t:
            t.record(0, 0, [[0, 1], [1, 3], [2, -1]])        # list of lists, -1 is padding
            t.record(0, 0, array.array("i", [3, 3]), k=2)   # flat buffer with k
            t.record(1, 0, memoryview(array.array("i", [0, 1, 2, 3])).cast("B").cast("i", (2, 2)))
            self.assertEqual(t.get(0, 0), [1.0, 2.0, 1.0, 3.0])
            self.assertEqual(t.get(1, 0), [1.0, 1.0, 1.0, 1.0])
            if numpy is not None:
                t.record(2, 0, numpy.array([[1, 2]], dtype=numpy.int64))
                self.assertEqual(t.get(2, 0), [0.0, 1.0, 1.0, 0.0])
            # ids >= num_experts: an error, and nothing is added
            self.assertGemError(gem.Status.OUT_OF_RANGE, t.record, 0, 0, [[0, 4]])
            self.assertEqual(t.get(0, 0), [1.0, 2.0, 1.0, 3.0])
            self.assertGemError(gem.Status.INVALID_ARGUMENT, t.record, 0, 0, [1, 2, 3])
            self.assertGemError(gem.Status.INVALID_ARGUMENT, t.record, 0, 0, [1, 2, 3], k=2)
            self.assertGemError(gem.Status.INVALID_ARGUMENT, t.record, 0, 0, [[2 ** 40, 1]])

    def test_set_and_incomplete(self):
        with gem.Trace(2, 3) as t:
            t.set(0, 0, [1, 2, 3])
            t.set(1, 1, array.array("d", [0.5, 0, 0]))
            self.assertEqual(t.shape, (2, 2, 3))
            e = self.assertGemError(gem.Status.INCOMPLETE, t.validate)
            self.assertIn("1", e.message)
            self.assertGemError(gem.Status.INVALID_INPUT, t.set, 0, 0, [1, -2, 3])
            self.assertGemError(gem.Status.SHAPE_MISMATCH, t.set, 0, 0, [1, 2])
            self.assertGemError(gem.Status.OUT_OF_RANGE, t.set, 0, 5, [1, 2, 3])

    def test_slice_and_clone(self):
        with gem.Trace.from_counts(TRACE_COUNTS) as t:
            with t.slice(1, 2) as s, t.clone() as c:
                self.assertEqual(s.shape, (2, 2, 4))
                self.assertEqual(s.get(0, 0), t.get(1, 0))
                c.set(0, 0, [0, 0, 0, 0])
                self.assertEqual(t.get(0, 0), [10.0, 0.0, 5.0, 1.0])

    def test_csv_files(self):
        with gem.Trace.read(self.write("t.csv", TRACE_CSV)) as t:
            self.assertEqual(t.shape, (3, 2, 4))
            self.assertEqual(t.get(2, 1), [2.0, 2.0, 5.0, 0.0])
            t.write(self.path("copy.csv"))
            text = t.to_string()
        with gem.Trace.read(self.path("copy.csv")) as u, gem.Trace.parse(text) as v:
            self.assertEqual(u.to_counts(), v.to_counts())

    def test_malformed_csv(self):
        e = self.assertGemError(gem.Status.INVALID_INPUT, gem.Trace.read,
                                self.write("bad.csv", "step,layer,0,1\n0,0,1,x\n"))
        self.assertIn("bad.csv", e.message)
        self.assertIn("2", e.message)  # the line
        self.assertGemError(gem.Status.INVALID_INPUT, gem.Trace.parse, "step,layer,0,1\n0,0,1\n")
        self.assertGemError(gem.Status.INCOMPLETE, gem.Trace.parse,
                            "step,layer,0,1\n0,0,1,1\n2,0,1,1\n")

    def test_synthesize(self):
        with gem.Trace.synthesize(16, 2, 8, tokens_per_step=64, skew=0.8, seed=3) as a, \
                gem.Trace.synthesize(16, 2, 8, tokens_per_step=64, skew=0.8, seed=3) as b:
            self.assertEqual(a.shape, (16, 2, 8))
            self.assertEqual(a.to_counts(), b.to_counts())
            a.validate()

    def test_import_sglang(self):
        counts = [[[5, 0, 1, 2], [1, 1, 1, 1]], [[4, 1, 0, 3], [0, 2, 2, 0]]]
        path = self.write("dist.json", json.dumps({"logical_count": counts}))
        with gem.Trace.import_("sglang", path) as t:
            self.assertEqual(t.shape, (2, 2, 4))
            self.assertEqual(t.get(1, 0), [4.0, 1.0, 0.0, 3.0])
            self.assertIsInstance(t.import_note, str)
        with gem.Trace.import_buffer(gem.ImportFormat.SGLANG,
                                     json.dumps({"logical_count": counts})) as t:
            self.assertEqual(t.get(0, 1), [1.0, 1.0, 1.0, 1.0])
        e = self.assertGemError(gem.Status.INVALID_INPUT, gem.Trace.import_, "sglang",
                                self.write("bad.json", "{\"logical_count\": 3}"))
        self.assertIn("bad.json", e.message)
        with self.assertRaises(gem.GemError):
            gem.Trace.import_("no_such_format", path)

    def test_lifetime(self):
        t = gem.Trace(1, 2)
        self.assertIn("steps=0", repr(t))
        del t
        gc.collect()
        t = gem.Trace(1, 2)
        t.close()
        t.close()
        with self.assertRaises(ValueError):
            t.set(0, 0, [1, 2])


class TestBuffers(TempDirCase):
    """Inputs of every kind numpy would give, made without numpy."""

    def test_foreign_item_types_are_converted(self):
        import ctypes
        with gem.Trace(1, 4) as t:
            t.record(0, 0, array.array("l", [0, 1, 2, 3]), k=2)    # int64 items -> int32
            t.record(0, 0, array.array("B", [3, 3]), k=1)          # unsigned bytes
            t.record(0, 0, (ctypes.c_int32 * 2)(1, 2), k=2)        # format '<i'
            self.assertEqual(t.get(0, 0), [1.0, 2.0, 2.0, 3.0])
            t.set(0, 0, (ctypes.c_double * 4)(4, 3, 2, 1))         # format '<d'
            self.assertEqual(t.get(0, 0), [4.0, 3.0, 2.0, 1.0])
            t.set(0, 0, array.array("f", [0.5, 1.5, 2.5, 3.5]))    # float32 -> double
            self.assertEqual(t.get(0, 0), [0.5, 1.5, 2.5, 3.5])
            t.set(0, 0, range(4))                                  # any iterable
            self.assertEqual(t.get(0, 0), [0.0, 1.0, 2.0, 3.0])

    def test_strided_and_shaped_buffers(self):
        with gem.Trace(1, 3) as t:
            data = array.array("d", [1, -1, 2, -1, 3, -1])
            t.set(0, 0, memoryview(data)[::2])                     # not contiguous
            self.assertEqual(t.get(0, 0), [1.0, 2.0, 3.0])
            ids = memoryview(array.array("i", [0, 1, 1, 2, 2, 0])).cast("B").cast("i", (3, 2))
            t.record(1, 0, ids)                                    # 2-d: k from the shape
            self.assertEqual(t.get(1, 0), [2.0, 2.0, 2.0])

    def test_bad_inputs(self):
        with gem.Trace(1, 2) as t:
            with self.assertRaises(TypeError):
                t.set(0, 0, "12")
            with self.assertRaises(TypeError):
                t.set(0, 0, [1.0, "2"])
            with self.assertRaises(TypeError):
                t.set(0, 0, None)
            with self.assertRaises(TypeError):
                t.record(0, 0, [0.5, 1], k=1)
            self.assertGemError(gem.Status.INVALID_ARGUMENT, t.record, 0, 0, [[0, 1], [1]])


class TestMapping(TempDirCase):
    def test_build_and_query(self):
        with gem.Mapping(2, 1, 3) as m:
            m.add(0, 0, 0)
            m.add(0, 1, 1)
            m.add(0, 2, 0, 0.25)
            m.add(0, 2, 1, 0.75)
            m.validate()
            self.assertEqual(m.shape, (2, 1, 3))
            self.assertEqual(m.num_placements(0), 4)
            self.assertEqual(m.get(0, 3), gem.Placement(2, 1, 0.75))
            self.assertEqual(m.placements(0)[0], (0, 0, 1.0))
            self.assertEqual(m.expert_gpu(0, 1), 1)
            self.assertGemError(gem.Status.INVALID_ARGUMENT, m.expert_gpu, 0, 2)  # replicated
            self.assertEqual(m.gpu_slots(0, 0), 2)
            self.assertIsNone(m.policy_name)
            m.policy_name = "by hand"
            self.assertEqual(m.policy_name, "by hand")
            self.assertGemError(gem.Status.INVALID_INPUT, m.add, 0, 0, 0, 1.0)  # twice on GPU 0
            m.clear_layer(0)
            self.assertEqual(m.num_placements(0), 0)
            e = self.assertGemError(gem.Status.INVALID_INPUT, m.validate)
            self.assertIn("0", e.message)

    def test_files_and_clone(self):
        with contiguous(2, 2, 4) as m:
            m.policy_name = "contiguous"
            m.write(self.path("m.json"))
            with gem.Mapping.read(self.path("m.json")) as r, m.clone() as c:
                self.assertEqual(r.placements(1), m.placements(1))
                self.assertEqual(r.policy_name, "contiguous")
                self.assertEqual(c.to_dict(), m.to_dict())
            d = m.to_dict()
            self.assertEqual(d["format"], "gem-mapping")
            self.assertEqual(d["num_experts"], 4)
            with gem.Mapping.parse(m.to_string()) as p:
                self.assertEqual(p.shape, (2, 2, 4))

    def test_malformed_mapping(self):
        e = self.assertGemError(gem.Status.INVALID_INPUT, gem.Mapping.read,
                                self.write("bad.json", "[1, 2"))
        self.assertIn("bad.json", e.message)
        bad = {"format": "gem-mapping", "version": 1, "num_gpus": 2, "num_layers": 1,
               "num_experts": 2, "layers": [{"placements": [[0, 0, 1.0], [1, 7, 1.0]]}]}
        with self.assertRaises(gem.GemError) as cm:
            gem.Mapping.parse(json.dumps(bad))
        self.assertIn(cm.exception.status, (gem.Status.INVALID_INPUT, gem.Status.OUT_OF_RANGE))

    def test_export(self):
        with contiguous(2, 2, 4) as m:
            d = json.loads(m.export_string("sglang"))
            self.assertEqual(d["physical_to_logical_map"], [[0, 1, 2, 3], [0, 1, 2, 3]])
            m.export(gem.ExportFormat.SGLANG, self.path("f.json"))
            with open(self.path("f.json"), encoding="utf-8") as f:
                self.assertEqual(json.load(f), d)
            eplb = json.loads(m.export_string("eplb"))
            self.assertIn("phy2log", eplb)
            self.assertTrue(m.export_string("trtllm"))

    def test_export_first_dense_layers(self):
        with contiguous(2, 2, 4) as m:
            plain = m.export_string("sglang")
            self.assertEqual(m.export_string("sglang", first_dense_layers=0), plain)
            d = json.loads(m.export_string("sglang", first_dense_layers=3))
            self.assertEqual(d["physical_to_logical_map"], [[0, 1, 2, 3]] * 5)
            with gem.Options(first_dense_layers=2) as o:
                m.export("eplb", self.path("e.json"), o)
            with open(self.path("e.json"), encoding="utf-8") as f:
                self.assertEqual(len(json.load(f)["logcnt"]), 4)
            trt = m.export_string("trtllm", first_dense_layers=3)
            self.assertIn("\n  3: [0, 1, 2, 3]\n  4: [0, 1, 2, 3]\n", trt)
            self.assertGemError(gem.Status.INVALID_ARGUMENT, m.export_string, "sglang",
                                first_dense_layers=65537)

    def test_export_refuses_unequal_slots(self):
        with gem.Mapping(2, 1, 3) as m:
            m.add(0, 0, 0)
            m.add(0, 1, 0)
            m.add(0, 2, 1)
            e = self.assertGemError(gem.Status.NOT_SUPPORTED, m.export_string, "sglang")
            self.assertTrue(e.message)


if __name__ == "__main__":
    unittest.main()
