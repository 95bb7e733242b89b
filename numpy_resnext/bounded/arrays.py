"""``.npy`` and ``.npz`` reading with every declared size checked before allocation.

``np.load`` trusts the header: a 100-byte ``.npy`` declaring 10**12 elements asks for the
memory first and fails (or succeeds, and swaps) afterwards; a 2 MB ``.npz`` whose deflated
member expands to 2 GiB is decompressed in full; a damaged zip surfaces as BadZipFile,
zlib.error or a CRC error from deep inside zipfile. Here:

- the header is parsed by NumPy's own header reader (bounded to 10,000 bytes), the dtype
  must be plain numeric (bool, int, uint, float, complex; no objects, strings, records);
- shape x itemsize must equal the bytes the file (or zip member) really holds, and be
  within :attr:`Limits.max_bytes`; only then is the array allocated and filled with
  ``readinto``;
- in a ``.npz``: members must be ``.npy`` files, stored or deflated (no other method, no
  encryption), each declared size within the ceiling, and a deflated member may expand at
  most :meth:`Limits.expand_bound` of its compressed size; a CRC mismatch is an error;
- every local header is checked once against the directory and no two members share a
  byte (:mod:`.zips`), and the members together may expand to at most the one allowance
  of the whole file (:mod:`.budget`), checked before any member is read;
- every array allocated is charged to the reading budget of the load under way.
"""

from __future__ import annotations

import os
import struct
import zipfile
import zlib
from collections import Counter, OrderedDict

import numpy as np
from numpy.lib import format as npformat

from ..errors import FormatError
from .budget import charge, check_whole, one_load, register_file
from .files import name_of, open_regular
from .limits import check_nbytes, check_shape, clip_list, get_limits, short_repr
from .zips import open_zip

NPY_MAGIC = b"\x93NUMPY"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")
MAX_MEMBERS = 10_000   # a ResNeXt has at most ~1,600 tensors; a golden dump fewer


def _header(f, where: str):
    """(shape, fortran, dtype, header length) of the .npy stream ``f`` at its start."""
    magic = f.read(8)
    if len(magic) < 8 or magic[:6] != NPY_MAGIC:
        raise FormatError(f"{where}: not an .npy array (first bytes "
                          f"{magic[:8].hex(' ') or 'missing: the file is empty'}; expected "
                          "93 4e 55 4d 50 59 = \\x93NUMPY)")
    major = magic[6]
    reader = {1: npformat.read_array_header_1_0, 2: npformat.read_array_header_2_0,
              3: npformat.read_array_header_2_0}.get(major)
    if reader is None:
        raise FormatError(f"{where}: .npy format version {major}.{magic[7]} is unknown "
                          "(expected 1, 2 or 3)")
    try:
        shape, fortran, dtype = reader(f, max_header_size=10_000)
    except Exception as exc:   # NumPy parses the text with tokenize + literal_eval: any error
        # there (TokenError, SyntaxError, ValueError, RecursionError ...) means a bad header
        raise FormatError(f"{where}: unreadable .npy header: {str(exc)[:200]}") from None
    if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None \
            or dtype.kind not in "biufc":
        raise FormatError(f"{where}: .npy dtype {short_repr(str(dtype), 40)} is not a plain "
                          "numeric dtype (objects, strings and records are refused)")
    return tuple(shape), bool(fortran), dtype, f.tell()


READ_CHUNK = 1 << 20      # a zip or tar member's stream copies through bytes: one chunk at a time, not a second array


def fill_array(f, array: np.ndarray, short) -> None:
    """Read ``array``'s bytes from ``f``, a chunk at a time; when the stream ends first,
    FormatError(short(bytes read, bytes needed))."""
    view = memoryview(array.reshape(-1).view(np.uint8))          # (nbytes,) bytes
    done = 0
    while done < len(view):
        got = f.readinto(view[done:done + READ_CHUNK])
        if not got:
            raise FormatError(short(done, len(view)))
        done += got


def _fill(f, array: np.ndarray, where: str, what: str) -> None:
    fill_array(f, array, lambda done, need: f"{where}: truncated: {what} needs {need} bytes of "
                                            f"data, the file holds {done}")


def _data_nbytes(shape, dtype, held: int, where: str, holder: str) -> int:
    """The bytes of data the .npy header declares, which must be the ``held`` bytes that
    ``holder`` (the file, the member) has after the header."""
    nbytes = check_shape(shape, dtype.itemsize, f"a {dtype} array", where)
    if nbytes != held:
        problem = "truncated" if nbytes > held else f"{held - nbytes} bytes too many"
        raise FormatError(f"{where}: {problem}: the header declares a {dtype} array of shape "
                          f"{list(shape)} ({nbytes} bytes of data), {holder} holds {held} "
                          "after the header")
    return nbytes


