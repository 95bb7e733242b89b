"""The ONNX graph of a layer plan, built by walking the plan with ops that append nodes.

:class:`OnnxOps` is an ``ops`` object for :func:`numpy_resnext.walk.walk`: where
:class:`~numpy_resnext.walk.ArrayOps` computes, it appends an ONNX node and returns the
name of the node's output, so the graph has exactly the forward's layers in the forward's
order, and every hyperparameter (channels, kernel, stride, padding, groups, pooling) is
read from the :class:`~numpy_resnext.plan.Plan`. Each node and its output value carry the
intermediate name the forward emits there (``layer1.0.conv2``, ``layer1.0.bn2``,
``layer1.0.relu2``, ``layer1.0.add``, ``layer1.0`` ...), and each weight its canonical
parameter name (``layer1.0.conv2.weight``), so a runtime's tensors map one-to-one onto a
golden dump.

The nodes, per plan layer (opset :data:`~numpy_resnext.onnx_export.OPSET`)::

    ConvBN     Conv (group = C for conv2) -> BatchNormalization (epsilon: the layer's) [-> Relu]
               with fold_bn: one Conv with a bias, its output named after the BN
    Pool       MaxPool / AveragePool (ceil_mode, count_include_pad = 0 for the vd shortcut)
    SE         GlobalAveragePool ("se.pool", N x C x 1 x 1) -> Conv 1x1 with bias ("se.fc1")
               -> Relu ("se.act") -> Conv 1x1 with bias ("se.fc2") -> Sigmoid ("se.gate")
               -> Mul (the branch times the gate, broadcast over H and W: "se")
    Block      the convs above, Add (residual + shortcut), Relu (named after the block)
    Head       GlobalAveragePool ("avgpool", N x C x 1 x 1), Flatten ("avgpool.flatten",
               N x C), Gemm (transB = 1: fc.weight is stored [classes, features]) -> "fc"

The one value without a golden counterpart is ``avgpool.flatten``; the golden's ``avgpool``
and SE vectors are (N, C), which :func:`numpy_resnext.golden.compare` matches with the
runtime's (N, C, 1, 1) by dropping the size-1 axes. With fold_bn the conv outputs before BatchNorm
do not exist in the graph (the folded Conv computes the BN output directly).

ONNX stores BatchNormalization's epsilon as a float32 attribute, so 1e-5 arrives as
9.999999747378752e-06. In float32 that is the epsilon every float32 BN uses anyway; in a
float64 graph it would shift each BN's output by about 3e-13 relative (measured with
onnx.reference), 300 times the float64 agreement of the rest of the graph. A float64 export
therefore stores each ``running_var`` plus the difference (2.5e-13), so that
``running_var + epsilon`` is the golden's ``running_var + 1e-5`` to the last bit or so. A
model with Paddle's epsilon, float32(1e-5) itself, needs no such difference.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

import numpy as np

from .._select import Selection
from ..ops.batchnorm import fold_bn
from ..errors import InputError
from ..golden import INPUT_NAME, LOGITS_NAME
from ..plan import BN_FIELDS, SE, Block, ConvBN, Head, Pool, SEFc
from ..shapes import check_input_size
from ..walk import walk
from .._optional import require

OPSET = 17                      # the ONNX operator set every exported graph declares

BATCH = "N"                                 # the dynamic batch axis' symbolic name
HEIGHT, WIDTH = "H", "W"                    # the spatial axes' names with size=None (dynamic)


def eps_float32_gap(eps: float) -> float:
    """What a float32 epsilon attribute loses of ``eps``: 2.5e-13 for 1e-5, 0 for Paddle's."""
    return eps - float(np.float32(eps))


