"""summary.py and `numpy-resnext summary`: parameter and MAC totals against docs/architectures.md (counted
with Paddle and torch), per-layer rows, the text table, and other input sizes.
"""

import json
import re
from pathlib import Path

import pytest

from numpy_resnext import cli
from numpy_resnext.archs import ARCHS
from numpy_resnext.params import count_params
from numpy_resnext.summary import format_summary, summarize

# docs/architectures.md's table: (trainable parameters, MACs at 224x224 for conv + fc), counted
# by Paddle 3.3.1 and torch 2.13.0 for the same networks


def _published():
    text = (Path(__file__).resolve().parent.parent / "docs" / "architectures.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\w[\w-]*)[^|]* \| ([\d,]+) \| ([\d,]+) \|$", text, re.M)
    return {name.replace("ResNet-50", "ResNet50"): (int(p.replace(",", "")), int(m.replace(",", "")))
            for name, p, m in rows}


PUBLISHED = _published()


def test_the_published_table_is_read_whole():
    assert len(PUBLISHED) >= 13 and set(PUBLISHED) <= set(ARCHS)
    assert PUBLISHED["ResNeXt101_32x48d_wsl"] == (828_411_176, 153_310_199_808)


def run_cli(capsys, *argv):
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("name,facts", PUBLISHED.items())
def test_summary_json_matches_facts(capsys, name, facts):
    code, out, err = run_cli(capsys, "summary", name, "--json")
    assert code == 0, err
    s = json.loads(out)
    assert (s["params"], s["macs"]) == facts
    assert s["arch"] == name and s["input_size"] == [224, 224]
    assert s["config"]["cardinality"] == ARCHS[name].cardinality
    assert sum(r["params"] for r in s["layers"]) == s["params"]
    assert sum(r["macs"] for r in s["layers"]) == s["macs"]


def test_summary_rows_by_hand():
    s = summarize(ARCHS["ResNeXt50_32x4d"])
    rows = {r["name"]: r for r in s["layers"]}
    assert rows["conv1"]["macs"] == 64 * 3 * 7 * 7 * 112 * 112 == 118_013_952
    assert rows["conv1"]["op"] == "conv 7x7/2" and rows["conv1"]["shape"] == [64, 112, 112]
    assert rows["layer1.0.conv2"]["macs"] == 128 * 4 * 9 * 56 * 56          # grouped: C/G inputs
    assert rows["layer1.0.conv2"]["groups"] == 32
    assert rows["fc"]["params"] == 2048 * 1000 + 1000 and rows["fc"]["macs"] == 2048 * 1000
    assert rows["bn1"]["params"] == 2 * 64 and rows["bn1"]["macs"] == 0     # scale and offset only
    assert s["params"] == count_params(ARCHS["ResNeXt50_32x4d"])


@pytest.mark.parametrize("name", ["ResNeXt50_32x4d", "ResNeXt50_vd_32x4d", "ResNet50"])
def test_conv_macs_scale_with_area(name):
    """At 448x448 every feature map has 4x the pixels (all sizes stay even): conv MACs x4."""
    small, big = summarize(ARCHS[name], (224, 224)), summarize(ARCHS[name], (448, 448))
    fc = 2048 * 1000
    assert big["macs"] - fc == 4 * (small["macs"] - fc)
    assert big["params"] == small["params"]


def test_summary_text_table(capsys):
    code, out, _ = run_cli(capsys, "summary", "resnext50_32x4d")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "ResNeXt50_32x4d at 224x224"
    assert lines[1].split() == ["name", "op", "output", "groups", "params", "MACs"]
    assert any(l.split()[:3] == ["layer1.0.conv2", "conv", "3x3/1"] and l.split()[4] == "32" for l in lines)
    assert "total: 25,028,904 trainable parameters (25.03M), 4,230,479,872 MACs (4.23G)" in lines[-1]
    assert "BN running statistics not counted" in lines[-1]
    assert out == format_summary(summarize(ARCHS["ResNeXt50_32x4d"])) + "\n"


def test_summary_odd_input_size(capsys):
    code, out, _ = run_cli(capsys, "summary", "ResNeXt50_vd_32x4d", "--input-size", "37", "45", "--json")
    assert code == 0
    s = json.loads(out)
    rows = {r["name"]: r for r in s["layers"]}
    assert s["input_size"] == [37, 45]
    assert rows["maxpool"]["shape"] == [64, 10, 12]
    assert rows["layer3.0.downsample.0"]["shape"] == [512, 3, 3]            # ceil-mode pool of 5x6
    assert rows["layer4.2"]["shape"] == [2048, 2, 2]
    assert s["params"] == PUBLISHED["ResNeXt50_vd_32x4d"][0]                    # size-independent


@pytest.mark.parametrize("argv,pattern", [
    (["summary", "ResNeXt50_32x4d", "--input-size", "0", "5"],
     "argument --input-size: expected an integer from 1 to 1,048,576, found 0"),
    (["summary", "ResNeXt50_32x4"], "unknown architecture 'ResNeXt50_32x4'; did you mean: ResNeXt50_32x4d"),
])
def test_summary_errors(capsys, argv, pattern):
    code, out, err = run_cli(capsys, *argv)
    assert code == 2 and out == ""
    assert err.startswith("numpy-resnext summary: error: ") and pattern in err
    assert "Traceback" not in err
