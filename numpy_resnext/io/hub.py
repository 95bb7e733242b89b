"""Sharded checkpoints and Hugging Face-style directories, whose files are torch.save or
.safetensors files (:mod:`.torch`, :mod:`.safetensors`).

==============================================  ===========================================
``model.safetensors.index.json``,               sharded: ``weight_map`` {name: shard file};
``pytorch_model.bin.index.json``                every shard in the same directory
a directory with ``model.safetensors``,         Hugging Face / timm hub layout; ``config.json``
``pytorch_model.bin`` or an index               beside the weights is checked (.declared)
==============================================  ===========================================

A shard or the directory's weights file is read as what its first bytes say it is,
whatever its name, and each file once: shards are grouped by the file they are (device
and inode), so the symlinks of a Hugging Face cache folder that all lead to one blob are
one file, its header parsed once. Verbs, as every format module has them: :func:`detect`, :func:`read`
(a :class:`~.weightfile.WeightFile`, tensors under the file's names with the wrapper
prefixes removed); nothing is written in these layouts.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

from ..bounded import clip_list, loads_json, name_of, read_bytes, short_repr
from ..errors import FormatError
from . import safetensors, torch
from .weightfile import WeightFile, reading, strip_prefixes

__all__ = ["detect", "read", "read_config", "HUB_FILES"]

# what a Hugging Face-style directory may hold, in the order they are preferred
HUB_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
             "pytorch_model.bin.index.json")
MAX_JSON = 64 << 20


def detect(path) -> bool:
    """True for a directory holding one of :data:`HUB_FILES`, or a ``*.index.json`` file."""
    path = Path(path)
    if path.is_dir():
        return any((path / f).is_file() for f in HUB_FILES)
    return path.is_file() and path.name.endswith(".index.json")


@reading
def read(path, ema=None) -> WeightFile:
    """The tensors of a shard index or a hub directory (``ema``: see :mod:`.torch`)."""
    path = Path(path)
    if path.is_dir():
        return _read_hub_dir(path, ema)
    if path.name.endswith(".index.json"):
        return _read_index(path, ema)
    raise FormatError(f"{path}: not a shard index (*.index.json) or Hugging Face-style "
                      "directory")


def _read_json(path, what):
    """A regular JSON file of at most MAX_JSON bytes, parsed with a depth bound."""
    return loads_json(read_bytes(path, what, limit=MAX_JSON), str(path), what=f"JSON ({what})")


def _read_index(path, ema):
    """A sharded checkpoint: ``{"weight_map": {name: shard}}`` beside its shards."""
    index = _read_json(path, "a shard index")
    wmap = index.get("weight_map") if isinstance(index, dict) else None
    if not (isinstance(wmap, dict) and wmap
            and all(isinstance(k, str) and isinstance(v, str) for k, v in wmap.items())):
        raise FormatError(f"{path}: expected {{\"weight_map\": {{tensor name: shard file}}}}")
    shards = OrderedDict()
    for name, shard in wmap.items():
        if os.path.basename(shard) != shard or shard in ("", ".", ".."):
            raise FormatError(f"{path}: shard {short_repr(shard)} for {short_repr(name)} is not a file name in "
                              "the index's directory")
        shards.setdefault(shard, []).append(name)
    files = OrderedDict()                  # the file a shard name is -> (its path, names)
    for shard, names in shards.items():
        spath = path.parent / shard
        try:
            st = os.stat(spath)
        except (OSError, ValueError):
            st = None
        if st is None or not spath.is_file():
            raise FormatError(f"{path}: shard {shard[:200]} is missing (it holds ["
                              f"{clip_list([short_repr(n) for n in names], 3)}])")
        files.setdefault((st.st_dev, st.st_ino), (spath, []))[1].extend(names)
    tensors = OrderedDict()
    notes = [f"sharded: {len(wmap)} tensors in {len(shards)} files"]
    if len(files) < len(shards):
        notes.append(f"the {len(shards)} shard names are {len(files)} distinct file(s) "
                     "(symlinks or hard links), each read once")
    for spath, names in files.values():
        tensors.update(_read_shard(spath, names, ema, notes))
    tensors, stripped = strip_prefixes(tensors)
    return WeightFile(tensors, "index", str(path), notes + stripped, {})


def read_config(directory):
    """The parsed ``config.json`` of a Hugging Face-style directory, or None without one
    (what it declares is checked by :mod:`.declared`)."""
    config = Path(directory) / "config.json"
    return _read_json(config, "config.json") if config.is_file() else None


def _read_shard(spath, names, ema, notes):
    """{name: array} of ``names`` from one shard file (read once, whatever its names)."""
    if safetensors.looks_like(spath):
        header = safetensors.read_header(spath)
        absent = [n for n in names if n not in header[0]]
        if absent:
            raise FormatError(f"{name_of(spath)}: lacks [{clip_list([short_repr(n) for n in absent], 5)}] "
                              "that the index places in it")
        part, _ = safetensors.read_tensors(spath, names, header)
    else:
        got = torch.read(spath, ema, set(names))
        part = got.tensors
        absent = [n for n in names if n not in part]
        if absent:
            raise FormatError(f"{name_of(spath)}: lacks [{clip_list([short_repr(n) for n in absent], 5)}] "
                              "that the index places in it")
        notes.extend(n for n in got.notes if n not in notes and not n.startswith("torch-"))
    return ((n, part[n]) for n in names)


def _read_hub_dir(path, ema):
    notes = []
    cfg = read_config(path)
    if isinstance(cfg, dict):
        arch = cfg.get("architecture") or cfg.get("architectures")
        shown = {k: short_repr(cfg[k], 20) for k in ("num_classes", "num_labels") if k in cfg}
        notes.append(f"config.json: architecture {short_repr(arch)}"
                     + (f", {shown}" if shown else "")
                     + " (checked against the tensors)")
    chosen = next(f for f in HUB_FILES if (path / f).is_file())
    others = [f for f in HUB_FILES if (path / f).is_file() and f != chosen]
    notes.append(f"weights from {chosen}" + (f" ({', '.join(others)} also present, not read)"
                                             if others else ""))
    got = _read_file(path / chosen, ema)
    return WeightFile(got.tensors, "hub-dir", str(path), notes + list(got.notes),
                      {"config.json": cfg} if cfg is not None else {})


def _read_file(path, ema):
    """The directory's weights file, read as what it is (an index, torch.save or
    safetensors), whatever its name."""
    if path.name.endswith(".index.json"):
        return _read_index(path, ema)
    for fmt in (torch, safetensors):          # by content; then a .safetensors by its name
        if fmt.detect(path):
            return fmt.read(path, ema)
    raise FormatError(f"{path}: not a torch.save file, .safetensors, shard index or "
                      "Hugging Face-style directory")
