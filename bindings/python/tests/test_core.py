"""Version, statuses, enumerations, errors and the Options handle."""
import array
import gc
import pickle
import unittest

import gem
from gem import _lib

from support import TempDirCase


class TestLibrary(unittest.TestCase):
    def test_version(self):
        self.assertEqual(gem.version(), 10000)
        self.assertEqual(gem.version_string(), "1.0.0")
        self.assertEqual(gem.__version__, gem.version_string())

    def test_every_function_is_bound(self):
        # Every function of gem.h has a prototype; the loaded library must have all of the
        # stable ones (the experimental ones are optional).
        experimental = {"gem_remap", "gem_remap_result_destroy", "gem_remap_result_get",
                        "gem_remap_result_mapping", "gem_drift"}
        self.assertEqual([f for f in _lib.missing if f not in experimental], [])
        names = {p[0] for p in _lib._PROTOTYPES}
        self.assertEqual(len(names), len(_lib._PROTOTYPES))
        self.assertGreaterEqual(len(names), 101)

    def test_prototypes_match_header(self):
        import os
        import re
        header = os.path.join(os.path.dirname(__file__), "..", "..", "..", "include", "gem.h")
        if not os.path.exists(header):
            self.skipTest("gem.h not found next to the bindings")
        with open(header, encoding="utf-8") as f:
            text = f.read()
        text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)  # comments name no functions
        declared = set(re.findall(r"\b(gem_[a-z0-9_]+)\s*\(", text))
        self.assertEqual(declared - {p[0] for p in _lib._PROTOTYPES}, set())
        # Same number of parameters, and pointer parameters where the header has pointers.
        protos = {name: argtypes for name, _, argtypes in _lib._PROTOTYPES}
        decls = re.findall(r"GEM_API\s+[^;(]*?\b(gem_[a-z0-9_]+)\s*\(([^)]*)\)\s*;", text)
        self.assertGreaterEqual(len(decls), 101)
        for name, params in decls:
            params = " ".join(params.split())
            plist = [] if params in ("", "void") else [p.strip() for p in params.split(",")]
            self.assertEqual(len(plist), len(protos[name]), name)
            for p, t in zip(plist, protos[name]):
                self.assertEqual(self.expected_ctype(p), t, "%s: parameter %r" % (name, p))

    @staticmethod
    def expected_ctype(param):
        """The ctypes type a C parameter declaration of gem.h needs."""
        import ctypes
        stars = param.count("*")
        words = [w for w in param.replace("*", " ").split() if w != "const"][:-1]
        base = words[0]
        scalars = {"int32_t": ctypes.c_int32, "int64_t": ctypes.c_int64,
                   "uint64_t": ctypes.c_uint64, "size_t": ctypes.c_size_t,
                   "double": ctypes.c_double, "int": ctypes.c_int}
        if base == "gem_runner_fn":
            return _lib.RUNNER_FN
        if base == "gem_progress_fn":
            return _lib.PROGRESS_FN
        handle = base.startswith("gem_") and base[4:-2] in (
            "options", "profile", "trace", "mapping", "classification", "report", "remap_result")
        if base in scalars:
            t = scalars[base]
        elif base == "char":
            t = ctypes.c_char
        elif base == "void":
            t = None
        elif handle:
            t = "handle"
        else:  # an enumeration
            t = ctypes.c_int
        if stars == 0:
            return t
        if stars == 1:
            if t == "handle" or t is None:
                return ctypes.c_void_p
            return ctypes.c_char_p if t is ctypes.c_char else ctypes.POINTER(t)
        if t == "handle" or (t is ctypes.c_char and "const" not in param):
            return ctypes.POINTER(ctypes.c_void_p)  # out handle, or char ** we free
        return ctypes.POINTER(ctypes.c_char_p)      # const char **

    def test_status_strings(self):
        self.assertEqual(gem.status_string(gem.Status.OK), "ok")
        for s in gem.Status:
            self.assertTrue(gem.status_string(s))
        gem.Options().close()  # a successful call clears the message
        self.assertEqual(gem.last_error(), "")

    def test_names(self):
        self.assertEqual(gem.policy_name(gem.Policy.GEM), "gem")
        self.assertEqual(gem.policy_name("contiguous"), "contiguous")
        self.assertIs(gem.policy_from_name("gem"), gem.Policy.GEM)
        for p in gem.Policy:
            self.assertIs(gem.policy_from_name(gem.policy_name(p)), p)
        self.assertEqual(gem.class_name(gem.ExpertClass.TEMPORAL), "temporal")
        self.assertEqual(gem.backend_name("sim"), "sim")
        self.assertTrue(gem.has_backend(gem.Backend.SIM))
        self.assertIsInstance(gem.has_backend("cuda"), bool)

    def test_policy_from_bad_name(self):
        with self.assertRaises(gem.GemError) as cm:
            gem.policy_from_name("no-such-policy")
        self.assertEqual(cm.exception.status, gem.Status.INVALID_ARGUMENT)
        self.assertIn("gem", cm.exception.message)  # it lists the valid names


