"""A catalogue of port bugs, each a named variant of the one forward walk.

A golden output is worth the bugs it catches. Each :class:`Mutant` below is a bug that
ResNet/ResNeXt ports between frameworks really make, written as a variant of the forward
pass of :mod:`numpy_resnext.walk` (never a second copy of it) in one of three ways:

- ``ops``: a subclass of :class:`~numpy_resnext.walk.ArrayOps` that overrides one op
  (conv, bn, relu, pool, add, global_pool or fc);
- ``plan``: a function that returns a changed :class:`~numpy_resnext.plan.Plan` (made with
  ``_replace``: a stride moved, a padding dropped, a pool's mode changed);
- ``prepare``: a different input pipeline, uint8 RGB image -> (3, H, W) model input, for
  bugs that happen before the network (the golden stores the preprocessed input as its
  first tensor, ``input``, so ``compare`` names ``input`` as the first divergence).

Each mutant declares ``where(plan, conv_inputs)``: the tensor name(s) at which ``compare``
must report the first divergence, the tensor where the bug lives. ``equivalent(plan,
conv_inputs)`` gives the reason a mutant cannot change any output for this architecture and
input size (e.g. no average pool outside vd models), or None. :mod:`.mutation_audit` runs them.
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import numpy as np

from ..io.dtypes import narrow_bfloat16, widen_bfloat16
from ..ops.batchnorm import EPS, batchnorm_train
from ..ops.conv import conv2d
from ..ops.linear import linear
from ..plan import BN_FIELDS, Block, Plan
from ..ops.pooling import avgpool2d, maxpool2d, pool_output_size
from ..preprocess import MEAN, SCALE, STD, normalize, to_chw
from ..walk import ArrayOps


def to_bfloat16(a):
    """``a`` rounded to bfloat16 (8 significant bits, round to nearest even), kept in a's
    dtype: the float32 bit pattern with its low 16 bits rounded away (:mod:`..io.dtypes`)."""
    return widen_bfloat16(narrow_bfloat16(a)).astype(a.dtype)


class MutantOps(ArrayOps):
    """ArrayOps that also know the plan (some bugs act only on some layers)."""

    def __init__(self, params, plan: Plan):
        super().__init__(params)
        self.plan = plan

    def weight(self, layer):
        return self.params[f"{layer.name}.weight"]

    def conv_with(self, x, layer, weight, padding=None):
        return conv2d(x, weight, stride=layer.stride,
                      padding=layer.padding if padding is None else padding, groups=layer.groups)


# --- BatchNorm ------------------------------------------------------------------------------
class _FormulaBN(MutantOps):
    """Inference BN as y = x * scale + shift with a (wrong) formula for scale and shift."""

    def bn(self, x, layer):
        w, b, m, v = (self.params[f"{layer.bn}.{f}"] for f in BN_FIELDS)
        with np.errstate(invalid="ignore", divide="ignore"):
            scale, shift = self.scale_shift(w, b, m, v)
        bshape = (1, -1, 1, 1)
        return x * scale.reshape(bshape) + shift.reshape(bshape)

    @staticmethod
    def scale_shift(w, b, m, v):
        raise NotImplementedError


def _shift(b, m, scale):
    return scale, b - m * scale


class EpsOutsideSqrt(_FormulaBN):
    scale_shift = staticmethod(lambda w, b, m, v: _shift(b, m, w / (np.sqrt(v) + EPS)))


class Eps1e3(_FormulaBN):
    scale_shift = staticmethod(lambda w, b, m, v: _shift(b, m, w / np.sqrt(v + 1e-3)))


class NoEps(_FormulaBN):
    scale_shift = staticmethod(lambda w, b, m, v: _shift(b, m, w / np.sqrt(v)))


class VarianceAsStd(_FormulaBN):
    scale_shift = staticmethod(lambda w, b, m, v: _shift(b, m, w / (v + EPS)))


class MeanVarSwapped(_FormulaBN):
    scale_shift = staticmethod(lambda w, b, m, v: _shift(b, v, w / np.sqrt(m + EPS)))


class ScaleShiftSwapped(_FormulaBN):
    scale_shift = staticmethod(lambda w, b, m, v: _shift(w, m, b / np.sqrt(v + EPS)))


class TrainingModeBN(MutantOps):
    """BN left in training mode: it normalises with the batch's own statistics."""

    def bn(self, x, layer):
        w, b, m, v = (self.params[f"{layer.bn}.{f}"] for f in BN_FIELDS)
        return batchnorm_train(x, w, b, m, v)[0]


