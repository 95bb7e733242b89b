"""The one allow-list of the callables a weight pickle may name, and the stand-ins they
resolve to.

A pickle is a small program: every GLOBAL/STACK_GLOBAL opcode names a Python callable and
the REDUCE opcode calls it. ``pickle.load`` on a downloaded weight file therefore runs
whatever the file names (``os.system``, ``builtins.eval`` ...). Weight files need only the
few callables below, so the unpickler resolves just those, through this table, and
refuses any other name *before* it is looked up: the refused callable is never imported,
let alone called. :func:`allow_list` builds the table once; each format takes its subset
by name (:func:`allowed`): "paddle" for paddle.save pickles of NumPy arrays, "torch" for
the pickle inside a torch.save file (docs/formats.md and docs/torch_formats.md say where
each one comes from).

======================================================  ========  =========================================
global                                                  formats   why
======================================================  ========  =========================================
``numpy._core.multiarray._reconstruct``                 paddle    ndarray.__reduce__ under NumPy 2
``numpy.core.multiarray._reconstruct``                  paddle    the same under NumPy 1 (older files)
``numpy.ndarray``                                       paddle    the subtype argument of _reconstruct
``numpy.dtype``                                         paddle    dtype.__reduce__
``numpy[._]core.multiarray.scalar``                     paddle    NumPy scalars (optimizer files hold a few)
``_codecs.encode``                                      paddle    protocol 2 stores bytes as latin-1 text
``builtins.bytes`` (no arguments only)                  paddle    protocol 2 spelling of b"" (empty arrays)
``builtins.tuple/list/dict/set/frozenset``              both      Paddle wraps tensors as tuple((name, array))
``collections.OrderedDict``                             both      state dicts saved as OrderedDict
                                                                  (dict, set, frozenset and OrderedDict
                                                                  check their keys first: see below)
``torch._utils._rebuild_tensor_v2``                     torch     every tensor of torch >= 1.0 files
``torch._utils._rebuild_tensor``                        torch     the same in older files
``torch._utils._rebuild_parameter``                     torch     an ``nn.Parameter`` (not a state_dict)
``torch.<Type>Storage``, ``torch.UntypedStorage``       torch     storage types (:mod:`..dtypes`), only
                                                                  inside persistent ids
======================================================  ========  =========================================

Python 2 writers spell ``builtins`` as ``__builtin__``: the same objects.

NumPy's own ``__setstate__`` never sees bytes from the file: a flipped byte in a dtype or
array state can crash NumPy itself (seen: segmentation faults and "Internal error"
RuntimeErrors). So ``_reconstruct`` and ``dtype`` return small stand-ins that check the
state the BUILD opcode hands them (simple numeric dtype, non-negative shape, a byte string
of exactly prod(shape) * itemsize bytes) and only then build the array through NumPy's
normal path; after loading, the stand-ins are replaced by the arrays and dtypes they hold.
Object dtypes are refused (an object array would hold arbitrary Python objects) and
``_codecs.encode`` only accepts latin-1. The constructors that hash what they are given
(``dict``, ``set``, ``frozenset``, ``OrderedDict``) accept at most one list (of items, or
of (key, value) pairs) and check every key before hashing any: a string, bytes, an
integer below 2**61, a bool or None, as the opcode scan requires of the keys it sees
(:mod:`.scan`), so keys solved to share one hash cannot make loading quadratic. A torch tensor comes out as a :class:`TensorRef`
(storage, offset, size, stride): nothing is read from the storages here. This is at least
as strict as ``torch.load(weights_only=True)``, which allows more (devices, dtypes, sparse
and quantised rebuilds).
"""

from __future__ import annotations

import _codecs
import collections
import math
import re

import numpy as np

from ...bounded import charge, check_shape, short_repr
from ...bounded.limits import MAX_NDIM
from ...errors import FormatError
from ..dtypes import TORCH_STORAGES, TORCH_UNTYPED
from .scan import BIG_INT, Refused

