"""Opening inputs and writing outputs without hangs, tracebacks or half-written files.

Only regular files are opened for reading (and directories where a layout is a directory):
the type is checked with ``os.stat`` before ``open``, and the file is opened with
``O_NONBLOCK`` so that even a path swapped for a FIFO between the two calls cannot block
(the type is checked again on the open descriptor). Directory walks stop at
``Limits.max_dir_depth`` levels. Every ``OSError`` while writing becomes an
:class:`~numpy_resnext.errors.OutputError` naming the path.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat

from ..errors import FormatError, InputError, OutputError
from .limits import check_nbytes, get_limits

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"))


def kind_of(mode: int) -> str:
    """'a FIFO (named pipe)', 'a directory' ... for a st_mode that is not a regular file."""
    for test, name in _KINDS:
        if test(mode):
            return name
    return "not a regular file"


def name_of(path) -> str:
    """A path for a message: as given, cut to 300 characters."""
    text = os.fspath(path)
    text = text.decode("utf-8", "backslashreplace") if isinstance(text, bytes) else text
    return text if len(text) <= 300 else text[:300] + f"... ({len(text)} characters)"


def _stat(path, what):
    try:
        return os.stat(path)
    except FileNotFoundError:
        raise InputError(f"{name_of(path)}: cannot read the {what}: it does not exist") \
            from None
    except (OSError, ValueError) as exc:
        raise InputError(f"{name_of(path)}: cannot read the {what} "
                         f"({getattr(exc, 'strerror', None) or exc})") from None


def check_regular(path, what="file") -> int:
    """The size of ``path`` if it is a regular file (symlinks followed), else InputError."""
    st = _stat(path, what)
    if not stat.S_ISREG(st.st_mode):
        raise InputError(f"{name_of(path)}: cannot read the {what}: it is "
                         f"{kind_of(st.st_mode)}, expected a regular file")
    return st.st_size


def is_regular(path) -> bool:
    """True for a regular file; False for anything else, missing or unreadable."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def is_dir(path) -> bool:
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def open_regular(path, what="file"):
    """(binary file object, size) for a regular file; never blocks on a FIFO or device."""
    check_regular(path, what)
    name = name_of(path)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    except OSError as exc:
        raise InputError(f"{name}: cannot read the {what} ({exc.strerror or exc})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{name}: cannot read the {what}: it is {kind_of(st.st_mode)}, "
                             "expected a regular file")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb"), st.st_size
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path, what="file", limit: int | None = None) -> bytes:
    """The whole content of a regular file, after checking its size against the ceiling."""
    f, size = open_regular(path, what)
    with f:
        check_nbytes(size, f"reading the whole {what}", os.fspath(path))
        if limit is not None and size > limit:
            raise FormatError(f"{os.fspath(path)}: {what} of {size} bytes, more than the "
                              f"{limit} bytes such a file can need")
        return f.read(size)


def first_bytes(path, n: int = 8, what="file") -> bytes:
    """The first ``n`` bytes of a regular file (b'' for an empty one)."""
    f, _ = open_regular(path, what)
    with f:
        return f.read(n)


def check_walk_depth(depth: int, path) -> None:
    """Raise once a directory walk is ``depth`` levels deep beyond the limit."""
    if depth > get_limits().max_dir_depth:
        raise FormatError(f"{name_of(path)}: directories nested more than "
                          f"{get_limits().max_dir_depth} levels deep; not a weight layout")


_WHY = {errno.EACCES: "permission denied", errno.EPERM: "operation not permitted",
        errno.EROFS: "read-only file system", errno.ENAMETOOLONG: "file name too long",
        errno.ENOSPC: "no space left on the device", errno.EDQUOT: "disk quota exceeded",
        errno.ENOENT: "the directory does not exist", errno.EISDIR: "is a directory",
        errno.ENOTDIR: "a parent is not a directory"}


def output_error(path, exc: OSError, what="output") -> OutputError:
    """An OutputError naming ``path`` and why ``exc`` happened, in plain words."""
    why = _WHY.get(exc.errno, exc.strerror or type(exc).__name__)
    return OutputError(f"{name_of(path)}: cannot write the {what}: {why}; nothing was "
                       "written")


@contextlib.contextmanager
def output_errors(path, what="output"):
    """``with output_errors(path): ...`` turns any OSError into an OutputError for ``path``."""
    try:
        yield
    except OutputError:
        raise
    except OSError as exc:
        raise output_error(path, exc, what) from None
