"""Read Paddle weight files with NumPy only (Paddle is never imported).

:func:`read_paddle` accepts every layout Paddle has used for weights and returns the
tensors under the names the file itself uses:

==========================================  ===========================================
``model.pdparams`` / ``.pdopt``              paddle.save pickle (:mod:`.pdparams`)
a directory of per-parameter files           legacy ``save_vars`` / PaddleClas ``.tar``
                                             (:mod:`.tensor_record`)
``model.pdiparams`` / ``__params__``         combined tensor records; names from the
                                             program beside it (:mod:`.program`)
``model`` (a prefix)                         ``model.pdiparams`` + ``model.json`` or
                                             ``model.pdmodel``
==========================================  ===========================================

The kind is decided by the extension first and confirmed by the first bytes (a pickle
starts with ``0x80``; a tensor record with the uint32 version ``0``). Mapping those names
onto canonical ones is the job of :mod:`.names` / :mod:`.load`.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import FormatError
from .pdparams import read_pdparams

__all__ = ["PaddleFile", "read_paddle", "detect_kind"]

PICKLE_EXTS = (".pdparams", ".pdopt", ".pdtensor", ".pkl", ".pickle")
COMBINED_EXTS = (".pdiparams",)
PROGRAM_EXTS = (".json", ".pdmodel")


@dataclass
class PaddleFile:
    """Tensors read from one Paddle weight file or directory.

    tensors:             name -> array, in the file's order (pickles: state_dict order;
                         combined files: the sorted order they are stored in).
    kind:                "pdparams", "record-dir", "combined" or "record".
    source:              the path read (for a combined file: the parameters file).
    structured_to_param: paddle.save's {structured key: parameter name}, when present.
    notes:               what was skipped or reassembled on the way, for the user.
    """

    tensors: "OrderedDict[str, np.ndarray]"
    kind: str
    source: str
    structured_to_param: dict | None = None
    notes: list = field(default_factory=list)
    extras: dict = field(default_factory=dict)


def _first_bytes(path: Path, n: int = 4) -> bytes:
    with open(path, "rb") as f:
        return f.read(n)


def detect_kind(path) -> str:
    """"pdparams", "record-dir", "combined", "record" or "prefix" for ``path``."""
    path = Path(path)
    if path.is_dir():
        return "record-dir"
    if not path.exists():
        for ext in COMBINED_EXTS:
            if path.with_name(path.name + ext).is_file():
                return "prefix"
        raise FormatError(f"{path}: no such file or directory (nor {path.name}.pdiparams "
                          "for a model prefix)")
    head = _first_bytes(path)
    if head[:1] == b"\x80":
        return "pdparams"
    if path.suffix in PICKLE_EXTS:
        raise FormatError(f"{path}: a {path.suffix} file should be a pickle starting with "
                          f"byte 0x80, found {head!r}")
    if path.suffix in PROGRAM_EXTS:
        prefix = path.with_suffix("")
        if prefix.with_name(prefix.name + ".pdiparams").is_file():
            return "prefix"
        raise FormatError(f"{path}: this is a program file, not weights; pass the "
                          f"{prefix.name}.pdiparams file or the prefix {prefix}")
    if head == b"\x00\x00\x00\x00":
        if path.suffix in COMBINED_EXTS or path.name == "__params__":
            return "combined"
        return "record"
    raise FormatError(f"{path}: unknown weight format: first bytes {head!r}; expected a "
                      "paddle.save pickle (0x80 ...) or tensor records (00 00 00 00 ...)")


def read_paddle(path) -> PaddleFile:
    """Read any Paddle weight layout at ``path`` into a :class:`PaddleFile`."""
    path = Path(path)
    kind = detect_kind(path)
    if kind == "pdparams":
        content = read_pdparams(path)
        return PaddleFile(content.tensors, "pdparams", str(path), content.structured_to_param,
                          content.notes, content.extras)
    raise FormatError(f"{path}: {kind} files are not readable yet")
