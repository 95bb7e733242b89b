"""Test data in the ONNX model-zoo layout, which runtimes' test runners already read::

    OUT.onnx
    test_data_set_0/input_0.pb    the input (a serialized TensorProto named "input")
    test_data_set_0/output_0.pb   the logits ("fc")
    test_data_set_0/output_1.pb   with --intermediates: the next graph output, and so on
    test_data_set_1/...

Expected outputs are numpy-resnext's float64 forward (the golden) on exactly the input that
is stored, cast to the model's dtype: each set's input is drawn in float64 from a seeded
generator (``numpy.random.default_rng([seed, i])``, standard normal), cast to the model's
dtype and stored; the golden runs on that stored input read back as float64.
"""

from __future__ import annotations

import os

import numpy as np

from .._files import atomic_write
from ..shapes import check_compute
from ..golden import INPUT_NAME, LOGITS_NAME
from ..model import ResNeXt
from ..shapes import check_input_size
from .._optional import require


def float64_twin(model):
    """``model`` itself if it is float64, else the same weights in float64."""
    if model.dtype == np.float64:
        return model
    params = {k: v.astype(np.float64) for k, v in model.params.items()}
    return ResNeXt(model.plan, params, np.float64, model.load_report)


def seeded_input(seed, index, batch, size, dtype):
    """Test set ``index``'s input: (batch, 3, H, W) standard normal, drawn in float64 from
    ``default_rng([seed, index])`` and cast to ``dtype``."""
    rng = np.random.default_rng([seed, index])
    return rng.standard_normal((batch, 3) + tuple(size)).astype(dtype)


def graph_outputs(onnx, model_proto):
    """[(name, shape without the batch axis)] of the graph outputs, in order."""
    out = []
    for v in model_proto.graph.output:
        dims = v.type.tensor_type.shape.dim
        out.append((v.name, tuple(d.dim_value for d in dims[1:])))
    return out


def _write_proto(path, tensor):
    def write(tmp):
        with open(tmp, "wb") as f:
            f.write(tensor.SerializeToString())
    atomic_write(path, write)


def write_test_data(onnx_path, model, count, *, batch=1, seed=0, progress=None, size=None):
    """Write ``count`` test sets beside the exported ``onnx_path`` for ``model`` (the model
    that was exported, any dtype); returns the list of directories written.

    The input size, dtype and outputs are read from the ONNX file, so the sets match it; a
    graph with symbolic H and W (``--size dynamic``) gets test data at ``size`` (H, W),
    default 224 x 224: test data is always at a concrete size.
    """
    onnx = require("onnx", "ONNX export")
    numpy_helper = onnx.numpy_helper
    proto = onnx.load(os.fspath(onnx_path), load_external_data=False)
    inp = proto.graph.input[0]
    dtype = onnx.helper.tensor_dtype_to_np_dtype(inp.type.tensor_type.elem_type)
    dims = inp.type.tensor_type.shape.dim[2:]
    if all(d.dim_value > 0 for d in dims):
        size = tuple(d.dim_value for d in dims)
    else:
        size = tuple(int(v) for v in (size or (224, 224)))
        check_input_size(model.plan, size[0], size[1], "test data")
    outputs = graph_outputs(onnx, proto)
    golden_model = float64_twin(model)
    keep = [name for name, _ in outputs if name != LOGITS_NAME]
    shape = (batch, 3, *size)
    check_compute(golden_model.plan, shape, "float64", "forward", keep or None,
                  extra=3 * batch * 3 * size[0] * size[1] * 8,
                  what=f"test data of {model.config.name} (a {shape} float64 golden per set)")
    root = os.path.dirname(os.path.abspath(os.fspath(onnx_path)))
    written = []
    for i in range(count):
        x = seeded_input(seed, i, batch, size, dtype)
        logits, acts = golden_model.forward(x.astype(np.float64), keep=keep)
        acts[LOGITS_NAME] = logits
        folder = os.path.join(root, f"test_data_set_{i}")
        os.makedirs(folder, exist_ok=True)
        _write_proto(os.path.join(folder, "input_0.pb"), numpy_helper.from_array(x, INPUT_NAME))
        for k, (name, shape) in enumerate(outputs):
            # avgpool: (N, C) -> (N, C, 1, 1); a symbolic axis (0 here) takes the value's own size
            shape = tuple(d or acts[name].shape[i + 1] for i, d in enumerate(shape))
            value = acts[name].reshape((batch,) + shape).astype(dtype)
            _write_proto(os.path.join(folder, f"output_{k}.pb"), numpy_helper.from_array(value, name))
        written.append(folder)
        if progress:
            progress(i + 1, count, folder)
    return written


def read_test_data(folder):
    """(inputs, outputs): lists of (name, array) from one ``test_data_set_*`` folder, read
    with ``onnx.numpy_helper`` (input_0.pb, input_1.pb, ... and output_0.pb, ...)."""
    onnx = require("onnx", "ONNX export")

    def read(prefix):
        items, k = [], 0
        while os.path.exists(p := os.path.join(folder, f"{prefix}_{k}.pb")):
            t = onnx.TensorProto()
            with open(p, "rb") as f:
                t.ParseFromString(f.read())
            items.append((t.name, onnx.numpy_helper.to_array(t)))
            k += 1
        return items
    return read("input"), read("output")
