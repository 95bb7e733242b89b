"""Load weights from any supported file (or dict) under canonical names.

``load_weights(source, arch=None, strict=True)`` reads ``source`` (a ``.pdparams`` file,
a directory of per-parameter files, a ``.pdiparams`` file or the prefix it shares with
its ``.json``/``.pdmodel``, a canonical ``.npz``, or a {name: array} dict), recognises
the naming scheme (:mod:`.names`), infers the architecture (:mod:`.infer`), renames every
tensor to its canonical name and transposes Paddle's [in, out] head to [out, in].
Arrays keep the dtype they were stored in; :func:`numpy_resnext.model.build` casts them.

Strict loading (the default) reports every missing, unexpected and wrongly shaped tensor
in one error, each by its canonical name and the file's own name. ``strict=False`` loads
what matches and records what it skipped in ``LoadedWeights.report``.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from ..archs import ArchConfig, get_arch
from ..bounded import clip_list, human, read_npz
from ..errors import WeightsError
from ..params import param_shapes
from . import infer as I
from . import names as N


@dataclass
class LoadReport:
    """What a load found besides the expected tensors.

    missing:    (canonical name, file name) of tensors the file lacks
    unexpected: file names that map to no tensor of the architecture
    skipped:    (canonical name, file name, why) of tensors present but not loaded
    ignored:    file names that carry no model state (e.g. num_batches_tracked)
    notes:      anything else the user should know (assumptions, reassembled tensors)
    """

    missing: list = field(default_factory=list)
    unexpected: list = field(default_factory=list)
    skipped: list = field(default_factory=list)
    ignored: list = field(default_factory=list)
    notes: list = field(default_factory=list)

    def as_dict(self) -> dict:
        """The report in :func:`check_params`'s shape plus the extra lists."""
        return {"missing": [c for c, _ in self.missing], "unexpected": list(self.unexpected),
                "skipped": [c for c, _, _ in self.skipped], "ignored": list(self.ignored),
                "notes": list(self.notes)}

    def lines(self) -> list:
        """Human-readable lines for what was not loaded (empty for a full load)."""
        out = []
        if self.missing:
            out.append(f"{len(self.missing)} missing: "
                       + clip_list([f"{c} (file: {f})" for c, f in self.missing], 40))
        if self.skipped:
            out.append(f"{len(self.skipped)} skipped: " + clip_list(
                [f"{c} (file: {f}): {why}" for c, f, why in self.skipped], 40, "; "))
        if self.unexpected:
            out.append(f"{len(self.unexpected)} unexpected, not loaded: "
                       + clip_list(self.unexpected, 40))
        if self.ignored and all(n.endswith(".num_batches_tracked") for n in self.ignored):
            out.append(f"{len(self.ignored)} ignored: torch's BatchNorm step counters "
                       "(num_batches_tracked, no model state)")
        elif self.ignored:
            out.append(f"{len(self.ignored)} ignored (no model state): "
                       + clip_list(self.ignored, 40))
        return out + list(self.notes)


@dataclass
class LoadedWeights:
    """Weights under canonical names with the architecture and scheme they came from.

    params:     canonical name -> array (param_shapes order; dtype as stored)
    config:     the ArchConfig the weights belong to
    scheme:     the naming scheme the file used (see :data:`names.SCHEMES`)
    file_names: canonical name -> the file's name for it
    report:     :class:`LoadReport`
    source:     where the tensors came from
    """

    params: "OrderedDict[str, np.ndarray]"
    config: ArchConfig
    scheme: str
    file_names: "OrderedDict[str, str]"
    report: LoadReport
    source: str = "<dict>"


# --- reading ------------------------------------------------------------------------------
def _read_npz(path):
    return read_npz(path, "weight file")     # every member's size checked before reading