__all__ = ["Allowed", "StorageType", "StorageInfo", "TensorRef", "ArrayStub", "DtypeStub",
           "ALLOW_LIST", "allow_list", "allowed"]

_SIMPLE_DTYPE = re.compile(r"^[biufc]\d{1,2}$")  # 'f4', 'i8', 'b1', 'u1', 'c16' ...


def _multiarray():
    """NumPy's multiarray module, under its NumPy 2 name or its NumPy 1 name."""
    try:
        from numpy._core import multiarray  # NumPy >= 2
    except ImportError:  # pragma: no cover - NumPy 1
        from numpy.core import multiarray
    return multiarray


_MA = _multiarray()


class Allowed:
    """An allow-listed global. Immutable: a BUILD opcode aimed at it is refused."""

    __slots__ = ("name", "func")

    def __init__(self, name, func):
        self.name, self.func = name, func

    def __call__(self, *args):
        return self.func(*args)

    def __setstate__(self, state):
        raise Refused(f"BUILD applied to the global {self.name}")

    def __repr__(self):
        return self.name


# --- NumPy arrays (paddle.save) -------------------------------------------------------------
class DtypeStub:
    """numpy.dtype(spec, align, copy) + BUILD state, checked before NumPy sees them."""

    __slots__ = ("spec", "order")

    def __init__(self, spec, align=False, copy=True):
        if not (isinstance(spec, str) and _SIMPLE_DTYPE.match(spec)):
            raise Refused(f"dtype {short_repr(spec)} (only plain numeric dtypes are allowed; "
                          "object, string and structured dtypes are not weights)")
        self.spec, self.order = spec, "="

    def __setstate__(self, state):
        if not (isinstance(state, tuple) and len(state) >= 5 and state[1] in ("<", ">", "|",
                "=") and state[2] is None and state[3] is None and state[4] is None):
            raise Refused(f"dtype state {short_repr(state, 80)} (expected a plain numeric dtype)")
        self.order = state[1]

    def resolve(self) -> np.dtype:
        try:
            dtype = np.dtype(self.spec)
        except TypeError:
            raise Refused(f"dtype {self.spec!r} does not exist") from None
        return dtype.newbyteorder(self.order) if self.order in "<>" else dtype


def _as_dtype(value) -> np.dtype:
    if isinstance(value, DtypeStub):
        return value.resolve()
    raise Refused(f"array dtype {short_repr(value)} (expected a numpy.dtype)")


class ArrayStub:
    """numpy's _reconstruct(ndarray, (0,), b'b') + BUILD state, checked first."""

    __slots__ = ("array",)

    def __init__(self):
        self.array = None

    def __setstate__(self, state):
        if not (isinstance(state, tuple) and len(state) == 5 and state[0] == 1):
            raise Refused(f"array state of type {type(state).__name__} "
                          "(expected (1, shape, dtype, is_fortran, data))")
        _, shape, dtype, fortran, data = state
        if not isinstance(shape, tuple):
            raise Refused(f"array shape {short_repr(shape)} (expected a tuple)")
        dtype = _as_dtype(dtype)
        try:   # each axis bounded before anything is multiplied or allocated
            check_shape(shape, dtype.itemsize, "array", None)
        except FormatError as exc:
            raise Refused(str(exc)) from None
        if isinstance(data, str):  # protocol 2 from Python 2: latin-1 text
            data = data.encode("latin1")
        if not isinstance(data, (bytes, bytearray)) or type(fortran) is not bool:
            raise Refused("array data (expected bytes and a bool order flag)")
        need = int(np.prod(shape, dtype=object)) * dtype.itemsize if shape else dtype.itemsize
        if len(data) != need:
            raise Refused(f"array of shape {list(shape)} and dtype {dtype} needs {need} "
                          f"bytes of data, the file holds {len(data)}")
        # one bytes object can be referenced by many arrays: each array counts
        charge(need, lambda: f"a pickled {dtype} array of shape {short_repr(list(shape))}")
        array = _MA._reconstruct(np.ndarray, (0,), b"b")
        array.__setstate__((1, shape, dtype, fortran, data))  # now known to be consistent
        self.array = array


