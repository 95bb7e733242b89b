"""PyTorch-world weight files, whatever their name: torch.save files, .safetensors,
sharded checkpoints and Hugging Face-style directories.

==============================================  ===========================================
``*.pth`` ``*.pt`` ``*.bin`` ``*.ckpt`` ``*.tar``  torch.save, zip or legacy (:mod:`.torch_file`),
                                                the state dict found in its wrapper
                                                (:mod:`.checkpoint`)
``*.safetensors``                               :mod:`.safetensors`
``model.safetensors.index.json``,               sharded: ``weight_map`` {name: shard file};
``pytorch_model.bin.index.json``                every shard in the same directory
a directory with ``model.safetensors``,         Hugging Face / timm hub layout; ``config.json``
``pytorch_model.bin`` or an index               beside the weights is reported, not needed
==============================================  ===========================================

:func:`foreign_kind` decides from the first bytes (and, for directories and indexes, the
names); :func:`read_foreign` returns ``(tensors, label, notes)`` with the tensors
materialised as NumPy arrays under the file's names (prefixes removed).
"""

from __future__ import annotations

import os
import struct
import zipfile
import zlib
from collections import OrderedDict
from pathlib import Path

from ..bounded import clip_list, first_bytes, is_regular, loads_json, read_bytes, short_repr
from ..errors import FormatError, ResNeXtError, WeightsError
from .checkpoint import select_state_dict, strip_prefixes
from .safetensors import read_safetensors, read_safetensors_header
from .torch_file import is_torch_file, open_torch

__all__ = ["foreign_kind", "read_foreign", "HUB_FILES"]

# what a Hugging Face-style directory may hold, in the order they are preferred
HUB_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
             "pytorch_model.bin.index.json")
MAX_JSON = 64 << 20


def _is_safetensors(path) -> bool:
    if not is_regular(path):
        return False
    try:
        size = os.path.getsize(path)
        head = first_bytes(path, 9, "safetensors file")
    except (OSError, ResNeXtError):
        return False
    if len(head) < 9:
        return False
    (n,) = struct.unpack("<Q", head[:8])
    return head[8:9] == b"{" and n <= size - 8


def foreign_kind(path):
    """"torch", "safetensors", "index", "hub-dir" or None (not a PyTorch-world file)."""
    path = Path(path)
    if path.is_dir():
        return "hub-dir" if any((path / f).is_file() for f in HUB_FILES) else None
    if not path.is_file():
        return None
    if path.name.endswith(".index.json"):
        return "index"
    if _is_safetensors(path):
        return "safetensors"
    if is_torch_file(path):
        return "torch"
    if path.suffix == ".safetensors":
        raise FormatError(f"{path}: not a safetensors file (expected an 8-byte header length "
                          "followed by a JSON object)")
    return None


def _read_json(path, what):
    """A regular JSON file of at most MAX_JSON bytes, parsed with a depth bound."""
    return loads_json(read_bytes(path, what, limit=MAX_JSON), str(path), what=f"JSON ({what})")


def _torch_tensors(path, ema, names=None):
    tf = open_torch(path)
    refs, notes = select_state_dict(tf.obj, ema, str(path))
    if names is not None:
        refs = OrderedDict((k, v) for k, v in refs.items() if k in names)
    notes.insert(0, f"{tf.kind} file: {len(refs)} tensors from {len(tf.storages)} storages")
    return tf.arrays(refs), notes


def _safetensors_tensors(path, names=None):
    tensors, metadata = read_safetensors(path, names)
    notes = []
    if metadata:
        shown = ", ".join(f"{short_repr(k, 40)}={v[:60]}" for k, v in list(metadata.items())[:6])
        notes.append(f"safetensors metadata: {shown}")
    tensors, stripped = strip_prefixes(tensors)
    return tensors, notes + stripped


def _read_index(path, ema):
    """A sharded checkpoint: ``{"weight_map": {name: shard}}`` beside its shards."""
    path = Path(path)
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
    tensors, notes = OrderedDict(), [f"sharded: {len(wmap)} tensors in {len(shards)} files"]
    for shard, names in shards.items():
        spath = path.parent / shard
        if not spath.is_file():
            raise FormatError(f"{path}: shard {shard[:200]} is missing (it holds ["
                              f"{clip_list([short_repr(n) for n in names], 3)}])")
        if _is_safetensors(spath):
            entries, _, _ = read_safetensors_header(spath)
            absent = [n for n in names if n not in entries]
            if absent:
                raise FormatError(f"{spath}: lacks [{clip_list([short_repr(n) for n in absent], 5)}] "
                                  "that the index places in it")
            part, _ = read_safetensors(spath, names)
        else:
            part, sub = _torch_tensors(spath, ema, set(names))
            absent = [n for n in names if n not in part]
            if absent:
                raise FormatError(f"{spath}: lacks [{clip_list([short_repr(n) for n in absent], 5)}] "
                                  "that the index places in it")
            notes.extend(n for n in sub if n not in notes and not n.startswith("torch-"))
        tensors.update((n, part[n]) for n in names)
    tensors, stripped = strip_prefixes(tensors)
    return tensors, notes + stripped


def _read_hub_dir(path, ema):
    path = Path(path)
    notes = []
    config = path / "config.json"
    if config.is_file():
        cfg = _read_json(config, "config.json")
        if isinstance(cfg, dict):
            arch = cfg.get("architecture") or cfg.get("architectures")
            shown = {k: short_repr(cfg[k], 20) for k in ("num_classes", "num_labels") if k in cfg}
            notes.append(f"config.json: architecture {short_repr(arch)}"
                         + (f", {shown}" if shown else "")
                         + " (the architecture is inferred from the tensors)")
    chosen = next(f for f in HUB_FILES if (path / f).is_file())
    others = [f for f in HUB_FILES if (path / f).is_file() and f != chosen]
    notes.append(f"weights from {chosen}" + (f" ({', '.join(others)} also present, not read)"
                                             if others else ""))
    tensors, _, more = read_foreign(path / chosen, ema)
    return tensors, notes + more


def read_foreign(path, ema=None):
    """(tensors, label, notes) for a PyTorch-world file or directory; see the module doc."""
    kind = foreign_kind(path)
    label = str(path)
    try:
        if kind == "torch":
            tensors, notes = _torch_tensors(path, ema)
        elif kind == "safetensors":
            if ema is True:
                raise WeightsError(f"{path}: a .safetensors file holds one set of weights; "
                                   "there is no EMA copy to choose")
            tensors, notes = _safetensors_tensors(path)
        elif kind == "index":
            tensors, notes = _read_index(path, ema)
        elif kind == "hub-dir":
            tensors, notes = _read_hub_dir(path, ema)
        else:
            raise FormatError(f"{path}: not a torch.save file, .safetensors, shard index or "
                              "Hugging Face-style directory")
    except ResNeXtError:
        raise
    except OSError as exc:
        raise FormatError(f"{path}: cannot read ({exc})") from None
    except (ValueError, NotImplementedError, EOFError, zipfile.BadZipFile, struct.error,
            zlib.error) as exc:     # zipfile's own checks (CRC, names, headers) on corrupt files
        raise FormatError(f"{path}: corrupt file: {type(exc).__name__}: {str(exc)[:200]}") from None
    return tensors, label, notes
