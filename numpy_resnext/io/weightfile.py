"""What every weight reader returns, and what every reader of the PyTorch world shares.

Each format module (:mod:`.paddle`, :mod:`.torch`, :mod:`.safetensors`, :mod:`.hub`,
:mod:`.npz`) has the same verbs: ``detect(path) -> bool``, ``read(path, ema=None) ->``
:class:`WeightFile` and, where the format can be written, ``write(path, tensors,
metadata=None)`` returning where the metadata went.
"""

from __future__ import annotations

import functools
import struct
import zipfile
import zlib
from collections import OrderedDict
from types import MappingProxyType
from typing import NamedTuple

from ..bounded import one_load
from ..errors import FormatError, ResNeXtError

__all__ = ["WeightFile", "strip_prefixes", "reading", "PREFIXES"]

# prefixes a wrapper puts before every key: nn.DataParallel / DDP, Lightning, torch.compile
PREFIXES = ("module.", "model.", "_orig_mod.")


class WeightFile(NamedTuple):
    """Tensors read from one weight file or directory, under the names the file uses.

    tensors:             name -> array, in the file's order (pickles: state_dict order;
                         combined Paddle files: the sorted order they are stored in).
    kind:                what was read: "pdparams", "record-dir", "record-tar", "combined",
                         "record", "torch-zip", "torch-legacy", "safetensors", "index",
                         "hub-dir", "npz" or "dict".
    source:              the path read (for a combined Paddle file: the parameters file).
    notes:               what was skipped, chosen or reassembled on the way, for the user.
    extras:              non-array entries (an optimizer's LR_Scheduler state, safetensors
                         metadata), never mixed into ``tensors``.
    structured_to_param: {key: another name of the same tensor}, when the file says: the
                         StructuredToParameterName@@ table of a .pdparams, or the
                         <prefix>.pdiparams.info a legacy paddle.jit.save writes.
    """

    tensors: "OrderedDict"
    kind: str
    source: str
    notes: list = ()
    extras: dict = MappingProxyType({})
    structured_to_param: dict | None = None


def strip_prefixes(tensors):
    """(tensors, notes): ``module.`` / ``model.`` / ``_orig_mod.`` removed while every key
    starts with one."""
    notes = []
    changed = True
    while changed and tensors:
        changed = False
        for prefix in PREFIXES:
            if all(k.startswith(prefix) for k in tensors):
                tensors = OrderedDict((k[len(prefix):], v) for k, v in tensors.items())
                notes.append(f"prefix {prefix!r} removed from every name")
                changed = True
    return tensors, notes


def reading(read):
    """A PyTorch-world ``read(path, ...)`` whose OS and container errors (zipfile's own
    checks of CRC, names and headers on corrupt files) become a FormatError naming the file;
    one load with one reading budget (:func:`numpy_resnext.bounded.one_load`)."""
    @one_load
    @functools.wraps(read)
    def guarded(path, *args, **kwargs):
        try:
            return read(path, *args, **kwargs)
        except ResNeXtError:
            raise
        except OSError as exc:
            raise FormatError(f"{path}: cannot read ({exc})") from None
        except (ValueError, NotImplementedError, EOFError, zipfile.BadZipFile, struct.error,
                zlib.error) as exc:
            raise FormatError(f"{path}: corrupt file: {type(exc).__name__}: "
                              f"{str(exc)[:200]}") from None
    return guarded
