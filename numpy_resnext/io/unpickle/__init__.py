"""The restricted unpickler every weight pickle goes through: an opcode scan first, then
``pickle.Unpickler`` with globals only from the allow-list, then the stand-ins replaced.

1. :func:`.scan.scan_opcodes` walks the opcodes before the unpickler sees a byte: lengths
   against the bytes left, memo indices, container depth, big-integer dict keys.
2. :class:`RestrictedUnpickler` resolves a global only through :func:`.allow.allowed` of
   its format and never imports anything; persistent ids are refused, except torch's
   storages (``('storage', type, key, location, numel)``), which become
   :class:`~.allow.StorageInfo`.
3. :func:`finish_containers` rebuilds the result through plain containers: Paddle's
   stand-ins become the arrays and dtypes they hold; a torch pickle may hold only scalars
   and :class:`~.allow.TensorRef`. Any other object, or a bare global, is refused.

:func:`load` returns ``(object, storages)`` for one pickle at a stream's position.
"""

from __future__ import annotations

import collections
import io
import pickle
from typing import NamedTuple

from ...bounded import get_limits, short_repr
from ...errors import FormatError, InputError
from .allow import Allowed, ArrayStub, DtypeStub, StorageInfo, StorageType, TensorRef, allowed
from .scan import FORBIDDEN, Refused, Truncated, scan_opcodes

__all__ = ["load", "loads", "BoundedReader", "RestrictedUnpickler", "finish_containers",
           "TensorRef", "StorageInfo", "FORMATS"]


# objects training scripts save beside the state dict (no reader may build them: they run code)
TRAINING_OBJECTS = {("argparse", "Namespace"): "the training arguments, which timm's train.py "
                                               "and torchvision's reference scripts save as 'args'",
                    ("omegaconf.dictconfig", "DictConfig"): "a Hydra / OmegaConf configuration"}
RESAVE = ("re-save the state dict alone, in Python with torch and only for a file you trust: "
          "ck = torch.load(PATH, weights_only=False); torch.save(ck['model'], 'weights.pth') "
          "(or ck['state_dict'], whichever holds the weights)")


def _numpy_leaf(obj):
    """The stand-ins become the arrays and dtypes they hold; a bare global is refused."""
    kind = type(obj)
    if kind is ArrayStub:
        if obj.array is None:
            raise Refused("an array without its data (no BUILD state)")
        return obj.array
    if kind is DtypeStub:
        return obj.resolve()
    if kind is Allowed:
        raise Refused(f"a bare reference to the global {obj.name}")
    return obj


def _torch_leaf(obj):
    """Scalars and TensorRefs pass; a bare global, a storage or anything else is refused."""
    kind = type(obj)
    if kind in (TensorRef, str, bytes, int, float, bool, type(None), complex):
        return obj
    if isinstance(obj, Allowed):
        raise Refused(f"a bare reference to the global {obj.name}")
    raise Refused(f"an object of type {kind.__name__}")


class Format(NamedTuple):
    """How one format's pickles are read."""

    label: str              # for errors: "pickle", "torch pickle"
    encoding: str           # of protocol 2 str payloads: latin-1 keeps NumPy's bytes
    forbidden: frozenset    # opcodes refused outright by the scan
    leaf: object            # finish_containers' conversion of a non-container
    storages: bool          # torch's persistent ids name storages


FORMATS = {
    "paddle": Format("pickle", "latin1", frozenset(FORBIDDEN), _numpy_leaf, False),
    # torch.save names its storages with BINPERSID (protocol 2); PERSID, protocol 0's text
    # form, is never written by torch and stays refused
    "torch": Format("torch pickle", "utf-8", frozenset(FORBIDDEN - {"BINPERSID"}),
                    _torch_leaf, True),
}


class RestrictedUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` whose globals come only from the allow-list of ``format``.

    ``storages`` collects every storage a torch pickle names (key -> StorageInfo); the
    same key named twice must agree on dtype and size. ``legacy``: pre-1.6 torch files,
    whose persistent ids have a sixth field (a view of another storage, refused).
    """

    def __init__(self, fileobj, format="paddle", legacy=False):
        self.format = FORMATS[format]
        super().__init__(fileobj, encoding=self.format.encoding)
        self.allowed = allowed(format)
        self.legacy = legacy
        self.storages = {}

    def find_class(self, module, name):
        # Never falls back to super().find_class: that would import `module`.
        try:
            return self.allowed[(module, name)]
        except KeyError:
            hint = ""
            if self.format.storages and not module.startswith(("torch", "numpy", "collections")):
                hint = (f": the checkpoint holds Python objects besides tensors "
                        f"({TRAINING_OBJECTS.get((module, name), 'saved by a training script')}); "
                        f"{RESAVE}")
            raise Refused(f"global {module}.{name} is not on the allow-list{hint}") from None

    def persistent_load(self, pid):
        if not self.format.storages:
            raise Refused(f"persistent id {short_repr(pid)} (external storage is not a Paddle "
                          "format)")
        n = 6 if self.legacy else 5
        if not (isinstance(pid, tuple) and len(pid) == n and pid[0] == "storage"):
            raise Refused(f"persistent id {short_repr(pid, 80)} (expected ('storage', type, "
                          f"key, location, numel{', None' if self.legacy else ''}))")
        _, kind, key, location, numel = pid[:5]
        if type(kind) is not StorageType or not isinstance(key, str) \
                or not isinstance(location, str) or type(numel) is not int or numel < 0:
            raise Refused(f"persistent id {short_repr(pid, 80)}")
        if self.legacy and pid[5] is not None:
            raise Refused(f"storage {short_repr(key)} is a view of another storage (pre-1.0 files)")
        if not location.startswith(("cpu", "cuda", "mps", "xpu")):
            raise Refused(f"storage {short_repr(key)} on unknown device {short_repr(location, 40)}")
        known = self.storages.get(key)
        if known is None:
            known = self.storages[key] = StorageInfo(key, kind.dtype, numel)
        elif (known.dtype, known.numel) != (kind.dtype, numel):
            raise Refused(f"storage {short_repr(key)} named as {known.dtype}[{known.numel}] and "
                          f"as {kind.dtype}[{numel}]")
        return known


def finish_containers(obj, leaf, depth=0, done=None):
    """Rebuild ``obj`` through plain containers (dict, OrderedDict, list, tuple, set,
    frozenset), converting every other object with ``leaf(obj)`` (which returns its value
    or raises Refused).

    An object the pickle shares (memoised once, referenced many times) is converted once
    and the result shared the same way (``done``, by id), as pickle itself does: a
    312-byte pickle nesting a list by reference would otherwise expand to gigabytes.
    """
    done = {} if done is None else done
    key = id(obj)
    if key in done:
        return done[key]
    if depth > get_limits().max_depth:
        raise Refused(f"containers nested more than {get_limits().max_depth} deep")
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


def load(fileobj, source: str = "<stream>", size: int | None = None, format: str = "paddle",
         legacy: bool = False):
    """(object, storages) of the pickle at the stream's position, read as ``format``
    ("paddle" or "torch"); a FormatError naming ``source`` if it is unsafe or unreadable.

    ``fileobj`` must be seekable; ``size`` bounds every read (the bytes left in the file or
    the archive member; found by seeking when not given). ``storages`` is {} for Paddle.
    """
    if size is None:
        here = fileobj.tell()
        size = fileobj.seek(0, 2)
        fileobj.seek(here)
    fmt = FORMATS[format]
    try:
        scan_opcodes(fileobj, size, forbidden=fmt.forbidden)
        unpickler = RestrictedUnpickler(fileobj, format, legacy)
        try:
            obj = unpickler.load()
        except Refused as exc:
            # the unpickler reads ahead (a whole frame in protocol 4): a bound, not the spot
            raise Refused(f"{exc} (the unpickler had read up to byte {fileobj.tell()})") \
                from None
        return finish_containers(obj, fmt.leaf), unpickler.storages
    except Truncated as exc:
        raise FormatError(f"{source}: truncated or corrupt pickle: {exc}") from None
    except Refused as exc:
        raise FormatError(f"{source}: refused to unpickle: {exc}; this is not a plain weights "
                          "file and nothing in it was executed") from None
    except FormatError:
        raise
    except OSError as exc:               # the device failed while reading (EIO ...)
        raise InputError(f"{source}: cannot read the file ({exc.strerror or type(exc).__name__}"
                         "; the read failed after the file was opened)") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
            AttributeError, MemoryError, OverflowError, UnicodeError, RecursionError) as exc:
        at = fileobj.tell() if hasattr(fileobj, "tell") else "?"
        raise FormatError(f"{source}: not a readable {fmt.label} (stopped near byte {at}): "
                          f"{type(exc).__name__}: {str(exc)[:200]}") from None


def loads(data: bytes, source: str = "<bytes>", format: str = "paddle"):
    """The object of the pickle ``data``, read as ``format``; see :func:`load`."""
    return load(io.BytesIO(data), source, len(data), format)[0]
