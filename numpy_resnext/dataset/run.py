"""A golden-set run from start to end: source, model, manifest and fingerprint, the store
(new or resumed), the shards still missing, progress on stderr, the run record.

1. The source is listed in the driver (ids and labels only; no image is decoded here).
2. The executor starts, and one worker loads the model and describes it (:func:`.shard.probe`):
   the driver never loads the weights, so a 6.6 GB model is not held a third time.
3. The manifest's fingerprint hashes what fixes the results (:data:`.store.FINGERPRINT_FIELDS`).
   An existing store with the same fingerprint is resumed: only shards whose done flag is
   not set are computed. A different fingerprint is an error naming the fields that differ.
4. Shards are submitted; each one's summary updates the progress line (shards done/total,
   counting earlier runs, images/s over this run, ETA). A shard that cannot be computed is
   named at the end, and the exit status is 1; otherwise 0, failed images included (they are
   recorded in the store: ``set-status`` lists them).
"""

from __future__ import annotations

import math
import os
import platform
import sys
import time
from datetime import datetime, timezone
from typing import NamedTuple

from .. import __version__
from .._optional import require
from .._select import Selection
from ..archs import ArchConfig, get_arch
from ..bounded import clip_list
from ..errors import InputError
from ..preprocess import get_preset
from ..shapes import output_shapes
from . import store as store_module
from .executors import KEY_PREFIX, DaskExecutor, SerialExecutor, cores, machine_memory
from .shard import ModelSpec, ShardJob
from .sources import open_source

WORKER_HEADROOM = 1.5e9          # bytes a worker needs beyond its weights (activations, buffers)


class Options(NamedTuple):
    images: str
    output: str
    arch: object = None
    weights: str | None = None
    dtype: str = "float64"
    seed: int = 0
    init: str = "calibrated"
    ema: bool | None = None
    preprocess: str = "paddleclas"
    keep: tuple | None = None
    sample: int = 0
    shard: int | None = None
    workers: int | None = None       # None: one per core; 0: this process
    scheduler: str | None = None
    threads: int | None = None       # BLAS threads per worker
    labels: str | None = None
    save_inputs: bool = False
    limit: int | None = None
    image_root: str | None = None


