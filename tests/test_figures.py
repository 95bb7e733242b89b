"""The lecture figures (numpy_resnext/paper/figures.py, kept in docs/figures/): regenerated here,
their labels checked against the paper's Fig. 1, Fig. 3 and Table 1, and the committed PNGs
checked to be there, linked and of a size a projector shows."""

import re
import struct
from pathlib import Path

import pytest
from _scratch import scratch

ROOT = Path(__file__).resolve().parent.parent
FIG_DIR = ROOT / "docs" / "figures"

# the paper's labels (Xie et al. 2017): Fig. 1 (256-d in, ResNet 64-wide, ResNeXt 32 paths of
# 4), Fig. 3 (grouped 3x3 of 128 channels, 32 groups; concatenation of 32 x 4), Table 1
PAPER_FIG1 = ["256-d in", "256, 1x1, 64", "64, 3x3, 64", "64, 1x1, 256",
              "256, 1x1, 4", "4, 3x3, 4", "4, 1x1, 256", "total 32 paths"]
PAPER_FIG3 = ["256, 1x1, 4", "4, 3x3, 4", "4, 1x1, 256", "256, 1x1, 128", "128, 3x3, 128, grp=32",
              "128, 1x1, 256", "concatenate: 32 x 4 = 128-d"]
PAPER_TABLE1_OUTPUTS = ["112x112", "56x56", "28x28", "14x14", "7x7"]
PAPER_TABLE1_RESNEXT = ["1x1, 128\n3x3, 128, C=32\n1x1, 256", "1x1, 256\n3x3, 256, C=32\n1x1, 512",
                        "1x1, 512\n3x3, 512, C=32\n1x1, 1024", "1x1, 1024\n3x3, 1024, C=32\n1x1, 2048"]
PAPER_TABLE1_RESNET = ["1x1, 64\n3x3, 64\n1x1, 256", "1x1, 128\n3x3, 128\n1x1, 512",
                       "1x1, 256\n3x3, 256\n1x1, 1024", "1x1, 512\n3x3, 512\n1x1, 2048"]


def png_size(path):
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.fixture(scope="module")
def drawn(tmp_path_factory):
    pytest.importorskip("matplotlib", reason="the figures need matplotlib (pip install numpy-resnext[plot])")
    from numpy_resnext.paper import figures
    with scratch(tmp_path_factory, "figures") as out:
        yield out, figures.write_all(out)


def test_fig1_labels_are_the_papers(drawn):
    _, labels = drawn
    text = labels["fig1_blocks.png"]
    for label in PAPER_FIG1:
        assert label in text, (label, text)


def test_fig3_labels_are_the_papers(drawn):
    _, labels = drawn
    for label in PAPER_FIG3:
        assert label in labels["fig3_forms.png"], label


def test_table1_cells_are_the_papers(drawn):
    _, labels = drawn
    cells = labels["table1_stages.png"]
    for v in PAPER_TABLE1_OUTPUTS + PAPER_TABLE1_RESNEXT + PAPER_TABLE1_RESNET + ["x 3", "x 4", "x 6"]:
        assert v in cells, v
    # the paper's Table 1 totals: 25.5M / 4.1G (ResNet-50), 25.0M / 4.2G (ResNeXt-50), one decimal
    totals = [c for c in cells if "M params" in c]
    (p1, g1), (p2, g2) = [map(float, re.findall(r"[\d.]+", t)) for t in totals]
    assert abs(p1 - 25.5) < 0.1 and round(g1, 1) == 4.1
    assert abs(p2 - 25.0) < 0.1 and round(g2, 1) == 4.2


def test_written_pngs_are_lecture_sized(drawn):
    out, labels = drawn
    for name in labels:
        w, h = png_size(out / name)
        assert w >= 1200 and h >= 700, (name, w, h)


@pytest.mark.parametrize("name", ["fig1_blocks.png", "fig3_forms.png", "table1_stages.png"])
def test_committed_figures_exist_small_and_linked(name):
    path = FIG_DIR / name
    w, h = png_size(path)
    assert w >= 1200 and path.stat().st_size < 300_000
    tools = (ROOT / "docs" / "tools.md").read_text(encoding="utf-8")     # the lecture figures' page
    assert f"](figures/{name})" in tools
