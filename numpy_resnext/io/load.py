"""Load weights from any supported file (or dict) under canonical names.

``load_weights(source, arch=None, strict=True)`` reads ``source`` (any file or directory
:func:`.formats.read_weights` reads, a :class:`~.weightfile.WeightFile`, or a {name:
array} dict), recognises the naming scheme (:mod:`.schemes`), infers the architecture
(:mod:`.infer`), renames every tensor to its canonical name and validates the result
against the architecture's layer plan (:func:`numpy_resnext.params.validate`, which
transposes Paddle's [in, out] head to [out, in]). Arrays keep the dtype they were stored
in unless ``dtype`` is given.

Strict loading (the default) reports every missing, unexpected and wrongly shaped tensor
in one error, each by its canonical name and the file's own name. ``strict=False`` loads
what matches and records what it left out in ``LoadedWeights.report``.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

import numpy as np

from ..archs import ArchConfig, get_arch
from ..bounded import check_memory, human
from ..errors import WeightsError
from ..params import LoadReport, param_shapes, validate
from ..plan import Plan, layer_plan
from . import paddle
from .formats import read_weights
from .infer import config_differences, infer_config
from .schemes import detect_scheme, get_scheme, is_ignored, name_map

__all__ = ["LoadedWeights", "load_weights", "SEED_ALLOWANCE"]

SEED_ALLOWANCE = 64 << 20


class LoadedWeights(NamedTuple):
    """Weights under canonical names with the architecture and scheme they came from.

    params:     canonical name -> array (param_shapes order)
    config:     the ArchConfig the weights belong to
    plan:       its layer plan, the one the weights were validated against
    scheme:     the naming scheme the file used (see :data:`.schemes.SCHEMES`)
    file_names: canonical name -> the file's name for it
    report:     :class:`~numpy_resnext.params.LoadReport`
    source:     where the tensors came from
    """

    params: "OrderedDict"
    config: ArchConfig
    plan: Plan
    scheme: str
    file_names: "OrderedDict[str, str]"
    report: LoadReport
    source: str = "<dict>"


def load_weights(source, arch=None, strict=True, ema=None, *, dtype=None,
                 finite=False) -> LoadedWeights:
    """Weights from ``source`` under canonical names; see the module docstring.

    arch:   None to infer the architecture from the file, or a name / ArchConfig; a named
            architecture that disagrees with the file is an error saying how.
    strict: every missing, unexpected or misshapen tensor is an error (all listed at
            once); with False, missing and unexpected tensors are reported, not raised.
    ema:    torch checkpoints with an EMA copy: True loads it, False the plain weights,
            None the plain ones unless the EMA copy is all there is (the report says which).
    dtype:  cast every array to it (default: as stored).
    finite: also refuse NaN and infinite values (``build`` does; ``convert`` copies values
            as they are).
    """
    read = read_weights(source, ema)
    try:
        return _load(read, arch, strict, dtype, finite)
    except WeightsError as exc:
        message = str(exc)
        if read.source == "<dict>" or read.source in message:
            raise
        raise WeightsError(f"{read.source}: {message}") from None    # every message names the file


def _load(read, arch, strict, dtype, finite):
    label, table = read.source, dict(read.structured_to_param or {})
    report = LoadReport(notes=list(read.notes))
    report.ignored = [n for n in read.tensors if is_ignored(n)]
    tensors = OrderedDict((k, v) for k, v in read.tensors.items() if not is_ignored(k))
    scheme, tensors = _choose_scheme(tensors, read.kind in paddle.KINDS, table)
    config = _resolve_config(tensors, scheme, arch, strict, report)
    plan = layer_plan(config)
    fmap = name_map(plan, scheme)
    if not strict:
        _check_seeding(tensors, plan, fmap, label)
    # the file's name for each tensor, with the other name paddle.save's table gives it
    other = dict(table)
    other.update({v: k for k, v in table.items()})

    def named(fname):
        return f"{fname} = {other[fname]}" if other.get(fname) else fname

    renamed = OrderedDict((c, tensors[f]) for c, f in fmap.items() if f in tensors)
    if dtype is not None:                 # the cast to the model's dtype copies: check first
        check_memory(sum(int(v.size) * np.dtype(dtype).itemsize for v in renamed.values()
                         if getattr(v, "dtype", None) != np.dtype(dtype)),
                     f"weights {label} cast to {np.dtype(dtype)}")
    known = set(fmap.values())
    head = f"{plan.head.fc}.weight"
    params, report = validate(
        plan, renamed, dtype=dtype, strict=strict, finite=finite,
        what=f"weights {label} (naming scheme {scheme})",
        file_names={c: named(f) for c, f in fmap.items()},
        in_out=(head,) if get_scheme(scheme).fc_layout == "in_out" else (),
        unexpected=[named(n) for n in tensors if n not in known], report=report)
    return LoadedWeights(params, config, plan, scheme, fmap, report, label)


def _choose_scheme(tensors, paddle_file, table):
    """(scheme, tensors) — renamed through paddle.save's table when only its names are known."""
    def detect(ts):
        w, b = ts.get("fc.weight"), ts.get("fc.bias")
        return detect_scheme(list(ts), None if w is None else tuple(w.shape),
                             None if b is None else tuple(b.shape), paddle_file)
    try:
        return detect(tensors), tensors
    except WeightsError:
        if not table:
            raise
    renamed = OrderedDict((table.get(k, k), v) for k, v in tensors.items())
    return detect(renamed), renamed


