"""Parameters under canonical names: their shapes, a seeded initialisation, and the one
validation of weights against an architecture (:func:`validate`, its :class:`LoadReport`).

Canonical names are torchvision's for the plain and WSL models and timm's for the vd
models (a deep stem ``conv1.0/.1/.3/.4/.6`` + ``bn1``; shortcut ``downsample.1`` conv and
``downsample.2`` BN, ``downsample.0`` being the average pool). Every weight reader maps a
file's names onto these. BatchNorm keeps four tensors: ``weight``, ``bias`` (trainable)
and ``running_mean``, ``running_var`` (statistics, not counted as parameters).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from .bounded import clip_list
from .errors import WeightsError
from .plan import BN_FIELDS, SE, ConvBN, Plan, as_plan


def param_shapes(plan: Plan) -> "OrderedDict[str, tuple]":
    """Canonical name -> shape for every tensor of a :class:`Plan` (an architecture's name or
    config is accepted too) with BN statistics, in the order of the layer plan: each
    convolution's weight, then its BN's four tensors (an SE layer's fc1 and fc2 weight and
    bias after its block's conv3), then the head."""
    plan = as_plan(plan)
    shapes = OrderedDict()
    for layer in plan.all_layers():
        if isinstance(layer, ConvBN):
            shapes[f"{layer.name}.weight"] = layer.weight_shape
            for f in BN_FIELDS:
                shapes[f"{layer.bn}.{f}"] = (layer.out_channels,)
        elif isinstance(layer, SE):
            for fc in (layer.fc1, layer.fc2):
                shapes[f"{fc.name}.weight"] = fc.weight_shape                # out, in, 1, 1
                shapes[f"{fc.name}.bias"] = (fc.out_features,)
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


# notes a user must see on every load, not only when asking (the command line prints them):
# what the loader chose or assumed on the file's behalf (readers' and the loader's wording)
KEY_NOTES = ("prefix ", "weights taken from", "fine-tuned head", "no head", "architecture not inferred",
             "config.json declares", "BatchNorm epsilon")


@dataclass
class LoadReport:
    """What a load found besides the expected tensors: one report, from the reader through
    :func:`validate` to ``build()``'s ``model.load_report``.

    missing:    (canonical name, file name) of tensors the weights lack
    unexpected: names that map to no tensor of the architecture (the file's own names)
    ignored:    file names that carry no model state (e.g. num_batches_tracked)
    notes:      anything else the user should know (reassembled tensors, entries not read)
    assumed:    what the load assumed against the file's own evidence (an architecture
                named by the user over what the file declares)
    filled:     canonical names a non-strict ``build`` filled with seeded values, and how
                (``filled_with``)
    """

    missing: list = field(default_factory=list)
    unexpected: list = field(default_factory=list)
    ignored: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    assumed: list = field(default_factory=list)
    filled: list = field(default_factory=list)
    filled_with: str = ""

    def as_dict(self) -> dict:
        """The report as plain lists, the missing tensors by canonical name."""
        return {"missing": [c for c, _ in self.missing], "unexpected": list(self.unexpected),
                "ignored": list(self.ignored), "notes": list(self.notes),
                "assumed": list(self.assumed), "filled": list(self.filled)}

    def __getitem__(self, key):
        """``report["unexpected"]``: the entries of :meth:`as_dict`."""
        return self.as_dict()[key]

    def assumptions(self) -> list:
        """What must be shown on every load: :attr:`assumed`, then the notes saying what was
        chosen on the file's behalf (a prefix removed, the EMA copy, a fine-tuned head)."""
        return list(self.assumed) + [n for n in self.notes if n.startswith(KEY_NOTES)]

    def skipped_and_filled(self) -> list:
        """Two lines for a non-strict load: what of the file was not used, what was filled."""
        unused = (f"{len(self.unexpected)} tensors of the file not used: "
                  + clip_list([str(n) for n in self.unexpected], 40)) if self.unexpected else \
            "every tensor of the file used"
        if self.filled:
            filled = (f"{len(self.filled)} tensors the file lacks filled with {self.filled_with or 'seeded values'}: "
                      + clip_list(self.filled, 40))
        elif self.missing:
            filled = f"{len(self.missing)} tensors the file lacks: " + _listed(self.missing)
        else:
            filled = "no tensor missing, none filled"
        return [unused, filled]

    def lines(self) -> list:
        """Human-readable lines for what was not loaded (empty for a full load)."""
        out = [f"assumed: {a}" for a in self.assumed]
        if self.missing:
            how = f", filled with {self.filled_with}" if self.filled and self.filled_with else ""
            out.append(f"{len(self.missing)} missing{how}: " + _listed(self.missing))
        if self.unexpected:
            out.append(f"{len(self.unexpected)} unexpected, not loaded: "
                       + clip_list(self.unexpected, 40))
        if self.ignored and all(n.endswith(".num_batches_tracked") for n in self.ignored):
            out.append(f"{len(self.ignored)} ignored: torch's BatchNorm step counters "
                       "(num_batches_tracked, no model state; kept for conversion)")
        elif self.ignored:
            out.append(f"{len(self.ignored)} ignored (no model state): "
                       + clip_list(self.ignored, 40))
        return out + list(self.notes)


def _named(canonical, file_name):
    """The canonical name, with the file's name beside it when the two differ."""
    return canonical if file_name == canonical else f"{canonical} (file: {file_name})"


def _listed(pairs, sep=", "):
    return clip_list([_named(c, f) for c, f in pairs], 40, sep)


def validate(plan, weights, *, dtype=None, strict=True, finite=True, what="weights",
             file_names=None, in_out=(), unexpected=(), report=None):
    """Check the {canonical name: array} dict ``weights`` against the tensors of ``plan``
    (a :class:`Plan`; a name or config is accepted too) and return ``(checked, report)``: ``checked`` the arrays in
    parameter order (cast to ``dtype`` when given), ``report`` a :class:`LoadReport`.

    Every problem is reported at once, in one WeightsError: missing and unexpected tensors
    (allowed with ``strict=False``, and listed in the report), wrong shapes, non-float
    values and (with ``finite``) NaN or infinite values.

    file_names: {canonical name: the file's name for it}, shown beside the canonical one
                (a weight file renamed to canonical names; default: the names themselves).
    in_out:     canonical names stored [in, out] (Paddle's Linear: the head, and the SE
                layers' fc1 / fc2): checked in that layout and transposed to [out, in]
                (reshaped to [out, in, 1, 1] for an SE layer).
    unexpected: names found beside ``weights`` that map to no tensor (the file's names).
    report:     a LoadReport to add to (a file's notes and ignored tensors).
    """
    if not hasattr(weights, "items"):
        raise WeightsError(f"{what}: expected a mapping of canonical names to arrays, found {type(weights).__name__}")
    plan = as_plan(plan)
    expected = param_shapes(plan)
    file_names = file_names or {}
    report = report if report is not None else LoadReport()
    report.missing.extend((n, file_names.get(n, n)) for n in expected if n not in weights)
    report.unexpected.extend(list(unexpected) + [n for n in weights if n not in expected])
    wrong, bad_type, non_finite = [], [], []
    checked = OrderedDict()
    for name, shape in expected.items():
        if name not in weights:
            continue
        value, label = weights[name], _named(name, file_names.get(name, name))
        if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
            found = getattr(value, "dtype", type(value).__name__)
            bad_type.append(f"{label}: expected a floating-point array, found {found}")
            continue
        if name in in_out:
            stored = (shape[1], shape[0])                  # Paddle's Linear: [in, out]
            if tuple(value.shape) != stored:
                wrong.append(f"{label}: expected shape {stored} ([in, out], Paddle's Linear), "
                             f"found {tuple(value.shape)}")
                continue
            value = np.ascontiguousarray(value.T).reshape(shape)   # (in, out) -> (out, in[, 1, 1])
        elif tuple(value.shape) != tuple(shape):
            wrong.append(f"{label}: expected shape {tuple(shape)}, found {tuple(value.shape)}")
            continue
        if finite and not np.isfinite(value).all():
            bad = int(np.size(value) - np.count_nonzero(np.isfinite(value)))
            non_finite.append(f"{label}: {bad} of {value.size} values are NaN or infinite")
        checked[name] = value if dtype is None else value.astype(dtype, copy=False)
    problems = []
    if report.missing and strict:
        problems.append(f"{len(report.missing)} missing: " + _listed(report.missing))
    if report.unexpected and strict:
        problems.append(f"{len(report.unexpected)} unexpected: "
                        + clip_list([str(n) for n in report.unexpected], 40))
    for label, items in (("wrong shape", wrong), ("wrong type", bad_type), ("not finite", non_finite)):
        if items:
            problems.append(f"{len(items)} {label}: " + clip_list(items, 40, "; "))
    if problems:
        raise WeightsError(f"{what} do not match architecture {plan.config.name} "
                           f"({len(expected)} tensors expected, "
                           f"{len(weights) + len(unexpected)} found):\n  " + "\n  ".join(problems))
    return checked, report


def check_params(plan, weights, dtype=None, strict=True, what="weights"):
    """:func:`validate` with the report as a dict of canonical names ``{"missing": [...],
    "unexpected": [...]}``."""
    checked, report = validate(plan, weights, dtype=dtype, strict=strict, what=what)
    return checked, {"missing": [c for c, _ in report.missing],
                     "unexpected": list(report.unexpected)}
