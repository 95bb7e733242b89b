"""Pooling: max-pool (the stem), average pool with ceil_mode and exclusive counting (the vd
shortcut), and global average pool (the head).

Output-size law, floor mode:   OH = floor((H + 2p - k) / s) + 1
ceil mode:                     OH = ceil((H + 2p - k) / s) + 1, minus one if the last window
                               would start in the right padding ((OH - 1) * s >= H + p),
the rule Paddle and torch share (max-pool in ceil mode: the legacy SENet stem, 3x3/2 with
no padding). Max-pool pads with -inf so padding never wins the max;
the exclusive average divides each window's sum by the number of real pixels in it.
Inputs are (N, C, H, W); outputs keep the input's memory order (channels-last stays so).
"""

from __future__ import annotations

import math

import numpy as np

from .._checks import as_float_array, check_ndim, pair
from .im2col import channels_last, from_channels_last, pad_channels_last
from ..errors import InputError


def pool_output_size(size, kernel, stride, padding=0, ceil_mode=False):
    """Output length of a pooling window sliding over ``size`` pixels."""
    if ceil_mode:
        out = math.ceil((size + 2 * padding - kernel) / stride) + 1
        if (out - 1) * stride >= size + padding:
            out -= 1
        return out
    return (size + 2 * padding - kernel) // stride + 1


def _check_pool(x, kernel, stride, padding, what):
    x = as_float_array(x, f"{what} input")
    check_ndim(x, 4, "(N, C, H, W)", f"{what} input")
    k, s, p = pair(kernel, "kernel"), pair(stride, "stride"), pair(padding, "padding")
    if p[0] * 2 > k[0] or p[1] * 2 > k[1]:
        raise InputError(f"{what}: padding {p} must be at most half the kernel {k}")
    return x, k, s, p


def _window_slices(k, s, out_hw):
    """The slices of a padded channels-last array that each kernel offset (r, c) reads,
    row by row through the window (the order the max-pool tie rule relies on)."""
    (OH, OW), (sh, sw) = out_hw, s
    for r in range(k[0]):
        for c in range(k[1]):
            yield (slice(None), slice(r, r + (OH - 1) * sh + 1, sh), slice(c, c + (OW - 1) * sw + 1, sw))


def _windows(xh, k, s, out_hw):
    """Yield the kernel-offset views (N, OH, OW, C) of a padded channels-last array."""
    return (xh[sl] for sl in _window_slices(k, s, out_hw))


def _avg_count(H, W, k, s, p, out_hw, exclusive, dtype):
    """How many pixels each average-pool window divides by: (1, OH, OW, 1).

    Exclusive: the real pixels in the window. Inclusive (torch count_include_pad, Paddle
    exclusive=False): padding counts too, but not the part of a ceil-mode window hanging
    past the right/bottom padding.
    """
    OH, OW = out_hw
    Hn, Wn = (OH - 1) * s[0] + k[0], (OW - 1) * s[1] + k[1]
    counted = np.zeros((1, Hn, Wn, 1), dtype=dtype)                      # 1, H', W', 1
    if exclusive:
        hi, wi = min(H, Hn - p[0]), min(W, Wn - p[1])
        counted[:, p[0]:p[0] + hi, p[1]:p[1] + wi, :] = 1
    else:
        counted[:, :H + 2 * p[0], :W + 2 * p[1], :] = 1
    return sum(_windows(counted, k, s, out_hw))                          # 1, OH, OW, 1


