"""Checksums: one definition of a tensor's, a parameter set's and a file's sha256.

A tensor's checksum is the sha256 of its C-order little-endian bytes, i.e. of the data
section of its ``.npy`` file, so a reader in any language can recompute it from the file
without knowing the machine that wrote it. Golden manifests, the demo and the reference
scripts all use these functions.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np


def _le_bytes(a) -> bytes:
    """The array's C-order little-endian bytes (the data section of its .npy)."""
    a = np.ascontiguousarray(a)
    return a.astype(a.dtype.newbyteorder("<"), copy=False).tobytes()


def tensor_sha256(a) -> str:
    """sha256 of the array's C-order little-endian bytes (the data section of its .npy)."""
    return hashlib.sha256(_le_bytes(a)).hexdigest()


def tensor_digest(a) -> bytes:
    """The 32 raw bytes of :func:`tensor_sha256` (how a data-set run stores each input's)."""
    return hashlib.sha256(_le_bytes(a)).digest()


def params_sha256(params) -> str:
    """sha256 over the parameters in their (canonical) order: name, NUL, bytes, for each."""
    h = hashlib.sha256()
    for name, value in params.items():
        h.update(name.encode() + b"\0")
        h.update(_le_bytes(value))
    return h.hexdigest()


def file_sha256(path) -> str:
    """sha256 of a file; of a directory, sha256 over its sorted 'relative path  sha256' lines."""
    path = Path(path)
    if path.is_dir():
        lines = [f"{p.relative_to(path).as_posix()}  {file_sha256(p)}\n"
                 for p in sorted(path.rglob("*")) if p.is_file()]
        return hashlib.sha256("".join(lines).encode()).hexdigest()
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
