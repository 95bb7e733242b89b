"""The paper's three equivalent views of a ResNeXt block (Fig. 3), computed on a real block.

A bottleneck of cardinality C and bottleneck width d (width = C*d channels in the middle)
can be read three ways, and all three give the same numbers:

(a) split-transform-merge, :func:`block_branches`: C independent branches, branch i being

        1x1 conv in -> d    (rows i*d .. i*d+d-1 of conv1's weight)
        BN (the same d channels of bn1), ReLU
        3x3 conv d -> d     (rows i*d .. of conv2's weight; stride on this conv)
        BN (the same d channels of bn2), ReLU
        1x1 conv d -> out   (columns i*d .. i*d+d-1 of conv3's weight: its *input* channels)

    and the block aggregates them by summing: T = sum_i T_i.
(b) early concatenation, :func:`early_concat_form`: each of the C branches keeps its own
    first 1x1 conv in -> d and its own 3x3 conv d -> d; their outputs are concatenated
    (C*d channels) before the last layer, which is one 1x1 conv C*d -> out instead of C
    last 1x1 convs summed. (The function computes the C separate first 1x1 convs as one
    1x1 conv in -> C*d: output channel j reads only row j of the weight, so the
    concatenated outputs are the same numbers.)
(c) grouped convolution: the block itself, :func:`numpy_resnext.blocks.bottleneck`, where
    (b)'s separate 3x3 convolutions are one convolution with groups = C.

Why the equality holds with BN and ReLU included, not only for the linear part:
- bn1, relu1, bn2, relu2 act per channel. Channel j of the middle activations belongs to
  exactly one branch (i = j // d), so applying BN channel slice i*d..i*d+d-1 inside branch
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

from .activations import relu
from .archs import ArchConfig, BlockPlan, block_plan
from .batchnorm import batchnorm
from .blocks import bottleneck, shortcut
from .conv import conv2d
from .errors import InputError
from .params import BN_FIELDS, shortcut_names


class BranchForm(NamedTuple):
    """The split-transform-merge view of one block.

    branches: list of C arrays (N, out, OH, OW), branch i's conv3-slice output T_i
    total:    sum of the branches, equal to the block's ``conv3`` output
    bn3:      bn3 applied once to the total (equal to the block's ``bn3`` output)
    shortcut: the shortcut path (identity or projection)
    output:   ReLU(bn3 + shortcut), equal to the block's output
    """

    branches: list
    total: np.ndarray
    bn3: np.ndarray
    shortcut: np.ndarray
    output: np.ndarray


def find_block(config: ArchConfig, name) -> BlockPlan:
    """The :class:`BlockPlan` called ``name`` (e.g. "layer1.0"); a BlockPlan passes through."""
    if isinstance(name, BlockPlan):
        return name
    for b in block_plan(config):
        if b.name == name:
            return b
    names = [b.name for b in block_plan(config)]
    raise InputError(f"{config.name} has no block {name!r}; blocks are {names[0]} .. {names[-1]}")


def _bn(x, params, name, lo=None, hi=None):
    """Inference BN into a new array, optionally restricted to channels lo..hi-1 (BN is per
    channel, so slicing is exact)."""
    return batchnorm(x, *(params[f"{name}.{f}"][lo:hi] for f in BN_FIELDS))


def branch(x, params, block: BlockPlan, i: int):
    """Branch i of the block (Fig. 3a): (N, in, H, W) -> T_i (N, out, OH, OW), before bn3."""
    b = block.name
    d = block.width // block.groups                                      # channels per branch
    lo, hi = i * d, (i + 1) * d
    y = conv2d(x, params[f"{b}.conv1.weight"][lo:hi])                    # N, d, H, W
    y = relu(_bn(y, params, f"{b}.bn1", lo, hi))
    y = conv2d(y, params[f"{b}.conv2.weight"][lo:hi], stride=block.stride, padding=1)  # N, d, OH, OW
    y = relu(_bn(y, params, f"{b}.bn2", lo, hi))
    return conv2d(y, np.ascontiguousarray(params[f"{b}.conv3.weight"][:, lo:hi]))  # N, out, OH, OW


def _merge(x, params, block, config, total, branches):
    b = block.name
    y3 = _bn(total, params, f"{b}.bn3")                                  # bn3 once, on the sum
    s = shortcut(x, params, block, config, lambda name, value: None)
    return BranchForm(branches, total, y3, s, relu(y3 + s))


def block_branches(x, params, block, config: ArchConfig) -> BranchForm:
    """Fig. 3a on a real block: every branch's output, their sum, bn3, shortcut, output.

    x: (N, in, H, W) block input; params: canonical name -> array (inference BN: running
    statistics); block: a :class:`BlockPlan` or its name ("layer1.0").
    """
    block = find_block(config, block)
    branches = [branch(x, params, block, i) for i in range(block.groups)]
    total = np.sum(branches, axis=0)                                     # N, out, OH, OW
    return _merge(x, params, block, config, total, branches)


def early_concat_form(x, params, block, config: ArchConfig) -> BranchForm:
    """Fig. 3b: one 1x1 conv, C separate 3x3 convs concatenated, one 1x1 conv. ``branches``
    holds the C concatenated pieces after relu2 (N, d, OH, OW)."""
    block = find_block(config, block)
    b, C = block.name, block.groups
    d = block.width // C
    y = relu(_bn(conv2d(x, params[f"{b}.conv1.weight"]), params, f"{b}.bn1"))   # N, C*d, H, W
    w2 = params[f"{b}.conv2.weight"]                                            # C*d, d, 3, 3
    pieces = [conv2d(np.ascontiguousarray(y[:, i * d:(i + 1) * d]), w2[i * d:(i + 1) * d],
                     stride=block.stride, padding=1) for i in range(C)]         # C x (N, d, OH, OW)
    z = relu(_bn(np.concatenate(pieces, axis=1), params, f"{b}.bn2"))           # N, C*d, OH, OW
    total = conv2d(z, params[f"{b}.conv3.weight"])                              # N, out, OH, OW
    return _merge(x, params, block, config, total, [z[:, i * d:(i + 1) * d] for i in range(C)])


def grouped_form(x, params, block, config: ArchConfig) -> BranchForm:
    """Fig. 3c: the block exactly as the model runs it (one grouped 3x3 convolution)."""
    block = find_block(config, block)
    kept = {}
    out = bottleneck(x, params, block, config, lambda name, value: kept.__setitem__(name, value.copy()))
    b = block.name
    s = x if block.shortcut == "identity" else kept[shortcut_names(config, b)[2]]  # the block ran it
    return BranchForm([], kept[f"{b}.conv3"], kept[f"{b}.bn3"], s, out)
