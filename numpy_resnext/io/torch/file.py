"""``torch.save`` files without torch: the zip format and the legacy format.

Both hold one pickle (read by :mod:`..unpickle`, which names storages and never reads
them) and the raw bytes of every storage (docs/torch_formats.md has the byte layouts):

- zip (torch >= 1.6, the default): an uncompressed zip archive ``<root>/data.pkl``,
  ``<root>/data/<key>`` (one member per storage), ``<root>/byteorder``, ``<root>/version``;
- legacy (``_use_new_zipfile_serialization=False``): the pickles of the magic number,
  the protocol version (1001) and a sys_info dict, then the object's pickle, then the
  pickle of the sorted list of storage keys, then each storage as an int64 element count
  followed by its bytes.

The extension says nothing (.pth .pt .bin .ckpt .tar are all used): the first bytes do.
:func:`open_torch` returns a :class:`TorchFile` whose storages are read only when
:meth:`TorchFile.arrays` asks for the tensors of one state dict. Every tensor is checked
against its storage (offset + sum((size - 1) * stride) < numel) and every storage against
the bytes the file really holds *before* anything is allocated. A zip's local headers are
checked once against its directory, no two members sharing a byte
(:func:`numpy_resnext.bounded.open_zip`); each storage is read once and the tensors that
view it share it (read-only views when several do), as torch shares them: 200 views of one
8 MiB storage are 8 MiB, not 1.6 GiB. What is read is charged to the reading budget of
the load.
"""

from __future__ import annotations

import io
import pickletools
import struct
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ...bounded import (charge, check_nbytes, clip_list, first_bytes, get_limits, open_regular,
                        open_zip, short_repr)
from ...errors import FormatError, ResNeXtError
from ..dtypes import itemsize, widen_bfloat16
from ..unpickle import load

__all__ = ["TorchFile", "open_torch", "is_torch_file", "LEGACY_MAGIC", "LEGACY_HEAD"]

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
# PROTO 2, LONG1 of 10 bytes, the magic number little-endian: how every legacy file starts
LEGACY_HEAD = b"\x80\x02\x8a\x0a" + LEGACY_MAGIC.to_bytes(10, "little")
ZIP_HEAD = b"PK\x03\x04"
MAX_PICKLE = 256 << 20          # the object pickle of a state dict is kilobytes
MAX_MEMBERS = 100_000           # a storage per tensor: ~1,600 for the largest ResNeXt
WHAT = "torch checkpoint"


def is_torch_file(path) -> bool:
    """True when ``path`` starts like a torch.save file (zip or legacy)."""
    try:
        head = first_bytes(path, len(LEGACY_HEAD), WHAT)
    except ResNeXtError:                 # missing, a FIFO, a directory: not a torch file
        return False
    if head.startswith(LEGACY_HEAD):
        return True
    return head.startswith(ZIP_HEAD) and _zip_has_data_pkl(path)


def _zip_has_data_pkl(path) -> bool:
    try:
        f, _ = open_regular(path, WHAT)
        with f, zipfile.ZipFile(f) as z:
            return any(n.endswith("/data.pkl") or n == "data.pkl" for n in z.namelist())
    except Exception:                    # noqa: BLE001 - any damage: not recognised here;
        return False                     # the reader that claims the file says why


