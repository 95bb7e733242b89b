"""The backward pass of a whole network: gradients for the input and every parameter.

The forward code exists once. :func:`forward_tape` runs the model's own forward
(:meth:`ResNeXt.forward`) and keeps, through its ``capture`` mechanism, only the named
intermediates the backward reads: the input of every convolution, the output of every
ReLU (its sign pattern is the ReLU's gradient mask) and, in inference mode, the input of
every BatchNorm. In training mode BatchNorm runs with batch statistics through the
``norm`` hook of :mod:`numpy_resnext.blocks`, which records each layer's cache and its
updated running statistics.

:func:`backward` is then the forward read in reverse: head (fc, global pool), the blocks
of :func:`numpy_resnext.archs.block_plan` from last to first, the stem. Inside a block:

    dout -> final ReLU -> (residual branch: bn3 -> conv3 -> relu2 -> bn2 -> conv2 (grouped)
                                            -> relu1 -> bn1 -> conv1)
                       -> (shortcut: identity | bn -> 1x1 conv [-> vd avg pool])
         and the two input gradients add.

Gradients come back as an ordered dict under canonical parameter names (the order of
:func:`numpy_resnext.params.param_shapes`), with the input's gradient first as
``"input"``. BatchNorm running statistics get no gradient; in training mode their updated
values come back separately (``Tape.running``).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

import numpy as np

from .activations import relu_backward
from .archs import BlockPlan
from .batchnorm import EPS, PADDLE_MOMENTUM, batchnorm_backward, batchnorm_train, batchnorm_train_backward
from .conv import conv2d_backward
from .errors import InputError, InputTypeError
from .linear import linear_backward
from .params import (bn_layers, conv_layers, is_trainable, param_shapes, shortcut_names, stem_layers,
                     stem_relu_names)
from .pooling import avgpool2d_backward, global_avgpool_backward, maxpool2d_backward


class TrainBN:
    """A ``norm`` callable for the forward pass: BatchNorm with batch statistics.

    After the forward it holds ``caches`` (BN name -> :class:`BNTrainCache`) and
    ``running`` (canonical running_mean/running_var name -> updated array). The model's
    own running statistics are not touched.
    """

    def __init__(self, momentum=PADDLE_MOMENTUM, eps=EPS):
        self.momentum, self.eps = momentum, eps
        self.caches = {}
        self.running = OrderedDict()

    def __call__(self, x, params, name):
        y, cache, mean, var = batchnorm_train(
            x, params[f"{name}.weight"], params[f"{name}.bias"], params[f"{name}.running_mean"],
            params[f"{name}.running_var"], momentum=self.momentum, eps=self.eps)
        self.caches[name] = cache
        self.running[f"{name}.running_mean"] = mean
        self.running[f"{name}.running_var"] = var
        return y


class Tape(NamedTuple):
    """What the backward needs from a forward: the input, kept intermediates, BN state."""

    x: np.ndarray
    acts: dict              # name -> intermediate (see :func:`backward_names`)
    bn_caches: dict         # BN name -> BNTrainCache (training mode), else empty
    running: OrderedDict    # updated running statistics (training mode), else empty


def backward_names(model, train=False):
    """The intermediates the backward reads: every emitted name but BN outputs, the
    residual additions and the logits; in training mode the conv outputs (BN inputs) too,
    since training BN keeps its own normalised input."""
    skip = {bn for bn, _ in bn_layers(model.config)}
    if train:
        skip |= {c[0] for c in conv_layers(model.config)}
    return [n for n in model.intermediate_names()
            if n not in skip and not n.endswith(".add") and n != "fc"]


def forward_tape(model, x, train=False, momentum=PADDLE_MOMENTUM):
    """Run the model's forward and keep what :func:`backward` needs: (logits, Tape).

    train: BatchNorm with batch statistics (and updated running statistics, Paddle's
    momentum convention) instead of the running statistics. momentum defaults to Paddle's
    float32 0.9 (see :data:`numpy_resnext.batchnorm.PADDLE_MOMENTUM`).
    """
    norm = TrainBN(momentum) if train else None                         # forward checks x
    logits, acts = model.forward(x, capture=backward_names(model, train), norm=norm)
    return logits, Tape(x, acts, norm.caches if train else {}, norm.running if train else OrderedDict())


class _Walk(NamedTuple):
    """The read-only context of one backward pass."""

    params: dict
    acts: dict
    bn_caches: dict
    grads: dict             # filled as the walk goes

    def bn(self, dout, name, conv_name):
        """BN backward (training or inference form); records the weight and bias grads."""
        if self.bn_caches:
            dx, dw, db = batchnorm_train_backward(dout, self.bn_caches[name])
        else:
            p = self.params
            dx, dw, db = batchnorm_backward(dout, self.acts[conv_name], p[f"{name}.weight"],
                                            p[f"{name}.running_mean"], p[f"{name}.running_var"])
        self.grads[f"{name}.weight"], self.grads[f"{name}.bias"] = dw, db
        return dx

    def conv(self, dout, name, x, stride=1, padding=0, groups=1):
        dx, dw = conv2d_backward(dout, x, self.params[f"{name}.weight"], stride, padding, groups)
        self.grads[f"{name}.weight"] = dw
        return dx


def head_backward(dlogits, walk: _Walk, features_shape):
    """fc then global average pool, in reverse: (N, classes) -> (N, C, H, W)."""
    df, dw, db = linear_backward(dlogits, walk.acts["avgpool"], walk.params["fc.weight"])
    walk.grads["fc.weight"], walk.grads["fc.bias"] = dw, db
    return global_avgpool_backward(df, features_shape)


def bottleneck_backward(dout, x, block: BlockPlan, config, walk: _Walk):
    """One block in reverse: the gradient for the block input x (N, in, H, W)."""
    b, a = block.name, walk.acts
    dy = relu_backward(dout, a[b])                                       # through the final ReLU
    # residual branch, last op first
    d = walk.bn(dy, f"{b}.bn3", f"{b}.conv3")
    d = walk.conv(d, f"{b}.conv3", a[f"{b}.relu2"])
    d = relu_backward(d, a[f"{b}.relu2"])
    d = walk.bn(d, f"{b}.bn2", f"{b}.conv2")
    d = walk.conv(d, f"{b}.conv2", a[f"{b}.relu1"], block.stride, 1, block.groups)
    d = relu_backward(d, a[f"{b}.relu1"])
    d = walk.bn(d, f"{b}.bn1", f"{b}.conv1")
    dx = walk.conv(d, f"{b}.conv1", x)
    # shortcut: the addition passes dy to both paths unchanged
    if block.shortcut == "identity":
        return dx + dy
    pool, conv, bn = shortcut_names(config, b)
    ds = walk.bn(dy, bn, conv)
    if block.shortcut == "avgpool_projection":
        ds = walk.conv(ds, conv, a[pool])
        ds = avgpool2d_backward(ds, x.shape, kernel=2, stride=2, padding=0, ceil_mode=True, exclusive=True)
    else:
        ds = walk.conv(ds, conv, x, block.stride)
    return dx + ds


def stem_backward(dout, x, config, walk: _Walk):
    """max-pool, then each (conv, BN, ReLU) of the stem in reverse: the input's gradient."""
    layers = stem_layers(config)
    relu_names = stem_relu_names(config)
    d = maxpool2d_backward(dout, walk.acts["relu"], kernel=3, stride=2, padding=1)
    for i in reversed(range(len(layers))):
        conv, bn, _, _, _, stride, padding = layers[i]
        d = relu_backward(d, walk.acts[relu_names[i]])
        d = walk.bn(d, bn, conv)
        d = walk.conv(d, conv, x if i == 0 else walk.acts[relu_names[i - 1]], stride, padding)
    return d


