"""The pickle inside a ``torch.save`` file, read with an allow-list and without torch.

A torch checkpoint's pickle names a few torch callables and refers to its tensor data
through *persistent ids* instead of holding the bytes itself (see docs/torch_formats.md)::

    GLOBAL torch._utils._rebuild_tensor_v2
    (  BINPERSID ('storage', GLOBAL torch.FloatStorage, '0', 'cpu', 108),
       0, (4, 3, 3, 3), (27, 9, 3, 1), False, OrderedDict()  )  REDUCE

:class:`TorchUnpickler` resolves exactly the globals such a file needs (below) to inert
stand-ins of its own, and refuses every other name *before* it is looked up, so nothing
is imported and nothing runs: no torch, no ``os.system``, no ``builtins.exec``. This is at
least as strict as ``torch.load(weights_only=True)``, which allows more (devices, dtypes,
sparse and quantised rebuilds).

======================================================  ========================================
``torch._utils._rebuild_tensor_v2``                     every tensor of torch >= 1.0 files
``torch._utils._rebuild_tensor``                        the same in older files
``torch._utils._rebuild_parameter``                     an ``nn.Parameter`` (not a state_dict)
``torch.{Double,Float,Half,BFloat16,Long,Int,Short,``   storage types, only inside persistent
``Char,Byte,Bool}Storage``, ``torch.UntypedStorage``    ids
``collections.OrderedDict``, ``builtins`` containers     state dicts, wrappers, optimizer state
======================================================  ========================================

A tensor comes out as a :class:`TensorRef` (storage key, dtype, offset, size, stride):
nothing is read from the storages here. :mod:`.torch_file` checks each reference against
its storage and reads only the storages the chosen state dict uses, so an optimizer's
state beside the weights is never materialised.
"""

from __future__ import annotations

import collections
import math
import pickle

import numpy as np

from ..bounded import short_repr
from ..errors import FormatError
from .pickle_scan import FORBIDDEN, Truncated, scan_opcodes
from .safe_pickle import ALLOWED_GLOBALS, SafeUnpickler, _Allowed, _Refused, finish_containers

__all__ = ["TensorRef", "StorageInfo", "TorchUnpickler", "load_torch_pickle", "STORAGE_DTYPES"]

# storage type name -> the NumPy dtype of its elements; "bfloat16" has none (widened later)
STORAGE_DTYPES = {
    "DoubleStorage": "float64", "FloatStorage": "float32", "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16", "LongStorage": "int64", "IntStorage": "int32",
    "ShortStorage": "int16", "CharStorage": "int8", "ByteStorage": "uint8",
    "BoolStorage": "bool", "UntypedStorage": "uint8",
}
ITEMSIZE = {"float64": 8, "float32": 4, "float16": 2, "bfloat16": 2, "int64": 8, "int32": 4,
            "int16": 2, "int8": 1, "uint8": 1, "bool": 1}
MAX_DIMS = 32


class _StorageType(_Allowed):
    """``torch.FloatStorage`` & co.: only a label inside a persistent id, never called."""

    __slots__ = ("dtype",)

    def __init__(self, name, dtype):
        super().__init__(name, self._refuse)
        self.dtype = dtype

    def _refuse(self, *args):
        raise _Refused(f"calling {self.name} (storage types only label persistent ids)")


class StorageInfo:
    """One storage a persistent id names: its key, element dtype and element count."""

    __slots__ = ("key", "dtype", "numel")

    def __init__(self, key, dtype, numel):
        self.key, self.dtype, self.numel = key, dtype, numel

    def __setstate__(self, state):
        raise _Refused("BUILD applied to a storage")


class TensorRef:
    """A tensor as the pickle describes it; the data stays in the storage until asked for."""

    __slots__ = ("storage", "offset", "size", "stride")

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, size, stride

    @property
    def dtype(self) -> str:
        return self.storage.dtype

    @property
    def numel(self) -> int:
        return math.prod(self.size)

    def extent(self) -> int:
        """Storage elements this view spans (0 for an empty tensor)."""
        if self.numel == 0:
            return 0
        return self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride)) + 1

    def __setstate__(self, state):
        raise _Refused("BUILD applied to a tensor")

    def __repr__(self):
        return f"TensorRef({self.dtype}{list(self.size)} in storage {self.storage.key!r})"


def _int_tuple(value, what):
    if not (isinstance(value, tuple) and len(value) <= MAX_DIMS
            and all(type(v) is int for v in value)):
        raise _Refused(f"tensor {what} {short_repr(value, 80)} (expected a tuple of at most "
                       f"{MAX_DIMS} ints)")
    return value


def _no_hooks(hooks):
    if hooks is not None and not (type(hooks) in (dict, collections.OrderedDict) and not hooks):
        raise _Refused("a tensor with backward hooks (a weights file has none)")


def _rebuild_tensor(storage, offset, size, stride):
    if type(storage) is not StorageInfo:
        raise _Refused(f"tensor rebuilt from a {type(storage).__name__}, expected a storage "
                       "persistent id")
    if type(offset) is not int or offset < 0:
        raise _Refused(f"tensor storage offset {short_repr(offset, 40)}")
    size, stride = _int_tuple(size, "size"), _int_tuple(stride, "stride")
    if len(size) != len(stride) or min(size + stride, default=0) < 0:
        raise _Refused(f"tensor size {size} and stride {stride} (same length, non-negative)")
    return TensorRef(storage, offset, size, stride)


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None,
                       metadata=None):
    if type(requires_grad) is not bool or metadata not in (None, {}):
        raise _Refused("tensor requires_grad / metadata of unexpected types")
    _no_hooks(hooks)
    return _rebuild_tensor(storage, offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, hooks=None):
    if type(data) is not TensorRef or type(requires_grad) is not bool:
        raise _Refused("a Parameter that does not wrap a tensor")
    _no_hooks(hooks)
    return data


