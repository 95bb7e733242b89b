"""Writing an exported graph: inline or with external data, atomically, then checked.

Protobuf refuses messages of 2 GiB or more, so a model whose weights approach that size
keeps them in a sibling file (ONNX "external data": each initializer names the file, an
offset and a length). The weights are streamed to that file one tensor at a time, never
copied into the protobuf, so the export needs little memory beyond the model itself.

``max_inline_bytes`` (default :data:`MAX_INLINE_BYTES`, 512 MiB) decides: a model whose
weights exceed it is written with external data. 512 MiB sits far enough below the 2 GiB
limit that the serialized graph never approaches it, and it splits the family where its
sizes jump: in float32 the three largest WSL networks (ResNeXt101_32x16d/32x32d/32x48d,
0.78 / 1.87 / 3.3 GB of weights) get external data, every other architecture (at most
0.46 GB) is one file.

Every file is written to a temporary name, checked with ``onnx.checker.check_model``
(``full_check``: the checker plus strict shape inference) and only then renamed onto the
target; the data file is renamed onto its final name first, since the model refers to it
by that name.
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np

from .._files import atomic_write, check_output_path
from ..bounded import check_memory
from ..checksums import params_sha256
from ..errors import InputError
from .._optional import require
from .graph import OPSET
from .graph import build_graph

MAX_INLINE_BYTES = 512 * 2**20
PROTOBUF_LIMIT = 2**31


def data_path(path) -> str:
    """The external data file of the model at ``path``: ``OUT.onnx.data`` beside it."""
    return os.fspath(path) + ".data"


def _little_endian(a):
    return np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))


def _fill_inline(onnx, graph):
    for t in graph.model.graph.initializer:
        t.raw_data = _little_endian(graph.initializers[t.name]).tobytes()


def _write_external(onnx, graph, data_file):
    """Stream the weights into ``data_file`` (atomically) and point each initializer at
    its (offset, length) there."""
    location = os.path.basename(data_file)
    layout = []

    def write(tmp):
        offset = 0
        with open(tmp, "wb") as f:
            for t in graph.model.graph.initializer:
                a = _little_endian(graph.initializers[t.name])
                pad = -offset % 64                                   # aligned for mmap readers
                f.write(b"\0" * pad)
                offset += pad
                f.write(memoryview(a).cast("B"))
                layout.append((t, offset, a.nbytes))
                offset += a.nbytes
    atomic_write(data_file, write)
    for t, offset, length in layout:
        t.data_location = onnx.TensorProto.EXTERNAL
        del t.external_data[:]
        for key, value in (("location", location), ("offset", str(offset)), ("length", str(length))):
            entry = t.external_data.add()
            entry.key, entry.value = key, value


def write_model(graph, path, external=None, max_inline_bytes=MAX_INLINE_BYTES):
    """Write ``graph`` (a :class:`~.graph.Graph`) to ``path``; returns the data file's path
    when the weights went to external data, else None.

    external: None (decide by ``max_inline_bytes``), True or False.
    """
    onnx = require("onnx", "ONNX export")
    path = check_output_path(path, "--onnx")
    if external is None:
        external = graph.nbytes > max_inline_bytes
    if not external and graph.nbytes >= PROTOBUF_LIMIT - 2**24:
        raise InputError(f"ONNX export {path!r}: {graph.nbytes / 1e9:.2f} GB of weights do not fit "
                         f"in one protobuf (limit 2 GiB); write them as external data")
    data_file = None
    if external:
        data_file = data_path(path)
        _write_external(onnx, graph, data_file)
    else:
        _fill_inline(onnx, graph)

    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(graph.model.SerializeToString())
        onnx.checker.check_model(tmp, full_check=True)              # before it takes the name
    try:
        atomic_write(path, write)
    finally:
        if not external:                                             # drop the copies of the weights
            for t in graph.model.graph.initializer:
                t.ClearField("raw_data")
    return data_file


def export(model, path, *, dtype="float32", size=(224, 224), intermediates=None, fold=False,
           external=None, max_inline_bytes=MAX_INLINE_BYTES, weights_source=None, progress=True):
    """Export ``model`` to the ONNX file ``path``; returns a dict describing the export
    (graph outputs, exposed intermediates, sizes, time, data file).

    See :func:`.graph.build_graph` for dtype, size, intermediates and fold, and
    :func:`write_model` for external and max_inline_bytes.
    """
    t0 = time.perf_counter()
    check_output_path(path, "--onnx")
    weights = sum(int(v.size) for v in model.params.values()) * np.dtype(dtype).itemsize
    # the initializers, the model proto, its serialisation and the checker's copy
    check_memory(4 * weights + (64 << 20), f"exporting {model.config.name} ({np.dtype(dtype)})")
    doc = (f"{model.config.name} exported by numpy-resnext from its layer plan; node and value "
           f"names are numpy-resnext's intermediate names; weights: {weights_source or 'seeded'}")
    graph = build_graph(model, dtype=dtype, size=size, intermediates=intermediates, fold=fold, doc=doc)
    onnx = require("onnx", "ONNX export")
    meta = {"arch": model.config.name, "dtype": str(np.dtype(dtype)), "fold_bn": str(bool(fold)),
            "weights": weights_source or "seeded", "params_sha256": params_sha256(model.params),
            "input_size": "dynamic" if size is None else f"{size[0]}x{size[1]}",
            "intermediates": ",".join(graph.exposed)}
    onnx.helper.set_model_props(graph.model, meta)
    if progress:
        print(f"export {model.config.name}: graph of {len(graph.model.graph.node)} nodes built, "
              f"writing {graph.nbytes / 1e6:.0f} MB of weights", file=sys.stderr, flush=True)
    data_file = write_model(graph, path, external, max_inline_bytes)
    size_bytes = os.path.getsize(path) + (os.path.getsize(data_file) if data_file else 0)
    return {"path": os.fspath(path), "data_file": data_file, "arch": model.config.name,
            "dtype": str(np.dtype(dtype)), "opset": OPSET, "ir_version": graph.model.ir_version,
            "nodes": len(graph.model.graph.node), "outputs": list(graph.outputs),
            "exposed": list(graph.exposed), "weights_bytes": graph.nbytes, "file_bytes": size_bytes,
            "input_shape": ["N", 3] + (["H", "W"] if size is None else [int(size[0]), int(size[1])]),
            "fold_bn": bool(fold),
            "seconds": time.perf_counter() - t0}
