"""reference/fixtures/MANIFEST.json, and the file helpers every reference script shares.

MANIFEST.json is one JSON object over the whole fixture tree: for each file under
reference/fixtures/ (its path relative to that directory, "/"-separated) an entry with its
sha256 and byte count, the script that made it, the framework version(s) and the seed(s).
tests/test_manifest.py checks every file against it. Each script owns one prefix
("formats/", "grads/", "paddle/", "se/", "torch/", "torch_io/") and rewrites only the keys under it, so the
scripts can be re-run one at a time without touching each other's entries.

Files are written with numpy_resnext's :func:`atomic_write` (temporary file + rename), so a
crash never leaves a half-written fixture or manifest.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))       # numpy_resnext from this checkout

from numpy_resnext import _files  # noqa: E402
from numpy_resnext._files import atomic_write  # noqa: E402
from numpy_resnext.golden import file_sha256, params_sha256  # noqa: E402,F401  (re-exported)

FIXTURES = HERE / "fixtures"
MANIFEST = FIXTURES / "MANIFEST.json"
FILE_MODE = 0o644                              # mkstemp's 0600 would hide files from others


def manifest_key(path) -> str | None:
    """The manifest key of ``path`` ("torch/tiny.npz"), or None when it lies outside fixtures/."""
    path = Path(path).resolve()
    return path.relative_to(FIXTURES).as_posix() if path.is_relative_to(FIXTURES) else None


def file_entry(path, **facts) -> dict:
    """A manifest entry for one file: its sha256 and size, then ``facts`` (script, versions, seeds)."""
    return {"sha256": file_sha256(path), "bytes": os.path.getsize(path), **facts}


def write_bytes(path, data: bytes, mode=FILE_MODE) -> None:
    """Write ``data`` to ``path`` atomically."""
    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(data)
    atomic_write(path, write, mode=mode)


def save_npz(path, arrays: dict, compressed=False) -> None:
    """np.savez (or savez_compressed) of ``arrays``, atomically, to exactly ``path``, mode 0644."""
    _files.save_npz(path, arrays, compressed, mode=FILE_MODE)


def save_npy(path, array) -> None:
    """np.save of ``array``, atomically, to exactly ``path`` (no .npy appended), mode 0644."""
    _files.save_npy(path, array, mode=FILE_MODE)


def update_manifest(prefix: str, entries: dict, replace=False, manifest=MANIFEST) -> dict:
    """Read-modify-write MANIFEST.json: set ``entries`` (all keys under ``prefix``).

    With ``replace`` every old key under ``prefix`` is dropped first (for a script that has
    just rewritten its whole directory, so no entry outlives its file). Keys outside
    ``prefix`` are kept as they are. Written sorted, atomically, mode 0644. Returns the
    whole manifest.
    """
    if not prefix.endswith("/"):
        raise ValueError(f"manifest prefix {prefix!r} should end with '/'")
    stray = sorted(k for k in entries if not k.startswith(prefix))
    if stray:
        raise ValueError(f"manifest keys {stray} are outside this script's prefix {prefix!r}")
    manifest = Path(manifest)
    data = json.loads(manifest.read_text()) if manifest.exists() else {}
    if replace:
        data = {k: v for k, v in data.items() if not k.startswith(prefix)}
    data.update(entries)
    text = json.dumps(dict(sorted(data.items())), indent=1, sort_keys=True) + "\n"
    write_bytes(manifest, text.encode("utf-8"))
    return data