def read_tensors(source, ema=None):
    """(tensors, paddle_file, source label, {file name: other name}, notes) for ``source``.

    ``ema`` chooses the EMA copy of a torch checkpoint (see :mod:`.checkpoint`)."""
    if hasattr(source, "items"):
        tensors = OrderedDict()
        for k, v in source.items():
            tensors[str(k)] = v if isinstance(v, np.ndarray) else np.asarray(v)
        return tensors, False, "<dict>", {}, []
    if hasattr(source, "tensors") and hasattr(source, "kind"):      # a PaddleFile
        pf = source
    else:
        path = os.fspath(source)
        if path.endswith(".npz"):
            return _read_npz(path), False, path, {}, []
        from .torch_read import foreign_kind, read_foreign
        if foreign_kind(path):          # torch.save, safetensors, shard index, hub directory
            tensors, label, notes = read_foreign(path, ema)
            return tensors, False, label, {}, notes
        from . import read_paddle
        pf = read_paddle(path)
    table = dict(getattr(pf, "structured_to_param", None) or {})
    return OrderedDict(pf.tensors), True, str(pf.source), table, list(pf.notes or [])


# --- mapping ------------------------------------------------------------------------------
def _choose_scheme(tensors, paddle_file, table):
    """(scheme, tensors) — renamed through paddle.save's table when only its names are known."""
    def detect(ts):
        fc_w, fc_b = _fc_shapes(ts)
        return N.detect_scheme(list(ts), fc_w, fc_b, paddle_file)
    try:
        return detect(tensors), tensors
    except WeightsError:
        if not table:
            raise
    renamed = OrderedDict((table.get(k, k), v) for k, v in tensors.items())
    return detect(renamed), renamed


def _fc_shapes(tensors):
    w = tensors.get("fc.weight")
    b = tensors.get("fc.bias")
    return (None if w is None else tuple(w.shape)), (None if b is None else tuple(b.shape))


def _resolve_config(tensors, scheme, arch, strict, report):
    """The architecture to load into, and whether to skip the head (non-strict, other classes)."""
    wanted = None if arch is None else get_arch(arch)
    # a bare backbone: the named head, or (non-strict) ImageNet's 1000 classes
    default_classes = wanted.num_classes if wanted is not None else (None if strict else 1000)
    try:
        found, notes = I.infer_config(tensors, scheme, default_classes)
    except WeightsError as exc:
        if wanted is None:
            raise
        report.notes.append(f"architecture not inferred from the file ({exc}); using {wanted.name}")
        return wanted, False
    report.notes.extend(notes)
    if wanted is None:
        return found, False
    # avg_down has no tensors; a named architecture decides it
    diffs = I.config_differences(wanted, found, skip=("avg_down",))
    if not diffs:
        return wanted, False
    head_only = all(d.startswith("num_classes") for d in diffs)
    if head_only:
        # a fine-tuned head is the named network with another number of classes
        report.notes.append(f"fine-tuned head: {found.num_classes} classes taken from the "
                            f"file ({wanted.name} has {wanted.num_classes})")
        name = found.name if found.name.startswith(wanted.name) else wanted.name
        return wanted.replace(name=name, num_classes=found.num_classes,
                              description=f"{wanted.description}, "
                                          f"{found.num_classes}-class head"), False
    hint = f"; leave the architecture out to load it as {found.name}"
    raise WeightsError(f"the weights hold {found.name}, which disagrees with the architecture "
                       f"named, {wanted.name}: " + "; ".join(diffs) + hint)


def _label(fname, table_inv):
    other = table_inv.get(fname)
    return f"{fname} = {other}" if other else fname


def map_tensors(tensors, config, scheme, strict=True, skip_head=False, source="<dict>",
                table=None, report=None):
    """Rename ``tensors`` (file names, ``scheme``) to canonical names for ``config``."""
    scheme = N.get_scheme(scheme)
    report = report or LoadReport()
    table_inv = dict(table or {})
    table_inv.update({v: k for k, v in (table or {}).items()})
    fmap = N.name_map(config, scheme)
    expected = param_shapes(config)
    params, wrong = OrderedDict(), []
    for canonical, fname in fmap.items():
        if fname not in tensors:
            report.missing.append((canonical, _label(fname, table_inv)))
            continue
        if skip_head and canonical.startswith("fc."):
            report.skipped.append((canonical, fname, f"head of another size {tuple(tensors[fname].shape)}"))
            continue
        value = tensors[fname]
        problem, value = _check_one(canonical, value, expected[canonical], scheme)
        if problem:
            wrong.append(f"{canonical} (file: {_label(fname, table_inv)}): {problem}")
        else:
            params[canonical] = value
    known = set(fmap.values())
    report.unexpected.extend(_label(n, table_inv) for n in tensors if n not in known)
    problems = []
    if strict and report.missing:
        problems.append(f"{len(report.missing)} missing: "
                        + clip_list([f"{c} (file: {f})" for c, f in report.missing], 40))
    if strict and report.unexpected:
        problems.append(f"{len(report.unexpected)} unexpected: "
                        + clip_list(report.unexpected, 40))
    if wrong:
        problems.append(f"{len(wrong)} wrong: " + clip_list(wrong, 40, "; "))
    if problems:
        raise WeightsError(
            f"weights {source} (naming scheme {scheme.name}) do not match {config.name} "
            f"({len(expected)} tensors expected, {len(tensors)} in the file):\n  "
            + "\n  ".join(problems))
    return params, fmap, report


