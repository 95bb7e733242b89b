"""``.safetensors`` read and written with NumPy only (no safetensors package).

Layout (docs/torch_formats.md): an unsigned 64-bit little-endian header length N, then N
bytes of UTF-8 JSON ``{name: {"dtype": "F32", "shape": [..], "data_offsets": [begin,
end]}, "__metadata__": {str: str}}``, then the data buffer; offsets are relative to the
buffer's start, tensors are C-contiguous little-endian, and the tensors tile the buffer
without gaps or overlaps. Nothing is executed on reading: the header is JSON.

Reading checks the whole header (dtype, shape, offsets inside the file, sizes, tiling)
before any tensor is allocated, and reads only the tensors asked for. BF16 is widened
exactly to float32 (its bits are float32's upper half). Dtype codes: :mod:`.dtypes`.

Verbs, as every format module has them: :func:`detect`, :func:`read` (a
:class:`~.weightfile.WeightFile` with the wrapper prefixes ``module.`` ... removed and the
metadata in ``extras``) and :func:`write` (metadata in ``__metadata__``).
"""

from __future__ import annotations

import json
import math
import os
import struct
from collections import OrderedDict
from pathlib import Path

import numpy as np

from .._files import atomic_write
from ..bounded import (charge, check_shape, first_bytes, is_regular, loads_json, open_regular,
                       short_repr)
from ..bounded.limits import MAX_NDIM
from ..errors import FormatError, ResNeXtError, WeightsError
from .dtypes import BY_NAME, SAFETENSORS, itemsize, widen_bfloat16
from .weightfile import WeightFile, reading, strip_prefixes

__all__ = ["detect", "read", "write", "looks_like", "read_header", "read_tensors", "encode_header"]

MAX_HEADER = 100 << 20             # the format's own limit on the JSON header


def looks_like(path) -> bool:
    """True when ``path`` is a regular file starting with a plausible header length and
    ``{``."""
    if not is_regular(path):
        return False
    try:
        size = os.path.getsize(path)
        head = first_bytes(path, 9, "safetensors file")
    except (OSError, ResNeXtError):
        return False
    if len(head) < 9:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return head[8:9] == b"{" and n <= size - 8


def detect(path) -> bool:
    """True when ``path`` is a file that starts like a safetensors file or is named
    ``*.safetensors`` (:func:`read` then says why it is not one)."""
    path = Path(path)
    return looks_like(path) or (path.suffix == ".safetensors" and path.is_file())


@reading
def read(path, ema=None, names=None) -> WeightFile:
    """The tensors of a .safetensors file (only ``names`` when given), wrapper prefixes
    removed; ``ema=True`` is an error (the file holds one set of weights)."""
    if not looks_like(path):
        raise FormatError(f"{path}: not a safetensors file (expected an 8-byte header length "
                          "followed by a JSON object)")
    if ema is True:
        raise WeightsError(f"{path}: a .safetensors file holds one set of weights; there is "
                           "no EMA copy to choose")
    tensors, metadata = read_tensors(path, names)
    notes = []
    if metadata:
        shown = ", ".join(f"{short_repr(k, 40)}={short_repr(v, 60)}"
                          for k, v in list(metadata.items())[:6])
        notes.append(f"safetensors metadata: {shown}")
    tensors, stripped = strip_prefixes(tensors)
    return WeightFile(tensors, "safetensors", str(path), notes + stripped, metadata)


