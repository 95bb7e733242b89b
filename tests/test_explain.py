"""explain: the per-branch layout by hand, branch contributions, the command and its PNG."""

import math
import sys

import numpy as np
import pytest

from numpy_resnext import build
from numpy_resnext.archs import ARCHS, custom
from numpy_resnext.cli import main
from numpy_resnext.paper.explain import block_layout, branch_contributions, format_layout
from numpy_resnext.errors import InputError
from numpy_resnext.params import param_shapes

TINY = custom(depths=(2, 1, 1, 1), cardinality=4, base_width=4, num_classes=10, name="tiny")


def test_layout_of_the_papers_block_by_hand():
    lay = block_layout(ARCHS["ResNeXt50_32x4d"], "layer1.1")
    assert (lay["cardinality"], lay["d"], lay["dp"]) == (32, 4, 4)          # layer1: d' = d
    assert lay["in_shape"] == (256, 56, 56) and lay["out_shape"] == (256, 56, 56)
    params = [layer.params for layer in lay["branch"]]
    assert params == [256 * 4, 2 * 4, 4 * 4 * 9, 2 * 4, 4 * 256]
    assert lay["branch_conv_params"] == 2_192 and 32 * 2_192 == 70_144      # Eq. 4, C=32, d=4
    assert lay["branch_macs"] == (256 * 4 + 4 * 4 * 9 + 4 * 256) * 56 * 56
    grouped = {layer.name: layer for layer in lay["grouped"]}
    assert grouped["conv2"].params == 128 * 4 * 9 and grouped["conv2"].out_shape == (128, 56, 56)
    assert sum(layer.params for layer in lay["grouped"]) == 70_144
    assert lay["aggregation_adds"] == 31 * 256 * 56 * 56
    text = format_layout(lay)
    assert "(G, P, R*S*Cg) = (32, 3136, 36)" in text and "(32, 36, 4)" in text
    assert "equal to C x one branch" in text and "layer1 = the paper's conv2" in text


def test_layout_of_a_strided_block():
    lay = block_layout(ARCHS["ResNeXt101_64x4d"], "layer3.0", 224, 224)
    assert (lay["cardinality"], lay["d"], lay["dp"]) == (64, 4, 16)         # d' = 4 * 2**2 in layer3
    text = format_layout(lay)
    assert "bottleneck width d = 4" in text and "d' = 16" in text
    assert "(G, P, R*S*Cg) = (64, 196, 144)" in text                       # 14*14 pixels, 9*16 columns
    assert lay["in_shape"] == (512, 28, 28) and lay["out_shape"] == (1024, 14, 14)
    conv2 = lay["branch"][2]
    assert conv2.in_shape == (16, 28, 28) and conv2.out_shape == (16, 14, 14)
    assert conv2.macs == 16 * 16 * 9 * 14 * 14


def test_contributions_sum_to_the_models_transform():
    model = build(TINY, seed=1, dtype="float64")
    x = np.random.default_rng(0).standard_normal((2, 3, 64, 64))
    c = branch_contributions(model, x, "layer1.1")
    _, acts = model.forward(x, keep=["layer1.1.conv3"])
    T = acts["layer1.1.conv3"]
    assert c.check < 1e-12
    assert c.shares.sum() == pytest.approx(1.0, abs=1e-12)
    assert c.total_norm == pytest.approx(np.linalg.norm(T), rel=1e-12)
    assert c.maps.shape == (4, 16, 16)


def test_a_branch_with_no_output_contributes_nothing():
    model = build(TINY, seed=2, dtype="float64")
    w = model.params["layer1.1.conv3.weight"]                # out, C*d, 1, 1
    d = 4
    w[:, 2 * d:3 * d] = 0                                    # silence branch 2
    x = np.random.default_rng(1).standard_normal((1, 3, 64, 64))
    c = branch_contributions(model, x, "layer1.1")
    assert c.norms[2] == 0 and c.shares[2] == 0
    w[:, :] = 0
    w[:, 0:d] = np.random.default_rng(3).standard_normal((w.shape[0], d, 1, 1))   # only branch 0
    c = branch_contributions(model, x, "layer1.1")
    np.testing.assert_allclose(c.shares, [1, 0, 0, 0], atol=1e-12)


# --- command -------------------------------------------------------------------------------------
def _run(argv, capsys):
    status = main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def test_explain_text_only(capsys):
    status, out, _ = _run(["explain", "ResNeXt50_32x4d", "--block", "layer4.0"], capsys)
    assert status == 0
    assert "cardinality C = 32, bottleneck width d = 4" in out and "d' = 32 channels per branch" in out
    assert "1024x14x14 -> output 2048x7x7" in out
    assert "Branch contributions" not in out


def test_explain_with_input_and_png(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="the PNG needs matplotlib")
    rng = np.random.default_rng(5)
    np.save(tmp_path / "img.npy", rng.integers(0, 256, (240, 260, 3), dtype=np.uint8))
    png = tmp_path / "b.png"
    status, out, _ = _run(["explain", "ResNeXt50_32x4d", "--input", str(tmp_path / "img.npy"),
                           "--png", str(png), "--top", "4"], capsys)
    assert status == 0
    assert "Branch contributions to layer1.1" in out and "the shares sum to 1.000000" in out
    rows = [line for line in out.splitlines() if "%  " in line or line.rstrip().endswith("%")]
    assert len(rows) == 4
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
    assert not list(tmp_path.glob(".tmp-*"))                   # written atomically


