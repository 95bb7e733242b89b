"""Calibrated seeded weights: a network whose every op changes what passes through it.

The seeded weights of :func:`numpy_resnext.params.init_params` have identity BatchNorm
(scale 1, shift 0, mean 0, variance 1), so every BN output equals its input to within eps
and a port that gets BN wrong (eps outside the square root, eps 1e-3, the variance read
as a standard deviation, mean and variance swapped, scale and shift swapped) agrees with
them at float32 tolerance. Their activations also grow with depth, which hides the fc
bias. :func:`calibrated_params` (the default of ``build(seed=...)``) fixes both:

* convolutions: He-normal, std sqrt(2 / fan_in) with fan_in = C/G*R*S (the same draws as
  ``init_params``), then every output channel multiplied by 2**k, k uniform in
  {-9, ..., 1}. The BN inputs' per-channel variances then span about six decades, as in
  trained networks, down to channels whose variance is near eps (1e-5), where the eps
  bugs above change the output by tens of percent;
* BatchNorm scale: a mantissa uniform in [1, 2) times 2**k (k uniform), so spread over a
  decade or more: in [1/4, 4) for the BNs followed by a ReLU (stem, bn1, bn2), in [1/4, 2)
  for the shortcut BNs, in [1/64, 1/4) for bn3, the residual branch's last BN (trained
  networks have small bn3 scales too). Small bn3 scales keep the residual stream O(1)
  however deep the stage, and keep a per-block mismatch between the calibration batch and
  the user's input from compounding over 36 blocks. BatchNorm shift: uniform, both signs,
  in [-1, 1] (stem, bn1, bn2) or [-1/4, 1/4] (bn3, shortcut);
* BatchNorm running statistics: calibrated (data-dependent initialisation). One float64
  forward pass over a seeded calibration batch (:func:`calibration_batch`: two 96x96
  images, one white noise and one smooth, whatever size the user's input has) sets each
  BN's running mean and variance to the actual per-channel mean and (biased) variance of
  its input, layer by layer, through the forward walk's ``norm`` hook; each BN then normalises
  with the statistics it stored, so the layers after it see what inference will compute;
* fc: weight uniform in +-1/sqrt(features) (the ``init_params`` draws) times the power of
  two that brings the logits' standard deviation on the calibration batch nearest 4; bias
  uniform in [-4, 4], as large as the logits' spread, so a port that drops it fails;
* squeeze-and-excitation (SE-ResNeXt models only, from a stream of their own, so the other
  draws are those of the same network without SE): fc1 and fc2 He-normal (the
  ``init_params`` draws) times :data:`SE_GAIN`, their biases uniform in [-1/2, 1/2] and
  [-2, 2], so that the gates spread over (0, 1) and depend on the input: a port that
  replaces the sigmoid or squeezes by the maximum changes them.

Bit-reproducibility. The calibration forward runs matrix products whose last bits depend
on the BLAS kernel and thread count, so raw statistics would differ between machines. Every
stored statistic is therefore rounded to :data:`STAT_BITS` significant bits (a variance on
its own mantissa; a mean on a grid of 2**-STAT_BITS times its channel's standard
deviation): a difference of 1e-13 relative changes a rounded value only if it lies within
1e-13 of a rounding boundary, which for ~1e5 values happens with probability ~1e-5. Every
drawn value avoids transcendental functions (whose last bit differs between NumPy's SIMD
and libm paths): powers of two are built with ``ldexp``. The scale, shift and statistics
are exactly representable in float32, so a float32 and a float64 model hold the same BN
values; convolution and fc weights are cast from the same float64 draws.

These are not a classifier: nothing is trained and the top classes mean nothing. They
exist so that a golden made from a seed exercises every op as trained weights would.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np

from .errors import WeightsError
from .ops.batchnorm import batchnorm
from .params import init_params
from .plan import Plan, as_plan
from .walk import ArrayOps, Capture, walk

INITS = ("calibrated", "identity-bn")
DEFAULT_INIT = "calibrated"
# N, C, H, W. Small, so that the 828M-parameter model calibrates in seconds, yet large enough
# that layer3 (6x6) and layer4 (3x3) are not all border: calibrated at 64x64, where the zero
# padding of every 3x3 convolution lowers the variance, ResNeXt152's layer3 output grew to a
# standard deviation of ~70 on a 224x224 input; at 96x96 it stays below 1.
CALIBRATION_SHAPE = (2, 3, 96, 96)
STAT_BITS = 12                        # significant bits kept of every calibrated statistic
LOGITS_STD = 4.0                      # target standard deviation of the logits on the calibration batch
FC_BIAS_BOUND = 4.0
SE_GAIN = 4.0                         # SE fc weights: He-normal times this
SE_BIAS_BOUNDS = (0.5, 2.0)           # SE fc1 and fc2 biases: uniform in +- these


def seeded_params(plan: Plan, seed: int = 0, dtype="float32", init: str = DEFAULT_INIT):
    """The seeded weights of ``build(seed=...)`` for a layer plan: ``init`` is "calibrated"
    (default, see the module docstring) or "identity-bn"
    (:func:`numpy_resnext.params.init_params`)."""
    plan = as_plan(plan)
    if init == "identity-bn":
        return init_params(plan, seed=seed, dtype=dtype)
    if init != "calibrated":
        raise WeightsError(f"init: expected one of {', '.join(INITS)}, found {init!r}")
    return calibrated_params(plan, seed=seed, dtype=dtype)


def _f32_exact(a):
    """``a`` rounded to the nearest float32, held in float64 (same value in either dtype)."""
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def draw_params(plan: Plan, seed: int = 0) -> "OrderedDict[str, np.ndarray]":
    """The float64 weights before calibration: scaled He-normal convs, drawn BN scale and
    shift, placeholder statistics (0, 1), fc weight and bias before the logits' power of two."""
    params = init_params(plan, seed=seed, dtype="float64")                # the He-normal draws
    rng = np.random.default_rng((seed, 1))                                 # a stream of its own
    convs = plan.convs()
    for layer in convs:
        w = params[f"{layer.name}.weight"]                                 # K, C/G, R, S
        k = rng.integers(-9, 2, size=w.shape[0])                           # 2**-9 .. 2**1 per channel
        params[f"{layer.name}.weight"] = w * np.ldexp(1.0, k).reshape(-1, 1, 1, 1)
    for layer in convs:                                                    # each conv's own BN
        if layer.role == "conv3":                                          # enters the residual sum
            lo, hi, shift = -6, -2, 0.25                                   # scale in [1/64, 1/4)
        elif layer.role == "shortcut":
            lo, hi, shift = -2, 1, 0.25                                    # scale in [1/4, 2)
        else:
            lo, hi, shift = -2, 2, 1.0                                     # scale in [1/4, 4)
        channels = layer.out_channels
        mantissa = rng.uniform(1.0, 2.0, channels)
        params[f"{layer.bn}.weight"] = _f32_exact(np.ldexp(mantissa, rng.integers(lo, hi, channels)))
        params[f"{layer.bn}.bias"] = _f32_exact(rng.uniform(-shift, shift, channels))
    bias = rng.uniform(-FC_BIAS_BOUND, FC_BIAS_BOUND, plan.head.num_classes)
    params[f"{plan.head.fc}.bias"] = _f32_exact(bias)
    se_rng = np.random.default_rng((seed, 3))                             # SE layers only
    for se in plan.se_layers():
        for fc, bound in zip((se.fc1, se.fc2), SE_BIAS_BOUNDS):
            params[f"{fc.name}.weight"] = params[f"{fc.name}.weight"] * SE_GAIN
            params[f"{fc.name}.bias"] = _f32_exact(se_rng.uniform(-bound, bound, fc.out_features))
    return params


