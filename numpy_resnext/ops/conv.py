"""Grouped 2-D convolution by im2col and one batched matrix multiply, forward and backward.

The columns and their order are defined in :mod:`.im2col`; this module runs the product
block by block, in cache-sized pieces.

Memory layout. Arrays the engine creates are NCHW *views* of channels-last (NHWC) memory,
the same idea as torch's ``channels_last`` memory format: ``x.transpose(0, 2, 3, 1)`` is then
contiguous, every pixel's channels sit next to each other, a 1x1 convolution is a single
GEMM with no copy, and a group's channels move as one item when the grouped
convolution's gather copies them. Any NCHW array is accepted.

How :func:`conv2d` runs it fast (same columns, same matmul; measured in benchmarks/)
------------------------------------------------------------------------------------
- The input is first copied group-major (:func:`group_major`): (G, N, H', W', Cg), each
  group's channels an image of its own, zero-padded. There the Cg channels of the S
  pixels under one row of a kernel window are one run of S*Cg values, so the gather is R
  strided copies (one per kernel row) of S*Cg-value items (:func:`_items`), not R*S
  copies of Cg-value items: 3x fewer, larger items for a 3x3 kernel. (Copying a group's
  channels as one opaque item, rather than letting NumPy copy 4-value runs, is what makes
  either form fast.)
- The columns of a group are one contiguous (P, R*S*Cg) matrix, and the batched matmul
  writes its (G, P, Kg) result straight into the (P, G, Kg) = channels-last output: no
  transpose copy of the columns or of the result.
- The weight matrix is the transposed view of (G, Kg, R*S*Cg) (:func:`weight_matrix`):
  making it moves values only within each filter's row, which stays in cache.
- conv2d gathers blocks of output rows into one reused buffer and runs the batched matmul
  block by block (:func:`column_blocks`). The full column matrix is R*S times the input
  (115 MB for a layer1 3x3 at batch 8); a block of half the L2 cache (read from sysfs)
  stays in cache between the gather that writes it and the matmul that reads it. When
  the weights of all groups exceed L2 (the wide WSL models: 2.6 MB for 48-channel
  groups), the groups go in equal chunks with at least K rows per product, so each
  chunk's weights are read once and each product is tall enough for BLAS.
- :func:`conv2d_backward` walks the same blocks: it gathers a block's columns, adds their
  part of dWmat, computes the block's dcols into the same buffer and scatters them back
  into a group-major dx, copied to channels-last at the end.
- An ungrouped 1x1 convolution without padding skips the gather: its column matrix is
  the channels-last input itself (every sh-th row and sw-th column), so it is one GEMM.
"""

from __future__ import annotations

import numpy as np

from .._checks import as_float_array, check_ndim, check_same_dtype, pair
from ..errors import InputError
from .cpu import l2_bytes
from .im2col import (_gather, _items, _kernel_rows, channels_last, conv_output_size, from_channels_last,
                     group_major, weight_from_matrix, weight_matrix)


def _check_conv_args(x, weight, stride, padding, groups):
    x = as_float_array(x, "conv2d input")
    w = as_float_array(weight, "conv2d weight")
    check_ndim(x, 4, "(N, C, H, W)", "conv2d input")
    check_ndim(w, 4, "(K, C/G, R, S)", "conv2d weight")
    check_same_dtype(x, w, "conv2d input", "conv2d weight")
    sh, sw = pair(stride, "stride")
    ph, pw = pair(padding, "padding")
    if sh < 1 or sw < 1 or ph < 0 or pw < 0:
        raise InputError(f"conv2d: stride must be >= 1 and padding >= 0, found stride={stride}, padding={padding}")
    N, C, H, W = x.shape
    K, Cg, R, S = w.shape
    G = int(groups)
    if G < 1 or C % G or K % G:
        raise InputError(f"conv2d: groups={groups} must divide input channels {C} and output channels {K}")
    if Cg != C // G:
        raise InputError(f"conv2d: weight {w.shape} expects {Cg * G} input channels with groups={G}, "
                         f"input has {C} (shape {x.shape})")
    OH, OW = conv_output_size(H, R, sh, ph), conv_output_size(W, S, sw, pw)
    if OH < 1 or OW < 1:
        raise InputError(f"conv2d: input {H}x{W} with padding {ph},{pw} is smaller than the {R}x{S} kernel")
    return x, w, (sh, sw), (ph, pw), G, (OH, OW)


