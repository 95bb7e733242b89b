"""Array helpers shared by the tests: closeness checks and the memory layouts inputs come in.

Imported as ``from _arrays import ...`` (pytest puts tests/ on sys.path, as for _grad_oracle).
Both error measures are norm-wise: the worst element's error against the largest magnitude
of the reference, computed in float64.
"""

import numpy as np


def assert_close(actual, expected, rtol=1e-12, what=""):
    """max |actual - expected| <= rtol * max(max |expected|, 1); ``what`` labels the failure."""
    label = f"{what}: " if what else ""
    assert actual.shape == expected.shape, (what, actual.shape, expected.shape)
    scale = max(float(np.abs(expected).max(initial=0.0)), 1.0)
    err = float(np.abs(actual.astype(np.float64) - expected).max(initial=0.0))
    assert err <= rtol * scale, f"{label}max abs diff {err:.3e} > {rtol:g} * {scale:.3e}"


def rel_err(ours, theirs):
    """max |ours - theirs| relative to max |theirs|, in float64 (absolute if theirs is all 0)."""
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    diff = ours.astype(np.float64) - theirs.astype(np.float64)
    scale = float(np.abs(theirs).max(initial=0.0)) or 1.0
    return float(np.abs(diff).max(initial=0.0)) / scale


LAYOUTS = ("nchw", "channels_last", "transposed", "fortran", "strided")


def in_layout(a, layout):
    """The same values as ``a`` (N, C, H, W) in another memory layout, seen as NCHW."""
    if layout == "nchw":
        return np.ascontiguousarray(a)
    if layout == "channels_last":             # NHWC memory seen as NCHW
        return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    if layout == "transposed":                # (C, N, W, H) memory seen as NCHW
        return np.ascontiguousarray(a.transpose(1, 0, 3, 2)).transpose(1, 0, 3, 2)
    if layout == "fortran":
        return np.asfortranarray(a)
    if layout == "strided":                   # every other element of a larger buffer
        big = np.full(tuple(2 * s for s in a.shape), np.nan, dtype=a.dtype)
        view = big[::2, ::2, ::2, ::2]
        view[...] = a
        return view
    raise ValueError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")
