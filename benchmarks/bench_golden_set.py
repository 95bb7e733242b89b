"""golden-set's throughput against plain loops of model.forward, and a worker's memory.

    python benchmarks/bench_golden_set.py                        # ResNeXt50_32x4d float64, 224, batch 1
    python benchmarks/bench_golden_set.py --images 128 --repeats 5 --json out.json
    python benchmarks/bench_golden_set.py --memory               # ResNeXt101_32x48d_wsl, float32 and float64

Speed (same run, interleaved, medians of --repeats rounds). The same N preprocessed inputs
(generated images through PaddleClas's preset, in an .npy) and the same weights (a seeded
model saved to an .npz) go through:

- ``loop 1 thread``: ``model(x[i:i+1])`` for every i, BLAS limited to 1 thread (threadpoolctl);
- ``loop 2 threads``: the same with BLAS on both cores (the best one-process loop);
- ``golden-set 1 worker``: ``--workers 1 --threads 1`` (a LocalCluster with one worker);
- ``golden-set default``: the one-machine default, one one-thread worker per core;
- ``loops side by side``: one process per core, each a one-thread loop over every input,
  started together after their warm-up: what independent one-thread processes can get from
  this machine at all (two forward passes side by side share caches and memory bandwidth),
  the ceiling of the default.

Each golden-set figure is given twice: over the shards (from their submission to the last
one written: the rate a long run settles at) and end to end (cluster start, the model loaded
in the workers, the store created, included). The run must be long enough for the first
figure to be that rate. In a short run one worker waits for the other's last shard, and each
shard's fixed cost (the task's round trip, the store's writes) is spread over few images. With
32 images (shards of 8) the default measured 1.69x the one-thread loop and 91 % of the
side-by-side lane. With the default 128 (shards of 32) it measured 1.80-1.86x and 100 %, in
the same session on the same 2-core AMD EPYC. Targets: golden-set 1 worker >= 0.9x the
1-thread loop; the default >= 1.8x the 1-thread loop and >= 1.15x the 2-thread loop.

Memory (--memory): one worker computes two images (one per shard, one BLAS thread unless
--threads); the run record holds the worker's peak
resident memory while loading the model (VmHWM) and, the high-water mark restarted after
the load, while computing shards. Target: shards' peak <= the weights + 1.5 GB.

OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, pinned on some of these machines for old OpenBLAS
builds, are removed (the script re-executes itself) unless --keep-env is given. A hand-run
script, never a test: on a shared machine quote the medians with the CPU named.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import numpy_resnext as nrx                                       # noqa: E402
from numpy_resnext._files import save_npz                        # noqa: E402
from numpy_resnext.dataset import Options, run_golden_set        # noqa: E402
from numpy_resnext.dataset.executors import cores                # noqa: E402
from numpy_resnext.dataset.store import RunStore                 # noqa: E402
from numpy_resnext.dataset.synthetic import generated_image      # noqa: E402
from numpy_resnext.ops.cpu import cpu_name                       # noqa: E402
from numpy_resnext.preprocess import get_preset                  # noqa: E402

PINNED_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def blas_info() -> str:
    import threadpoolctl
    info = [i for i in threadpoolctl.threadpool_info() if i.get("user_api") == "blas"]
    return ", ".join(f"{i['internal_api']} {i.get('version')} ({i.get('architecture')})" for i in info)


def prepare(work, arch, dtype, n, size):
    """(weights .npz, inputs .npy): a seeded model's weights and n preprocessed images."""
    model = nrx.build(arch, seed=0, dtype=dtype)
    weights = os.path.join(work, "weights.npz")
    save_npz(weights, dict(model.params))
    preset = get_preset(f"paddleclas:resize={round(size * 256 / 224)},crop={size}")
    x = np.stack([preset(generated_image(i)) for i in range(n)]).astype(dtype)   # N, 3, size, size
    inputs = os.path.join(work, "inputs.npy")
    np.save(inputs, x)
    return weights, inputs


def loop(weights, inputs, dtype, threads):
    """(images/s, CPU seconds an image) of model(x[i:i+1]) over every input, BLAS limited
    to ``threads``."""
    import threadpoolctl
    model = nrx.build(None, weights=weights, dtype=dtype)
    x = np.load(inputs)
    with threadpoolctl.threadpool_limits(limits=threads, user_api="blas"):
        model(x[:1])                                                  # warm-up
        t0, cpu0 = time.perf_counter(), time.process_time()
        for i in range(len(x)):
            model(x[i:i + 1])
        return len(x) / (time.perf_counter() - t0), (time.process_time() - cpu0) / len(x)


