"""The run store: a Zarr v3 group holding a data set's reference outputs.

============================  ============================================  =================
array                         content                                       chunks
============================  ============================================  =================
``ids``                       (N,) strings, the images' ids                 one
``labels``                    (N,) int64, -1 where unknown                  one
``input_sha256``              (N, 32) uint8, sha256 of each model input     one shard
                              (C-order little-endian bytes, as golden
                              manifests hash tensors); zero if it failed
``errors``                    (N,) strings: "" or why the image failed      one shard
``logits``                    (N, classes) in the run's dtype; NaN where    one shard
                              the image failed or is not computed yet
``done``                      (shards,) bool, a shard's flag, written last  one flag
``attempts``                  (shards,) int32, tasks started per shard      one flag
``stats/<tensor>``            (N, 6) float64: mean, std, min, max, max|x|,  one shard
                              L2 norm of each kept intermediate
``sample/<tensor>``           (M, ...) the first M images' intermediates    one image
``inputs`` (--save-inputs)    (N, 3, H, W) the model inputs                 one shard
============================  ============================================  =================

The root's attributes hold the manifest (``numpy_resnext_golden_set``): format, the
architecture and its config, the weights (file, file sha256, params sha256 or the seed), the
dtype, the preprocessing, the source (kind, path, list sha256), the shard size, the kept
tensors, versions, the fingerprint and the fields it hashes, and one record per run.

Every chunk of a shard is written by that shard's task alone (zarr >= 3.1.3 writes a chunk to
a temporary file and renames it), and ``done[shard]`` last: a shard whose flag is not set is
recomputed, whatever chunks of it exist. Only the driver writes the attributes.
"""

from __future__ import annotations

import hashlib
import json
import math
import os

import numpy as np

from .._optional import require
from ..errors import InputError

FORMAT = "numpy-resnext-golden-set"
FORMAT_VERSION = 1
ATTRS_KEY = "numpy_resnext_golden_set"
STATS = ("mean", "std", "min", "max", "max_abs", "l2")
# what the fingerprint covers: a resumed run must agree on all of these
FINGERPRINT_FIELDS = ("format_version", "arch", "weights_params_sha256", "dtype", "preprocessing",
                      "source_kind", "list_sha256", "images", "input_shape", "shard_size", "keep",
                      "sample", "save_inputs")


# what a run store may hold: a store is an input like any other file, and a codec such as
# numcodecs' pickle would run code while reading; anything else is refused before a chunk is read
SAFE_CODECS = {"bytes", "zstd", "gzip", "blosc", "crc32c", "transpose", "vlen-utf8", "sharding_indexed"}
SAFE_TYPES = {"bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
              "float16", "float32", "float64", "string"}


def _zarr():
    return require("zarr", "a data-set run store (Zarr v3)")


def _codec_names(codecs):
    for c in codecs or ():
        yield c.get("name") if isinstance(c, dict) else c
        config = c.get("configuration", {}) if isinstance(c, dict) else {}
        if isinstance(config, dict):
            yield from _codec_names(config.get("codecs"))
            yield from _codec_names(config.get("index_codecs"))


def check_safe(root, path) -> None:
    """InputError unless every array of ``root`` uses plain data types and codecs."""
    zarr = _zarr()
    if root.metadata.zarr_format != 3:
        raise InputError(f"{path!r} is a Zarr v{root.metadata.zarr_format} group; run stores are Zarr v3")
    try:
        members = list(root.members(max_depth=None))
    except Exception as exc:          # zarr's own errors for metadata it cannot parse
        raise InputError(f"{path!r}: unreadable Zarr metadata ({type(exc).__name__}: {str(exc)[:200]})") from None
    for name, node in members:
        if isinstance(node, zarr.Array):
            meta = node.metadata.to_dict()
            bad = sorted({str(c) for c in _codec_names(meta.get("codecs")) if c not in SAFE_CODECS})
            dtype = meta.get("data_type")
            if bad or not isinstance(dtype, str) or dtype not in SAFE_TYPES:
                raise InputError(f"{path!r}: array {name!r} uses data type {str(dtype)[:40]} and codecs "
                                 f"{bad or 'allowed'}; a run store holds plain numbers and strings with "
                                 f"{', '.join(sorted(SAFE_CODECS))} only (nothing that could run code)")


