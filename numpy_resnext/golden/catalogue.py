"""The catalogue of port bugs: each bug of :mod:`.mutants` named, described, and placed at
the tensor where it lives.

Each :class:`Mutant` is one bug, a variant of the forward walk in one of three ways (an
``ops`` class, a ``plan`` function or an input pipeline ``prepare``; see :mod:`.mutants`).
Each declares ``where(plan, layer_inputs)``: the tensor name(s) at which ``compare`` must
report the first divergence, the tensor where the bug lives. ``equivalent(plan,
layer_inputs)`` gives the reason a mutant cannot change any output for this architecture
and input size (e.g. no average pool outside vd models, no SE layer outside SE-ResNeXt),
or None. :mod:`.mutation_audit` runs them.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

from ..preprocess import MEAN, STD
from .mutants import (AvgPoolFullWindow, Bfloat16Layer, Eps1e3, EpsOutsideSqrt, FcBiasDropped,
                      FlippedKernel, GlobalMaxPool, InterleavedGroups, KernelTransposed,
                      MaxPoolZeroPadding, MeanVarSwapped, NoEps, NoReluAfterAdd, ReluBeforeAdd,
                      ScaleShiftSwapped, SEHardSigmoid, SELinearNotTransposed, SESqueezeMax,
                      SEWidthRoundedOtherWay, TFSamePadding, TrainingModeBN, VarianceAsStd,
                      map_avg_pools, bf16_layer, other_rounding, prepare_bgr,
                      prepare_unnormalised, se_after_add, stride_on_conv1, vd_without_pool)


# --- where each bug lives ----------------------------------------------------------------------
def _first_bn(plan, ci):
    return (plan.stem[0].bn,)


def _first_spatial_conv(plan, ci):
    return (next(c.name for c in plan.convs() if c.kernel > 1),)


def _first_grouped_conv(plan, ci):
    return tuple(c.name for c in plan.convs() if c.groups > 1)[:1]


def _first_strided_block(plan, ci):
    return tuple(b.name for b in plan.blocks if b.stride > 1)[:1]


def _first_even_strided_conv(plan, ci):
    return tuple(c.name for c in plan.convs() if c.stride > 1 and c.kernel > 1
                 and any(n % 2 == 0 for n in ci[c.name]))[:1]


def _first_avg_pool(plan, ci):
    return tuple(b.projection.pool.name for b in plan.blocks
                 if b.projection is not None and b.projection.pool is not None)[:1]


def _first_overhanging_pool(plan, ci):
    return tuple(b.projection.pool.name for b in plan.blocks if b.projection is not None
                 and b.projection.pool is not None and any(n % 2 for n in ci[b.projection.pool.name]))[:1]


def _first_vd_projection(plan, ci):
    return tuple(b.projection.name for b in plan.blocks
                 if b.projection is not None and b.projection.pool is not None)[:1]


def _fixed(*names):
    return lambda plan, ci: names


def _padded_stem_pool(plan, ci):
    pool = plan.stem_pool
    return (pool.name,) if pool is not None and pool.padding > 0 else ()


def _first_se(role):
    """The first SE layer's tensor ``role`` ("pool", "gate", "fc1"): where its bugs show."""
    def where(plan, ci):
        se = plan.se_layers()[:1]
        return tuple(getattr(s, role) if role != "fc1" else s.fc1.name for s in se)
    return where


def _first_se_pool_over_pixels(plan, ci):
    return tuple(s.pool for s in plan.se_layers() if tuple(ci[s.pool]) != (1, 1))[:1]


def _first_se_rounded_otherwise(plan, ci):
    return tuple(s.fc1.name for s in plan.se_layers()
                 if other_rounding(s.channels, plan.config) != s.reduced)[:1]