class TestLoading(unittest.TestCase):
    """How the package finds libgem (run in fresh interpreters)."""

    def load(self, **env):
        import os
        import subprocess
        import sys
        e = {k: v for k, v in os.environ.items() if k not in ("GEM_LIBRARY", "GEM_BUILD_DIR")}
        e.update(env)
        pkg = os.path.dirname(os.path.dirname(os.path.abspath(gem.__file__)))
        return subprocess.run([sys.executable, "-c", "import gem; print(gem.library_path)"],
                              cwd=pkg, env=e, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True)

    def test_build_dir(self):
        import os
        d = os.path.dirname(gem.library_path)
        r = self.load(GEM_BUILD_DIR=d)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertEqual(r.stdout.strip(), os.path.join(d, "libgem.so.1"))

    def test_bad_explicit_path(self):
        r = self.load(GEM_LIBRARY="/nonexistent/libgem.so.1")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("ImportError", r.stderr)
        self.assertIn("GEM_LIBRARY", r.stderr)
        self.assertIn("/nonexistent/libgem.so.1", r.stderr)


class TestGemError(unittest.TestCase):
    def test_fields_and_str(self):
        e = gem.GemError(2, "bad.csv:3: not a number")
        self.assertIs(e.status, gem.Status.INVALID_INPUT)
        self.assertEqual(e.message, "bad.csv:3: not a number")
        self.assertIn("INVALID_INPUT", str(e))
        self.assertIn("bad.csv:3", str(e))
        e2 = pickle.loads(pickle.dumps(e))
        self.assertEqual((e2.status, e2.message), (e.status, e.message))

    def test_unknown_status_stays_int(self):
        e = gem.GemError(999, "from the future")
        self.assertEqual(e.status, 999)
        self.assertIn("999", str(e))

    def test_errors_carry_the_library_message(self):
        with self.assertRaises(gem.GemError) as cm:
            gem.Trace(0, 4)
        self.assertEqual(cm.exception.status, gem.Status.INVALID_ARGUMENT)
        self.assertTrue(cm.exception.message)


class TestEnums(unittest.TestCase):
    def test_values_match_header(self):
        self.assertEqual(gem.Status.CANCELLED, 15)
        self.assertEqual(gem.Policy.EXACT, 6)
        self.assertEqual(gem.Option.SIM_MEMORY_GB, 44)
        self.assertEqual(gem.Option.FIRST_DENSE_LAYERS, 45)
        self.assertEqual(gem.Option.EXPERTS_PER_TOKEN, 46)
        self.assertEqual(gem.Option.BOUND_SLOTS, 47)
        self.assertEqual(gem.Metric.IMBALANCE, 8)
        self.assertEqual(gem.ImportFormat.TOKENS_JSONL, 2)
        self.assertEqual(gem.ExportFormat.TRTLLM, 2)
        self.assertEqual(gem.Backend.MPI, 5)
        self.assertEqual(gem.DType.FP32, 3)
        self.assertEqual(len(gem.Option), 48)


