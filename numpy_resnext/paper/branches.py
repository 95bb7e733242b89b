"""The paper's three equivalent views of a ResNeXt block (Fig. 3), computed on a real block.

A bottleneck of cardinality C with d' channels per branch (width = C*d' channels in the
middle; d' is the paper's bottleneck width d in layer1 and doubles with every later stage)
can be read three ways, and all three give the same numbers:

(a) split-transform-merge, :func:`block_branches`: C independent branches, branch i being

        1x1 conv in -> d'    (rows i*d' .. i*d'+d'-1 of conv1's weight)
        BN (the same d' channels of bn1), ReLU
        3x3 conv d' -> d'     (rows i*d' .. of conv2's weight; stride on this conv)
        BN (the same d' channels of bn2), ReLU
        1x1 conv d' -> out   (columns i*d' .. i*d'+d'-1 of conv3's weight: its *input* channels)

    and the block aggregates them by summing: T = sum_i T_i.
(b) early concatenation, :func:`early_concat_form`: each of the C branches keeps its own
    first 1x1 conv in -> d' and its own 3x3 conv d' -> d'; their outputs are concatenated
    (C*d' channels) before the last layer, which is one 1x1 conv C*d' -> out instead of C
    last 1x1 convs summed.
(c) grouped convolution: the block itself, :func:`numpy_resnext.walk.bottleneck`, where
    (b)'s C first 1x1 convolutions are one 1x1 conv in -> C*d' (output channel j reads
    only row j of the weight) and its C separate 3x3 convolutions are one convolution
    with groups = C.

Why the equality holds with BN and ReLU included, not only for the linear part:
- bn1, relu1, bn2, relu2 act per channel. Channel j of the middle activations belongs to
  exactly one branch (i = j // d'), so applying BN channel slice i*d'..i*d'+d'-1 inside branch
  i is the same arithmetic as applying BN to the concatenation. (This holds for inference
  BN, an affine map per channel, and equally for training BN, whose batch statistics are
  computed per channel.)
- conv3 is linear: conv3(concat_i z_i) = sum_i conv3_i(z_i) with conv3_i the weight's
  input-channel slice i, so the sum of branch outputs equals conv3's output exactly (up
  to floating-point summation order).
- bn3 comes *after* the aggregation and is not split: bn3(T) = scale*T + shift with
  scale = w/sqrt(var+eps), shift = b - mean*scale. Distributing it over the branches,
  bn3(T) = sum_i (scale*T_i) + shift, adds the shift once, not C times; and training-mode
  bn3 needs the statistics of the sum, which no single branch has. So the branches here
  stop at their conv3 slice, and bn3 is applied once to their sum, as the paper draws it
  (aggregation, then the block's BN, then the shortcut addition and the final ReLU).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..ops.activations import relu
from ..ops.batchnorm import batchnorm
from ..ops.conv import conv2d
from ..plan import BN_FIELDS, Block, Plan, as_plan
from ..walk import ArrayOps, bottleneck, conv_bn, squeeze_excite


class BranchForm(NamedTuple):
    """The split-transform-merge view of one block.

    branches: list of C arrays (N, out, OH, OW), branch i's conv3-slice output T_i
    total:    sum of the branches, equal to the block's ``conv3`` output
    bn3:      bn3 applied once to the total (equal to the block's ``bn3`` output)
    shortcut: the shortcut path (identity or projection)
    output:   ReLU(bn3 + shortcut), equal to the block's output (SE-ResNeXt: ReLU(SE(bn3)
              + shortcut))
    """

    branches: list
    total: np.ndarray
    bn3: np.ndarray
    shortcut: np.ndarray
    output: np.ndarray


def find_block(plan: Plan, name) -> Block:
    """The :class:`~numpy_resnext.plan.Block` called ``name`` (e.g. "layer1.0") of a plan (an
    architecture's name or config is accepted too); a Block passes through."""
    return as_plan(plan).block(name)


def _bn_slice(x, params, layer, lo=None, hi=None):
    """Inference BN of conv layer ``layer`` into a new array, optionally restricted to
    channels lo..hi-1 (BN is per channel, so slicing is exact)."""
    return batchnorm(x, *(params[f"{layer.bn}.{f}"][lo:hi] for f in BN_FIELDS), eps=layer.eps)


def branch(x, params, block: Block, i: int):
    """Branch i of the block (Fig. 3a): (N, in, H, W) -> T_i (N, out, OH, OW), before bn3."""
    c1, c2, c3 = block.conv1, block.conv2, block.conv3
    dp = block.group_width                                               # channels per branch, d'
    lo, hi = i * dp, (i + 1) * dp
    y = conv2d(x, params[f"{c1.name}.weight"][lo:hi], stride=c1.stride, padding=c1.padding)  # N, d', H, W
    y = relu(_bn_slice(y, params, c1, lo, hi))
    y = conv2d(y, params[f"{c2.name}.weight"][lo:hi], stride=c2.stride, padding=c2.padding)  # N, d', OH, OW
    y = relu(_bn_slice(y, params, c2, lo, hi))
    w3 = np.ascontiguousarray(params[f"{c3.name}.weight"][:, lo:hi])
    return conv2d(y, w3, stride=c3.stride, padding=c3.padding)           # N, out, OH, OW


def _shortcut(x, params, block: Block):
    """The block's shortcut path on its input x, as the forward runs it."""
    if block.projection is None:
        return x
    return conv_bn(x, block.projection, ArrayOps(params), lambda name, value: None)


def _merge(x, params, block, total, branches):
    y3 = _bn_slice(total, params, block.conv3)                           # bn3 once, on the sum
    s, se = _shortcut(x, params, block), block.se
    if se is None:
        return BranchForm(branches, total, y3, s, relu(y3 + s))
    # SE-ResNeXt: the gate scales the aggregated branch after bn3 (it needs every channel's
    # mean over the image, which no single branch has); SE-POST scales the sum
    ops = ArrayOps(params)
    y = squeeze_excite(y3 + s, se, ops) if se.position == "post" else squeeze_excite(y3.copy(), se, ops) + s
    return BranchForm(branches, total, y3, s, relu(y))


def block_branches(x, params, block, plan: Plan) -> BranchForm:
    """Fig. 3a on a real block: every branch's output, their sum, bn3, shortcut, output.

    x: (N, in, H, W) block input; params: canonical name -> array (inference BN: running
    statistics); block: a :class:`~numpy_resnext.plan.Block` or its name ("layer1.0").
    """
    block = find_block(plan, block)
    branches = [branch(x, params, block, i) for i in range(block.groups)]
    total = np.sum(branches, axis=0)                                     # N, out, OH, OW
    return _merge(x, params, block, total, branches)


def early_concat_form(x, params, block, plan: Plan) -> BranchForm:
    """Fig. 3b: C separate first 1x1 convs and C separate 3x3 convs, their outputs
    concatenated, then one 1x1 conv. ``branches`` holds the C concatenated pieces after
    relu2 (N, d', OH, OW)."""
    block = find_block(plan, block)
    c1, c2, c3 = block.conv1, block.conv2, block.conv3
    C, dp = block.groups, block.group_width
    w1, w2 = params[f"{c1.name}.weight"], params[f"{c2.name}.weight"]      # C*d', in, 1, 1 / C*d', d', 3, 3
    pieces = []
    for i in range(C):
        lo, hi = i * dp, (i + 1) * dp
        y = relu(_bn_slice(conv2d(x, w1[lo:hi], c1.stride, c1.padding), params, c1, lo, hi))  # N, d', H, W
        pieces.append(conv2d(y, w2[lo:hi], stride=c2.stride, padding=c2.padding))             # N, d', OH, OW
    z = relu(_bn_slice(np.concatenate(pieces, axis=1), params, c2))         # N, C*d', OH, OW
    total = conv2d(z, params[f"{c3.name}.weight"], c3.stride, c3.padding)      # N, out, OH, OW
    return _merge(x, params, block, total, [z[:, i * dp:(i + 1) * dp] for i in range(C)])


def grouped_form(x, params, block, plan: Plan) -> BranchForm:
    """Fig. 3c: the block exactly as the model runs it (one grouped 3x3 convolution)."""
    block = find_block(plan, block)
    kept = {}
    out = bottleneck(x, block, ArrayOps(params), lambda name, value: kept.__setitem__(name, value.copy()))
    s = x if block.projection is None else kept[block.projection.bn]    # the block ran it
    return BranchForm([], kept[block.conv3.name], kept[block.conv3.bn], s, out)
