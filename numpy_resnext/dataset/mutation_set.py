"""The mutation audit judged over a set: is each port bug of the catalogue caught by
compare-set's acceptance rule when only the logits of many images are compared?

:mod:`numpy_resnext.golden.mutation_audit` asks whether ``compare`` names the tensor where a
bug lives, on one image with every intermediate dumped. A runtime accepted over a data set
is often judged on its logits alone. Here each mutant (:mod:`numpy_resnext.golden.mutants`)
runs over N seeded generated images (:func:`.synthetic.generated_image` at the audit's size,
normalised as the audit normalises), its logits are compared with the float64 reference's by
:mod:`.metrics` at the default thresholds of its dtype, and it is *caught* when the set fails.
A mutant whose forward stops (a shape mismatch at an add) has no logits: NaN, caught, and
marked "stopped". The unmutated forward and the equivalent mutants must pass.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..golden.catalogue import CATALOGUE, MUTANTS
from ..golden.mutants import MutantOps, prepare
from ..golden.precision import OPS
from ..golden.mutation_audit import DEFAULT_ARCH, DEFAULT_SIZE, DTYPES, layer_inputs, run_mutant
from ..errors import InputError
from ..model import build
from ..walk import walk
from .metrics import aggregate, defaults, per_image
from .synthetic import generated_image

DEFAULT_IMAGES = 16


class SetResult(NamedTuple):
    mutant: str
    dtype: str
    caught: bool               # compare-set fails
    top1_agreement: float
    max_rel_p50: object        # a float, or "inf"
    max_rel_max: object
    checks: dict               # which of compare-set's checks failed
    stopped: bool              # the forward stopped before the logits
    equivalent: str | None

    @property
    def ok(self) -> bool:
        if self.equivalent or self.mutant == "none":
            return not self.caught
        return self.caught


def run_mutants_over_set(arch=DEFAULT_ARCH, size=DEFAULT_SIZE, images=DEFAULT_IMAGES, init="calibrated",
                         dtypes=DTYPES, seed=0, names=None, progress=None) -> list:
    """One :class:`SetResult` per (mutant, dtype), the unmutated forward ("none") first."""
    for n in names or ():
        if n not in MUTANTS:
            raise InputError(f"--mutant: unknown mutant {n!r}; known: {', '.join(MUTANTS)}")
    if images < 1:
        raise InputError(f"--set: the number of images must be at least 1, found {images}")
    mutants = [None] + [m for m in CATALOGUE if names is None or m.name in names]
    H, W = size
    pictures = [generated_image(i, seed, size=(H, W)) for i in range(images)]
    ids = [f"generated-{seed}-{i:06d}" for i in range(images)]
    labels = np.full(images, -1)                     # pattern families are not ImageNet's classes
    golden_model = build(arch, seed=seed, dtype="float64", init=init)
    reference = np.stack([golden_model(prepare(p, "float64")[None])[0] for p in pictures])   # N, classes
    ci = layer_inputs(golden_model.plan, H, W)
    models, results = {"float64": golden_model}, []
    for dt in dtypes:
        if dt not in models:       # the float64 weights cast, as the one-image audit makes them
            models[dt] = build(golden_model.config, weights={k: v.astype(dt) for k, v in
                                                             golden_model.params.items()}, dtype=dt)
        limits = defaults(dt)
        for m in mutants:
            if progress is not None:
                progress(f"{dt} {m.name if m else 'none'}")
            rows, stopped = [], False
            for p in pictures:
                tensors, note = run_mutant(models[dt], m, p, keep=["fc"])
                stopped |= bool(note)
                rows.append(tensors["fc"][0] if "fc" in tensors else np.full(reference.shape[1], np.nan))
            per = per_image(reference, np.stack(rows))
            report = aggregate(per, ids, labels, limits["rtol"], limits["min_top1_agreement"])
            results.append(SetResult(m.name if m else "none", dt, not report["pass"],
                                     report["top1_agreement"], report["max_rel"]["p50"],
                                     report["max_rel"]["max"], report["checks"], stopped,
                                     m.equivalent(golden_model.plan, ci) if m else None))
    return results


def precision_over_set(arch=DEFAULT_ARCH, size=DEFAULT_SIZE, images=DEFAULT_IMAGES, init="calibrated",
                       formats=("float32", "float16", "bfloat16"), seed=0) -> dict:
    """{format: compare-set's report} of a *correct* candidate computing in each format
    (:mod:`numpy_resnext.golden.precision`'s emulation: every op's result rounded), over the
    same seeded set, judged at that format's default thresholds: what the defaults let pass."""
    H, W = size
    pictures = [generated_image(i, seed, size=(H, W)) for i in range(images)]
    ids = [f"generated-{seed}-{i:06d}" for i in range(images)]
    golden_model = build(arch, seed=seed, dtype="float64", init=init)
    reference = np.stack([golden_model(prepare(p, "float64")[None])[0] for p in pictures])   # N, classes
    model = build(golden_model.config, weights={k: v.astype("float32") for k, v in golden_model.params.items()},
                  dtype="float32")
    out = {}
    for fmt in formats:
        ops_class = OPS[fmt]
        ops = ops_class(model.params, model.plan) if issubclass(ops_class, MutantOps) else ops_class(model.params)
        cand = np.stack([walk(model.plan, prepare(p, "float32")[None], ops)[0] for p in pictures])
        limits = defaults(fmt)
        out[fmt] = aggregate(per_image(reference, cand), ids, np.full(images, -1), limits["rtol"],
                             limits["min_top1_agreement"])
    return out


def _rel(v):
    return v if isinstance(v, str) else f"{v:.2g}"


def format_set_table(results, title="") -> str:
    """A Markdown table: per mutant and dtype, top-1 agreement, max_rel median / max, verdict."""
    dts = [d for d in DTYPES if any(r.dtype == d for r in results)]
    by = {(r.mutant, r.dtype): r for r in results}
    lines = ([title, ""] if title else []) + [
        "| mutant | " + " | ".join(f"{d}: top-1 agreement, max_rel median / max" for d in dts) + " |",
        "|---|" + "---|" * len(dts)]
    for name in dict.fromkeys(r.mutant for r in results):
        cells = []
        for d in dts:
            r = by[(name, d)]
            verdict = "stopped, caught" if r.stopped else ("caught" if r.caught else "passes")
            cells.append(f"{r.top1_agreement:.0%}, {_rel(r.max_rel_p50)} / {_rel(r.max_rel_max)}: {verdict}"
                         + ("" if r.ok else " **FAILS AUDIT**"))
        r0 = by[(name, dts[0])]
        label = name if not r0.equivalent else f"{name} (equivalent)"
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    for d in dts:
        rows = [r for r in results if r.dtype == d and r.mutant != "none"]
        live = [r for r in rows if not r.equivalent]
        lines.append(f"\n{d}: {sum(r.caught for r in live)} of {len(live)} non-equivalent mutants caught "
                     f"by compare-set on the logits ({sum(r.caught and r.checks['top-1 agreement'] is False for r in live)} "
                     f"of them also by the top-1 agreement alone); "
                     f"{sum(not r.caught for r in rows if r.equivalent)} equivalent mutant(s) pass; unmutated "
                     f"{'passes' if all(not r.caught for r in results if r.dtype == d and r.mutant == 'none') else 'FAILS'}")
    return "\n".join(lines)


__all__ = ["DEFAULT_IMAGES", "SetResult", "format_set_table", "precision_over_set", "run_mutants_over_set"]