def calibration_batch(seed: int = 0) -> np.ndarray:
    """The seeded float64 (2, 3, 96, 96) batch the statistics are measured on: image 0 is
    white standard normal noise, image 1 a smooth image (8x8 blocks of standard normal
    values, slightly noisy), like a normalised photograph. Independent of any user input.
    (Every network, custom ones included, has at most 4 stages and accepts 32x32.)"""
    n, c, h, w = CALIBRATION_SHAPE
    rng = np.random.default_rng((seed, 2))
    x = rng.standard_normal((n, c, h, w))
    coarse = rng.standard_normal((c, h // 8, w // 8))
    x[1] = np.repeat(np.repeat(coarse, 8, axis=1), 8, axis=2) + 0.25 * x[1]   # C, H, W
    return x


def round_bits(v, bits=STAT_BITS):
    """``v`` (> 0) rounded to ``bits`` significant bits, exactly (frexp/ldexp, round half even)."""
    m, e = np.frexp(v)
    return np.ldexp(np.round(np.ldexp(m, bits)), e - bits)


def round_stats(mean, var, bits=STAT_BITS):
    """Rounded (mean, var): var to ``bits`` significant bits, mean to a grid of about
    2**-bits of the channel's standard deviation (a mean near 0 is then stable too)."""
    var_q = round_bits(np.maximum(var, np.finfo(np.float64).tiny), bits)
    _, e = np.frexp(var_q)
    step = np.ldexp(1.0, e // 2 - bits)                                   # ~ 2**-bits * std
    # to float32 as well, so that a mean far above its standard deviation stays float32-exact
    return _f32_exact(np.round(mean / step) * step), _f32_exact(var_q)


class CalibratingBN:
    """A ``norm`` callable for :meth:`ResNeXt.forward`: stores the per-channel mean and
    biased variance of its input (rounded, :func:`round_stats`) as the running statistics,
    then applies inference BN with them. ``params`` is modified: it is the dict being built."""

    def __call__(self, x, params, layer):
        name, axes = layer.bn, (0, 2, 3)
        mean = x.mean(axis=axes)                                           # C
        var = ((x - mean.reshape(1, -1, 1, 1)) ** 2).mean(axis=axes)       # C, biased
        mean, var = round_stats(mean, var)
        params[f"{name}.running_mean"], params[f"{name}.running_var"] = mean, var
        return batchnorm(x, params[f"{name}.weight"], params[f"{name}.bias"], mean, var,
                         eps=layer.eps, out=x)


def calibrated_params(plan: Plan, seed: int = 0, dtype="float32") -> "OrderedDict[str, np.ndarray]":
    """Seeded weights with calibrated BN statistics (module docstring), cast to ``dtype``."""
    plan = as_plan(plan)
    params = draw_params(plan, seed)
    kept = Capture([plan.head.pool])
    walk(plan, calibration_batch(seed), ArrayOps(params, norm=CalibratingBN()), kept)
    feats = kept.tensors[plan.head.pool]                                   # N, features
    fc_weight = f"{plan.head.fc}.weight"
    raw = feats @ params[fc_weight].T                                      # N, classes, no bias
    # the power of two nearest LOGITS_STD / std: robust to last-bit noise in std
    k = int(np.clip(np.round(math.log2(LOGITS_STD / max(float(raw.std()), 1e-300))), -60, 60))
    params[fc_weight] = np.ldexp(params[fc_weight], k)
    dtype = np.dtype(dtype)
    return OrderedDict((n, v.astype(dtype)) for n, v in params.items())
