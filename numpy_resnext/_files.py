"""Writing files atomically: every file the package writes goes through :func:`atomic_write`.

The data goes to a temporary file in the target's directory, which is then renamed onto the
target (``os.replace``, atomic on POSIX and Windows), so a crash or an error never leaves a
half-written file behind and a reader sees either the old file or the new one.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np

from .errors import InputError


def atomic_write(path, write, mode=None):
    """Call ``write(tmp_path)`` then rename onto ``path``; a failure leaves no partial file.

    ``mode`` (e.g. 0o644) sets the permission bits; by default the file keeps the 0600 that
    ``tempfile.mkstemp`` gives it.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise InputError(f"output {path!r}: directory {directory!r} does not exist")
    if os.path.isdir(path):
        raise InputError(f"output {path!r} is a directory; expected a file name inside it")
    suffix = os.path.splitext(path)[1]
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=directory)
    os.close(fd)
    try:
        write(tmp)
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_npy(path, array):
    """np.save, atomically; writes exactly ``path`` (no .npy appended)."""
    def write(tmp):
        with open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(array))
    atomic_write(path, write)
