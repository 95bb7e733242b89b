"""The test toolkit: one error measure, one gradient checker, one no-mutation check, the
memory layouts inputs come in, and the Hypothesis strategies for conv and pool cases.

Imported as ``from _arrays import ...`` (pytest puts tests/ on sys.path, as for _grad_oracle).

The error measure (the only one the tests use), per tensor, reference ``b``, result ``a``,
both read as float64::

    err  = max |a - b| / max(max |b|, TINY)          TINY = smallest normal float64
    pass = max |a - b| <= atol + rtol * max |b|      (atol = 0 unless a test says otherwise)

It is norm-wise: the worst element's error against the reference's largest magnitude, so
the values BN and ReLU push to (near) zero do not blow it up as an element-wise relative
error would. It is the product's own measure (``max_rel`` and the pass rule of
numpy_resnext.golden), written out again here rather than imported, so that a bug in the
product's comparison cannot hide one in the code under test. The floor is TINY, not 1: a
floor of 1 turns the check into an absolute one whenever the reference is small (gradients,
probabilities, BN outputs of a small batch are often far below 1) and so silently loosens it;
TINY only guards the division, and an all-zero reference then demands an exact zero (what
every op here returns for zero input), unless the test passes an ``atol``. Shapes must be
equal exactly (the product also accepts size-1 axes squeezed away; the tests never need that).

Gradients are checked the CS231n way, against centred finite differences of a scalar loss,
with the same measure (:func:`numeric_grad`, :func:`assert_grad`).
"""

from typing import NamedTuple

import numpy as np
from hypothesis import assume, strategies as st

TINY = float(np.finfo(np.float64).tiny)


# --- the error measure ----------------------------------------------------------------------
def rel_err(actual, expected):
    """max |actual - expected| / max(max |expected|, TINY), in float64 (the measure above)."""
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    diff = np.abs(np.asarray(actual, np.float64) - np.asarray(expected, np.float64))
    scale = float(np.abs(np.asarray(expected, np.float64)).max(initial=0.0))
    return float(diff.max(initial=0.0)) / max(scale, TINY)


def assert_close(actual, expected, rtol=1e-12, what="", atol=0.0):
    """Pass iff max |actual - expected| <= atol + rtol * max |expected|; ``what`` labels a failure.

    NaN anywhere in the difference fails (a NaN never compares <=).
    """
    label = f"{what}: " if what else ""
    assert actual.shape == expected.shape, f"{label}shape {actual.shape} != expected {expected.shape}"
    diff = np.abs(np.asarray(actual, np.float64) - np.asarray(expected, np.float64))
    err = float(diff.max(initial=0.0))
    scale = float(np.abs(np.asarray(expected, np.float64)).max(initial=0.0))
    if not err <= atol + rtol * scale:
        where = np.unravel_index(int(np.nanargmax(diff)), diff.shape) if diff.size and not np.isnan(err) else ()
        raise AssertionError(
            f"{label}max |actual - expected| = {err:.3e} > atol + rtol * max|expected| = "
            f"{atol:g} + {rtol:g} * {scale:.3e} (relative {err / max(scale, TINY):.3e}); "
            f"worst at {where}\n  actual   {np.ravel(actual)[:5]}\n  expected {np.ravel(expected)[:5]}")


# --- gradients -------------------------------------------------------------------------------
H_STEP = 1e-6          # centred differences: truncation ~h^2, rounding ~eps/h; 1e-6 balances both
GRAD_RTOL = 1e-6


def numeric_grad(loss, x, h=H_STEP, at=None):
    """d loss / dx by centred differences on a float64 copy of x (x itself is never written).

    ``loss`` maps an array shaped like x to a scalar. ``at``: a list of indices to evaluate
    (a sparse check, for tensors too big to perturb entry by entry); the result is then the
    1-D array of those entries. Otherwise every entry, in x's shape.
    """
    x = np.array(x, dtype=np.float64)
    indices = list(np.ndindex(x.shape)) if at is None else [tuple(i) for i in at]
    g = np.zeros(len(indices))
    for n, i in enumerate(indices):
        old = x[i]
        x[i] = old + h
        up = loss(x)
        x[i] = old - h
        down = loss(x)
        x[i] = old
        g[n] = (up - down) / (2 * h)
    return g.reshape(x.shape) if at is None else g


def assert_grad(analytic, loss, x, what, h=H_STEP, rtol=GRAD_RTOL, at=None, atol=0.0):
    """The analytic gradient of ``loss`` at x against :func:`numeric_grad`, by the one measure;
    returns the relative error. With ``at`` (a sparse check) the scale is max |analytic| over
    the whole tensor, since the sampled numeric entries may all be small; ``atol`` (sparse
    checks only) is the centred difference's rounding noise, for a gradient that is zero."""
    numeric = numeric_grad(loss, x, h, at)
    label = f"{what} (analytic vs centred differences, h={h:g})"
    if at is None:
        assert_close(analytic, numeric, rtol=rtol, what=label)
        return rel_err(analytic, numeric)
    sampled = np.array([analytic[tuple(i)] for i in at], dtype=np.float64)
    scale = max(float(np.abs(analytic).max(initial=0.0)), TINY)
    assert_close(sampled, numeric, rtol=0.0, atol=max(rtol * scale, atol), what=f"{label} at {len(at)} entries")
    return float(np.abs(sampled - numeric).max(initial=0.0)) / scale


# --- inputs are never modified ------------------------------------------------------------------
def _arrays_in(args):
    """(label, array) for every array argument, and arrays one level inside tuples, lists, dicts."""
    for i, a in enumerate(args):
        if isinstance(a, np.ndarray):
            yield f"argument {i}", a
        elif isinstance(a, (tuple, list)):
            yield from ((f"argument {i}[{j}]", b) for j, b in enumerate(a) if isinstance(b, np.ndarray))
        elif isinstance(a, dict):
            yield from ((f"argument {i}[{k!r}]", b) for k, b in a.items() if isinstance(b, np.ndarray))


