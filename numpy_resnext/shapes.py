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

from .archs import ArchConfig
from .ops.conv import conv_output_size
from .plan import Block, ConvBN, Head, Pool, layer_plan
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

    def relu(self, x, name):
        return _Value(x.shape, "relu (block output)" if x.op == "add" else "relu")

    def pool(self, x, pool: Pool):
        C, H, W = x.shape
        args = (pool.kernel, pool.stride, pool.padding, pool.ceil_mode)
        op = f"{pool.kind}pool {pool.kernel}x{pool.kernel}/{pool.stride}" + (" ceil" if pool.ceil_mode else "")
        return _Value((C, pool_output_size(H, *args), pool_output_size(W, *args)), op)

    def add(self, y, shortcut, block: Block):
        if y.shape != shortcut.shape:          # the input is too small: the two paths disagree
            return _Value((y.shape[0], -1, -1), "add")
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


def output_shapes(config: ArchConfig, height: int, width: int) -> list:
    """Rows {name, op, shape, groups, params, macs} in execution order for one sample."""
    rows = []

    def emit(name, v):
        rows.append(dict(name=name, op=v.op, shape=v.shape, groups=v.groups, params=v.params,
                         macs=v.macs))
    shape_walk(layer_plan(config), height, width, emit=emit)
    return rows


def valid_size(config: ArchConfig, height: int, width: int) -> bool:
    """True when every layer of ``config`` has at least a 1x1 output."""
    return all(len(r["shape"]) == 1 or (r["shape"][1] >= 1 and r["shape"][2] >= 1)
               for r in output_shapes(config, height, width))


def min_input_size(config: ArchConfig):
    """The smallest (H, W) the network accepts, each side searched with the other one large."""
    big = 4096
    h = next((s for s in range(1, big) if valid_size(config, s, big)), big)
    w = next((s for s in range(1, big) if valid_size(config, big, s)), big)
    return h, w


def totals(config: ArchConfig, height: int = 224, width: int = 224):
    """(trainable parameters, MACs per sample) at the given input size."""
    rows = output_shapes(config, height, width)
    return sum(r["params"] for r in rows), sum(r["macs"] for r in rows)
