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


def check_finite(x, what="input", option="pass allow_nonfinite=True (--allow-non-finite)"):
    """``x`` if every value is finite; else InputError with how many are not, of which kind,
    and the index of the first one (NaN and infinity are refused by default: a forward pass
    turns them into NaN logits and goldens that compare as failures everywhere)."""
    if x.dtype.kind not in "fc" or x.size == 0:
        return x
    if x.dtype.itemsize <= 4 and np.isfinite(x.sum(dtype=np.float64)):
        return x                      # a float64 sum of float32 values cannot overflow
    bad = ~np.isfinite(x)
    count = int(np.count_nonzero(bad))
    if not count:
        return x
    first = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), x.shape))
    kinds = [k for k, n in (("NaN", np.isnan(x).any()), ("infinite", np.isinf(x).any())) if n]
    raise InputError(f"{what}: {count:,} of {x.size:,} values are NaN or infinite "
                     f"({' and '.join(kinds)}), the first at index {first}; inputs must be "
                     f"finite ({option} to test how NaN and infinity propagate)")


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
