"""Model-zoo test data, the export and conformance commands, and what happens without the
extras. The runtimes (onnxruntime, onnx.reference) are the oracles; lanes skip with a
reason when they are absent."""

import json
import os
import sys

import numpy as np
import pytest

import numpy_resnext as nrx
from numpy_resnext import cli

from _onnx_lane import model64, need_onnx, need_ort, random_bn, rel, run_ort

pytestmark = pytest.mark.onnx


def test_export_command_writes_test_data_that_round_trips(tmp_path, capsys):
    need_ort()
    from numpy_resnext.onnx_export.testdata import read_test_data, seeded_input
    out = tmp_path / "m.onnx"
    status = cli.main(["export", "ResNeXt50_vd_32x4d", "--onnx", str(out), "--size", "65", "71",
                       "--intermediates", "layer1.0,layer3.*.add", "--intermediates", "avgpool",
                       "--test-data", "2", "--batch", "2", "--data-seed", "9"])
    assert status == 0, capsys.readouterr().err
    assert "opset 17" in capsys.readouterr().out
    assert sorted(os.listdir(tmp_path)) == ["m.onnx", "test_data_set_0", "test_data_set_1"]
    expected_names = ["fc", "layer1.0"] + [f"layer3.{i}.add" for i in range(6)] + ["avgpool"]
    golden_model = nrx.build("ResNeXt50_vd_32x4d", dtype="float64")      # the same seeded weights
    for i in range(2):
        folder = tmp_path / f"test_data_set_{i}"
        assert sorted(os.listdir(folder)) == ["input_0.pb"] + [f"output_{k}.pb" for k in range(9)]
        inputs, outputs = read_test_data(folder)
        (name, x), = inputs
        assert name == "input" and x.dtype == np.float32 and x.shape == (2, 3, 65, 71)
        assert np.array_equal(x, seeded_input(9, i, 2, (65, 71), np.float32))
        assert [n for n, _ in outputs] == expected_names
        got = run_ort(tmp_path / "m.onnx", x)
        assert list(got) == expected_names
        # the stored expectations are the float64 golden: check them with an independent
        # float64 forward of the float32-rounded weights ...
        w32 = {k: v.astype(np.float32).astype(np.float64) for k, v in golden_model.params.items()}
        ref = nrx.build("ResNeXt50_vd_32x4d", weights=w32, dtype="float64")
        logits, acts = ref.forward(x.astype(np.float64), keep=expected_names[1:])
        acts["fc"] = logits
        for (n, stored) in outputs:
            assert stored.dtype == np.float32
            assert np.array_equal(stored, acts[n].reshape(stored.shape).astype(np.float32)), n
            # ... and the runtime meets them at float32 tolerance
            assert rel(got[n], stored) <= (1e-5 if n == "fc" else 1e-4), n


