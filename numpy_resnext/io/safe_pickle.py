"""A pickle reader that rebuilds NumPy arrays and refuses everything else.

A pickle is a small program: every GLOBAL/STACK_GLOBAL opcode names a Python callable and
the REDUCE opcode calls it. ``pickle.load`` on a downloaded ``.pdparams`` therefore runs
whatever the file names (``os.system``, ``builtins.eval`` ...). Weight files only need the
handful of callables NumPy uses to rebuild arrays, so :class:`SafeUnpickler` resolves just
those and raises :class:`FormatError` for any other name *before* it is looked up, so the
refused callable is never imported, let alone called.

Allowed globals (docs/formats.md says where each one comes from):

==============================================  ==============================================
``numpy._core.multiarray._reconstruct``          ndarray.__reduce__ under NumPy 2
``numpy.core.multiarray._reconstruct``           the same under NumPy 1 (older files)
``numpy.ndarray``                                the subtype argument of _reconstruct
``numpy.dtype``                                  dtype.__reduce__
``numpy[._]core.multiarray.scalar``              NumPy scalars (optimizer files hold a few)
``_codecs.encode``                               protocol 2 stores bytes as latin-1 text
``builtins.bytes`` (no arguments only)           protocol 2 spelling of b"" (empty arrays)
``builtins.tuple/list/dict/set/frozenset``       Paddle wraps tensors as tuple((name, array))
``collections.OrderedDict``                      state dicts saved as OrderedDict
==============================================  ==============================================

NumPy's own ``__setstate__`` never sees bytes from the file: a flipped byte in a dtype or
array state can crash NumPy itself (seen: segmentation faults and "Internal error"
RuntimeErrors). So ``_reconstruct`` and ``dtype`` return small stand-ins that check the
state the BUILD opcode hands them (simple numeric dtype, non-negative shape, a byte string
of exactly prod(shape) * itemsize bytes) and only then build the array through NumPy's
normal path; after loading, the stand-ins are replaced by the arrays and dtypes they hold.
Object dtypes are refused (an object array would hold arbitrary Python objects),
``_codecs.encode`` only accepts latin-1, and persistent ids (torch-style external
storage) are refused too.
"""

from __future__ import annotations

import _codecs
import collections
import io
import pickle
import re

import numpy as np

from ..bounded import check_shape, get_limits, short_repr
from ..errors import FormatError
from .pickle_scan import Refused, Truncated, scan_opcodes

__all__ = ["SafeUnpickler", "BoundedReader", "safe_load", "safe_loads", "ALLOWED_GLOBALS"]


def _multiarray():
    """NumPy's multiarray module, under its NumPy 2 name or its NumPy 1 name."""
    try:
        from numpy._core import multiarray  # NumPy >= 2
    except ImportError:  # pragma: no cover - NumPy 1
        from numpy.core import multiarray
    return multiarray


_MA = _multiarray()
_SIMPLE_DTYPE = re.compile(r"^[biufc]\d{1,2}$")  # 'f4', 'i8', 'b1', 'u1', 'c16' ...


# raised inside the unpickler and the opcode scan; turned into FormatError outside
_Refused, _Truncated = Refused, Truncated


class _Allowed:
    """An allow-listed global. Immutable: a BUILD opcode aimed at it is refused."""

    __slots__ = ("name", "func")

    def __init__(self, name, func):
        self.name, self.func = name, func

    def __call__(self, *args):
        return self.func(*args)

    def __setstate__(self, state):
        raise _Refused(f"BUILD applied to the global {self.name}")

    def __repr__(self):
        return self.name


class _DtypeStub:
    """numpy.dtype(spec, align, copy) + BUILD state, checked before NumPy sees them."""

    __slots__ = ("spec", "order")

    def __init__(self, spec, align=False, copy=True):
        if not (isinstance(spec, str) and _SIMPLE_DTYPE.match(spec)):
            raise _Refused(f"dtype {short_repr(spec)} (only plain numeric dtypes are allowed; "
                           "object, string and structured dtypes are not weights)")
        self.spec, self.order = spec, "="

    def __setstate__(self, state):
        if not (isinstance(state, tuple) and len(state) >= 5 and state[1] in ("<", ">", "|",
                "=") and state[2] is None and state[3] is None and state[4] is None):
            raise _Refused(f"dtype state {short_repr(state, 80)} (expected a plain numeric dtype)")
        self.order = state[1]

    def resolve(self) -> np.dtype:
        try:
            dtype = np.dtype(self.spec)
        except TypeError:
            raise _Refused(f"dtype {self.spec!r} does not exist") from None
        return dtype.newbyteorder(self.order) if self.order in "<>" else dtype