def read_header(path):
    """(entries {name: (dtype, shape, begin, end)} in offset order, metadata, buffer start)."""
    f, size = open_regular(path, "safetensors file")
    with f:
        raw = f.read(8)
        if len(raw) != 8:
            raise FormatError(f"{path}: {size} bytes, too short for a safetensors header")
        (n,) = struct.unpack("<Q", raw)
        if n > MAX_HEADER or n > size - 8:
            raise FormatError(f"{path}: header length {n} (at most {MAX_HEADER} and the "
                              f"{size - 8} bytes after it)")
        charge(n, "its header", str(path))
        text = f.read(n)
    # depth-bounded, finite numbers, integers of at most 40 digits (bounded.jsonread)
    header = loads_json(text, f"{path}: header", what="UTF-8 JSON")
    if not isinstance(header, dict):
        raise FormatError(f"{path}: header is a JSON {type(header).__name__}, expected an object")
    metadata = header.pop("__metadata__", None) or {}
    if not (isinstance(metadata, dict) and all(isinstance(k, str) and isinstance(v, str)
                                               for k, v in metadata.items())):
        raise FormatError(f"{path}: __metadata__ must map strings to strings")
    buffer = size - 8 - n
    entries = {}
    for name, e in header.items():
        where = f"{path}: tensor {short_repr(name)}"
        if not (isinstance(e, dict) and set(e) >= {"dtype", "shape", "data_offsets"}):
            raise FormatError(f"{where}: expected {{dtype, shape, data_offsets}}, found "
                              f"{short_repr(e, 80)}")
        dtype = SAFETENSORS.get(e["dtype"]) if isinstance(e["dtype"], str) else None
        shape, offs = e["shape"], e["data_offsets"]
        if dtype is None:
            raise FormatError(f"{where}: dtype {short_repr(e['dtype'], 20)} (known: "
                              f"{', '.join(SAFETENSORS)})")
        if not (isinstance(shape, list) and len(shape) <= MAX_NDIM
                and all(type(d) is int and d >= 0 for d in shape)):
            raise FormatError(f"{where}: shape {short_repr(shape, 80)} (a list of non-negative ints)")
        if not (isinstance(offs, list) and len(offs) == 2 and all(type(o) is int for o in offs)
                and 0 <= offs[0] <= offs[1] <= buffer):
            raise FormatError(f"{where}: data_offsets {short_repr(offs, 60)} outside the "
                              f"{buffer}-byte data buffer")
        check_shape(shape, itemsize(dtype), f"a {dtype} tensor", where)   # before multiplying
        need = math.prod(shape) * itemsize(dtype)
        if offs[1] - offs[0] != need:
            raise FormatError(f"{where}: {dtype}{shape} needs {need} bytes, data_offsets "
                              f"give {offs[1] - offs[0]}")
        entries[name] = (dtype, tuple(shape), offs[0], offs[1])
    ordered = sorted(entries.items(), key=lambda kv: (kv[1][2], kv[1][3]))
    end = 0
    for name, (_, _, begin, stop) in ordered:
        if begin != end:
            raise FormatError(f"{path}: tensor {short_repr(name)} starts at byte {begin} of the data "
                              f"buffer, expected {end} (tensors must tile it: "
                              f"{'overlap' if begin < end else 'gap'})")
        end = stop
    if end != buffer:
        raise FormatError(f"{path}: tensors cover {end} of the {buffer} data bytes")
    return OrderedDict(ordered), metadata, 8 + n


def read_tensors(path, names=None, header=None):
    """({name: ndarray} in header order, metadata), names as stored; only ``names`` when
    given; ``header``: what :func:`read_header` returned for this file (read again when
    None)."""
    entries, metadata, start = read_header(path) if header is None else header
    wanted = entries if names is None else {k: entries[k] for k in names}
    out = OrderedDict()
    f, _ = open_regular(path, "safetensors file")
    with f:
        for name, (dtype, shape, begin, stop) in wanted.items():
            def where(name=name):
                return f"{path}: tensor {short_repr(name)}"
            charge((stop - begin) * (2 if dtype == "bfloat16" else 1), "a tensor", where)
            arr = np.empty(shape, "<u2" if dtype == "bfloat16" else np.dtype(dtype).newbyteorder("<"))
            f.seek(start + begin)
            if stop > begin and f.readinto(memoryview(arr.reshape(-1)).cast("B")) != stop - begin:
                raise FormatError(f"{where()} cut off by the end of the file")
            if dtype == "bfloat16":
                arr = widen_bfloat16(arr)
            out[name] = arr.astype(arr.dtype.newbyteorder("="), copy=False)
    return out, metadata


def encode_header(arrays, metadata=None):
    """The header bytes (length + JSON padded with spaces to a multiple of 8) and the
    arrays as little-endian C-contiguous buffers, in the given order."""
    header, buffers, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, value in arrays.items():
        a = np.asarray(value, order="C")            # C-contiguous; a 0-d array stays 0-d
        code = BY_NAME[a.dtype.name].safetensors if a.dtype.name in BY_NAME else None
        if code is None:
            raise FormatError(f"tensor {name!r}: dtype {a.dtype} has no safetensors code")
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
        header[name] = {"dtype": code, "shape": list(a.shape),
                        "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
        buffers.append(a)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text, buffers


def write(path, tensors, metadata=None) -> str:
    """Write ``{name: ndarray}`` as a .safetensors file, atomically; returns where the
    metadata went."""
    head, buffers = encode_header(tensors, metadata)

    def save(tmp):
        with open(tmp, "wb") as f:
            f.write(head)
            for a in buffers:
                f.write(memoryview(a.reshape(-1)).cast("B") if a.size else b"")
    atomic_write(path, save)
    return "in the safetensors __metadata__"
