"""Port bugs, each written as a variant of the one forward walk (the catalogue that names
them, says where each lives and runs them is :mod:`.catalogue`).

A golden output is worth the bugs it catches. Each bug here is one that ResNet/ResNeXt
ports between frameworks really make, written as a variant of the forward pass of
:mod:`numpy_resnext.walk` (never a second copy of it) in one of three ways:

- ``ops``: a subclass of :class:`~numpy_resnext.walk.ArrayOps` that overrides one op
  (conv, bn, relu, pool, add, global_pool, fc, or an SE layer's squeeze, se_fc or gate);
- ``plan``: a function that returns a changed :class:`~numpy_resnext.plan.Plan` (made with
  ``_replace``: a stride moved, a padding dropped, a pool's mode changed);
- ``prepare``: a different input pipeline, uint8 RGB image -> (3, H, W) model input, for
  bugs that happen before the network (the golden stores the preprocessed input as its
  first tensor, ``input``, so ``compare`` names ``input`` as the first divergence).

BatchNorm bugs use each layer's own epsilon (``ConvBN.eps``, Paddle's or torch's), so
``bn-eps-1e-3`` means 1e-3 in place of whichever the weights' source uses.
"""

from __future__ import annotations

import math

import numpy as np

from ..io.dtypes import narrow_bfloat16, widen_bfloat16
from ..ops.batchnorm import batchnorm_train
from ..ops.conv import conv2d
from ..ops.linear import linear
from ..ops.pooling import avgpool2d, maxpool2d, pool_output_size
from ..ops.se import se_fc
from ..plan import BN_FIELDS, Block, Plan
from ..preprocess import SCALE, normalize, to_chw
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
            scale, shift = self.scale_shift(w, b, m, v, layer.eps)
        bshape = (1, -1, 1, 1)
        return x * scale.reshape(bshape) + shift.reshape(bshape)

    @staticmethod
    def scale_shift(w, b, m, v, eps):
        raise NotImplementedError


def _shift(b, m, scale):
    return scale, b - m * scale


class EpsOutsideSqrt(_FormulaBN):
    scale_shift = staticmethod(lambda w, b, m, v, eps: _shift(b, m, w / (np.sqrt(v) + eps)))


class Eps1e3(_FormulaBN):
    scale_shift = staticmethod(lambda w, b, m, v, eps: _shift(b, m, w / np.sqrt(v + 1e-3)))


class NoEps(_FormulaBN):
    scale_shift = staticmethod(lambda w, b, m, v, eps: _shift(b, m, w / np.sqrt(v)))


class VarianceAsStd(_FormulaBN):
    scale_shift = staticmethod(lambda w, b, m, v, eps: _shift(b, m, w / (v + eps)))


class MeanVarSwapped(_FormulaBN):
    scale_shift = staticmethod(lambda w, b, m, v, eps: _shift(b, v, w / np.sqrt(m + eps)))


class ScaleShiftSwapped(_FormulaBN):
    scale_shift = staticmethod(lambda w, b, m, v, eps: _shift(w, m, b / np.sqrt(v + eps)))


class TrainingModeBN(MutantOps):
    """BN left in training mode: it normalises with the batch's own statistics."""

    def bn(self, x, layer):
        w, b, m, v = (self.params[f"{layer.bn}.{f}"] for f in BN_FIELDS)
        return batchnorm_train(x, w, b, m, v, eps=layer.eps)[0]


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
        return maxpool2d(np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))), pool.kernel, pool.stride, 0, pool.ceil_mode)


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


def map_blocks(plan, change):
    return plan._replace(blocks=tuple(change(b) for b in plan.blocks))


def map_avg_pools(plan, **fields):
    def change(b):
        if b.projection is None or b.projection.pool is None:
            return b
        return b._replace(projection=b.projection._replace(pool=b.projection.pool._replace(**fields)))
    return map_blocks(plan, change)


