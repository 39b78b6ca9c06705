"""The handles of gem.h as Python classes, and the free functions.

Every handle owns its C object: close() (or leaving a `with` block, or garbage collection) frees
it once; using a closed handle raises ValueError, as a closed file does.
"""
import collections
import ctypes
import json
import os

from . import _lib
from ._arrays import to_c
from ._lib import fn, take_string
from ._types import (OPTION_ENUMS, OPTION_TYPES, Backend, CostModel, ExpertClass, ExportFormat,
                     GemError, ImportFormat, Interpolation, Metric, Option, Policy, Status,
                     coerce_enum, DOUBLE, DOUBLE_ARRAY, INT, INT_ARRAY, STRING)

_c_void_p, _byref = ctypes.c_void_p, ctypes.byref


# ---- small conversions ------------------------------------------------------------------------

def _path(p):
    """A file name for C: str, bytes or os.PathLike."""
    p = os.fspath(p)
    return p if isinstance(p, bytes) else os.fsencode(p)


def _data(d, what):
    """(bytes, length) of a buffer to parse: str (UTF-8), bytes or any bytes-like object."""
    if isinstance(d, str):
        d = d.encode("utf-8")
    else:
        try:
            d = bytes(memoryview(d).cast("B"))
        except TypeError:
            raise TypeError("%s must be str or bytes-like, not %s" % (what, type(d).__name__)) from None
    return d, len(d)


def _cstr(s, what):
    if s is None:
        return None
    if isinstance(s, bytes):
        return s
    if not isinstance(s, str):
        raise TypeError("%s must be a string, not %s" % (what, type(s).__name__))
    return s.encode("utf-8")


def _decode(b):
    return None if b is None else b.decode("utf-8", "replace")


def _int(x, what):
    if isinstance(x, float) and x.is_integer():
        x = int(x)
    try:
        return int(x.__index__())
    except AttributeError:
        raise TypeError("%s must be an integer, not %s" % (what, type(x).__name__)) from None


def _handle_arg(obj, cls, what, optional=False):
    if obj is None and optional:
        return None
    if not isinstance(obj, cls):
        raise TypeError("%s must be a gem.%s, not %s" % (what, cls.__name__, type(obj).__name__))
    return obj


def _fail(status, opts=None):
    """Raises the GemError of a failed call; an exception raised inside a callback of opts
    (which made the call fail) becomes its __cause__."""
    err = GemError(status, _lib.last_error())
    cause = None
    if opts is not None and opts._callback_errors:
        cause = opts._callback_errors[0]
        del opts._callback_errors[:]
    if cause is not None:
        raise err from cause
    raise err


def _call(func, *args, opts=None):
    for a in args:  # before ctypes sees it, which would wrap the ValueError in ArgumentError
        if isinstance(a, _Handle) and a._ptr is None:
            raise ValueError("%s handle is closed" % type(a).__name__)
    status = func(*args)
    if status != 0:
        _fail(status, opts)


# ---- handles ----------------------------------------------------------------------------------

class _Handle:
    """Owner of one C handle. Subclasses name their destroy function in _DESTROY."""
    _ptr = None
    _DESTROY = None

    @classmethod
    def _adopt(cls, out):
        """Wraps a handle that a C call returned through `out` (a c_void_p)."""
        obj = cls.__new__(cls)
        obj._ptr = out.value
        obj._setup()
        return obj

    def _setup(self):
        pass

    @property
    def _as_parameter_(self):
        if self._ptr is None:
            raise ValueError("%s handle is closed" % type(self).__name__)
        return _c_void_p(self._ptr)

    @property
    def closed(self):
        return self._ptr is None

    def close(self):
        """Frees the C object now; later calls are harmless."""
        ptr, self._ptr = self._ptr, None
        if ptr is not None:
            getattr(fn, self._DESTROY)(ptr)

    def __enter__(self):
        if self._ptr is None:
            raise ValueError("%s handle is closed" % type(self).__name__)
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def __del__(self):
        try:
            self.close()
        except Exception:  # interpreter shutdown: the library may be gone already
            pass

    def _create(self, func, *args):
        out = _c_void_p()
        _call(func, _byref(out), *args)
        self._ptr = out.value
        self._setup()


def _new(cls, func, *args, opts=None):
    """Calls func(*args, &out) and wraps out as cls."""
    out = _c_void_p()
    _call(func, *args, _byref(out), opts=opts)
    return cls._adopt(out)


def _option_key(key):
    if isinstance(key, str):
        try:
            return Option[key.strip().upper().replace("-", "_")]
        except KeyError:
            raise GemError(Status.INVALID_ARGUMENT, "unknown option %r" % key) from None
    return coerce_enum(Option, key, "option key")


