"""Finds and loads libgem, and declares the ctypes prototype of every function of gem.h.

Search order (the first that loads wins):
  1. $GEM_LIBRARY, the path of the library (when set, nothing else is tried);
  2. the build tree: $GEM_BUILD_DIR/libgem.so.1, then build/libgem.so.1 of the repository this
     package sits in (bindings/python/gem -> ../../../build);
  3. the system: libgem.so.1 through the dynamic loader (LD_LIBRARY_PATH, ld.so.cache), then
     whatever ctypes.util.find_library("gem") names.

A function that the loaded library lacks (an older build, or a part not built) is replaced by a
stub that raises GemError(Status.NOT_SUPPORTED) when called, so that the rest stays usable.
"""
import ctypes
import ctypes.util
import os

from ._types import GemError, Status

SONAME = "libgem.so.1"


def _candidates():
    env = os.environ.get("GEM_LIBRARY")
    if env:
        return [env], True
    paths = []
    build_dir = os.environ.get("GEM_BUILD_DIR")
    if build_dir:
        paths.append(os.path.join(build_dir, SONAME))
    here = os.path.dirname(os.path.abspath(__file__))
    repo_build = os.path.normpath(os.path.join(here, "..", "..", "..", "build", SONAME))
    paths.append(repo_build)
    paths.append(SONAME)
    found = ctypes.util.find_library("gem")
    if found:
        paths.append(found)
    return paths, False


def _load():
    paths, explicit = _candidates()
    errors = []
    for path in paths:
        # Paths with a directory must exist; bare names go to the dynamic loader's search.
        if os.sep in path and not os.path.exists(path):
            errors.append("%s: no such file" % path)
            continue
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            errors.append("%s: %s" % (path, e))
    hint = ("GEM_LIBRARY is set but does not load" if explicit else
            "set GEM_LIBRARY to the path of libgem.so.1, or GEM_BUILD_DIR to its build directory")
    raise ImportError("gem: cannot load libgem (%s); tried: %s" % (hint, "; ".join(errors)))


lib, path = _load()

# ---- C types ---------------------------------------------------------------------------------
c_status = ctypes.c_int
c_enum = ctypes.c_int
handle = ctypes.c_void_p
handle_out = ctypes.POINTER(ctypes.c_void_p)   # gem_xxx_t **out, char **out
i32, i64, u64 = ctypes.c_int32, ctypes.c_int64, ctypes.c_uint64
size, dbl, cstr = ctypes.c_size_t, ctypes.c_double, ctypes.c_char_p
P = ctypes.POINTER

RUNNER_FN = ctypes.CFUNCTYPE(ctypes.c_double, ctypes.c_void_p, ctypes.c_int, ctypes.c_int64)
PROGRESS_FN = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_double,
                               ctypes.c_double)