def stride_on_conv1(plan):
    """Caffe-style ResNet v1: a block's stride on its first 1x1 instead of the 3x3."""
    return map_blocks(plan, lambda b: b if b.stride == 1 else b._replace(
        conv1=b.conv1._replace(stride=b.stride), conv2=b.conv2._replace(stride=1)))


def vd_without_pool(plan):
    """The vd shortcut as a plain strided 1x1 projection (its average pool left out)."""
    return map_blocks(plan, lambda b: b if b.projection is None or b.projection.pool is None else
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


# --- squeeze-and-excitation -------------------------------------------------------------------
def hard_sigmoid(x):
    """torch's hardsigmoid, relu6(x + 3) / 6 (MobileNetV3's gate), for the logistic sigmoid."""
    return np.clip(x + 3, 0, 6) / 6


class SEHardSigmoid(MutantOps):
    def gate(self, x, se):
        return hard_sigmoid(x)


class SESqueezeMax(MutantOps):
    def squeeze(self, x, se):
        return x.max(axis=(2, 3))                                        # N, C


def paddle_linear_reshaped(w):
    """An SE weight (out, in, 1, 1) as a converter makes it from Paddle's Linear [in, out] by
    a reshape where a transpose is needed: the same shape, the values scrambled."""
    stored = np.ascontiguousarray(w.reshape(w.shape[:2]).T)              # in, out: Paddle's layout
    return stored.reshape(w.shape)                                       # read as out, in, 1, 1


class SELinearNotTransposed(MutantOps):
    def se_fc(self, x, fc):
        return se_fc(x, paddle_linear_reshaped(self.params[f"{fc.name}.weight"]),
                     self.params[f"{fc.name}.bias"])


def other_rounding(channels, config):
    """The SE width a port gets by rounding C / reduction the other way: up where the
    library truncates (PaddleClas, legacy SENet), down where it rounds to a multiple of 8 (timm)."""
    if config.se_rounding == "floor":
        return math.ceil(channels / config.se_reduction)
    return channels // config.se_reduction


class SEWidthRoundedOtherWay(MutantOps):
    """The SE layers built with :func:`other_rounding`'s width and the weights fitted to it
    (zero rows added, or rows dropped): the reduce's output has the wrong width."""

    def se_fc(self, x, fc):
        w, b = self.params[f"{fc.name}.weight"], self.params[f"{fc.name}.bias"]
        reduce = fc.name.endswith(".fc1")
        channels = fc.in_features if reduce else fc.out_features
        port = other_rounding(channels, self.plan.config)
        if reduce:                                                       # rows of fc1 and its bias
            w, b = _fit(w, port, 0), _fit(b, port, 0)
        else:                                                            # columns of fc2
            w = _fit(w, port, 1)
        return se_fc(x, w, b)                                            # N, port or N, C


def _fit(a, n, axis):
    """``a`` cut to, or padded with zeros to, length ``n`` along ``axis``."""
    if a.shape[axis] >= n:
        return np.take(a, np.arange(n), axis=axis)
    pad = [(0, 0)] * a.ndim
    pad[axis] = (0, n - a.shape[axis])
    return np.pad(a, pad)


def se_after_add(plan):
    """SE on the sum (branch + shortcut) before the final ReLU, not on the branch (Hu et al.'s
    SE-POST placement, a different network)."""
    return map_blocks(plan, lambda b: b if b.se is None else b._replace(se=b.se._replace(position="post")))


# --- inputs ------------------------------------------------------------------------------------
def prepare(image, dtype):
    """The audit's input pipeline: normalise a uint8 RGB (H, W, 3) image and make it CHW
    (PaddleClas's steps 4-5; no resize or crop, so any size can be audited)."""
    return to_chw(normalize(image, dtype))


def prepare_bgr(image, dtype):
    return prepare(np.ascontiguousarray(image[:, :, ::-1]), dtype)


def prepare_unnormalised(image, dtype):
    return to_chw(image.astype(dtype) * np.dtype(dtype).type(SCALE))   # /255, no mean or std
