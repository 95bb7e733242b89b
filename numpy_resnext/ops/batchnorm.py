"""Batch normalisation in inference form (running statistics).

    y[n, c, h, w] = (x[n, c, h, w] - mean[c]) / sqrt(var[c] + eps) * weight[c] + bias[c]

computed as the per-channel affine map ``y = x * scale + shift`` with
``scale = weight / sqrt(var + eps)`` and ``shift = bias - mean * scale`` (two passes over
the activation instead of four). eps is 1e-5, as in Paddle and torch. Paddle calls
weight/bias/mean/var ``scale``/``offset``/``mean``/``variance`` (``weight``, ``bias``,
``_mean``, ``_variance`` in a state dict); torch ``weight``/``bias``/``running_mean``/
``running_var``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._checks import as_float_array, check_ndim, check_same_dtype
from .cpu import rows
from ..errors import InputError

EPS = 1e-5


def bn_scale_shift(weight, bias, mean, var, eps=EPS):
    """The per-channel affine map (scale, shift) that inference BatchNorm applies."""
    scale = weight / np.sqrt(var + eps)                                 # C
    shift = bias - mean * scale                                         # C
    return scale, shift


def batchnorm(x, weight, bias, mean, var, eps=EPS, out=None):
    """Inference BatchNorm over axis 1 of (N, C, ...) -> same shape and dtype as x.

    ``out`` may be ``x`` itself for an in-place update of an array the caller owns.
    """
    x = as_float_array(x, "batchnorm input")
    if x.ndim < 2:
        check_ndim(x, 4, "(N, C, H, W)", "batchnorm input")
    C = x.shape[1]
    for name, p in (("weight", weight), ("bias", bias), ("mean", mean), ("var", var)):
        as_float_array(p, f"batchnorm {name}")
        check_same_dtype(x, p, "batchnorm input", f"batchnorm {name}")
        if p.shape != (C,):
            raise InputError(f"batchnorm {name}: expected shape ({C},) for {C} channels, found {p.shape}")
    scale, shift = bn_scale_shift(weight, bias, mean, var, eps)
    if out is None:
        out = np.empty_like(x)                                          # keeps x's memory order

    def affine(xs, ys, scale_b, shift_b):
        np.multiply(xs, scale_b, out=ys)
        ys += shift_b
    rows(affine, x, out, vectors=(scale, shift))    # runs of rows, in cache for both passes
    return out


# --- backward, training mode, folding ---------------------------------------------------

def _channel_sum(a):
    """Sum over every axis but 1: (N, C, ...) -> (C,)."""
    return a.sum(axis=(0,) + tuple(range(2, a.ndim)))


def _bshape(x):
    """(1, C, 1, ...): a per-channel vector's shape broadcasting over the other axes of x."""
    return (1, x.shape[1]) + (1,) * (x.ndim - 2)


def batchnorm_backward(dout, x, weight, mean, var, eps=EPS):
    """Gradients of inference :func:`batchnorm` (statistics fixed): (dx, dweight, dbias).

    y = xhat * weight + bias with xhat = (x - mean) / sqrt(var + eps), so
    dx = dout * weight / sqrt(var + eps), dweight = sum dout * xhat, dbias = sum dout.
    """
    inv_std = 1.0 / np.sqrt(var + eps)                                  # C
    b = _bshape(x)
    dx = dout * (weight * inv_std).reshape(b)
    xhat = (x - mean.reshape(b)) * inv_std.reshape(b)
    return dx, _channel_sum(dout * xhat), _channel_sum(dout)


class BNTrainCache(NamedTuple):
    """What training-mode BN keeps for its backward: the normalised input and 1/std."""

    xhat: np.ndarray       # N, C, H, W
    inv_std: np.ndarray    # C
    weight: np.ndarray     # C


def batchnorm_train(x, weight, bias, running_mean, running_var, momentum=0.9, eps=EPS):
    """Training-mode BatchNorm with batch statistics: returns (y, cache, new_mean, new_var).

    Normalises with the batch mean and the *biased* batch variance (divide by M = N*H*W)
    and updates the running statistics Paddle's way, running = momentum * running +
    (1 - momentum) * batch (momentum 0.9; torch writes the same update with 0.1). The
    variance that enters the running update is the biased one too, as Paddle 3.3.1 does
    (torch uses the unbiased M/(M-1) one there); the tests check this against Paddle.
    The running statistics passed in are not modified.
    """
    x = as_float_array(x, "batchnorm_train input")
    axes = (0,) + tuple(range(2, x.ndim))
    mu = x.mean(axis=axes)                                              # C
    xc = np.empty_like(x)                                               # N, C, H, W
    rows(lambda xs, cs, m: np.subtract(xs, m, out=cs), x, xc, vectors=(mu,))
    var = (xc * xc).mean(axis=axes)                                     # C, biased
    inv_std = 1.0 / np.sqrt(var + eps)                                  # C
    y = np.empty_like(x)

    def normalise(cs, ys, s, w, bb):    # xhat = xc * inv_std in place (xc is ours); y = xhat*w + b
        np.multiply(cs, s, out=cs)
        np.multiply(cs, w, out=ys)
        ys += bb
    rows(normalise, xc, y, vectors=(inv_std, weight, bias))
    xhat = xc
    new_mean = momentum * running_mean + (1 - momentum) * mu
    new_var = momentum * running_var + (1 - momentum) * var
    return y, BNTrainCache(xhat, inv_std, weight), new_mean, new_var


def batchnorm_train_backward(dout, cache: BNTrainCache):
    """Gradients of :func:`batchnorm_train`: (dx, dweight, dbias).

    With M = N*H*W values per channel and g = dout * weight (the gradient for xhat),
    dx = inv_std * (g - mean(g) - xhat * mean(g * xhat)): the two means are the
    batch mean's and the batch variance's contributions flowing back.
    """
    xhat, inv_std, weight = cache
    M = xhat.size // xhat.shape[1]
    dbias = _channel_sum(dout)
    dweight = _channel_sum(dout * xhat)
    # mean(g) = weight * dbias / M and mean(g * xhat) = weight * dweight / M
    dx = np.empty_like(dout)                                            # N, C, H, W

    def combine(d, xh, o, mean_g, mean_gx, scale):  # dx = (dout - mean_g - xhat*mean_gx) * w*inv_std
        np.subtract(d, mean_g, out=o)
        o -= xh * mean_gx
        o *= scale
    rows(combine, dout, xhat, dx, vectors=(dbias / M, dweight / M, weight * inv_std))
    return dx, dweight, dbias


def fold_bn(conv_weight, bn_weight, bn_bias, mean, var, eps=EPS):
    """Fold inference BN into the convolution before it: returns (w, b) with
    conv2d(x, w) + b[None, :, None, None] == batchnorm(conv2d(x, conv_weight), ...).

    Each output channel k is scaled by scale[k] = bn_weight[k] / sqrt(var[k] + eps) and
    gets the bias shift[k] = bn_bias[k] - mean[k] * scale[k]. Works for grouped weights
    (K, C/G, R, S) since BN acts on output channels only. Inputs are not modified.
    """
    scale, shift = bn_scale_shift(bn_weight, bn_bias, mean, var, eps)
    return conv_weight * scale.reshape(-1, 1, 1, 1), shift


# Paddle keeps a BatchNorm's momentum as a float32 attribute, so even a float64 model updates
# its running statistics with 0.8999999761581421, not 0.9 (a 2e-8 relative difference in the
# update, visible at float64 tolerances). The network-level training functions default to it.
PADDLE_MOMENTUM = float(np.float32(0.9))
