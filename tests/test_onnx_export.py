"""ONNX export: the graph follows the layer plan, and real runtimes agree with the float64
golden (onnxruntime in float32, onnx.reference in float64).

Oracles: onnxruntime's CPU kernels and onnx.reference.ReferenceEvaluator, which implement
the ONNX operator definitions independently of this package. Lanes skip with a reason when
onnx / onnxruntime are absent (CI installs both).
"""

import os

import numpy as np
import pytest

import numpy_resnext as nrx
from numpy_resnext.shapes import output_shapes

from _onnx_lane import model64, need_onnx, need_ort, random_bn, rel, run_ort

pytestmark = pytest.mark.onnx

# plain, vd and WSL networks at odd sizes, batch 2 (the lane); SE-ResNeXt: a timm
# tiered-stem model, a legacy SENet one (ceil-mode stem max-pool) and a PaddleClas one run
# with Paddle's BatchNorm epsilon
LANE = [("ResNeXt50_32x4d", (67, 75)), ("ResNeXt50_vd_32x4d", (65, 71)),
        ("ResNeXt101_32x8d_wsl", (71, 63)), ("seresnext26t_32x4d", (67, 45)),
        ("legacy_seresnext26_32x4d", (67, 45)),
        (nrx.get_arch("SE_ResNeXt50_vd_32x4d").replace(bn_eps=nrx.archs.PADDLE_BN_EPS), (61, 57))]


def _export(model, path, **kw):
    from numpy_resnext.onnx_export import export_onnx
    info = export_onnx(model, path, progress=False, **kw)
    need_onnx().checker.check_model(str(path), full_check=True)       # every export is checked
    return info


@pytest.mark.parametrize("arch,size", LANE, ids=lambda v: getattr(v, "name", str(v)))
def test_onnxruntime_float32_matches_the_float64_golden(tmp_path, arch, size):
    need_ort()
    model = model64(arch)
    x = np.random.default_rng(3).standard_normal((2, 3) + size)
    logits, golden = model.forward(x, keep=True)
    info = _export(model, tmp_path / "m.onnx", dtype="float32", size=size, intermediates="*")
    assert info["exposed"] == model.plan.names()                         # every intermediate, by name
    got = run_ort(tmp_path / "m.onnx", x.astype(np.float32))
    assert list(got) == ["fc"] + [n for n in model.plan.names() if n != "fc"]
    assert rel(got["fc"], logits) <= 1e-5
    assert (got["fc"].argmax(1) == logits.argmax(1)).all()
    worst = max(golden, key=lambda n: rel(got[n], golden[n]))
    assert rel(got[worst], golden[worst]) <= 1e-4, worst


def test_onnx_reference_float64_on_a_tiny_network(tmp_path):
    """plain, deep (the vd shortcut too) and SE networks, the last with Paddle's epsilon and
    the legacy SENet stem max-pool (ceil mode, no padding)."""
    onnx = need_onnx()
    from onnx.reference import ReferenceEvaluator
    se = dict(se_reduction=16, stem_pool="ceil", bn_eps=nrx.archs.PADDLE_BN_EPS)
    for stem, more in (("plain", {}), ("deep", {}), ("plain", se)):
        model = random_bn(nrx.build(nrx.custom(stem=stem, **more), seed=1, dtype="float64"))
        x = np.random.default_rng(4).standard_normal((2, 3, 37, 41))
        logits, golden = model.forward(x, keep=True)
        path = tmp_path / f"{stem}.onnx"
        _export(model, path, dtype="float64", size=(37, 41), intermediates="*")
        ev = ReferenceEvaluator(str(path))
        got = dict(zip(ev.output_names, ev.run(None, {"input": x})))
        assert got["fc"].dtype == np.float64
        for name, ref in golden.items():
            assert rel(got[name], ref) <= 1e-12, (stem, name)
    assert onnx.load(str(path)).opset_import[0].version == 17


def test_onnxruntime_has_no_float64_conv(tmp_path):
    """The documented limitation (docs/onnx.md): onnxruntime's CPU provider refuses a
    float64 Conv; if a release adds the kernel, this test says the docs are stale."""
    ort = need_ort()
    model = nrx.build(nrx.custom(), dtype="float64")
    _export(model, tmp_path / "f64.onnx", dtype="float64", size=(32, 32))
    with pytest.raises(Exception, match=r"Could not find an implementation for Conv\(11\)"):
        ort.InferenceSession(str(tmp_path / "f64.onnx"), providers=["CPUExecutionProvider"])


