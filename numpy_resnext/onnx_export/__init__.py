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
core of numpy-resnext never imports it: every module here imports it when called, through
:func:`numpy_resnext._optional.require`, which names the extra when it is missing.
"""

from __future__ import annotations

from .graph import OPSET
from .save import export as export_onnx

__all__ = ["OPSET", "export_onnx"]