def _side_by_side_worker(weights, inputs, dtype, barrier):
    import threadpoolctl
    model = nrx.build(None, weights=weights, dtype=dtype)
    x = np.load(inputs)
    with threadpoolctl.threadpool_limits(limits=1, user_api="blas"):
        model(x[:1])                                                  # warm-up
        barrier.wait()
        t0 = time.monotonic()                                         # one clock for every process
        for i in range(len(x)):
            model(x[i:i + 1])
        return t0, time.monotonic(), len(x)


def side_by_side(weights, inputs, dtype, processes):
    """images/s of ``processes`` one-thread loops run at once, one process each."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    ctx = multiprocessing.get_context("spawn")
    with ctx.Manager() as manager, ProcessPoolExecutor(processes, mp_context=ctx) as pool:
        barrier = manager.Barrier(processes)
        runs = list(pool.map(_side_by_side_worker, *zip(*[(weights, inputs, dtype, barrier)] * processes)))
    return sum(n for _, _, n in runs) / (max(t1 for _, t1, _ in runs) - min(t0 for t0, _, _ in runs))


def golden_set(weights, inputs, dtype, work, workers, threads, shard):
    """(images/s over the shards, images/s end to end, the run record: its shard_cpu_seconds
    is the workers' CPU time over the shards)."""
    out = os.path.join(work, f"run-{workers}-{threads}.zarr")
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    code = run_golden_set(Options(images=inputs, output=out, weights=weights, dtype=dtype,
                                  workers=workers, threads=threads, shard=shard), stream=open(os.devnull, "w"))
    wall = time.perf_counter() - t0
    if code != 0:
        raise SystemExit(f"golden-set failed with exit status {code}")
    manifest = RunStore(out).manifest
    record = dict(manifest["runs"][-1], weights_nbytes=manifest["weights"]["nbytes"])
    shutil.rmtree(out, ignore_errors=True)
    return record["images_computed"] / record["shard_seconds"], record["images_computed"] / wall, record


def speed(args):
    work = tempfile.mkdtemp(prefix="bench-golden-set-")
    try:
        weights, inputs = prepare(work, args.arch, args.dtype, args.images, args.size)
        n_cores = cores()
        lanes = {"loop 1 thread": [], f"loop {n_cores} threads": [], "golden-set 1 worker": [],
                 "golden-set 1 worker, end to end": [], f"golden-set default ({n_cores} workers)": [],
                 "golden-set default, end to end": [], f"{n_cores} one-thread loops side by side": []}
        cpu = {"loop 1 thread": [], "golden-set 1 worker": [], f"golden-set default ({n_cores} workers)": []}
        shard = max(1, args.images // (2 * n_cores))          # two shards per worker
        for r in range(args.repeats):
            rate, per = loop(weights, inputs, args.dtype, 1)
            lanes["loop 1 thread"].append(rate)
            cpu["loop 1 thread"].append(per)
            lanes[f"loop {n_cores} threads"].append(loop(weights, inputs, args.dtype, n_cores)[0])
            for name, workers in (("golden-set 1 worker", 1), (f"golden-set default ({n_cores} workers)", n_cores)):
                s, e, record = golden_set(weights, inputs, args.dtype, work, workers, 1, shard)
                lanes[name].append(s)
                lanes["golden-set 1 worker, end to end" if workers == 1 else "golden-set default, end to end"].append(e)
                cpu[name].append(record["shard_cpu_seconds"] / record["images_computed"])
            lanes[f"{n_cores} one-thread loops side by side"].append(side_by_side(weights, inputs, args.dtype, n_cores))
            print(f"round {r + 1}/{args.repeats}: " + ", ".join(f"{k} {v[-1]:.2f}" for k, v in lanes.items()),
                  file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in lanes.items()}
    one, best = med["loop 1 thread"], med[f"loop {n_cores} threads"]
    default = med[f"golden-set default ({n_cores} workers)"]
    ratios = {"golden-set 1 worker / loop 1 thread (target >= 0.9)": med["golden-set 1 worker"] / one,
              "golden-set 1 worker end to end / loop 1 thread": med["golden-set 1 worker, end to end"] / one,
              f"default / loop 1 thread (target >= 1.8)": default / one,
              f"default / loop {n_cores} threads (target >= 1.15)": default / best,
              f"default end to end / loop {n_cores} threads": med["golden-set default, end to end"] / best,
              f"loop {n_cores} threads / loop 1 thread": best / one,
              f"{n_cores} loops side by side / loop 1 thread (the machine's ceiling of the first target)":
                  med[f"{n_cores} one-thread loops side by side"] / one,
              f"default / {n_cores} loops side by side (what golden-set keeps of that ceiling)":
                  default / med[f"{n_cores} one-thread loops side by side"]}
    print(f"\n{args.arch} {args.dtype} {args.size}x{args.size}, batch 1, {args.images} images, shards of "
          f"{shard}; {cpu_name()}, {n_cores} cores; {blas_info()}; medians of {args.repeats}\n")
    print("| lane | images/s (median) | all rounds |\n|---|---:|---|")
    for k, v in lanes.items():
        print(f"| {k} | {med[k]:.2f} | {', '.join(f'{x:.2f}' for x in v)} |")
    print("\n| ratio | value |\n|---|---:|")
    for k, v in ratios.items():
        print(f"| {k} | {v:.2f}x |")
    cpu_med = {k: statistics.median(v) for k, v in cpu.items()}
    print("\nCPU seconds an image (one-thread lanes; the process's CPU time, not disturbed by other "
          "jobs' use of the cores):\n\n| lane | CPU s an image (median) | / loop 1 thread |\n|---|---:|---:|")
    for k, v in cpu_med.items():
        print(f"| {k} | {v:.4f} | {v / cpu_med['loop 1 thread']:.3f} |")
    return {"arch": args.arch, "dtype": args.dtype, "images": args.images, "cpu": cpu_name(), "cores": n_cores,
            "blas": blas_info(), "lanes": lanes, "medians": med, "ratios": ratios, "cpu_seconds": cpu}


def memory(args):
    results = []
    for dtype in args.dtypes:
        work = tempfile.mkdtemp(prefix="bench-golden-set-memory-")
        try:
            weights, inputs = prepare(work, args.arch, dtype, 2, args.size)
            threads = args.threads or 1
            _, _, record = golden_set(weights, inputs, dtype, work, 1, threads, 1)
            weights_bytes = record["weights_nbytes"]
            (where, peaks), = record["worker_memory"].items()
            row = {"dtype": dtype, "weights_gb": weights_bytes / 1e9, "load_peak_gb": peaks["load_peak_rss"] / 1e9,
                   "shard_peak_gb": peaks["shard_peak_rss"] / 1e9,
                   "above_weights_gb": (peaks["shard_peak_rss"] - weights_bytes) / 1e9,
                   "seconds_per_image": record["shard_seconds"] / record["images_computed"], "threads": threads}
            results.append(row)
            print(f"{args.arch} {dtype}: weights {row['weights_gb']:.2f} GB; worker peak while loading "
                  f"{row['load_peak_gb']:.2f} GB, while computing {row['shard_peak_gb']:.2f} GB "
                  f"({row['above_weights_gb']:+.2f} GB above the weights; target <= +1.5 GB); "
                  f"{row['seconds_per_image']:.1f} s an image with {threads} BLAS thread(s)", flush=True)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return {"arch": args.arch, "cpu": cpu_name(), "memory": results}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", default=None)
    p.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    p.add_argument("--dtypes", nargs="+", default=["float32", "float64"], help="with --memory")
    p.add_argument("--images", type=int, default=128,
                   help="images per lane (default 128: shards of 32 on 2 cores; with fewer, the "
                        "last shard's wait and each shard's fixed cost weigh on the golden-set lanes)")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="with --memory: BLAS threads of the worker (default 1)")
    p.add_argument("--memory", action="store_true")
    p.add_argument("--keep-env", action="store_true")
    p.add_argument("--json")
    args = p.parse_args(argv)
    pinned = [k for k in PINNED_ENV if k in os.environ]
    if pinned and not args.keep_env:
        env = {k: v for k, v in os.environ.items() if k not in PINNED_ENV}
        os.execve(sys.executable, [sys.executable, os.path.abspath(__file__)] + sys.argv[1:], env)
    args.arch = args.arch or ("ResNeXt101_32x48d_wsl" if args.memory else "ResNeXt50_32x4d")
    result = memory(args) if args.memory else speed(args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
