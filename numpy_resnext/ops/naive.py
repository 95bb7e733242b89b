"""The learner's path through the math: every op of the network, forward and backward,
written as plain loops straight from its definition.

Read these first. Each function spells out one formula with explicit indices, in the
order a textbook derivation would (docs/backward.md walks through them op by op); the
fast ops in conv.py, batchnorm.py, pooling.py, activations.py, linear.py, loss.py and se.py
compute the same numbers with whole-array NumPy, and the tests compare every fast op,
forward and backward, with its twin here (float64, 1e-12 relative). Nothing else in the
package calls this module.

Conventions: plain NCHW arrays in, new arrays out (inputs are never modified); square
pooling windows (one int for kernel, stride and padding); small sizes only, since every
multiply-add is a Python-level step. Every function here takes the same arguments as the
fast op of the same name and returns the same things (tests/test_naive_backward.py checks
the signatures), so either can stand in for the other; the one difference is what
training BatchNorm keeps for its backward (:class:`BNTrainCache` below holds the raw input,
from which the loop backward recomputes everything).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .batchnorm import EPS
from .im2col import conv_output_size
from .pooling import pool_output_size


def conv2d(x, weight, stride=1, padding=0, groups=1):
    """out[n,k,i,j] = sum_{c,r,s} xpad[n, g*Cg + c, i*sh + r, j*sw + s] * w[k, c, r, s], g = k // Kg."""
    sh, sw = (stride, stride) if np.isscalar(stride) else stride
    ph, pw = (padding, padding) if np.isscalar(padding) else padding
    N, C, H, W = x.shape
    K, Cg, R, S = weight.shape
    Kg = K // groups
    OH, OW = conv_output_size(H, R, sh, ph), conv_output_size(W, S, sw, pw)
    xpad = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=x.dtype)
    xpad[:, :, ph:ph + H, pw:pw + W] = x
    out = np.zeros((N, K, OH, OW), dtype=x.dtype)
    for n in range(N):
        for k in range(K):
            g = k // Kg
            for i in range(OH):
                for j in range(OW):
                    acc = 0.0
                    for c in range(Cg):
                        for r in range(R):
                            for s in range(S):
                                acc += xpad[n, g * Cg + c, i * sh + r, j * sw + s] * weight[k, c, r, s]
                    out[n, k, i, j] = acc
    return out


def batchnorm(x, weight, bias, mean, var, eps=EPS, out=None):
    """(x - mean) / sqrt(var + eps) * weight + bias, channel by channel (into ``out`` when
    given, which may be x itself: each channel is read before it is written)."""
    out = np.empty_like(x) if out is None else out
    for c in range(x.shape[1]):
        out[:, c] = (x[:, c] - mean[c]) / np.sqrt(var[c] + eps) * weight[c] + bias[c]
    return out


def relu(x, out=None):
    """max(x, 0) element by element, a NaN kept as NaN (into ``out`` when given, which may
    be x itself)."""
    out = np.empty_like(x) if out is None else out
    for i in np.ndindex(x.shape):
        out[i] = 0.0 if x[i] < 0 else x[i]
    return out


def _window(i, j, kernel, stride, padding, H, W):
    """Window (i, j) of a pool: the in-bounds rows and columns it covers, and its count
    with the padding included (a ceil-mode overhang past the padding not counted)."""
    h0, w0 = i * stride - padding, j * stride - padding
    hs = [h for h in range(h0, h0 + kernel) if 0 <= h < H]
    ws = [w for w in range(w0, w0 + kernel) if 0 <= w < W]
    padded = (min(h0 + kernel, H + padding) - h0) * (min(w0 + kernel, W + padding) - w0)
    return hs, ws, padded


