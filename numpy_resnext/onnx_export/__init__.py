"""ONNX export of the layer plan, model-zoo test data, and conformance of ONNX runtimes.

The usual road from a model to a runtime (onnxruntime, OpenVINO, TensorRT, TVM, an
accelerator's compiler) is an ONNX file. This package writes one from the same layer plan
the NumPy forward walks (:mod:`.graph`: an ``ops`` object for :func:`numpy_resnext.walk.walk`
that appends ONNX nodes instead of computing), so the exported graph follows the forward by
construction, with node and value names equal to the intermediate names of
:meth:`numpy_resnext.plan.Plan.names`: any runtime's intermediates map one-to-one onto a
golden dump.

Modules: :mod:`.graph` (the graph), :mod:`.save` (writing, external data, checking),
:mod:`.testdata` (model-zoo ``test_data_set_*``), :mod:`.runtimes` (onnxruntime,
onnx.reference, OpenVINO), :mod:`.conformance` (every runtime against the float64 golden)
and :mod:`.plot` (the error-per-layer picture).

The ``onnx`` package is an optional extra (``pip install 'numpy-resnext[onnx]'``); the
core of numpy-resnext never imports it. :func:`require_onnx` raises a clear error naming
the extra when it is missing.
"""

from __future__ import annotations

import importlib

from ..errors import ResNeXtError

OPSET = 17
EXTRA = "pip install 'numpy-resnext[onnx]'"


class MissingExtraError(ResNeXtError, ImportError):
    """An optional dependency (onnx, onnxruntime, matplotlib) is not installed."""


def require_onnx():
    """The ``onnx`` module, or a :class:`MissingExtraError` naming the extra to install."""
    try:
        return importlib.import_module("onnx")
    except ImportError as exc:
        raise MissingExtraError(f"ONNX export needs the onnx package, which is not installed "
                                f"({exc}); install the extra: {EXTRA}") from None


def export_onnx(model, path, **options):
    """Export ``model`` to ``path`` (see :func:`numpy_resnext.onnx_export.save.export`)."""
    from .save import export
    return export(model, path, **options)


__all__ = ["EXTRA", "OPSET", "MissingExtraError", "export_onnx", "require_onnx"]