class TorchFile:
    """The unpickled object of a torch.save file and lazy access to its storages.

    obj:      the pickled object with :class:`~..unpickle.TensorRef` for every tensor
    storages: storage key -> StorageInfo (dtype, numel)
    kind:     "torch-zip" or "torch-legacy"
    """

    def __init__(self, source, obj, storages, kind, locate, big_endian=False):
        self.source, self.obj, self.storages, self.kind = source, obj, storages, kind
        self._locate = locate              # key -> (byte offset in the file, byte count)
        self._big = big_endian

    def arrays(self, refs) -> "OrderedDict[str, np.ndarray]":
        """{name: ndarray} for {name: TensorRef}: checked first, then only the storages
        these tensors use are read (each once), and bfloat16 is widened to float32."""
        for name, ref in refs.items():
            self._check(name, ref)
        users = {}
        for ref in refs.values():
            users[ref.storage.key] = users.get(ref.storage.key, 0) + 1
        cache, out = {}, OrderedDict()
        f, _ = open_regular(self.source, WHAT)
        with f:
            for name, ref in refs.items():
                key = ref.storage.key
                if key not in cache:
                    cache[key] = self._read_storage(f, ref.storage)
                def where(name=name):
                    return f"{self.source}: tensor {short_repr(name)}"
                out[name] = _view(cache[key], ref, users[key] > 1, where)
                if ref.dtype == "bfloat16":
                    charge(4 * ref.numel, "bfloat16 widened to float32", where)
                    out[name] = widen_bfloat16(out[name])
        return out

    def _check(self, name, ref):
        info = ref.storage

        def where():                          # formatted only for a message (not per good tensor)
            return f"{self.source}: tensor {short_repr(name)}"
        if ref.extent() > info.numel:
            raise FormatError(f"{where()}: size {list(ref.size)}, stride {list(ref.stride)} at "
                              f"offset {ref.offset} reaches element {ref.extent() - 1} of "
                              f"storage {short_repr(info.key)}, which holds {info.numel}")
        if ref.numel > max(info.numel, 1):
            raise FormatError(f"{where()}: {ref.numel} elements from a storage of {info.numel} "
                              "(overlapping strides; a weight never repeats itself)")
        start, nbytes = self._locate(info.key)
        if nbytes != info.numel * itemsize(info.dtype):
            raise FormatError(f"{self.source}: storage {short_repr(info.key)} ({info.dtype}) should hold "
                              f"{info.numel} elements = {info.numel * itemsize(info.dtype)} "
                              f"bytes, the file holds {nbytes}")
        check_nbytes(nbytes, f"storage {short_repr(info.key)}", self.source)  # the ceiling

    def _read_storage(self, f, info) -> np.ndarray:
        start, nbytes = self._locate(info.key)
        dtype = np.dtype("uint16" if info.dtype == "bfloat16" else info.dtype)
        charge(nbytes, lambda: f"storage {short_repr(info.key)}", self.source)
        buf = np.empty(info.numel, dtype)
        f.seek(start)
        if f.readinto(memoryview(buf).cast("B")) != nbytes:
            raise FormatError(f"{self.source}: storage {short_repr(info.key)} is cut off by the end of "
                              "the file")
        if self._big and dtype.itemsize > 1:
            buf = buf.byteswap()
        return buf


def _view(storage, ref, shared, where):
    """The tensor ``ref`` of ``storage``: a view when it is contiguous (read-only when
    other tensors view the same storage), else a C-contiguous copy (charged)."""
    if ref.numel == 0:                    # nothing to read: strides do not matter
        return np.empty(ref.size, storage.dtype)
    itemsize = storage.itemsize
    contiguous = all(ref.stride[i] == int(np.prod(ref.size[i + 1:], dtype=np.int64))
                     for i in range(len(ref.size)) if ref.size[i] > 1)
    if contiguous:
        out = storage[ref.offset:ref.offset + ref.numel].reshape(ref.size)
        if shared:
            out.flags.writeable = False
        return out
    charge(ref.numel * itemsize, "a copy of a strided tensor", where)
    base = storage[ref.offset:]
    strides = [s * itemsize if n > 1 else 0 for n, s in zip(ref.size, ref.stride)]
    view = np.lib.stride_tricks.as_strided(base, shape=ref.size, strides=strides,
                                           writeable=False)
    return np.array(view)                 # (size) C-contiguous copy of the strided view


# --- zip format ---------------------------------------------------------------------------
def _read_zip(path: Path) -> TorchFile:
    fz, size = open_regular(path, WHAT)
    with fz:
        z, members, starts = open_zip(fz, size, str(path), "zip archive", MAX_MEMBERS)
        with z:
            infos = {i.filename: i for i in members}
            pkls = [n for n in infos if n.endswith("/data.pkl") and n.count("/") == 1]
            if len(pkls) != 1:
                raise FormatError(f"{path}: a torch.save zip holds exactly one <root>/data.pkl, "
                                  f"found {clip_list([short_repr(n) for n in pkls], 3) or 'none'} "
                                  f"among {clip_list([short_repr(n) for n in infos], 6)}")
            root = pkls[0][: -len("data.pkl")]
            stray = [n for n in infos if not n.startswith(root)]
            if stray:
                raise FormatError(f"{path}: members outside {short_repr(root)}: "
                                  f"{clip_list([short_repr(n) for n in stray], 5)}")
            big = False
            if root + "byteorder" in infos:
                order = _small_member(z, infos[root + "byteorder"], path)
                if order not in (b"little", b"big"):
                    raise FormatError(f"{path}: byteorder {order[:20]!r}, expected little or big")
                big = order == b"big"
            pkl = infos[root + "data.pkl"]
            _stored(pkl, path)
            limit = min(MAX_PICKLE, get_limits().max_bytes)
            if pkl.file_size > limit or pkl.file_size > size:
                raise FormatError(f"{path}: data.pkl declares {pkl.file_size} bytes (at most "
                                  f"{limit} for a state dict's pickle, and the file holds {size})")
            charge(pkl.file_size, "data.pkl", str(path))
            data = z.read(pkl)
    obj, storages = load(io.BytesIO(data), f"{path}:{root}data.pkl", len(data), "torch")
    where = {}
    for key in storages:
        info = infos.get(f"{root}data/{key}")
        if info is None:
            raise FormatError(f"{path}: storage {short_repr(key)} named in data.pkl has no member "
                              f"{short_repr(root + 'data/' + key)}")
        _stored(info, path)
        where[key] = (starts[info.filename], info.file_size)

    def locate(key):
        return where[key]
    return TorchFile(str(path), obj, storages, "torch-zip", locate, big)


