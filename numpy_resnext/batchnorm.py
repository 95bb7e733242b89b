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

import numpy as np

from ._checks import as_float_array, check_ndim, check_same_dtype
from .errors import InputError

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
    bshape = (1, C) + (1,) * (x.ndim - 2)                               # broadcast over N, H, W
    y = np.multiply(x, scale.reshape(bshape), out=out)                  # keeps x's memory order
    y += shift.reshape(bshape)
    return y
