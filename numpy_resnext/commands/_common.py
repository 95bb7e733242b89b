"""Helpers shared by the commands: examples in --help, progress, atomic writes, arrays."""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

from .._checks import as_float_array
from .._files import atomic_write, check_output_path, save_npy  # noqa: F401  (the commands import them from here)
from ..errors import InputError


def add_command(sub, name, help, example, description=None):
    """A sub-parser whose --help ends with a worked example."""
    return sub.add_parser(name, help=help, description=description or help,
                          epilog=f"example:\n  {example}",
                          formatter_class=argparse.RawDescriptionHelpFormatter)


class Progress:
    """Progress lines on stderr, shown only once work has taken more than ``after`` s."""

    def __init__(self, what, total=None, after=2.0, stream=None):
        self.what, self.total, self.after = what, total, after
        self.stream = stream or sys.stderr
        self.start = time.perf_counter()
        self._last = 0.0

    def update(self, done, note=""):
        now = time.perf_counter() - self.start
        if now < self.after or now - self._last < 1.0:
            return
        self._last = now
        frac = f"{done}/{self.total} " if self.total else ""
        print(f"[{now:6.1f}s] {self.what}: {frac}{note}", file=self.stream, flush=True)

    def done(self, note="done"):
        now = time.perf_counter() - self.start
        if now >= self.after:
            print(f"[{now:6.1f}s] {self.what}: {note}", file=self.stream, flush=True)


def load_npy(path, what="input"):
    """A .npy array, never unpickling objects; clear errors for missing or bad files."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(f"{what}: file {path!r} does not exist")
    try:
        value = np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise InputError(f"{what}: {path!r} is not a plain .npy array ({exc})") from None
    except OSError as exc:
        raise InputError(f"{what}: cannot read {path!r} ({exc})") from None
    if not isinstance(value, np.ndarray):         # np.load opens a .npz archive whatever the name
        names = list(value.files)
        value.close()
        raise InputError(f"{what}: expected a plain .npy array, found an .npz archive {path!r} "
                         f"holding {names}; save the one array with numpy.save")
    return value


def cast_input(x, dtype, what="input"):
    """An explicit, announced cast of a loaded input to the model dtype (never integers)."""
    if x.dtype.kind in "iub":
        raise InputError(f"{what}: expected float32 or float64 values, found {x.dtype}; "
                         f"preprocess images to floats first (see `numpy-resnext classify`)")
    x = as_float_array(x, what)
    if x.dtype == np.dtype(dtype):
        return x
    print(f"note: {what}: {x.dtype} values cast to {np.dtype(dtype)} (the model's --dtype)",
          file=sys.stderr)
    return x.astype(dtype)
