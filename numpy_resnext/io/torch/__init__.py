"""``torch.save`` files read and written without torch, whatever their extension (.pth .pt
.bin .ckpt .tar are all used; the first bytes decide).

- :mod:`.file`: the zip format (torch >= 1.6) and the legacy one; the pickle inside goes
  through :mod:`..unpickle` and the storages are read lazily;
- :mod:`.checkpoint`: the state dict inside a training checkpoint (``state_dict``,
  ``model``, the EMA copy, ``module.`` prefixes);
- :mod:`.save`: the zip format written, readable by ``torch.load(weights_only=True)``.

Verbs, as every format module has them: :func:`detect`, :func:`read` (a
:class:`~numpy_resnext.io.weightfile.WeightFile`; only the chosen state dict's storages
are read) and :func:`write` (metadata as JSON in the zip archive comment: a state dict
key would break ``load_state_dict(strict=True)``).
"""

from __future__ import annotations

import json
from collections import OrderedDict

from ..weightfile import WeightFile, reading
from .checkpoint import select_state_dict
from .file import TorchFile, is_torch_file, open_torch
from .save import write_torch_zip

__all__ = ["detect", "read", "write", "open_torch", "TorchFile"]


def detect(path) -> bool:
    """True when ``path`` starts like a torch.save file (zip or legacy)."""
    return is_torch_file(path)


@reading
def read(path, ema=None, names=None) -> WeightFile:
    """The state dict of the torch.save file ``path`` (see :mod:`.checkpoint` for ``ema``);
    only the tensors in ``names`` when given (a shard of an index)."""
    tf = open_torch(path)
    refs, notes = select_state_dict(tf.obj, ema, str(path), strip=names is None)
    if names is not None:
        refs = OrderedDict((k, v) for k, v in refs.items() if k in names)
    notes.insert(0, f"{tf.kind} file: {len(refs)} tensors from {len(tf.storages)} storages")
    return WeightFile(tf.arrays(refs), tf.kind, str(path), notes, {})


def write(path, tensors, metadata=None) -> str:
    """``torch.save(tensors)`` in the zip format, atomically; ``metadata`` as sorted JSON
    in the archive comment. Returns where the metadata went."""
    comment = json.dumps(dict(metadata or {}), sort_keys=True).encode("utf-8")
    write_torch_zip(path, tensors, comment)
    return "in the zip archive comment"