def read_npy_stream(f, size: int, where: str) -> np.ndarray:
    """The array of an .npy stream of ``size`` bytes, checked before allocation."""
    shape, fortran, dtype, start = _header(f, where)
    nbytes = _data_nbytes(shape, dtype, size - start, where, "the file")
    charge(nbytes, lambda: f"a {dtype} array of shape {short_repr(list(shape))}", where)
    out = np.empty(shape[::-1] if fortran else shape, dtype=dtype)
    _fill(f, out, where, f"the {dtype} array of shape {list(shape)}")
    out = out.T if fortran else out
    return out.astype(dtype.newbyteorder("="), copy=False)


@one_load
def read_npy(path, what="array file") -> np.ndarray:
    """One .npy file (a regular file, checked as above)."""
    f, size = open_regular(path, what)
    with f:
        return read_npy_stream(f, size, name_of(path))


def _check_member(info: zipfile.ZipInfo, where: str) -> None:
    name = short_repr(info.filename, 80)
    if info.flag_bits & 0x1:
        raise FormatError(f"{where}: member {name} is encrypted; .npz members are plain")
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
        raise FormatError(f"{where}: member {name} uses compression method "
                          f"{info.compress_type}; .npz members are stored (0) or deflated (8)")
    if not info.filename.endswith(".npy"):
        raise FormatError(f"{where}: member {name} is not an .npy array; an .npz holds only "
                          "<name>.npy members")
    check_nbytes(info.file_size, f"member {name}", where)
    if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
        raise FormatError(f"{where}: stored member {name} declares {info.file_size} bytes "
                          f"but occupies {info.compress_size}")
    bound = get_limits().expand_bound(info.compress_size)
    if info.file_size > bound:
        raise FormatError(f"{where}: member {name} would expand from {info.compress_size} "
                          f"to {info.file_size} bytes, more than the {bound} bytes allowed "
                          f"(at most {get_limits().max_ratio} times, or 64 MiB); a "
                          "decompression bomb or a damaged archive")


def _read_stored(f, info: zipfile.ZipInfo, start: int, where: str) -> np.ndarray:
    """A stored (uncompressed) member read straight from the file into the array, as
    np.load reads a plain .npy: no intermediate copy through zipfile's buffers. The local
    header was checked by :func:`.zips.open_zip` (``start``: where its data begins); the
    CRC-32 is computed over the bytes read, as zipfile would."""
    f.seek(start)
    shape, fortran, dtype, data_at = _header(f, where)
    nbytes = _data_nbytes(shape, dtype, start + info.file_size - data_at, where, "the member")
    charge(nbytes, lambda: f"a {dtype} array of shape {short_repr(list(shape))}", where)
    out = np.empty(shape[::-1] if fortran else shape, dtype=dtype)
    _fill(f, out, where, f"the {dtype} array of shape {list(shape)}")
    f.seek(start)
    crc = zlib.crc32(f.read(data_at - start))
    crc = zlib.crc32(memoryview(out.reshape(-1).view(np.uint8)), crc)
    if crc != info.CRC:
        raise FormatError(f"{where}: damaged archive member: CRC-32 {crc:08x}, the archive "
                          f"records {info.CRC:08x}")
    out = out.T if fortran else out
    return out.astype(dtype.newbyteorder("="), copy=False)


def _open_members(f, size, where, max_members):
    """(ZipFile, members, data offsets) of an .npz whose every member was checked
    (:func:`_check_member`, local headers, each name once)."""
    head = f.read(8)
    if head[:6] == NPY_MAGIC:
        raise FormatError(f"{where}: this is a single .npy array, not an .npz archive")
    if not head:
        raise FormatError(f"{where}: the file is empty; expected an .npz archive")
    f.seek(0)
    z, infos, starts = open_zip(f, size, where, ".npz (zip) archive", max_members)
    try:
        dup = sorted(n for n, count in Counter(i.filename for i in infos).items() if count > 1)
        if dup:
            raise FormatError(f"{where}: members named twice: {clip_list(dup, 5)}")
        for info in infos:
            _check_member(info, where)
    except BaseException:
        z.close()
        raise
    return z, infos, starts