def _reconstruct(subtype, shape, typecode):
    # ndarray.__reduce__ always passes ndarray itself; a subclass could run its own code.
    if subtype is not _NDARRAY:
        raise Refused(f"_reconstruct of {short_repr(subtype)} (only numpy.ndarray is allowed)")
    return ArrayStub()


def _scalar(dtype, data=None):
    dtype = _as_dtype(dtype)
    if not isinstance(data, bytes) or len(data) != dtype.itemsize:
        raise Refused(f"numpy scalar of dtype {dtype} with {type(data).__name__} data")
    return _MA.scalar(dtype, data)


def _encode(text, encoding="utf-8", *rest):
    # Protocol 2 writes bytes as _codecs.encode(str, 'latin1'); nothing else is needed.
    if not (isinstance(text, str) and isinstance(encoding, str)) or encoding.replace(
            "-", "").replace("_", "").lower() not in ("latin1", "iso88591"):
        raise Refused(f"_codecs.encode with encoding {short_repr(encoding, 40)} (only latin1)")
    charge(len(text), "bytes encoded from latin-1 text")       # a new copy per call
    return _codecs.encode(text, "latin1")


def _empty_bytes(*args):
    # Protocol 2 writes b"" as __builtin__.bytes() (no latin-1 text to encode). Any argument
    # could ask for a huge allocation (bytes(10**12)), so none is accepted.
    if args:
        raise Refused("bytes() with arguments (only the empty bytes object is allowed)")
    return b""


def _plain_key(key) -> bool:
    kind = type(key)
    return kind in (str, bytes, bool, type(None)) or (kind is int and -BIG_INT < key < BIG_INT)


def _hashing(kind, pairs: bool):
    """``kind`` (dict, set ...) called with no argument or one list (of (key, value) pairs
    when ``pairs``), every key checked before any is hashed."""
    label = getattr(kind, "__name__", str(kind))

    def make(*args):
        if not args:
            return kind()
        if len(args) > 1 or type(args[0]) not in (list, tuple):
            raise Refused(f"{label}() with {len(args)} argument(s) of type "
                          f"{type(args[0]).__name__} (expected one list)")
        for item in args[0]:
            if pairs and not (type(item) in (tuple, list) and len(item) == 2):
                raise Refused(f"{label}() of an item that is not a (key, value) pair")
            key = item[0] if pairs else item
            if not _plain_key(key):
                raise Refused(f"{label}() of a key or item of type {type(key).__name__} (keys "
                              "are strings, bytes, integers below 2**61, bools or None: others "
                              "can be solved to share one hash and make loading quadratic)")
        return kind(args[0])
    return make


def _ndarray_type(*args):
    raise Refused("calling numpy.ndarray directly (arrays come from _reconstruct)")


_NDARRAY = Allowed("numpy.ndarray", _ndarray_type)


# --- torch tensors (torch.save) ---------------------------------------------------------
class StorageType(Allowed):
    """``torch.FloatStorage`` & co.: only a label inside a persistent id, never called."""

    __slots__ = ("dtype",)

    def __init__(self, name, dtype):
        super().__init__(name, self._refuse)
        self.dtype = dtype

    def _refuse(self, *args):
        raise Refused(f"calling {self.name} (storage types only label persistent ids)")


class StorageInfo:
    """One storage a persistent id names: its key, element dtype and element count."""

    __slots__ = ("key", "dtype", "numel")

    def __init__(self, key, dtype, numel):
        self.key, self.dtype, self.numel = key, dtype, numel

    def __setstate__(self, state):
        raise Refused("BUILD applied to a storage")


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
        raise Refused("BUILD applied to a tensor")

    def __repr__(self):
        return f"TensorRef({self.dtype}{list(self.size)} in storage {self.storage.key!r})"


