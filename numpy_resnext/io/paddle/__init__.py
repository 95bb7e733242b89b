"""Paddle weight files with NumPy only (Paddle is never imported): every layout Paddle has
used for weights, read under the names the file itself uses, and paddle.save's pickle
written.

==========================================  ===========================================
``model.pdparams`` / ``.pdopt`` / tensor     paddle.save pickle (:mod:`.pdparams`)
a directory of per-parameter files           legacy ``save_vars`` / PaddleClas ``.tar``
                                             unpacked (:mod:`.records`)
``<Name>_pretrained.tar``                    the same directory, read from the archive
``model.pdiparams`` / ``__params__``         combined tensor records; names from the
                                             program beside it (:mod:`.program`)
``model`` (a prefix), ``model.json``,        ``model.pdiparams`` + ``model.json`` or
``model.pdmodel``, ``__model__``             ``model.pdmodel`` (``__params__`` +
                                             ``__model__``)
a directory with ``__params__`` or one       an exported model: that combined file
``*.pdiparams``
one tensor record (any other name)           ``paddle.save(t, use_binary_format=True)``
==========================================  ===========================================

The kind is decided by the first bytes (a pickle starts with ``0x80``; a tensor record
with the uint32 version ``0``) and, where bytes alone cannot tell, by the name (combined
vs single record, program files, archives): :func:`detect_kind`.

Verbs, as every format module has them: :func:`detect`, :func:`read` (a
:class:`~numpy_resnext.io.weightfile.WeightFile`), :func:`write` (a paddle.save-style
pickle ``{key: ndarray}``, which ``paddle.load`` and ``set_state_dict`` accept).
"""

from __future__ import annotations

import pickle
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ..._files import atomic_write
from ...bounded import clip_list, first_bytes, one_load
from ...errors import FormatError
from ..weightfile import WeightFile
from .pdparams import NAME_TABLE_KEY, read_pdparams, unpickle_file
from .program import persistable_variables
from .records import (is_record_start, read_combined, read_record_dir, read_record_file,
                      read_record_tar)

__all__ = ["detect", "detect_kind", "read", "write", "KINDS"]

