"""The backward pass of a whole network: gradients for the input and every parameter.

The forward code exists once. :func:`forward_tape` runs the model's own forward
(:meth:`ResNeXt.forward`, the walk of :mod:`numpy_resnext.walk`) and keeps, through its
``keep`` option, only the named
intermediates the backward reads: the input of every convolution, the output of every
ReLU (its sign pattern is the ReLU's gradient mask) and, in inference mode, the input of
every BatchNorm. In training mode BatchNorm runs with batch statistics through the
``norm`` hook of :class:`numpy_resnext.walk.ArrayOps`, which records each layer's cache and its
updated running statistics.

:func:`backward` is then the forward read in reverse: head (fc, global pool), the blocks
of the layer plan (:mod:`numpy_resnext.plan`) from last to first, the stem; every
stride, padding, group count and pool comes from the plan's layers. Inside a block:

    dout -> final ReLU -> (residual branch: [SE ->] bn3 -> conv3 -> relu2 -> bn2
                                            -> conv2 (grouped) -> relu1 -> bn1 -> conv1)
                       -> (shortcut: identity | bn -> 1x1 conv [-> vd avg pool])
         and the two input gradients add. The SE layer's backward
         (:func:`numpy_resnext.ops.se.squeeze_excite_backward`) reads its input, bn3's
         output, from the tape and recomputes its small gate from it.

Gradients come back as an ordered dict under canonical parameter names (the order of
:func:`numpy_resnext.params.param_shapes`), with the input's gradient first as
``"input"``. BatchNorm running statistics get no gradient; in training mode their updated
values come back separately (``Tape.running``).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

import numpy as np

from ._checks import check_finite
from .errors import InputError, InputTypeError
from .ops.activations import relu_backward
from .ops.batchnorm import PADDLE_MOMENTUM, batchnorm_backward, batchnorm_train, batchnorm_train_backward
from .ops.conv import conv2d_backward
from .ops.linear import linear_backward
from .ops.pooling import avgpool2d_backward, global_avgpool_backward, maxpool2d_backward
from .ops.se import squeeze_excite_backward
from .params import is_trainable, param_shapes
from .plan import SE, Block, ConvBN, Head, Pool
from .shapes import check_compute


class TrainBN:
    """A ``norm`` callable for the forward pass: BatchNorm with batch statistics.

    After the forward it holds ``caches`` (BN name -> :class:`BNTrainCache`) and
    ``running`` (canonical running_mean/running_var name -> updated array). The model's
    own running statistics are not touched.
    """

    def __init__(self, momentum=PADDLE_MOMENTUM):
        self.momentum = momentum
        self.caches = {}
        self.running = OrderedDict()

    def __call__(self, x, params, layer: ConvBN):
        name = layer.bn
        y, cache, mean, var = batchnorm_train(
            x, params[f"{name}.weight"], params[f"{name}.bias"], params[f"{name}.running_mean"],
            params[f"{name}.running_var"], momentum=self.momentum, eps=layer.eps)
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


def se_input(block: Block) -> str:
    """The name of the tensor a block's SE layer scales: bn3's output, or the sum (SE-POST)."""
    return block.add if block.se.position == "post" else block.conv3.bn


def backward_names(model, train=False):
    """The intermediates the backward reads: every emitted name but BN outputs, the
    residual additions, the logits and the SE layers' own (the backward recomputes them),
    yet the input of every SE layer; in training mode the conv outputs (BN inputs) too,
    since training BN keeps its own normalised input."""
    plan = model.plan
    skip = {layer.bn for layer in plan.convs()} | {b.add for b in plan.blocks} | {plan.head.fc}
    skip |= {n for se in plan.se_layers() for n in se.emits}
    if train:
        skip |= {layer.name for layer in plan.convs()}
    keep = {se_input(b) for b in plan.blocks if b.se is not None}
    return [n for n in plan.names() if n not in skip or n in keep]


def forward_tape(model, x, train=False, momentum=PADDLE_MOMENTUM, allow_nonfinite=False):
    """Run the model's forward and keep what :func:`backward` needs: (logits, Tape).

    train: BatchNorm with batch statistics (and updated running statistics, Paddle's
    momentum convention) instead of the running statistics. momentum defaults to Paddle's
    float32 0.9 (see :data:`numpy_resnext.ops.batchnorm.PADDLE_MOMENTUM`).
    """
    norm = TrainBN(momentum) if train else None                         # forward checks x
    logits, acts = model.forward(x, keep=backward_names(model, train), norm=norm,
                                 allow_nonfinite=allow_nonfinite)
    return logits, Tape(x, acts, norm.caches if train else {}, norm.running if train else OrderedDict())


class _Backward:
    """One backward pass: reads the parameters and the tape, accumulates ``grads``."""

    def __init__(self, params, acts, bn_caches):
        self.params, self.acts, self.bn_caches = params, acts, bn_caches
        self.grads = {}

    def bn(self, dout, layer: ConvBN):
        """BN backward (training or inference form); records the weight and bias grads."""
        name = layer.bn
        if self.bn_caches:
            dx, dw, db = batchnorm_train_backward(dout, self.bn_caches[name])
        else:
            p = self.params
            dx, dw, db = batchnorm_backward(dout, self.acts[layer.name], p[f"{name}.weight"],
                                            p[f"{name}.running_mean"], p[f"{name}.running_var"],
                                            eps=layer.eps)
        self.grads[f"{name}.weight"], self.grads[f"{name}.bias"] = dw, db
        return dx

    def conv_bn(self, dout, layer: ConvBN, x):
        """[ReLU ->] BN -> conv [-> pool] in reverse, for a layer whose input was ``x``
        (the pool's input when there is a pool): the gradient for ``x``."""
        if layer.relu is not None:
            dout = relu_backward(dout, self.acts[layer.relu])
        g = self.bn(dout, layer)
        conv_in = x if layer.pool is None else self.acts[layer.pool.name]
        g, dw = conv2d_backward(g, conv_in, self.params[f"{layer.name}.weight"], layer.stride,
                                layer.padding, layer.groups)
        self.grads[f"{layer.name}.weight"] = dw
        if layer.pool is not None:
            g = pool_backward(g, x, layer.pool)
        return g

    def head(self, dlogits, h: Head, features_shape):
        """fc then global average pool, in reverse: (N, classes) -> (N, C, H, W)."""
        df, dw, db = linear_backward(dlogits, self.acts[h.pool], self.params[f"{h.fc}.weight"])
        self.grads[f"{h.fc}.weight"], self.grads[f"{h.fc}.bias"] = dw, db
        return global_avgpool_backward(df, features_shape)

    def se(self, dout, se: SE, u):
        """An SE layer in reverse, for its input u (N, C, H, W): u's gradient."""
        p = self.params
        w1, b1, w2, b2 = (p[f"{fc.name}.{k}"] for fc in (se.fc1, se.fc2) for k in ("weight", "bias"))
        du, dw1, db1, dw2, db2 = squeeze_excite_backward(dout, u, w1, b1, w2, b2)
        for fc, dw, db in ((se.fc1, dw1, db1), (se.fc2, dw2, db2)):
            self.grads[f"{fc.name}.weight"], self.grads[f"{fc.name}.bias"] = dw, db
        return du

    def bottleneck(self, dout, x, block: Block):
        """One block in reverse: the gradient for the block input x (N, in, H, W)."""
        a, se = self.acts, block.se
        dy = relu_backward(dout, a[block.name])                          # through the final ReLU
        if se is not None and se.position == "post":
            dy = self.se(dy, se, a[se_input(block)])
        # residual branch, last layer first; each layer's input is the previous one's ReLU
        g = dy if se is None or se.position == "post" else self.se(dy, se, a[se_input(block)])
        g = self.conv_bn(g, block.conv3, a[block.conv2.relu])
        g = self.conv_bn(g, block.conv2, a[block.conv1.relu])
        dx = self.conv_bn(g, block.conv1, x)
        # shortcut: the addition passes dy to both paths unchanged
        if block.projection is None:
            return dx + dy
        return dx + self.conv_bn(dy, block.projection, x)

    def stem(self, dout, x, plan):
        """max-pool, then each (conv, BN, ReLU) of the stem in reverse: the input's gradient."""
        g = dout
        if plan.stem_pool is not None:
            g = pool_backward(g, self.acts[plan.stem[-1].relu], plan.stem_pool)
        for i in reversed(range(len(plan.stem))):
            g = self.conv_bn(g, plan.stem[i], x if i == 0 else self.acts[plan.stem[i - 1].relu])
        return g


def pool_backward(dout, x, pool: Pool):
    """The gradient of a max or average pool for its input ``x``."""
    if pool.kind == "max":
        return maxpool2d_backward(dout, x, kernel=pool.kernel, stride=pool.stride, padding=pool.padding,
                                  ceil_mode=pool.ceil_mode)
    return avgpool2d_backward(dout, x.shape, kernel=pool.kernel, stride=pool.stride,
                              padding=pool.padding, ceil_mode=pool.ceil_mode, exclusive=pool.exclusive)


def backward(model, tape: Tape, dlogits, allow_nonfinite=False):
    """Gradients of a scalar loss given dlogits = dloss/dlogits (N, classes), finite unless
    ``allow_nonfinite``.

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
        raise InputTypeError(f"backward: dlogits has dtype {dlogits.dtype}, the model is {model.dtype}")
    if not allow_nonfinite:
        check_finite(dlogits, "backward: dlogits")
    plan = model.plan
    back = _Backward(model.params, tape.acts, tape.bn_caches)
    g = back.head(dlogits, plan.head, tape.acts[plan.blocks[-1].name].shape)
    for block in reversed(plan.blocks):
        g = back.bottleneck(g, tape.acts[plan.block_input(block)], block)
    dx = back.stem(g, tape.x, plan)
    grads = OrderedDict(input=np.ascontiguousarray(dx))
    for name in param_shapes(model.plan):
        if is_trainable(name):
            grads[name] = back.grads[name]
    return grads


class Gradients(NamedTuple):
    logits: np.ndarray
    grads: OrderedDict      # "input" + every trainable parameter, canonical names
    running: OrderedDict    # training mode: updated running_mean / running_var; else empty


def gradients(model, x, dlogits, train=False, momentum=PADDLE_MOMENTUM,
              allow_nonfinite=False) -> Gradients:
    """Forward then backward in one call, for a given dloss/dlogits (N, classes). The
    memory it needs is estimated first (BudgetError when it does not fit); NaN or infinite
    values in ``x`` or ``dlogits`` are refused unless ``allow_nonfinite``."""
    x = model.check_input(x, allow_nonfinite)
    if isinstance(dlogits, np.ndarray) and not allow_nonfinite:
        check_finite(dlogits, "dlogits")
    check_compute(model.plan, x.shape, model.dtype, "gradients")
    logits, tape = forward_tape(model, x, train=train, momentum=momentum,
                                allow_nonfinite=allow_nonfinite)
    return Gradients(logits, backward(model, tape, dlogits, allow_nonfinite), tape.running)
