"""classify infers the architecture from --weights, like every other command, and takes
--preprocess paddleclas | torchvision | timm (numpy_resnext.preprocess.presets).

Before, the architecture had to be named (without it argparse took the first image for
one) and only PaddleClas's preprocessing existed. The presets themselves are checked
against Pillow, torchvision and timm in tests/test_preprocess_presets.py; the live tests
here run the command end to end on a PNG beside torchvision's weights transforms and timm's
create_transform feeding the same model.
"""

import json

import numpy as np
import pytest

import numpy_resnext as nrx
from numpy_resnext.cli import main
from numpy_resnext.labels import softmax
from numpy_resnext.params import init_params
from numpy_resnext.preprocess import get_preset

from _torchvision import timm as need_timm, torchvision as need_torchvision
from _scratch import scratch



@pytest.fixture(scope="module")
def files(tmp_path_factory):
    with scratch(tmp_path_factory, "classify") as d:
        raw = np.random.default_rng(0).integers(0, 256, (301, 383, 3), dtype=np.uint8)
        np.save(d / "raw.npy", raw)
        for arch in ("ResNeXt50_32x4d", "ResNeXt50_vd_32x4d"):
            np.savez(d / f"{arch}.npz", **init_params(nrx.get_arch(arch), seed=4))
        yield d, raw


def _classify(capsys, *argv):
    status = main(["classify", *map(str, argv), "--json", "--top", "5"])
    out, err = capsys.readouterr()
    assert status == 0, err
    return [json.loads(line) for line in out.splitlines()]


def _expected(arch, weights, x):
    model = nrx.build(arch, weights=str(weights))
    logits = model(x[None].astype(np.float32))[0]
    p = softmax(logits.astype(np.float64))
    order = np.argsort(-p, kind="stable")[:5]
    return [int(i) for i in order], [float(p[i]) for i in order]


def test_the_architecture_is_inferred_from_the_weights(files, capsys):
    d, raw = files
    rows = _classify(capsys, "--weights", d / "ResNeXt50_vd_32x4d.npz", d / "raw.npy", d / "raw.npy")
    assert [r["arch"] for r in rows] == ["ResNeXt50_vd_32x4d"] * 2
    index, _ = _expected("ResNeXt50_vd_32x4d", d / "ResNeXt50_vd_32x4d.npz", get_preset("paddleclas")(raw))
    assert [t["index"] for t in rows[0]["top"]] == index
    # named, it must agree with the file; the image after it is still an image
    rows = _classify(capsys, "ResNeXt50_vd_32x4d", "--weights", d / "ResNeXt50_vd_32x4d.npz", d / "raw.npy")
    assert len(rows) == 1 and rows[0]["arch"] == "ResNeXt50_vd_32x4d"


@pytest.mark.parametrize("spec", ["paddleclas", "torchvision", "torchvision:resize=232", "timm"])
def test_each_preset_is_what_runs(files, capsys, spec):
    d, raw = files
    arch = "ResNeXt50_32x4d"
    row, = _classify(capsys, "--weights", d / f"{arch}.npz", d / "raw.npy", "--preprocess", spec)
    preset = get_preset(spec, arch)
    assert row["preprocess"]["name"] == preset.name and row["preprocess"]["resize"] == preset.resize
    index, prob = _expected(arch, d / f"{arch}.npz", preset(raw))
    assert [t["index"] for t in row["top"]] == index
    np.testing.assert_allclose([t["probability"] for t in row["top"]], prob, rtol=1e-6)


def test_timm_preset_follows_the_inferred_architecture(files, capsys):
    d, raw = files
    row, = _classify(capsys, "--weights", d / "ResNeXt50_vd_32x4d.npz", d / "raw.npy", "--preprocess", "timm")
    assert "resnext50d_32x4d.bt_in1k" in row["preprocess"]["origin"]          # timm's pretrained config
    assert (row["preprocess"]["resize"], row["preprocess"]["interpolation"]) == (256, "bicubic")


@pytest.mark.parametrize("argv, message", [
    (["classify", "{d}/raw.npy"], "name an architecture (see `numpy-resnext archs`) or give --weights"),
    (["classify", "ResNeXt50_32x4d"], "names an architecture; give at least one IMAGE"),
    (["classify", "--weights", "{d}/ResNeXt50_32x4d.npz", "{d}/nope.png"], "not found: '{d}/nope.png'"),
    (["classify", "--weights", "{d}/ResNeXt50_32x4d.npz", "{d}/raw.npy", "--preprocess", "caffe"],
     "unknown preset 'caffe'"),
])
def test_classify_argument_errors(files, capsys, argv, message):
    d = str(files[0])
    assert main([a.format(d=d) for a in argv]) == 2
    assert message.format(d=d) in capsys.readouterr().err


# --- live: the libraries that define the presets -----------------------------------------------
def _png(tmp_path, raw):
    Image = pytest.importorskip("PIL.Image", reason="decoding a PNG needs Pillow")
    Image.fromarray(raw).save(tmp_path / "photo.png")
    return tmp_path / "photo.png", Image


@pytest.mark.torch
@pytest.mark.parametrize("weights_name,spec", [("IMAGENET1K_V1", "torchvision"),
                                               ("IMAGENET1K_V2", "torchvision:resize=232")])
def test_classify_equals_torchvision_weights_transforms(files, tmp_path, capsys, weights_name, spec):
    tv = need_torchvision()
    d, raw = files
    png, Image = _png(tmp_path, raw)
    transform = getattr(tv.models.ResNeXt50_32X4D_Weights, weights_name).transforms()
    x = transform(Image.open(png).convert("RGB")).numpy()
    row, = _classify(capsys, "--weights", d / "ResNeXt50_32x4d.npz", png, "--preprocess", spec)
    index, prob = _expected("ResNeXt50_32x4d", d / "ResNeXt50_32x4d.npz", x)
    assert [t["index"] for t in row["top"]] == index
    np.testing.assert_allclose([t["probability"] for t in row["top"]], prob, rtol=1e-6)


@pytest.mark.torch
def test_classify_equals_timm_create_transform(files, tmp_path, capsys):
    timm = need_timm()
    from timm.data import create_transform, resolve_data_config
    d, raw = files
    png, Image = _png(tmp_path, raw)
    config = resolve_data_config(pretrained_cfg=timm.models.get_pretrained_cfg("resnext50d_32x4d.bt_in1k").to_dict())
    x = create_transform(**config)(Image.open(png).convert("RGB")).numpy()
    row, = _classify(capsys, "--weights", d / "ResNeXt50_vd_32x4d.npz", png, "--preprocess", "timm")
    index, prob = _expected("ResNeXt50_vd_32x4d", d / "ResNeXt50_vd_32x4d.npz", x)
    assert [t["index"] for t in row["top"]] == index
    np.testing.assert_allclose([t["probability"] for t in row["top"]], prob, rtol=1e-6)