def _stored(info, path):
    if info.compress_type != zipfile.ZIP_STORED:
        raise FormatError(f"{path}: member {short_repr(info.filename)} is compressed (method "
                          f"{info.compress_type}); torch.save stores members uncompressed")


def _small_member(z, info, path):
    _stored(info, path)
    if info.file_size > 64:
        raise FormatError(f"{path}: {short_repr(info.filename)} is {info.file_size} bytes, "
                          "expected a word")
    return z.read(info).strip()


# --- legacy format ------------------------------------------------------------------------
def _pickle_bytes(raw, pos, size):
    """The bytes of the pickle starting at ``pos``: read 1 MB (a state dict's pickle is tens
    of kB), more only while its STOP is not found, never past the end of the file."""
    chunk = 1 << 20
    while True:
        raw.seek(pos)
        data = raw.read(min(chunk, size - pos))
        try:
            for op, _, at in pickletools.genops(io.BytesIO(data)):
                if op.name == "STOP":
                    return data[:at + 1]
        except ValueError:
            pass                        # cut off by the chunk, or corrupt: decided below
        if len(data) == size - pos:     # the whole rest of the file: let the reader say why
            return data
        chunk *= 4


def _read_legacy(path: Path) -> TorchFile:
    raw, size = open_regular(path, WHAT)
    src = str(path)
    with raw:
        pos = 0

        def next_pickle(what, legacy=False):
            nonlocal pos
            data = _pickle_bytes(raw, pos, size)
            pos += len(data)
            return load(io.BytesIO(data), f"{src}{what}", len(data), "torch", legacy)
        head = [next_pickle(f" ({what})")[0]
                for what in ("magic number", "protocol version", "sys_info")]
        magic, protocol, sys_info = head
        if magic != LEGACY_MAGIC or protocol != LEGACY_PROTOCOL:
            raise FormatError(f"{src}: legacy torch header {short_repr(magic, 30)}, "
                              f"{short_repr(protocol, 20)}; "
                              f"expected magic {LEGACY_MAGIC:#x} and protocol {LEGACY_PROTOCOL}")
        if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
            raise FormatError(f"{src}: sys_info {short_repr(sys_info, 80)}: only little-endian files "
                              "are read")
        obj, storages = next_pickle("", legacy=True)
        keys, _ = next_pickle(" (storage keys)")
        if not (isinstance(keys, list) and all(isinstance(k, str) for k in keys)) \
                or sorted(keys) != sorted(storages):
            raise FormatError(f"{src}: the storage key list {short_repr(keys, 80)} does not match "
                              f"the {len(storages)} storages the object names")
        where = {}
        for key in keys:
            info = storages[key]
            raw.seek(pos)
            count = raw.read(8)
            if len(count) != 8:
                raise FormatError(f"{src}: storage {short_repr(key)}: element count cut off at byte {pos}")
            (numel,) = struct.unpack("<q", count)
            nbytes = numel * itemsize(info.dtype)
            if numel != info.numel or pos + 8 + nbytes > size:
                raise FormatError(f"{src}: storage {short_repr(key)} at byte {pos}: {numel} elements "
                                  f"recorded, the pickle says {info.numel}; "
                                  f"{size - pos - 8} bytes remain")
            where[key] = (pos + 8, nbytes)
            pos += 8 + nbytes
        if pos != size:
            raise FormatError(f"{src}: {size - pos} unexpected bytes after the last storage "
                              f"(byte {pos})")

    def locate(key):
        return where[key]
    return TorchFile(src, obj, storages, "torch-legacy", locate)


def open_torch(path) -> TorchFile:
    """Open a torch.save file (either format): its object, storages read lazily."""
    path = Path(path)
    head = first_bytes(path, len(LEGACY_HEAD), WHAT)
    if head.startswith(LEGACY_HEAD):
        return _read_legacy(path)
    if head.startswith(ZIP_HEAD):
        return _read_zip(path)
    if head[:1] == b"\x80":
        raise FormatError(f"{path}: a pickle, but not a torch.save file (no legacy magic "
                          "number); a Paddle .pdparams?")
    raise FormatError(f"{path}: not a torch.save file: first bytes {head[:8].hex(' ')}, "
                      "expected a zip archive (50 4b 03 04) or the legacy magic (80 02 8a 0a)")
