"""Conformance: every installed ONNX runtime against numpy-resnext's float64 golden.

One input, one set of weights. The golden is numpy-resnext's float64 forward with every
intermediate kept. The model is exported once per dtype the chosen runtimes need (float32
for onnxruntime and OpenVINO, float64 for onnx.reference) with every intermediate the graph
has as a graph output, each runtime runs it, and :func:`numpy_resnext.golden.compare` (the
error measure and pass rule of the golden files) compares every exposed tensor with the
golden at the runtime's dtype tolerance (:data:`numpy_resnext.golden.SUGGESTED_TOLERANCES`).

Per runtime, a :class:`Row`: logits max relative error, top-1 agreement with the golden,
the worst tensor, the first tensor (in execution order) beyond tolerance, and the error of
every layer (for :mod:`.plot`).
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from dataclasses import asdict, dataclass, field

import numpy as np

from ..bounded import check_memory
from ..golden import LOGITS_NAME, SUGGESTED_TOLERANCES, compare
from ..shapes import describe_run, memory_estimate
from . import OPSET
from .runtimes import RuntimeSkipped, parse_runtimes, precision, run, version
from .save import export
from .testdata import float64_twin


@dataclass
class Row:
    """One runtime's result (``status``: pass, FAIL, skipped or error)."""

    runtime: str
    dtype: str
    status: str
    version: str | None = None
    reason: str = ""
    rtol: float = math.nan
    logits_max_rel: float = math.nan
    top1_agree: int = 0
    top1_total: int = 0
    worst_tensor: str | None = None
    worst_max_rel: float = math.nan
    first_divergence: str | None = None
    compared: int = 0
    seconds: float = math.nan
    layers: list = field(default_factory=list)   # [(name, max_rel)] in execution order

    def to_dict(self):
        def clean(v):
            return None if isinstance(v, float) and not math.isfinite(v) else v
        d = {k: clean(v) for k, v in asdict(self).items()}
        d["layers"] = [[n, clean(e)] for n, e in self.layers]
        return d


@dataclass
class Result:
    arch: str
    input_shape: tuple
    golden_names: list
    rows: list
    opset: int = OPSET
    exports: dict = field(default_factory=dict)  # dtype -> export description

    @property
    def passed(self):
        ran = [r for r in self.rows if r.status in ("pass", "FAIL", "error")]
        return bool(ran) and all(r.status == "pass" for r in ran)

    def to_dict(self):
        return {"arch": self.arch, "input_shape": list(self.input_shape), "opset": self.opset,
                "golden": "numpy-resnext float64 forward", "passed": self.passed,
                "error_definition": "max_rel = max|runtime - golden| / max|golden| per tensor",
                "exports": {k: {kk: vv for kk, vv in v.items() if kk != "exposed"}
                            for k, v in self.exports.items()},
                "rows": [r.to_dict() for r in self.rows]}

    def format(self):
        head = (f"{'runtime':<36} {'dtype':<8} {'status':<8} {'logits rel':>10} {'top-1':>7} "
                f"{'worst tensor':<30} {'first divergence (rtol)':<28}")
        lines = [f"{self.arch}, input {'x'.join(map(str, self.input_shape))}, golden: numpy-resnext "
                 f"float64; error = max|runtime - golden| / max|golden| per tensor", head]
        for r in self.rows:
            name = f"{r.runtime} {r.version}" if r.version else r.runtime
            if r.status in ("skipped", "error"):
                lines.append(f"{name:<36} {r.dtype:<8} {r.status:<8} {r.reason}")
                continue
            worst = f"{r.worst_tensor} {r.worst_max_rel:.2g}"
            first = f"{r.first_divergence or 'none'} ({r.rtol:g})"
            lines.append(f"{name:<36} {r.dtype:<8} {r.status:<8} {r.logits_max_rel:>10.2g} "
                         f"{r.top1_agree:>3}/{r.top1_total:<3} {worst:<30} {first:<28}")
        return "\n".join(lines)