class OnnxOps:
    """The walk's ops on graph value names: each appends one ONNX node (BatchNorm with
    fold_bn appends none) and returns the name of its output."""

    def __init__(self, helper, params, dtype, fold=False):
        self.helper, self.params, self.dtype, self.fold = helper, params, np.dtype(dtype), fold
        self.nodes = []
        self.initializers = OrderedDict()   # name -> array of the export dtype

    def _weight(self, name, value=None):
        value = self.params[name] if value is None else value
        self.initializers[name] = value.astype(self.dtype, copy=False)
        return name

    def _node(self, op, inputs, output, **attrs):
        self.nodes.append(self.helper.make_node(op, list(inputs), [output], name=output, **attrs))
        return output

    def conv(self, x, layer: ConvBN):
        k, s, p = layer.kernel, layer.stride, layer.padding
        attrs = dict(kernel_shape=[k, k], strides=[s, s], pads=[p, p, p, p], dilations=[1, 1],
                     group=layer.groups)
        w = f"{layer.name}.weight"
        if not self.fold:
            return self._node("Conv", [x, self._weight(w)], layer.name, **attrs)
        bn = [self.params[f"{layer.bn}.{f}"] for f in BN_FIELDS]
        folded, shift = fold_bn(self.params[w], *bn, eps=layer.eps)  # (K, C/G, R, S), (K,)
        inputs = [x, self._weight(w, folded), self._weight(f"{layer.name}.bias", shift)]
        return self._node("Conv", inputs, layer.bn, **attrs)        # computes the BN's output

    def bn(self, x, layer: ConvBN):
        if self.fold:
            return x                                                 # folded into the conv
        # ONNX's inputs X, scale, B, input_mean, input_var are BN_FIELDS in this order
        inputs = [x] + [self._weight(f"{layer.bn}.{f}") for f in BN_FIELDS[:3]]
        var = f"{layer.bn}.running_var"
        gap = eps_float32_gap(layer.eps)
        if self.dtype == np.float64 and gap:
            # ONNX holds epsilon as a float32 attribute (1e-5 -> 9.999999747378752e-06); the
            # variance carries the difference so that var + epsilon is var + 1e-5 in float64
            inputs.append(self._weight(var, self.params[var] + gap))
        else:
            inputs.append(self._weight(var))
        return self._node("BatchNormalization", inputs, layer.bn, epsilon=layer.eps)

    def relu(self, x, layer):
        return self._node("Relu", [x], layer.relu)

    def pool(self, x, pool: Pool):
        k, s, p = pool.kernel, pool.stride, pool.padding
        attrs = dict(kernel_shape=[k, k], strides=[s, s], pads=[p, p, p, p],
                     ceil_mode=int(pool.ceil_mode))
        if pool.kind == "max":
            return self._node("MaxPool", [x], pool.name, **attrs)
        return self._node("AveragePool", [x], pool.name, count_include_pad=int(not pool.exclusive), **attrs)

    def add(self, y, shortcut, block: Block):
        return self._node("Add", [y, shortcut], block.add)

    def global_pool(self, x, head: Head):
        pooled = self._node("GlobalAveragePool", [x], head.pool)     # N, C, 1, 1
        return self._node("Flatten", [pooled], f"{head.pool}.flatten", axis=1)   # N, C

    def fc(self, features, head: Head):
        inputs = [features, self._weight(f"{head.fc}.weight"), self._weight(f"{head.fc}.bias")]
        return self._node("Gemm", inputs, head.fc, transB=1)         # (N, F) @ (classes, F)^T + b

    def squeeze(self, x, se: SE):
        return self._node("GlobalAveragePool", [x], se.pool)          # N, C, 1, 1

    def se_fc(self, x, fc: SEFc):
        inputs = [x, self._weight(f"{fc.name}.weight"), self._weight(f"{fc.name}.bias")]
        return self._node("Conv", inputs, fc.name, kernel_shape=[1, 1])   # N, out, 1, 1

    def gate(self, x, se: SE):
        return self._node("Sigmoid", [x], se.gate)

    def scale(self, y, gate, se: SE):
        return self._node("Mul", [y, gate], se.name)                 # N, C, H, W times N, C, 1, 1


class Graph(NamedTuple):
    """An exported graph before its weights are written (see :mod:`.save`).

    model:        the ModelProto; its initializers are filled in when it is written
    initializers: name -> array of the export dtype, in the order the graph uses them
    exposed:      the forward's intermediate names that are values of this graph, in
                  execution order (with fold_bn, the pre-BN conv outputs are not)
    outputs:      the graph outputs: "fc" first, then the selected intermediates
    """

    model: object
    initializers: "OrderedDict[str, np.ndarray]"
    exposed: list
    outputs: list

    @property
    def nbytes(self) -> int:
        return sum(a.nbytes for a in self.initializers.values())


