"""Low-precision candidates emulated on the one forward walk, to choose compare tolerances.

A float16, bfloat16 or int8 implementation cannot meet a float32 tolerance; how far off a
*correct* one is, per depth, tells a user what rtol to give ``compare`` for it. Each
emulation here is ArrayOps with every op's result rounded (the arithmetic itself runs in
float32, as accelerators accumulate in float32):

- ``float32``: the plain float32 forward;
- ``float16`` / ``bfloat16``: conv and fc inputs and weights rounded to the format, every
  op's output (conv, BN, pool, add, fc, and the SE layers' squeeze, fc, gate and scale)
  rounded too: a network run in that format end to end;
- ``int8``: conv and fc inputs (the SE layers' fc too) quantised symmetric per tensor
  (scale max|x| / 127) and
  weights symmetric per output channel, outputs kept in float32 (fake quantisation, no
  calibration set: the scale is taken from the tensor itself, the most favourable case).

:func:`precision_profile` compares each with the float64 golden and reports the relative
error (``compare``'s norm-wise max_rel), the largest over the stem's tensors, over each
stage's tensors, at the pooled features and at the logits.
"""

from __future__ import annotations

import numpy as np

from . import compare, golden_dump
from ..ops.linear import linear
from ..ops.se import se_fc
from ..model import build
from .mutants import MutantOps, prepare, to_bfloat16
from .mutation_audit import DEFAULT_SIZE, audit_image
from ..walk import ArrayOps, Capture, walk

FORMATS = ("float32", "float16", "bfloat16", "int8")


def to_float16(a):
    return a.astype(np.float16).astype(a.dtype)


class RoundedOps(MutantOps):
    """Every op's result rounded by ``self.round`` (a network run in a narrow format)."""

    round = staticmethod(lambda a: a)

    def conv(self, x, layer):
        return self.round(self.conv_with(self.round(x), layer, self.round(self.weight(layer))))

    def bn(self, x, layer):
        return self.round(super().bn(x, layer))

    def pool(self, x, pool):
        return self.round(super().pool(x, pool))

    def add(self, y, shortcut, block):
        return self.round(super().add(y, shortcut, block))

    def global_pool(self, x, head):
        return self.round(super().global_pool(x, head))

    def fc(self, features, head):
        w, b = (self.round(self.params[f"{head.fc}.{k}"]) for k in ("weight", "bias"))
        return self.round(linear(self.round(features), w, b))              # N, classes

    def squeeze(self, x, se):
        return self.round(super().squeeze(x, se))

    def se_fc(self, x, fc):
        w, b = (self.round(self.params[f"{fc.name}.{k}"]) for k in ("weight", "bias"))
        return self.round(se_fc(self.round(x), w, b))                      # N, out

    def gate(self, x, se):
        return self.round(super().gate(x, se))

    def scale(self, y, gate, se):
        return self.round(super().scale(y, gate, se))


class Float16Ops(RoundedOps):
    round = staticmethod(to_float16)


class Bfloat16Ops(RoundedOps):
    round = staticmethod(to_bfloat16)


def quantise(a, axis=None):
    """Symmetric int8 fake quantisation: round(a / s) * s with s = max|a| / 127, per tensor
    (axis None) or per slice along ``axis``."""
    keep = tuple(i for i in range(a.ndim) if i != axis) if axis is not None else None
    s = np.abs(a).max(axis=keep, keepdims=True) / 127 if keep else np.abs(a).max() / 127
    s = np.where(s == 0, 1, s).astype(a.dtype)
    return np.clip(np.rint(a / s), -127, 127) * s


class Int8Ops(MutantOps):
    def conv(self, x, layer):
        return self.conv_with(quantise(x), layer, quantise(self.weight(layer), axis=0))

    def fc(self, features, head):
        w = quantise(self.params[f"{head.fc}.weight"], axis=0)
        return linear(quantise(features), w, self.params[f"{head.fc}.bias"])  # N, classes

    def se_fc(self, x, fc):
        w = quantise(self.params[f"{fc.name}.weight"], axis=0)
        return se_fc(quantise(x), w, self.params[f"{fc.name}.bias"])          # N, out


OPS = {"float32": ArrayOps, "float16": Float16Ops, "bfloat16": Bfloat16Ops, "int8": Int8Ops}


def depth_groups(plan):
    """{label: tensor names}: the stem, each stage (every tensor of its blocks), the head's
    pooled features and the logits."""
    groups = {"stem": [n for layer in plan.stem for n in layer.emits]
              + ([plan.stem_pool.name] if plan.stem_pool else [])}
    for b in plan.blocks:
        groups.setdefault(f"layer{b.layer}", []).extend(b.emits)
    groups.update(avgpool=[plan.head.pool], logits=[plan.head.fc])
    return groups


def precision_profile(arch, size=DEFAULT_SIZE, init="calibrated", seed=0, formats=FORMATS) -> dict:
    """{format: {label: largest max_rel over the label's tensors}} against the float64
    golden (labels of :func:`depth_groups`), plus "worst" (over every tensor) and "worst_at"."""
    image = audit_image(*size, seed)
    g_model = build(arch, seed=seed, dtype="float64", init=init)
    golden, _ = golden_dump(g_model, prepare(image, "float64")[None])
    model = build(arch, seed=seed, dtype="float32", init=init)
    x = prepare(image, "float32")[None]
    out = {}
    for fmt in formats:
        ops_class = OPS[fmt]
        ops = ops_class(model.params, model.plan) if issubclass(ops_class, MutantOps) else ops_class(model.params)
        kept = Capture(True)
        walk(model.plan, x, ops, kept)
        report = compare(golden, {"input": x, **kept.tensors}, rtol=0.0, atol=0.0)
        rows = {r.name: r.max_rel for r in report.rows if r.name != "input"}
        worst = max(rows, key=rows.get)
        out[fmt] = {label: max(rows[n] for n in names) for label, names in depth_groups(model.plan).items()}
        out[fmt].update(worst=rows[worst], worst_at=worst)
    return out
