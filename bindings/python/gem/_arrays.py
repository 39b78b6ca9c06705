"""Conversion of Python data (lists, nested lists, array.array, memoryview, numpy arrays or any
other buffer) into the C arrays libgem takes, with their shape.

Buffers whose items are already of the wanted C type and C-contiguous are copied in one go;
anything else is converted item by item, with range checks, because ctypes would silently
truncate an out-of-range integer.
"""
import ctypes
import operator
import struct
import sys

from ._types import GemError, Status

_INT_CODES = "bhilqn"
_FLOAT_CODES = "efd"
_LIMITS = {ctypes.c_int32: (-2 ** 31, 2 ** 31 - 1), ctypes.c_int64: (-2 ** 63, 2 ** 63 - 1)}


def _native_code(fmt):
    """The struct code of a buffer format in native byte order, or None."""
    if not fmt:
        return None
    prefix, code = fmt[:-1], fmt[-1]
    if prefix in ("", "@", "="):
        return code
    if prefix == "<" and sys.byteorder == "little":
        return code
    return None


def _fast_path(mv, ctype):
    code = _native_code(mv.format)
    if code is None or not mv.c_contiguous:
        return False
    want = _FLOAT_CODES if ctype is ctypes.c_double else _INT_CODES
    try:
        return code in want and struct.calcsize(code) == ctypes.sizeof(ctype)
    except struct.error:
        return False


def _nested(seq, what):
    """Flattens a regular nested sequence; returns (flat list, shape)."""
    shape = []
    probe = seq
    while isinstance(probe, (list, tuple)) or _is_buffer(probe):
        if _is_buffer(probe):
            mv = memoryview(probe)
            shape.extend(mv.shape if mv.ndim else ())
            break
        shape.append(len(probe))
        if not probe:
            break
        probe = probe[0]
    flat = []

    def walk(x, depth):
        if depth == len(shape):
            if isinstance(x, (list, tuple)):
                raise GemError(Status.INVALID_ARGUMENT, "%s: nested deeper than its first row" % what)
            flat.append(x)
            return
        if _is_buffer(x):
            mv = memoryview(x)
            if tuple(mv.shape) != tuple(shape[depth:]):
                raise GemError(Status.INVALID_ARGUMENT,
                               "%s: a row of shape %s where %s was expected"
                               % (what, tuple(mv.shape), tuple(shape[depth:])))
            flat.extend(_flatten_list(mv.tolist()))
            return
        if not isinstance(x, (list, tuple)) or len(x) != shape[depth]:
            raise GemError(Status.INVALID_ARGUMENT,
                           "%s: rows of different lengths (not a regular array)" % what)
        for y in x:
            walk(y, depth + 1)

    walk(seq, 0)
    return flat, tuple(shape)


def _flatten_list(x):
    if not isinstance(x, list):
        return [x]
    out = []
    for y in x:
        out.extend(_flatten_list(y))
    return out


def _is_buffer(x):
    if isinstance(x, (str, list, tuple)):
        return False
    try:
        memoryview(x)
    except TypeError:
        return False
    return True


def to_c(values, ctype, what):
    """Returns (ctypes array, n, shape) for values of any supported kind.

    ctype is ctypes.c_double, c_int32 or c_int64."""
    if values is None:
        raise TypeError("%s must be an array of numbers, not None" % what)
    if isinstance(values, str):
        raise TypeError("%s must be an array of numbers, not %s" % (what, type(values).__name__))
    if _is_buffer(values):
        mv = memoryview(values)
        shape = tuple(mv.shape) if mv.ndim else (1,)
        if _fast_path(mv, ctype):
            n = mv.nbytes // ctypes.sizeof(ctype)
            arr = (ctype * n).from_buffer_copy(mv.cast("B")) if n else (ctype * 0)()
            return arr, n, shape
        flat = _flatten_list(mv.tolist())
    elif isinstance(values, (list, tuple)):
        flat, shape = _nested(values, what)
    else:
        try:
            items = list(values)
        except TypeError:
            raise TypeError("%s must be an array of numbers, not %s"
                            % (what, type(values).__name__)) from None
        flat, shape = _nested(items, what)
    n = len(flat)
    arr = (ctype * n)()
    if ctype is ctypes.c_double:
        for i, x in enumerate(flat):
            try:
                if isinstance(x, (str, bytes)):
                    raise TypeError
                arr[i] = float(x)
            except (TypeError, ValueError):
                raise TypeError("%s[%d]: %r is not a number" % (what, i, x)) from None
    else:
        lo, hi = _LIMITS[ctype]
        for i, x in enumerate(flat):
            if isinstance(x, float) and x.is_integer():
                x = int(x)
            try:
                v = operator.index(x)
            except TypeError:
                raise TypeError("%s[%d]: %r is not an integer" % (what, i, x)) from None
            if not lo <= v <= hi:
                raise GemError(Status.INVALID_ARGUMENT,
                               "%s[%d]: %d does not fit in %d bits"
                               % (what, i, v, 8 * ctypes.sizeof(ctype)))
            arr[i] = v
    return arr, n, shape