def _int_tuple(value, what):
    if not (isinstance(value, tuple) and len(value) <= MAX_NDIM
            and all(type(v) is int for v in value)):
        raise Refused(f"tensor {what} {short_repr(value, 80)} (expected a tuple of at most "
                      f"{MAX_NDIM} ints)")
    return value


def _no_hooks(hooks):
    if hooks is not None and not (type(hooks) in (dict, collections.OrderedDict) and not hooks):
        raise Refused("a tensor with backward hooks (a weights file has none)")


def _rebuild_tensor(storage, offset, size, stride):
    if type(storage) is not StorageInfo:
        raise Refused(f"tensor rebuilt from a {type(storage).__name__}, expected a storage "
                      "persistent id")
    if type(offset) is not int or offset < 0:
        raise Refused(f"tensor storage offset {short_repr(offset, 40)}")
    size, stride = _int_tuple(size, "size"), _int_tuple(stride, "stride")
    if len(size) != len(stride) or min(size + stride, default=0) < 0:
        raise Refused(f"tensor size {size} and stride {stride} (same length, non-negative)")
    return TensorRef(storage, offset, size, stride)


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None,
                       metadata=None):
    if type(requires_grad) is not bool or metadata not in (None, {}):
        raise Refused("tensor requires_grad / metadata of unexpected types")
    _no_hooks(hooks)
    return _rebuild_tensor(storage, offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, hooks=None):
    if type(data) is not TensorRef or type(requires_grad) is not bool:
        raise Refused("a Parameter that does not wrap a tensor")
    _no_hooks(hooks)
    return data


# --- the table ----------------------------------------------------------------------------
PADDLE, TORCH, BOTH = ("paddle",), ("torch",), ("paddle", "torch")


def allow_list() -> dict:
    """{(module, name): (the Allowed it resolves to, the formats that may name it)}."""
    rows = [
        ("numpy._core.multiarray", "_reconstruct", _reconstruct, PADDLE),
        ("numpy.core.multiarray", "_reconstruct", _reconstruct, PADDLE),
        ("numpy._core.multiarray", "scalar", _scalar, PADDLE),
        ("numpy.core.multiarray", "scalar", _scalar, PADDLE),
        ("numpy", "dtype", DtypeStub, PADDLE),
        ("_codecs", "encode", _encode, PADDLE),
        ("collections", "OrderedDict", _hashing(collections.OrderedDict, True), BOTH),
        ("torch._utils", "_rebuild_tensor_v2", _rebuild_tensor_v2, TORCH),
        ("torch._utils", "_rebuild_tensor", _rebuild_tensor, TORCH),
        ("torch._utils", "_rebuild_parameter", _rebuild_parameter, TORCH),
    ]
    containers = {"tuple": tuple, "list": list, "dict": _hashing(dict, True),
                  "set": _hashing(set, False), "frozenset": _hashing(frozenset, False)}
    for module in ("builtins", "__builtin__"):
        rows += [(module, name, func, BOTH) for name, func in containers.items()]
        rows.append((module, "bytes", _empty_bytes, PADDLE))
    table = {(module, name): (Allowed(f"{module}.{name}", func), formats)
             for module, name, func, formats in rows}
    table[("numpy", "ndarray")] = (_NDARRAY, PADDLE)
    for storage, dtype in TORCH_STORAGES.items():
        table[("torch", storage)] = (StorageType(f"torch.{storage}", dtype), TORCH)
    table[("torch.storage", TORCH_UNTYPED)] = (
        StorageType(f"torch.storage.{TORCH_UNTYPED}", TORCH_STORAGES[TORCH_UNTYPED]), TORCH)
    return table


ALLOW_LIST = allow_list()


def allowed(format: str) -> dict:
    """{(module, name): Allowed}: the part of :data:`ALLOW_LIST` the format ``format``
    ("paddle" or "torch") may name."""
    return {key: entry for key, (entry, formats) in ALLOW_LIST.items() if format in formats}
