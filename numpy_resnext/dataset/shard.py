"""One shard of a data-set run, computed where it runs (a Dask worker or the driver itself).

A task receives a :class:`ShardJob` (paths and names, a few kB: never weights or images),
loads the model once per process (:func:`worker_model`, a per-process cache keyed by the
model's spec, with the BLAS thread count set explicitly through threadpoolctl), runs the
shard's images one at a time (batch 1: every image's bits are independent of the shard
it falls in and of the run's layout), and writes the shard's chunks of the store, the done
flag last (:mod:`.store`). An image that cannot be read or preprocessed is recorded with its
message and NaN logits; anything else that goes wrong fails the task.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from typing import NamedTuple

import numpy as np

from .. import __version__
from .._optional import require
from ..archs import ArchConfig
from ..checksums import file_sha256, params_sha256, tensor_digest
from ..errors import InputError, ResNeXtError
from ..model import build
from . import store
from .sources import SourceSpec, load_item


class ModelSpec(NamedTuple):
    """What builds the model in a worker: the architecture (a name or a config dict), an
    absolute weights path or None (seeded), dtype, seed, init and the EMA choice."""

    arch: object
    weights: str | None
    dtype: str
    seed: int = 0
    init: str = "calibrated"
    ema: bool | None = None

    def build(self):
        arch = ArchConfig.from_dict(self.arch) \
            if isinstance(self.arch, dict) else self.arch
        return build(arch, weights=self.weights, seed=self.seed, dtype=self.dtype, init=self.init,
                     ema=self.ema)


class ShardJob(NamedTuple):
    store: str                 # absolute path of RUN.zarr
    shard: int
    start: int
    ids: tuple                 # the shard's ids, in order
    source: SourceSpec
    model: ModelSpec
    keep: tuple                # names of the kept intermediates (stats / sample)
    sample: int                # images 0 .. sample-1 keep their full intermediates
    save_inputs: bool
    input_shape: tuple
    threads: int               # BLAS threads of this process


_LOCK = threading.Lock()
_CACHE: dict = {}              # per process: "spec" -> the ModelSpec, "model", "threads", "sha"


def set_blas_threads(threads: int) -> None:
    """Limit BLAS (OpenBLAS, MKL, BLIS) to ``threads`` threads in this whole process."""
    if _CACHE.get("threads") != threads:
        threadpoolctl = require("threadpoolctl", "setting the BLAS threads of a worker")
        threadpoolctl.threadpool_limits(limits=int(threads), user_api="blas")
        _CACHE["threads"] = threads


def peak_rss(reset=False):
    """This process's resident high-water mark in bytes (Linux's VmHWM; None elsewhere);
    ``reset`` starts a new high-water mark from the present size afterwards."""
    try:
        with open("/proc/self/status") as f:
            peak = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmHWM:"))
        if reset:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        return peak
    except (OSError, StopIteration, ValueError):
        return None


def worker_model(spec: ModelSpec, threads: int):
    """This process's model for ``spec``, built on first use (the weights are read from
    their path here, once per process); one model is kept at a time. The peak memory of the
    build is kept, and the high-water mark restarted, so that shards report their own."""
    with _LOCK:
        set_blas_threads(threads)
        if _CACHE.get("spec") != spec:
            _CACHE.pop("model", None)
            _CACHE.update(model=spec.build(), spec=spec, sha=None)
            _CACHE["load_peak"] = peak_rss(reset=True)
        return _CACHE["model"]


def probe(spec: ModelSpec, threads: int) -> dict:
    """What the driver records about the model, computed where it is loaded: its config,
    parameter and weight-file sha256, size, and this process's versions."""
    model = worker_model(spec, threads)
    with _LOCK:
        if _CACHE.get("sha") is None:
            _CACHE["sha"] = params_sha256(model.params)
    zarr = require("zarr", "a data-set run store (Zarr v3)")
    return {"config": model.config.to_dict(), "params_sha256": _CACHE["sha"],
            "tensors": len(model.params), "nbytes": int(sum(a.nbytes for a in model.params.values())),
            "file_sha256": file_sha256(spec.weights) if spec.weights else None,
            "names": model.intermediate_names(), "host": socket.gethostname(), "pid": os.getpid(),
            "versions": {"numpy_resnext": __version__, "numpy": np.__version__, "zarr": zarr.__version__}}