class TestOptions(TempDirCase):
    def test_defaults(self):
        with gem.Options() as o:
            self.assertEqual(o.get(gem.Option.SEED), 1)
            self.assertEqual(o["restarts"], 4)
            self.assertAlmostEqual(o["sim_spread"], 0.077)
            self.assertIs(o["objective"], gem.Objective.MEAN)
            # unset string options read as None: the library's default applies
            self.assertIsNone(o["model_name"])
            self.assertIsNone(o["import_filter"])
            self.assertEqual(o["gpu_memory"], [])
            self.assertEqual(o["sim_slowdowns"], [])

    def test_typed_set_get(self):
        with gem.Options(seed=7, sim_spread=0.25, model_name="M", objective="p90") as o:
            self.assertEqual(o["seed"], 7)
            self.assertEqual(o["sim_spread"], 0.25)
            self.assertEqual(o["model_name"], "M")
            self.assertIs(o["objective"], gem.Objective.P90)
            o["sim_spread"] = 1          # an int where a double is expected
            self.assertEqual(o["sim_spread"], 1.0)
            o["restarts"] = 3.0           # an integral float where an int is expected
            self.assertEqual(o["restarts"], 3)
            o.set(gem.Option.MODEL_DTYPE, gem.DType.FP8)
            self.assertIs(o.get("model_dtype"), gem.DType.FP8)
            o["cost_model"] = "aggregate"
            self.assertIs(o["cost_model"], gem.CostModel.AGGREGATE)
            o["model_name"] = None       # back to the default
            self.assertIsNone(o["model_name"])

    def test_arrays_from_any_sequence_or_buffer(self):
        with gem.Options() as o:
            o["sim_slowdowns"] = [1.0, 1.05, 1.1]
            self.assertEqual(o["sim_slowdowns"], [1.0, 1.05, 1.1])
            o["sim_slowdowns"] = array.array("d", [1.0, 2.0])
            self.assertEqual(o["sim_slowdowns"], [1.0, 2.0])
            o["sim_slowdowns"] = (x / 2 for x in (2, 3))
            self.assertEqual(o["sim_slowdowns"], [1.0, 1.5])
            o["gpu_memory"] = memoryview(array.array("q", [10, 20, 30]))
            self.assertEqual(o["gpu_memory"], [10, 20, 30])
            o["gpu_memory"] = array.array("i", [5, 6])  # int32 items into an int64 array
            self.assertEqual(o["gpu_memory"], [5, 6])
            o["gpu_memory"] = None
            self.assertEqual(o["gpu_memory"], [])

    def test_bad_values(self):
        with gem.Options() as o:
            e = self.assertGemError(gem.Status.INVALID_ARGUMENT, o.set, "seed", -1)
            self.assertIn("seed", e.message)
            self.assertEqual(o["seed"], 1)  # unchanged
            self.assertGemError(gem.Status.INVALID_ARGUMENT, o.set, "sim_spread", 11.0)
            self.assertGemError(gem.Status.INVALID_ARGUMENT, o.set, "no_such_option", 1)
            self.assertGemError(gem.Status.INVALID_ARGUMENT, o.set, "objective", "fastest")
            self.assertGemError(gem.Status.INVALID_ARGUMENT, o.set, "sim_slowdowns", [1.0, 0.0])
            with self.assertRaises(TypeError):
                o["restarts"] = 2.5
            with self.assertRaises(TypeError):
                o["sim_spread"] = "wide"
            with self.assertRaises(TypeError):
                o["sim_slowdowns"] = "1,2"

    def test_clone_is_deep(self):
        with gem.Options(seed=5) as a:
            b = a.clone()
            b["seed"] = 6
            self.assertEqual(a["seed"], 5)
            self.assertEqual(b["seed"], 6)
            b.close()

    def test_update(self):
        with gem.Options() as o:
            o.update({"seed": 9}, restarts=2)
            self.assertEqual((o["seed"], o["restarts"]), (9, 2))

    def test_close_and_context(self):
        o = gem.Options()
        self.assertFalse(o.closed)
        with o as same:
            self.assertIs(same, o)
        self.assertTrue(o.closed)
        o.close()  # twice is harmless
        with self.assertRaises(ValueError):
            o.get("seed")
        with self.assertRaises(ValueError):
            with o:
                pass

    def test_del_frees(self):
        for _ in range(100):
            o = gem.Options(seed=2)
            del o
        gc.collect()

    def test_runner_and_progress_accept_callables(self):
        with gem.Options() as o:
            o.set_runner(lambda device, tokens: 1.0 + tokens, 2)
            o.set_progress(lambda what, done, total: None)
            c = o.clone()  # keeps the callbacks alive on its own
            c.close()
            o.set_runner(None, 0)
            o.set_progress(None)


if __name__ == "__main__":
    unittest.main()