def _inside(tap, pad, stride, size, out_size):
    """The outputs [o0, o1) whose pixel at kernel offset ``tap`` lies inside the input:
    0 <= o*stride - pad + tap <= size - 1."""
    return max(0, -((tap - pad) // stride)), min(out_size, (size - 1 + pad - tap) // stride + 1)


def maxpool2d(x, kernel=3, stride=2, padding=1, ceil_mode=False):
    """Max over each window; padding is -inf and never wins. (N,C,H,W) -> (N,C,OH,OW).
    ``ceil_mode``: the last window may hang over the edge (the legacy SENet stem's pool);
    only its real pixels take part."""
    x, k, s, p = _check_pool(x, kernel, stride, padding, "maxpool2d")
    N, C, H, W = x.shape
    OH = pool_output_size(H, k[0], s[0], p[0], ceil_mode)
    OW = pool_output_size(W, k[1], s[1], p[1], ceil_mode)
    if OH < 1 or OW < 1:
        raise InputError(f"maxpool2d: input {H}x{W} is smaller than the {k[0]}x{k[1]} window")
    # separable: a window's max is the max over its columns of each column's max. Down the
    # rows first, a tap being a run of whole rows (long inner loops over W*C values), then
    # along W on the k[0]-times smaller result. Padding is -inf, so it never wins: instead
    # of padding the input, each tap covers only the outputs whose pixel lies inside it.
    cols = np.full((N, OH, W, C), -np.inf, dtype=x.dtype)               # N, OH, W, C
    for r in range(k[0]):
        o0, o1 = _inside(r, p[0], s[0], H, OH)
        if o1 > o0:
            rows = channels_last(x)[:, o0 * s[0] - p[0] + r:(o1 - 1) * s[0] - p[0] + r + 1:s[0]]
            np.maximum(cols[:, o0:o1], rows, out=cols[:, o0:o1])
    out = np.full((N, OH, OW, C), -np.inf, dtype=x.dtype)               # N, OH, OW, C
    for c in range(k[1]):
        o0, o1 = _inside(c, p[1], s[1], W, OW)
        if o1 > o0:
            np.maximum(out[:, :, o0:o1], cols[:, :, o0 * s[1] - p[1] + c:(o1 - 1) * s[1] - p[1] + c + 1:s[1]],
                       out=out[:, :, o0:o1])
    return from_channels_last(out)


def avgpool2d(x, kernel=2, stride=2, padding=0, ceil_mode=True, exclusive=True):
    """Average over each window, (N,C,H,W) -> (N,C,OH,OW).

    With ``exclusive`` (Paddle's default, torch's count_include_pad=False) only pixels that
    lie inside the input count; windows that ceil_mode lets hang over the edge average just
    their real pixels. Without it padding pixels count too, but never the part of a
    ceil-mode window beyond the padding (as Paddle and torch divide).
    """
    x, k, s, p = _check_pool(x, kernel, stride, padding, "avgpool2d")
    N, C, H, W = x.shape
    OH = pool_output_size(H, k[0], s[0], p[0], ceil_mode)
    OW = pool_output_size(W, k[1], s[1], p[1], ceil_mode)
    if OH < 1 or OW < 1:
        raise InputError(f"avgpool2d: input {H}x{W} is smaller than the {k[0]}x{k[1]} window")
    # pad left/top by p and right/bottom by whatever the last window needs
    Hn, Wn = (OH - 1) * s[0] + k[0], (OW - 1) * s[1] + k[1]
    xp = np.zeros((N, Hn, Wn, C), dtype=x.dtype)                         # N, H', W', C
    hi, wi = min(H, Hn - p[0]), min(W, Wn - p[1])
    xp[:, p[0]:p[0] + hi, p[1]:p[1] + wi, :] = channels_last(x)[:, :hi, :wi, :]
    total = sum(v for v in _windows(xp, k, s, (OH, OW)))                 # N, OH, OW, C
    return from_channels_last(total / _avg_count(H, W, k, s, p, (OH, OW), exclusive, x.dtype))


def global_avgpool(x):
    """Mean over H and W: (N, C, H, W) -> (N, C)."""
    x = as_float_array(x, "global_avgpool input")
    check_ndim(x, 4, "(N, C, H, W)", "global_avgpool input")
    N, C, H, W = x.shape
    xh = channels_last(x)
    if xh.flags.c_contiguous:                       # channels-last memory: average rows of (H*W, C)
        return xh.reshape(N, H * W, C).mean(axis=1)
    return x.mean(axis=(2, 3))


# --- backward ---------------------------------------------------------------------------

def maxpool2d_backward(dout, x, kernel=3, stride=2, padding=1, ceil_mode=False):
    """Gradient of :func:`maxpool2d` for its input: (N, C, OH, OW) -> (N, C, H, W).

    Each window's gradient goes to one pixel, its maximum. Tie rule: when several pixels
    share the maximum, the *first* one in the window (row by row, left to right) gets it
    all, as Paddle's and torch's CPU kernels do; padding never wins. Nothing is modified.
    """
    x, k, s, p = _check_pool(x, kernel, stride, padding, "maxpool2d_backward")
    N, C, H, W = x.shape
    OH = pool_output_size(H, k[0], s[0], p[0], ceil_mode)
    OW = pool_output_size(W, k[1], s[1], p[1], ceil_mode)
    if dout.shape != (N, C, OH, OW):
        raise InputError(f"maxpool2d_backward: dout should have shape {(N, C, OH, OW)}, found {dout.shape}")
    xp = pad_channels_last(channels_last(x), p[0], p[1], value=-np.inf)  # N, H+2p, W+2p, C
    # a ceil-mode window hanging past the padding reads -inf there too
    Hn, Wn = (OH - 1) * s[0] + k[0], (OW - 1) * s[1] + k[1]
    if Hn > xp.shape[1] or Wn > xp.shape[2]:
        grown = np.full((N, max(Hn, xp.shape[1]), max(Wn, xp.shape[2]), C), -np.inf, dtype=xp.dtype)
        grown[:, :xp.shape[1], :xp.shape[2]] = xp
        xp = grown                                                       # N, H', W', C
    out = channels_last(maxpool2d(x, k, s, p, ceil_mode))                # N, OH, OW, C
    dh = channels_last(dout)
    dxp = np.zeros(xp.shape, dtype=dout.dtype)
    taken = np.zeros(out.shape, dtype=bool)                              # window already routed
    zero = np.zeros((), dtype=dout.dtype)
    for sl in _window_slices(k, s, (OH, OW)):
        hit = (xp[sl] == out) & ~taken
        dxp[sl] += np.where(hit, dh, zero)
        taken |= hit
    return from_channels_last(dxp[:, p[0]:p[0] + H, p[1]:p[1] + W, :])


def avgpool2d_backward(dout, x_shape, kernel=2, stride=2, padding=0, ceil_mode=True, exclusive=True):
    """Gradient of :func:`avgpool2d` for its input: each window spreads dout / count over
    the pixels it averaged (count = real pixels when ``exclusive``). -> (N, C, H, W)."""
    k, s, p = pair(kernel, "kernel"), pair(stride, "stride"), pair(padding, "padding")
    N, C, H, W = x_shape
    OH = pool_output_size(H, k[0], s[0], p[0], ceil_mode)
    OW = pool_output_size(W, k[1], s[1], p[1], ceil_mode)
    if dout.shape != (N, C, OH, OW):
        raise InputError(f"avgpool2d_backward: dout should have shape {(N, C, OH, OW)}, found {dout.shape}")
    Hn, Wn = (OH - 1) * s[0] + k[0], (OW - 1) * s[1] + k[1]
    hi, wi = min(H, Hn - p[0]), min(W, Wn - p[1])
    g = channels_last(dout) / _avg_count(H, W, k, s, p, (OH, OW), exclusive, dout.dtype)  # N, OH, OW, C
    dxp = np.zeros((N, Hn, Wn, C), dtype=dout.dtype)
    for sl in _window_slices(k, s, (OH, OW)):
        dxp[sl] += g
    dxh = np.zeros((N, H, W, C), dtype=dout.dtype)                       # pixels no window read get 0
    dxh[:, :hi, :wi, :] = dxp[:, p[0]:p[0] + hi, p[1]:p[1] + wi, :]
    return from_channels_last(dxh)


def global_avgpool_backward(dout, x_shape):
    """Gradient of :func:`global_avgpool`: (N, C) -> (N, C, H, W), dout / (H*W) everywhere."""
    N, C, H, W = x_shape
    dxh = np.empty((N, H, W, C), dtype=dout.dtype)
    dxh[...] = (dout / (H * W))[:, None, None, :]                        # N, 1, 1, C broadcast
    return from_channels_last(dxh)
