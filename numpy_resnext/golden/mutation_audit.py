"""The mutation audit: does ``compare`` against a golden catch each bug of :mod:`.catalogue`,
and does it name the tensor where the bug lives?

For one architecture, input size, seed and kind of seeded weights:

1. a seeded uint8 RGB image of the chosen size (:func:`audit_image`) goes through the
   audit's input pipeline (:func:`numpy_resnext.golden.mutants.prepare`: normalise, CHW);
2. the golden is the float64 forward of the correct model on it (``golden_dump``: the
   input first, then every intermediate);
3. each mutant runs at float32 and/or float64 (the same seeded weights, cast), through the
   one forward walk with its ops, plan or input pipeline changed, keeping every tensor;
4. ``compare`` checks it against the golden at the default tolerance of its dtype
   (``SUGGESTED_TOLERANCES``: float32 1e-4, float64 1e-10) and reports the first
   divergence and its relative error.

A mutant is *caught* when compare fails, and *located* when the first divergence is one of
the tensors the mutant declares. The unmutated forward ("none") is run the same way and
must pass. A mutant whose forward stops with an error (a shape mismatch at an add) is
compared on the tensors it produced before the error.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..archs import get_arch
from ..bounded import check_memory
from ..errors import InputError, ResNeXtError
from . import SUGGESTED_TOLERANCES, compare, golden_dump
from .manifest import INPUT_NAME
from ..model import build
from .catalogue import CATALOGUE, MUTANTS
from .mutants import MutantOps, prepare
from ..params import param_shapes
from ..plan import layer_plan
from ..shapes import ShapeOps, describe_run, memory_estimate, shape_walk
from ..walk import ArrayOps, Capture, walk

DEFAULT_ARCH = "ResNeXt50_vd_32x4d"
# Odd height, even width: the stem sees 67x45 (odd: 'SAME' padding symmetric there), layer2.0
# receives 17x12 (an even width: 'SAME' padding asymmetric; an odd height: the ceil-mode
# average pool's last window hangs over the edge), layer3.0 9x6, layer4.0 5x3.
DEFAULT_SIZE = (67, 45)
DTYPES = ("float32", "float64")


class Result(NamedTuple):
    mutant: str
    kind: str
    dtype: str
    caught: bool              # compare failed
    first: str | None         # first diverging tensor (None: passed)
    max_rel: float            # its relative error (nan: shape mismatch or passed)
    expected: tuple           # where the bug lives
    located: bool             # first in expected
    equivalent: str | None    # reason it cannot change any output here
    note: str                 # e.g. the error that stopped the forward
    worst_rel: float = math.nan   # largest relative error over every compared tensor

    @property
    def ok(self) -> bool:
        """What the audit requires: caught at the bug, passed when equivalent or unmutated."""
        if self.equivalent or self.mutant == "none":
            return not self.caught
        return self.caught and self.located


def audit_image(height, width, seed=0):
    """A seeded uint8 RGB (H, W, 3) image: smooth colour gradients plus noise, so that
    channel order, normalisation and spatial orientation all matter."""
    rng = np.random.default_rng((seed, 10))
    yy, xx = np.meshgrid(np.linspace(0, 1, height), np.linspace(0, 1, width), indexing="ij")
    base = np.stack([200 * yy + 30, 180 * xx + 40, 120 * (1 - yy * xx) + 60], axis=-1)   # H, W, 3
    return np.clip(base + rng.normal(0, 25, base.shape), 0, 255).astype(np.uint8)


class _RecordingShapeOps(ShapeOps):
    def __init__(self):
        self.inputs = {}

    def conv(self, x, layer):
        self.inputs[layer.name] = x.shape[1:]
        return super().conv(x, layer)

    def pool(self, x, pool):
        self.inputs[pool.name] = x.shape[1:]
        return super().pool(x, pool)

    def global_pool(self, x, head):
        self.inputs[head.pool] = x.shape[1:]
        return super().global_pool(x, head)

    def squeeze(self, x, se):
        self.inputs[se.pool] = x.shape[1:]
        return super().squeeze(x, se)


def layer_inputs(plan, height, width) -> dict:
    """{conv or pool name (global pool and SE squeeze included): (H, W) of its input} for
    the unmutated plan at this size."""
    ops = _RecordingShapeOps()
    shape_walk(plan, height, width, ops)
    return ops.inputs


def run_mutant(model, mutant, image, keep=True):
    """(tensors, note): every tensor the mutant's forward emits on ``image`` (input first),
    or those ``keep`` selects (e.g. ["fc"]: the logits only)."""
    plan = mutant.plan(model.plan) if mutant and mutant.plan else model.plan
    ops_class = mutant.ops if mutant and mutant.ops else ArrayOps
    ops = ops_class(model.params, plan) if issubclass(ops_class, MutantOps) else ops_class(model.params)
    pipeline = mutant.prepare if mutant and mutant.prepare else prepare
    x = model.check_input(pipeline(image, model.dtype)[None])
    kept, note = Capture(keep), ""
    try:
        with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
            walk(plan, x, ops, kept)
    except (ValueError, ResNeXtError) as exc:       # e.g. a shape mismatch at an add
        note = f"forward stopped: {str(exc).splitlines()[0]}"
    return {INPUT_NAME: x.copy(), **kept.tensors}, note


def run_mutants(arch=DEFAULT_ARCH, size=DEFAULT_SIZE, init="calibrated", dtypes=DTYPES, seed=0,
                names=None, progress=None) -> list:
    """One :class:`Result` per (mutant, dtype), the unmutated forward ("none") first."""
    for n in names or ():
        if n not in MUTANTS:
            raise InputError(f"--mutant: unknown mutant {n!r}; known: {', '.join(MUTANTS)}")
    mutants = [None] + [m for m in CATALOGUE if names is None or m.name in names]
    H, W = size
    check_memory(audit_bytes(arch, size, dtypes), f"the mutation audit of "
                 f"{describe_run(layer_plan(get_arch(arch)), (1, 3, H, W), 'float64')}")
    image = audit_image(H, W, seed)
    golden_model = build(arch, seed=seed, dtype="float64", init=init)
    golden, _ = golden_dump(golden_model, prepare(image, "float64")[None])
    ci = layer_inputs(golden_model.plan, H, W)
    models = {"float64": golden_model}
    results = []
    for dt in dtypes:
        if dt not in models:     # the float64 weights cast: what build(dtype=dt) makes, without recalibrating
            models[dt] = build(golden_model.config, weights={k: v.astype(dt) for k, v in golden_model.params.items()},
                               dtype=dt)
        tol = SUGGESTED_TOLERANCES[dt]
        for i, m in enumerate(mutants):
            if progress is not None:
                progress(f"{dt} {m.name if m else 'none'}")
            tensors, note = run_mutant(models[dt], m, image)
            report = compare(golden, tensors, rtol=tol["rtol"], atol=tol["atol"])
            first = report.first_divergence
            expected = tuple(m.where(golden_model.plan, ci)) if m else ()
            results.append(Result(
                m.name if m else "none", m.kind if m else "-", dt, not report.passed,
                first.name if first else None, first.max_rel if first else math.nan,
                expected, bool(first and first.name in expected),
                m.equivalent(golden_model.plan, ci) if m else None,
                note or (first.note if first and first.status == "shape" else ""),
                max((r.max_rel for r in report.compared if math.isfinite(r.max_rel)), default=math.nan)))
    return results


def audit_bytes(arch, size, dtypes=DTYPES) -> int:
    """Memory the audit needs: the float64 golden, one mutant's every tensor at a time (a
    mutant that drops a stride keeps tensors up to four times larger), compare's float64
    copies, the weights in each dtype and the audit image's float64 planes."""
    plan = layer_plan(get_arch(arch))
    shape = (1, 3, *size)
    weights = sum(int(np.prod(s)) for s in param_shapes(plan).values())
    need = memory_estimate(plan, shape, "float64", "golden") + weights * 8
    for dt in set(dtypes) - {"float64"}:
        need += weights * np.dtype(dt).itemsize
    worst = max(memory_estimate(plan, shape, dt, "golden") for dt in dtypes)
    return need + 4 * worst + 8 * size[0] * size[1] * 8


