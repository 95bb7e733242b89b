"""A pickle reader that rebuilds NumPy arrays and refuses everything else.

A pickle is a small program: every GLOBAL/STACK_GLOBAL opcode names a Python callable and
the REDUCE opcode calls it. ``pickle.load`` on a downloaded ``.pdparams`` therefore runs
whatever the file names (``os.system``, ``builtins.eval`` ...). Weight files only need the
handful of callables NumPy uses to rebuild arrays, so :class:`SafeUnpickler` resolves just
those and raises :class:`FormatError` for any other name *before* it is looked up, so the
refused callable is never imported, let alone called.

Allowed globals (see FACTS.md §4 for where each one comes from):

==============================================  ==============================================
``numpy._core.multiarray._reconstruct``          ndarray.__reduce__ under NumPy 2
``numpy.core.multiarray._reconstruct``           the same under NumPy 1 (older files)
``numpy.ndarray``                                the subtype argument of _reconstruct
``numpy.dtype``                                  dtype.__reduce__
``numpy[._]core.multiarray.scalar``              NumPy scalars (optimizer files hold a few)
``_codecs.encode``                               protocol 2 stores bytes as latin-1 text
``builtins.tuple/list/dict/set/frozenset``       Paddle wraps tensors as tuple((name, array))
``collections.OrderedDict``                      state dicts saved as OrderedDict
==============================================  ==============================================

Each allowed callable is wrapped so that it also checks its arguments: ``_reconstruct``
only builds plain ``ndarray``; ``dtype`` and ``scalar`` refuse object dtypes (an object
array would hold arbitrary Python objects); ``_codecs.encode`` only accepts latin-1.
Persistent ids (torch-style external storage) are refused too.
"""

from __future__ import annotations

import _codecs
import collections
import io
import pickle

import numpy as np

from ..errors import FormatError

__all__ = ["SafeUnpickler", "safe_load", "safe_loads", "ALLOWED_GLOBALS"]


def _multiarray():
    """NumPy's multiarray module, under its NumPy 2 name or its NumPy 1 name."""
    try:
        from numpy._core import multiarray  # NumPy >= 2
    except ImportError:  # pragma: no cover - NumPy 1
        from numpy.core import multiarray
    return multiarray


_MA = _multiarray()


class _Refused(Exception):
    """Raised inside the unpickler; turned into FormatError with the file name outside."""


def _reconstruct(subtype, shape, typecode):
    # ndarray.__reduce__ always passes ndarray itself; a subclass could run its own code.
    if subtype is not np.ndarray:
        raise _Refused(f"_reconstruct of {subtype!r} (only numpy.ndarray is allowed)")
    return _MA._reconstruct(np.ndarray, shape, typecode)


def _dtype(*args):
    dt = np.dtype(*args)
    if dt.hasobject:
        raise _Refused(f"object dtype {dt!r} (arrays of Python objects are not weights)")
    return dt


def _scalar(dtype, *args):
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise _Refused(f"numpy scalar of dtype {dtype!r} (only numeric scalars are allowed)")
    return _MA.scalar(dtype, *args)


def _encode(text, encoding="utf-8", *rest):
    # Protocol 2 writes bytes as _codecs.encode(str, 'latin1'); nothing else is needed.
    if encoding.replace("-", "").replace("_", "").lower() not in ("latin1", "iso88591"):
        raise _Refused(f"_codecs.encode with encoding {encoding!r} (only latin1 is allowed)")
    return _codecs.encode(text, "latin1")


ALLOWED_GLOBALS = {
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "scalar"): _scalar,
    ("numpy.core.multiarray", "scalar"): _scalar,
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): _dtype,
    ("_codecs", "encode"): _encode,
    ("builtins", "tuple"): tuple,
    ("builtins", "list"): list,
    ("builtins", "dict"): dict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    ("collections", "OrderedDict"): collections.OrderedDict,
    # Protocol 2 spells builtins as __builtin__ (Python 2 writers); same objects.
    ("__builtin__", "tuple"): tuple,
    ("__builtin__", "list"): list,
    ("__builtin__", "set"): set,
    ("__builtin__", "frozenset"): frozenset,
}


class SafeUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose globals come only from :data:`ALLOWED_GLOBALS`."""

    def find_class(self, module, name):
        # Never falls back to super().find_class: that would import `module`.
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise _Refused(f"global {module}.{name} is not on the allow-list") from None

    def persistent_load(self, pid):
        raise _Refused(f"persistent id {pid!r} (external storage is not a Paddle format)")


def safe_loads(data: bytes, source: str = "<bytes>"):
    """Unpickle ``data`` with the allow-list; ``source`` names the file in errors."""
    return safe_load(io.BytesIO(data), source)


def safe_load(fileobj, source: str = "<stream>"):
    """Unpickle one object from a binary file object with the allow-list.

    ``encoding='latin1'`` lets protocol 2 files (Python 2 ``str`` payloads) load as bytes,
    which is what NumPy's array state expects.
    """
    try:
        return SafeUnpickler(fileobj, encoding="latin1").load()
    except _Refused as exc:
        raise FormatError(f"{source}: refused to unpickle: {exc}; this file is not a plain "
                          "weight file and was not executed") from None
    except FormatError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError,
            IndexError, AttributeError, MemoryError, OverflowError, UnicodeError) as exc:
        at = fileobj.tell() if hasattr(fileobj, "tell") else "?"
        raise FormatError(f"{source}: not a readable pickle (stopped near byte {at}): "
                          f"{type(exc).__name__}: {exc}") from None