# (name, restype, argtypes) for every function of gem.h, in the header's order.
_PROTOTYPES = [
    # version, status and errors
    ("gem_version", ctypes.c_uint, []),
    ("gem_version_string", cstr, []),
    ("gem_status_string", cstr, [c_status]),
    ("gem_last_error", cstr, []),
    ("gem_free", None, [ctypes.c_void_p]),
    # options
    ("gem_options_create", c_status, [handle_out]),
    ("gem_options_destroy", None, [handle]),
    ("gem_options_clone", c_status, [handle, handle_out]),
    ("gem_options_set_int", c_status, [handle, c_enum, i64]),
    ("gem_options_set_double", c_status, [handle, c_enum, dbl]),
    ("gem_options_set_string", c_status, [handle, c_enum, cstr]),
    ("gem_options_set_int_array", c_status, [handle, c_enum, P(i64), size]),
    ("gem_options_set_double_array", c_status, [handle, c_enum, P(dbl), size]),
    ("gem_options_get_int", c_status, [handle, c_enum, P(i64)]),
    ("gem_options_get_double", c_status, [handle, c_enum, P(dbl)]),
    ("gem_options_get_string", c_status, [handle, c_enum, P(cstr)]),
    ("gem_options_get_int_array", c_status, [handle, c_enum, P(i64), size, P(size)]),
    ("gem_options_get_double_array", c_status, [handle, c_enum, P(dbl), size, P(size)]),
    ("gem_options_set_runner", c_status, [handle, RUNNER_FN, ctypes.c_void_p, i32]),
    ("gem_options_set_progress", c_status, [handle, PROGRESS_FN, ctypes.c_void_p]),
    # profiles
    ("gem_profile_create", c_status, [handle_out, i32]),
    ("gem_profile_destroy", None, [handle]),
    ("gem_profile_clone", c_status, [handle, handle_out]),
    ("gem_profile_set_curve", c_status, [handle, i32, size, P(i64), P(dbl), P(dbl)]),
    ("gem_profile_set_overhead", c_status, [handle, i32, dbl]),
    ("gem_profile_set_interpolation", c_status, [handle, c_enum]),
    ("gem_profile_set_cost_model", c_status, [handle, c_enum]),
    ("gem_profile_set_gpu_string", c_status, [handle, i32, cstr, cstr]),
    ("gem_profile_num_gpus", c_status, [handle, P(i32)]),
    ("gem_profile_get_interpolation", c_status, [handle, P(c_enum)]),
    ("gem_profile_get_cost_model", c_status, [handle, P(c_enum)]),
    ("gem_profile_get_overhead", c_status, [handle, i32, P(dbl)]),
    ("gem_profile_get_curve", c_status, [handle, i32, P(i64), P(dbl), size, P(size)]),
    ("gem_profile_get_gpu_string", c_status, [handle, i32, cstr, P(cstr)]),
    ("gem_profile_latency", c_status, [handle, i32, dbl, P(dbl)]),
    ("gem_profile_speeds", c_status, [handle, P(dbl), size]),
    ("gem_profile_read", c_status, [cstr, handle_out]),
    ("gem_profile_parse", c_status, [ctypes.c_char_p, size, handle_out]),
    ("gem_profile_write", c_status, [handle, cstr]),
    ("gem_profile_to_string", c_status, [handle, handle_out]),
    ("gem_profile_append", c_status, [handle, handle]),
    # profiling backends
    ("gem_has_backend", ctypes.c_int, [c_enum]),
    ("gem_backend_name", cstr, [c_enum]),
    ("gem_profile_gpus", c_status, [c_enum, handle, handle_out]),
    ("gem_profile_measure_alltoall", c_status, [handle, handle]),
    ("gem_profile_add_topology", c_status, [handle]),
    # traces
    ("gem_trace_create", c_status, [handle_out, i32, i32]),
    ("gem_trace_destroy", None, [handle]),
    ("gem_trace_clone", c_status, [handle, handle_out]),
    ("gem_trace_set", c_status, [handle, i64, i32, P(dbl), size]),
    ("gem_trace_record", c_status, [handle, i64, i32, P(i32), size, i32]),
    ("gem_trace_shape", c_status, [handle, P(i64), P(i32), P(i32)]),
    ("gem_trace_get", c_status, [handle, i64, i32, P(dbl), size]),
    ("gem_trace_validate", c_status, [handle]),
    ("gem_trace_slice", c_status, [handle, i64, i64, handle_out]),
    ("gem_trace_read", c_status, [cstr, handle_out]),
    ("gem_trace_parse", c_status, [ctypes.c_char_p, size, handle_out]),
    ("gem_trace_write", c_status, [handle, cstr]),
    ("gem_trace_to_string", c_status, [handle, handle_out]),
    ("gem_trace_import", c_status, [c_enum, cstr, handle, handle_out, handle_out]),
    ("gem_trace_import_buffer", c_status,
     [c_enum, ctypes.c_char_p, size, handle, handle_out, handle_out]),
    ("gem_trace_synthesize", c_status, [i64, i32, i32, i64, dbl, handle, handle_out]),
    # mappings
    ("gem_mapping_create", c_status, [handle_out, i32, i32, i32]),
    ("gem_mapping_destroy", None, [handle]),
    ("gem_mapping_clone", c_status, [handle, handle_out]),
    ("gem_mapping_add", c_status, [handle, i32, i32, i32, dbl]),
    ("gem_mapping_clear_layer", c_status, [handle, i32]),
    ("gem_mapping_set_policy_name", c_status, [handle, cstr]),
    ("gem_mapping_get_policy_name", c_status, [handle, P(cstr)]),
    ("gem_mapping_shape", c_status, [handle, P(i32), P(i32), P(i32)]),
    ("gem_mapping_num_placements", c_status, [handle, i32, P(size)]),
    ("gem_mapping_get", c_status, [handle, i32, size, P(i32), P(i32), P(dbl)]),
    ("gem_mapping_expert_gpu", c_status, [handle, i32, i32, P(i32)]),
    ("gem_mapping_validate", c_status, [handle]),
    ("gem_mapping_gpu_slots", c_status, [handle, i32, i32, P(i32)]),
    ("gem_mapping_read", c_status, [cstr, handle_out]),
    ("gem_mapping_parse", c_status, [ctypes.c_char_p, size, handle_out]),
    ("gem_mapping_write", c_status, [handle, cstr]),
    ("gem_mapping_to_string", c_status, [handle, handle_out]),
    ("gem_mapping_export", c_status, [handle, c_enum, cstr]),
    ("gem_mapping_export_string", c_status, [handle, c_enum, handle_out]),
    ("gem_mapping_export_opts", c_status, [handle, c_enum, handle, cstr]),
    ("gem_mapping_export_string_opts", c_status, [handle, c_enum, handle, handle_out]),
    # classification
    ("gem_classify_experts", c_status, [handle, handle, handle_out]),
    ("gem_classification_destroy", None, [handle]),
    ("gem_classification_shape", c_status, [handle, P(i64), P(i32), P(i32)]),
    ("gem_classification_get", c_status, [handle, i32, i32, P(c_enum), P(dbl), P(dbl), P(dbl)]),
    ("gem_classification_coactivation", c_status, [handle, i32, i32, i32, P(i64)]),
    ("gem_class_name", cstr, [c_enum]),
    # placement
    ("gem_policy_name", cstr, [c_enum]),
    ("gem_policy_from_name", c_status, [cstr, P(c_enum)]),
    ("gem_compute_mapping", c_status, [handle, handle, c_enum, handle, handle, handle_out]),
    # evaluation
    ("gem_evaluate", c_status, [handle, handle, handle, handle, handle_out]),
    ("gem_report_destroy", None, [handle]),
    ("gem_report_get", c_status, [handle, c_enum, P(dbl)]),
    ("gem_report_gpu", c_status, [handle, i32, P(dbl), P(i64)]),
    ("gem_report_step", c_status, [handle, i64, P(dbl)]),
    ("gem_report_to_json", c_status, [handle, handle_out]),
    # experimental (GEM_EXPERIMENTAL): may change between minor versions
    ("gem_remap", c_status, [handle, handle, handle, handle, handle_out]),
    ("gem_remap_result_destroy", None, [handle]),
    ("gem_remap_result_get", c_status,
     [handle, P(dbl), P(dbl), P(dbl), P(i64), P(u64), P(i32)]),
    ("gem_remap_result_mapping", c_status, [handle, handle_out]),
    ("gem_drift", c_status, [handle, handle, handle, handle, P(dbl)]),
]