def test_fold_bn_agrees_and_has_no_batchnorm_nodes(tmp_path):
    need_ort()
    model = model64("ResNeXt50_vd_32x4d")
    x = np.random.default_rng(5).standard_normal((2, 3, 65, 71))
    logits, golden = model.forward(x, keep=True)
    info = _export(model, tmp_path / "fold.onnx", size=(65, 71), intermediates="*", fold=True)
    convs = {c.name for c in model.plan.convs()}
    assert not convs & set(info["exposed"])                              # pre-BN outputs are folded away
    assert set(info["exposed"]) == set(model.plan.names()) - convs
    ops = {n.op_type for n in need_onnx().load(str(tmp_path / "fold.onnx")).graph.node}
    assert "BatchNormalization" not in ops
    got = run_ort(tmp_path / "fold.onnx", x.astype(np.float32))
    assert rel(got["fc"], logits) <= 1e-5
    assert (got["fc"].argmax(1) == logits.argmax(1)).all()
    for name in info["exposed"]:
        assert rel(got[name], golden[name]) <= 1e-4, name


def test_conv_and_pool_attributes_equal_the_plan(tmp_path):
    onnx = need_onnx()
    from numpy_resnext.onnx_export.graph import build_graph, conv_attributes
    for arch in ("ResNeXt50_vd_64x4d", "ResNeXt101_32x4d", "ResNet50"):
        model = nrx.build(arch)
        graph = build_graph(model, size=(224, 224))
        attrs = conv_attributes(graph.model)
        inits = {t.name: tuple(t.dims) for t in graph.model.graph.initializer}
        convs = model.plan.convs()
        assert len(attrs) == len(convs)
        for c in convs:
            a = attrs[c.name]
            assert a["kernel_shape"] == [c.kernel] * 2, c.name
            assert a["strides"] == [c.stride] * 2, c.name
            assert a["pads"] == [c.padding] * 4, c.name
            assert a["group"] == c.groups, c.name
            assert inits[f"{c.name}.weight"] == c.weight_shape, c.name
            if c.role == "conv2":                                    # the paper's grouped 3x3
                assert (a["group"], a["kernel_shape"]) == (model.config.cardinality, [3, 3])
        pools = [n for n in graph.model.graph.node if n.op_type == "AveragePool"]
        if model.config.avg_down:
            assert len(pools) == 3                                   # layer2..4 strided shortcuts
            for n in pools:
                a = {x.name: onnx.helper.get_attribute_value(x) for x in n.attribute}
                assert (a["ceil_mode"], a["count_include_pad"], a["kernel_shape"]) == (1, 0, [2, 2])
        else:
            assert not pools
        gemm = next(n for n in graph.model.graph.node if n.op_type == "Gemm")
        assert {x.name: x.i for x in gemm.attribute}["transB"] == 1


def test_inferred_shapes_equal_the_plan_arithmetic():
    """ONNX's shape inference (its operator definitions) against numpy-resnext's own
    shape arithmetic, for every value of an odd-sized vd graph."""
    need_onnx()
    from numpy_resnext.onnx_export.graph import build_graph
    model = nrx.build("ResNeXt50_vd_32x4d")
    graph = build_graph(model, size=(97, 113), intermediates="*")
    declared = {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
                for v in graph.model.graph.output}
    for row in output_shapes(model.config, 97, 113):
        shape = list(row["shape"]) + ([1, 1] if row["name"] == "avgpool" else [])
        assert declared[row["name"]] == ["N"] + shape, row["name"]


def test_dynamic_batch_and_names(tmp_path):
    onnx = need_onnx()
    model = random_bn(nrx.build(nrx.custom(), dtype="float32"))
    _export(model, tmp_path / "m.onnx", size=(40, 36))
    m = onnx.load(str(tmp_path / "m.onnx"))
    assert [d.dim_param for d in m.graph.input[0].type.tensor_type.shape.dim][:1] == ["N"]
    nodes = [n.name for n in m.graph.node]
    assert [n for n in nodes if n != "avgpool.flatten"] == model.plan.names()
    assert all(n.output[0] == n.name for n in m.graph.node)
    need_ort()
    for batch in (1, 3):
        x = np.random.default_rng(batch).standard_normal((batch, 3, 40, 36)).astype(np.float32)
        got = run_ort(tmp_path / "m.onnx", x)["fc"]
        assert got.shape == (batch, 10)
        assert rel(got, model(x)) <= 1e-5


def test_size_dynamic_is_parsed_without_onnx():
    """--size dynamic (before: argparse's 'invalid int value')."""
    from numpy_resnext.commands.export import parse_size
    from numpy_resnext.errors import InputError
    assert parse_size(["dynamic"]) is None and parse_size(["DYNAMIC"]) is None
    assert parse_size(["67", "45"]) == (67, 45)
    for bad in (["0", "4"], ["big"], ["1", "2", "3"]):
        with pytest.raises(InputError, match="two positive integers H W or 'dynamic'"):
            parse_size(bad)