def _now():
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def duration(seconds: float) -> str:
    """'3h07m', '4m05s' or '12s'."""
    s = int(round(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else (f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s")


def default_shard_size(n: int) -> int:
    """64 images, or fewer so that a small set still makes 16 shards."""
    return max(1, min(64, math.ceil(n / 16)))


class Progress:
    """'shards 12/40 (5 before this run), 118/640 images, 3.2 images/s, ETA 2m43s' on stderr."""

    def __init__(self, shards, done_before, images_total, images_before, stream=None):
        self.shards, self.done = shards, done_before
        self.before = done_before
        self.images_total, self.images_done = images_total, images_before
        self.computed = 0
        self.stream = stream or sys.stderr
        self.start = time.perf_counter()
        self.last = -1e9

    def line(self):
        elapsed = time.perf_counter() - self.start
        rate = self.computed / elapsed if elapsed > 0 else 0.0
        left = self.images_total - self.images_done
        eta = duration(left / rate) if rate > 0 else "?"
        return (f"[{elapsed:7.1f}s] golden-set: shards {self.done}/{self.shards} ({self.before} before "
                f"this run), {self.images_done}/{self.images_total} images, {rate:.2f} images/s, ETA {eta}")

    def update(self, images, force=False):
        self.done += 1
        self.computed += images
        self.images_done += images
        now = time.perf_counter()
        if force or now - self.last >= 1.0 or self.done == self.shards:
            self.last = now
            print(self.line(), file=self.stream, flush=True)


def _executor(o: Options):
    if o.scheduler:
        return DaskExecutor(0, o.threads or 1, o.scheduler)
    workers = cores() if o.workers is None else o.workers
    if workers < 0:
        raise InputError(f"--workers must be 0 (this process) or more, found {workers}")
    if workers == 0:
        return SerialExecutor(o.threads or cores())
    return DaskExecutor(workers, o.threads or max(1, cores() // workers))


def _model_spec(o: Options) -> ModelSpec:
    arch = o.arch
    if arch is not None and not isinstance(arch, str):
        arch = get_arch(arch).to_dict()              # a custom ArchConfig travels as a dict
    elif arch is not None:
        get_arch(arch)                               # an unknown name fails here, not in a worker
    weights = os.path.abspath(o.weights) if o.weights else None
    if weights and not os.path.exists(weights):
        raise InputError(f"--weights {o.weights!r} does not exist")
    return ModelSpec(arch, weights, o.dtype, o.seed, o.init, o.ema)


def _kept(keep, names):
    if not keep:
        return []
    selection = Selection(list(keep))
    chosen = [n for n in names if selection.matches(n)]
    if not chosen:
        raise InputError(f"--keep {','.join(keep)}: matches no tensor name; see "
                         "`numpy-resnext summary ARCH` for the names")
    return chosen


def _existing_shard_size(path):
    """The shard size stored at ``path`` when it is a run store (a resumed run keeps it)."""
    if os.path.exists(os.path.join(os.fspath(path), "zarr.json")):
        return store_module.RunStore(path).shard_size
    return None


def make_manifest(o, source, info, preset, keep, shard_size) -> dict:
    config = info["config"]
    fields = {"format_version": store_module.FORMAT_VERSION, "arch": config,
              "weights_params_sha256": info["params_sha256"], "dtype": o.dtype,
              "preprocessing": preset.to_dict() if preset else None,
              "source_kind": source.spec.kind, "list_sha256": source.list_sha256,
              "images": len(source.ids), "input_shape": list(source.input_shape),
              "shard_size": shard_size, "keep": keep, "sample": min(o.sample, len(source.ids)),
              "save_inputs": bool(o.save_inputs)}
    weights = ({"source": "seeded", "seed": o.seed, "init": o.init} if not o.weights else
               {"source": os.path.abspath(o.weights), "file_sha256": info["file_sha256"]})
    weights.update(params_sha256=info["params_sha256"], tensors=info["tensors"], nbytes=info["nbytes"])
    return {"format": store_module.FORMAT, "format_version": store_module.FORMAT_VERSION,
            "fingerprint": store_module.fingerprint(fields), "fingerprint_fields": fields,
            "arch": {"name": config["name"], "config": config}, "weights": weights, "dtype": o.dtype,
            "classes": config["num_classes"], "images": fields["images"], "shard_size": shard_size,
            "sample": fields["sample"], "save_inputs": fields["save_inputs"],
            "input_shape": fields["input_shape"], "preprocessing": fields["preprocessing"],
            "source": source.describe(), "keep": keep, "stats": list(store_module.STATS),
            "input_sha256_definition": "sha256 of each model input's C-order little-endian bytes",
            "versions": {**info["versions"], "python": platform.python_version()}, "runs": []}


def _prepare(o: Options):
    """(source, model spec, shard size, output path), every check that needs no worker done."""
    if o.sample < 0:
        raise InputError(f"--sample must be 0 or more, found {o.sample}")
    get_preset(o.preprocess, None)                     # a bad spec fails before anything starts
    for module in ("zarr", "threadpoolctl"):           # and so does a missing extra
        require(module, "golden-set")
    source = open_source(o.images, None, o.limit, o.labels, o.image_root)
    spec = _model_spec(o)
    shard_size = o.shard or _existing_shard_size(o.output) or default_shard_size(len(source.ids))
    if shard_size < 1:
        raise InputError(f"--shard must be at least 1, found {shard_size}")
    output = os.path.abspath(o.output)
    if not os.path.isdir(os.path.dirname(output)):
        raise InputError(f"--output {o.output!r}: directory {os.path.dirname(output)!r} does not exist")
    return source, spec, shard_size, output


def _describe_model(o, executor, spec, source, output, stream):
    """(probe info, the source with its preset, kept names): the model loaded by the workers."""
    if isinstance(executor, DaskExecutor):
        executor.check_paths([p for p in (os.path.dirname(output), spec.weights, source.spec.path) if p])
    print(f"golden-set: loading the model where the shards run ({executor.describe()['executor']})",
          file=stream, flush=True)
    info = executor.probe(spec)
    classes = info["config"]["num_classes"]
    if source.spec.kind not in ("npy", "npz"):
        preset = get_preset(o.preprocess, info["config"]["name"])
        source = source._replace(spec=source.spec._replace(preset=preset), input_shape=(3, preset.crop, preset.crop))
    bad = sorted(int(v) for v in set(source.labels.tolist()) if v >= classes)
    if bad:
        raise InputError(f"labels {clip_list(bad, 5)} are not classes of a {classes}-class model")
    if isinstance(executor, DaskExecutor) and not o.scheduler:
        need = (info["nbytes"] + WORKER_HEADROOM) * executor.workers
        if machine_memory() and need > machine_memory():
            raise InputError(f"{executor.workers} workers need about {need / 1e9:.1f} GB (the weights, "
                             f"{info['nbytes'] / 1e9:.1f} GB, and 1.5 GB each); this machine has "
                             f"{machine_memory() / 1e9:.1f} GB: use fewer --workers")
    return info, source, _kept(o.keep, info["names"])


def _open_or_create(output, manifest, source, info, keep, dtype):
    """(store, resumed)."""
    run_store = store_module.open_for_run(output, manifest)
    if run_store is not None:
        return run_store, True
    config = ArchConfig.from_dict(info["config"])
    shapes = {r["name"]: r["shape"] for r in output_shapes(config, *source.input_shape[1:])}
    return store_module.create(output, manifest, source.ids, source.labels, info["config"]["num_classes"],
                               {k: shapes[k] for k in keep}, dtype), False


class _Collector:
    """What the shards report: shards computed and failed, failed images, memory per worker."""

    def __init__(self, progress, stream):
        self.progress, self.stream = progress, stream
        self.computed, self.failed, self.images_failed, self.memory = [], {}, 0, {}
        self.cpu_seconds = 0.0

    def done(self, summary):
        self.computed.append(summary["shard"])
        self.images_failed += summary["failed"]
        self.cpu_seconds += summary["cpu_seconds"]
        peaks = self.memory.setdefault(summary["where"], {"load_peak_rss": summary["load_peak_rss"],
                                                          "shard_peak_rss": 0})
        peaks["shard_peak_rss"] = max(peaks["shard_peak_rss"], summary["peak_rss"] or 0)
        self.progress.update(summary["images"])

    def fail(self, shard, why):
        self.failed[shard] = why
        print(f"golden-set: shard {shard} failed: {why}", file=self.stream, flush=True)


def run_golden_set(o: Options, stream=None) -> int:
    """Compute (or resume) a run; the exit status (0 done, 1 a shard failed)."""
    stream = stream or sys.stderr
    t0 = time.perf_counter()
    source, spec, shard_size, output = _prepare(o)
    n = len(source.ids)
    with _executor(o) as executor:
        info, source, keep = _describe_model(o, executor, spec, source, output, stream)
        manifest = make_manifest(o, source, info, source.spec.preset, keep, shard_size)
        run_store, resumed = _open_or_create(output, manifest, source, info, keep, o.dtype)
        done = run_store.done()
        missing = [s for s in range(run_store.n_shards) if not done[s]]
        record = {"started": _now(), "status": "running", **executor.describe(), "host": platform.node(),
                  "numpy_resnext": __version__, "computed": [], "failed": {}}
        manifest = dict(run_store.manifest, runs=run_store.manifest.get("runs", []) + [record])
        run_store.save_manifest(manifest)
        if resumed:
            print(f"golden-set: resuming {output}: {run_store.n_shards - len(missing)} of "
                  f"{run_store.n_shards} shards done in earlier runs", file=stream, flush=True)
        jobs = [ShardJob(output, s, start, tuple(source.ids[start:stop]), source.spec, spec, tuple(keep),
                         manifest["sample"], bool(o.save_inputs), tuple(source.input_shape), executor.threads)
                for s in missing for start, stop in [store_module.shard_bounds(n, shard_size, s)]]
        before = n - sum(len(job.ids) for job in jobs)
        collector = _Collector(Progress(run_store.n_shards, run_store.n_shards - len(missing), n, before,
                                        stream), stream)
        t_shards = time.perf_counter()
        try:
            executor.run(jobs, collector.done, collector.fail, f"{KEY_PREFIX}-{manifest['fingerprint'][:16]}")
        except KeyboardInterrupt:
            record["status"] = "interrupted"
            raise
        else:
            record["status"] = "complete" if not collector.failed else "incomplete"
        finally:
            record.update(finished=_now(), computed=sorted(collector.computed),
                          failed={str(k): v for k, v in sorted(collector.failed.items())},
                          seconds=round(time.perf_counter() - t0, 3),
                          shard_seconds=round(time.perf_counter() - t_shards, 3),
                          images_computed=collector.progress.computed, worker_memory=collector.memory,
                          shard_cpu_seconds=round(collector.cpu_seconds, 3))
            run_store.save_manifest(dict(manifest, runs=manifest["runs"][:-1] + [record]))
    return _report(o, output, run_store, collector, n, stream)


def _report(o, output, run_store, collector, n, stream) -> int:
    failed = collector.failed
    print(f"golden-set: {run_store.n_shards - len(failed)} of {run_store.n_shards} shards done "
          f"({len(collector.computed)} in this run), {n} images"
          + (f", {collector.images_failed} image(s) failed in this run (see `numpy-resnext set-status "
             f"{o.output}`)" if collector.images_failed else "") + f"; {output}")
    if failed:
        print(f"golden-set: error: shard(s) {', '.join(map(str, sorted(failed)))} could not be computed "
              f"({'; '.join(f'{k}: {v}' for k, v in sorted(failed.items()))}); every other shard is done. "
              "Run the same command again to retry them.", file=stream)
        return 1
    return 0


__all__ = ["Options", "default_shard_size", "make_manifest", "run_golden_set"]