def _resolve_config(tensors, scheme, arch, strict, report) -> ArchConfig:
    """The architecture to load into: the file's, or the one named when they agree."""
    wanted = None if arch is None else get_arch(arch)
    # a bare backbone: the named head, or (non-strict) ImageNet's 1000 classes
    default_classes = wanted.num_classes if wanted is not None else (None if strict else 1000)
    try:
        found, notes = infer_config(tensors, scheme, default_classes)
    except WeightsError as exc:
        if wanted is None:
            raise
        report.notes.append(f"architecture not inferred from the file ({exc}); using {wanted.name}")
        return wanted
    report.notes.extend(notes)
    if wanted is None:
        return found
    # avg_down has no tensors; a named architecture decides it
    diffs = config_differences(wanted, found, skip=("avg_down",))
    if not diffs:
        return wanted
    if all(d.startswith("num_classes") for d in diffs):
        # a fine-tuned head is the named network with another number of classes
        report.notes.append(f"fine-tuned head: {found.num_classes} classes taken from the "
                            f"file ({wanted.name} has {wanted.num_classes})")
        name = found.name if found.name.startswith(wanted.name) else wanted.name
        return wanted.replace(name=name, num_classes=found.num_classes,
                              description=f"{wanted.description}, "
                                          f"{found.num_classes}-class head")
    hint = f"; leave the architecture out to load it as {found.name}"
    raise WeightsError(f"the weights hold {found.name}, which disagrees with the architecture "
                       f"named, {wanted.name}: " + "; ".join(diffs) + hint)


def _check_seeding(tensors, plan, fmap, label):
    """A non-strict load leaves missing tensors to be seeded; refuse when they would
    outweigh what the file holds by more than 64 MiB (a file naming block 29,999 is not a
    partial checkpoint, and seeding its network would take gigabytes)."""
    loaded = sum(int(getattr(v, "nbytes", 0)) for v in tensors.values())
    seeded = 0
    for name, shape in param_shapes(plan).items():
        if fmap.get(name) not in tensors:
            n = 4                                       # float32, the default dtype
            for d in shape:
                n *= d
            seeded += n
    if seeded > loaded + SEED_ALLOWANCE:
        raise WeightsError(f"weights {label}: the file holds {human(loaded)} of "
                           f"{plan.config.name} but the missing tensors would need "
                           f"{human(seeded)} of seeded values (at most the loaded size plus "
                           f"{human(SEED_ALLOWANCE)} under strict=False); name the "
                           "architecture or load a complete file")
