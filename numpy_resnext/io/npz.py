"""Canonical ``.npz`` weight files: one array per tensor under its canonical name, as
``numpy.savez`` writes them and ``numpy.load`` reads them.

Verbs, as every format module has them: :func:`detect` (by the name: an .npz is a zip
archive like many others), :func:`read` (every member's size checked before it is read:
:func:`numpy_resnext.bounded.read_npz`) and :func:`write` (atomically; there is no room
for metadata).
"""

from __future__ import annotations

import os

from .._files import save_npz
from ..bounded import read_npz
from .weightfile import WeightFile

__all__ = ["detect", "read", "write"]


def detect(path) -> bool:
    """True when ``path`` is named ``*.npz``."""
    return os.fspath(path).endswith(".npz")


def read(path, ema=None) -> WeightFile:
    """The arrays of ``path`` (``ema`` is not used: an .npz holds one set of weights)."""
    path = os.fspath(path)
    return WeightFile(read_npz(path, "weight file"), "npz", path, [], {})


def write(path, tensors, metadata=None) -> str:
    """``tensors`` as an .npz, atomically; returns where the metadata went: nowhere."""
    save_npz(path, tensors)
    return "none written (.npz holds arrays only)"
