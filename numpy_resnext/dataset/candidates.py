"""A candidate's logits for every image of a run, in the run's id order.

- an .npy of shape (N, classes): already in the run's id order;
- an .npz {id: logits}: every id of the run exactly once, no other;
- another run store: the same ids (in any order), every shard done; its sample
  intermediates, where both stores kept the same tensors, locate the first divergence;
- ``--onnx MODEL``: onnxruntime runs the model over the run's inputs, read from the store
  (``--save-inputs``) or from the source again (each checked against ``input_sha256``), cast
  to the model's input type, so an ONNX user needs no glue.

Every problem with a candidate (ids repeated, missing or extra, a wrong shape, a non-float
dtype) is an :class:`~numpy_resnext.errors.InputError` naming it.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from .._optional import require
from ..bounded import NpzMembers, clip_list, read_npy
from ..checksums import tensor_digest
from ..errors import InputError
from ..preprocess import Preset
from .sources import MAX_ITEMS, SourceSpec, load_item
from .store import RunStore, shard_bounds


def _check_float(a, what):
    if a.dtype.kind != "f":
        raise InputError(f"{what}: logits must be floats, found {a.dtype}")
    return a


def _align(names, ids, what):
    """Positions of ``ids`` in ``names``: InputError for repeated, missing or extra ids."""
    seen, dup = {}, []
    for k, name in enumerate(names):
        if name in seen:
            dup.append(name)
        seen[name] = k
    if dup:
        raise InputError(f"{what}: ids appear more than once: {clip_list(sorted(set(dup)), 5)}")
    missing = [i for i in ids if i not in seen]
    extra = sorted(set(seen) - set(ids))
    if missing or extra:
        raise InputError(f"{what}: ids do not match the run's {len(ids)}: "
                         + (f"{len(missing)} missing ({clip_list(missing, 5)})" if missing else "")
                         + ("; " if missing and extra else "")
                         + (f"{len(extra)} not in the run ({clip_list(extra, 5)})" if extra else ""))
    return np.array([seen[i] for i in ids], np.int64)


def read_candidate(path, ref: RunStore):
    """(logits (N, classes) in the run's id order, dtype name, candidate store or None)."""
    path = os.fspath(path)
    ids, classes = ref.ids(), int(ref.manifest["classes"])
    if os.path.isdir(path):
        cand = RunStore(path)
        if not cand.done().all():
            raise InputError(f"candidate store {path!r}: {int((~cand.done()).sum())} shard(s) not done; "
                             "finish it with golden-set first")
        order = _align(cand.ids(), ids, f"candidate store {path!r}")
        logits = cand.logits()[order]
        if logits.shape[1] != classes:
            raise InputError(f"candidate store {path!r}: {logits.shape[1]} classes, the run has {classes}")
        return logits, cand.manifest["dtype"], cand
    if not os.path.exists(path):
        raise InputError(f"candidate {path!r} does not exist")
    if path.lower().endswith(".npz"):
        return _npz_candidate(path, ids, classes)
    a = _check_float(read_npy(path, "candidate"), f"candidate {path!r}")
    if a.shape != (len(ids), classes):
        raise InputError(f"candidate {path!r}: expected logits of shape ({len(ids)}, {classes}) in the "
                         f"run's id order, found {a.shape}")
    return a, str(a.dtype), None


def _npz_candidate(path, ids, classes):
    """An .npz {id: logits} as read_candidate returns it. As many members as the run has images
    (not the weight readers' 10,000): the ids and every member's .npy header are checked before
    any member is read, so what is read is at most the run's own (N, classes) logits."""
    with NpzMembers(path, "candidate", MAX_ITEMS) as z:
        names = z.names
        order = _align(names, ids, f"candidate {path!r}")
        dtypes = set()
        for k in order:
            where = f"candidate {path!r} id {names[k]!r}"
            shape, dtype = z.header(names[k])
            if dtype.kind != "f":
                raise InputError(f"{where}: logits must be floats, found {dtype}")
            if shape not in ((classes,), (1, classes)):
                raise InputError(f"{where}: expected logits of shape ({classes},), found {shape}")
            dtypes.add(str(dtype))
        if len(dtypes) > 1:
            raise InputError(f"candidate {path!r}: logits of several dtypes ({', '.join(sorted(dtypes))})")
        logits = np.empty((len(ids), classes), dtypes.pop())                      # N, classes
        for row, k in enumerate(order):
            logits[row] = z.read(names[k]).reshape(classes)
    return logits, str(logits.dtype), None


# --- the run's inputs, again -----------------------------------------------------------------------
def source_spec(ref: RunStore, images=None) -> SourceSpec:
    """How to read the run's items again (``images`` overrides the recorded folder or file)."""
    src, pre = ref.manifest["source"], ref.manifest["preprocessing"]
    preset = None if pre is None else Preset(**{k: (tuple(v) if k in ("mean", "std") else v)
                                                for k, v in pre.items() if k in Preset._fields})
    path = os.path.abspath(images) if images else src["path"]
    return SourceSpec(src["kind"], path, preset, src.get("seed", 0))


def run_inputs(ref: RunStore, shard: int, images=None):
    """(first index, inputs of the shard in the run's dtype, valid mask) for one shard."""
    n, size = ref.n_images, ref.shard_size
    start, stop = shard_bounds(n, size, shard)
    errors = ref.root["errors"][start:stop]
    valid = np.array([not e for e in errors])
    if "inputs" in ref.root:
        return start, np.asarray(ref.root["inputs"][start:stop]), valid
    spec, ids = source_spec(ref, images), ref.root["ids"][start:stop]
    digests = np.asarray(ref.root["input_sha256"][start:stop])
    x = np.zeros((stop - start,) + tuple(ref.manifest["input_shape"]), ref.manifest["dtype"])
    for j in np.flatnonzero(valid):
        a = np.ascontiguousarray(load_item(spec, str(ids[j]), start + j), dtype=ref.manifest["dtype"])
        if tensor_digest(a) != digests[j].tobytes():
            raise InputError(f"image {str(ids[j])!r} read again is not the input the run used (its "
                             "sha256 differs): the file changed, or another decoder/version; run "
                             "golden-set with --save-inputs to keep the inputs")
        x[j] = a
    return start, x, valid


def onnx_logits(model_path, ref: RunStore, images=None, keep=(), sample=0, stream=None):
    """(logits, dtype name, {index: {name: array}} of the sample images' intermediates)."""
    ort = require("onnxruntime", "compare-set --onnx")
    model_path = os.fspath(model_path)
    if not os.path.exists(model_path):
        raise InputError(f"--onnx {model_path!r} does not exist")
    try:
        session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    except Exception as exc:          # onnxruntime's errors have no public classes
        hint = ("; onnxruntime has no float64 convolution: export the model in float32"
                if "Could not find an implementation" in str(exc) else "")
        raise InputError(f"--onnx {model_path!r}: onnxruntime cannot load it ({str(exc)[:300]}){hint}") from None
    inp = session.get_inputs()[0]
    types = {"tensor(float)": "float32", "tensor(double)": "float64", "tensor(float16)": "float16"}
    if inp.type not in types:
        raise InputError(f"--onnx {model_path!r}: input {inp.name!r} is {inp.type}; expected float")
    dtype = types[inp.type]
    shape = tuple(ref.manifest["input_shape"])
    if all(isinstance(d, int) for d in inp.shape[1:]) and tuple(inp.shape[1:]) != shape:
        raise InputError(f"--onnx {model_path!r}: the model takes {list(inp.shape)}, the run's inputs "
                         f"are (N, {', '.join(map(str, shape))}); export it at this size")
    outputs = [o.name for o in session.get_outputs()]
    logits_name = "fc" if "fc" in outputs else outputs[0]
    extra = [name for name in outputs if name in keep and name != logits_name]
    logits = np.full((ref.n_images, int(ref.manifest["classes"])), np.nan)
    intermediates, last = {}, time.perf_counter()
    for s in range(ref.n_shards):
        start, x, valid = run_inputs(ref, s, images)
        for j in np.flatnonzero(valid):
            got = session.run([logits_name] + extra, {inp.name: x[j:j + 1].astype(dtype)})
            logits[start + j] = got[0].reshape(-1)
            if start + j < sample and extra:
                intermediates[start + j] = dict(zip(extra, (g[0] for g in got[1:])))
        if time.perf_counter() - last > 2 or s + 1 == ref.n_shards:
            last = time.perf_counter()
            print(f"compare-set --onnx: shard {s + 1}/{ref.n_shards}", file=stream or sys.stderr, flush=True)
    return logits.astype(dtype), dtype, intermediates


__all__ = ["onnx_logits", "read_candidate", "run_inputs", "source_spec"]
