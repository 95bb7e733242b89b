"""The model object: parameters under canonical names plus the forward pass.

``build(arch, weights=None, seed=0, dtype="float32")`` returns a :class:`ResNeXt`;
calling it on an (N, 3, H, W) array returns the logits (N, classes). The class only holds
parameters and runs the forward walk of :mod:`numpy_resnext.walk` over its layer plan; all
math lives in the ops modules.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict

import numpy as np

from ._checks import as_float_array, check_finite, float_dtype
from .archs import get_arch
from .bounded import check_memory
from .errors import InputError, InputTypeError, WeightsError
from .init import CALIBRATION_SHAPE, DEFAULT_INIT, seeded_params
from .io import load_weights
from .io.schemes import is_ignored
from .params import LoadReport, count_params, init_params, is_trainable, param_shapes, validate
from .plan import Plan, layer_plan
from .shapes import check_compute, check_input_size, memory_estimate
from .summary import summarize
from .walk import ArrayOps, Capture, walk


class ResNeXt:
    """A ResNeXt (or ResNet) with its parameters.

    Attributes: ``plan`` (the :class:`~numpy_resnext.plan.Plan` every layer comes from),
    ``config`` (its :class:`~numpy_resnext.archs.ArchConfig`), ``dtype``, ``params`` (an
    ordered dict canonical name -> array, BN running statistics included), ``load_report``
    (a :class:`~numpy_resnext.params.LoadReport`: what a load left out, ignored or noted).
    """

    def __init__(self, plan: Plan, params, dtype, load_report=None):
        self.plan = plan
        self.config = plan.config
        self.dtype = np.dtype(dtype)
        self.params = params
        self.load_report = load_report if load_report is not None else LoadReport()

    # --- parameters ------------------------------------------------------------------
    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """A copy of every tensor under its canonical name."""
        return OrderedDict((k, v.copy()) for k, v in self.params.items())

    @property
    def num_params(self) -> int:
        """Trainable parameters (BN running statistics excluded)."""
        return count_params(self.plan)

    def trainable_names(self):
        return [n for n in self.params if is_trainable(n)]

    # --- forward ---------------------------------------------------------------------
    def check_input(self, x, allow_nonfinite=False):
        """Raise a clear error unless ``x`` is an (N, 3, H, W) array this model can run,
        with finite values (NaN and infinity too with ``allow_nonfinite``)."""
        x = as_float_array(x, "model input")
        if x.ndim != 4:
            raise InputError(f"model input: expected a 4-D array (N, 3, H, W), found {x.ndim}-D with shape {x.shape}")
        if x.shape[1] != 3:
            hint = " (channels-last? use x.transpose(0, 3, 1, 2))" if x.shape[-1] == 3 else ""
            raise InputError(f"model input: expected 3 channels at axis 1 of (N, 3, H, W), found shape {x.shape}{hint}")
        if x.dtype != self.dtype:
            raise InputTypeError(f"model input has dtype {x.dtype} but the model is {self.dtype}; "
                                 f"cast explicitly (x.astype(np.{self.dtype})) or build the model with dtype='{x.dtype}'")
        if x.shape[0] < 1:
            raise InputError(f"model input: batch is empty, shape {x.shape}")
        check_input_size(self.plan, x.shape[2], x.shape[3], "model input")
        if not allow_nonfinite:
            check_finite(x, "model input")
        return x

    def forward(self, x, keep=None, norm=None, *, stop_before=None, progress=None,
                allow_nonfinite=False):
        """Logits (N, classes); with ``keep`` also the named intermediates.

        keep:        None, True (every intermediate) or names / glob patterns (see
                     :mod:`numpy_resnext._select`). Returns ``logits`` or ``(logits,
                     OrderedDict name -> array)`` in execution order.
        norm:        optional BatchNorm callable (see :class:`walk.ArrayOps`); default
                     inference BN with the running statistics.
        stop_before: a block name: return that block's input (and what was kept) instead
                     of the logits; nothing after it is computed.
        progress:    optional ``progress(done, total, note)`` after the stem, each block
                     and the head.
        allow_nonfinite: run NaN or infinite inputs (refused by default) to see how they
                     propagate.

        The memory it needs is estimated first (:func:`numpy_resnext.shapes.memory_estimate`)
        and a BudgetError raised when the budget cannot hold it.
        """
        x = self.check_input(x, allow_nonfinite)
        check_compute(self.plan, x.shape, self.dtype, "forward",
                      None if keep is None or keep is False else keep)
        kept = Capture(keep)
        out = walk(self.plan, x, ArrayOps(self.params, norm), kept, stop_before, progress)
        if keep is None or keep is False:
            return out
        return out, OrderedDict(kept.tensors)

    __call__ = forward

    def intermediate_names(self):
        """Every name the forward pass emits, in execution order."""
        return self.plan.names()

    def summary(self, input_size=(224, 224)):
        """Per-layer rows and totals at ``input_size`` (see :func:`summary.summarize`)."""
        return summarize(self.plan, input_size)

    def __repr__(self):
        return f"ResNeXt({self.config.name}, dtype={self.dtype}, params={self.num_params:,})"


def build(arch, *, weights=None, seed=0, dtype="float32", strict=True, init=DEFAULT_INIT, ema=None,
          bn_eps=None):
    """Build a model.

    arch:    a name from ``numpy-resnext archs`` (case-insensitive), an alias such as
             ``resnext50_32x4d``, or an :class:`ArchConfig` (see :func:`archs.custom`).
    weights: None (seeded initialisation), a dict {canonical name: array}, or a path to a
             weight file or directory that :mod:`numpy_resnext.io` can read.
    seed:    seed of the initialisation (used for tensors a non-strict load leaves missing).
    init:    seeded weights (weights=None): "calibrated" (default; BN statistics measured on
             a seeded calibration batch, see :mod:`numpy_resnext.init`) or "identity-bn"
             (BN scale 1, shift 0, mean 0, variance 1: :func:`params.init_params`).
    dtype:   "float32" or "float64"; weights are cast to it explicitly.
    ema:     torch checkpoints holding an EMA copy: True loads it, False the plain weights,
             None the plain ones unless the EMA copy is all there is (``load_report`` says).
    strict:  report every missing / unexpected / misshapen tensor as an error (default);
             non-strict loads fill missing tensors from the seeded initialisation and
             record what they skipped in ``model.load_report``.
    bn_eps:  BatchNorm's epsilon, overriding the one of the weights' source (1e-5; a file
             in a Paddle naming scheme: Paddle's float32(1e-5), see ``ArchConfig.bn_eps``).
    """
    dt = float_dtype(dtype, "build: dtype")
    if weights is not None and isinstance(weights, (str, os.PathLike)):
        # read, renamed and validated once, against the plan of the file's architecture (a
        # named architecture is checked against the file, which says how they differ)
        loaded = load_weights(weights, arch=arch, strict=strict, ema=ema, dtype=dt, finite=True)
        plan, checked, report = _with_eps(loaded.plan, bn_eps, loaded.report), loaded.params, loaded.report
    else:
        if arch is None:
            raise WeightsError("build: an architecture is needed unless weights come from a file")
        report = LoadReport()
        plan = _with_eps(layer_plan(get_arch(arch)), bn_eps, report)   # the one plan this model's parts all read
        if weights is None:
            check_memory(_seeding_bytes(plan, dt, init), f"seeded weights of {plan.config.name} "
                         f"({dt}, {init})")
            return ResNeXt(plan, seeded_params(plan, seed=seed, dtype=dt, init=init), dt, report)
        # a state dict under canonical names; torch's BN step counters carry no model state
        ignored = [n for n in weights if is_ignored(str(n))] if hasattr(weights, "keys") else []
        state = {k: v for k, v in weights.items() if k not in ignored} if ignored else weights
        checked, report = validate(plan, state, dtype=dt, strict=strict, report=report)
        report.ignored = ignored
    params = checked                           # in parameter order
    if report.missing:
        # a non-strict load: the seeded initialisation fills what the weights left out, and
        # the load's one report says which tensors and how
        check_memory(_seeding_bytes(plan, dt, "identity-bn"), f"seeded weights of "
                     f"{plan.config.name} ({dt}) for what the file lacks")
        params = init_params(plan, seed=seed, dtype=dt)
        params.update(checked)
        report.filled = [c for c, _ in report.missing]
        report.filled_with = (f"seeded values (params.init_params, seed {seed}: He-normal "
                              "convolutions, identity BatchNorm, uniform head)")
    return ResNeXt(plan, params, dt, load_report=report)


def _seeding_bytes(plan, dtype, init) -> int:
    """Memory seeded weights take: the parameters, a float64 draw of the largest, and the
    calibration forward of the calibrated initialisation."""
    sizes = [math.prod(s) for s in param_shapes(plan).values()]
    need = sum(sizes) * dtype.itemsize + 2 * max(sizes) * 8
    if init == DEFAULT_INIT:
        need += memory_estimate(plan, CALIBRATION_SHAPE, "float64", "golden") + sum(sizes) * 8
    return need


def _with_eps(plan: Plan, bn_eps, report: LoadReport) -> Plan:
    """``plan``, or its architecture's plan with BatchNorm epsilon ``bn_eps`` (noted)."""
    if bn_eps is None or float(bn_eps) == plan.config.bn_eps:
        return plan
    report.notes.append(f"BatchNorm epsilon {float(bn_eps)!r} as asked (the weights' source "
                        f"uses {plan.config.bn_eps!r})")
    return layer_plan(plan.config.replace(bn_eps=float(bn_eps)))