# --- convolution ---------------------------------------------------------------------------
class InterleavedGroups(MutantOps):
    """Group g of a grouped convolution takes channels g, g+G, g+2G, ... (and writes its
    outputs there) instead of the contiguous block g*C/G .. (g+1)*C/G - 1."""

    def conv(self, x, layer):
        G = layer.groups
        if G == 1:
            return super().conv(x, layer)
        C, K = x.shape[1], layer.out_channels
        inp = np.arange(C).reshape(C // G, G).T.reshape(-1)      # position g*Cg + c holds channel c*G + g
        y = self.conv_with(x[:, inp], layer, self.weight(layer))  # N, K, OH, OW in group-contiguous order
        out = np.empty_like(y)
        out[:, np.arange(K).reshape(K // G, G).T.reshape(-1)] = y
        return out


class FlippedKernel(MutantOps):
    """A true convolution: the kernel rotated by 180 degrees (scipy/MATLAB conv2 semantics)."""

    def conv(self, x, layer):
        return self.conv_with(x, layer, np.ascontiguousarray(self.weight(layer)[:, :, ::-1, ::-1]))


class KernelTransposed(MutantOps):
    """Kernel height and width swapped (a weight converted with the wrong axis order)."""

    def conv(self, x, layer):
        return self.conv_with(x, layer, np.ascontiguousarray(self.weight(layer).transpose(0, 1, 3, 2)))


def tf_same_pads(size, kernel, stride):
    """TensorFlow 'SAME' padding (before, after) along one axis: the total padding that makes
    the output ceil(size / stride), with the odd pixel after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class TFSamePadding(MutantOps):
    """Strided convolutions padded as TensorFlow's 'SAME': asymmetric where a size is even."""

    def conv(self, x, layer):
        if layer.stride == 1:
            return super().conv(x, layer)
        (t, b), (l, r) = (tf_same_pads(n, layer.kernel, layer.stride) for n in x.shape[2:])
        xp = np.pad(x, ((0, 0), (0, 0), (t, b), (l, r)))              # N, C, H+t+b, W+l+r
        return self.conv_with(xp, layer, self.weight(layer), padding=0)


class Bfloat16Layer(MutantOps):
    """One layer (the middle block's grouped conv) computed in bfloat16: its input, weight
    and output rounded to 8 significant bits (accumulation in the model's dtype)."""

    def conv(self, x, layer):
        if layer.name != bf16_layer(self.plan):
            return super().conv(x, layer)
        return to_bfloat16(self.conv_with(to_bfloat16(x), layer, to_bfloat16(self.weight(layer))))


def bf16_layer(plan):
    return plan.blocks[len(plan.blocks) // 2].conv2.name


# --- pools ------------------------------------------------------------------------------------
class MaxPoolZeroPadding(MutantOps):
    """Max-pool padded with zeros instead of -inf."""

    def pool(self, x, pool):
        if pool.kind != "max":
            return super().pool(x, pool)
        p = pool.padding
        return maxpool2d(np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))), pool.kernel, pool.stride, 0)


class AvgPoolFullWindow(MutantOps):
    """The vd shortcut's ceil-mode average pool made by zero-padding the input to whole
    windows, so every window divides by k*k, also where it hangs over the edge."""

    def pool(self, x, pool):
        if pool.kind != "avg":
            return super().pool(x, pool)
        k, s = pool.kernel, pool.stride
        H, W = x.shape[2:]
        Hn, Wn = ((pool_output_size(n, k, s, 0, True) - 1) * s + k for n in (H, W))
        xp = np.pad(x, ((0, 0), (0, 0), (0, Hn - H), (0, Wn - W)))     # N, C, Hn, Wn
        return avgpool2d(xp, k, s, 0, ceil_mode=False, exclusive=True)


def _map_blocks(plan, change):
    return plan._replace(blocks=tuple(change(b) for b in plan.blocks))


def _map_avg_pools(plan, **fields):
    def change(b):
        if b.projection is None or b.projection.pool is None:
            return b
        return b._replace(projection=b.projection._replace(pool=b.projection.pool._replace(**fields)))
    return _map_blocks(plan, change)


def stride_on_conv1(plan):
    """Caffe-style ResNet v1: a block's stride on its first 1x1 instead of the 3x3."""
    return _map_blocks(plan, lambda b: b if b.stride == 1 else b._replace(
        conv1=b.conv1._replace(stride=b.stride), conv2=b.conv2._replace(stride=1)))


def vd_without_pool(plan):
    """The vd shortcut as a plain strided 1x1 projection (its average pool left out)."""
    return _map_blocks(plan, lambda b: b if b.projection is None or b.projection.pool is None else
                       b._replace(projection=b.projection._replace(pool=None, stride=b.stride)))


# --- block and head ----------------------------------------------------------------------
class ReluBeforeAdd(MutantOps):
    """The residual branch ReLU'd before the add (conv3 written as conv+BN+ReLU like the others)."""

    def add(self, y, shortcut, block):
        np.maximum(y, 0, out=y)
        y += shortcut
        return y


class NoReluAfterAdd(MutantOps):
    """The block output is the sum itself: the ReLU after the add is missing."""

    def relu(self, x, layer):
        if isinstance(layer, Block):                                     # after the add
            return x
        return super().relu(x, layer)


class FcBiasDropped(MutantOps):
    def fc(self, features, head):
        return linear(features, self.params[f"{head.fc}.weight"])


class GlobalMaxPool(MutantOps):
    def global_pool(self, x, head):
        return x.max(axis=(2, 3))                                        # N, C


# --- inputs ------------------------------------------------------------------------------------
def prepare(image, dtype):
    """The audit's input pipeline: normalise a uint8 RGB (H, W, 3) image and make it CHW
    (PaddleClas's steps 4-5; no resize or crop, so any size can be audited)."""
    return to_chw(normalize(image, dtype))


def prepare_bgr(image, dtype):
    return prepare(np.ascontiguousarray(image[:, :, ::-1]), dtype)


def prepare_unnormalised(image, dtype):
    return to_chw(image.astype(dtype) * np.dtype(dtype).type(SCALE))   # /255, no mean or std


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


NOT_EXERCISED = {
    "grouped-conv-interleaved": "no grouped convolution (cardinality 1)",
    "stride-on-conv1": "no strided block",
    "tf-same-padding": "every strided convolution sees odd sizes: 'SAME' padding is symmetric there",
    "avgpool-full-window": "no ceil-mode window hangs over an edge: no average pool (not vd) "
                           "or every pooled size is even",
    "avgpool-floor-mode": "floor and ceil mode agree: no average pool (not vd) or every pooled size is even",
    "vd-shortcut-without-pool": "no average-pool shortcut (not a vd model)",
    "maxpool-no-padding": "no stem max-pool",
    "maxpool-zero-padding": "no stem max-pool",
    "global-max-pool": "the last feature map is 1x1: its maximum is its mean",
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
    Mutant("maxpool-no-padding", "pool", "stem max-pool without its padding of 1",
           lambda p, ci: (p.stem_pool.name,) if p.stem_pool else (),
           plan=lambda p: p._replace(stem_pool=p.stem_pool and p.stem_pool._replace(padding=0))),
    Mutant("maxpool-zero-padding", "pool", "stem max-pool padded with zeros instead of -inf",
           lambda p, ci: (p.stem_pool.name,) if p.stem_pool else (), ops=MaxPoolZeroPadding,
           always_equivalent="its input is a ReLU output (>= 0) and every window holds a real pixel"),
    Mutant("avgpool-count-include-pad", "pool", "vd shortcut avg-pool counting padding "
           "(count_include_pad=True / exclusive=False)", _first_avg_pool,
           plan=lambda p: _map_avg_pools(p, exclusive=False),
           always_equivalent="the pool has padding 0, and neither Paddle nor torch counts a ceil-mode overhang"),
    Mutant("avgpool-full-window", "pool", "vd shortcut avg-pool dividing by k*k where a ceil-mode window "
           "hangs over the edge (zero-padded to whole windows)", _first_overhanging_pool, ops=AvgPoolFullWindow),
    Mutant("avgpool-floor-mode", "pool", "vd shortcut avg-pool without ceil_mode (odd sizes lose a row: "
           "the add then fails on the shapes)", _first_overhanging_pool,
           plan=lambda p: _map_avg_pools(p, ceil_mode=False)),
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
)

MUTANTS = {m.name: m for m in CATALOGUE}
