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

from ..archs import ArchConfig, get_arch, registered
from ..bounded import check_memory, human, one_load
from ..errors import WeightsError, printable
from ..params import LoadReport, param_shapes, validate
from ..plan import Plan, layer_plan
from . import paddle
from .declared import evidence, refusal, se_unused
from .formats import read_weights
from .infer import config_differences, infer_config
from .recognise import detect_scheme
from .schemes import get_scheme, in_out_names, is_ignored, name_map
from .weightfile import WeightFile

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
    buffers:    tensors that carry no model state, as read (shape, dtype and value), under
                canonical names: torch's ``<bn>.num_batches_tracked``; a conversion writes
                them back
    """

    params: "OrderedDict"
    config: ArchConfig
    plan: Plan
    scheme: str
    file_names: "OrderedDict[str, str]"
    report: LoadReport
    source: str = "<dict>"
    buffers: "OrderedDict | None" = None


@one_load
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

    One load with one reading budget: the weights and what is read beside them (the
    ``config.json`` next to a ``model.safetensors``, :mod:`.declared`).
    """
    read = read_weights(source, ema)
    path = None if hasattr(source, "items") or isinstance(source, WeightFile) else source
    try:
        return _load(read, arch, strict, dtype, finite, path)
    except WeightsError as exc:
        message = str(exc)
        if read.source == "<dict>" or read.source in message:
            raise
        raise WeightsError(f"{read.source}: {message}") from None    # every message names the file


def _load(read, arch, strict, dtype, finite, path):
    label, table = read.source, dict(read.structured_to_param or {})
    report = LoadReport(notes=list(read.notes))
    report.ignored = [n for n in read.tensors if is_ignored(n)]
    tensors = OrderedDict((k, v) for k, v in read.tensors.items() if not is_ignored(k))
    declared, findings = evidence(read, path)
    # what the file says besides its tensors settles what they cannot tell (SENet154_vd or
    # SE_ResNeXt152_64x4d, seresnext101d or its anti-aliased twin): paddle.save's table,
    # the architecture a config.json or the file's own metadata names
    said = dict(table=table, architecture=declared[0] if declared else _metadata_arch(read))
    try:
        scheme, tensors = _choose_scheme(tensors, read.kind in paddle.KINDS, table)
        config = _resolve_config(tensors, scheme, arch, strict, report, said)
    except WeightsError as exc:
        if findings and arch is None:
            raise WeightsError(refusal(findings)) from None
        raise
    if findings:
        if arch is None:
            raise WeightsError(refusal(findings, config.name))
        report.assumed += [f"{f.sentence()}; loaded as {config.name} because it was named, so "
                           f"the results are {config.name}'s, not the file's network's"
                           for f in findings]
    if arch is not None and not config.se_reduction:
        report.assumed += se_unused(tensors, config.name)
    config = _check_declared(declared, config, arch, report)
    config = _source_eps(config, get_scheme(scheme), report)
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
    try:
        params, report = validate(
            plan, renamed, dtype=dtype, strict=strict, finite=finite,
            what=f"weights {label} (naming scheme {scheme})",
            file_names={c: named(f) for c, f in fmap.items()},
            in_out=in_out_names(plan, scheme),
            unexpected=[named(n) for n in tensors if n not in known], report=report)
    except WeightsError as exc:
        if not report.assumed:
            raise
        raise WeightsError(f"{exc}\n  " + "\n  ".join(f"assumed: {a}" for a in report.assumed)) from None
    buffers = _buffers(read.tensors, report, fmap, get_scheme(scheme))
    return LoadedWeights(params, config, plan, scheme, fmap, report, label, buffers)


def _buffers(tensors, report, fmap, scheme):
    """The file's step counters under canonical names (``<bn>.num_batches_tracked``), as
    read; an entry of that name that is no counter (one integer) is left out, and noted."""
    mean = scheme.bn_fields[2]
    prefixes = {}
    for canonical, fname in fmap.items():
        if canonical.endswith(".running_mean") and fname.endswith(mean):
            prefixes[fname[:-len(mean)]] = canonical[:-len("running_mean")]
    out, odd = OrderedDict(), 0
    for name in report.ignored:
        stem, _, suffix = name.rpartition(".")
        if f"{stem}." in prefixes:
            value = tensors[name]
            if getattr(value, "dtype", np.dtype(object)).kind in "iu" and value.size == 1:
                out[f"{prefixes[stem + '.']}{suffix}"] = value
            else:
                odd += 1
    if odd:
        report.notes.append(f"{odd} num_batches_tracked entries hold no step counter (one "
                            "integer): not kept for conversion")
    return out


def _check_declared(declared, config, arch, report):
    """The config.json's architecture against the tensors: the same network, or an error
    (a named architecture decides, and the report says so)."""
    if declared is None:
        return config
    name, expected = declared
    diffs = config_differences(expected, config, skip=("num_classes", "avg_down"))
    if diffs and arch is None:
        raise WeightsError(f"config.json declares the architecture {name!r} "
                           f"({expected.name}), but the tensors hold {config.name}: "
                           + "; ".join(diffs) + "; name an architecture to load them anyway")
    if diffs:
        report.assumed.append(f"config.json declares {name!r} ({expected.name}), which "
                              f"disagrees with the tensors; loaded as {config.name}, as named")
        return config
    report.notes.append(f"config.json declares {name!r}, which the tensors match")
    if registered(config, head=False) is None and arch is None:
        name = printable(str(name), 100)          # the model's name from now on: printed
        return config.replace(name=name if config.num_classes == expected.num_classes
                              else f"{name}_{config.num_classes}classes")
    return config


def _metadata_arch(read):
    """The architecture a file's own metadata names (numpy-resnext writes it into
    safetensors metadata), or None."""
    name = dict(read.extras).get("architecture") if hasattr(read.extras, "keys") else None
    return name if isinstance(name, str) else None


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


def _source_eps(config, scheme, report) -> ArchConfig:
    """``config`` with the BatchNorm epsilon of the framework whose naming the file uses."""
    if config.bn_eps == scheme.bn_eps:
        return config
    report.notes.append(f"BatchNorm epsilon {scheme.bn_eps!r}: the weights are in a Paddle naming "
                        f"({scheme.name}), and Paddle adds float32(1e-5), not 1e-5 (--bn-eps sets another)")
    return config.replace(bn_eps=scheme.bn_eps)


def _resolve_config(tensors, scheme, arch, strict, report, said=None) -> ArchConfig:
    """The architecture to load into: the file's, or the one named when they agree."""
    wanted = None if arch is None else get_arch(arch)
    # a bare backbone: the named head, or (non-strict) ImageNet's 1000 classes
    default_classes = wanted.num_classes if wanted is not None else (None if strict else 1000)
    try:
        found, notes = infer_config(tensors, scheme, default_classes, said, wanted)
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