class Mutant(NamedTuple):
    name: str
    kind: str
    bug: str                                  # what the port does wrong
    where: Callable                           # (plan, conv_inputs) -> tensor name(s) of the first divergence
    ops: type | None = None
    plan: Callable | None = None
    prepare: Callable | None = None
    always_equivalent: str | None = None      # why it cannot change any output, whatever the net

    def equivalent(self, plan, ci):
        """Why this mutant cannot change an output of ``plan`` at this input size, or None."""
        if self.always_equivalent:
            return self.always_equivalent
        if not self.where(plan, ci):
            return NOT_EXERCISED[self.name]
        return None


NO_SE = "no squeeze-and-excitation layer"
NOT_EXERCISED = {
    "grouped-conv-interleaved": "no grouped convolution (cardinality 1)",
    "stride-on-conv1": "no strided block",
    "tf-same-padding": "every strided convolution sees odd sizes: 'SAME' padding is symmetric there",
    "avgpool-full-window": "no ceil-mode window hangs over an edge: no average pool (not vd) "
                           "or every pooled size is even",
    "avgpool-floor-mode": "floor and ceil mode agree: no average pool (not vd) or every pooled size is even",
    "vd-shortcut-without-pool": "no average-pool shortcut (not a vd model)",
    "maxpool-no-padding": "no padded stem max-pool (the cifar stem has none, the legacy SENet "
                          "stem's has no padding)",
    "maxpool-zero-padding": "no stem max-pool",
    "global-max-pool": "the last feature map is 1x1: its maximum is its mean",
    "se-hard-sigmoid": NO_SE,
    "se-after-add": NO_SE,
    "se-squeeze-max": NO_SE + ", or every SE layer sees a 1x1 map: its maximum is its mean",
    "se-linear-not-transposed": NO_SE,
    "se-width-rounded-other-way": NO_SE + ", or every SE width C / reduction is a whole number "
                                  "(every published model: C / 16 = 16 ... 128): rounding up or "
                                  "down agrees",
}

