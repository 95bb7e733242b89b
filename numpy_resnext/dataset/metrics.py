"""Per-image and aggregate measures of a candidate's logits against a run's reference logits.

Per image (reference r, candidate c, one row of logits each, in float64):

==================  =========================================================================
top1_agree          argmax c == argmax r (llama.cpp's "same top p", MLPerf's accuracy basis)
top5_has_ref_top1   argmax r is among c's five largest
max_rel             max |c - r| / max |r| (the norm-wise measure ``compare`` uses per tensor)
cosine              <r, c> / (|r| |c|) (torch.ao's numeric suite, Polygraphy)
sqnr_db             20 log10(|r| / |r - c|) (torch.ao's SQNR; inf when equal)
kl                  KL(softmax r || softmax c) in nats (llama.cpp's perplexity tool)
==================  =========================================================================

A candidate row with NaN or infinity where the reference is finite gets max_rel = inf and
no agreement. Images the reference itself could not compute are left out and counted.

Aggregates: the rates, the quantiles 50 / 90 / 99 / 99.9 / max of max_rel, the worst images,
and, where labels exist, both top-1 accuracies and their ratio (MLPerf accepts a port whose
accuracy is at least 99 % of the reference's).

The set passes when every image's max_rel is at most rtol, the top-1 agreement is at least
the minimum, and (only when asked) the accuracy ratio reaches its minimum. Default thresholds
by the candidate's dtype (:data:`DEFAULTS`): the rtol of docs/golden.md's tolerance table, and
a top-1 agreement that a correct candidate of that precision reaches (docs/dataset.md).
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError

TINY = float(np.finfo(np.float64).tiny)
QUANTILES = (("p50", 0.5), ("p90", 0.9), ("p99", 0.99), ("p99.9", 0.999), ("max", 1.0))
# candidate dtype -> default thresholds (rtol from docs/golden.md; agreement: docs/dataset.md)
DEFAULTS = {"float64": {"rtol": 1e-10, "min_top1_agreement": 1.0},
            "float32": {"rtol": 1e-4, "min_top1_agreement": 0.999},
            "float16": {"rtol": 3e-2, "min_top1_agreement": 0.99},
            "bfloat16": {"rtol": 5e-2, "min_top1_agreement": 0.95}}


def _log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)                                        # N, C
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))                     # N, C


def per_image(ref, cand) -> dict:
    """The per-image measures of (N, C) reference and candidate logits, as (N,) arrays."""
    r = np.asarray(ref, np.float64)
    c = np.asarray(cand, np.float64)
    if r.shape != c.shape:
        raise InputError(f"candidate logits {c.shape} do not match the reference's {r.shape}")
    finite = np.isfinite(c).all(axis=1)                                         # N
    d = c - r                                                                   # N, C
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        max_rel = np.abs(d).max(axis=1) / np.maximum(np.abs(r).max(axis=1), TINY)
        rn, cn, dn = (np.sqrt(np.sum(v * v, axis=1)) for v in (r, c, d))         # N
        cosine = np.sum(r * c, axis=1) / (rn * cn)
        sqnr = np.where(dn == 0, np.inf, 20 * np.log10(rn / dn))
        lr = _log_softmax(r)
        kl = np.sum(np.exp(lr) * (lr - _log_softmax(np.where(np.isfinite(c), c, 0.0))), axis=1)
    top_r = r.argmax(axis=1)                                                    # N
    c_clean = np.where(np.isfinite(c), c, -np.inf)                              # N, C
    top_c = c_clean.argmax(axis=1)                                              # N
    top5 = np.argpartition(-c_clean, min(4, c.shape[1] - 1), axis=1)[:, :5]     # N, 5
    return {"top1_ref": top_r, "top1_cand": np.where(finite, top_c, -1),
            "top1_agree": finite & (top_c == top_r),
            "top5_has_ref_top1": finite & (top5 == top_r[:, None]).any(axis=1),
            "max_rel": np.where(finite, max_rel, np.inf), "cosine": np.where(finite, cosine, np.nan),
            "sqnr_db": np.where(finite, sqnr, -np.inf), "kl": np.where(finite, kl, np.inf)}


def _number(v):
    v = float(v)
    return v if math.isfinite(v) else (None if math.isnan(v) else ("inf" if v > 0 else "-inf"))


def defaults(dtype: str) -> dict:
    if dtype not in DEFAULTS:
        raise InputError(f"no default thresholds for a {dtype} candidate; give --rtol and "
                         f"--min-top1-agreement, or --candidate-dtype one of {', '.join(DEFAULTS)}")
    return DEFAULTS[dtype]


def aggregate(per: dict, ids, labels, rtol, min_top1, min_accuracy_ratio=None, worst=10) -> dict:
    """The report of ``per`` (from :func:`per_image`, over the compared images only)."""
    n = len(ids)
    if n == 0:
        raise InputError("no image to compare: the reference has no computed logits")
    rel = per["max_rel"]
    order = np.argsort(-np.where(np.isnan(rel), np.inf, rel), kind="stable")[:worst]
    report = {"images": n, "top1_agreement": float(per["top1_agree"].mean()),
              "top5_contains_ref_top1": float(per["top5_has_ref_top1"].mean()),
              "max_rel": {k: _number(np.quantile(rel, q, method="higher")) for k, q in QUANTILES},
              "cosine": {"min": _number(np.nanmin(per["cosine"])) if np.isfinite(per["cosine"]).any() else None,
                         "mean": _number(np.nanmean(per["cosine"])) if np.isfinite(per["cosine"]).any() else None},
              "sqnr_db": {"min": _number(per["sqnr_db"].min()), "median": _number(np.median(per["sqnr_db"]))},
              "kl": {"mean": _number(per["kl"].mean()), "max": _number(per["kl"].max())},
              "worst": [{"id": ids[i], "max_rel": _number(rel[i]), "ref_top1": int(per["top1_ref"][i]),
                         "cand_top1": int(per["top1_cand"][i])} for i in order],
              "thresholds": {"rtol": rtol, "min_top1_agreement": min_top1,
                             "min_accuracy_ratio": min_accuracy_ratio}}
    labelled = labels >= 0
    if labelled.any():
        acc_r = float((per["top1_ref"][labelled] == labels[labelled]).mean())
        acc_c = float((per["top1_cand"][labelled] == labels[labelled]).mean())
        ratio = acc_c / acc_r if acc_r > 0 else None
        report["accuracy"] = {"labelled": int(labelled.sum()), "reference": acc_r, "candidate": acc_c,
                              "ratio": ratio, "meets_99_percent": ratio is not None and ratio >= 0.99}
    checks = {"every image within rtol": bool(np.all(rel <= rtol)),
              "top-1 agreement": report["top1_agreement"] >= min_top1}
    if min_accuracy_ratio is not None:
        ratio = report.get("accuracy", {}).get("ratio")
        if ratio is None:
            raise InputError("--min-accuracy-ratio needs labels and a reference accuracy above 0")
        checks["accuracy ratio"] = ratio >= min_accuracy_ratio
    report["checks"] = checks
    report["pass"] = all(checks.values())
    return report


__all__ = ["DEFAULTS", "QUANTILES", "aggregate", "defaults", "per_image"]
