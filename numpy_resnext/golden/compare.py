"""Comparing a candidate's tensors with a golden dump, tensor by tensor, in execution order.

The error measure and the pass rule are in :mod:`numpy_resnext.golden`'s docstring. The
table shows names from the files as :func:`numpy_resnext.errors.printable` makes them
(control characters and line breaks escaped, cut to :data:`NAME_WIDTH` characters), so a
name cannot add a line or move the cursor.
"""

from __future__ import annotations

import math
import os
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from ..bounded import check_memory
from ..errors import InputError, printable
from .coverage import (NAME_WIDTH, by_kind, describe, excused_kinds, overwritten_note, plural,
                       tensor_kinds)
from .manifest import ERROR_DEFINITION, LOGITS_NAME, SUGGESTED_TOLERANCES, read_golden
from .names import load_map

TINY = float(np.finfo(np.float64).tiny)


def _shown(name) -> str:
    return printable(name, NAME_WIDTH)


@dataclass
class Row:
    """One reference tensor's comparison."""

    name: str
    status: str                      # "pass", "FAIL", "shape", "missing"
    candidate_name: str | None = None
    ref_shape: tuple = ()
    cand_shape: tuple | None = None
    max_abs: float = math.nan
    max_rel: float = math.nan
    ref_abs_max: float = math.nan
    worst_index: tuple | None = None
    note: str = ""