def maxpool2d(x, kernel=3, stride=2, padding=1, ceil_mode=False):
    """Max over the in-bounds pixels of each window (padding never takes part)."""
    N, C, H, W = x.shape
    OH = pool_output_size(H, kernel, stride, padding, ceil_mode)
    OW = pool_output_size(W, kernel, stride, padding, ceil_mode)
    out = np.empty((N, C, OH, OW), dtype=x.dtype)
    for i in range(OH):
        for j in range(OW):
            hs, ws, _ = _window(i, j, kernel, stride, padding, H, W)
            out[:, :, i, j] = x[:, :, hs][:, :, :, ws].max(axis=(2, 3))
    return out


def avgpool2d(x, kernel=2, stride=2, padding=0, ceil_mode=True, exclusive=True):
    """Mean over each window; exclusive counts only the in-bounds pixels, inclusive also the
    padding (but not a ceil-mode window's overhang past it)."""
    N, C, H, W = x.shape
    OH = pool_output_size(H, kernel, stride, padding, ceil_mode)
    OW = pool_output_size(W, kernel, stride, padding, ceil_mode)
    out = np.empty((N, C, OH, OW), dtype=x.dtype)
    for i in range(OH):
        for j in range(OW):
            hs, ws, padded = _window(i, j, kernel, stride, padding, H, W)
            total = x[:, :, hs][:, :, :, ws].sum(axis=(2, 3))
            count = len(hs) * len(ws) if exclusive else padded   # inclusive: padding counts
            out[:, :, i, j] = total / count
    return out


def global_avgpool(x):
    N, C, H, W = x.shape
    out = np.zeros((N, C), dtype=x.dtype)
    for h in range(H):
        for w in range(W):
            out += x[:, :, h, w]
    return out / (H * W)


def linear(x, weight, bias=None):
    N, I = x.shape
    O = weight.shape[0]
    out = np.zeros((N, O), dtype=x.dtype)
    for n in range(N):
        for o in range(O):
            out[n, o] = sum(x[n, i] * weight[o, i] for i in range(I))
    if bias is not None:
        out += bias
    return out


def _se_gate(x, w1, b1, w2, b2):
    """Squeeze-and-excitation's squeeze z (N, C), reduce-and-ReLU a (N, r) and gate g (N, C)."""
    N, C, H, W = x.shape
    R = w1.shape[0]
    z, a, g = np.zeros((N, C)), np.zeros((N, R)), np.zeros((N, C))
    for n in range(N):
        for c in range(C):
            z[n, c] = sum(x[n, c, h, w] for h in range(H) for w in range(W)) / (H * W)
        for j in range(R):
            a[n, j] = max(0.0, b1[j] + sum(w1[j, c, 0, 0] * z[n, c] for c in range(C)))
        for c in range(C):
            e = b2[c] + sum(w2[c, j, 0, 0] * a[n, j] for j in range(R))
            g[n, c] = 1.0 / (1.0 + math.exp(min(-e, 700.0)))      # exp(700): as good as inf here
    return z.astype(x.dtype), a.astype(x.dtype), g.astype(x.dtype)


def squeeze_excite(x, fc1_weight, fc1_bias, fc2_weight, fc2_bias):
    """y[n, c, h, w] = x[n, c, h, w] * g[n, c], with z[n, c] the mean of x[n, c] over H, W,
    a[n, j] = max(0, b1[j] + sum_c w1[j, c] z[n, c]) and g[n, c] = sigmoid(b2[c] + sum_j
    w2[c, j] a[n, j]); the weights are [out, in, 1, 1] 1x1 convolutions."""
    _, _, g = _se_gate(x, fc1_weight, fc1_bias, fc2_weight, fc2_bias)
    out = np.empty_like(x)
    for n, c in np.ndindex(g.shape):
        out[n, c] = x[n, c] * g[n, c]
    return out


class BNTrainCache(NamedTuple):
    """What the loop form of training BN keeps for its backward: its input and weight."""

    x: np.ndarray          # N, C, H, W
    weight: np.ndarray     # C
    eps: float