def _as_dtype(value) -> np.dtype:
    if isinstance(value, _DtypeStub):
        return value.resolve()
    raise _Refused(f"array dtype {short_repr(value)} (expected a numpy.dtype)")


class _ArrayStub:
    """numpy's _reconstruct(ndarray, (0,), b'b') + BUILD state, checked first."""

    __slots__ = ("array",)

    def __init__(self):
        self.array = None

    def __setstate__(self, state):
        if not (isinstance(state, tuple) and len(state) == 5 and state[0] == 1):
            raise _Refused(f"array state of type {type(state).__name__} "
                           "(expected (1, shape, dtype, is_fortran, data))")
        _, shape, dtype, fortran, data = state
        if not isinstance(shape, tuple):
            raise _Refused(f"array shape {short_repr(shape)} (expected a tuple)")
        dtype = _as_dtype(dtype)
        try:   # each axis bounded before anything is multiplied or allocated
            check_shape(shape, dtype.itemsize, "array", None)
        except FormatError as exc:
            raise _Refused(str(exc)) from None
        if isinstance(data, str):  # protocol 2 from Python 2: latin-1 text
            data = data.encode("latin1")
        if not isinstance(data, (bytes, bytearray)) or type(fortran) is not bool:
            raise _Refused("array data (expected bytes and a bool order flag)")
        need = int(np.prod(shape, dtype=object)) * dtype.itemsize if shape else dtype.itemsize
        if len(data) != need:
            raise _Refused(f"array of shape {list(shape)} and dtype {dtype} needs {need} "
                           f"bytes of data, the file holds {len(data)}")
        array = _MA._reconstruct(np.ndarray, (0,), b"b")
        array.__setstate__((1, shape, dtype, fortran, data))  # now known to be consistent
        self.array = array


def _reconstruct(subtype, shape, typecode):
    # ndarray.__reduce__ always passes ndarray itself; a subclass could run its own code.
    if subtype is not _NDARRAY:
        raise _Refused(f"_reconstruct of {short_repr(subtype)} (only numpy.ndarray is allowed)")
    return _ArrayStub()


def _scalar(dtype, data=None):
    dtype = _as_dtype(dtype)
    if not isinstance(data, bytes) or len(data) != dtype.itemsize:
        raise _Refused(f"numpy scalar of dtype {dtype} with {type(data).__name__} data")
    return _MA.scalar(dtype, data)


def _encode(text, encoding="utf-8", *rest):
    # Protocol 2 writes bytes as _codecs.encode(str, 'latin1'); nothing else is needed.
    if not (isinstance(text, str) and isinstance(encoding, str)) or encoding.replace(
            "-", "").replace("_", "").lower() not in ("latin1", "iso88591"):
        raise _Refused(f"_codecs.encode with encoding {short_repr(encoding, 40)} (only latin1)")
    return _codecs.encode(text, "latin1")


def _empty_bytes(*args):
    # Protocol 2 writes b"" as __builtin__.bytes() (no latin-1 text to encode). Any argument
    # could ask for a huge allocation (bytes(10**12)), so none is accepted.
    if args:
        raise _Refused("bytes() with arguments (only the empty bytes object is allowed)")
    return b""


def _ndarray_type(*args):
    raise _Refused("calling numpy.ndarray directly (arrays come from _reconstruct)")


_NDARRAY = _Allowed("numpy.ndarray", _ndarray_type)


def _allow(table):
    return {key: _Allowed(".".join(key), func) for key, func in table.items()}


_CONTAINERS = {"tuple": tuple, "list": list, "dict": dict, "set": set, "frozenset": frozenset,
               "bytes": _empty_bytes}
ALLOWED_GLOBALS = _allow({
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "scalar"): _scalar,
    ("numpy.core.multiarray", "scalar"): _scalar,
    ("numpy", "dtype"): _DtypeStub,
    ("_codecs", "encode"): _encode,
    ("collections", "OrderedDict"): collections.OrderedDict,
    # protocol 2 spells builtins as __builtin__ (Python 2 writers): the same objects
    **{(module, name): func for module in ("builtins", "__builtin__")
       for name, func in _CONTAINERS.items()},
})
ALLOWED_GLOBALS[("numpy", "ndarray")] = _NDARRAY


