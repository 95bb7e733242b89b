"""Opening inputs and writing outputs without hangs, tracebacks or half-written files.

Only regular files are opened for reading (and directories where a layout is a directory):
the type is checked with ``os.stat`` before ``open``, and the file is opened with
``O_NONBLOCK`` so that even a path swapped for a FIFO between the two calls cannot block
(the type is checked again on the open descriptor). A read that fails after the open (an
I/O error of the device) is an InputError naming the file, as a failed open is; the file
is counted in the reading budget of the load under way (:mod:`.budget`). Directory walks
stop at ``Limits.max_dir_depth`` levels. Every ``OSError`` while writing becomes an
:class:`~numpy_resnext.errors.OutputError` naming the path, and an output path that
exists must be a regular file (:func:`check_output_target`): a FIFO, a device or a
directory there is refused, never replaced.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat

from ..errors import FormatError, InputError, OutputError, printable
from .budget import charge, register_file
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
    """A path for a message: as given, control characters escaped, cut to 300 characters."""
    text = os.fspath(path)
    text = text.decode("utf-8", "backslashreplace") if isinstance(text, bytes) else text
    text = printable(text)
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


class Reader:
    """A binary file whose read errors (EIO after a good open, say) are InputErrors
    naming the file; everything else is the file object's own."""

    __slots__ = ("_f", "_label")

    def __init__(self, f, label):
        self._f, self._label = f, label

    def _failed(self, exc):
        return InputError(f"{self._label} ({exc.strerror or type(exc).__name__}; the read "
                          "failed after the file was opened)")

    def read(self, n=-1):
        try:
            return self._f.read(n)
        except OSError as exc:
            raise self._failed(exc) from None

    def readinto(self, buffer):
        try:
            return self._f.readinto(buffer)
        except OSError as exc:
            raise self._failed(exc) from None

    def readline(self, n=-1):
        try:
            return self._f.readline(n)
        except OSError as exc:
            raise self._failed(exc) from None

    def peek(self, n=0):
        try:
            return self._f.peek(n)
        except OSError as exc:
            raise self._failed(exc) from None

    def seek(self, offset, whence=0):
        try:
            return self._f.seek(offset, whence)
        except OSError as exc:
            raise self._failed(exc) from None

    def tell(self):
        return self._f.tell()

    @property
    def file(self):
        """The file object itself, for a caller that maps OSError on its own (the pickle
        reader calls ``read`` once per opcode of its scan: one wrapper less)."""
        return self._f

    def __getattr__(self, name):        # seekable, readable, close, closed, name, mode ...
        return getattr(self._f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()

    def __iter__(self):
        return iter(self.readline, b"")


def open_regular(path, what="file"):
    """(binary file object, size) for a regular file; never blocks on a FIFO or device.
    The file counts in the reading budget of the load under way; its read errors are
    InputErrors naming it (:class:`Reader`)."""
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
        register_file(st, name)
        return Reader(os.fdopen(fd, "rb"), f"{name}: cannot read the {what}"), st.st_size
    except BaseException:
        os.close(fd)
        raise


def read_bytes(path, what="file", limit: int | None = None) -> bytes:
    """The whole content of a regular file, after checking its size against the ceiling."""
    f, size = open_regular(path, what)
    with f:
        check_nbytes(size, f"reading the whole {what}", name_of(path))
        if limit is not None and size > limit:
            raise FormatError(f"{name_of(path)}: {what} of {size} bytes, more than the "
                              f"{limit} bytes such a file can need")
        charge(size, f"the whole {what}", name_of(path))
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
        errno.ENOTDIR: "a parent is not a directory",
        errno.EIO: "input/output error (the device reported a failure)",
        errno.EFBIG: "file too large (for the file system or the process's file size limit)"}


def check_output_target(path, what="output") -> None:
    """Refuse an output path that exists and is not a regular file (symlinks followed): a
    FIFO, a device, a socket or a directory is never replaced by the output."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):        # absent, or a name the write will report on
        return
    if not stat.S_ISREG(st.st_mode):
        raise OutputError(f"{name_of(path)}: cannot write the {what}: it is "
                          f"{kind_of(st.st_mode)}, not a regular file; name a new file or "
                          "an existing regular file (it would be replaced, not written "
                          "into)")


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
