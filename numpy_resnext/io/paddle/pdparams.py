"""Read ``paddle.save`` pickles (``.pdparams``, ``.pdopt``) without Paddle.

Layout (docs/formats.md, "Paddle's pickles"): a pickle, protocol 4 by default (2 or 3 when asked), of a plain dict
``{key: ndarray, ...}`` in the layer's state_dict order, plus two bookkeeping entries:

- ``"StructuredToParameterName@@"``: ``{key: parameter name}``, e.g.
  ``"conv._conv.weight" -> "res_conv1_weights"`` (absent in plain-pickle files);
- ``"UnpackBigParamInfor@@"``: present only in protocol 2/3 files holding an array of more
  than ``(2**30 - 1) // itemsize`` elements. Such an array is stored flattened, cut into
  slices ``"<key>@@.0"``, ``"<key>@@.1"`` ... and described as
  ``{key: {"OriginShape": shape, "slices": [slice keys]}}``.

:func:`read_pdparams` returns the tensors in the file's own key order with the split
tensors put back together (at the position of their first slice), and the bookkeeping
entries separately. Non-array values (an optimizer's learning-rate state, say) are
returned in ``extras``, never mixed into the tensors. ``paddle.save(tensor)`` pickles one
``(name, ndarray)`` tuple; it reads as a one-tensor dict.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...bounded import charge, check_nbytes, check_shape, clip_list, open_regular, short_repr
from ...errors import FormatError
from ..unpickle import BoundedReader, load

NAME_TABLE_KEY = "StructuredToParameterName@@"
SPLIT_INFO_KEY = "UnpackBigParamInfor@@"  # sic: Paddle's spelling
BOOKKEEPING_KEYS = (NAME_TABLE_KEY, SPLIT_INFO_KEY)

__all__ = ["PdparamsContent", "read_pdparams", "unpickle_file", "reassemble_split",
           "NAME_TABLE_KEY", "SPLIT_INFO_KEY"]


@dataclass
class PdparamsContent:
    """What a paddle.save dict holds, split by role."""

    tensors: "OrderedDict[str, np.ndarray]"
    structured_to_param: dict | None
    split_info: dict | None
    extras: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)


def unpickle_file(path) -> object:
    """Unpickle ``path`` with the allow-list (see :mod:`..unpickle`)."""
    path = Path(path)
    f, size = open_regular(path, "weight file")
    with f:
        head = f.read(1)
        if head != b"\x80":
            raise FormatError(f"{path}: wrong magic: byte 0 is {head.hex() or 'missing'}, "
                              "expected 80 (the pickle protocol 2+ header paddle.save writes)")
        f.seek(0)
        obj, _ = load(BoundedReader(f.file, size), str(path), size)   # load() maps OSError
        end = f.tell()
    if end != size:
        raise FormatError(f"{path}: {size - end} unexpected bytes after the end of the "
                          f"pickle at byte {end}")
    return obj


def _unwrap_tensor(value):
    """Paddle pickles a bare Tensor as tuple((name, ndarray)) (``_pickle_save``)."""
    if (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str)
            and isinstance(value[1], np.ndarray)):
        return value[1]
    return value


def _describe(value) -> str:
    if isinstance(value, np.ndarray):
        return f"shape {list(value.shape)}"
    return f"a {type(value).__name__}"


def reassemble_split(entries: dict, split_info: dict, source: str) -> "OrderedDict":
    """Replace the ``key@@.i`` slices described by ``split_info`` by the whole arrays.

    The array takes the position of its first slice, so the key order stays the file's.
    """
    if not isinstance(split_info, dict):
        raise FormatError(f"{source}: {SPLIT_INFO_KEY} is a {type(split_info).__name__}, "
                          "expected a dict {key: {'OriginShape', 'slices'}}")
    first_slice, parts_of, claimed = {}, {}, set()
    total_bytes = 0
    for key, info in split_info.items():
        label = short_repr(key)
        if not (isinstance(key, str) and isinstance(info, dict) and "OriginShape" in info
                and "slices" in info and isinstance(info["OriginShape"], (list, tuple))
                and isinstance(info["slices"], (list, tuple))):
            raise FormatError(f"{source}: {SPLIT_INFO_KEY}[{label}] is malformed ("
                              f"{short_repr(info)}); expected {{'OriginShape': shape, "
                              "'slices': [keys]}")
        shape, slices = tuple(info["OriginShape"]), list(info["slices"])
        bad = [s for s in slices if not isinstance(s, str)]
        if bad or len(slices) > len(entries):
            raise FormatError(f"{source}: tensor {label} is split into {len(slices)} slices "
                              f"({short_repr(slices)}); expected distinct slice names among "
                              f"the file's {len(entries)} entries")
        seen = set()
        reused = [s for s in slices if s in claimed or s in seen or seen.add(s)]
        if reused:
            raise FormatError(f"{source}: tensor {label}: slice {short_repr(reused[0])} is "
                              "used twice; each slice belongs to one tensor once")
        claimed.update(slices)
        missing = [s for s in slices if s not in entries]
        if not slices or missing:
            raise FormatError(f"{source}: tensor {label} is split into {clip_list(slices, 5)}, "
                              f"but slices {clip_list(missing or slices, 5)} are missing from "
                              "the file")
        parts = [entries[s] for s in slices]
        bad = [f"{s[:80]}: {_describe(p)}" for s, p in zip(slices, parts)
               if not (isinstance(p, np.ndarray) and p.ndim == 1)]
        if bad:
            raise FormatError(f"{source}: slices of tensor {label} must be 1-D arrays, "
                              f"found {clip_list(bad, 5, '; ')}")
        if len({p.dtype for p in parts}) != 1:
            raise FormatError(f"{source}: slices of tensor {label} have mixed dtypes "
                              f"{sorted({str(p.dtype) for p in parts})}")
        if not all(type(d) is int and d >= 0 for d in shape):
            raise FormatError(f"{source}: {SPLIT_INFO_KEY}[{label}]: OriginShape "
                              f"{short_repr(shape)} is not a list of non-negative integers")
        nbytes = check_shape(shape, parts[0].dtype.itemsize, f"tensor {label}", source)
        total = sum(p.size for p in parts)
        if total * parts[0].dtype.itemsize != nbytes:
            raise FormatError(f"{source}: slices of tensor {label} hold {total} elements, "
                              f"but OriginShape {short_repr(list(shape))} needs "
                              f"{nbytes // parts[0].dtype.itemsize}")
        total_bytes += nbytes
        check_nbytes(total_bytes, "the reassembled split tensors together", source)
        parts_of[key] = (shape, slices)
        first_slice[slices[0]] = key
    consumed = {s for _, slices in parts_of.values() for s in slices}
    out = OrderedDict()
    for key, value in entries.items():
        if key in first_slice:
            whole = first_slice[key]
            shape, slices = parts_of[whole]
            charge(sum(entries[s].nbytes for s in slices), f"tensor {short_repr(whole)} "
                   "reassembled from its slices", source)
            out[whole] = np.concatenate([entries[s] for s in slices]).reshape(shape)
        elif key not in consumed:
            out[key] = value
    return out


def read_pdparams(path) -> PdparamsContent:
    """Read a paddle.save dict file into tensors + bookkeeping (no Paddle needed)."""
    path = Path(path)
    obj = unpickle_file(path)
    bare = _unwrap_tensor(obj)
    if isinstance(bare, np.ndarray):  # paddle.save(tensor): one (name, array) tuple
        name = obj[0] if isinstance(obj, tuple) else path.name
        return PdparamsContent(OrderedDict([(name, bare)]), None, None, {},
                               [f"a single pickled tensor named {name!r}"])
    if not isinstance(obj, dict):
        raise FormatError(f"{path}: holds a pickled {type(obj).__name__}, expected a dict "
                          "{name: array} as written by paddle.save(layer.state_dict())")
    for key in obj:
        if not isinstance(key, str):
            raise FormatError(f"{path}: key {short_repr(key)} is a {type(key).__name__}, "
                              "expected str")
    name_table = obj.get(NAME_TABLE_KEY)
    split_info = obj.get(SPLIT_INFO_KEY)
    entries = OrderedDict((k, _unwrap_tensor(v)) for k, v in obj.items()
                          if k not in BOOKKEEPING_KEYS)
    notes = []
    if split_info is not None and not (isinstance(split_info, dict) and not split_info):
        entries = reassemble_split(entries, split_info, str(path))
        notes.append(f"reassembled {len(split_info)} tensor(s) split by paddle.save: "
                     f"{', '.join(split_info)}")
    if name_table is not None and not (isinstance(name_table, dict) and all(
            isinstance(k, str) and isinstance(v, str) for k, v in name_table.items())):
        raise FormatError(f"{path}: {NAME_TABLE_KEY} is {short_repr(name_table)}, "
                          "expected a dict {key: parameter name} of strings")
    tensors, extras = OrderedDict(), {}
    for key, value in entries.items():
        if isinstance(value, np.ndarray):
            tensors[key] = value
        else:
            extras[key] = value
    if extras:
        notes.append(f"{len(extras)} non-array entr{'y' if len(extras) == 1 else 'ies'} "
                     f"kept aside: {clip_list(extras, 5)}")
    return PdparamsContent(tensors, None if name_table is None else dict(name_table),
                           split_info, extras, notes)