def finish_containers(obj, leaf, depth=0, done=None):
    """Rebuild ``obj`` through plain containers (dict, OrderedDict, list, tuple, set,
    frozenset), converting every other object with ``leaf(obj)`` (which returns its value
    or raises :class:`_Refused`). Each reader of pickles passes its own ``leaf``.

    An object the pickle shares (memoised once, referenced many times) is converted once
    and the result shared the same way (``done``, by id), as pickle itself does: a
    312-byte pickle nesting a list by reference would otherwise expand to gigabytes.
    """
    done = {} if done is None else done
    key = id(obj)
    if key in done:
        return done[key]
    if depth > get_limits().max_depth:
        raise _Refused(f"containers nested more than {get_limits().max_depth} deep")
    kind = type(obj)
    if kind in (dict, collections.OrderedDict):
        out = done[key] = kind()            # registered first: a cycle ends here
        for k, v in obj.items():
            out[finish_containers(k, leaf, depth + 1, done)] = finish_containers(v, leaf, depth + 1, done)
        return out
    if kind is list:
        out = done[key] = []
        out.extend(finish_containers(v, leaf, depth + 1, done) for v in obj)
        return out
    if kind in (tuple, set, frozenset):
        out = kind(finish_containers(v, leaf, depth + 1, done) for v in obj)
    else:
        out = leaf(obj)
    done[key] = out
    return out


def _numpy_leaf(obj):
    """The stand-ins become the arrays and dtypes they hold; a bare global is refused."""
    kind = type(obj)
    if kind is _ArrayStub:
        if obj.array is None:
            raise _Refused("an array without its data (no BUILD state)")
        return obj.array
    if kind is _DtypeStub:
        return obj.resolve()
    if kind is _Allowed:
        raise _Refused(f"a bare reference to the global {obj.name}")
    return obj


def _finish(obj):
    """Replace the stand-ins by the arrays/dtypes they hold, through plain containers."""
    return finish_containers(obj, _numpy_leaf)


class SafeUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose globals come only from its allow-list (:data:`ALLOWED_GLOBALS`;
    a subclass for another format sets ``allowed`` to its own table)."""

    allowed = ALLOWED_GLOBALS

    def find_class(self, module, name):
        # Never falls back to super().find_class: that would import `module`.
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise _Refused(f"global {module}.{name} is not on the allow-list") from None

    def persistent_load(self, pid):
        raise _Refused(f"persistent id {short_repr(pid)} (external storage is not a Paddle format)")


class BoundedReader:
    """A file wrapper whose ``read(n)`` never asks for more than the bytes left.

    A corrupt length field in a pickle (say 2**40 bytes of array data) then ends as a
    short read and a clear error instead of a huge allocation. The unpickler reads in large
    chunks, so the wrapper costs nothing measurable (about 300 calls for a 100 MB file).
    """

    def __init__(self, fileobj, size: int):
        self._f, self._size = fileobj, size

    def read(self, n: int = -1) -> bytes:
        left = self._size - self._f.tell()
        return self._f.read(left if n is None or n < 0 else min(n, left))

    def readinto(self, buffer) -> int:
        left = self._size - self._f.tell()
        view = memoryview(buffer)
        return self._f.readinto(view[:left] if len(view) > left else view)

    def readline(self) -> bytes:
        return self._f.readline()

    def tell(self) -> int:
        return self._f.tell()

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._f.seek(offset, whence)


def safe_loads(data: bytes, source: str = "<bytes>"):
    """Unpickle ``data`` with the allow-list; ``source`` names the file in errors."""
    return safe_load(io.BytesIO(data), source)


def safe_load(fileobj, source: str = "<stream>", size: int | None = None):
    """Unpickle one object from a binary file object with the allow-list.

    ``encoding='latin1'`` lets protocol 2 files (Python 2 ``str`` payloads) load as bytes,
    which is what NumPy's array state expects. ``fileobj`` must be seekable; ``size`` is
    its length in bytes (found by seeking when not given).
    """
    if size is None:
        here = fileobj.tell()
        size = fileobj.seek(0, 2)
        fileobj.seek(here)
    try:
        scan_opcodes(fileobj, size)
        try:
            obj = SafeUnpickler(fileobj, encoding="latin1").load()
        except _Refused as exc:
            # the unpickler reads ahead (a whole frame in protocol 4): a bound, not the spot
            raise _Refused(f"{exc} (the unpickler had read up to byte {fileobj.tell()})") \
                from None
        return _finish(obj)
    except _Truncated as exc:
        raise FormatError(f"{source}: truncated or corrupt pickle: {exc}") from None
    except _Refused as exc:
        raise FormatError(f"{source}: refused to unpickle: {exc}; this file is not a plain "
                          "weight file and was not executed") from None
    except FormatError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
            AttributeError, MemoryError, OverflowError, UnicodeError, RecursionError) as exc:
        at = fileobj.tell() if hasattr(fileobj, "tell") else "?"
        raise FormatError(f"{source}: not a readable pickle (stopped near byte {at}): "
                          f"{type(exc).__name__}: {str(exc)[:200]}") from None
