"""The forward walk: the network run once through its :class:`~numpy_resnext.plan.Plan`.

The stem -> blocks -> head walk is written here and nowhere else. Every caller reuses it
through three hooks:

- ``ops``: what each layer computes, an object with the methods of :class:`Ops` (each one
  is handed the plan's layer it runs, so it never has to guess where it is).
  :class:`ArrayOps` runs the package's ops on arrays (the forward pass); :mod:`.shapes`
  passes ops that propagate shapes and count MACs, :mod:`.onnx_export.graph` ops that
  append ONNX nodes; a variant of the forward (training-mode BatchNorm, a deliberately
  wrong op in :mod:`.golden.mutants`) overrides one method.
- ``emit(name, value)``: called after every op with the intermediate's name (the names of
  :meth:`Plan.names`); :class:`Capture` keeps copies of the ones selected.
- ``stop_before`` (a block name: return that block's input) and ``progress(done, total,
  note)`` (called after the stem, each block and the head).

The bottleneck, as in the paper (Fig. 3c) with the stride on the grouped 3x3::

    x -> conv1 1x1 (in -> width) -> bn1 -> relu1
      -> conv2 3x3, groups = C, stride -> bn2 -> relu2
      -> conv3 1x1 (width -> out) -> bn3 [-> SE] ----------+-> add -> relu -> block output
    x -> shortcut: identity | 1x1 conv (stride) + BN       |
                 | vd: avgpool 2x2/2 ceil exclusive, 1x1 conv + BN

and, in an SE-ResNeXt, the squeeze-and-excitation layer (:func:`squeeze_excite`)::

    u -> squeeze (global average pool, N x C) -> se_fc fc1 (C -> r) -> relu -> se_fc fc2
      (r -> C) -> gate (sigmoid) -> scale: u times the gate, channel by channel

Arrays created by :class:`ArrayOps` are owned by the walk, which lets BN, ReLU and the
addition work in place; ``emit`` copies whatever it keeps, and no input is ever modified.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from ._select import Selection
from .errors import InputError
from .ops.activations import relu, sigmoid
from .ops.batchnorm import batchnorm
from .ops.conv import conv2d
from .ops.cpu import rows
from .ops.linear import linear
from .ops.pooling import avgpool2d, global_avgpool, maxpool2d
from .ops.se import channel_scale, se_fc
from .plan import SE, Block, ConvBN, Head, Plan, Pool, SEFc


def inference_bn(x, params, layer: ConvBN):
    """BatchNorm with the running statistics and the layer's epsilon, in place on an array
    the walk owns."""
    name = layer.bn
    return batchnorm(x, params[f"{name}.weight"], params[f"{name}.bias"],
                     params[f"{name}.running_mean"], params[f"{name}.running_var"],
                     eps=layer.eps, out=x)


class Ops(Protocol):
    """What the walk asks of an ``ops`` object: one method per kind of layer, each given the
    value flowing in and the plan's layer (:mod:`numpy_resnext.plan`) it computes, and
    returning the value flowing out. The values are whatever the ops object works on:
    arrays (:class:`ArrayOps`), shapes (:class:`numpy_resnext.shapes.ShapeOps`), ONNX value
    names (:class:`numpy_resnext.onnx_export.graph.OnnxOps`)."""

    def conv(self, x, layer: ConvBN):
        """The convolution of ``layer`` (weight ``{layer.name}.weight``)."""

    def bn(self, x, layer: ConvBN):
        """The BatchNorm after that convolution (parameters under ``layer.bn``, epsilon
        ``layer.eps``)."""

    def relu(self, x, layer: ConvBN | Block | SE):
        """The ReLU after a conv's BN (``layer`` a ConvBN), after a block's addition
        (``layer`` the Block) or inside an SE layer (``layer`` the SE); it emits
        ``layer.relu`` in every case."""

    def pool(self, x, pool: Pool):
        """A max or average pool (the stem's, or a vd shortcut's)."""

    def add(self, y, shortcut, block: Block):
        """The residual addition of ``block``: its conv3 branch ``y`` plus the shortcut."""

    def global_pool(self, x, head: Head):
        """The head's global average pool: (N, C, H, W) -> (N, C)."""

    def fc(self, features, head: Head):
        """The head's fully connected layer: (N, C) -> (N, classes)."""

    def squeeze(self, x, se: SE):
        """An SE layer's squeeze, the global average pool: (N, C, H, W) -> (N, C)."""

    def se_fc(self, x, fc: SEFc):
        """One of an SE layer's fully connected layers (weight ``{fc.name}.weight``
        [out, in, 1, 1] and its bias): (N, in) -> (N, out)."""

    def gate(self, x, se: SE):
        """An SE layer's gate, the sigmoid: (N, C) -> (N, C)."""

    def scale(self, y, gate, se: SE):
        """An SE layer's scale: the branch ``y`` (N, C, H, W) times ``gate`` (N, C)."""