@pytest.mark.parametrize("stem", ["plain", "deep"])
def test_size_dynamic_one_graph_for_every_size(tmp_path, stem):
    """Symbolic H and W: onnxruntime runs the one graph at two sizes (and batches), every
    intermediate at each size agreeing with the NumPy forward; test data at a concrete size."""
    onnx = need_onnx()
    from numpy_resnext.onnx_export.testdata import read_test_data, write_test_data
    model = random_bn(nrx.build(nrx.custom(stem=stem), seed=2, dtype="float32"))
    path = tmp_path / "dyn.onnx"
    info = _export(model, path, size=None, intermediates="layer?.?")
    assert info["input_shape"] == ["N", 3, "H", "W"]
    m = onnx.load(str(path))
    dims = m.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param for d in dims] == ["N", "", "H", "W"] and dims[1].dim_value == 3
    assert {p.key: p.value for p in m.metadata_props}["input_size"] == "dynamic"
    need_ort()
    for shape in ((1, 3, 67, 45), (2, 3, 96, 128)):
        x = np.random.default_rng(shape[2]).standard_normal(shape).astype(np.float32)
        got = run_ort(path, x)
        logits, acts = model.forward(x, keep="layer?.?")
        assert rel(got["fc"], logits) <= 1e-5
        for name, value in acts.items():
            assert got[name].shape == value.shape and rel(got[name], value) <= 1e-4, name
    dirs = write_test_data(path, model, 1, batch=2, size=(41, 39))
    inputs, outputs = read_test_data(dirs[0])
    assert inputs[0][1].shape == (2, 3, 41, 39)
    got = run_ort(path, inputs[0][1])
    for (name, want), have in zip(outputs, got.values()):
        assert rel(have, want) <= 1e-4, name


def test_export_command_size_dynamic(tmp_path, capsys):
    need_onnx()
    from numpy_resnext.cli import main
    out = tmp_path / "m.onnx"
    assert main(["export", "ResNet50", "--init", "identity-bn", "--onnx", str(out), "--size", "dynamic",
                 "--test-data", "1", "--test-size", "35", "33"]) == 0
    text = capsys.readouterr().out
    assert "input Nx3xHxW" in text
    assert (tmp_path / "test_data_set_0" / "input_0.pb").exists()
    assert main(["export", "ResNet50", "--onnx", str(out), "--size", "64", "64", "--test-size", "3", "3"]) == 2


def test_external_data_path(tmp_path):
    onnx = need_onnx()
    from onnx.reference import ReferenceEvaluator
    model = random_bn(nrx.build(nrx.custom(), dtype="float32"))
    info = _export(model, tmp_path / "ext.onnx", size=(33, 33), max_inline_bytes=1000)
    assert info["data_file"] == str(tmp_path / "ext.onnx.data")
    assert os.path.getsize(tmp_path / "ext.onnx") < 50_000                # the weights are not in it
    assert os.path.getsize(tmp_path / "ext.onnx.data") >= info["weights_bytes"]
    m = onnx.load(str(tmp_path / "ext.onnx"), load_external_data=False)
    assert all(t.data_location == onnx.TensorProto.EXTERNAL for t in m.graph.initializer)
    assert sorted(os.listdir(tmp_path)) == ["ext.onnx", "ext.onnx.data"]  # no temporary left over
    x = np.random.default_rng(0).standard_normal((2, 3, 33, 33)).astype(np.float32)
    ev = ReferenceEvaluator(str(tmp_path / "ext.onnx"))
    assert rel(ev.run(None, {"input": x})[0], model(x)) <= 1e-5
    need_ort()
    assert rel(run_ort(tmp_path / "ext.onnx", x)["fc"], model(x)) <= 1e-5


def test_a_failed_check_leaves_no_file(tmp_path, monkeypatch):
    onnx = need_onnx()
    from numpy_resnext.onnx_export import save

    def refuse(*a, **k):
        raise onnx.checker.ValidationError("refused on purpose")
    monkeypatch.setattr(onnx.checker, "check_model", refuse)
    with pytest.raises(onnx.checker.ValidationError):
        save.export(nrx.build(nrx.custom()), tmp_path / "bad.onnx", size=(32, 32), progress=False)
    assert os.listdir(tmp_path) == []


def test_docs_state_the_opset_op_versions_and_epsilon():
    """docs/onnx.md's opset paragraph and float32-epsilon figures, recomputed."""
    onnx = need_onnx()
    from pathlib import Path
    from numpy_resnext.onnx_export import OPSET
    from numpy_resnext.onnx_export.graph import eps_float32_gap
    doc = (Path(__file__).resolve().parent.parent / "docs" / "onnx.md").read_text(encoding="utf-8")
    assert f"**Opset {OPSET}**" in doc
    for op in ("Conv", "BatchNormalization", "Relu", "Add", "MaxPool", "AveragePool",
               "GlobalAveragePool", "Flatten", "Gemm", "Sigmoid", "Mul"):
        assert f"{op}-{onnx.defs.get_schema(op, OPSET).since_version}" in doc, op
    assert repr(float(np.float32(1e-5))) in doc
    assert f"{eps_float32_gap(1e-5):.1e}" in doc and eps_float32_gap(float(np.float32(1e-5))) == 0