def _tensor_type(onnx, dtype):
    return onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


def shell_initializer(onnx, name, array):
    """A TensorProto with the name, type and dims of ``array`` but no data (enough for
    shape inference; :mod:`.save` writes the data inline or to an external file)."""
    t = onnx.TensorProto()
    t.name, t.data_type = name, _tensor_type(onnx, array.dtype)
    t.dims.extend(array.shape)
    return t


def build_graph(model, *, dtype="float32", size=(224, 224), intermediates=None, fold=False,
                doc=None) -> Graph:
    """The ONNX graph of ``model`` (a :class:`~numpy_resnext.model.ResNeXt`).

    dtype:         float32 or float64: the weights are cast to it, input and outputs have it.
    size:          (H, W) of the input, or None for symbolic "H" and "W" (every op of the
                   graph runs at any size; a runtime refuses an input smaller than the
                   smallest size the network takes); the batch axis is dynamic ("N").
    intermediates: None, or names / glob patterns (:mod:`numpy_resnext._select`) of
                   intermediates to add as graph outputs, after the logits.
    fold:          fold each BatchNorm into the conv before it (one Conv with a bias).
    """
    onnx = require("onnx", "ONNX export")
    helper = onnx.helper
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise InputError(f"ONNX export: dtype must be float32 or float64, found {dtype}")
    plan = model.plan
    if size is None:
        H, W = HEIGHT, WIDTH
    else:
        H, W = (int(v) for v in size)
        check_input_size(plan, H, W, "ONNX export: input")
    ops = OnnxOps(helper, model.params, dtype, fold)
    order = []
    logits = walk(plan, INPUT_NAME, ops, emit=lambda name, value: order.append(name))
    assert logits == LOGITS_NAME and order == plan.names()
    produced = {n.output[0] for n in ops.nodes}
    exposed = [n for n in order if n in produced]
    outputs = [LOGITS_NAME]
    if intermediates is not None:
        selection = Selection(intermediates)
        chosen = [n for n in exposed if selection.matches(n) and n != LOGITS_NAME]
        if not chosen and not selection.matches(LOGITS_NAME):
            hint = " (with --fold-bn the conv outputs before BatchNorm do not exist)" if fold else ""
            raise InputError(f"--intermediates {intermediates}: matches no tensor of the graph{hint}; "
                             f"see `numpy-resnext summary {model.config.name}` for the names")
        outputs += chosen
    elem = _tensor_type(onnx, dtype)
    graph = helper.make_graph(
        ops.nodes, f"{model.config.name}",
        [helper.make_tensor_value_info(INPUT_NAME, elem, [BATCH, 3, H, W])],
        [helper.make_tensor_value_info(LOGITS_NAME, elem, [BATCH, plan.head.num_classes])],
        initializer=[shell_initializer(onnx, n, a) for n, a in ops.initializers.items()])
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                          producer_name="numpy-resnext", doc_string=doc or "")
    m.ir_version = helper.find_min_ir_version_for(list(m.opset_import))
    # the types of every value, from ONNX's own shape inference (strict: a disagreement
    # between the plan's arithmetic and ONNX's operator definitions is an error)
    inferred = onnx.shape_inference.infer_shapes(m, check_type=True, strict_mode=True)
    types = {v.name: v for v in inferred.graph.value_info}
    for name in outputs[1:]:
        m.graph.output.append(types[name])
    m.graph.value_info.extend(v for n, v in types.items() if n not in outputs)
    return Graph(m, ops.initializers, exposed, outputs)


def conv_attributes(model_proto) -> dict:
    """{node name: {attribute: value}} of every Conv node of an ONNX model (for tests and
    for reading an exported graph back)."""
    onnx = require("onnx", "ONNX export")
    return {n.name: {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute}
            for n in model_proto.graph.node if n.op_type == "Conv"}