class Options(_Handle):
    """gem_options_t. Options(seed=3, sim_gpus=8) sets options by their lower-case names.

    Values are converted by the option's type in gem.h: int, double, string (None resets it),
    int array or double array (any sequence or buffer); enumerated int options also take the
    member's name (objective="p90", model_dtype="fp8"). get() of a string option that was never
    set returns None (the library's default applies).
    """
    _DESTROY = "options_destroy"

    def __init__(self, options=None, **kwargs):
        self._create(fn.options_create)
        try:
            self.update(options, **kwargs)
        except BaseException:
            self.close()
            raise

    def _setup(self):
        self._callbacks = {}
        self._callback_errors = []

    def update(self, options=None, **kwargs):
        """Sets every (key, value) of a mapping and of the keywords."""
        items = list(dict(options).items()) if options else []
        for key, value in items + list(kwargs.items()):
            self.set(key, value)
        return self

    def set(self, key, value):
        k = _option_key(key)
        kind = OPTION_TYPES.get(k)
        if kind is None:  # a key newer than these bindings: go by the value's type
            kind = (STRING if value is None or isinstance(value, str) else
                    DOUBLE if isinstance(value, float) else
                    INT if isinstance(value, int) else DOUBLE_ARRAY)
        name = k.name.lower() if isinstance(k, Option) else "option %d" % k
        if kind == INT:
            enum_cls = OPTION_ENUMS.get(k)
            if enum_cls is not None and isinstance(value, str):
                value = coerce_enum(enum_cls, value, name)
            _call(fn.options_set_int, self, k, _int(value, name))
        elif kind == DOUBLE:
            if isinstance(value, (str, bytes)) or value is None:
                raise TypeError("%s must be a number, not %s" % (name, type(value).__name__))
            _call(fn.options_set_double, self, k, float(value))
        elif kind == STRING:
            _call(fn.options_set_string, self, k, _cstr(value, name))
        else:
            ctype = ctypes.c_int64 if kind == INT_ARRAY else ctypes.c_double
            setter = fn.options_set_int_array if kind == INT_ARRAY else fn.options_set_double_array
            if value is None:
                _call(setter, self, k, None, 0)
            else:
                arr, n, _ = to_c(value, ctype, name)
                _call(setter, self, k, arr, n)
        return self

    def get(self, key):
        k = _option_key(key)
        kind = OPTION_TYPES.get(k, INT)
        if kind == INT:
            v = ctypes.c_int64()
            _call(fn.options_get_int, self, k, _byref(v))
            enum_cls = OPTION_ENUMS.get(k)
            return coerce_enum(enum_cls, v.value, "value") if enum_cls else v.value
        if kind == DOUBLE:
            v = ctypes.c_double()
            _call(fn.options_get_double, self, k, _byref(v))
            return v.value
        if kind == STRING:
            v = ctypes.c_char_p()
            _call(fn.options_get_string, self, k, _byref(v))
            return _decode(v.value)
        ctype = ctypes.c_int64 if kind == INT_ARRAY else ctypes.c_double
        getter = fn.options_get_int_array if kind == INT_ARRAY else fn.options_get_double_array
        n = ctypes.c_size_t()
        _call(getter, self, k, None, 0, _byref(n))
        arr = (ctype * n.value)()
        _call(getter, self, k, arr, n.value, _byref(n))
        return list(arr)

    __getitem__ = get
    __setitem__ = set

    def clone(self):
        """Deep copy (callbacks included)."""
        out = _new(Options, fn.options_clone, self)
        out._callbacks = dict(self._callbacks)
        out._callback_errors = self._callback_errors
        return out

    def set_runner(self, runner, num_devices):
        """Runner for Backend.CALLBACK: runner(device, tokens) -> microseconds (negative on
        failure). It is called from one C thread per device at once. An exception inside it
        counts as a failure (the call fails) and becomes the GemError's __cause__."""
        if runner is None:
            cfn = _lib.RUNNER_FN()
        else:
            errors = self._callback_errors

            def tramp(user, device, tokens):
                try:
                    return float(runner(device, tokens))
                except BaseException as e:  # nothing may unwind through C
                    errors.append(e)
                    return -1.0
            cfn = _lib.RUNNER_FN(tramp)
        _call(fn.options_set_runner, self, cfn, None, _int(num_devices, "num_devices"))
        self._callbacks["runner"] = cfn  # C keeps the pointer: keep the trampoline alive

    def set_progress(self, progress):
        """Progress callback: progress(what, done, total); returning a true value cancels the
        operation (it then fails with Status.CANCELLED). An exception inside it cancels too and
        becomes the GemError's __cause__."""
        if progress is None:
            cfn = _lib.PROGRESS_FN()
        else:
            errors = self._callback_errors

            def tramp(user, what, done, total):
                try:
                    return 1 if progress(_decode(what) or "", done, total) else 0
                except BaseException as e:
                    errors.append(e)
                    return 1
            cfn = _lib.PROGRESS_FN(tramp)
        _call(fn.options_set_progress, self, cfn, None)
        self._callbacks["progress"] = cfn

    def __repr__(self):
        return "<gem.Options%s>" % (" closed" if self.closed else "")


