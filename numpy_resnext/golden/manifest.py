"""Golden files: the manifest, writing and reading the ``.npz``, verifying checksums.

See :mod:`numpy_resnext.golden` for the format.
"""

from __future__ import annotations

import json
import math
import os
import platform
import zipfile
from collections import OrderedDict

import numpy as np

from .. import __version__
from .._files import atomic_write
from ..bounded import (clip_list, expect, expect_keys, expect_shape, loads_json, one_load,
                       read_array_file, short_repr)
from ..checksums import params_sha256, tensor_sha256
from ..errors import FormatError, InputError

FORMAT = "numpy-resnext-golden"
FORMAT_VERSION = 1
MANIFEST_KEY = "__manifest__"
INPUT_NAME = "input"
LOGITS_NAME = "fc"

# Suggested (rtol, atol) for the criterion above. float64: measured agreement with Paddle is
# 5e-12 and with torch 5e-15 norm-wise, so 1e-10 leaves a margin of 20x or more. float32: a
# float32 forward of ResNeXt50_32x4d against its float64 golden reaches 1.7e-6 (numbers in
# docs/golden.md); 1e-4 leaves room for other summation orders and real weights.
SUGGESTED_TOLERANCES = {"float64": {"rtol": 1e-10, "atol": 0.0},
                        "float32": {"rtol": 1e-4, "atol": 0.0}}

ERROR_DEFINITION = ("max_abs = max|c - r|; max_rel = max_abs / max(max|r|, tiny); "
                    "pass iff max_abs <= atol + rtol * max|r| (norm-wise, per tensor, in float64)")



def _json_number(v):
    """A float for the manifest, or None for NaN / infinity, which JSON cannot hold."""
    v = float(v)
    return v if math.isfinite(v) else None


def tensor_record(name, a) -> dict:
    """The manifest's entry for one tensor (``sum`` and ``abs_max`` are null if not finite)."""
    a64 = a.astype(np.float64, copy=False)
    return {"name": name, "shape": list(a.shape), "dtype": str(a.dtype), "sha256": tensor_sha256(a),
            "sum": _json_number(a64.sum()), "abs_max": _json_number(np.abs(a64).max()) if a.size else 0.0}



def make_manifest(model, tensors, execution_order, keep=None) -> dict:
    """Everything a consumer needs to trust and use a dump, as JSON-ready data."""
    x = tensors[INPUT_NAME]
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "versions": {"numpy_resnext": __version__, "numpy": np.__version__,
                     "python": platform.python_version()},
        # bn_eps: the BatchNorm epsilon the dump ran with (Paddle's float32(1e-5) or 1e-5)
        "arch": {"name": model.config.name, "config": model.config.to_dict(),
                 "bn_eps": model.config.bn_eps},
        "dtype": str(model.dtype),
        "weights": {"params_sha256": params_sha256(model.params), "tensors": len(model.params)},
        "input": {"name": INPUT_NAME, "shape": list(x.shape), "dtype": str(x.dtype),
                  "sha256": tensor_sha256(x)},
        "select": keep,                              # the key predates the name "keep"
        "execution_order": [INPUT_NAME] + list(execution_order),
        "tensors": [tensor_record(n, a) for n, a in tensors.items()],
        "error_definition": ERROR_DEFINITION,
        "suggested_tolerances": SUGGESTED_TOLERANCES,
        "sha256_definition": "sha256 of each array's C-order little-endian bytes "
                             "(the data section of its .npy member)",
    }
    return json.loads(json.dumps(manifest))          # plain JSON types, as a reader sees them


