"""Tar archives (plain, gzip, bzip2, xz) read with the decompressed size bounded.

``tarfile.open(path, "r:*")`` decompresses as far as the archive asks: a 1 MB .tar.gz of
zeros expands to a gigabyte while tarfile looks for the next header, a member may declare
2**80 bytes, and a GNU sparse member may declare gigabytes of holes. Here the compressed
stream is wrapped so that reading or seeking past :meth:`Limits.expand_bound` of the file's
size stops with FormatError; members are listed one at a time and each declared size is
checked before tarfile seeks over it; sparse members, and anything but regular files and
directories, are refused or skipped.
"""

from __future__ import annotations

import bz2
import contextlib
import gzip
import lzma
import tarfile
import zlib

from ..errors import FormatError
from .files import open_regular
from .limits import check_nbytes, get_limits, human, short_repr

MAX_MEMBERS = 100_000
_COMPRESSED = ((b"\x1f\x8b", "gzip", lambda f: gzip.GzipFile(fileobj=f, mode="rb")),
               (b"BZh", "bzip2", lambda f: bz2.BZ2File(f, "rb")),
               (b"\xfd7zXZ\x00", "xz", lambda f: lzma.LZMAFile(f, "rb")))
ERRORS = (tarfile.TarError, EOFError, zlib.error, lzma.LZMAError, OSError, ValueError,
          OverflowError)


class _Bounded:
    """A decompressed stream that refuses to go past ``bound`` bytes."""

    def __init__(self, inner, bound: int, where: str, method: str, size: int):
        self.inner, self.bound, self.where = inner, bound, where
        self.method, self.size = method, size

    def _over(self, pos):
        raise FormatError(f"{self.where}: the {self.method} stream expands beyond "
                          f"{human(self.bound)} ({self.bound} bytes, at most "
                          f"{get_limits().max_ratio} times the {self.size} compressed bytes "
                          "or 64 MiB); a decompression bomb or not a weight archive")

    def read(self, n=-1):
        here = self.inner.tell()
        if n is None or n < 0:
            n = self.bound - here + 1
        if here + n > self.bound:
            n = self.bound - here + 1
        data = self.inner.read(max(n, 0))
        if here + len(data) > self.bound:
            self._over(here + len(data))
        return data

    def seek(self, pos, whence=0):
        target = pos if whence == 0 else (self.inner.tell() + pos if whence == 1 else None)
        if target is None:
            raise OSError("seeking from the end of a compressed stream is not supported")
        if target > self.bound:
            self._over(target)
        return self.inner.seek(target)

    def tell(self):
        return self.inner.tell()

    def seekable(self):
        return True

    def readable(self):
        return True


@contextlib.contextmanager
def open_tar(path, what="archive"):
    """``with open_tar(p) as (tar, members): ...``: ``members`` iterates the regular files
    in archive order, each size checked before it is yielded; read each as it comes (the
    archive is decompressed once, front to back: a backward seek would decompress again
    from the start). After the last member the compressed stream is read to its end, so
    that its checksum is verified; errors become FormatError naming ``path``."""
    where = str(path)
    f, size = open_regular(path, what)
    with f:
        head = f.read(6)
        f.seek(0)
        stream, method = f, "tar"
        for magic, name, opener in _COMPRESSED:
            if head.startswith(magic):
                stream = _Bounded(opener(f), get_limits().expand_bound(size),
                                  where, name, size)
                method = name
                break
        try:
            with tarfile.open(fileobj=stream, mode="r:") as tar:
                yield tar, _members(tar, where, size, stream, method)
        except FormatError:
            raise
        except ERRORS as exc:
            raise FormatError(f"{where}: not a readable tar archive ({method}): "
                              f"{type(exc).__name__}: {str(exc)[:200]}") from None


def _members(tar, where: str, size: int, stream, method: str):
    """The archive's regular files, one at a time, each size checked before it is yielded;
    then the rest of a compressed stream read (tarfile stops at the end-of-archive blocks,
    before the checksum)."""
    total = 0
    for count, member in enumerate(tar, 1):
        name = short_repr(member.name, 80)
        if count > MAX_MEMBERS:
            raise FormatError(f"{where}: more than {MAX_MEMBERS} members; not a weight archive")
        if member.issparse():
            raise FormatError(f"{where}: member {name} is a GNU sparse file (declaring "
                              f"{member.size} bytes); weight archives hold plain files")
        if member.isfile():
            check_nbytes(member.size, f"member {name}", where)
            if method == "tar" and member.size > size:
                raise FormatError(f"{where}: member {name} declares {member.size} bytes, "
                                  f"more than the whole file ({size} bytes)")
            total += member.size
            check_nbytes(total, "the archive's members together", where)
            yield member
    if method != "tar":
        while stream.read(1 << 20):
            pass