def _gathered_blocks(kernel_rows, dtype, Gc, blocks, R, sh):
    """Gather the columns of every (group chunk, row block) of :func:`column_blocks` into
    one reused buffer, in turn; yields (g0, g1, (n0, n1, oh0, oh1), P, cols) with cols
    (g1-g0, n, rows, OW, R, S*Cg) holding that block's columns (:func:`_gather`). The buffer
    is overwritten by the next block, so each is used before the loop moves on."""
    G, OW = kernel_rows.shape[0], kernel_rows.shape[3]
    width = kernel_rows.itemsize // np.dtype(dtype).itemsize               # S*Cg values per item
    Kd = R * width
    buf = np.empty(max((Gc * (n1 - n0) * (oh1 - oh0) * OW * Kd for n0, n1, oh0, oh1 in blocks), default=0),
                   dtype=dtype)
    for g0 in range(0, G, Gc):          # groups in chunks: a chunk's weights stay in cache
        g1 = min(G, g0 + Gc)
        for n0, n1, oh0, oh1 in blocks:
            P = (n1 - n0) * (oh1 - oh0) * OW
            cols = buf[:(g1 - g0) * P * Kd].reshape(g1 - g0, n1 - n0, oh1 - oh0, OW, R, width)
            _gather(cols, kernel_rows, sh, g0, n0, oh0)
            yield g0, g1, (n0, n1, oh0, oh1), P, cols