def fingerprint(fields: dict) -> str:
    """sha256 of the fields' canonical JSON (sorted keys, no spaces)."""
    return hashlib.sha256(json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _short(v):
    text = json.dumps(v, sort_keys=True)
    return text if len(text) <= 80 else text[:77] + "..."


def differences(stored: dict, new: dict) -> list:
    """'field: stored ... , this run ...' for every fingerprint field that differs."""
    return [f"{k}: stored {_short(stored.get(k))}, this run {_short(new.get(k))}"
            for k in FINGERPRINT_FIELDS if stored.get(k) != new.get(k)]


def shard_bounds(n_images: int, shard_size: int, shard: int):
    return shard * shard_size, min((shard + 1) * shard_size, n_images)


class RunStore:
    """A run store opened for reading (and, in the driver, writing its attributes)."""

    def __init__(self, path, mode="r"):
        self.path = os.path.abspath(os.fspath(path))
        zarr = _zarr()
        if not os.path.isdir(self.path) or not os.path.exists(os.path.join(self.path, "zarr.json")):
            raise InputError(f"{self.path!r} is not a run store (no zarr.json); make one with "
                             "`numpy-resnext golden-set`")
        try:
            self.root = zarr.open_group(self.path, mode=mode)
        except Exception as exc:        # zarr raises its own errors for damaged metadata
            raise InputError(f"{self.path!r}: not a readable Zarr v3 group ({type(exc).__name__}: "
                             f"{str(exc)[:200]})") from None
        self.manifest = dict(self.root.attrs).get(ATTRS_KEY)
        check_safe(self.root, self.path)
        if not isinstance(self.manifest, dict) or self.manifest.get("format") != FORMAT:
            raise InputError(f"{self.path!r} is a Zarr group but not a golden-set run store "
                             f"(no {ATTRS_KEY!r} attribute with format {FORMAT!r})")
        if self.manifest.get("format_version") != FORMAT_VERSION:
            raise InputError(f"{self.path!r}: run store format version "
                             f"{self.manifest.get('format_version')}, this numpy-resnext reads {FORMAT_VERSION}")

    @property
    def n_images(self) -> int:
        return int(self.manifest["images"])

    @property
    def shard_size(self) -> int:
        return int(self.manifest["shard_size"])

    @property
    def n_shards(self) -> int:
        return math.ceil(self.n_images / self.shard_size)

    def done(self) -> np.ndarray:
        return np.asarray(self.root["done"][:], bool)

    def ids(self) -> list:
        return [str(i) for i in self.root["ids"][:]]

    def labels(self) -> np.ndarray:
        return np.asarray(self.root["labels"][:], np.int64)

    def errors(self) -> list:
        return [str(e) for e in self.root["errors"][:]]

    def logits(self) -> np.ndarray:
        return np.asarray(self.root["logits"][:])

    def kept(self, group) -> list:
        return sorted(self.root[group].array_keys()) if group in self.root else []

    def save_manifest(self, manifest: dict) -> None:
        self.root.attrs[ATTRS_KEY] = manifest
        self.manifest = manifest


def create(path, manifest: dict, ids, labels, classes: int, kept_shapes: dict, dtype) -> RunStore:
    """A new store at ``path`` with every array allocated (nothing computed yet)."""
    zarr = _zarr()
    n, shard, sample = manifest["images"], manifest["shard_size"], manifest["sample"]
    shards = math.ceil(n / shard)
    root = zarr.open_group(path, mode="w-")
    root.create_array("ids", shape=(n,), dtype=str, chunks=(n,))[:] = np.array(ids, dtype=str)
    root.create_array("labels", shape=(n,), dtype="int64", chunks=(n,))[:] = np.asarray(labels)
    root.create_array("input_sha256", shape=(n, 32), dtype="uint8", chunks=(shard, 32), fill_value=0)
    root.create_array("errors", shape=(n,), dtype=str, chunks=(shard,), fill_value="")
    root.create_array("logits", shape=(n, classes), dtype=dtype, chunks=(shard, classes),
                      fill_value=np.nan)
    root.create_array("done", shape=(shards,), dtype=bool, chunks=(1,), fill_value=False)
    root.create_array("attempts", shape=(shards,), dtype="int32", chunks=(1,), fill_value=0)
    for name, shape in kept_shapes.items():
        root.create_array(f"stats/{name}", shape=(n, len(STATS)), dtype="float64",
                          chunks=(shard, len(STATS)), fill_value=np.nan)
        if sample:
            root.create_array(f"sample/{name}", shape=(min(sample, n),) + tuple(shape), dtype=dtype,
                              chunks=(1,) + tuple(shape), fill_value=np.nan)
    if manifest["save_inputs"]:
        root.create_array("inputs", shape=(n,) + tuple(manifest["input_shape"]), dtype=dtype,
                          chunks=(shard,) + tuple(manifest["input_shape"]), fill_value=np.nan)
    root.attrs[ATTRS_KEY] = manifest
    return RunStore(path, mode="r+")


def open_for_run(path, manifest: dict):
    """(store, resumed): the existing store at ``path`` if its fingerprint is ``manifest``'s
    (InputError naming every field that differs otherwise), or None when there is none."""
    path = os.fspath(path)
    if not os.path.exists(path):
        return None
    if not os.path.isdir(path) or not os.path.exists(os.path.join(path, "zarr.json")):
        raise InputError(f"--output {path!r} exists and is not a run store; give a new name "
                         "(or remove it)")
    store = RunStore(path, mode="r+")
    old = store.manifest
    if old.get("fingerprint") != manifest["fingerprint"]:
        diff = differences(old.get("fingerprint_fields", {}), manifest["fingerprint_fields"])
        raise InputError(f"--output {path!r} holds a run with a different fingerprint "
                         f"({str(old.get('fingerprint'))[:12]} vs {manifest['fingerprint'][:12]}): "
                         + ("; ".join(diff) or "fields unknown") + ". Resume it with the same "
                         "options, or write this run to a new store")
    return store


# --- the writes a shard's task makes -------------------------------------------------------------
def open_root(path):
    return _zarr().open_group(path, mode="r+")


def start_attempt(root, shard: int) -> int:
    """attempts[shard] += 1 (only this shard's task writes it); the new count."""
    count = int(root["attempts"][shard]) + 1
    root["attempts"][shard] = count
    return count


def write_shard(root, start: int, stop: int, result: dict) -> None:
    """Every per-image array of images start..stop-1 (the shard's chunks), done flag excluded."""
    root["input_sha256"][start:stop] = result["sha256"]
    root["errors"][start:stop] = np.array(result["errors"], dtype=str)
    for name, values in result["stats"].items():
        root[f"stats/{name}"][start:stop] = values
    if "inputs" in result:
        root["inputs"][start:stop] = result["inputs"]
    root["logits"][start:stop] = result["logits"]


def mark_done(root, shard: int) -> None:
    """The shard's flag: written after everything else of the shard."""
    root["done"][shard] = True


__all__ = ["ATTRS_KEY", "FINGERPRINT_FIELDS", "FORMAT", "FORMAT_VERSION", "RunStore", "STATS",
           "create", "differences", "fingerprint", "mark_done", "open_for_run", "open_root",
           "shard_bounds", "start_attempt", "write_shard"]
