"""Small argument checks shared by the ops; each error names what was expected and found."""

import numpy as np

from .errors import InputError, InputTypeError

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def as_float_array(x, what="input"):
    """``x`` as an ndarray of float32/float64, never copied or cast; clear errors otherwise."""
    if not isinstance(x, np.ndarray):
        raise InputTypeError(f"{what}: expected a numpy.ndarray, found {type(x).__name__}")
    if x.dtype not in FLOAT_DTYPES:
        kind = {"i": "integer", "u": "unsigned integer", "b": "boolean", "c": "complex",
                "O": "object", "f": "floating"}.get(x.dtype.kind, x.dtype.kind)
        raise InputTypeError(
            f"{what}: expected dtype float32 or float64, found {x.dtype} ({kind}); "
            f"convert explicitly, e.g. x.astype(np.float32)")
    return x


def float_dtype(dtype, what="dtype"):
    """``dtype`` as numpy.float32 or numpy.float64; a clear error for anything else.

    (``np.dtype(None)`` is float64 and a dtype compares equal to None, so neither a failed
    conversion nor None may slip through a plain ``in FLOAT_DTYPES`` test.)
    """
    try:
        dt = None if dtype is None else np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt not in FLOAT_DTYPES:
        raise InputTypeError(f"{what}: expected 'float32' or 'float64', found {dtype!r}")
    return dt


def check_ndim(x, ndim, layout, what="input"):
    if x.ndim != ndim:
        raise InputError(f"{what}: expected a {ndim}-D array {layout}, found {x.ndim}-D with shape {x.shape}")


def check_same_dtype(x, w, what_x="input", what_w="weight"):
    if x.dtype != w.dtype:
        raise InputTypeError(
            f"{what_x} has dtype {x.dtype} but {what_w} has dtype {w.dtype}; numpy-resnext never "
            f"mixes precisions silently: cast one of them explicitly")


def pair(v, what):
    """An int or a pair of ints as a 2-tuple of ints."""
    if isinstance(v, (int, np.integer)):
        return int(v), int(v)
    t = tuple(int(i) for i in v)
    if len(t) != 2:
        raise InputError(f"{what}: expected an int or a pair of ints, found {v!r}")
    return t