def summary(results) -> dict:
    """Counts: non-equivalent mutants, how many were caught and located, per dtype."""
    out = {}
    for dt in sorted({r.dtype for r in results}):
        rows = [r for r in results if r.dtype == dt and r.mutant != "none"]
        live = [r for r in rows if not r.equivalent]
        control = [r for r in results if r.dtype == dt and r.mutant == "none"]
        out[dt] = {"mutants": len(rows), "non_equivalent": len(live),
                   "caught": sum(r.caught for r in live), "located": sum(r.caught and r.located for r in live),
                   "equivalent_passed": sum(not r.caught for r in rows if r.equivalent),
                   "unmutated_passes": all(not r.caught for r in control)}
    return out


def _rel(v):
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2g}"


def format_table(results, title="") -> str:
    """A Markdown table: one row per mutant, one column group per dtype."""
    dts = [d for d in DTYPES if any(r.dtype == d for r in results)]
    by = {(r.mutant, r.dtype): r for r in results}
    names = list(dict.fromkeys(r.mutant for r in results))
    head = "| mutant | bug lives at | " + " | ".join(f"{d}: first divergence (rel. error)" for d in dts) + " |"
    lines = [title, "", head, "|---|---|" + "---|" * len(dts)] if title else [head, "|---|---|" + "---|" * len(dts)]
    for n in names:
        r0 = by[(n, dts[0])]
        where = ", ".join(r0.expected) or "-"
        cells = []
        for d in dts:
            r = by[(n, d)]
            if not r.caught:
                cell = f"passes (worst {_rel(r.worst_rel)})"
            else:
                cell = f"{r.first} ({_rel(r.max_rel) if not math.isnan(r.max_rel) else 'shape'})"
                if not r.located and not r.equivalent and n != "none":
                    cell += " NOT AT THE BUG"
            cells.append(cell + ("" if r.ok else " **FAILS AUDIT**"))
        label = n if not r0.equivalent else f"{n} (equivalent: {r0.equivalent})"
        lines.append(f"| {label} | {where} | " + " | ".join(cells) + " |")
    for d, s in summary(results).items():
        lines.append(f"\n{d}: {s['caught']} of {s['non_equivalent']} non-equivalent mutants caught, "
                     f"{s['located']} at the tensor where the bug lives; {s['equivalent_passed']} equivalent "
                     f"mutant(s) pass; unmutated forward {'passes' if s['unmutated_passes'] else 'FAILS'}")
    return "\n".join(lines)