class _OptArg:
    """`with _OptArg(options, kwargs) as o:` gives the Options to pass (None for defaults): the
    caller's own, or a temporary one with the keywords applied on top, freed afterwards."""

    def __init__(self, options, kwargs):
        _handle_arg(options, Options, "options", optional=True)
        self.owned = None
        self.opts = options
        if kwargs:
            self.owned = options.clone() if options is not None else Options()
            self.opts = self.owned.update(**kwargs)

    def __enter__(self):
        return self.opts

    def __exit__(self, *exc):
        if self.owned is not None:
            self.owned.close()
        return False


def _shape3(func, handle, t1, t2, t3):
    a, b, c = t1(), t2(), t3()
    _call(func, handle, _byref(a), _byref(b), _byref(c))
    return a.value, b.value, c.value


class Profile(_Handle):
    """gem_profile_t: per-GPU latency curves. Profile(n) is an empty profile of n GPUs."""
    _DESTROY = "profile_destroy"

    def __init__(self, num_gpus):
        self._create(fn.profile_create, _int(num_gpus, "num_gpus"))

    @classmethod
    def read(cls, path):
        return _new(cls, fn.profile_read, _path(path))

    @classmethod
    def parse(cls, data):
        buf, n = _data(data, "data")
        return _new(cls, fn.profile_parse, buf, n)

    @classmethod
    def measure(cls, backend, options=None, **kwargs):
        """gem_profile_gpus: profile with a backend ("sim", "cuda", "callback", "mpi")."""
        backend = coerce_enum(Backend, backend, "backend")
        with _OptArg(options, kwargs) as o:
            return _new(cls, fn.profile_gpus, backend, o, opts=o)

    @classmethod
    def sim(cls, gpus=4, spread=0.077, seed=1, slowdowns=None, options=None, **kwargs):
        """Emulated GPUs (the sim backend): `gpus` GPUs whose throughput spreads by `spread`,
        or one GPU per entry of `slowdowns`. Other keywords are options (sim_noise=...)."""
        kw = dict(sim_gpus=gpus, sim_spread=spread, seed=seed)
        if slowdowns is not None:
            kw["sim_slowdowns"] = slowdowns
        kw.update(kwargs)
        return cls.measure(Backend.SIM, options, **kw)

    def clone(self):
        return _new(Profile, fn.profile_clone, self)

    @property
    def num_gpus(self):
        n = ctypes.c_int32()
        _call(fn.profile_num_gpus, self, _byref(n))
        return n.value

    def set_curve(self, gpu, tokens, latency_us, cv=None):
        t, nt, _ = to_c(tokens, ctypes.c_int64, "tokens")
        lat, nl, _ = to_c(latency_us, ctypes.c_double, "latency_us")
        if nt != nl:
            raise GemError(Status.INVALID_ARGUMENT,
                           "set_curve: %d tokens but %d latencies" % (nt, nl))
        c = None
        if cv is not None:
            c, nc, _ = to_c(cv, ctypes.c_double, "cv")
            if nc != nt:
                raise GemError(Status.INVALID_ARGUMENT,
                               "set_curve: %d tokens but %d cv values" % (nt, nc))
        _call(fn.profile_set_curve, self, _int(gpu, "gpu"), nt, t, lat, c)

    def curve(self, gpu):
        """(tokens, latency_us) lists of a GPU's curve."""
        k = ctypes.c_size_t()
        gpu = _int(gpu, "gpu")
        _call(fn.profile_get_curve, self, gpu, None, None, 0, _byref(k))
        t, lat = (ctypes.c_int64 * k.value)(), (ctypes.c_double * k.value)()
        _call(fn.profile_get_curve, self, gpu, t, lat, k.value, _byref(k))
        return list(t), list(lat)

    def set_overhead(self, gpu, us):
        _call(fn.profile_set_overhead, self, _int(gpu, "gpu"), float(us))

    def overhead(self, gpu):
        v = ctypes.c_double()
        _call(fn.profile_get_overhead, self, _int(gpu, "gpu"), _byref(v))
        return v.value

    @property
    def interpolation(self):
        v = ctypes.c_int()
        _call(fn.profile_get_interpolation, self, _byref(v))
        return coerce_enum(Interpolation, v.value, "interpolation")

    @interpolation.setter
    def interpolation(self, value):
        _call(fn.profile_set_interpolation, self,
              coerce_enum(Interpolation, value, "interpolation"))

    @property
    def cost_model(self):
        v = ctypes.c_int()
        _call(fn.profile_get_cost_model, self, _byref(v))
        return coerce_enum(CostModel, v.value, "cost_model")

    @cost_model.setter
    def cost_model(self, value):
        _call(fn.profile_set_cost_model, self, coerce_enum(CostModel, value, "cost_model"))

    def set_gpu_string(self, gpu, key, value):
        """key: "name", "pci_bus_id", "host" or "cpuset"."""
        _call(fn.profile_set_gpu_string, self, _int(gpu, "gpu"), _cstr(key, "key"),
              _cstr(value, "value"))

    def gpu_string(self, gpu, key):
        """A GPU's descriptive string, None when absent."""
        v = ctypes.c_char_p()
        _call(fn.profile_get_gpu_string, self, _int(gpu, "gpu"), _cstr(key, "key"), _byref(v))
        return _decode(v.value)

    def latency(self, gpu, tokens):
        """f_g(tokens) in microseconds (SPEC 2)."""
        v = ctypes.c_double()
        _call(fn.profile_latency, self, _int(gpu, "gpu"), float(tokens), _byref(v))
        return v.value

    def speeds(self):
        """Relative speed of each GPU, the fastest 1.0."""
        n = self.num_gpus
        arr = (ctypes.c_double * n)()
        _call(fn.profile_speeds, self, arr, n)
        return list(arr)

    def write(self, path):
        _call(fn.profile_write, self, _path(path))

    def to_string(self):
        out = _c_void_p()
        _call(fn.profile_to_string, self, _byref(out))
        return take_string(out)

    def to_dict(self):
        return json.loads(self.to_string())

    def append(self, other):
        """Appends the GPUs of another profile after these."""
        _call(fn.profile_append, self, _handle_arg(other, Profile, "other"))

    def measure_alltoall(self, options=None, **kwargs):
        with _OptArg(options, kwargs) as o:
            _call(fn.profile_measure_alltoall, self, o, opts=o)

    def add_topology(self):
        _call(fn.profile_add_topology, self)

    def __repr__(self):
        return "<gem.Profile closed>" if self.closed else "<gem.Profile gpus=%d>" % self.num_gpus