def _check_one(canonical, value, shape, scheme):
    """(problem or None, canonical-layout value)."""
    if not isinstance(value, np.ndarray) or value.dtype.kind != "f":
        return f"expected a floating-point array, found {getattr(value, 'dtype', type(value).__name__)}", value
    if canonical == "fc.weight" and scheme.fc_layout == "in_out":
        stored = (shape[1], shape[0])
        if value.shape != stored:
            return f"expected shape {stored} ([in, out], Paddle's Linear), found {value.shape}", value
        return None, np.ascontiguousarray(value.T)          # (in, out) -> (out, in)
    if value.shape != tuple(shape):
        return f"expected shape {tuple(shape)}, found {value.shape}", value
    return None, value


SEED_ALLOWANCE = 64 << 20


def _check_seeding(tensors, config, scheme, label):
    """A non-strict load leaves missing tensors to be seeded; refuse when they would
    outweigh what the file holds by more than 64 MiB (a file naming block 29,999 is not a
    partial checkpoint, and seeding its network would take gigabytes)."""
    fmap = N.name_map(config, N.get_scheme(scheme))
    loaded = sum(int(getattr(v, "nbytes", 0)) for v in tensors.values())
    seeded = 0
    for name, shape in param_shapes(config).items():
        if fmap.get(name) not in tensors:
            n = 4                                       # float32, the default dtype
            for d in shape:
                n *= d
            seeded += n
    if seeded > loaded + SEED_ALLOWANCE:
        raise WeightsError(f"weights {label}: the file holds {human(loaded)} of "
                           f"{config.name} but the missing tensors would need "
                           f"{human(seeded)} of seeded values (at most the loaded size plus "
                           f"{human(SEED_ALLOWANCE)} under strict=False); name the "
                           "architecture or load a complete file")


def load_weights(source, arch=None, strict=True, ema=None) -> LoadedWeights:
    """Weights from ``source`` under canonical names; see the module docstring.

    arch:   None to infer the architecture from the file, or a name / ArchConfig; a named
            architecture that disagrees with the file is an error saying how.
    strict: every missing, unexpected or misshapen tensor is an error (all listed at
            once); with False, missing and unexpected tensors are reported, not raised.
    ema:    torch checkpoints with an EMA copy: True loads it, False the plain weights,
            None the plain ones unless the EMA copy is all there is (the report says which).
    """
    tensors, paddle_file, label, table, notes = read_tensors(source, ema)
    try:
        return _load(tensors, paddle_file, label, table, notes, arch, strict)
    except WeightsError as exc:
        message = str(exc)
        if label == "<dict>" or label in message:
            raise
        raise WeightsError(f"{label}: {message}") from None     # every message names the file


def _load(tensors, paddle_file, label, table, notes, arch, strict):
    report = LoadReport(notes=list(notes))
    report.ignored = [n for n in tensors if N.is_ignored(n)]
    tensors = OrderedDict((k, v) for k, v in tensors.items() if not N.is_ignored(k))
    scheme, tensors = _choose_scheme(tensors, paddle_file, table)
    config, skip_head = _resolve_config(tensors, scheme, arch, strict, report)
    if not strict:
        _check_seeding(tensors, config, scheme, label)
    params, fmap, report = map_tensors(tensors, config, scheme, strict=strict,
                                       skip_head=skip_head, source=label, table=table,
                                       report=report)
    return LoadedWeights(params, config, scheme, fmap, report, label)
