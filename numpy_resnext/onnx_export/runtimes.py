"""The ONNX runtimes conformance knows: how to find them, run a model, and why one is skipped.

Each runtime runs at one dtype (``NAME:DTYPE`` asks for another):

- ``onnxruntime`` (float32): the CPU execution provider. It has no float64 Conv kernel
  (onnxruntime 1.32: "Could not find an implementation for Conv(11)"), so ``onnxruntime:float64``
  is reported as skipped with that reason.
- ``onnx-reference`` (float64): ``onnx.reference.ReferenceEvaluator``, the NumPy evaluator
  that ships with the onnx package; slow, but it runs float64.
- ``openvino`` (float32): OpenVINO's CPU device, when the package is installed, with the
  inference precision hint set to the model's dtype ("f32"). Without the hint the device
  picks its own: OpenVINO 2026.4 on a CPU with bfloat16 support runs bfloat16 (about 5e-3
  relative on the logits). ``openvino-default`` runs with the device's default, to show it.

A runner returns every graph output, by name, in graph-output order.
"""

from __future__ import annotations

import importlib
from collections import OrderedDict
from typing import NamedTuple

import numpy as np

from ..errors import InputError

DEFAULT_DTYPE = OrderedDict([("onnxruntime", "float32"), ("onnx-reference", "float64"),
                             ("openvino", "float32"), ("openvino-default", "float32")])
MODULES = {"onnxruntime": "onnxruntime", "onnx-reference": "onnx", "openvino": "openvino",
           "openvino-default": "openvino"}


class RuntimeSkipped(Exception):
    """The runtime cannot run this model (not installed, no kernels for the dtype)."""


class Choice(NamedTuple):
    name: str
    dtype: str


def parse_runtimes(spec) -> list:
    """[Choice] from "onnxruntime,onnx-reference,openvino:float32" (a list works too)."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        name, _, dtype = item.partition(":")
        if name not in DEFAULT_DTYPE:
            raise InputError(f"--runtimes: unknown runtime {name!r}; expected one of "
                             f"{', '.join(DEFAULT_DTYPE)} (optionally NAME:float32 or NAME:float64)")
        dtype = dtype or DEFAULT_DTYPE[name]
        if dtype not in ("float32", "float64"):
            raise InputError(f"--runtimes {item!r}: dtype must be float32 or float64, found {dtype!r}")
        out.append(Choice(name, dtype))
    if not out:
        raise InputError("--runtimes: no runtime named")
    return out


def version(name):
    """The installed version of runtime ``name``, or raise :class:`RuntimeSkipped`."""
    module = MODULES[name]
    try:
        mod = importlib.import_module(module)
    except ImportError:
        extra = {"onnxruntime": "pip install 'numpy-resnext[onnx]' (onnxruntime)",
                 "onnx-reference": "pip install 'numpy-resnext[onnx]' (onnx)",
                 "openvino": "pip install openvino", "openvino-default": "pip install openvino"}[name]
        raise RuntimeSkipped(f"not installed ({extra})") from None
    if name == "onnx-reference":
        importlib.import_module("onnx.reference")
    return getattr(mod, "__version__", "?")


def _onnxruntime(path, x):
    import onnxruntime as ort
    try:
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    except Exception as exc:                       # onnxruntime's NotImplemented has no public class
        message = str(exc)
        if "Could not find an implementation" in message:
            op = message.split("Could not find an implementation for ")[-1].split(" ")[0]
            raise RuntimeSkipped(f"no {x.dtype} kernels (Could not find an implementation for {op})") from None
        raise
    names = [o.name for o in session.get_outputs()]
    return OrderedDict(zip(names, session.run(names, {session.get_inputs()[0].name: x})))


def _onnx_reference(path, x):
    from onnx.reference import ReferenceEvaluator
    evaluator = ReferenceEvaluator(path)
    names = list(evaluator.output_names)
    return OrderedDict(zip(names, evaluator.run(names, {evaluator.input_names[0]: x})))


def _openvino(path, x, hint=True):
    import openvino as ov
    core = ov.Core()
    config = {"INFERENCE_PRECISION_HINT": {np.float32: "f32", np.float64: "f32"}[x.dtype.type]} if hint else {}
    compiled = core.compile_model(core.read_model(path), "CPU", config)
    results = compiled([x])
    return OrderedDict((out.get_any_name(), np.asarray(results[out])) for out in compiled.outputs)


def precision(name):
    """The inference precision a runtime really uses, when it differs from the model's
    dtype by its own choice (OpenVINO's hint); None otherwise."""
    if not name.startswith("openvino"):
        return None
    import openvino as ov
    hint = ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT")
    return getattr(hint, "get_type_name", lambda: str(hint))() if name == "openvino-default" else "f32"


RUNNERS = {"onnxruntime": _onnxruntime, "onnx-reference": _onnx_reference, "openvino": _openvino,
           "openvino-default": lambda path, x: _openvino(path, x, hint=False)}


def run(name, path, x):
    """Every graph output of the ONNX model at ``path`` on input ``x``, run by ``name``."""
    return RUNNERS[name](str(path), x)
