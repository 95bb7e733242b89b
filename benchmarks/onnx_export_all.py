"""Export every architecture to ONNX and check it with onnxruntime against the float64 golden.

    python benchmarks/onnx_export_all.py                      # all 17, one subprocess each
    python benchmarks/onnx_export_all.py --archs ResNeXt50_32x4d ResNeXt101_32x48d_wsl
    python benchmarks/onnx_export_all.py --json out.json --dir /tmp/onnx_all

What it does, so the figures can be judged:
- Each architecture runs in its own process under ``/usr/bin/time -v`` (peak RSS of the
  whole process). Three phases, so that numpy-resnext's weights and onnxruntime's copy of
  them are never in memory together: build the seeded model and export it; run
  onnxruntime; rebuild the model and compute the golden. For the export alone, time
  ``numpy-resnext export`` (docs/onnx.md has the 32x48d figures).
- Export: ``numpy_resnext.onnx_export.export_onnx`` of the seeded float32 model with random
  BatchNorm statistics, default settings (float32, 224x224 input, external data over
  512 MiB), timed; the file is checked with onnx.checker (full check) as every export is.
- Check: onnxruntime (CPU provider) runs the file on one seeded 1x3x224x224 input; the
  float64 golden is numpy-resnext's forward of the same (float32) weights in float64, run
  layer by layer so that only one layer's weights exist in float64 at a time (the
  32x48d network would need 6.6 GB otherwise). Reported: max |ort - golden| / max |golden|
  on the logits, and whether top-1 agrees.
- The files are deleted after each architecture unless --keep.

A hand-run script, never a test: it needs a few GB of disk and, for the 32x48d network,
about 9 GB of memory.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


class Float64View(Mapping):
    """Parameters read as float64 one at a time (the walk reads each once per forward)."""

    def __init__(self, params):
        self.params = params

    def __getitem__(self, key):
        return self.params[key].astype(np.float64)

    def __iter__(self):
        return iter(self.params)

    def __len__(self):
        return len(self.params)


def one(arch, folder, keep):
    import onnxruntime as ort

    import numpy_resnext as nrx
    from numpy_resnext.onnx_export import export_onnx
    from numpy_resnext.plan import BN_FIELDS
    from numpy_resnext.walk import ArrayOps, walk
    def seeded():
        model = nrx.build(arch, dtype="float32")
        rng = np.random.default_rng(7)
        for layer in model.plan.convs():
            C = layer.out_channels
            values = {"weight": rng.uniform(0.5, 1.5, C), "bias": rng.normal(0, 0.2, C),
                      "running_mean": rng.normal(0, 0.3, C), "running_var": rng.uniform(0.4, 2.0, C)}
            for f in BN_FIELDS:
                model.params[f"{layer.bn}.{f}"] = values[f].astype(np.float32)
        return model
    # three phases, so that the numpy model and onnxruntime's copy of the weights are never
    # in memory together: build + export, run onnxruntime, rebuild + golden
    t0 = time.perf_counter()
    model = seeded()
    build_s = time.perf_counter() - t0
    path = os.path.join(folder, f"{arch}.onnx")
    info = export_onnx(model, path, progress=False)
    num_params = model.num_params
    del model
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224))
    t = time.perf_counter()
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    got = session.run(["fc"], {"input": x.astype(np.float32)})[0]
    ort_s = time.perf_counter() - t
    del session
    model = seeded()
    golden = walk(model.plan, x, ArrayOps(Float64View(model.params)))
    rel = float(np.abs(got - golden).max() / np.abs(golden).max())
    row = {"arch": arch, "params": num_params, "build_s": build_s, "export_s": info["seconds"],
           "file_bytes": info["file_bytes"], "external": info["data_file"] is not None,
           "nodes": info["nodes"], "ort_s": ort_s, "logits_rel": rel,
           "top1_same": bool(got.argmax() == golden.argmax()),
           "onnxruntime": ort.__version__}
    if not keep:
        for p in (path, info["data_file"]):
            if p and os.path.exists(p):
                os.unlink(p)
    print("ROW " + json.dumps(row), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--archs", nargs="*", default=None, help="architectures (default: all)")
    ap.add_argument("--dir", default="/tmp/numpy_resnext_onnx_all", help="where the files go")
    ap.add_argument("--keep", action="store_true", help="keep the exported files")
    ap.add_argument("--json", default=None, help="write the rows as JSON")
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    if args.one:
        one(args.one, args.dir, args.keep)
        return
    from numpy_resnext.archs import ARCHS
    rows = []
    timer = ["/usr/bin/time", "-v"] if shutil.which("/usr/bin/time") else []
    print(f"{'architecture':<24} {'params':>12} {'export s':>8} {'file MB':>8} {'ext':>4} "
          f"{'peak GB':>7} {'ort s':>6} {'logits rel':>10} top-1")
    for arch in args.archs or list(ARCHS):
        cmd = timer + [sys.executable, __file__, "--one", arch, "--dir", args.dir] + (["--keep"] if args.keep else [])
        proc = subprocess.run(cmd, capture_output=True, text=True)
        found = [line for line in proc.stdout.splitlines() if line.startswith("ROW ")]
        if proc.returncode or not found:
            print(f"{arch}: FAILED\n{proc.stderr[-2000:]}")
            rows.append({"arch": arch, "failed": proc.stderr[-2000:]})
            continue
        row = json.loads(found[0][4:])
        m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
        row["peak_rss_bytes"] = int(m.group(1)) * 1024 if m else None
        rows.append(row)
        peak = f"{row['peak_rss_bytes'] / 1e9:.2f}" if row["peak_rss_bytes"] else "-"
        print(f"{arch:<24} {row['params']:>12,} {row['export_s']:>8.1f} {row['file_bytes'] / 1e6:>8.0f} "
              f"{'yes' if row['external'] else 'no':>4} {peak:>7} {row['ort_s']:>6.1f} "
              f"{row['logits_rel']:>10.2g} {'same' if row['top1_same'] else 'DIFFERS'}", flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