class Trace(_Handle):
    """gem_trace_t: tokens per expert per (step, layer). Trace(layers, experts) is empty."""
    _DESTROY = "trace_destroy"
    import_note = ""

    def __init__(self, num_layers, num_experts):
        self._create(fn.trace_create, _int(num_layers, "num_layers"),
                     _int(num_experts, "num_experts"))

    @classmethod
    def read(cls, path):
        return _new(cls, fn.trace_read, _path(path))

    @classmethod
    def parse(cls, data):
        buf, n = _data(data, "data")
        return _new(cls, fn.trace_parse, buf, n)

    @classmethod
    def import_(cls, format, path, options=None, **kwargs):
        """Imports routing data of another tool ("sglang", "wide_csv", "tokens_jsonl"), with the
        import_* options. Notes about skipped rows are in the result's .import_note."""
        fmt = coerce_enum(ImportFormat, format, "format")
        return cls._import(fn.trace_import, fmt, (_path(path),), options, kwargs)

    @classmethod
    def import_buffer(cls, format, data, options=None, **kwargs):
        fmt = coerce_enum(ImportFormat, format, "format")
        buf, n = _data(data, "data")
        return cls._import(fn.trace_import_buffer, fmt, (buf, n), options, kwargs)

    @classmethod
    def _import(cls, func, fmt, src, options, kwargs):
        out, note = _c_void_p(), _c_void_p()
        with _OptArg(options, kwargs) as o:
            _call(func, fmt, *src, o, _byref(out), _byref(note))
        t = cls._adopt(out)
        t.import_note = take_string(note)
        return t

    @classmethod
    def synthesize(cls, num_steps, num_layers, num_experts, tokens_per_step=256, skew=0.5,
                   options=None, **kwargs):
        """Synthetic trace with consistent, temporal and cold experts; deterministic for the
        seed (seed=... keyword or option)."""
        with _OptArg(options, kwargs) as o:
            return _new(cls, fn.trace_synthesize, _int(num_steps, "num_steps"),
                        _int(num_layers, "num_layers"), _int(num_experts, "num_experts"),
                        _int(tokens_per_step, "tokens_per_step"), float(skew), o)

    @classmethod
    def from_counts(cls, counts, num_layers=None, num_experts=None):
        """A trace from loads indexed [step][layer][expert]: nested lists, or a 3-d buffer
        (numpy array). A flat sequence or 1-d buffer needs num_layers and num_experts."""
        arr, n, shape = to_c(counts, ctypes.c_double, "counts")
        if len(shape) == 3:
            steps, layers, experts = shape
            if (num_layers is not None and num_layers != layers) or \
               (num_experts is not None and num_experts != experts):
                raise GemError(Status.SHAPE_MISMATCH,
                               "from_counts: counts are %dx%dx%d but num_layers=%s, "
                               "num_experts=%s" % (steps, layers, experts, num_layers, num_experts))
        elif len(shape) == 1 and num_layers and num_experts:
            layers, experts = _int(num_layers, "num_layers"), _int(num_experts, "num_experts")
            if n % (layers * experts):
                raise GemError(Status.INVALID_ARGUMENT,
                               "from_counts: %d values are not whole steps of %d x %d"
                               % (n, layers, experts))
            steps = n // (layers * experts)
        else:
            raise GemError(Status.INVALID_ARGUMENT,
                           "from_counts: counts must be [step][layer][expert] (got shape %s), "
                           "or flat with num_layers and num_experts" % (shape,))
        t = cls(layers, experts)
        row = ctypes.sizeof(ctypes.c_double) * experts
        base = ctypes.addressof(arr)
        for s in range(steps):
            for l in range(layers):
                ptr = ctypes.cast(base + (s * layers + l) * row, ctypes.POINTER(ctypes.c_double))
                _call(fn.trace_set, t, s, l, ptr, experts)
        return t

    def clone(self):
        return _new(Trace, fn.trace_clone, self)

    @property
    def shape(self):
        """(num_steps, num_layers, num_experts)."""
        return _shape3(fn.trace_shape, self, ctypes.c_int64, ctypes.c_int32, ctypes.c_int32)

    num_steps = property(lambda self: self.shape[0])
    num_layers = property(lambda self: self.shape[1])
    num_experts = property(lambda self: self.shape[2])

    def __len__(self):
        return self.num_steps

    def set(self, step, layer, loads):
        arr, n, _ = to_c(loads, ctypes.c_double, "loads")
        _call(fn.trace_set, self, _int(step, "step"), _int(layer, "layer"), arr, n)

    def record(self, step, layer, topk_ids, k=None):
        """Adds one token per expert id of topk_ids (n_tokens x k: a list of lists, a 2-d
        buffer, or flat with k given); ids < 0 are padding."""
        arr, n, shape = to_c(topk_ids, ctypes.c_int32, "topk_ids")
        if k is None:
            if len(shape) != 2:
                raise GemError(Status.INVALID_ARGUMENT,
                               "record: give k for flat topk_ids (shape %s)" % (shape,))
            k = shape[1]
        k = _int(k, "k")
        if k <= 0 or n % k:
            raise GemError(Status.INVALID_ARGUMENT,
                           "record: %d ids are not rows of k=%d" % (n, k))
        _call(fn.trace_record, self, _int(step, "step"), _int(layer, "layer"), arr, n // k, k)

    def get(self, step, layer):
        """The loads of (step, layer) as a list."""
        e = self.num_experts
        arr = (ctypes.c_double * e)()
        _call(fn.trace_get, self, _int(step, "step"), _int(layer, "layer"), arr, e)
        return list(arr)

    def to_counts(self):
        """All loads as nested lists [step][layer][expert]."""
        s, l, _ = self.shape
        return [[self.get(i, j) for j in range(l)] for i in range(s)]

    def validate(self):
        """Raises GemError(INCOMPLETE) naming the first missing (step, layer) row."""
        _call(fn.trace_validate, self)

    def slice(self, first, count):
        """Steps [first, first + count) renumbered from 0."""
        return _new(Trace, fn.trace_slice, self, _int(first, "first"), _int(count, "count"))

    def write(self, path):
        _call(fn.trace_write, self, _path(path))

    def to_string(self):
        out = _c_void_p()
        _call(fn.trace_to_string, self, _byref(out))
        return take_string(out)

    def __repr__(self):
        if self.closed:
            return "<gem.Trace closed>"
        return "<gem.Trace steps=%d layers=%d experts=%d>" % self.shape


Placement = collections.namedtuple("Placement", "expert gpu share")


def _export_format(fmt):
    return coerce_enum(ExportFormat, fmt, "format")


class Mapping(_Handle):
    """gem_mapping_t: placements of experts on GPUs. Mapping(gpus, layers, experts) is empty."""
    _DESTROY = "mapping_destroy"

    def __init__(self, num_gpus, num_layers, num_experts):
        self._create(fn.mapping_create, _int(num_gpus, "num_gpus"),
                     _int(num_layers, "num_layers"), _int(num_experts, "num_experts"))

    @classmethod
    def read(cls, path):
        return _new(cls, fn.mapping_read, _path(path))

    @classmethod
    def parse(cls, data):
        buf, n = _data(data, "data")
        return _new(cls, fn.mapping_parse, buf, n)

    def clone(self):
        return _new(Mapping, fn.mapping_clone, self)

    @property
    def shape(self):
        """(num_gpus, num_layers, num_experts)."""
        return _shape3(fn.mapping_shape, self, ctypes.c_int32, ctypes.c_int32, ctypes.c_int32)

    num_gpus = property(lambda self: self.shape[0])
    num_layers = property(lambda self: self.shape[1])
    num_experts = property(lambda self: self.shape[2])

    def add(self, layer, expert, gpu, share=1.0):
        _call(fn.mapping_add, self, _int(layer, "layer"), _int(expert, "expert"),
              _int(gpu, "gpu"), float(share))

    def clear_layer(self, layer):
        _call(fn.mapping_clear_layer, self, _int(layer, "layer"))

    @property
    def policy_name(self):
        v = ctypes.c_char_p()
        _call(fn.mapping_get_policy_name, self, _byref(v))
        return _decode(v.value)

    @policy_name.setter
    def policy_name(self, name):
        _call(fn.mapping_set_policy_name, self, _cstr(name, "policy_name"))

    def num_placements(self, layer):
        n = ctypes.c_size_t()
        _call(fn.mapping_num_placements, self, _int(layer, "layer"), _byref(n))
        return n.value

    def get(self, layer, i):
        """The i-th Placement(expert, gpu, share) of a layer."""
        e, g, w = ctypes.c_int32(), ctypes.c_int32(), ctypes.c_double()
        _call(fn.mapping_get, self, _int(layer, "layer"), _int(i, "i"), _byref(e), _byref(g),
              _byref(w))
        return Placement(e.value, g.value, w.value)

    def placements(self, layer):
        """Every Placement of a layer, in the order added (or read)."""
        return [self.get(layer, i) for i in range(self.num_placements(layer))]

    def expert_gpu(self, layer, expert):
        """GPU of an expert that has exactly one placement."""
        g = ctypes.c_int32()
        _call(fn.mapping_expert_gpu, self, _int(layer, "layer"), _int(expert, "expert"),
              _byref(g))
        return g.value

    def gpu_slots(self, layer, gpu):
        """Experts placed on a GPU in a layer."""
        s = ctypes.c_int32()
        _call(fn.mapping_gpu_slots, self, _int(layer, "layer"), _int(gpu, "gpu"), _byref(s))
        return s.value

    def validate(self):
        _call(fn.mapping_validate, self)

    def write(self, path):
        _call(fn.mapping_write, self, _path(path))

    def to_string(self):
        out = _c_void_p()
        _call(fn.mapping_to_string, self, _byref(out))
        return take_string(out)

    def to_dict(self):
        return json.loads(self.to_string())

    def export(self, format, path, options=None, **kwargs):
        """Writes the mapping for an engine: "sglang", "eplb" or "trtllm". Keywords are options:
        first_dense_layers=3 numbers the layers as a model with 3 dense layers first does."""
        fmt, p = _export_format(format), _path(path)
        with _OptArg(options, kwargs) as o:
            _call(fn.mapping_export_opts, self, fmt, o, p)

    def export_string(self, format, options=None, **kwargs):
        fmt = _export_format(format)
        out = _c_void_p()
        with _OptArg(options, kwargs) as o:
            _call(fn.mapping_export_string_opts, self, fmt, o, _byref(out))
        return take_string(out)

    def __repr__(self):
        if self.closed:
            return "<gem.Mapping closed>"
        return "<gem.Mapping gpus=%d layers=%d experts=%d>" % self.shape


ExpertInfo = collections.namedtuple("ExpertInfo", "cls heavy_fraction mean_load mean_heavy_load")


class Classification(_Handle):
    """gem_classification_t: the class of every expert; made by gem.classify()."""
    _DESTROY = "classification_destroy"

    def __init__(self, *args, **kwargs):
        raise TypeError("use gem.classify(trace) to make a Classification")

    @property
    def shape(self):
        """(num_steps, num_layers, num_experts)."""
        return _shape3(fn.classification_shape, self, ctypes.c_int64, ctypes.c_int32,
                       ctypes.c_int32)

    def get(self, layer, expert):
        """ExpertInfo(cls, heavy_fraction, mean_load, mean_heavy_load) of an expert."""
        c, hf, ml, mh = ctypes.c_int(), ctypes.c_double(), ctypes.c_double(), ctypes.c_double()
        _call(fn.classification_get, self, _int(layer, "layer"), _int(expert, "expert"),
              _byref(c), _byref(hf), _byref(ml), _byref(mh))
        return ExpertInfo(coerce_enum(ExpertClass, c.value, "class"), hf.value, ml.value,
                          mh.value)

    def expert_class(self, layer, expert):
        return self.get(layer, expert).cls

    def classes(self, layer):
        """The class of every expert of a layer."""
        return [self.expert_class(layer, e) for e in range(self.shape[2])]

    def counts(self):
        """{ExpertClass: number of (layer, expert)s of that class}."""
        _, layers, experts = self.shape
        out = {c: 0 for c in ExpertClass}
        for l in range(layers):
            for c in self.classes(l):
                out[c] = out.get(c, 0) + 1
        return out

    def coactivation(self, layer, a, b):
        """Steps in which experts a and b of a layer were both heavy."""
        v = ctypes.c_int64()
        _call(fn.classification_coactivation, self, _int(layer, "layer"), _int(a, "a"),
              _int(b, "b"), _byref(v))
        return v.value

    def __repr__(self):
        if self.closed:
            return "<gem.Classification closed>"
        return "<gem.Classification steps=%d layers=%d experts=%d>" % self.shape


def _metric_property(metric, doc):
    return property(lambda self: self.get(metric), doc=doc)


class Report(_Handle):
    """gem_report_t: results of gem.evaluate(); times in microseconds."""
    _DESTROY = "report_destroy"
    _num_gpus = 0

    def __init__(self, *args, **kwargs):
        raise TypeError("use gem.evaluate(profile, trace, mapping) to make a Report")

    def get(self, metric):
        v = ctypes.c_double()
        _call(fn.report_get, self, coerce_enum(Metric, metric, "metric"), _byref(v))
        return v.value

    mean = _metric_property(Metric.MEAN, "mean step latency")
    p50 = _metric_property(Metric.P50, "median step latency (nearest rank)")
    p90 = _metric_property(Metric.P90, "90th percentile step latency (nearest rank)")
    p99 = _metric_property(Metric.P99, "99th percentile step latency (nearest rank)")
    total = _metric_property(Metric.TOTAL, "sum of step latencies")
    lower_bound = _metric_property(Metric.LOWER_BOUND, "lower bound on mean")
    max = _metric_property(Metric.MAX, "largest step latency")
    imbalance = _metric_property(Metric.IMBALANCE, "mean of max/mean GPU time")

    @property
    def steps(self):
        return int(self.get(Metric.STEPS))

    def gpu(self, gpu):
        """(busy_us, straggler_count) of a GPU."""
        busy, count = ctypes.c_double(), ctypes.c_int64()
        _call(fn.report_gpu, self, _int(gpu, "gpu"), _byref(busy), _byref(count))
        return busy.value, count.value

    def gpus(self):
        """gpu(g) for every GPU of the evaluated profile."""
        return [self.gpu(g) for g in range(self._num_gpus)]

    def step(self, step):
        v = ctypes.c_double()
        _call(fn.report_step, self, _int(step, "step"), _byref(v))
        return v.value

    def step_latencies(self):
        return [self.step(s) for s in range(self.steps)]

    def to_json(self):
        out = _c_void_p()
        _call(fn.report_to_json, self, _byref(out))
        return take_string(out)

    def to_dict(self):
        """The library's JSON report (mean, p50, p90, p99, total, ...) as a dict."""
        return json.loads(self.to_json())

    def __repr__(self):
        if self.closed:
            return "<gem.Report closed>"
        return "<gem.Report mean=%.3f p90=%.3f steps=%d>" % (self.mean, self.p90, self.steps)


class RemapResult(_Handle):
    """Experimental (GEM_EXPERIMENTAL): result of gem.remap()."""
    _DESTROY = "remap_result_destroy"

    def __init__(self, *args, **kwargs):
        raise TypeError("use gem.remap(...) to make a RemapResult")

    def _values(self):
        cur, rem, unc = ctypes.c_double(), ctypes.c_double(), ctypes.c_double()
        moves, nbytes, rec = ctypes.c_int64(), ctypes.c_uint64(), ctypes.c_int32()
        _call(fn.remap_result_get, self, _byref(cur), _byref(rem), _byref(unc), _byref(moves),
              _byref(nbytes), _byref(rec))
        return cur.value, rem.value, unc.value, moves.value, nbytes.value, bool(rec.value)

    current_us = property(lambda self: self._values()[0])
    remapped_us = property(lambda self: self._values()[1])
    unconstrained_us = property(lambda self: self._values()[2])
    moves = property(lambda self: self._values()[3])
    bytes_moved = property(lambda self: self._values()[4])
    recommend = property(lambda self: self._values()[5])

    @property
    def mapping(self):
        """The proposed mapping (a copy: it outlives the result)."""
        m = _c_void_p()
        _call(fn.remap_result_mapping, self, _byref(m))
        return _new(Mapping, fn.mapping_clone, m)


# ---- free functions ---------------------------------------------------------------------------

def version():
    """GEM_VERSION_NUMBER of the loaded library (10000 * major + 100 * minor + patch)."""
    return fn.version()


def version_string():
    return _decode(fn.version_string())


def status_string(status):
    return _decode(fn.status_string(int(status)))


def last_error():
    """Message of the last failed libgem call on this thread."""
    return _lib.last_error()


def has_backend(backend):
    return bool(fn.has_backend(coerce_enum(Backend, backend, "backend")))


def backend_name(backend):
    return _decode(fn.backend_name(coerce_enum(Backend, backend, "backend")))


def class_name(cls):
    return _decode(fn.class_name(coerce_enum(ExpertClass, cls, "class")))


def policy_name(policy):
    return _decode(fn.policy_name(coerce_enum(Policy, policy, "policy")))


def policy_from_name(name):
    v = ctypes.c_int()
    _call(fn.policy_from_name, _cstr(name, "name"), _byref(v))
    return coerce_enum(Policy, v.value, "policy")


def _policy(policy):
    if isinstance(policy, str):
        try:
            return policy_from_name(policy)
        except GemError as e:
            if e.status != Status.NOT_SUPPORTED:  # NOT_SUPPORTED: an old library without it
                raise
    return coerce_enum(Policy, policy, "policy")


def classify(trace, options=None, **kwargs):
    """Classifies every expert of a complete trace (heavy_factor, consistent_min and
    temporal_min options)."""
    _handle_arg(trace, Trace, "trace")
    with _OptArg(options, kwargs) as o:
        return _new(Classification, fn.classify_experts, trace, o)


def compute_mapping(profile, trace, policy="gem", options=None, classification=None, **kwargs):
    """Places the trace's experts on the profile's GPUs with a policy (name or Policy);
    keywords are options (seed=1, restarts=8, redundant_slots=2, ...)."""
    _handle_arg(profile, Profile, "profile")
    _handle_arg(trace, Trace, "trace")
    _handle_arg(classification, Classification, "classification", optional=True)
    p = _policy(policy)
    with _OptArg(options, kwargs) as o:
        return _new(Mapping, fn.compute_mapping, profile, trace, p, o, classification, opts=o)


def evaluate(profile, trace, mapping, options=None, **kwargs):
    """Replays the trace through the mapping with the profile's cost model -> Report."""
    _handle_arg(profile, Profile, "profile")
    _handle_arg(trace, Trace, "trace")
    _handle_arg(mapping, Mapping, "mapping")
    with _OptArg(options, kwargs) as o:
        r = _new(Report, fn.evaluate, profile, trace, mapping, o)
    r._num_gpus = profile.num_gpus
    return r


def remap(profile, window, current, options=None, **kwargs):
    """Experimental: a mapping close to `current` that serves the trace `window` better, within
    max_moves / max_move_bytes -> RemapResult."""
    _handle_arg(profile, Profile, "profile")
    _handle_arg(window, Trace, "window")
    _handle_arg(current, Mapping, "current")
    with _OptArg(options, kwargs) as o:
        return _new(RemapResult, fn.remap, profile, window, current, o, opts=o)


def drift(profile, built_on, window, mapping):
    """Experimental: mean step latency of mapping on window / its mean on built_on."""
    _handle_arg(profile, Profile, "profile")
    _handle_arg(built_on, Trace, "built_on")
    _handle_arg(window, Trace, "window")
    _handle_arg(mapping, Mapping, "mapping")
    v = ctypes.c_double()
    _call(fn.drift, profile, built_on, window, mapping, _byref(v))
    return v.value