@dataclass
class Report:
    """Per-tensor rows in the reference's execution order, and the verdict."""

    rows: list
    rtol: float
    atol: float
    ignored: list                    # candidate names the map told us to skip
    extra: list                      # candidate tensors with no reference counterpart
    strict: bool = False
    kinds: dict | None = None        # reference name -> kind (see .coverage)

    def __post_init__(self):
        if self.kinds is None:
            self.kinds = tensor_kinds([r.name for r in self.rows])

    @property
    def compared(self):
        return [r for r in self.rows if r.status in ("pass", "FAIL", "shape")]

    @property
    def missing(self):
        return [r for r in self.rows if r.status == "missing"]

    @property
    def excused(self):
        """Kinds --strict excuses: those a capture cannot hold, of which it holds none."""
        return excused_kinds(self.rows, self.kinds, self.strict)

    @property
    def unexcused_missing(self):
        excused = self.excused
        return [r for r in self.missing if self.kinds.get(r.name) not in excused]

    @property
    def first_divergence(self):
        """The first reference tensor, in execution order, that does not pass (or None);
        with ``strict``, a missing one counts unless its kind is excused."""
        excused = self.excused
        for r in self.rows:
            if r.status in ("FAIL", "shape") or (
                    self.strict and r.status == "missing" and self.kinds.get(r.name) not in excused):
                return r
        return None

    @property
    def passed(self):
        return bool(self.compared) and self.first_divergence is None

    def to_dict(self):
        """The report as JSON-ready data; NaN and infinite numbers become null (JSON has
        neither: a strict reader such as JavaScript's JSON.parse refuses ``Infinity``), the
        row's status and note say what happened."""
        def clean(v):
            return None if isinstance(v, float) and not math.isfinite(v) else v
        first = self.first_divergence
        return {"passed": self.passed, "rtol": self.rtol, "atol": self.atol,
                "error_definition": ERROR_DEFINITION,
                "first_divergence": first.name if first else None,
                "compared": len(self.compared), "total": len(self.rows),
                "missing": [r.name for r in self.missing],
                "missing_by_kind": {k: len(v) for k, v in by_kind(self.missing, self.kinds)},
                "excused_kinds": sorted(self.excused), "ignored": self.ignored, "extra": self.extra,
                "rows": [{k: clean(v) if not isinstance(v, tuple) else list(v)
                          for k, v in vars(r).items()} for r in self.rows]}

    def format(self, show="all"):
        """A table (``show``: "all" rows, "fail" only failing ones) and the verdict.

        A candidate of one tensor (a logits .npy) is compared with one reference tensor:
        the table then lists that row only, and the reference tensors it lacks are one
        count line instead of a row each (``strict`` lists them, as failures)."""
        single = not self.strict and len(self.compared) + len(self.extra) + len(self.ignored) == 1
        rows = [r for r in self.rows if not (single and r.status == "missing")]
        width = max([28] + [len(_shown(r.name)) + len(_shown(r.candidate_name or "")) + 4
                            for r in rows])
        lines = [f"{'tensor':<{width}} {'shape':<18} {'max_abs':>10} {'max_rel':>10} {'|ref|max':>10}  status"]
        for r in rows:
            if show == "fail" and (r.status == "pass" or (r.status == "missing" and not self.strict)):
                continue
            name = _shown(r.name) if r.candidate_name in (None, r.name) else \
                f"{_shown(r.name)} <- {_shown(r.candidate_name)}"
            shape = "x".join(map(str, r.ref_shape)) or "scalar"
            lines.append(f"{name:<{width}} {shape:<18} {_num(r.max_abs):>10} {_num(r.max_rel):>10} "
                         f"{_num(r.ref_abs_max):>10}  {r.status}"
                         f"{'  ' + printable(r.note, 400) if r.note else ''}")
        if single and self.missing:
            lines.append(f"({len(self.missing)} other reference tensors are not in the candidate: "
                         f"a single array is compared with "
                         f"{_shown(self.compared[0].name) if self.compared else 'one tensor'} only)")
        lines.append(self.verdict())
        return "\n".join(lines)

    def verdict(self):
        n, total = len(self.compared), len(self.rows)
        worst = max(self.compared, key=lambda r: -1 if math.isnan(r.max_rel) else r.max_rel, default=None)
        head = (f"compared {n} of {total} reference tensors (rtol={self.rtol:g}, atol={self.atol:g}); "
                f"{len(self.missing)} not in the candidate, {len(self.ignored)} candidate tensors "
                f"ignored by the map, {len(self.extra)} without a reference counterpart")
        if worst is not None and not math.isnan(worst.max_rel):
            head += f"\nlargest relative error {worst.max_rel:.3g} at {_shown(worst.name)}"
        excused_kinds_ = self.excused                      # once: it walks every row
        excused = [r for r in self.missing if self.kinds.get(r.name) in excused_kinds_]
        if excused:
            head += (f"\nnot held by the capture (module hooks see no residual add and no input; "
                     f"--strict excuses a kind the candidate holds none of): "
                     f"{describe(by_kind(excused, self.kinds))}")
        first = self.first_divergence
        if not self.compared:
            return head + "\nFAIL: no tensor in common (wrong --map?)"
        if first is None:
            if not self.missing:
                return head + "\nPASS: every reference tensor compared, all within tolerance"
            if excused and len(excused) == len(self.missing):
                return head + (f"\nPASS (--strict): every reference tensor a capture can hold "
                               f"compared ({n} of {total}), all within tolerance")
            return head + (f"\nPASS ON {n} OF {total} REFERENCE TENSORS ONLY: not compared: "
                           f"{describe(by_kind(self.missing, self.kinds))}; a divergence there "
                           "would go unseen (capture them, e.g. with numpy_resnext.torch_capture, "
                           "and use --strict)")
        cand = f" (candidate {_shown(repr(first.candidate_name))})" \
            if first.candidate_name not in (None, first.name) else ""
        n_bad = sum(r.status in ("FAIL", "shape") for r in self.rows)
        lacking = self.unexcused_missing if self.strict else []
        parts = []
        if n_bad:
            parts.append(f"{n_bad} tensor(s) diverge")
        if lacking:
            parts.append(f"{plural('reference tensor', len(lacking))} not in the candidate "
                         f"(--strict): {describe(by_kind(lacking, self.kinds))}")
        if first.status == "missing":
            detail = "not in the candidate"
        else:
            detail = printable(first.note, 400) or (f"max_abs {first.max_abs:.3g} > atol + rtol*|ref|max = "
                                                    f"{self.atol + self.rtol * first.ref_abs_max:.3g}")
        return head + (f"\nFAIL: {'; '.join(parts)}; first in execution order: "
                       f"{_shown(first.name)}{cand}: {detail}")


def _num(v):
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3g}"


def _squeezed(shape):
    return tuple(d for d in shape if d != 1)