def _row(choice, ver, golden, candidate, seconds):
    tol = SUGGESTED_TOLERANCES[choice.dtype]
    report = compare(golden, candidate, rtol=tol["rtol"], atol=tol["atol"])
    by_name = {r.name: r for r in report.rows}
    compared = report.compared
    worst = max(compared, key=lambda r: r.max_rel if not math.isnan(r.max_rel) else -1.0)
    first = report.first_divergence
    ref, cand = golden[LOGITS_NAME], candidate[LOGITS_NAME].reshape(golden[LOGITS_NAME].shape)
    agree = int((ref.argmax(axis=1) == cand.argmax(axis=1)).sum())
    return Row(choice.name, choice.dtype, "pass" if report.passed else "FAIL", ver,
               rtol=tol["rtol"], logits_max_rel=by_name[LOGITS_NAME].max_rel, top1_agree=agree,
               top1_total=int(ref.shape[0]), worst_tensor=worst.name, worst_max_rel=worst.max_rel,
               first_divergence=first.name if first else None, compared=len(compared),
               seconds=seconds, layers=[(r.name, r.max_rel) for r in report.rows if r in compared])


def conformance_bytes(model, shape) -> int:
    """Memory a conformance run needs: the float64 golden kept whole, a runtime's every
    output in float64 and in float32 (all intermediates are graph outputs) beside it, and
    the weights four times per dtype (the model, its ONNX protos, the runtime's copy)."""
    weights = sum(int(v.size) for v in model.params.values())
    golden = memory_estimate(model.plan, shape, "float64", "golden")
    return 2 * golden + memory_estimate(model.plan, shape, "float32", "golden") \
        + weights * 4 * (8 + 4)


def conformance(model, x, runtimes="onnxruntime,onnx-reference,openvino", workdir=None,
                weights_source=None, log=None) -> Result:
    """Run every chosen runtime on ``model`` (any dtype; the golden is its float64 twin)
    at input ``x`` (N, 3, H, W) and compare with the golden; see the module docstring.

    workdir: where the exported models go (kept); default a temporary directory.
    log:     optional callable(str) for progress lines.
    """
    log = log or (lambda s: None)
    choices = parse_runtimes(runtimes)
    check_memory(conformance_bytes(model, x.shape), "conformance of "
                 f"{describe_run(model.plan, x.shape, 'float64')}")
    golden_model = float64_twin(model)
    x64 = np.asarray(x, dtype=np.float64)
    t0 = time.perf_counter()
    logits, golden = golden_model.forward(x64, keep=True)
    log(f"golden: numpy-resnext float64 forward, {len(golden)} tensors, {time.perf_counter() - t0:.1f} s")
    result = Result(model.config.name, tuple(x64.shape), list(golden), [])
    rows, paths = {}, {}
    for c in choices:
        try:
            rows[c] = version(c.name).split("-")[0]        # OpenVINO appends a build id
            if precision(c.name):
                rows[c] += f" [{precision(c.name).lower()}]"
        except RuntimeSkipped as exc:
            rows[c] = Row(c.name, c.dtype, "skipped", reason=str(exc))
    with tempfile.TemporaryDirectory(prefix="nrx-conformance-") as tmp:
        folder = workdir or tmp
        for c in choices:
            if isinstance(rows[c], Row):
                continue
            if c.dtype not in paths:
                paths[c.dtype] = os.path.join(folder, f"{model.config.name}_{c.dtype}.onnx")
                info = export(golden_model, paths[c.dtype], dtype=c.dtype, size=x64.shape[2:],
                              intermediates=True, weights_source=weights_source, progress=False)
                result.exports[c.dtype] = info
                log(f"exported {paths[c.dtype]} ({info['file_bytes'] / 1e6:.0f} MB, {info['seconds']:.1f} s)")
            ver = rows[c]
            t = time.perf_counter()
            try:
                candidate = run(c.name, paths[c.dtype], x64.astype(c.dtype))
            except RuntimeSkipped as exc:
                rows[c] = Row(c.name, c.dtype, "skipped", ver, reason=str(exc))
                continue
            except Exception as exc:                   # a runtime's own failure is a result too
                rows[c] = Row(c.name, c.dtype, "error", ver,
                              reason=f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
                continue
            rows[c] = _row(c, ver, golden, candidate, time.perf_counter() - t)
            log(f"{c.name} {c.dtype}: {rows[c].status} in {rows[c].seconds:.1f} s")
    result.rows = [rows[c] for c in choices]
    return result