def _open_npz(f, size, where, what):
    """(ZipFile, members) of an .npz whose every member was checked (:func:`_open_members`)
    and whose members together fit the whole file's allowance."""
    z, infos, starts = _open_members(f, size, where, MAX_MEMBERS)
    try:
        total = sum(i.file_size for i in infos)
        check_nbytes(total, "the archive's members together", where)
        check_whole(total, f"its {len(infos)} members together", where)
    except BaseException:
        z.close()
        raise
    return z, infos, starts


@one_load
def read_npz(path, what="array archive") -> "OrderedDict[str, np.ndarray]":
    """Every array of a .npz (name without .npy -> array), each member checked first."""
    where = name_of(path)
    f, size = open_regular(path, what)
    with f:
        z, infos, starts = _open_npz(f, size, where, what)
        with z:
            return OrderedDict((info.filename[:-4], _read_member(f, z, info, starts, where))
                               for info in infos)


ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError,
              RuntimeError, struct.error)


def _read_member(f, z, info, starts, where, header_only=False):
    """The array of one checked member (stored: read straight from the file; deflated:
    through zipfile's stream), or with ``header_only`` its (shape, dtype) from the .npy
    header alone, the data's size checked against the member's."""
    member = f"{where}:{short_repr(info.filename, 80)}"
    try:
        if not header_only:
            if info.compress_type == zipfile.ZIP_STORED:
                return _read_stored(f, info, starts[info.filename], member)
            with z.open(info) as m:
                return read_npy_stream(m, info.file_size, member)
        if info.compress_type == zipfile.ZIP_STORED:
            f.seek(starts[info.filename])
            shape, _, dtype, length = _header(f, member)
            length -= starts[info.filename]
        else:
            with z.open(info) as m:
                shape, _, dtype, length = _header(m, member)
    except FormatError:
        raise
    except ZIP_ERRORS as exc:
        raise FormatError(f"{member}: damaged archive member: "
                          f"{type(exc).__name__}: {str(exc)[:200]}") from None
    _data_nbytes(shape, dtype, info.file_size - length, member, "the member")
    return tuple(shape), dtype.newbyteorder("=")


class NpzMembers:
    """An .npz read one member at a time (a data set of tensors, one per image): the
    directory, every local header and every member checked once as :func:`read_npz` checks
    them, up to ``max_members`` members. The members are never all held at once, so there
    is no whole-file allowance: each :meth:`read` is a load of its own, bounded by the
    member's own expansion limit and the whole file's allowance. Keep it open while reading
    (one file descriptor)."""

    def __init__(self, path, what="array archive", max_members=MAX_MEMBERS):
        self.where = name_of(path)
        self._f, size = open_regular(path, what)
        try:
            self._stat = os.fstat(self._f.fileno())
            self._z, infos, self._starts = _open_members(self._f, size, self.where, max_members)
        except BaseException:
            self._f.close()
            raise
        self._infos = OrderedDict((i.filename[:-4], i) for i in infos)

    @property
    def names(self) -> list:
        return list(self._infos)

    def _info(self, name):
        if name not in self._infos:
            raise FormatError(f"{self.where}: no member {short_repr(name, 80)}.npy")
        return self._infos[name]

    def header(self, name):
        """(shape, dtype) of member ``name`` from its .npy header; no data is read."""
        return _read_member(self._f, self._z, self._info(name), self._starts, self.where,
                            header_only=True)

    @one_load
    def read(self, name) -> np.ndarray:
        info = self._info(name)
        register_file(self._stat, self.where)
        return _read_member(self._f, self._z, info, self._starts, self.where)

    def close(self) -> None:
        self._z.close()
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def npz_names(path, what="array archive") -> list:
    """The array names of a .npz, from its (checked) directory, without reading a member."""
    where = name_of(path)
    f, size = open_regular(path, what)
    with f:
        z, infos, _ = _open_npz(f, size, where, what)
        z.close()
    return [i.filename[:-4] for i in infos]


@one_load
def read_array_file(path, what="array file"):
    """An .npy (-> ndarray) or .npz (-> OrderedDict), told apart by content, as np.load."""
    f, _ = open_regular(path, what)
    with f:
        head = f.read(8)
    if head[:6] == NPY_MAGIC:
        return read_npy(path, what)
    if head[:4] in ZIP_MAGICS:
        return read_npz(path, what)
    raise FormatError(f"{name_of(path)}: neither an .npy array nor an .npz archive (first bytes "
                      f"{head.hex(' ') or 'missing: the file is empty'})")
