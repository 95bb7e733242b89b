"""Squeeze-and-excitation (Hu, Shen and Sun, CVPR 2018): a gate per channel, computed from
the whole image, on a ResNeXt block's residual branch (docs/se_resnext.md).

    z = mean of x over H and W                   (N, C)         squeeze
    a = ReLU(z @ W1^T + b1)                      (N, r)         reduce: W1 (r, C, 1, 1), b1 (r,)
    g = sigmoid(a @ W2^T + b2)                   (N, C)         expand: W2 (C, r, 1, 1), b2 (C,)
    y = x * g[:, :, None, None]                  (N, C, H, W)   scale, channel by channel

The two fully connected layers are stored as timm stores them, 1x1 convolutions with a
bias, [out, in, 1, 1] (PaddleClas's Linear stores [in, out]; the readers transpose). On the
(N, C) vector they are matrix products. The backward, from y's gradient dy:

    dg = sum over H, W of dy * x                 (N, C)         the scale, for the gate
    dx = dy * g  +  (the squeeze's share: d(z) / (H*W) at every pixel)

Each forward step is its own function, so that the forward walk (:mod:`numpy_resnext.walk`)
runs and names them one at a time; :func:`squeeze_excite` and :func:`squeeze_excite_backward`
compose them for a reader. Their loop twins are in :mod:`.naive`.
"""

from __future__ import annotations

import numpy as np

from .._checks import as_float_array, check_ndim
from ..errors import InputError
from .activations import relu, relu_backward, sigmoid, sigmoid_backward
from .im2col import channels_last
from .linear import linear, linear_backward
from .pooling import global_avgpool, global_avgpool_backward


def se_fc(z, weight, bias):
    """An SE fully connected layer, weight [out, in, 1, 1] (or [out, in]): (N, in) -> (N, out)."""
    weight = as_float_array(weight, "se_fc weight")
    if weight.ndim == 4 and weight.shape[2:] != (1, 1):
        raise InputError(f"se_fc: expected a 1x1 weight (out, in, 1, 1), found {weight.shape}")
    return linear(z, weight.reshape(weight.shape[:2]), bias)           # (N, in) @ (out, in)^T


def se_fc_backward(dout, z, weight):
    """Gradients of :func:`se_fc`: (dz (N, in), dweight (weight's shape), dbias (out,))."""
    dz, dw, db = linear_backward(dout, z, weight.reshape(weight.shape[:2]))
    return dz, dw.reshape(weight.shape), db


def channel_scale(x, gate, out=None):
    """x (N, C, H, W) times gate (N, C), channel by channel: (N, C, H, W) in x's memory order.

    ``out`` may be ``x`` itself for an in-place update of an array the caller owns.
    """
    x = as_float_array(x, "channel_scale input")
    check_ndim(x, 4, "(N, C, H, W)", "channel_scale input")
    if gate.shape != x.shape[:2]:
        raise InputError(f"channel_scale: gate {gate.shape} should be (N, C) = {x.shape[:2]}")
    out = np.empty_like(x) if out is None else out                       # keeps x's memory order
    # on the (N, H, W, C) view: channels-last memory is then scaled row by row
    np.multiply(channels_last(x), gate[:, None, None, :], out=channels_last(out))
    return out


def channel_scale_backward(dout, x, gate):
    """Gradients of :func:`channel_scale`: (dx = dout * gate, dgate = sum over H, W of dout * x)."""
    dx = channel_scale(dout, gate)
    dgate = np.einsum("nchw,nchw->nc", dout, x)                          # N, C
    return dx, dgate


def squeeze_excite(x, fc1_weight, fc1_bias, fc2_weight, fc2_bias):
    """The whole SE layer (module docstring): (N, C, H, W) -> (N, C, H, W)."""
    z = global_avgpool(x)                                                # N, C
    a = relu(se_fc(z, fc1_weight, fc1_bias))                             # N, r
    g = sigmoid(se_fc(a, fc2_weight, fc2_bias))                          # N, C
    return channel_scale(x, g)


def squeeze_excite_backward(dout, x, fc1_weight, fc1_bias, fc2_weight, fc2_bias):
    """Gradients of :func:`squeeze_excite` for its input ``x`` and its four parameters:
    (dx, dfc1_weight, dfc1_bias, dfc2_weight, dfc2_bias). The small (N, C) and (N, r)
    values of the gate are recomputed from x, with the forward's own steps."""
    z = global_avgpool(x)                                                # N, C
    a = relu(se_fc(z, fc1_weight, fc1_bias))                             # N, r
    g = sigmoid(se_fc(a, fc2_weight, fc2_bias))                          # N, C
    dx, dg = channel_scale_backward(dout, x, g)                          # N, C, H, W; N, C
    de = sigmoid_backward(dg, g)                                         # N, C
    da, dw2, db2 = se_fc_backward(de, a, fc2_weight)                     # N, r
    dz, dw1, db1 = se_fc_backward(relu_backward(da, a), z, fc1_weight)   # N, C
    dx += global_avgpool_backward(dz, x.shape)                           # the squeeze's share
    return dx, dw1, db1, dw2, db2