def batchnorm_train(x, weight, bias, running_mean, running_var, momentum=0.9, eps=EPS):
    """Training BatchNorm: per channel, the batch mean m and biased variance v of its
    M = N*H*W values, y = (x - m) / sqrt(v + eps) * weight + bias, and the running
    statistics moved towards (m, v). Returns (y, cache, new_mean, new_var)."""
    N, C, H, W = x.shape
    M = N * H * W
    y = np.empty_like(x)
    new_mean, new_var = np.empty(C, dtype=x.dtype), np.empty(C, dtype=x.dtype)
    for c in range(C):
        m = sum(x[n, c, h, w] for n in range(N) for h in range(H) for w in range(W)) / M
        v = sum((x[n, c, h, w] - m) ** 2 for n in range(N) for h in range(H) for w in range(W)) / M
        for n in range(N):
            for h in range(H):
                for w in range(W):
                    y[n, c, h, w] = (x[n, c, h, w] - m) / math.sqrt(v + eps) * weight[c] + bias[c]
        new_mean[c] = momentum * running_mean[c] + (1 - momentum) * m
        new_var[c] = momentum * running_var[c] + (1 - momentum) * v
    return y, BNTrainCache(x.copy(), weight.copy(), eps), new_mean, new_var


def softmax_cross_entropy(logits, labels):
    """loss = (1/N) sum_n -log(exp(z[n, y_n]) / sum_j exp(z[n, j])), with the row maximum
    subtracted first so that no exp overflows. Returns (loss, probs)."""
    N, K = logits.shape
    probs = np.empty_like(logits)
    loss = 0.0
    for n in range(N):
        top = max(logits[n, j] for j in range(K))
        total = sum(math.exp(logits[n, j] - top) for j in range(K))
        for j in range(K):
            probs[n, j] = math.exp(logits[n, j] - top) / total
        loss += -(logits[n, labels[n]] - top - math.log(total))
    return loss / N, probs


# --- backward -----------------------------------------------------------------------------
# Each function takes dout = dL/d(output) of a scalar loss L and returns dL/d(input) (and
# the parameters' gradients), by the chain rule applied to the forward's formula term by
# term: every forward "out[...] += a * b" becomes "da += dout[...] * b; db += dout[...] * a".


def conv2d_backward(dout, x, weight, stride=1, padding=0, groups=1):
    """(dx, dw) of :func:`conv2d`: each multiply-add xpad[...] * w[k, c, r, s] of the
    forward sends dout[n, k, i, j] * w to the input pixel and dout * xpad to the weight.
    Padding pixels collect gradient too; it is dropped at the end."""
    sh, sw = (stride, stride) if np.isscalar(stride) else stride
    ph, pw = (padding, padding) if np.isscalar(padding) else padding
    N, C, H, W = x.shape
    K, Cg, R, S = weight.shape
    Kg = K // groups
    OH, OW = dout.shape[2], dout.shape[3]
    xpad = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=x.dtype)
    xpad[:, :, ph:ph + H, pw:pw + W] = x
    dxpad = np.zeros_like(xpad)
    dw = np.zeros_like(weight)
    for n in range(N):
        for k in range(K):
            g = k // Kg
            for i in range(OH):
                for j in range(OW):
                    d = dout[n, k, i, j]
                    for c in range(Cg):
                        for r in range(R):
                            for s in range(S):
                                dxpad[n, g * Cg + c, i * sh + r, j * sw + s] += d * weight[k, c, r, s]
                                dw[k, c, r, s] += d * xpad[n, g * Cg + c, i * sh + r, j * sw + s]
    return dxpad[:, :, ph:ph + H, pw:pw + W].copy(), dw