class _Functions:
    """The prototyped functions, as attributes named without the gem_ prefix."""


fn = _Functions()
missing = []


def _missing_stub(name):
    def stub(*args):
        raise GemError(Status.NOT_SUPPORTED, "%s is not in the loaded libgem (%s)" % (name, path))
    stub.__name__ = name
    return stub


for _name, _restype, _argtypes in _PROTOTYPES:
    try:
        _f = getattr(lib, _name)
    except AttributeError:
        missing.append(_name)
        if _name == "gem_free":  # without it nothing returned by libgem could be freed
            raise ImportError("gem: %s has no gem_free; is it libgem?" % path)
        setattr(fn, _name[4:], _missing_stub(_name))
        continue
    _f.restype = _restype
    _f.argtypes = _argtypes
    setattr(fn, _name[4:], _f)
del _name, _restype, _argtypes


def last_error():
    """gem_last_error() of this thread, decoded."""
    try:
        raw = fn.last_error()
    except GemError:
        return ""
    return raw.decode("utf-8", "replace") if raw else ""


def take_string(ptr):
    """Copies a char * that libgem returned and frees it with gem_free()."""
    if not ptr.value:
        return ""
    try:
        return ctypes.string_at(ptr.value).decode("utf-8")
    finally:
        fn.free(ptr)
