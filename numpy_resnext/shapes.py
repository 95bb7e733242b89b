"""Shape arithmetic over a whole network, without running it.

:func:`output_shapes` runs the forward walk (:mod:`.walk`) with ops that carry a per-sample
(C, H, W) shape instead of an array, so the rows follow the forward pass by construction:
for each name the forward emits, the op, the output shape, groups, trainable parameters and
multiply-accumulates (MACs; conv and fc only, per sample). The summary command prints it;
the tests check it against the shapes the real forward produces.
"""

from __future__ import annotations

import math
from typing import NamedTuple

from .errors import InputError
from .ops.im2col import conv_output_size
from .plan import Block, ConvBN, Head, Plan, Pool, as_plan
from .ops.pooling import pool_output_size
from .walk import walk


class _Value(NamedTuple):
    """What the shape walk passes between layers: a shape and how it was made."""

    shape: tuple                       # (C, H, W) or (features,)
    op: str
    groups: int = 1
    params: int = 0
    macs: int = 0


class ShapeOps:
    """The walk's ops on shapes (see :class:`numpy_resnext.walk.ArrayOps` for the arrays)."""

    def conv(self, x, layer: ConvBN):
        _, H, W = x.shape
        k, s, p = layer.kernel, layer.stride, layer.padding
        H, W = conv_output_size(H, k, s, p), conv_output_size(W, k, s, p)
        params = math.prod(layer.weight_shape)
        return _Value((layer.out_channels, H, W), f"conv {k}x{k}/{s}", layer.groups, params,
                      params * max(H, 0) * max(W, 0))

    def bn(self, x, layer: ConvBN):
        return _Value(x.shape, "batchnorm", params=2 * x.shape[0])

    def relu(self, x, layer):
        return _Value(x.shape, "relu (block output)" if isinstance(layer, Block) else "relu")

    def pool(self, x, pool: Pool):
        C, H, W = x.shape
        args = (pool.kernel, pool.stride, pool.padding, pool.ceil_mode)
        op = f"{pool.kind}pool {pool.kernel}x{pool.kernel}/{pool.stride}" + (" ceil" if pool.ceil_mode else "")
        return _Value((C, pool_output_size(H, *args), pool_output_size(W, *args)), op)

    def add(self, y, shortcut, block: Block):
        if y.shape != shortcut.shape:          # a changed plan whose two paths disagree
            raise InputError(f"{block.name}: the residual branch gives {y.shape} but the "
                             f"shortcut {shortcut.shape}; the addition needs equal shapes")
        return _Value(y.shape, "add")

    def global_pool(self, x, head: Head):
        return _Value((x.shape[0],), "global avgpool")

    def fc(self, features, head: Head):
        params = head.in_features * head.num_classes + head.num_classes
        return _Value((head.num_classes,), "fully connected", params=params,
                      macs=head.in_features * head.num_classes)


def shape_walk(plan, height: int, width: int, ops=None, emit=None):
    """The forward walk of ``plan`` on a 3 x height x width sample's shape, with
    :class:`ShapeOps` (or a subclass that also records what it sees)."""
    return walk(plan, _Value((3, height, width), "input"), ops or ShapeOps(), emit)


def output_shapes(plan: Plan, height: int, width: int) -> list:
    """Rows {name, op, shape, groups, params, macs} in execution order for one sample of a
    plan (an architecture's name or config is accepted too)."""
    rows = []

    def emit(name, v):
        rows.append(dict(name=name, op=v.op, shape=v.shape, groups=v.groups, params=v.params,
                         macs=v.macs))
    shape_walk(as_plan(plan), height, width, emit=emit)
    return rows


def check_input_size(plan: Plan, height: int, width: int, what="input") -> None:
    """Raise a clear error unless ``height`` x ``width`` is a size the network can run.

    Every layer of every plan pads enough that a 1x1 input leaves a 1x1 output (the stem's
    7x7/2 conv pads 3, every 3x3 conv and pool pads 1, the vd average pool rounds up), so
    any H, W >= 1 is valid; tests/test_plan.py walks the shapes of every architecture at 1x1
    to keep that true."""
    if height < 1 or width < 1:
        raise InputError(f"{what}: spatial size {height}x{width} is too small for "
                         f"{plan.config.name}; it runs on any input of at least 1x1")


def totals(plan: Plan, height: int = 224, width: int = 224):
    """(trainable parameters, MACs per sample) at the given input size."""
    rows = output_shapes(plan, height, width)
    return sum(r["params"] for r in rows), sum(r["macs"] for r in rows)
