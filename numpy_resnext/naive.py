"""Slow, obviously-correct twins of the fast ops, written as loops straight from the
definitions. The tests compare every fast op with its twin here; nothing else uses them.
They accept and return plain NCHW arrays and are meant for small sizes only.
"""

from __future__ import annotations

import numpy as np

from .batchnorm import EPS
from .conv import conv_output_size
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


def batchnorm(x, weight, bias, mean, var, eps=EPS):
    """(x - mean) / sqrt(var + eps) * weight + bias, channel by channel."""
    out = np.empty_like(x)
    for c in range(x.shape[1]):
        out[:, c] = (x[:, c] - mean[c]) / np.sqrt(var[c] + eps) * weight[c] + bias[c]
    return out


def relu(x):
    out = x.copy()
    out[out < 0] = 0
    return out


def maxpool2d(x, kernel=3, stride=2, padding=1):
    """Max over the in-bounds pixels of each window (padding never takes part)."""
    N, C, H, W = x.shape
    OH, OW = pool_output_size(H, kernel, stride, padding), pool_output_size(W, kernel, stride, padding)
    out = np.empty((N, C, OH, OW), dtype=x.dtype)
    for i in range(OH):
        for j in range(OW):
            h0, w0 = i * stride - padding, j * stride - padding
            hs = [h for h in range(h0, h0 + kernel) if 0 <= h < H]
            ws = [w for w in range(w0, w0 + kernel) if 0 <= w < W]
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
            h0, w0 = i * stride - padding, j * stride - padding
            hs = [h for h in range(h0, h0 + kernel) if 0 <= h < H]
            ws = [w for w in range(w0, w0 + kernel) if 0 <= w < W]
            total = x[:, :, hs][:, :, :, ws].sum(axis=(2, 3))
            if exclusive:
                count = len(hs) * len(ws)
            else:       # padding counts; a ceil-mode overhang past the padding does not
                count = (min(h0 + kernel, H + padding) - h0) * (min(w0 + kernel, W + padding) - w0)
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
