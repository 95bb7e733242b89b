"""Shape arithmetic over a whole network, without running it.

:func:`output_shapes` runs the forward walk (:mod:`.walk`) with ops that carry a per-sample
(C, H, W) shape instead of an array, so the rows follow the forward pass by construction:
for each name the forward emits, the op, the output shape, groups, trainable parameters and
multiply-accumulates (MACs; convolutions and fully connected layers only, the SE layers'
two included, per sample). The summary command prints it;
the tests check it against the shapes the real forward produces.

The same shapes give the memory a computation needs before it runs
(:func:`memory_estimate`, checked against the budget by :func:`check_compute`): a forward
pass, a golden dump and gradients, for a plan, an input shape and a dtype. The figures are
upper bounds measured against tracemalloc's peaks (tests/test_memory.py) and stated in
docs/formats.md ("Memory").
"""

from __future__ import annotations

import functools
import math
from typing import NamedTuple

import numpy as np

from ._select import Selection
from .bounded import check_memory
from .errors import InputError
from .ops.im2col import conv_output_size
from .params import is_trainable, param_shapes
from .plan import SE, Block, ConvBN, Head, Plan, Pool, SEFc, as_plan
from .ops.pooling import pool_output_size
from .walk import stem, walk


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

    def squeeze(self, x, se: SE):
        return _Value((x.shape[0],), "SE squeeze (avgpool)")

    def se_fc(self, x, fc: SEFc):
        return _dense(fc.in_features, fc.out_features, "SE fc (1x1, bias)")

    def gate(self, x, se: SE):
        return _Value(x.shape, "sigmoid")

    def scale(self, y, gate, se: SE):
        if gate.shape != y.shape[:1]:
            raise InputError(f"{se.name}: a gate of {gate.shape} for a branch of {y.shape}")
        return _Value(y.shape, "SE scale")

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
        return _dense(head.in_features, head.num_classes, "fully connected")


def _dense(n_in: int, n_out: int, op: str) -> _Value:
    """A fully connected layer with a bias: n_in * n_out + n_out parameters, n_in * n_out MACs."""
    return _Value((n_out,), op, params=n_in * n_out + n_out, macs=n_in * n_out)


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

    Every layer pads enough that a 1x1 input leaves a 1x1 output (the stem's 7x7/2 conv
    pads 3, every 3x3 conv pads 1, the vd average pool rounds up), except the legacy SENet
    stem's max-pool (3x3/2, no padding, ceil mode), which needs 2x2 (a 3x3 input); so the
    stem decides, and tests/test_plan.py walks every architecture at its smallest size."""
    least = min_input_size(plan)
    if height < least or width < least:
        raise InputError(f"{what}: spatial size {height}x{width} is too small for "
                         f"{plan.config.name}; it runs on any input of at least {least}x{least}")


def min_input_size(plan: Plan) -> int:
    """The smallest height (and width) the stem of ``plan`` turns into at least one pixel."""
    size = 1
    while stem(_Value((3, size, size), "input"), plan, ShapeOps()).shape[1] < 1:
        size += 1
    return size


def totals(plan: Plan, height: int = 224, width: int = 224):
    """(trainable parameters, MACs per sample) at the given input size."""
    rows = output_shapes(plan, height, width)
    return sum(r["params"] for r in rows), sum(r["macs"] for r in rows)


# --- memory ------------------------------------------------------------------------------
WORK_TENSORS = 6          # the forward's working set, in units of its largest tensor
WORK_WEIGHTS = 2          # ... and of its largest weight (a conv's weight matrix is copied)
WORK_FIXED = 16 << 20     # column blocks (half an L2 cache each), small buffers
KINDS = ("forward", "golden", "gradients")


@functools.lru_cache(maxsize=32)
def _per_sample(plan: Plan, height: int, width: int):
    """((name, elements per sample) of every emitted tensor, elements of the largest
    parameter, trainable elements) of a plan at an input size."""
    rows = output_shapes(plan, height, width)
    shapes = param_shapes(plan)
    return (tuple((r["name"], math.prod(r["shape"])) for r in rows),
            max(math.prod(v) for v in shapes.values()),
            sum(math.prod(v) for k, v in shapes.items() if is_trainable(k)))


def memory_estimate(plan, input_shape, dtype="float32", kind="forward", keep=None) -> int:
    """Bytes a computation on an input of ``input_shape`` (N, 3, H, W) allocates beyond the
    model's weights, an upper bound:

    forward    the working set (6 x the largest tensor, 2 x the largest weight, 16 MiB)
               plus the intermediates ``keep`` selects (None: none);
    golden     a forward keeping what ``keep`` selects (None: every intermediate), the
               input's copy and 3 float64 copies of the largest tensor (the manifest's
               sums, the contiguous copy written);
    gradients  twice the working set (forward and backward), every intermediate (the
               backward keeps most of them), the input and one gradient per trainable
               parameter.
    """
    if kind not in KINDS:
        raise InputError(f"memory_estimate: kind {kind!r}; expected one of {', '.join(KINDS)}")
    plan = as_plan(plan)
    n, _, height, width = (int(d) for d in input_shape)
    item = np.dtype(dtype).itemsize
    tensors, largest_param, trainable = _per_sample(plan, height, width)
    input_bytes = n * 3 * height * width * item
    largest = max(input_bytes, max(e for _, e in tensors) * n * item)
    work = WORK_TENSORS * largest + WORK_WEIGHTS * largest_param * item + WORK_FIXED
    if kind == "forward":
        if keep is None or keep is False:
            return work
        chosen = Selection(keep)
        return work + sum(e for name, e in tensors if chosen.matches(name)) * n * item
    if kind == "golden":
        chosen = Selection(True if keep is None else keep)
        kept = sum(e for name, e in tensors if chosen.matches(name)) * n * item
        return work + kept + input_bytes + 3 * largest * 8 // item
    every = sum(e for _, e in tensors) * n * item
    return 2 * work + every + input_bytes + trainable * item


def describe_run(plan, input_shape, dtype) -> str:
    """"ResNeXt50_32x4d on a (1, 3, 224, 224) float32 input", for messages."""
    return f"{as_plan(plan).config.name} on a {tuple(int(d) for d in input_shape)} " \
           f"{np.dtype(dtype)} input"


def check_compute(plan, input_shape, dtype="float32", kind="forward", keep=None,
                  what=None, extra=0) -> int:
    """:func:`memory_estimate` (plus ``extra`` bytes) if the memory budget allows it, else
    BudgetError naming the size and how to raise the budget
    (:func:`numpy_resnext.bounded.check_memory`). ``what`` names the computation in the
    message (default: ``kind`` and :func:`describe_run`)."""
    need = memory_estimate(plan, input_shape, dtype, kind, keep) + extra
    label = what or f"{'a forward pass' if kind == 'forward' else kind} of " \
                    f"{describe_run(plan, input_shape, dtype)}"
    return check_memory(need, label)