class ArrayOps:
    """The forward pass's ops on arrays (:class:`Ops`), reading parameters by canonical name.

    norm: the BatchNorm, ``norm(x, params, layer) -> y`` with ``layer`` the ConvBN (its
    ``bn`` names the parameters, ``eps`` is the epsilon; it may work in place on x);
    default :func:`inference_bn`. Training-mode BN (batch statistics) is passed in by
    :mod:`numpy_resnext.grad`.
    """

    def __init__(self, params, norm=None):
        self.params = params
        self.norm = norm or inference_bn

    def conv(self, x, layer: ConvBN):
        return conv2d(x, self.params[f"{layer.name}.weight"], stride=layer.stride,
                      padding=layer.padding, groups=layer.groups)

    def bn(self, x, layer: ConvBN):
        return self.norm(x, self.params, layer)

    def relu(self, x, layer):
        return relu(x, out=x)

    def pool(self, x, pool: Pool):
        if pool.kind == "max":
            return maxpool2d(x, kernel=pool.kernel, stride=pool.stride, padding=pool.padding,
                             ceil_mode=pool.ceil_mode)
        return avgpool2d(x, kernel=pool.kernel, stride=pool.stride, padding=pool.padding,
                         ceil_mode=pool.ceil_mode, exclusive=pool.exclusive)

    def add(self, y, shortcut, block: Block):
        rows(lambda ys, ss: np.add(ys, ss, out=ys), y, shortcut)        # y += shortcut
        return y

    def global_pool(self, x, head: Head):
        return global_avgpool(x)                                         # N, C

    def fc(self, features, head: Head):
        return linear(features, self.params[f"{head.fc}.weight"], self.params[f"{head.fc}.bias"])

    def squeeze(self, x, se: SE):
        return global_avgpool(x)                                         # N, C

    def se_fc(self, x, fc: SEFc):
        w = self.params[f"{fc.name}.weight"]
        if w.shape != fc.weight_shape:           # a plan and weights that disagree (a port's width)
            raise InputError(f"{fc.name}: weight {w.shape}, but the plan's layer is {fc.weight_shape}")
        return se_fc(x, w, self.params[f"{fc.name}.bias"])               # N, out

    def gate(self, x, se: SE):
        return sigmoid(x, out=x)

    def scale(self, y, gate, se: SE):
        return channel_scale(y, gate, out=y)                             # y *= gate, per channel


class Capture:
    """An ``emit`` hook that keeps copies of the intermediates a selection matches.

    keep: None or False (keep nothing), True (keep all), or names / glob patterns
    ("layer1.0.*", "fc"); see :class:`numpy_resnext._select.Selection`. ``tensors`` holds
    what was kept, in execution order.
    """

    def __init__(self, keep=None):
        self.selection = Selection(keep)
        self.tensors = {}

    def __call__(self, name, value):
        if self.selection.matches(name):
            # a copy in the array's own memory order (channels-last for the walk's arrays),
            # so that the backward reading it needs no second copy to get back there
            self.tensors[name] = value.copy(order="K")