def backward(model, tape: Tape, dlogits):
    """Gradients of a scalar loss given dlogits = dloss/dlogits (N, classes).

    Returns an OrderedDict: ``"input"`` then every trainable parameter under its canonical
    name, each the shape of its tensor. Nothing is modified.
    """
    N = tape.x.shape[0]
    if not isinstance(dlogits, np.ndarray):
        raise InputTypeError(f"backward: dlogits: expected a numpy.ndarray (N, classes), "
                             f"found {type(dlogits).__name__}")
    if dlogits.shape != (N, model.config.num_classes):
        raise InputError(f"backward: dlogits should be (N, classes) = {(N, model.config.num_classes)}, "
                         f"found {dlogits.shape}")
    if dlogits.dtype != model.dtype:
        raise InputError(f"backward: dlogits has dtype {dlogits.dtype}, the model is {model.dtype}")
    walk = _Walk(model.params, tape.acts, tape.bn_caches, {})
    plan = model.block_plan
    d = head_backward(dlogits, walk, tape.acts[plan[-1].name].shape)
    for i in reversed(range(len(plan))):
        x = tape.acts[plan[i - 1].name] if i > 0 else tape.acts["maxpool"]
        d = bottleneck_backward(d, x, plan[i], model.config, walk)
    dx = stem_backward(d, tape.x, model.config, walk)
    grads = OrderedDict(input=np.ascontiguousarray(dx))
    for name in param_shapes(model.config):
        if is_trainable(name):
            grads[name] = walk.grads[name]
    return grads


class Gradients(NamedTuple):
    logits: np.ndarray
    grads: OrderedDict      # "input" + every trainable parameter, canonical names
    running: OrderedDict    # training mode: updated running_mean / running_var; else empty


def gradients(model, x, dlogits, train=False, momentum=PADDLE_MOMENTUM) -> Gradients:
    """Forward then backward in one call, for a given dloss/dlogits (N, classes)."""
    logits, tape = forward_tape(model, x, train=train, momentum=momentum)
    return Gradients(logits, backward(model, tape, dlogits), tape.running)
