"""im2col: a convolution's input unfolded into columns, so that the convolution is one
batched matrix multiply (:mod:`.conv` runs it), and the pieces that build the columns.

Shapes: activations are (N, C, H, W) at the API; weights are (K, C/G, R, S) as Paddle and
torch store them. In this module C always counts channels and G is the number of groups
(in a ResNeXt block's 3x3, G is the cardinality, which the paper writes C); K counts the
output channels, R x S is the kernel, OH x OW the output size:

    OH = floor((H + 2*ph - R) / sh) + 1        OW = floor((W + 2*pw - S) / sw) + 1

The im2col column order (used by :func:`im2col`, :func:`col2im`, :func:`weight_matrix`)
-------------------------------------------------------------------------------------
``cols`` has shape (G, P, R*S*Cg) with P = N*OH*OW and Cg = C/G:

    cols[g, (n*OH + oh)*OW + ow, (r*S + s)*Cg + c] = xpad[n, g*Cg + c, oh*sh + r, ow*sw + s]

that is rows in (n, oh, ow) order and columns in (r, s, c) order with the channel fastest,
the channel index counted inside group g. The matching weight matrix is
``Wmat[g, (r*S + s)*Cg + c, k] = w[g*Kg + k, c, r, s]`` (Kg = K/G), so that

    out[g, p, k] = sum_j cols[g, p, j] * Wmat[g, j, k]        (G, P, Kg)

is one batched matmul over the group axis: groups are an array axis, never a Python loop.
The result is the channels-last output (P, G*Kg) read as (N, OH, OW, K).
"""

from __future__ import annotations

import numpy as np

from .._checks import check_ndim, pair
from ..errors import InputError
from .cpu import l2_bytes


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """floor((size + 2*padding - kernel) / stride) + 1, the output-size law."""
    return (size + 2 * padding - kernel) // stride + 1


def channels_last(x: np.ndarray) -> np.ndarray:
    """The (N, H, W, C) view of an (N, C, H, W) array (no copy)."""
    return x.transpose(0, 2, 3, 1)


def from_channels_last(xh: np.ndarray) -> np.ndarray:
    """The (N, C, H, W) view of an (N, H, W, C) array (no copy)."""
    return xh.transpose(0, 3, 1, 2)


def pad_channels_last(xh, ph, pw, value=0.0):
    """Zero- (or ``value``-) pad the spatial axes of an (N, H, W, C) array."""
    if ph == 0 and pw == 0:
        return xh
    N, H, W, C = xh.shape
    xp = np.full((N, H + 2 * ph, W + 2 * pw, C), value, dtype=xh.dtype)
    xp[:, ph:ph + H, pw:pw + W, :] = xh
    return xp


def _items(a, n):
    """View the last axis of ``a`` (..., k*n), contiguous, as (..., k) opaque items of n values.

    Why: NumPy copies a strided array run by run along its last axis; moving a group's few
    channels (or a kernel row's S*Cg values) as one item lets a copy move 16..4608-byte
    items instead of looping over short runs of numbers (3-5x faster for 4 channels).
    """
    return a.view(np.dtype((np.void, n * a.dtype.itemsize)))


