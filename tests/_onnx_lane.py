"""Shared set-up of the ONNX lanes: optional imports that skip with a reason, models with
random BatchNorm statistics, and running an exported model."""

import importlib
from collections import OrderedDict

import numpy as np
import pytest

import numpy_resnext as nrx
from numpy_resnext.plan import BN_FIELDS


def optional(name, why):
    try:
        return importlib.import_module(name)
    except Exception as exc:  # ImportError, or a broken install
        pytest.skip(f"{name} is not installed ({type(exc).__name__}): {why}")


def need_onnx():
    return optional("onnx", "the ONNX export lane needs `pip install 'numpy-resnext[onnx]'`")


def need_ort():
    need_onnx()
    return optional("onnxruntime", "the onnxruntime lane needs `pip install 'numpy-resnext[onnx]'`")


def random_bn(model, seed=7):
    """Set every BatchNorm's four tensors to random values, explicitly (a seeded model has
    mean 0 / var 1 / scale 1 / shift 0, which would hide a BN that is not applied)."""
    rng = np.random.default_rng(seed)
    for layer in model.plan.convs():
        C, p = layer.out_channels, model.params
        values = {"weight": rng.uniform(0.5, 1.5, C), "bias": rng.normal(0, 0.2, C),
                  "running_mean": rng.normal(0, 0.3, C), "running_var": rng.uniform(0.4, 2.0, C)}
        for f in BN_FIELDS:
            p[f"{layer.bn}.{f}"] = values[f].astype(model.dtype)
    return model


def model64(arch, seed=0):
    return random_bn(nrx.build(arch, seed=seed, dtype="float64"), seed + 7)


def run_ort(path, x):
    ort = need_ort()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return OrderedDict(zip(names, session.run(names, {"input": x})))


def rel(ours, ref):
    """max |ours - ref| / max |ref| (the golden files' norm-wise measure), float64."""
    ref = np.asarray(ref, np.float64)
    ours = np.asarray(ours, np.float64).reshape(ref.shape)
    return float(np.abs(ours - ref).max() / np.abs(ref).max())