def test_conformance_command_table_json_png(tmp_path, capsys):
    need_ort()
    pytest.importorskip("matplotlib", reason="--png needs matplotlib (the [plot] extra)")
    js, png = tmp_path / "c.json", tmp_path / "c.png"
    status = cli.main(["conformance", "ResNeXt50_32x4d", "--size", "33", "35", "--batch", "2",
                       "--runtimes", "onnxruntime,onnx-reference,onnxruntime:float64",
                       "--json", str(js), "--png", str(png)])
    out = capsys.readouterr().out
    assert status == 0, out
    data = json.loads(js.read_text())
    rows = {(r["runtime"], r["dtype"]): r for r in data["rows"]}
    ort32, ref64 = rows["onnxruntime", "float32"], rows["onnx-reference", "float64"]
    assert ort32["status"] == "pass" and ort32["logits_max_rel"] <= 1e-5
    assert ort32["top1_agree"] == ort32["top1_total"] == 2
    assert ref64["status"] == "pass" and ref64["logits_max_rel"] <= 1e-12
    assert ort32["compared"] == ref64["compared"] == len(nrx.build("ResNeXt50_32x4d").plan.names())
    f64 = rows["onnxruntime", "float64"]
    assert f64["status"] == "skipped" and "Conv(11)" in f64["reason"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for r in ("onnxruntime", "onnx-reference"):
        assert r in out


def test_conformance_finds_the_first_divergence(tmp_path):
    """A runtime that computes one BatchNorm wrongly (epsilon 0.1 instead of 1e-5) fails,
    and the first divergence is that BN, not a later tensor."""
    onnx = need_onnx()
    need_ort()
    from numpy_resnext.onnx_export import export_onnx
    from numpy_resnext.onnx_export.conformance import _row
    from numpy_resnext.onnx_export.runtimes import Choice
    model = random_bn(nrx.build(nrx.custom(), dtype="float64"))
    x = np.random.default_rng(0).standard_normal((1, 3, 40, 40))
    logits, golden = model.forward(x, keep=True)
    path = tmp_path / "m.onnx"
    export_onnx(model, path, size=(40, 40), intermediates=True, progress=False)
    m = onnx.load(str(path))
    bn = next(n for n in m.graph.node if n.name == "layer2.0.bn2")
    bn.attribute[0].f = 0.1
    onnx.save(m, str(path))
    got = run_ort(path, x.astype(np.float32))
    row = _row(Choice("onnxruntime", "float32"), "x", golden, got, 0.0)
    assert row.status == "FAIL" and row.first_divergence == "layer2.0.bn2"


def test_runtime_choices_and_skips():
    from numpy_resnext.errors import InputError
    from numpy_resnext.onnx_export.runtimes import RuntimeSkipped, parse_runtimes, version
    assert [tuple(c) for c in parse_runtimes("onnxruntime, onnx-reference,openvino:float64")] == [
        ("onnxruntime", "float32"), ("onnx-reference", "float64"), ("openvino", "float64")]
    with pytest.raises(InputError, match="unknown runtime 'tensorrt'"):
        parse_runtimes("tensorrt")
    with pytest.raises(InputError, match="float16"):
        parse_runtimes("onnxruntime:float16")
    try:
        import openvino  # noqa: F401
    except ImportError:
        with pytest.raises(RuntimeSkipped, match="not installed"):
            version("openvino")


def test_without_onnx_the_commands_exit_2_naming_the_extra(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)                     # import onnx -> ImportError
    for argv in (["export", "ResNeXt50_32x4d", "--onnx", str(tmp_path / "m.onnx")],
                 ["conformance", "ResNeXt50_32x4d", "--size", "33", "33"]):
        assert cli.main(argv) == 2
        err = capsys.readouterr().err
        assert "numpy-resnext[onnx]" in err and len(err.strip().splitlines()) == 1
    assert not os.listdir(tmp_path)


def test_export_errors_are_one_line(tmp_path, capsys):
    need_onnx()
    cases = [(["--size", "0", "5"], "--size"),
             (["--intermediates", "nothing*"], "matches no tensor"),
             (["--fold-bn", "--intermediates", "layer1.0.conv1"], "--fold-bn"),
             (["--test-data", "-1"], "--test-data")]
    for extra, message in cases:
        argv = ["export", "ResNeXt50_32x4d", "--onnx", str(tmp_path / "m.onnx")] + extra
        assert cli.main(argv) == 2, extra
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, err
    assert cli.main(["export", "ResNeXt50_32x4d", "--onnx", str(tmp_path / "no" / "m.onnx")]) == 2
    assert not os.listdir(tmp_path)


def test_openvino_float32_with_the_f32_hint(tmp_path):
    """OpenVINO lane (skips unless `openvino` is installed; CI does not install it)."""
    from _onnx_lane import optional
    optional("openvino", "the OpenVINO lane needs `pip install openvino`")
    from numpy_resnext.onnx_export import export_onnx
    from numpy_resnext.onnx_export.runtimes import run
    model = random_bn(nrx.build(nrx.custom(stem="deep"), dtype="float64"))
    x = np.random.default_rng(0).standard_normal((2, 3, 37, 41))
    logits, golden = model.forward(x, keep=True)
    export_onnx(model, tmp_path / "m.onnx", size=(37, 41), intermediates=True, progress=False)
    got = run("openvino", tmp_path / "m.onnx", x.astype(np.float32))
    assert rel(got["fc"], logits) <= 1e-5
    for name, ref in golden.items():
        assert rel(got[name], ref) <= 1e-4, name