def assert_unmodified(fn, *args, **kwargs):
    """Call fn(*args, **kwargs) on writable inputs; fail if it changed any array it was given
    (an argument, or an array inside a tuple, list or dict argument). Returns fn's result.

    The inputs stay writable on purpose: a read-only input would make a write raise, but it
    can also send the function down another path (a defensive copy) than the one callers use.
    """
    arrays = list(_arrays_in(list(args) + list(kwargs.values())))
    before = [a.copy() for _, a in arrays]
    result = fn(*args, **kwargs)
    for (label, a), a0 in zip(arrays, before):
        assert a.shape == a0.shape and np.array_equal(a, a0, equal_nan=True), \
            f"{getattr(fn, '__name__', fn)} modified its {label} (shape {a0.shape})"
    return result


# --- memory layouts --------------------------------------------------------------------------
LAYOUTS = ("nchw", "channels_last", "transposed", "fortran", "strided")


def in_layout(a, layout):
    """The same values as ``a`` (N, C, H, W) in another memory layout, seen as NCHW.

    Always a new buffer, never ``a`` itself, so comparing the result with ``a`` afterwards
    can detect a write.
    """
    if layout == "nchw":
        return np.array(a, order="C", copy=True)
    if layout == "channels_last":             # NHWC memory seen as NCHW
        return np.ascontiguousarray(a.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    if layout == "transposed":                # (C, N, W, H) memory seen as NCHW
        return np.ascontiguousarray(a.transpose(1, 0, 3, 2)).transpose(1, 0, 3, 2)
    if layout == "fortran":
        return np.array(a, order="F", copy=True)
    if layout == "strided":                   # every other element of a larger buffer
        big = np.full(tuple(2 * s for s in a.shape), np.nan, dtype=a.dtype)
        view = big[::2, ::2, ::2, ::2]
        view[...] = a
        return view
    raise ValueError(f"unknown layout {layout!r}; expected one of {LAYOUTS}")


# --- Hypothesis strategies -------------------------------------------------------------------
def out_size(size, kernel, stride, padding):
    """floor((size + 2 padding - kernel) / stride) + 1: the conv (and floor-mode pool) length."""
    return (size + 2 * padding - kernel) // stride + 1


class ConvCase(NamedTuple):
    """x (N, G*Cg, H, W), w (G*Kg, Cg, R, S), stride and padding as (h, w) pairs, groups, and a
    generator seeded by the draw for any further arrays (dout, test vectors)."""
    x: np.ndarray
    w: np.ndarray
    stride: tuple
    padding: tuple
    groups: int
    rng: np.random.Generator

    @property
    def out_shape(self):
        (N, _, H, W), (K, _, R, S) = self.x.shape, self.w.shape
        return (N, K, out_size(H, R, self.stride[0], self.padding[0]),
                out_size(W, S, self.stride[1], self.padding[1]))


@st.composite
def conv_cases(draw, max_hw=6, max_kernel=3, max_groups=3, max_group_channels=2, groups=None,
               group_channels=None, batch=(1, 2), dtype=np.float64):
    """Every convolution test's cases: a valid, non-empty output; odd sizes, strides up to 3,
    paddings up to 2, per-axis stride and padding. ``groups`` / ``group_channels`` pin G or
    Cg = Kg (groups=1: plain; group_channels=1: depthwise)."""
    G = groups if groups is not None else draw(st.integers(1, max_groups))
    if group_channels is not None:
        Cg = Kg = group_channels
    else:
        Cg, Kg = draw(st.integers(1, max_group_channels)), draw(st.integers(1, max_group_channels))
    N = draw(st.integers(*batch))
    R, S = draw(st.integers(1, max_kernel)), draw(st.integers(1, max_kernel))
    H, W = draw(st.integers(1, max_hw)), draw(st.integers(1, max_hw))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    assume(out_size(H, R, stride[0], padding[0]) >= 1 and out_size(W, S, stride[1], padding[1]) >= 1)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.standard_normal((N, G * Cg, H, W)).astype(dtype)
    w = rng.standard_normal((G * Kg, Cg, R, S)).astype(dtype)
    return ConvCase(x, w, stride, padding, G, rng)


class PoolCase(NamedTuple):
    """x (N, C, H, W); kernel, stride, padding as ints (square) or (h, w) pairs; a generator."""
    x: np.ndarray
    kernel: object
    stride: object
    padding: object
    rng: np.random.Generator


@st.composite
def pool_cases(draw, max_hw=8, square=True, ties=False):
    """Every pooling test's cases: padding at most half the window, the padded input at least
    one window. ``ties``: integers from -2..2, so most windows have tied maxima."""
    n = 1 if square else 2
    k = tuple(draw(st.integers(1, 4)) for _ in range(n))
    s = tuple(draw(st.integers(1, 3)) for _ in range(n))
    p = tuple(draw(st.integers(0, ki // 2)) for ki in k)
    if square:
        k, s, p = k * 2, s * 2, p * 2
    N, C = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    H, W = draw(st.integers(1, max_hw)), draw(st.integers(1, max_hw))
    assume(H + 2 * p[0] >= k[0] and W + 2 * p[1] >= k[1])
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if ties:
        x = rng.integers(-2, 3, (N, C, H, W)).astype(np.float64)
    else:
        x = rng.standard_normal((N, C, H, W))
    if square:
        return PoolCase(x, k[0], s[0], p[0], rng)
    return PoolCase(x, k, s, p, rng)