def warm(spec: ModelSpec, threads: int) -> int:
    """Load this process's model now (before the shards); the bytes of its weights."""
    return int(sum(a.nbytes for a in worker_model(spec, threads).params.values()))


def tensor_stats(a) -> np.ndarray:
    """(6,) float64: mean, std, min, max, max |x|, L2 norm of one image's tensor (NumPy's
    pairwise sums, not BLAS: the same bits whatever the BLAS thread count)."""
    a = np.ascontiguousarray(a, np.float64).reshape(-1)                        # elements
    return np.array([a.mean(), a.std(), a.min(), a.max(), np.abs(a).max(), np.sqrt(np.sum(a * a))])


def _one(job, model, item, index, root):
    """(x, logits, kept) of one image; raises what the source or the model raised."""
    x = load_item(job.source, item, index)
    if tuple(x.shape) != tuple(job.input_shape):
        raise InputError(f"image {item!r}: the model input is {tuple(x.shape)}, this run's "
                         f"inputs are {tuple(job.input_shape)}")
    x = np.ascontiguousarray(x, dtype=model.dtype)                            # 3, H, W
    if not np.isfinite(x).all():
        raise InputError(f"image {item!r}: the input holds NaN or infinity")
    if job.keep:
        logits, kept = model.forward(x[None], keep=list(job.keep))
    else:
        logits, kept = model(x[None]), {}
    if index < job.sample:                      # this image's full intermediates, chunk by chunk
        for name, value in kept.items():
            root[f"sample/{name}"][index] = value[0]
    return x, logits[0], kept


def run_shard(job: ShardJob) -> dict:
    """Compute and write one shard; returns a summary (shard, images, failed, seconds, where)."""
    t0, cpu0 = time.perf_counter(), time.process_time()
    model = worker_model(job.model, job.threads)
    root = store.open_root(job.store)
    attempt = store.start_attempt(root, job.shard)
    n = len(job.ids)
    result = {"logits": np.full((n, model.config.num_classes), np.nan, model.dtype),
              "sha256": np.zeros((n, 32), np.uint8), "errors": [""] * n,
              "stats": {name: np.full((n, len(store.STATS)), np.nan) for name in job.keep}}
    if job.save_inputs:
        result["inputs"] = np.full((n,) + tuple(job.input_shape), np.nan, model.dtype)
    for j, item in enumerate(job.ids):
        try:
            x, logits, kept = _one(job, model, item, job.start + j, root)
        except (ResNeXtError, OSError) as exc:
            result["errors"][j] = f"{type(exc).__name__}: {str(exc)[:500]}"
            continue
        result["logits"][j] = logits
        result["sha256"][j] = np.frombuffer(tensor_digest(x), np.uint8)
        for name in job.keep:
            result["stats"][name][j] = tensor_stats(kept[name][0])
        if job.save_inputs:
            result["inputs"][j] = x
    store.write_shard(root, job.start, job.start + n, result)
    store.mark_done(root, job.shard)
    return {"shard": job.shard, "images": n, "failed": sum(bool(e) for e in result["errors"]),
            "attempt": attempt, "seconds": time.perf_counter() - t0,
            "cpu_seconds": time.process_time() - cpu0,
            "where": f"{socket.gethostname()}:{os.getpid()}", "peak_rss": peak_rss(),
            "load_peak_rss": _CACHE.get("load_peak")}


__all__ = ["ModelSpec", "ShardJob", "peak_rss", "probe", "run_shard", "set_blas_threads",
           "tensor_stats", "warm", "worker_model"]