PICKLE_EXTS = (".pdparams", ".pdopt", ".pdtensor", ".pkl", ".pickle")
COMBINED_EXTS = (".pdiparams",)
PROGRAM_EXTS = (".json", ".pdmodel")
TAR_EXTS = (".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
KINDS = ("pdparams", "record-dir", "record-tar", "combined", "record")


def _first_bytes(path: Path, n: int = 4) -> bytes:
    return first_bytes(path, n, "weight file")      # regular files only: a FIFO never blocks


def _combined_params_in(directory: Path) -> Path | None:
    """The combined parameters file of an exported model directory, if it is one.

    ``__params__`` (fluid save_inference_model) or a single ``*.pdiparams`` (PaddleClas
    export: inference.pdiparams + inference.json/.pdmodel + inference.yml).
    """
    if (directory / "__params__").is_file():
        return directory / "__params__"
    found = sorted(p for p in directory.glob("*.pdiparams") if p.is_file())
    if len(found) > 1:
        raise FormatError(f"{directory}: holds {len(found)} .pdiparams files "
                          f"({clip_list([p.name for p in found])}); pass one of them")
    return found[0] if found else None


def detect_kind(path) -> str:
    """One of "pdparams", "record-dir", "record-tar", "combined", "record", "prefix"."""
    path = Path(path)
    if path.is_dir():
        return "combined" if _combined_params_in(path) else "record-dir"
    if not path.exists():
        for ext in COMBINED_EXTS:
            if path.with_name(path.name + ext).is_file():
                return "prefix"
        raise FormatError(f"{path}: no such file or directory (nor {path.name}.pdiparams "
                          "for a model prefix)")
    head = _first_bytes(path)
    if head[:1] == b"\x80":
        return "pdparams"
    if path.name == "__model__":
        if path.with_name("__params__").is_file():
            return "prefix"
        raise FormatError(f"{path}: this is a program file, not weights, and no __params__ "
                          "is beside it; pass the parameter directory instead")
    if path.suffix in PROGRAM_EXTS:
        prefix = path.with_suffix("")
        if prefix.with_name(prefix.name + ".pdiparams").is_file():
            return "prefix"
        raise FormatError(f"{path}: this is a program file, not weights; pass the "
                          f"{prefix.name}.pdiparams file or the prefix {prefix}")
    if path.suffix == ".tar" or path.name.endswith(TAR_EXTS):
        return "record-tar"
    if is_record_start(head):
        if path.suffix in COMBINED_EXTS or path.name == "__params__":
            return "combined"
        return "record"
    if path.suffix in PICKLE_EXTS:
        raise FormatError(f"{path}: wrong magic: a {path.suffix} file should be a pickle "
                          f"starting with byte 0x80, found {head.hex(' ') or 'an empty file'}")
    raise FormatError(f"{path}: unknown weight format: first bytes "
                      f"{head.hex(' ') or '(empty file)'}; expected a paddle.save pickle "
                      "(80 ..) or tensor records (00 00 00 00 ..)")


def detect(path) -> bool:
    """True when ``path`` is a Paddle layout :func:`detect_kind` recognises."""
    try:
        detect_kind(path)
    except FormatError:
        return False
    return True


@one_load
def read(path, ema=None) -> WeightFile:
    """Read any Paddle weight layout at ``path`` (``ema`` is not used: a Paddle file holds
    one set of weights); one load with one reading budget."""
    path = Path(path)
    kind = detect_kind(path)
    if kind == "pdparams":
        content = read_pdparams(path)
        return WeightFile(content.tensors, "pdparams", str(path), content.notes,
                          content.extras, content.structured_to_param)
    if kind == "record-dir":
        tensors, notes = read_record_dir(path)
        return WeightFile(tensors, kind, str(path), notes, {})
    if kind == "record-tar":
        tensors, notes = read_record_tar(path)
        return WeightFile(tensors, kind, str(path), notes, {})
    if kind == "record":
        return WeightFile(OrderedDict([(path.name, read_record_file(path, path.name))]),
                          kind, str(path), [], {})
    if kind == "prefix":
        path = _params_of_prefix(path)
    elif path.is_dir():
        path = _combined_params_in(path)
    return read_combined_with_program(path)


def write(path, tensors, metadata=None, table=None) -> str:
    """A paddle.save-style pickle (protocol 4) of ``{key: ndarray}``, written atomically,
    with paddle.save's ``StructuredToParameterName@@`` entry when ``table`` {key: ParamAttr
    name} is given (``paddle.load`` removes it, as it does from paddle.save's files); returns
    where ``metadata`` went: nowhere, as every other key would reach set_state_dict."""
    state = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    if table:
        state[NAME_TABLE_KEY] = {k: str(v) for k, v in table.items() if k in state}

    def save(tmp):
        with open(tmp, "wb") as f:
            pickle.dump(state, f, protocol=4)
    atomic_write(path, save)
    return "none written (every .pdparams key reaches set_state_dict)"


def _params_of_prefix(path: Path) -> Path:
    """The parameters file for a prefix, or for the program file the user pointed at."""
    if path.name == "__model__":
        return path.with_name("__params__")
    prefix = path.with_suffix("") if path.suffix in PROGRAM_EXTS else path
    return prefix.with_name(prefix.name + ".pdiparams")


def _program_for(params: Path, notes: list) -> Path:
    """The program file saved beside a combined parameters file."""
    if params.name == "__params__":
        candidates = [params.with_name("__model__")]
    else:
        prefix = params.with_suffix("")
        candidates = [prefix.with_name(prefix.name + ext) for ext in (".json", ".pdmodel")]
    present = [c for c in candidates if c.is_file()]
    if not present:
        raise FormatError(f"{params}: a combined parameters file stores no names; expected "
                          f"the program beside it: {' or '.join(c.name for c in candidates)}")
    if len(present) > 1:
        notes.append(f"names taken from {present[0].name} ({present[1].name} also present)")
    return present[0]


def _structured_names(params: Path, notes: list) -> dict | None:
    """{structured key: parameter name} from ``<prefix>.pdiparams.info`` when present.

    The legacy jit.save writes this pickle: {param name: {"structured_name": key, ...}}.
    """
    info = params.with_name(params.name + ".info")
    if not info.is_file():
        return None
    table = unpickle_file(info)
    if not isinstance(table, dict):
        raise FormatError(f"{info}: expected a dict {{parameter name: {{'structured_name': "
                          f"...}}}}, found {type(table).__name__}")
    out = {}
    for param, entry in table.items():
        if isinstance(entry, dict) and isinstance(entry.get("structured_name"), str):
            out[entry["structured_name"]] = param
    notes.append(f"structured names from {info.name}")
    return out


def read_combined_with_program(params) -> WeightFile:
    """Read ``__params__`` / ``*.pdiparams`` with names from the program beside it."""
    params = Path(params)
    notes = []
    program = _program_for(params, notes)
    variables = persistable_variables(program)
    tensors = read_combined(params, [v.name for v in variables])
    for var in variables:
        found = tensors[var.name].shape
        if var.dims is not None and -1 not in var.dims and tuple(var.dims) != found:
            raise FormatError(f"{params}: tensor {var.name!r} has shape {list(found)}, but "
                              f"{program.name} declares {list(var.dims)}")
    table = _structured_names(params, notes)
    return WeightFile(tensors, "combined", str(params), notes, {}, table)
