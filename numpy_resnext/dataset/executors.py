"""Where the shards of a data-set run are computed: in this process, or on Dask.

Both executors have the same three verbs: ``probe(spec)`` (load the model where shards
run and describe it), ``run(jobs, done, failed)`` (compute the shards, calling ``done`` with
each shard's summary and ``failed`` with (shard, why) for a shard that could not be
computed) and ``describe()`` (for the run record).

:class:`DaskExecutor` submits one task per shard with a deterministic key
(``golden-set-<fingerprint>-<shard>``), on a LocalCluster of one-thread worker processes
(the one-machine default) or on the cluster whose scheduler is given. Dask reschedules the
task of a worker that dies (its shard is recomputed from scratch: the done flag was not
written); a task that kills ``distributed.scheduler.allowed-failures`` + 1 workers (default
3 + 1) fails with KilledWorker, and that shard is reported failed while the others go on.
``retries=1`` re-runs a task that raised once (a transient read error). The LocalCluster's
workers never pause or spill (the shards hold no Dask-managed data; the model is
unmanaged memory a pause would wait on forever), and its scheduler gives each worker one
task at a time (``worker-saturation`` 1.0): Dask counts a worker's death against every task
it holds, so a queued shard would otherwise share the blame of the one that killed it. On
a cluster of your own set the same (docs/dataset.md); a shard wrongly blamed is reported
failed and computed by the next run.
"""

from __future__ import annotations

import logging
import os

from .._optional import require
from ..errors import InputError
from . import shard as shard_module

KEY_PREFIX = "golden-set"
LOAD_KILLED = ("loading the model killed every worker that tried (out of memory?): use fewer "
               "--workers, or workers with more memory")
# - the scheduler sends a worker one task at a time (saturation 1.0 x 1 thread), so a worker
#   that dies is blamed for the shard it was running only, not for one queued behind it;
# - workers are spawned without MALLOC_TRIM_THRESHOLD_ (Dask's default sets it to 65536, which
#   turns off glibc's adaptive mmap threshold: every large temporary of a forward pass is then
#   mapped and faulted in anew, 35 % slower on ResNeXt50 float64 here); BLAS stays at 1 thread
#   until the worker sets its own count
LOCAL_CONFIG = {"distributed.worker.memory.pause": False, "distributed.worker.memory.spill": False,
                "distributed.worker.memory.target": False, "distributed.scheduler.worker-saturation": 1.0,
                # no statistical profiler sampling the computing thread every 10 ms, and event-loop
                # health checks once a second instead of every 20 ms: on a machine whose every
                # core runs a worker, what the workers' own threads take comes out of the shards
                "distributed.worker.profile.enabled": False, "distributed.admin.tick.interval": "1s",
                "distributed.nanny.pre-spawn-environ": {"OMP_NUM_THREADS": 1, "MKL_NUM_THREADS": 1,
                                                        "OPENBLAS_NUM_THREADS": 1}}


def cores() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:                              # not on Linux
        return os.cpu_count() or 1


def machine_memory() -> int:
    """Physical memory in bytes (0 when unknown)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return 0


class SerialExecutor:
    """Every shard in this process, one after another (``--workers 0``)."""

    def __init__(self, threads: int):
        self.threads = threads

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def describe(self) -> dict:
        return {"executor": "serial", "workers": 0, "threads": self.threads}

    def probe(self, spec) -> dict:
        return shard_module.probe(spec, self.threads)

    def run(self, jobs, done, failed, key_prefix=KEY_PREFIX) -> None:
        for job in jobs:
            try:
                summary = shard_module.run_shard(job)
            except Exception as exc:           # the shard fails, as a raising task does on Dask
                failed(job.shard, f"{type(exc).__name__}: {str(exc)[:500]}")
            else:
                done(summary)


def _visible(paths):
    """On a worker: the paths it cannot see (a shared file system is needed)."""
    return [p for p in paths if p and not os.path.exists(p)]


class DaskExecutor:
    """Shards as Dask tasks: a LocalCluster of ``workers`` processes, or ``scheduler``'s cluster."""

    def __init__(self, workers: int, threads: int, scheduler: str | None = None):
        self.workers, self.threads, self.scheduler = workers, threads, scheduler
        self.cluster = self.client = None

    def __enter__(self):
        distributed = require("distributed", "golden-set on Dask (--workers N or --scheduler)",
                              "(or run in this process with --workers 0)")
        dask = require("dask", "golden-set on Dask")
        if self.scheduler:
            try:
                self.client = distributed.Client(self.scheduler, timeout="30s")
            except (OSError, TimeoutError) as exc:
                raise InputError(f"--scheduler {self.scheduler!r}: cannot connect ({exc})") from None
        else:
            with dask.config.set(LOCAL_CONFIG):
                self.cluster = distributed.LocalCluster(
                    n_workers=self.workers, threads_per_worker=1, processes=True,
                    dashboard_address=":0", silence_logs=logging.ERROR)
            self.client = distributed.Client(self.cluster)
        return self

    def __exit__(self, *exc):
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
        return False

    def worker_count(self) -> int:
        return len(self.client.scheduler_info(n_workers=-1)["workers"])

    def describe(self) -> dict:
        return {"executor": "dask", "scheduler": self.scheduler or "LocalCluster",
                "workers": self.worker_count(), "threads": self.threads}

    def check_paths(self, paths) -> None:
        """InputError naming each worker that cannot see one of ``paths``."""
        missing = {w: m for w, m in self.client.run(_visible, list(paths)).items() if m}
        if missing:
            raise InputError("workers cannot see paths this run needs (they need a shared file "
                             "system): " + "; ".join(f"{w}: {', '.join(m)}" for w, m in missing.items()))

    def probe(self, spec) -> dict:
        """The model described by one worker, then loaded by every other one (a task pinned
        to each, so the loads run side by side and outside the workers' event loops)."""
        killed = require("distributed.scheduler", "golden-set on Dask").KilledWorker
        future = self.client.submit(shard_module.probe, spec, self.threads, pure=False)
        try:
            info = future.result()
        except killed:
            raise InputError(LOAD_KILLED) from None
        finally:
            future.release()
        warm = [self.client.submit(shard_module.warm, spec, self.threads, pure=False, workers=[w],
                                   allow_other_workers=True)
                for w in self.client.scheduler_info(n_workers=-1)["workers"]]
        try:
            self.client.gather(warm)
        except killed:
            raise InputError(f"{LOAD_KILLED} ({info['nbytes'] / 1e9:.1f} GB of weights each)") from None
        finally:
            for f in warm:
                f.release()
        return info

    def run(self, jobs, done, failed, key_prefix=KEY_PREFIX) -> None:
        distributed = require("distributed", "golden-set on Dask")
        killed = require("distributed.scheduler", "golden-set on Dask").KilledWorker
        futures = {}
        for job in jobs:
            future = self.client.submit(shard_module.run_shard, job, key=f"{key_prefix}-{job.shard:06d}",
                                        pure=False, retries=1)
            futures[future] = job
        for future in distributed.as_completed(list(futures)):
            job = futures.pop(future)
            if future.status == "finished":
                done(future.result())
            else:
                exc = future.exception()
                if isinstance(exc, killed):
                    failed(job.shard, "its task killed every worker it ran on (a crash or out of "
                                      f"memory, {exc.allowed_failures + 1} times: "
                                      "distributed.scheduler.allowed-failures + 1)")
                else:
                    failed(job.shard, f"{type(exc).__name__}: {str(exc)[:500]}")
            future.release()


__all__ = ["DaskExecutor", "KEY_PREFIX", "SerialExecutor", "cores", "machine_memory"]
