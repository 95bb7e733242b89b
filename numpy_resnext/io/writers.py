"""Writing weights for another framework, with no framework installed.

:func:`write_weights` picks the format from the output's extension:

==============================  ===============================================================
``.npz``                        canonical names, one array per tensor (``numpy.load``)
``.safetensors``                torch names; metadata in ``__metadata__``
``.pth`` ``.pt`` ``.bin``       torch.save's zip format, readable by
                                ``torch.load(weights_only=True)``; metadata as JSON in the
                                zip archive comment (a state dict key would break
                                ``load_state_dict(strict=True)``)
``.pdparams``                   a paddle.save-style pickle {key: ndarray}, head [in, out];
                                no metadata (an extra key would reach ``set_state_dict``)
==============================  ===============================================================

Every file is written atomically (temporary file + rename). The torch pickle is emitted
opcode by opcode (:func:`torch_pickle_bytes`): the only globals it names are the three
``torch.load(weights_only=True)`` allows for a state dict.
"""

from __future__ import annotations

import json
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np

from .._files import atomic_write, save_npz
from ..errors import WeightsError
from .safetensors import write_safetensors
from .torch_names import default_scheme, file_state

__all__ = ["write_weights", "write_torch_zip", "torch_pickle_bytes", "FORMATS"]

FORMATS = (".npz", ".safetensors", ".pth", ".pt", ".bin", ".pdparams")
STORAGE_TYPES = {"float64": "DoubleStorage", "float32": "FloatStorage", "float16": "HalfStorage",
                 "int64": "LongStorage", "int32": "IntStorage", "uint8": "ByteStorage",
                 "bool": "BoolStorage"}
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


def torch_pickle_bytes(arrays) -> bytes:
    """The data.pkl of ``torch.save(state_dict)`` for {name: C-contiguous array}: storage
    i holds tensor i, named by the persistent id ('storage', type, str(i), 'cpu', numel)."""
    out = [b"\x80\x02", _ORDERED_DICT, b"("]
    for i, (name, a) in enumerate(arrays.items()):
        strides = [int(np.prod(a.shape[d + 1:], dtype=np.int64)) for d in range(a.ndim)]
        pid = (b"(" + _str("storage") + f"ctorch\n{STORAGE_TYPES[a.dtype.name]}\n".encode()
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
    """``torch.save(state_dict, path)`` without torch: zip format, uncompressed, aligned."""
    arrays = {k: np.ascontiguousarray(v).astype(np.asarray(v).dtype.newbyteorder("<"),
                                                copy=False) for k, v in arrays.items()}
    bad = [f"{k}: {v.dtype}" for k, v in arrays.items() if v.dtype.name not in STORAGE_TYPES]
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


def _paddle_pickle(path, state):
    def write(tmp):
        with open(tmp, "wb") as f:
            pickle.dump({k: np.ascontiguousarray(v) for k, v in state.items()}, f, protocol=4)
    atomic_write(path, write)


def write_weights(path, params, config, scheme=None, metadata=None):
    """Write canonical ``params`` of ``config`` to ``path`` (format from the extension).

    Returns (scheme used, why that scheme, what the metadata went into).
    """
    ext = Path(path).suffix.lower()
    if ext not in FORMATS:
        raise WeightsError(f"output {path}: unknown extension {ext or '(none)'!r}; "
                           f"expected one of {', '.join(FORMATS)}")
    why = "asked for"
    if scheme is None:
        scheme, why = default_scheme(config, ext)
    torch_like = scheme in ("torchvision", "timm")
    if ext in (".pth", ".pt", ".bin", ".safetensors") and not torch_like:
        raise WeightsError(f"{ext} files carry torch names: --names torchvision or timm, "
                           f"not {scheme}")
    if ext == ".pdparams" and scheme not in ("ppcls", "ppcls_wsl", "paddle_vision"):
        raise WeightsError(f".pdparams carries Paddle names: --names ppcls, ppcls_wsl or "
                           f"paddle_vision, not {scheme}")
    if ext == ".npz" and scheme != "canonical":
        raise WeightsError(".npz files carry canonical names; --names does not apply")
    state = file_state(params, config, scheme)
    meta = dict(metadata or {}, architecture=config.name, names=scheme)
    if ext == ".npz":
        save_npz(path, state)
        return scheme, why, "none written (.npz holds arrays only)"
    if ext == ".safetensors":
        write_safetensors(path, state, dict(meta, format="pt"))
        return scheme, why, "in the safetensors __metadata__"
    if ext == ".pdparams":
        _paddle_pickle(path, state)
        return scheme, why, "none written (every .pdparams key reaches set_state_dict)"
    write_torch_zip(path, state, json.dumps(meta, sort_keys=True).encode("utf-8"))
    return scheme, why, "in the zip archive comment"