_CONTAINERS = {"tuple", "list", "dict", "set", "frozenset", "OrderedDict"}
TORCH_GLOBALS = {key: value for key, value in ALLOWED_GLOBALS.items()
                 if key[0] in ("builtins", "__builtin__", "collections") and key[1] in _CONTAINERS}
TORCH_GLOBALS.update({
    ("torch._utils", "_rebuild_tensor_v2"): _Allowed("torch._utils._rebuild_tensor_v2",
                                                      _rebuild_tensor_v2),
    ("torch._utils", "_rebuild_tensor"): _Allowed("torch._utils._rebuild_tensor", _rebuild_tensor),
    ("torch._utils", "_rebuild_parameter"): _Allowed("torch._utils._rebuild_parameter",
                                                      _rebuild_parameter),
})
TORCH_GLOBALS.update({("torch", n): _StorageType(f"torch.{n}", d) for n, d in STORAGE_DTYPES.items()})
TORCH_GLOBALS[("torch.storage", "UntypedStorage")] = _StorageType("torch.storage.UntypedStorage",
                                                                  "uint8")


class TorchUnpickler(SafeUnpickler):
    """Unpickler for torch.save pickles: allow-listed globals, storages as persistent ids.

    ``storages`` collects every storage the pickle names (key -> :class:`StorageInfo`);
    the same key named twice must agree on dtype and size.
    """

    def __init__(self, fileobj, legacy=False):
        super().__init__(fileobj, encoding="utf-8")
        self.legacy = legacy
        self.storages = {}

    allowed = TORCH_GLOBALS                  # SafeUnpickler.find_class looks names up here

    def persistent_load(self, pid):
        n = 6 if self.legacy else 5
        if not (isinstance(pid, tuple) and len(pid) == n and pid[0] == "storage"):
            raise _Refused(f"persistent id {short_repr(pid, 80)} (expected ('storage', type, key, "
                           f"location, numel{', None' if self.legacy else ''}))")
        _, kind, key, location, numel = pid[:5]
        if type(kind) is not _StorageType or not isinstance(key, str) \
                or not isinstance(location, str) or type(numel) is not int or numel < 0:
            raise _Refused(f"persistent id {short_repr(pid, 80)}")
        if self.legacy and pid[5] is not None:
            raise _Refused(f"storage {short_repr(key)} is a view of another storage (pre-1.0 files)")
        if not location.startswith(("cpu", "cuda", "mps", "xpu")):
            raise _Refused(f"storage {short_repr(key)} on unknown device {short_repr(location, 40)}")
        known = self.storages.get(key)
        if known is None:
            known = self.storages[key] = StorageInfo(key, kind.dtype, numel)
        elif (known.dtype, known.numel) != (kind.dtype, numel):
            raise _Refused(f"storage {short_repr(key)} named as {known.dtype}[{known.numel}] and as "
                           f"{kind.dtype}[{numel}]")
        return known


# torch.save names its storages with BINPERSID (protocol 2); everything else the shared
# pass refuses stays refused (PERSID, protocol 0's text form, is never written by torch)
TORCH_FORBIDDEN = FORBIDDEN - {"BINPERSID"}


def scan(fileobj, size):
    """The opcode pass of :mod:`.pickle_scan` (lengths against the bytes left, memo indices,
    container depth, big-integer dict keys) before the unpickler sees a byte; persistent
    ids allowed, as torch's storages are named by them. The stream is left where it was."""
    scan_opcodes(fileobj, size, forbidden=TORCH_FORBIDDEN)


def _torch_leaf(obj):
    """Scalars and TensorRefs pass; a bare global, a storage or anything else is refused."""
    kind = type(obj)
    if kind in (TensorRef, str, bytes, int, float, bool, type(None), complex):
        return obj
    if isinstance(obj, _Allowed):
        raise _Refused(f"a bare reference to the global {obj.name}")
    raise _Refused(f"an object of type {kind.__name__}")


def _finish(obj):
    """Plain containers, scalars and TensorRefs only (shared objects converted once and
    kept shared: :func:`.safe_pickle.finish_containers`)."""
    return finish_containers(obj, _torch_leaf)


def load_torch_pickle(fileobj, source, size, legacy=False):
    """(object, storages) from the pickle at the stream's position; FormatError if unsafe.

    ``size`` bounds every read (bytes left in the file or the archive member).
    """
    try:
        scan(fileobj, size)
        unpickler = TorchUnpickler(fileobj, legacy=legacy)
        obj = _finish(unpickler.load())
        return obj, unpickler.storages
    except Truncated as exc:
        raise FormatError(f"{source}: truncated or corrupt pickle: {exc}") from None
    except _Refused as exc:
        raise FormatError(f"{source}: refused to unpickle: {exc}; this is not a plain "
                          "weights file and nothing in it was executed") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
            AttributeError, MemoryError, OverflowError, UnicodeError, RecursionError) as exc:
        raise FormatError(f"{source}: not a readable torch pickle: {type(exc).__name__}: "
                          f"{str(exc)[:200]}") from None


def widen_bfloat16(raw: np.ndarray) -> np.ndarray:
    """bfloat16 bits (uint16) -> float32, exactly: bfloat16 is float32's top 16 bits."""
    return (raw.astype(np.uint32) << np.uint32(16)).view(np.float32)