def batchnorm_backward(dout, x, weight, mean, var, eps=EPS):
    """(dx, dweight, dbias) of inference :func:`batchnorm`: the statistics are constants,
    so per channel y = xhat * weight + bias is an affine map of x."""
    N, C, H, W = x.shape
    dx = np.empty_like(x)
    dweight, dbias = np.zeros(C, dtype=x.dtype), np.zeros(C, dtype=x.dtype)
    for c in range(C):
        std = math.sqrt(var[c] + eps)
        for n in range(N):
            for h in range(H):
                for w in range(W):
                    xhat = (x[n, c, h, w] - mean[c]) / std
                    dx[n, c, h, w] = dout[n, c, h, w] * weight[c] / std
                    dweight[c] += dout[n, c, h, w] * xhat
                    dbias[c] += dout[n, c, h, w]
    return dx, dweight, dbias


def batchnorm_train_backward(dout, cache: BNTrainCache):
    """(dx, dweight, dbias) of :func:`batchnorm_train`, the chain rule in its long form:
    per channel, x reaches xhat = (x - m) * s (s = 1/sqrt(v + eps)) directly, through the
    batch mean m and through the batch variance v. With dxhat = dout * weight:

        dv = sum_i dxhat_i * (x_i - m) * (-1/2) * s^3
        dm = sum_i dxhat_i * (-s) + dv * sum_i (-2 (x_i - m)) / M
        dx_i = dxhat_i * s + dv * 2 (x_i - m) / M + dm / M

    (batchnorm.py and docs/batchnorm.md simplify this to s*(g - mean(g) - xhat*mean(g*xhat)).)
    """
    x, weight, eps = cache
    N, C, H, W = x.shape
    M = N * H * W
    idx = [(n, h, w) for n in range(N) for h in range(H) for w in range(W)]
    dx = np.empty_like(x)
    dweight, dbias = np.zeros(C, dtype=x.dtype), np.zeros(C, dtype=x.dtype)
    for c in range(C):
        xs = [x[n, c, h, w] for n, h, w in idx]
        ds = [dout[n, c, h, w] for n, h, w in idx]
        m = sum(xs) / M
        v = sum((xi - m) ** 2 for xi in xs) / M
        s = 1.0 / math.sqrt(v + eps)
        dxhat = [d * weight[c] for d in ds]
        dv = sum(dh * (xi - m) * -0.5 * s ** 3 for dh, xi in zip(dxhat, xs))
        dm = sum(-dh * s for dh in dxhat) + dv * sum(-2.0 * (xi - m) for xi in xs) / M
        for (n, h, w), xi, dh, d in zip(idx, xs, dxhat, ds):
            dx[n, c, h, w] = dh * s + dv * 2.0 * (xi - m) / M + dm / M
            dweight[c] += d * (xi - m) * s
            dbias[c] += d
    return dx, dweight, dbias


def relu_backward(dout, y):
    """dx = dout where the ReLU's output y (or its input: the same sign pattern) is > 0,
    else 0 (the derivative at exactly 0 is taken as 0)."""
    dx = np.zeros_like(dout)
    for i in np.ndindex(y.shape):
        if y[i] > 0:
            dx[i] = dout[i]
    return dx


def maxpool2d_backward(dout, x, kernel=3, stride=2, padding=1, ceil_mode=False):
    """dx of :func:`maxpool2d`: each window's dout goes to the pixel that won its maximum,
    scanning row by row, left to right; on a tie the first maximum keeps it (a later equal
    value does not replace it), as Paddle's and torch's CPU kernels route it."""
    N, C, H, W = x.shape
    OH, OW = dout.shape[2], dout.shape[3]
    dx = np.zeros_like(x)
    for n in range(N):
        for c in range(C):
            for i in range(OH):
                for j in range(OW):
                    h0, w0 = i * stride - padding, j * stride - padding
                    best = None
                    for h in range(max(h0, 0), min(h0 + kernel, H)):
                        for w in range(max(w0, 0), min(w0 + kernel, W)):
                            if best is None or x[n, c, h, w] > x[n, c, best[0], best[1]]:
                                best = (h, w)
                    dx[n, c, best[0], best[1]] += dout[n, c, i, j]
    return dx


