"""Parameters under canonical names: their shapes, a seeded initialisation, strict checks.

Canonical names are torchvision's for the plain and WSL models and timm's for the vd
models (a deep stem ``conv1.0/.1/.3/.4/.6`` + ``bn1``; shortcut ``downsample.1`` conv and
``downsample.2`` BN, ``downsample.0`` being the average pool). Every weight reader maps a
file's names onto these. BatchNorm keeps four tensors: ``weight``, ``bias`` (trainable)
and ``running_mean``, ``running_var`` (statistics, not counted as parameters).
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np

from .errors import WeightsError
from .plan import BN_FIELDS, Plan, as_plan


def param_shapes(plan: Plan) -> "OrderedDict[str, tuple]":
    """Canonical name -> shape for every tensor of a :class:`Plan` (an architecture's name or
    config is accepted too) with BN statistics, in the order of the layer plan: each
    convolution's weight, then its BN's four tensors, then the head."""
    plan = as_plan(plan)
    shapes = OrderedDict()
    for layer in plan.convs():
        shapes[f"{layer.name}.weight"] = layer.weight_shape
        for f in BN_FIELDS:
            shapes[f"{layer.bn}.{f}"] = (layer.out_channels,)
    shapes[f"{plan.head.fc}.weight"] = (plan.head.num_classes, plan.head.in_features)
    shapes[f"{plan.head.fc}.bias"] = (plan.head.num_classes,)
    return shapes


def is_trainable(name: str) -> bool:
    """False for BatchNorm running statistics, True for every learned tensor."""
    return not name.endswith((".running_mean", ".running_var"))


def count_params(plan: Plan) -> int:
    """Trainable parameters (BN running statistics excluded), from the shapes alone."""
    return sum(math.prod(s) for n, s in param_shapes(plan).items() if is_trainable(n))


def init_params(plan: Plan, seed: int = 0, dtype="float32") -> "OrderedDict[str, np.ndarray]":
    """Seeded weights: He-normal convs (std sqrt(2 / fan_in), fan_in = C/G*R*S), BN scale 1,
    offset 0, mean 0, var 1, FC weight and bias uniform in +-1/sqrt(fan_in).

    Values are drawn in float64 from ``numpy.random.default_rng(seed)`` in the order of
    :func:`param_shapes` and then cast, so a float32 and a float64 model with the same seed
    hold the same weights up to rounding.
    """
    plan = as_plan(plan)
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    params = OrderedDict()
    head = (f"{plan.head.fc}.weight", f"{plan.head.fc}.bias")
    for name, shape in param_shapes(plan).items():
        if name in head:
            bound = 1.0 / math.sqrt(plan.head.in_features)
            value = rng.uniform(-bound, bound, size=shape)
        elif len(shape) == 4:
            fan_in = shape[1] * shape[2] * shape[3]
            value = rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)
        elif name.endswith((".weight", ".running_var")):
            value = np.ones(shape)
        else:
            value = np.zeros(shape)
        params[name] = value.astype(dtype)
    return params


def check_params(plan, weights, dtype=None, strict=True, what="weights"):
    """Validate a {canonical name: array} dict against ``config``.

    Every missing, unexpected and wrongly shaped tensor is reported at once, by name. With
    ``strict=False`` missing and unexpected tensors are allowed (shapes must still match)
    and returned in the report. Returns ``(checked, report)`` where ``checked`` holds
    arrays of ``dtype`` (cast explicitly only when ``dtype`` is given) and ``report`` is a
    dict with lists ``missing`` and ``unexpected``.
    """
    if not hasattr(weights, "items"):
        raise WeightsError(f"{what}: expected a mapping of canonical names to arrays, found {type(weights).__name__}")
    plan = as_plan(plan)
    expected = param_shapes(plan)
    missing = [n for n in expected if n not in weights]
    unexpected = [n for n in weights if n not in expected]
    wrong, bad_type, non_finite = [], [], []
    checked = OrderedDict()
    for name, shape in expected.items():
        if name not in weights:
            continue
        value = weights[name]
        if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
            found = getattr(value, "dtype", type(value).__name__)
            bad_type.append(f"{name}: expected a floating-point array, found {found}")
            continue
        if tuple(value.shape) != tuple(shape):
            wrong.append(f"{name}: expected shape {tuple(shape)}, found {tuple(value.shape)}")
            continue
        if not np.isfinite(value).all():
            bad = int(np.size(value) - np.count_nonzero(np.isfinite(value)))
            non_finite.append(f"{name}: {bad} of {value.size} values are NaN or infinite")
        checked[name] = value if dtype is None else value.astype(dtype, copy=False)
    problems = []
    if missing and strict:
        problems.append(f"{len(missing)} missing: " + ", ".join(missing))
    if unexpected and strict:
        problems.append(f"{len(unexpected)} unexpected: " + ", ".join(map(str, unexpected)))
    for label, items in (("wrong shape", wrong), ("wrong type", bad_type), ("not finite", non_finite)):
        if items:
            problems.append(f"{len(items)} {label}: " + "; ".join(items))
    if problems:
        raise WeightsError(f"{what} do not match architecture {plan.config.name} "
                           f"({len(expected)} tensors expected):\n  " + "\n  ".join(problems))
    return checked, {"missing": missing, "unexpected": unexpected}