def test_png_without_matplotlib_names_the_extra(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    status, _, err = _run(["explain", "ResNeXt50_32x4d", "--png", str(tmp_path / "b.png")], capsys)
    assert status == 2
    assert "pip install 'numpy-resnext[plot]'" in err
    assert not (tmp_path / "b.png").exists()


@pytest.mark.parametrize("argv, message", [
    (["explain", "ResNeXt50_32x4d", "--block", "layer5.0"], "has no block 'layer5.0'"),
    (["explain", "ResNeXt50_32x4d", "--input", "{d}/none.npy"], "--input: '{d}/none.npy' does not exist"),
    (["explain", "ResNeXt50_32x4d", "--png", "{d}/out.jpg"], "ending in .png"),
    (["explain", "ResNeXt50_32x4d", "--input", "{d}/chw4.npy"], "expected (3, H, W) or (N, 3, H, W)"),
    (["explain", "ResNeXt50_32x4d", "--input-size", "0", "5"],
     "argument --input-size: expected an integer from 1 to 1,048,576, found 0"),
    (["explain", "ResNeXt50_32x4d", "--top", "-3"], "argument --top: expected an integer of at least 0"),
])
def test_explain_errors(tmp_path, capsys, argv, message):
    np.save(tmp_path / "chw4.npy", np.zeros((4, 32, 32), np.float32))
    d = str(tmp_path)
    status, _, err = _run([a.format(d=d) for a in argv], capsys)
    assert status == 2 and message.format(d=d) in err


def test_explain_help_has_an_example(capsys):
    with pytest.raises(SystemExit):
        main(["explain", "--help"])
    assert "example:" in capsys.readouterr().out


def test_layout_rejects_unknown_blocks():
    with pytest.raises(InputError, match="blocks are layer1.0 .. layer4.2"):
        block_layout(ARCHS["ResNeXt50_32x4d"], "layer1.9")


def test_png_without_input_uses_a_seeded_picture_and_the_seeded_model(tmp_path, capsys, monkeypatch):
    """No --input: the maps are drawn for a synthetic picture (edges and colour regions, not
    noise) through the model build(seed) gives, and the title says both."""
    from numpy_resnext.paper import explain as ex
    from numpy_resnext.commands import explain as cmd
    seen = {}

    def fake_plot(c, lay, path, image=None, title_note=""):
        seen.update(image=image, note=title_note, shares=c.shares)
    monkeypatch.setattr(cmd, "plot_contributions", fake_plot)
    monkeypatch.setattr(cmd, "pyplot", lambda purpose: None)
    status, out, _ = _run(["explain", "ResNeXt50_32x4d", "--block", "layer1.0", "--seed", "3",
                           "--input-size", "40", "48", "--png", str(tmp_path / "b.png")], capsys)
    assert status == 0
    img = ex.synthetic_image(40, 48, 3)
    assert np.array_equal(seen["image"], img) and img.shape == (40, 48, 3) and img.dtype == np.uint8
    assert len(np.unique(img.reshape(-1, 3), axis=0)) < 40 * 48 / 2         # regions, not noise
    assert not np.array_equal(img, ex.synthetic_image(40, 48, 4))
    assert "synthetic input (seed 3)" in seen["note"] and "build(seed=3, init='calibrated')" in seen["note"]
    # the shares are those of build(seed=3) on that picture
    model = build("ResNeXt50_32x4d", seed=3)
    expected = ex.branch_contributions(model, ex.image_to_input(img), "layer1.0").shares
    np.testing.assert_allclose(seen["shares"], expected, rtol=1e-6, atol=1e-7)


def test_block_totals_are_labelled_and_the_whole_block_counted(capsys):
    """layer2.0 of ResNeXt50_32x4d by hand: the three residual convolutions hold
    256*256 + 256*8*9 + 256*512 = 215,040 weights; the block also holds the projection's
    256*512 and two per channel for each BN (bn1, bn2: 256; bn3, projection BN: 512), with
    as many running statistics. A total once printed as "total 215,040 parameters" left the
    projection and BN out without saying so."""
    convs = 256 * 256 + 256 * 8 * 9 + 256 * 512
    projection = 256 * 512
    bn = 2 * (256 + 256 + 512 + 512)
    status, out, _ = _run(["explain", "ResNeXt50_32x4d", "--block", "layer2.0"], capsys)
    assert status == 0
    assert f"the three residual convolutions: {convs:,} weights" in out
    assert (f"the whole block: {convs + projection + bn:,} trainable parameters = {convs + projection:,} "
            f"convolution weights (the projection's {projection:,} included) + {bn:,} BatchNorm") in out
    assert f"besides, {bn:,} BatchNorm running statistics" in out
    assert "total 215,040 parameters" not in out
    # the whole block's count is the model's own: every tensor a model holds under layer2.0.*
    shapes = param_shapes(ARCHS["ResNeXt50_32x4d"])
    held = sum(math.prod(s) for n, s in shapes.items() if n.startswith("layer2.0.") and "running" not in n)
    assert held == convs + projection + bn
    macs = block_layout(ARCHS["ResNeXt50_32x4d"], "layer2.0")["whole"]["macs"]
    assert macs == (256 * 256 * 56 * 56 + 256 * 8 * 9 * 28 * 28 + 256 * 512 * 28 * 28
                    + 256 * 512 * 28 * 28)