CATALOGUE = (
    Mutant("bn-eps-outside-sqrt", "bn", "BN divides by sqrt(var) + eps instead of sqrt(var + eps)",
           _first_bn, ops=EpsOutsideSqrt),
    Mutant("bn-eps-1e-3", "bn", "BN eps 1e-3 (Keras' default) instead of 1e-5", _first_bn, ops=Eps1e3),
    Mutant("bn-no-eps", "bn", "BN without eps (e.g. folded into the conv by hand)", _first_bn, ops=NoEps),
    Mutant("bn-variance-as-std", "bn", "BN divides by the running variance read as a standard deviation",
           _first_bn, ops=VarianceAsStd),
    Mutant("bn-mean-var-swapped", "bn", "BN running mean and variance swapped when converting weights",
           _first_bn, ops=MeanVarSwapped),
    Mutant("bn-scale-shift-swapped", "bn", "BN scale (gamma) and shift (beta) swapped when converting weights",
           _first_bn, ops=ScaleShiftSwapped),
    Mutant("bn-training-mode", "bn", "BN left in training mode: batch statistics instead of running ones",
           _first_bn, ops=TrainingModeBN),
    Mutant("grouped-conv-interleaved", "conv", "grouped conv: group g gets channels g, g+G, ... "
           "instead of a contiguous block", _first_grouped_conv, ops=InterleavedGroups),
    Mutant("conv-flipped-kernel", "conv", "true convolution (kernel rotated 180 degrees) instead of "
           "cross-correlation", _first_spatial_conv, ops=FlippedKernel),
    Mutant("conv-kernel-hw-transposed", "conv", "kernel height and width transposed when converting weights",
           _first_spatial_conv, ops=KernelTransposed),
    Mutant("stride-on-conv1", "conv", "stride on the block's first 1x1 (Caffe ResNet v1) instead of the 3x3 "
           "(torchvision v1.5, Paddle)", lambda p, ci: tuple(f"{b}.conv1" for b in _first_strided_block(p, ci)),
           plan=stride_on_conv1),
    Mutant("tf-same-padding", "conv", "strided convs padded as TensorFlow 'SAME' (the odd pixel after: "
           "asymmetric where a size is even)", _first_even_strided_conv, ops=TFSamePadding),
    Mutant("maxpool-no-padding", "pool", "stem max-pool without its padding of 1", _padded_stem_pool,
           plan=lambda p: p._replace(stem_pool=p.stem_pool and p.stem_pool._replace(padding=0))),
    Mutant("maxpool-zero-padding", "pool", "stem max-pool padded with zeros instead of -inf",
           lambda p, ci: (p.stem_pool.name,) if p.stem_pool else (), ops=MaxPoolZeroPadding,
           always_equivalent="its input is a ReLU output (>= 0) and every window holds a real pixel"),
    Mutant("avgpool-count-include-pad", "pool", "vd shortcut avg-pool counting padding "
           "(count_include_pad=True / exclusive=False)", _first_avg_pool,
           plan=lambda p: map_avg_pools(p, exclusive=False),
           always_equivalent="the pool has padding 0, and neither Paddle nor torch counts a ceil-mode overhang"),
    Mutant("avgpool-full-window", "pool", "vd shortcut avg-pool dividing by k*k where a ceil-mode window "
           "hangs over the edge (zero-padded to whole windows)", _first_overhanging_pool, ops=AvgPoolFullWindow),
    Mutant("avgpool-floor-mode", "pool", "vd shortcut avg-pool without ceil_mode (odd sizes lose a row: "
           "the add then fails on the shapes)", _first_overhanging_pool,
           plan=lambda p: map_avg_pools(p, ceil_mode=False)),
    Mutant("vd-shortcut-without-pool", "pool", "vd shortcut as a strided 1x1 projection, its avg-pool left out",
           _first_vd_projection, plan=vd_without_pool),
    Mutant("relu-before-add", "block", "residual branch ReLU'd before the add", lambda p, ci: (p.blocks[0].add,),
           ops=ReluBeforeAdd),
    Mutant("no-relu-after-add", "block", "no ReLU after the residual add", lambda p, ci: (p.blocks[0].name,),
           ops=NoReluAfterAdd),
    Mutant("input-bgr", "input", "image fed as BGR instead of RGB (OpenCV's imread order)",
           _fixed("input"), prepare=prepare_bgr),
    Mutant("input-not-normalised", "input", f"input scaled to [0, 1] but mean {MEAN} / std {STD} not applied",
           _fixed("input"), prepare=prepare_unnormalised),
    Mutant("bf16-one-layer", "precision", "one layer (the middle block's grouped conv) computed in bfloat16",
           lambda p, ci: (bf16_layer(p),), ops=Bfloat16Layer),
    Mutant("fc-bias-dropped", "head", "fc bias dropped", lambda p, ci: (p.head.fc,), ops=FcBiasDropped),
    Mutant("global-max-pool", "head", "global max pool instead of average",
           lambda p, ci: (p.head.pool,) if tuple(ci[p.head.pool]) != (1, 1) else (), ops=GlobalMaxPool),
    Mutant("se-hard-sigmoid", "se", "SE gate by a hard sigmoid, relu6(x + 3) / 6, instead of the "
           "logistic sigmoid", _first_se("gate"), ops=SEHardSigmoid),
    Mutant("se-after-add", "se", "SE on the sum after the residual add (SE-POST) instead of on the "
           "branch after bn3", _first_se("pool"), plan=se_after_add),
    Mutant("se-squeeze-max", "se", "SE squeeze by the maximum over H, W instead of the mean",
           _first_se_pool_over_pixels, ops=SESqueezeMax),
    Mutant("se-linear-not-transposed", "se", "SE fc weights converted from Paddle's Linear [in, out] "
           "by a reshape instead of a transpose", _first_se("fc1"), ops=SELinearNotTransposed),
    Mutant("se-width-rounded-other-way", "se", "SE width C / reduction rounded the other way "
           "(up where the library truncates; down where timm rounds to a multiple of 8)",
           _first_se_rounded_otherwise, ops=SEWidthRoundedOtherWay),
)

MUTANTS = {m.name: m for m in CATALOGUE}
