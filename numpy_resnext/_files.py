"""Writing files atomically: every file the package writes goes through :func:`atomic_write`.

The data goes to a temporary file in the target's directory, which is then renamed onto the
target (``os.replace``, atomic on POSIX and Windows), so a crash or an error never leaves a
half-written file behind and a reader sees either the old file or the new one. Any
``OSError`` on the way (permission, read-only file system, a name longer than NAME_MAX, a
full disk, an I/O error) becomes an :class:`~numpy_resnext.errors.OutputError` naming the
path. A target that exists must be a regular file (symlinks followed): a rename would
replace a FIFO, a device (``/dev/null`` itself, for root) or a socket with a regular file,
so they are refused; an existing file keeps its permission bits.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
import zipfile

import numpy as np

from ._optional import pyplot
from .bounded.files import check_output_target, output_error
from .errors import InputError, OutputError


def check_output_path(path, what="output", suffixes=()):
    """Raise a clear error now, before any work, if ``path`` cannot be written as a file, or
    (``suffixes``: the extensions the caller writes, e.g. (".npy",)) if its extension names
    another format: ``--output logits.pt`` would get .npy bytes under a torch name."""
    path = os.fspath(path)
    ext = os.path.splitext(path)[1].lower()
    if suffixes and ext and ext not in suffixes:
        raise InputError(f"{what} {path!r}: this writes {' or '.join(suffixes)} files, not {ext!r}; "
                         f"name the output {os.path.splitext(os.path.basename(path))[0]}{suffixes[0]}"
                         + ("; `numpy-resnext convert` writes weight files" if ext in
                            (".pt", ".pth", ".bin", ".safetensors", ".pdparams") else ""))
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise InputError(f"{what} {path!r}: directory {directory!r} does not exist")
    if os.path.isdir(path):
        raise InputError(f"{what} {path!r} is a directory; expected a file name inside it")
    check_output_target(path, what)
    return path


def _umask_mode():
    """The permission bits a plain open() would give a new file (0o666 less the umask)."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _existing_mode(path):
    """The permission bits of the regular file at ``path`` (set-id bits dropped), or None."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode) & 0o1777
    except OSError:
        return None


def atomic_write(path, write, mode=None):
    """Call ``write(tmp_path)`` then rename onto ``path``; a failure leaves no partial file.

    ``mode`` (e.g. 0o644) sets the permission bits; by default an existing file's own, and
    for a new file what a plain open() would give (0o666 less the umask), not the 0600 of
    ``tempfile.mkstemp``.
    """
    path = check_output_path(path)
    mode = _existing_mode(path) if mode is None else mode
    directory = os.path.dirname(os.path.abspath(path))
    suffix = os.path.splitext(path)[1][:16]            # a long suffix must not break mkstemp
    try:
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=directory)
        os.close(fd)
    except OSError as exc:
        raise output_error(path, exc) from None
    try:
        write(tmp)
        os.chmod(tmp, _umask_mode() if mode is None else mode)
        check_output_target(path)              # still no FIFO or device there
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            raise output_error(path, exc) from None
        raise


def save_npy(path, array, mode=None):
    """np.save, atomically; writes exactly ``path`` (no .npy appended)."""
    def write(tmp):
        with open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(array))
    atomic_write(path, write, mode)


def save_npz(path, arrays, compressed=False, mode=None):
    """The dict ``arrays`` as an .npz (what np.savez or savez_compressed writes: one .npy member
    per array, zip64 headers), atomically, to exactly ``path``. The zip is closed on every path:
    NumPy 1.26's savez leaves it open when a write fails, and its finaliser then prints a
    traceback on stderr after the error has been reported."""
    compression = zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED

    def write(tmp):
        with open(tmp, "wb") as f, zipfile.ZipFile(f, "w", compression, allowZip64=True) as z:
            for key, value in arrays.items():
                with z.open(f"{key}.npy", "w", force_zip64=True) as member:
                    np.lib.format.write_array(member, np.asanyarray(value), allow_pickle=False)
    atomic_write(path, write, mode)


def save_json(path, data, mode=None):
    """Write ``data`` as indented JSON text (UTF-8), atomically."""
    text = json.dumps(data, indent=1)

    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
    atomic_write(path, write, mode)


def save_figure(path, fig, dpi=None):
    """Write a matplotlib figure as PNG, atomically, and close it (also on failure)."""
    plt = pyplot()                           # only callers that already drew a figure get here

    def write(tmp):
        fig.savefig(tmp, dpi=dpi, format="png")
    try:
        atomic_write(path, write)
    finally:
        plt.close(fig)