def group_major(x, groups, ph=0, pw=0):
    """(G, N, H+2ph, W+2pw, C/G): each group's channels as an image of its own, zero-padded.

    In a group's own image the channels of neighbouring pixels are neighbours in memory,
    so one row of a kernel window (S pixels x Cg channels) is one run of S*Cg values.
    """
    N, C, H, W = x.shape
    G = int(groups)
    Cg = C // G
    xg = np.empty((G, N, H + 2 * ph, W + 2 * pw, Cg), dtype=x.dtype)
    xg[:, :, :ph] = 0
    xg[:, :, ph + H:] = 0
    xg[:, :, ph:ph + H, :pw] = 0
    xg[:, :, ph:ph + H, pw + W:] = 0
    inner = xg[:, :, ph:ph + H, pw:pw + W]                               # G, N, H, W, Cg
    xh = channels_last(x)                                                # N, H, W, C
    if xh.flags.c_contiguous and xh.size:   # channels-last memory: each group moves as one item
        dest, src = _items(inner, Cg)[..., 0], _items(xh, Cg)           # G, N, H, W and N, H, W, G
        step = max(1, (l2_bytes() // 2) // (W * C * x.itemsize))       # input rows that fit in cache
        for n in range(N):      # a run of rows is read G times (once per group): from cache
            for h in range(0, H, step):
                dest[:, n, h:h + step] = src[n, h:h + step].transpose(2, 0, 1)
    else:
        inner[...] = x.reshape(N, G, Cg, H, W).transpose(1, 0, 3, 4, 2)
    return xg


def _kernel_rows(xg, S, sw, OW):
    """(G, N, H', OW) items of S*Cg values: item [g, n, h, ow] holds xg[g, n, h, ow*sw : ow*sw + S]
    (one row of the kernel window of output column ow), a view into xg, windows overlapping."""
    G, N, Hp, Wp, Cg = xg.shape
    gs, ns, hs = xg.strides[:3]
    return np.ndarray((G, N, Hp, OW), dtype=np.dtype((np.void, S * Cg * xg.itemsize)), buffer=xg,
                      strides=(gs, ns, hs, sw * Cg * xg.itemsize))


def _gather(cols, rows_view, sh, g0=0, n0=0, oh0=0):
    """Fill ``cols`` (g, n, rows, OW, R, S*Cg) with the columns of groups g0.., images n0..,
    output rows oh0..: R strided copies, one per kernel row, of S*Cg-value items:

        cols[g, n, i, ow, r, :] = xg[g0 + g, n0 + n, (oh0 + i)*sh + r, ow*sw : ow*sw + S, :]
    """
    g, n, rows, OW, R = cols.shape[:5]
    dest = _items(cols, cols.shape[5])[..., 0]                           # g, n, rows, OW, R items
    for r in range(R):
        dest[..., r] = rows_view[g0:g0 + g, n0:n0 + n, oh0 * sh + r:(oh0 + rows - 1) * sh + r + 1:sh]


def _unfold_args(x_shape, kernel, stride, padding, groups, what):
    """Kernel, stride, padding as pairs, G and (OH, OW) for im2col/col2im, with clear errors."""
    N, C, H, W = x_shape
    R, S = pair(kernel, "kernel")
    sh, sw = pair(stride, "stride")
    ph, pw = pair(padding, "padding")
    G = int(groups)
    if G < 1 or C % G:
        raise InputError(f"{what}: groups={groups} must divide the input channels {C}")
    OH, OW = conv_output_size(H, R, sh, ph), conv_output_size(W, S, sw, pw)
    if OH < 1 or OW < 1:
        raise InputError(f"{what}: input {H}x{W} with padding {ph},{pw} is smaller than the {R}x{S} kernel")
    return (R, S), (sh, sw), (ph, pw), G, (OH, OW)


def im2col(x, kernel, stride=1, padding=0, groups=1):
    """Unfold (N, C, H, W) into columns (G, N*OH*OW, R*S*C/G); order in the module docstring.

    The result is C-contiguous: each group's columns are one (P, R*S*Cg) matrix, gathered
    from the group's own image (:func:`group_major`) one kernel row at a time.
    """
    check_ndim(x, 4, "(N, C, H, W)", "im2col input")
    N, C, H, W = x.shape
    (R, S), (sh, sw), (ph, pw), G, (OH, OW) = _unfold_args(x.shape, kernel, stride, padding, groups, "im2col")
    Cg = C // G
    cols = np.empty((G, N, OH, OW, R, S * Cg), dtype=x.dtype)
    if cols.size:
        _gather(cols, _kernel_rows(group_major(x, G, ph, pw), S, sw, OW), sh)
    return cols.reshape(G, N * OH * OW, R * S * Cg)                      # G, P, R*S*Cg


def col2im(cols, x_shape, kernel, stride=1, padding=0, groups=1):
    """The adjoint of :func:`im2col`: scatter-add columns back to an (N, C, H, W) array."""
    N, C, H, W = x_shape
    (R, S), (sh, sw), (ph, pw), G, (OH, OW) = _unfold_args(x_shape, kernel, stride, padding, groups, "col2im")
    Cg = C // G
    if cols.shape != (G, N * OH * OW, R * S * Cg):
        raise InputError(f"col2im: columns for input {tuple(x_shape)} should have shape "
                         f"(G, N*OH*OW, R*S*C/G) = {(G, N * OH * OW, R * S * Cg)}, found {cols.shape}")
    c = cols.reshape(G, N, OH, OW, R, S, Cg).transpose(1, 2, 3, 4, 5, 0, 6)  # N, OH, OW, R, S, G, Cg
    c = c.reshape(N, OH, OW, R, S, C)
    xp = np.zeros((N, H + 2 * ph, W + 2 * pw, C), dtype=cols.dtype)         # N, H', W', C
    for r in range(R):          # R*S strided adds; overlapping windows accumulate
        for s in range(S):
            xp[:, r:r + (OH - 1) * sh + 1:sh, s:s + (OW - 1) * sw + 1:sw, :] += c[:, :, :, r, s, :]
    return from_channels_last(xp[:, ph:ph + H, pw:pw + W, :])


def weight_matrix(weight, groups=1):
    """(K, C/G, R, S) weights as (G, R*S*C/G, K/G), matching :func:`im2col`'s columns.

    The result is the transposed view of a (G, K/G, R*S*C/G) array: making it only moves
    each filter's taps and channels around inside its own row, a copy that stays in cache,
    and BLAS reads a transposed operand at no extra cost. (Copying rows into columns
    instead, a transpose across the whole 170 MB of a 32x48d stage-4 convolution's weights,
    made that convolution take 273 ms instead of 106.)
    """
    K, Cg, R, S = weight.shape
    G = int(groups)
    w = weight.reshape(G, K // G, Cg, R, S).transpose(0, 1, 3, 4, 2)    # G, Kg, R, S, Cg
    return np.ascontiguousarray(w).reshape(G, K // G, R * S * Cg).transpose(0, 2, 1)  # G, R*S*Cg, Kg


def weight_from_matrix(wmat, weight_shape):
    """The inverse of :func:`weight_matrix`: (G, R*S*Cg, Kg) -> (K, Cg, R, S)."""
    K, Cg, R, S = weight_shape
    G = wmat.shape[0]
    w = wmat.reshape(G, R, S, Cg, K // G).transpose(0, 4, 3, 1, 2)      # G, Kg, Cg, R, S
    return np.ascontiguousarray(w).reshape(K, Cg, R, S)