def _ignore(name, value):
    return None


def conv_bn(x, layer: ConvBN, ops, emit):
    """[pool ->] conv -> BN [-> ReLU], emitting each result under the plan's names."""
    if layer.pool is not None:
        x = ops.pool(x, layer.pool)
        emit(layer.pool.name, x)
    y = ops.conv(x, layer)                                               # N, K, OH, OW
    emit(layer.name, y)
    y = ops.bn(y, layer)
    emit(layer.bn, y)
    if layer.relu is not None:
        y = ops.relu(y, layer)
        emit(layer.relu, y)
    return y


def squeeze_excite(u, se: SE, ops, emit=_ignore):
    """Squeeze-and-excitation on u (N, C, H, W): each channel of u times a gate in (0, 1)
    computed from the whole image's channel means."""
    z = ops.squeeze(u, se)                                               # N, C
    emit(se.pool, z)
    a = ops.se_fc(z, se.fc1)                                             # N, r
    emit(se.fc1.name, a)
    a = ops.relu(a, se)
    emit(se.relu, a)
    e = ops.se_fc(a, se.fc2)                                             # N, C
    emit(se.fc2.name, e)
    g = ops.gate(e, se)                                                  # N, C
    emit(se.gate, g)
    y = ops.scale(u, g, se)                                              # N, C, H, W
    emit(se.name, y)
    return y


def bottleneck(x, block: Block, ops, emit=_ignore):
    """One ResNeXt block (split-transform-merge as a grouped convolution), with its
    squeeze-and-excitation layer if it has one."""
    se = block.se
    y = conv_bn(x, block.conv1, ops, emit)                               # N, width, H, W
    y = conv_bn(y, block.conv2, ops, emit)                               # N, width, H/s, W/s (grouped)
    y = conv_bn(y, block.conv3, ops, emit)                               # N, out, H/s, W/s
    if se is not None and se.position == "residual":
        y = squeeze_excite(y, se, ops, emit)
    s = x if block.projection is None else conv_bn(x, block.projection, ops, emit)
    y = ops.add(y, s, block)
    emit(block.add, y)
    if se is not None and se.position == "post":
        y = squeeze_excite(y, se, ops, emit)
    y = ops.relu(y, block)
    emit(block.relu, y)
    return y


def stem(x, plan: Plan, ops, emit=_ignore):
    """The stem's conv/BN/ReLU layers, then its max-pool (if any)."""
    for layer in plan.stem:
        x = conv_bn(x, layer, ops, emit)
    if plan.stem_pool is not None:
        x = ops.pool(x, plan.stem_pool)
        emit(plan.stem_pool.name, x)
    return x


def head(x, h: Head, ops, emit=_ignore):
    """Global average pool, then the fully connected layer: (N, C, H, W) -> (N, classes)."""
    f = ops.global_pool(x, h)                                            # N, C
    emit(h.pool, f)
    logits = ops.fc(f, h)                                                # N, classes
    emit(h.fc, logits)
    return logits


def walk(plan: Plan, x, ops, emit=None, stop_before=None, progress=None):
    """Run ``plan`` on ``x``: the logits, or with ``stop_before`` (a block name) the input
    of that block (nothing after it is computed)."""
    emit = emit or _ignore
    if stop_before is not None:
        stop_before = plan.block(stop_before).name                       # a clear error if unknown
    total = len(plan.blocks) + 2

    def step(done, note):
        if progress is not None:
            progress(done, total, note)
    x = stem(x, plan, ops, emit)
    step(1, "stem")
    for i, block in enumerate(plan.blocks):
        if block.name == stop_before:
            return x
        x = bottleneck(x, block, ops, emit)
        step(i + 2, block.name)
    logits = head(x, plan.head, ops, emit)
    step(total, "head")
    return logits