def avgpool2d_backward(dout, x_shape, kernel=2, stride=2, padding=0, ceil_mode=True, exclusive=True):
    """dx of :func:`avgpool2d`: each window adds dout / count to every in-bounds pixel it
    averaged, with the same count as the forward."""
    N, C, H, W = x_shape
    OH, OW = dout.shape[2], dout.shape[3]
    dx = np.zeros(x_shape, dtype=dout.dtype)
    for i in range(OH):
        for j in range(OW):
            hs, ws, padded = _window(i, j, kernel, stride, padding, H, W)
            count = len(hs) * len(ws) if exclusive else padded
            for h in hs:
                for w in ws:
                    dx[:, :, h, w] += dout[:, :, i, j] / count
    return dx


def global_avgpool_backward(dout, x_shape):
    """dx of :func:`global_avgpool`: every pixel of channel c gets dout[n, c] / (H*W)."""
    N, C, H, W = x_shape
    dx = np.zeros(x_shape, dtype=dout.dtype)
    for h in range(H):
        for w in range(W):
            dx[:, :, h, w] = dout / (H * W)
    return dx


def linear_backward(dout, x, weight):
    """(dx, dweight, dbias) of :func:`linear`: out[n, o] = sum_i x[n, i] * w[o, i] + b[o]."""
    N, I = x.shape
    O = weight.shape[0]
    dx, dw, db = np.zeros_like(x), np.zeros_like(weight), np.zeros(O, dtype=dout.dtype)
    for n in range(N):
        for o in range(O):
            for i in range(I):
                dx[n, i] += dout[n, o] * weight[o, i]
                dw[o, i] += dout[n, o] * x[n, i]
            db[o] += dout[n, o]
    return dx, dw, db


def softmax_cross_entropy_backward(probs, labels):
    """dL/dlogits of the mean loss from the softmax :func:`softmax_cross_entropy` returned:
    (probs[n, j] - [j == label_n]) / N, entry by entry (d/dz_j of -z_y + log sum_k exp z_k
    is p_j - [j == y])."""
    N, K = probs.shape
    d = np.empty_like(probs)
    for n in range(N):
        for j in range(K):
            d[n, j] = (probs[n, j] - (1.0 if j == labels[n] else 0.0)) / N
    return d


def squeeze_excite_backward(dout, x, fc1_weight, fc1_bias, fc2_weight, fc2_bias):
    """The gradients (dx, dfc1_weight, dfc1_bias, dfc2_weight, dfc2_bias) of :func:`squeeze_excite`:
    y = x * g sends dout * g to x and sum_hw dout * x to g; de = dg * g * (1 - g) (sigmoid);
    e = b2 + W2 a and the ReLU and W1, b1 as in linear_backward; every pixel gets dz / (H*W)."""
    N, C, H, W = x.shape
    R = fc1_weight.shape[0]
    z, a, g = _se_gate(x, fc1_weight, fc1_bias, fc2_weight, fc2_bias)
    dx, dw1, db1, dw2, db2 = (np.zeros_like(v) for v in (x, fc1_weight, fc1_bias, fc2_weight, fc2_bias))
    for n in range(N):
        da, dz = np.zeros(R), np.zeros(C)
        for c in range(C):
            dg = sum(dout[n, c, h, w] * x[n, c, h, w] for h in range(H) for w in range(W))
            de = dg * g[n, c] * (1.0 - g[n, c])
            db2[c] += de
            for j in range(R):
                dw2[c, j, 0, 0] += de * a[n, j]
                da[j] += fc2_weight[c, j, 0, 0] * de
        for j in range(R):
            d = da[j] if a[n, j] > 0 else 0.0
            db1[j] += d
            for c in range(C):
                dw1[j, c, 0, 0] += d * z[n, c]
                dz[c] += fc1_weight[j, c, 0, 0] * d
        for c, h, w in np.ndindex(C, H, W):
            dx[n, c, h, w] = dout[n, c, h, w] * g[n, c] + dz[c] / (H * W)
    return dx, dw1, db1, dw2, db2