def _row_blocks(N, OH, row_bytes, budget):
    """Split the N*OH output rows into blocks (n0, n1, oh0, oh1) whose columns fit ``budget``.

    Whole images per block when one image fits, else runs of rows of a single image.
    """
    rows = max(1, budget // row_bytes)
    if rows >= OH:
        step = rows // OH
        for n0 in range(0, N, step):
            yield n0, min(N, n0 + step), 0, OH
    else:
        for n in range(N):
            for oh0 in range(0, OH, rows):
                yield n, n + 1, oh0, min(OH, oh0 + rows)


# None: derived (below). Settable for experiments; benchmarks/bench_conv.py tries values,
# and benchmarks/bench_forward.py prints the choice for every grouped convolution.


COLUMN_BLOCK_BYTES = None       # column bytes per block
MIN_ROWS = None                 # rows per group product once groups go in chunks


def column_budget():
    """Column bytes per block: half the per-core L2 cache (the rest holds weights and output)."""
    return COLUMN_BLOCK_BYTES or l2_bytes() // 2


def column_blocks(N, OH, OW, G, K, Kg, itemsize):
    """(Gc, row blocks): groups per chunk and the (n0, n1, oh0, oh1) output-row blocks.

    Each block's columns (P rows x Gc groups x K) are gathered into one buffer and read by
    one batched matmul of Gc (P, K) x (K, Kg) products while they are still in cache:

    - the block's columns fit :func:`column_budget` (the gather writes them, the matmul
      reads them back from cache);
    - when the weights of all G groups are larger than the L2 cache, every block would
      read them all from memory again; the groups then go in equal chunks, one chunk's
      blocks after another, and a chunk holds as many groups as fit with at least
      min(K, N*OH*OW) rows each: a product of a few rows against a deep (K, Kg) weight
      matrix spends its time packing weights and waking BLAS threads (with 48-channel
      groups one output row of all 32 groups is 3.1 MB of columns, and the 56-row
      products ran at ~10 GFLOP/s). Narrower groups keep all G per block: the gather
      then copies G adjacent items per pixel.
    """
    budget = column_budget()
    row = OW * K * itemsize                                              # one output row, one group
    Gc = G
    if G * K * Kg * itemsize > l2_bytes():
        min_rows = min(MIN_ROWS or K, N * OH * OW)
        rows = min(N * OH, -(-min_rows // OW))                           # output rows for min_rows
        while Gc > 1 and Gc * rows * row > budget:
            Gc = max(d for d in range(1, Gc) if G % d == 0)              # chunks of equal size
    return Gc, list(_row_blocks(N, OH, Gc * row, budget))


def conv2d(x, weight, stride=1, padding=0, groups=1):
    """Grouped 2-D cross-correlation (no bias), as Paddle's and torch's conv2d.

    x: (N, C, H, W); weight: (K, C/G, R, S) -> (N, K, OH, OW), same dtype as x.
    The output is an NCHW view of channels-last memory (see the module docstring).
    """
    x, w, (sh, sw), (ph, pw), G, (OH, OW) = _check_conv_args(x, weight, stride, padding, groups)
    N, C, H, W = x.shape
    K, Cg, R, S = w.shape
    Kg = K // G
    out = np.empty((N, OH, OW, K), dtype=x.dtype)                        # channels-last result
    if R == 1 and S == 1 and ph == 0 and pw == 0 and G == 1:
        # 1x1: the column matrix is the channels-last input itself, one GEMM
        xh = channels_last(x)[:, ::sh, ::sw, :]                          # N, OH, OW, C
        np.matmul(xh.reshape(N * OH * OW, C), w.reshape(K, C).T, out=out.reshape(N * OH * OW, K))
        return from_channels_last(out)
    if out.size == 0 or x.size == 0:
        out[...] = 0                    # no output, or sums over nothing (zero input channels)
        return from_channels_last(out)
    # im2col block by block: the same columns as im2col(x), one batched matmul per block
    Kd = R * S * Cg
    kernel_rows = _kernel_rows(group_major(x, G, ph, pw), S, sw, OW)     # G, N, H', OW items
    wmat = weight_matrix(w, G)                                           # G, R*S*Cg, Kg
    Gc, blocks = column_blocks(N, OH, OW, G, Kd, Kg, x.itemsize)
    for g0, g1, (n0, n1, oh0, oh1), P, cols in _gathered_blocks(kernel_rows, x.dtype, Gc, blocks, R, sh):
        o = out[n0:n1, oh0:oh1].reshape(P, G, Kg)[:, g0:g1]              # P, g, Kg (a view)
        np.matmul(cols.reshape(g1 - g0, P, Kd), wmat[g0:g1], out=o.transpose(1, 0, 2))  # g, P, Kg
    return from_channels_last(out)


# --- backward -------------------------------------------------------------------------
# out = cols @ Wmat per group, so (the forward read in reverse):
#   dWmat = cols^T @ dout          (G, R*S*Cg, P) @ (G, P, Kg) -> (G, R*S*Cg, Kg)
#   dcols = dout @ Wmat^T          (G, P, Kg) @ (G, Kg, R*S*Cg) -> (G, P, R*S*Cg)
#   dx    = col2im(dcols)          the adjoint of the im2col gather (overlaps accumulate);
#                                  with stride 1, the same sum as a convolution of dout
#                                  with transposed_filters (conv2d_backward uses that)


def conv2d_backward(dout, x, weight, stride=1, padding=0, groups=1):
    """Gradients of :func:`conv2d` for its input and weight: returns (dx, dw).

    dout: (N, K, OH, OW), the gradient of the loss with respect to the output;
    dx: (N, C, H, W) like x; dw: (K, C/G, R, S) like weight. Nothing is modified.
    """
    x, w, (sh, sw), (ph, pw), G, (OH, OW) = _check_conv_args(x, weight, stride, padding, groups)
    N, C, H, W = x.shape
    K, Cg, R, S = w.shape
    dout = as_float_array(dout, "conv2d_backward dout")
    if dout.shape != (N, K, OH, OW):
        raise InputError(f"conv2d_backward: dout should have the output shape {(N, K, OH, OW)}, found {dout.shape}")
    P = N * OH * OW
    d = channels_last(dout).reshape(P, G, K // G)                       # P, G, Kg (copies if NCHW)
    if R == 1 and S == 1 and ph == 0 and pw == 0 and G == 1:
        xh = channels_last(x)[:, ::sh, ::sw, :].reshape(P, C)           # P, C
        dw = (d[:, 0, :].T @ xh).reshape(K, C, 1, 1)                     # K, C
        dxs = (d[:, 0, :] @ w.reshape(K, C)).reshape(N, OH, OW, C)       # N, OH, OW, C
        if sh == 1 and sw == 1:
            return from_channels_last(dxs), dw
        dxh = np.zeros((N, H, W, C), dtype=x.dtype)                     # stride s: only every s-th pixel was read
        dxh[:, ::sh, ::sw, :] = dxs
        return from_channels_last(dxh), dw
    dh = d.reshape(N, OH, OW, K)                                        # channels-last dout
    Kd, Kg = R * S * Cg, K // G
    # dx: with stride 1 a convolution of dout (transposed_filters, run by conv2d itself);
    # with a larger stride that form would multiply sh*sw times as many zeros, so the
    # columns' gradient dcols = dout Wmat^T is scattered back instead (col2im, block by block)
    by_convolution = sh == 1 and sw == 1 and ph <= R - 1 and pw <= S - 1
    xg = group_major(x, G, ph, pw)                                       # G, N, H', W', Cg
    kernel_rows = _kernel_rows(xg, S, sw, OW)
    wmat = weight_matrix(w, G)                                           # G, R*S*Cg, Kg
    dwmat = np.zeros_like(wmat)                                          # G, R*S*Cg, Kg
    dxg = None if by_convolution else np.zeros_like(xg)                 # dx, group-major and padded
    Gc, blocks = column_blocks(N, OH, OW, G, Kd, Kg, x.itemsize)        # the forward's blocks
    for g0, g1, (n0, n1, oh0, oh1), P, cols in _gathered_blocks(kernel_rows, x.dtype, Gc, blocks, R, sh):
        cm = cols.reshape(g1 - g0, P, Kd)                                    # g, P, R*S*Cg
        db = dh[n0:n1, oh0:oh1].reshape(P, G, Kg)[:, g0:g1].transpose(1, 0, 2)  # g, P, Kg
        dwmat[g0:g1] += np.matmul(cm.transpose(0, 2, 1), db)                # g, R*S*Cg, Kg
        if dxg is None:
            continue
        np.matmul(db, wmat[g0:g1].transpose(0, 2, 1), out=cm)               # g, P, R*S*Cg: dcols
        dc = cols.reshape(g1 - g0, n1 - n0, oh1 - oh0, OW, R, S, Cg)
        dst = dxg[g0:g1, n0:n1]                                              # g, n, H', W', Cg
        for r in range(R):       # R*S strided adds; overlapping windows accumulate
            for s in range(S):
                dst[:, :, oh0 * sh + r:(oh1 - 1) * sh + r + 1:sh, s:s + (OW - 1) * sw + 1:sw] += dc[..., r, s, :]
    dw = weight_from_matrix(dwmat, w.shape)
    if by_convolution:
        return conv2d(from_channels_last(dh), transposed_filters(w, G), 1, (R - 1 - ph, S - 1 - pw), G), dw
    dxh = np.empty((N, H, W, C), dtype=x.dtype)                          # back to channels-last
    if dxh.size:
        _items(dxh, Cg)[...] = _items(dxg[:, :, ph:ph + H, pw:pw + W], Cg)[..., 0].transpose(1, 2, 3, 0)
    return from_channels_last(dxh), dw


def transposed_filters(weight, groups=1):
    """The filters of the convolution that maps dout back to dx: (K, C/G, R, S) -> (C, K/G, R, S),

        wt[g*Cg + c, k, r, s] = w[g*Kg + k, c, R-1-r, S-1-s]

    (each group's filters transposed between input and output channels, and flipped).
    Why it works, for stride 1: the forward reads x[o - ph + r] for output o and tap r, so
    dx[h] = sum_r dout[h + ph - r] * w[r] = sum_r' dout_padded[h + r'] * w[R-1-r'] with dout
    zero-padded by R-1-ph: a convolution of dout with the flipped filters.
    """
    K, Cg, R, S = weight.shape
    G = int(groups)
    wt = weight[:, :, ::-1, ::-1].reshape(G, K // G, Cg, R, S).transpose(0, 2, 1, 3, 4)  # G, Cg, Kg, R, S
    return np.ascontiguousarray(wt).reshape(G * Cg, K // G, R, S)
