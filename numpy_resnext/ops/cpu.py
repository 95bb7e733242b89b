"""The CPU the ops run on: its cache sizes, and elementwise passes walked in cache-sized runs.

Nothing here is tuned to one CPU: sizes come from the cache hierarchy the system reports
(Linux sysfs), with a stated default where it reports nothing.

The forward runs on one Python thread; NumPy's BLAS (OpenBLAS in NumPy's wheels) uses its
own threads inside every matrix product. Splitting the convolutions' column blocks and
the 1x1 products over Python threads as well (with OpenBLAS held to one thread meanwhile)
was measured in benchmarks/ and left out: it made single wide-group convolutions faster
but the whole forward no faster, because OpenBLAS's workers keep spinning for a while
after each multi-threaded product and take the core from the thread that runs next
(benchmarks/README.md has the figures).
"""

from __future__ import annotations

import functools
import glob

import numpy as np


@functools.lru_cache(maxsize=None)
def cache_size(level, default):
    """Bytes of the per-core data (or unified) cache at ``level`` (Linux sysfs), else ``default``."""
    for d in sorted(glob.glob("/sys/devices/system/cpu/cpu0/cache/index*")):
        try:
            with open(f"{d}/level") as f:
                lv = int(f.read())
            with open(f"{d}/type") as f:
                kind = f.read().strip()
            with open(f"{d}/size") as f:
                text = f.read().strip()
        except (OSError, ValueError):
            continue
        if lv == level and kind in ("Data", "Unified") and text[:-1].isdigit():
            return int(text[:-1]) << {"K": 10, "M": 20}.get(text[-1], 0)
    return default


@functools.lru_cache(maxsize=None)
def cpu_name() -> str:
    """The CPU's model name (Linux /proc/cpuinfo), or "unknown" where the system does not say."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def l2_bytes():
    """The per-core L2 cache (2 MB when the system does not say)."""
    return cache_size(2, 2 << 20)


def row_view(x):
    """The (N*H, W*C) view of an (N, C, H, W) array stored channels-last, else None."""
    if not isinstance(x, np.ndarray) or x.ndim != 4:
        return None
    xh = x.transpose(0, 2, 3, 1)
    if not xh.flags.c_contiguous:
        return None
    N, H, W, C = xh.shape
    return xh.reshape(N * H, W * C)


def rows(fn, x, *others, vectors=()):
    """Call ``fn(xs, *others_s, *vectors_b)`` on ``x`` and ``others`` (arrays of x's shape
    (N, C, ...)) in runs of rows, each run at most half an L2 cache; ``vectors`` are
    length-C per-channel vectors, given to ``fn`` in a form that broadcasts against a run.

    When x and every one of ``others`` are (N, C, H, W) stored channels-last, a run is a
    slice of their (N*H, W*C) views: one image row per view row, so NumPy's inner loop
    runs over a whole row (W*C values, each vector tiled W times) instead of C values at
    a time (BatchNorm over a (8, 256, 56, 56) array: 3.7 -> 2.6 ms, ReLU 2.0 -> 1.3 ms;
    benchmarks/README.md), and each pass ``fn`` makes over a run finds it in cache. Any other layout gets one call
    on the whole arrays with axis 1 moved last (views, no copy) and the vectors as given.
    """
    arrays = (x,) + others
    views = [row_view(a) for a in arrays]
    if any(v is None for v in views) or any(a.shape != x.shape for a in others):
        fn(*(np.moveaxis(a, 1, -1) for a in arrays), *vectors)
        return
    W = x.shape[3]
    tiled = [np.tile(v, W) for v in vectors]                             # W*C each
    # an array passed twice (in place: out is x) gets one view object per run, so NumPy
    # sees the same array as input and output instead of a copy to protect an overlap
    first = [next(i for i, b in enumerate(arrays) if b is a) for a in arrays]
    row_bytes = max(1, views[0][:1].nbytes)
    step = max(1, (l2_bytes() // 2) // row_bytes)                       # rows per run in cache
    for r0 in range(0, views[0].shape[0], step):
        runs = [v[r0:r0 + step] for v in views]
        fn(*(runs[i] for i in first), *tiled)
