"""Dask worker plugins that make a shard's task kill its worker, for the fault lanes.

Each wraps :func:`numpy_resnext.dataset.store.mark_done` in the worker process: the shard's
data are written, its done flag not yet, when ``os._exit`` ends the process, as a crash or
the kernel's out-of-memory killer would. Every attempt at the shard appends a line to
``<marker_dir>/attempts``. A plugin runs on every worker, replacements included (Dask calls
``setup`` on each new worker), so "first attempt only" is a marker file created exclusively.
"""

import os

from distributed import WorkerPlugin


class CrashBeforeDone(WorkerPlugin):
    name = "numpy-resnext-crash-before-done"

    def __init__(self, shard, marker_dir, always=False):
        self.shard, self.marker_dir, self.always = shard, str(marker_dir), always

    def setup(self, worker):
        from numpy_resnext.dataset import store
        original = getattr(store.mark_done, "__wrapped__", store.mark_done)
        shard, marker_dir, always = self.shard, self.marker_dir, self.always

        def mark_done(root, s):
            if s == shard:
                with open(os.path.join(marker_dir, "attempts"), "a") as f:
                    f.write(f"{os.getpid()}\n")
                try:
                    os.close(os.open(os.path.join(marker_dir, "crashed"), os.O_CREAT | os.O_EXCL))
                    first = True
                except FileExistsError:
                    first = False
                if always or first:
                    os._exit(1)
            return original(root, s)

        mark_done.__wrapped__ = original
        store.mark_done = mark_done

    def teardown(self, worker):
        from numpy_resnext.dataset import store
        store.mark_done = getattr(store.mark_done, "__wrapped__", store.mark_done)
