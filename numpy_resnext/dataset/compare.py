"""compare-set: a candidate's logits over a run's images, judged as ports are accepted.

:func:`compare_set` reads the reference run (it must be complete), the candidate
(:mod:`.candidates`), computes the per-image measures and the aggregates (:mod:`.metrics`)
over the images the reference computed, and, where both sides hold intermediates of the
sample images, the first diverging tensor of each (``compare``'s rule, tensor by tensor in
execution order). Thresholds default by the candidate's dtype (:data:`.metrics.DEFAULTS`).
"""

from __future__ import annotations

import math
from collections import OrderedDict

import numpy as np

from ..errors import InputError
from ..golden import compare
from .candidates import onnx_logits, read_candidate
from .metrics import aggregate, defaults, per_image
from .store import RunStore


def _first_divergences(ref: RunStore, cand_sample, keep, rtol):
    """[{index, id, first, max_rel}] for the sample images both sides hold intermediates of."""
    out, ids = [], ref.ids()
    for index in sorted(cand_sample):
        reference = OrderedDict((name, np.asarray(ref.root[f"sample/{name}"][index])) for name in keep
                                if name in cand_sample[index])
        report = compare(reference, OrderedDict(cand_sample[index]), rtol=rtol, atol=0.0)
        first = report.first_divergence
        out.append({"index": index, "id": ids[index], "compared": len(report.compared),
                    "first": first.name if first else None,
                    "max_rel": (first.max_rel if first and math.isfinite(first.max_rel) else None)})
    return out


def _store_sample(ref: RunStore, cand: RunStore):
    """{index: {name: array}} of the candidate store's sample intermediates shared with ref."""
    names = [n for n in ref.manifest["keep"] if n in cand.kept("sample")]
    if not names or "sample" not in ref.root:
        return {}
    order = {i: k for k, i in enumerate(cand.ids())}
    ids = ref.ids()
    out = {}
    for index in range(int(ref.manifest["sample"])):
        k = order[ids[index]]
        if k < int(cand.manifest["sample"]):
            out[index] = {n: np.asarray(cand.root[f"sample/{n}"][k]) for n in names}
    return out


def compare_set(run, candidate=None, onnx=None, rtol=None, min_top1=None, min_accuracy_ratio=None,
                candidate_dtype=None, images=None, stream=None) -> dict:
    """The report (a JSON-ready dict; ``pass`` is the verdict)."""
    if (candidate is None) == (onnx is None):
        raise InputError("give a CANDIDATE (.npy, .npz or run store) or --onnx MODEL, not both")
    ref = RunStore(run)
    done = ref.done()
    if not done.all():
        raise InputError(f"{ref.path!r}: {int((~done).sum())} of {ref.n_shards} shards are not done; "
                         "finish the reference with golden-set first (set-status lists them)")
    keep = list(ref.manifest["keep"])
    if onnx is not None:
        logits, dtype, sample = onnx_logits(onnx, ref, images, keep, int(ref.manifest["sample"]), stream)
        kind = f"onnx {onnx}"
    else:
        logits, dtype, cand_store = read_candidate(candidate, ref)
        sample = _store_sample(ref, cand_store) if cand_store is not None else {}
        kind = f"{'run store' if cand_store is not None else 'file'} {candidate}"
    dtype = candidate_dtype or dtype
    limits = defaults(dtype) if (rtol is None or min_top1 is None) else {}
    rtol = limits["rtol"] if rtol is None else rtol
    min_top1 = limits["min_top1_agreement"] if min_top1 is None else min_top1
    if rtol < 0 or not 0 <= min_top1 <= 1:
        raise InputError(f"--rtol must be >= 0 and --min-top1-agreement in [0, 1], found {rtol}, {min_top1}")
    errors = ref.errors()
    valid = np.array([not e for e in errors])
    ids = [i for i, ok in zip(ref.ids(), valid) if ok]
    reference = ref.logits()
    per = per_image(reference[valid], np.asarray(logits)[valid])
    report = aggregate(per, ids, ref.labels()[valid], rtol, min_top1, min_accuracy_ratio)
    report.update(reference=ref.path, arch=ref.manifest["arch"]["name"], reference_dtype=ref.manifest["dtype"],
                  candidate=kind, candidate_dtype=dtype, skipped_reference_failures=int((~valid).sum()))
    if sample:
        report["first_divergence"] = _first_divergences(ref, sample, keep, rtol)
    return report


def _fmt(v):
    return v if isinstance(v, str) or v is None else f"{v:.3g}"


def format_report(r: dict) -> str:
    q = r["max_rel"]
    lines = [f"reference {r['reference']} ({r['arch']}, {r['reference_dtype']}); candidate {r['candidate']} "
             f"({r['candidate_dtype']})",
             f"images compared: {r['images']}" + (f" ({r['skipped_reference_failures']} failed in the "
                                                  "reference, left out)" if r["skipped_reference_failures"] else ""),
             f"top-1 agreement {r['top1_agreement']:.4%}; reference top-1 in candidate top-5 "
             f"{r['top5_contains_ref_top1']:.4%}",
             "max |c - r| / max |r| per image: " + ", ".join(f"{k} {_fmt(v)}" for k, v in q.items()),
             f"cosine min {_fmt(r['cosine']['min'])}; SQNR min {_fmt(r['sqnr_db']['min'])} dB, median "
             f"{_fmt(r['sqnr_db']['median'])} dB; KL(ref || cand) mean {_fmt(r['kl']['mean'])}, max {_fmt(r['kl']['max'])}"]
    if "accuracy" in r:
        a = r["accuracy"]
        lines.append(f"accuracy on {a['labelled']} labelled images: reference {a['reference']:.4%}, candidate "
                     f"{a['candidate']:.4%}, ratio {_fmt(a['ratio'])} "
                     + ("(the reference gets none right: no ratio)" if a["ratio"] is None else
                        f"({'meets' if a['meets_99_percent'] else 'misses'} the 99 % rule)"))
    lines.append("worst images: " + ", ".join(f"{w['id']} ({_fmt(w['max_rel'])})" for w in r["worst"][:5]))
    for d in r.get("first_divergence", []):
        lines.append(f"  sample {d['id']}: " + (f"first divergence {d['first']} ({_fmt(d['max_rel'])})"
                                                 if d["first"] else f"all {d['compared']} tensors pass"))
    t = r["thresholds"]
    checks = "; ".join(f"{k} {'ok' if v else 'FAILED'}" for k, v in r["checks"].items())
    lines.append(f"{'PASS' if r['pass'] else 'FAIL'} (rtol {t['rtol']:g}, top-1 agreement >= "
                 f"{t['min_top1_agreement']:g}" + (f", accuracy ratio >= {t['min_accuracy_ratio']:g}"
                                                   if t["min_accuracy_ratio"] is not None else "")
                 + f"): {checks}")
    return "\n".join(lines)


__all__ = ["compare_set", "format_report"]