def write_golden(path, tensors, manifest=None):
    """Write ``tensors`` (+ the manifest) as an uncompressed .npz, atomically.

    Members are written in the order of ``tensors``, each as ``NAME.npy``; the manifest as
    ``__manifest__.npy`` (uint8 JSON bytes). A failure half way leaves no file at ``path``.
    Returns the size in bytes.
    """
    path = os.fspath(path)
    for name in tensors:
        if name == MANIFEST_KEY or "/" in name or not name:
            raise InputError(f"golden output {path!r}: tensor name {name!r} is not allowed; "
                             f"expected a non-empty name without '/', other than {MANIFEST_KEY!r}")

    def write(tmp):
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            for name, value in tensors.items():
                with zf.open(f"{name}.npy", "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, np.ascontiguousarray(value), allow_pickle=False)
            if manifest is not None:
                blob = np.frombuffer(json.dumps(manifest, indent=1).encode("utf-8"), dtype=np.uint8)
                with zf.open(f"{MANIFEST_KEY}.npy", "w", force_zip64=True) as f:
                    np.lib.format.write_array(f, blob, allow_pickle=False)
    atomic_write(path, write)
    return os.path.getsize(path)


@one_load
def read_golden(path, verify=True, what="golden file"):
    """``(tensors, manifest)`` from an .npz (ours or anyone's) or a single .npy.

    tensors:  OrderedDict name -> array in the file's member order.
    manifest: the parsed manifest, or None for an .npz without one (or an .npy, which is
              returned as ``{"fc": array}``: a single array is taken to be logits).
    verify:   check each tensor against the manifest's shape, dtype and sha256.
    Object arrays are refused (nothing is ever unpickled).
    """
    path = os.fspath(path)
    loaded = read_array_file(path, what)        # regular files only, sizes checked first
    if isinstance(loaded, np.ndarray):
        return OrderedDict([(LOGITS_NAME, loaded)]), None
    tensors, manifest = OrderedDict(), None
    for name, value in loaded.items():
        if name == MANIFEST_KEY:
            manifest = _parse_manifest(value, path, what)
        else:
            tensors[name] = value
    if manifest is not None and verify:
        verify_manifest(tensors, manifest, f"{what} {path!r}")
    return tensors, manifest


def _parse_manifest(value, path, what):
    """The manifest, parsed with a depth bound and checked against the structure the
    readers use: a wrong type is named by its JSON path, never met as a KeyError later."""
    source = f"{what} {path}: {MANIFEST_KEY}"
    if value.dtype != np.uint8 or value.ndim != 1:
        raise FormatError(f"{source}: expected the uint8 bytes of a JSON text, found "
                          f"{value.dtype} of shape {list(value.shape)}")
    manifest = loads_json(value.tobytes(), source, what="JSON manifest")
    found = manifest.get("format") if isinstance(manifest, dict) else None
    if found != FORMAT:
        raise FormatError(f"{what}: {path!r} has a {MANIFEST_KEY} member that is not a "
                          f"{FORMAT} manifest (format={short_repr(found)})")
    for i, rec in enumerate(expect(manifest.get("tensors", []), list, "tensors", source)):
        where = f"tensors[{i}]"
        expect_keys(rec, ("name", "shape", "dtype", "sha256"), where, source, optional=None)
        for key in ("name", "dtype", "sha256"):
            expect(rec[key], str, f"{where}.{key}", source)
        expect_shape(rec["shape"], f"{where}.shape", source)
    tolerances = manifest.get("suggested_tolerances")
    if tolerances is not None:
        expect(tolerances, dict, "suggested_tolerances", source)
        for key, tol in tolerances.items():
            where = f"suggested_tolerances[{short_repr(key, 40)}]"
            expect_keys(tol, ("rtol", "atol"), where, source, optional=None)
            for k in ("rtol", "atol"):
                expect(tol[k], (int, float), f"{where}.{k}", source)
    return manifest


def _cut(name, n=80):
    return name if len(name) <= n else f"{name[:n]}... ({len(name)} characters)"


def verify_manifest(tensors, manifest, what="golden file"):
    """Raise FormatError naming every tensor whose shape, dtype or sha256 disagrees."""
    problems = []
    listed = {rec["name"]: rec for rec in manifest.get("tensors", [])}
    for name in listed.keys() - tensors.keys():
        problems.append(f"{_cut(name)}: listed in the manifest but not stored")
    for name, a in tensors.items():
        rec = listed.get(name)
        label = _cut(name)
        if rec is None:
            problems.append(f"{label}: stored but not listed in the manifest")
        elif list(a.shape) != rec["shape"] or str(a.dtype) != rec["dtype"]:
            problems.append(f"{label}: manifest says {short_repr(tuple(rec['shape']))} "
                            f"{short_repr(rec['dtype'], 20)}, file holds {a.shape} {a.dtype}")
        elif tensor_sha256(a) != rec["sha256"]:
            problems.append(f"{label}: sha256 differs from the manifest (file modified or corrupt)")
    if problems:
        raise FormatError(f"{what}: {len(problems)} tensor(s) disagree with the manifest: "
                          + clip_list(sorted(problems), 10, "; "))