def compare_tensor(name, ref, cand, rtol, atol, candidate_name=None) -> Row:
    """One :class:`Row`; shapes may differ only by axes of size 1 ((N,C,1,1) vs (N,C))."""
    row = Row(name, "pass", candidate_name, tuple(ref.shape), tuple(cand.shape))
    if ref.shape != cand.shape:
        if _squeezed(ref.shape) != _squeezed(cand.shape):
            row.status = "shape"
            row.note = f"shape mismatch: reference {tuple(ref.shape)}, candidate {tuple(cand.shape)}"
            return row
        row.note = f"candidate shape {tuple(cand.shape)} compared after dropping size-1 axes"
        cand = cand.reshape(ref.shape)
    for label, a in (("reference", ref), ("candidate", cand)):
        if a.dtype.kind not in "fiu":
            row.status, row.note = "shape", f"{label} has non-numeric dtype {a.dtype}"
            return row
    if ref.size > 1 << 20:             # float64 copies of both, the difference, a mask
        check_memory(25 * ref.size, f"comparing tensor {_shown(name)} of shape {ref.shape}")
    r = ref.astype(np.float64, copy=False)
    c = cand.astype(np.float64, copy=False)
    diff = np.abs(c - r)                                      # same shape as the reference
    row.ref_abs_max = float(np.abs(r).max()) if r.size else 0.0
    if r.size == 0:
        row.max_abs = row.max_rel = 0.0
        return row
    nan = ~np.isfinite(diff)
    if nan.any():
        row.status = "FAIL"
        row.worst_index = tuple(int(i) for i in np.unravel_index(int(np.argmax(nan)), diff.shape))
        row.max_abs = row.max_rel = math.inf
        row.note = f"{int(nan.sum())} non-finite difference(s), first at index {row.worst_index}"
        return row
    flat = int(np.argmax(diff))
    row.worst_index = tuple(int(i) for i in np.unravel_index(flat, diff.shape))
    row.max_abs = float(diff.reshape(-1)[flat])
    row.max_rel = row.max_abs / max(row.ref_abs_max, TINY)
    if not row.max_abs <= atol + rtol * row.ref_abs_max:
        row.status = "FAIL"
        row.note = (f"worst at index {row.worst_index}: reference {r.reshape(-1)[flat]:.17g}, "
                    f"candidate {c.reshape(-1)[flat]:.17g}")
    return row


def default_tolerances(ref_manifest, dtypes):
    """(rtol, atol) for the least precise of ``dtypes``: the reference's suggestion if any."""
    key = "float32" if any(np.dtype(d) != np.float64 for d in dtypes) else "float64"
    table = (ref_manifest or {}).get("suggested_tolerances") or SUGGESTED_TOLERANCES
    tol = table.get(key, SUGGESTED_TOLERANCES[key])
    return float(tol["rtol"]), float(tol["atol"])


def compare(reference, candidate, rtol=None, atol=None, name_map=None, strict=False) -> Report:
    """Compare a candidate's tensors with a reference dump, in the reference's order.

    reference: a path (.npz) or a mapping name -> array in execution order.
    candidate: a path (.npz / .npy), a mapping name -> array, or one array (taken as the
               logits, compared with the reference's ``fc``).
    rtol/atol: tolerances of the criterion in the module docstring; None picks the
               reference manifest's suggestion for the less precise dtype involved.
    name_map:  None, a shipped map's short name, a JSON path, a dict or a :class:`NameMap`
               translating candidate names to the reference's.
    strict:    count reference tensors missing from the candidate as divergences.
    """
    ref_manifest = None
    if isinstance(reference, (str, os.PathLike)):
        reference, ref_manifest = read_golden(reference, what="reference")
    if isinstance(candidate, (str, os.PathLike)):
        candidate, _ = read_golden(candidate, what="candidate")
    elif isinstance(candidate, np.ndarray):
        candidate = OrderedDict([(LOGITS_NAME, candidate)])
    nm = load_map(name_map)
    mapped, origin, ignored = nm.apply(candidate, reference=list(reference))
    if rtol is None or atol is None:
        dtypes = [a.dtype for a in reference.values() if a.dtype.kind == "f"]
        dtypes += [a.dtype for a in mapped.values() if a.dtype.kind == "f"]
        d_rtol, d_atol = default_tolerances(ref_manifest, dtypes or [np.float64])
        rtol = d_rtol if rtol is None else rtol
        atol = d_atol if atol is None else atol
    if not (math.isfinite(rtol) and math.isfinite(atol) and rtol >= 0 and atol >= 0):
        raise InputError(f"tolerances must be finite numbers >= 0, found rtol={rtol}, atol={atol}")
    rows, names = [], list(reference)
    for position, (name, ref) in enumerate(reference.items()):
        if name not in mapped:
            rows.append(Row(name, "missing", None, tuple(ref.shape)))
            continue
        row = compare_tensor(name, ref, mapped[name], rtol, atol, origin[name])
        if row.status == "FAIL":
            note = overwritten_note(position, reference, mapped[name], compare_tensor, rtol, atol,
                                    names)
            row.note = note or row.note
        rows.append(row)
    extra = [origin[n] for n in mapped if n not in reference]
    kinds = tensor_kinds(list(reference), ref_manifest)
    return Report(rows, float(rtol), float(atol), ignored, extra, strict, kinds)
