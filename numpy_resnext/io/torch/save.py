"""``torch.save(state_dict, path)`` without torch: the zip format, uncompressed, aligned.

The pickle is emitted opcode by opcode (:func:`torch_pickle_bytes`): the only globals it
names are the three ``torch.load(weights_only=True)`` allows for a state dict
(``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2`` and a storage type of
:mod:`..dtypes`). Storage i holds tensor i; every storage starts on a 64-byte boundary,
as torch writes them.
"""

from __future__ import annotations

import struct
import zipfile

import numpy as np

from ..._files import atomic_write
from ...errors import WeightsError
from ..dtypes import BY_NAME

__all__ = ["write_torch_zip", "torch_pickle_bytes", "ALIGN"]

ALIGN = 64                   # storage bytes start on 64-byte boundaries, as torch writes them
_PAD_ID = 0x7A6E             # zip extra-field id of the alignment padding


def _str(s: str) -> bytes:
    b = s.encode("utf-8")
    return b"X" + struct.pack("<I", len(b)) + b            # BINUNICODE


def _int(n: int) -> bytes:
    if 0 <= n < 2 ** 31:
        return b"J" + struct.pack("<i", n)                  # BININT
    raw = n.to_bytes((n.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw               # LONG1


def _ints(values) -> bytes:
    return b"(" + b"".join(_int(v) for v in values) + b"t"  # MARK ... TUPLE


_ORDERED_DICT = b"ccollections\nOrderedDict\n)R"           # GLOBAL, EMPTY_TUPLE, REDUCE


def _storage_type(dtype: np.dtype):
    row = BY_NAME.get(dtype.name)
    return row.torch if row is not None else None


def torch_pickle_bytes(arrays) -> bytes:
    """The data.pkl of ``torch.save(state_dict)`` for {name: C-contiguous array}: storage
    i holds tensor i, named by the persistent id ('storage', type, str(i), 'cpu', numel)."""
    out = [b"\x80\x02", _ORDERED_DICT, b"("]
    for i, (name, a) in enumerate(arrays.items()):
        strides = [int(np.prod(a.shape[d + 1:], dtype=np.int64)) for d in range(a.ndim)]
        pid = (b"(" + _str("storage") + f"ctorch\n{_storage_type(a.dtype)}\n".encode()
               + _str(str(i)) + _str("cpu") + _int(a.size) + b"tQ")       # BINPERSID
        out += [_str(name), b"ctorch._utils\n_rebuild_tensor_v2\n", b"(", pid, _int(0),
                _ints(a.shape), _ints(strides), b"\x89", _ORDERED_DICT, b"tR"]
    out += [b"u."]                                          # SETITEMS, STOP
    return b"".join(out)


def _aligned_info(name: str, pos: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    pad = -(pos + 30 + len(name.encode()) + 4) % ALIGN
    info.extra = struct.pack("<HH", _PAD_ID, pad) + b"\0" * pad
    return info


def write_torch_zip(path, arrays, comment=b"", root="archive"):
    """``torch.save(state_dict, path)`` without torch: zip format, uncompressed, aligned;
    ``comment`` goes into the zip archive comment."""
    # C-contiguous little-endian; np.asarray keeps a 0-d array 0-d (torch's BN step counter)
    arrays = {k: np.asarray(v, order="C").astype(np.asarray(v).dtype.newbyteorder("<"),
                                                 copy=False) for k, v in arrays.items()}
    bad = [f"{k}: {v.dtype}" for k, v in arrays.items() if _storage_type(v.dtype) is None]
    if bad:
        raise WeightsError(f"no torch storage type for {', '.join(bad)}")

    def write(tmp):
        with open(tmp, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_STORED) as z:
            def member(name, data):
                z.writestr(_aligned_info(f"{root}/{name}", f.tell()), data)
            member("data.pkl", torch_pickle_bytes(arrays))
            member("byteorder", b"little")
            for i, a in enumerate(arrays.values()):
                member(f"data/{i}", memoryview(a.reshape(-1)).cast("B") if a.size else b"")
            member("version", b"3\n")
            z.comment = comment[:65535]
    atomic_write(path, write)
