"""Paddle's binary tensor record: legacy per-parameter files and combined ``.pdiparams``.

One record, little-endian (docs/formats.md, "Tensor records")::

    uint32  version            0
    uint64  lod_level          L (0 for weights)
    L x {   uint64 nbytes;  nbytes of uint64 offsets }   level-of-detail table, skipped
    uint32  tensor version     0
    int32   desc_size
    bytes   TensorDesc         protobuf: 1 data_type (varint), 2 dims (int64, repeated)
    bytes   data               prod(dims) * itemsize, C order

A legacy parameter directory (``paddle.static.save_vars``, PaddleClas ``*_pretrained.tar``)
holds one record per file, named after the parameter. A combined file (``__params__``,
``*.pdiparams``) holds records back to back without names, in the sorted order of the
program's persistable variable names (see :mod:`.program`).

Every size read from the file is checked against the bytes that remain before NumPy sees
it; errors name the file, the tensor (when known) and the byte offset.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np

from ...bounded import (check_shape, check_walk_depth, is_dir, is_regular, open_regular,
                       open_tar, short_repr)
from ...bounded.arrays import fill_array
from ...bounded.budget import charge
from ...bounded.limits import MAX_NDIM
from ...errors import FormatError
from ..dtypes import NO_NUMPY, PADDLE
from .protobuf import LENGTH, VARINT, as_int64, iter_fields, read_varint

__all__ = ["DTYPES", "read_record", "read_record_file", "read_record_dir", "read_record_tar",
           "read_combined", "encode_record", "is_record_start"]

# Paddle VarType code -> NumPy dtype (little-endian, as Paddle writes them), from the one
# table; codes NumPy has no dtype for (BF16, FP8) are refused by name rather than guessed.
DTYPES = {code: np.dtype(row.name).newbyteorder("<") for code, row in PADDLE.items()
          if row.name not in NO_NUMPY}
CODES = {dt: code for code, dt in DTYPES.items()}

MAX_LOD_LEVELS = 16  # weights have 0; a huge value means the bytes are not a record


def is_record_start(head: bytes) -> bool:
    """True if ``head`` (>= 4 bytes) starts like a tensor record (uint32 version 0)."""
    return len(head) >= 4 and head[:4] == b"\x00\x00\x00\x00"


class _Bytes:
    """Where a record is parsed from: an in-memory buffer or an open file.

    Every read is bounds-checked against the end (``size``) first. From a file (or a tar
    member's stream), the header is read in small pieces and the data straight into the
    result array with ``readinto``, in chunks, so a 3 GB combined file needs 3 GB of
    memory, not 6. Every array is charged to the reading budget of the load.
    """

    def __init__(self, buf=None, fileobj=None, size=None):
        self.buf, self.file = buf, fileobj
        self.size = len(buf) if buf is not None else size

    def check(self, pos: int, n: int, what: str, where: str) -> int:
        """Position after ``n`` bytes of ``what`` at ``pos``, if they are there."""
        if n < 0 or pos + n > self.size:
            raise FormatError(f"{where}: truncated: {what} needs {n} bytes at byte {pos}, "
                              f"but the file ends at byte {self.size}")
        return pos + n

    def take(self, pos: int, n: int, what: str, where: str) -> bytes:
        end = self.check(pos, n, what, where)
        if self.buf is not None:
            return bytes(self.buf[pos:end])
        self.file.seek(pos)
        return self.file.read(n)

    def uint(self, pos: int, width: int, what: str, where: str) -> tuple[int, int]:
        return int.from_bytes(self.take(pos, width, what, where), "little"), pos + width

    def array(self, pos: int, dtype: np.dtype, dims: tuple, where: str) -> np.ndarray:
        """A fresh, aligned, native-order (dims) array from the bytes at ``pos``."""
        count = int(np.prod(dims, dtype=np.int64)) if dims else 1
        charge(count * dtype.itemsize, lambda: f"a {dtype} tensor of shape "
               f"{short_repr(list(dims))}", where)
        if self.buf is not None:
            flat = np.frombuffer(self.buf, dtype=dtype, count=count, offset=pos)
            return flat.reshape(dims).astype(dtype.newbyteorder("="), copy=True)
        array = np.empty(dims, dtype=dtype)
        self.file.seek(pos)
        fill_array(self.file, array, lambda done, need: f"{where}: the file shrank while being read: "
                   f"expected {need} bytes of data at byte {pos}, found {done} before its end")
        return array.astype(dtype.newbyteorder("="), copy=False)


def parse_tensor_desc(buf, start: int, end: int, where: str,
                      base: int = 0) -> tuple[np.dtype, tuple]:
    """(dtype, dims) from a TensorDesc message in ``buf[start:end]``.

    ``base`` is the file offset of ``buf[0]``, so errors give positions in the file.
    """
    code, dims = None, []
    for number, wire, value, offset in iter_fields(buf, start, end, where, base):
        if number == 1 and wire == VARINT:
            code = value
        elif number == 2 and wire == VARINT:  # dims as Paddle writes them: unpacked
            dims.append(as_int64(value))
        elif number == 2 and wire == LENGTH:  # packed repeated, also valid protobuf
            pos, stop = value
            while pos < stop:
                dim, pos = read_varint(buf, pos, stop, where, base)
                dims.append(as_int64(dim))
        # other fields are ignored, as protobuf readers do
    if code is None:
        raise FormatError(f"{where}: TensorDesc at byte {base + start} has no data_type "
                          "(field 1)")
    if code in PADDLE and code not in DTYPES:
        raise FormatError(f"{where}: data type {PADDLE[code].paddle[1]} (code {code}) has no "
                          "NumPy dtype; convert the weights to FP32 with Paddle first")
    if code not in DTYPES:
        raise FormatError(f"{where}: unknown data type code {code} in TensorDesc at byte "
                          f"{base + start}; expected one of {sorted(DTYPES)} (FP32 is 5)")
    if len(dims) > MAX_NDIM or any(d < 0 for d in dims):
        raise FormatError(f"{where}: invalid dims {short_repr(dims)} in TensorDesc at byte "
                          f"{base + start}")
    return DTYPES[code], tuple(dims)


def read_record(buf, offset: int, source: str, name: str | None = None):
    """Decode the record starting at ``buf[offset]``; return (array, offset after it).

    The array is a fresh, aligned, native-order copy, independent of ``buf``.
    """
    return _decode(_Bytes(buf=buf), offset, source, name)


def _decode(src: _Bytes, offset: int, source: str, name: str | None):
    where = source if name is None else f"{source}, tensor {name!r}"
    version, pos = src.uint(offset, 4, "the record version", where)
    if version != 0:
        raise FormatError(f"{where}: bad record magic at byte {offset}: version {version}, "
                          "expected 0 (is this a tensor record file?)")
    levels, pos = src.uint(pos, 8, "the LoD level count", where)
    if levels > MAX_LOD_LEVELS:
        raise FormatError(f"{where}: implausible LoD level count {levels} at byte {pos - 8}")
    for _ in range(levels):
        nbytes, pos = src.uint(pos, 8, "a LoD table size", where)
        pos = src.check(pos, nbytes, "a LoD table", where)
    tversion, pos = src.uint(pos, 4, "the tensor version", where)
    if tversion != 0:
        raise FormatError(f"{where}: tensor version {tversion} at byte {pos - 4}, expected 0")
    desc_size, pos = src.uint(pos, 4, "the TensorDesc size", where)
    desc = src.take(pos, desc_size, "the TensorDesc", where)
    dtype, dims = parse_tensor_desc(desc, 0, len(desc), where, base=pos)
    nbytes = int(np.prod(dims, dtype=object)) * dtype.itemsize if dims else dtype.itemsize
    data = pos + desc_size
    end = src.check(data, nbytes, f"the data of a {dtype} tensor of shape "
                    f"{short_repr(list(dims))}", where)
    # enormous dims with a zero among them hold no data, yet NumPy refuses to make them
    check_shape(dims, dtype.itemsize, "the tensor", where)
    return src.array(data, dtype, dims, where), end


def _open_sized(path: Path):
    f, size = open_regular(path, "tensor record file")
    return f, _Bytes(fileobj=f, size=size)


def read_record_file(path, name: str | None = None) -> np.ndarray:
    """Read a file holding exactly one record (one legacy parameter file)."""
    path = Path(path)
    f, src = _open_sized(path)
    with f:
        array, end = _decode(src, 0, str(path), name)
    if end != src.size:
        raise FormatError(f"{path}: {src.size - end} unexpected bytes after the tensor "
                          f"(record ends at byte {end}, file at byte {src.size})")
    return array


def _record_files(directory: Path, notes: list) -> list[Path]:
    """Regular files of ``directory`` that start like a record; note the ones skipped."""
    found = []
    for path in sorted(directory.iterdir()):
        if path.name.startswith("."):
            continue
        if is_dir(path):
            notes.append(f"skipped {path.name}/ (a directory)")
            continue
        if not is_regular(path):        # a FIFO would block the open; a device is no weight
            notes.append(f"skipped {path.name} (not a regular file)")
            continue
        f, _ = open_regular(path, "tensor record file")
        with f:
            head = f.read(4)
        if is_record_start(head):
            found.append(path)
        else:
            notes.append(f"skipped {path.name} (not a tensor record: starts {head.hex()})")
    return found


def read_record_dir(directory) -> tuple["OrderedDict[str, np.ndarray]", list]:
    """Read a legacy one-file-per-parameter directory: (name -> array sorted, notes).

    A directory that only wraps one sub-directory (how a ``.tar`` often unpacks) is
    descended into, at most ``Limits.max_dir_depth`` levels.
    """
    directory = Path(directory)
    prefix = []
    for depth in range(10 ** 6):
        check_walk_depth(depth, directory)
        notes = []
        files = _record_files(directory, notes)
        subdirs = [p for p in directory.iterdir() if is_dir(p) and not p.name.startswith(".")]
        if files or len(subdirs) != 1:
            break
        prefix.append(f"read the single sub-directory {subdirs[0].name}/")
        directory = subdirs[0]
    if not files:
        raise FormatError(f"{directory}: no tensor record files found (each file of a legacy "
                          "parameter directory starts with 4 zero bytes); "
                          + ("; ".join(notes[:10]) if notes else "the directory is empty"))
    tensors = OrderedDict((p.name, read_record_file(p, p.name)) for p in files)
    return tensors, prefix + notes


def read_record_tar(path) -> tuple["OrderedDict[str, np.ndarray]", list]:
    """Read a legacy parameter directory packed as a ``.tar`` (never extracted to disk).

    Members are read as streams, each record decoded straight into its array, so hostile
    member paths (``../x``) are harmless and a member's bytes are never held beside the
    array made of them; gzip, bzip2 and xz archives are decompressed with the bounds of
    :mod:`numpy_resnext.bounded`.
    """
    path = Path(path)
    tensors, notes = OrderedDict(), []
    with open_tar(path, "weight archive") as (tar, members):
        for member in members:                      # archive order: no backward seeks
            base = member.name.rsplit("/", 1)[-1]
            where = f"{path}:{short_repr(member.name, 80)}"
            stream = tar.extractfile(member)
            head = stream.read(4)
            if base.startswith(".") or not is_record_start(head):
                notes.append(f"skipped {short_repr(member.name, 80)} (not a tensor record)")
                continue
            if base in tensors:
                raise FormatError(f"{path}: two members are named {short_repr(base)}")
            stream.seek(0)
            array, end = _decode(_Bytes(fileobj=stream, size=member.size), 0, where, base)
            if end != member.size:
                raise FormatError(f"{where}: {member.size - end} unexpected bytes after "
                                  f"the tensor (record ends at byte {end})")
            tensors[base] = array
    if not tensors:
        raise FormatError(f"{path}: the archive holds no tensor record files")
    return OrderedDict(sorted(tensors.items())), notes


def read_combined(path, names) -> "OrderedDict[str, np.ndarray]":
    """Read a combined file whose records belong, in order, to ``names``."""
    path = Path(path)
    names = list(names)
    tensors, pos = OrderedDict(), 0
    f, src = _open_sized(path)
    with f:
        for i, name in enumerate(names):
            if pos >= src.size:
                raise FormatError(f"{path}: truncated: the file ends at byte {pos} after {i} "
                                  f"of {len(names)} tensors; tensor {name!r} is missing")
            tensors[name], pos = _decode(src, pos, str(path), name)
    if pos != src.size:
        raise FormatError(f"{path}: {src.size - pos} bytes remain after the {len(names)} "
                          f"tensors the program names (last one ends at byte {pos}); the "
                          "program does not belong to this parameters file")
    return tensors


def _varint_bytes(value: int) -> bytes:
    value &= (1 << 64) - 1
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode_record(array: np.ndarray) -> bytes:
    """One record for ``array`` (used to build test files; Paddle reads them back)."""
    array = np.asarray(array, order="C")  # (ascontiguousarray would make 0-d arrays 1-d)
    dtype = array.dtype.newbyteorder("<") if array.dtype.byteorder == "=" else array.dtype
    code = CODES.get(dtype)
    if code is None:
        raise FormatError(f"no Paddle data type for NumPy dtype {array.dtype}")
    desc = b"\x08" + _varint_bytes(code) + b"".join(b"\x10" + _varint_bytes(d)
                                                    for d in array.shape)
    header = (b"\x00" * 4 + b"\x00" * 8 + b"\x00" * 4 + len(desc).to_bytes(4, "little"))
    return header + desc + array.astype(dtype, copy=False).tobytes()
