"""docs/story.md and docs/paper_results.md: their generated tables equal what the code
produces now, and the code's numbers are right by hand (the Inception comparison, the
depth argument, PaddleClas's names) or against the paper's own (the results data, and
every place the package cites a section of the paper)."""

import math
import re
from pathlib import Path

import numpy as np
import pytest

from numpy_resnext.archs import custom, get_arch
from numpy_resnext.paper import docgen, results, story
from numpy_resnext.paper.claims import PAPER_TABLE2
from numpy_resnext.paper.explain import block_layout
from numpy_resnext.shapes import totals

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("page", sorted(docgen.SECTIONS))
def test_generated_sections_are_current(page):
    text = (ROOT / "docs" / page).read_text(encoding="utf-8")
    held = docgen.sections_in(text)
    assert set(held) == set(docgen.SECTIONS[page]), f"docs/{page}: markers {sorted(held)}"
    for name, made in docgen.render(page, ROOT / "docs").items():
        assert held[name] == made, (f"docs/{page} section {name} is stale: run "
                                    f"python -m numpy_resnext.paper.docgen docs\n{made}")


def test_a_stale_page_is_reported(tmp_path, capsys):
    (tmp_path / "figures").mkdir()
    (tmp_path / docgen.SWEEP_DATA).write_bytes((ROOT / "docs" / docgen.SWEEP_DATA).read_bytes())
    for page in docgen.SECTIONS:
        text = (ROOT / "docs" / page).read_text(encoding="utf-8")
        (tmp_path / page).write_text(text.replace("| 256 |", "| 255 |", 1).replace("| 23.9 |", "| 23.8 |"),
                                     encoding="utf-8")
    assert docgen.main([str(tmp_path), "--check"]) == 1
    assert "stale" in capsys.readouterr().err
    assert docgen.main([str(tmp_path)]) == 0 and docgen.main([str(tmp_path), "--check"]) == 0


# --- the three block forms, by hand -----------------------------------------------------------
def test_block_forms_by_hand():
    naive, reduced, resnext, resnet = story.block_forms()
    # 256 channels in, GoogLeNet inception (3a)'s widths: 1x1 64; 3x3 128; 5x5 32; pool
    assert naive.params == 256 * 64 + 256 * 128 * 9 + 256 * 32 * 25 == 516_096
    assert naive.out_channels == 64 + 128 + 32 + 256                    # the pool passes 256 through
    by_hand = 256 * 64 + 256 * 96 + 96 * 128 * 9 + 256 * 16 + 16 * 32 * 25 + 256 * 32
    assert reduced.params == by_hand == 176_640
    assert reduced.out_channels == 256
    assert resnext.params == 32 * (256 * 4 + 4 * 4 * 9 + 4 * 256) == 70_144       # Eq. 4, C = 32, d = 4
    assert resnet.params == 256 * 64 + 64 * 64 * 9 + 64 * 256 == 69_632
    for f in (naive, reduced, resnext, resnet):
        assert f.macs == f.params * 56 * 56
    assert abs(reduced.params / naive.params - 1 / 3) < 0.02             # story.md: "a third of the cost"
    # the ResNeXt form is the plan's block: explain counts the same three convolutions
    lay = block_layout(get_arch("ResNeXt50_32x4d"), "layer1.1")
    assert resnext.params == sum(layer.params for layer in lay["grouped"])
    assert resnext.macs == sum(layer.macs for layer in lay["grouped"])


def test_block_forms_run_to_the_shapes_they_claim():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 256, 9, 9))
    for form in story.block_forms():
        y = story.run_form(form, x, rng)
        assert y.shape == (1, form.out_channels, 9, 9), form.name


def test_block_forms_need_a_stride_one_block():
    with pytest.raises(ValueError, match="strides"):
        story.block_forms(block="layer2.0")


def test_depth_two_collapses_depth_three_does_not():
    c = story.depth_collapse()
    assert c.depth2_difference < 1e-12 and c.depth3_difference < 1e-12
    assert c.dense_middle_difference > 1.0
    assert c.dense_middle_params == 4 * c.grouped_middle_params              # C = 4


# --- PaddleClas's names -------------------------------------------------------------------------
def test_paddleclas_names_by_hand():
    rows = {r.canonical: r for r in story.paddleclas_rows()}
    expected = {  # PaddleClas resnext.py: conv0/conv1/conv2/short; ParamAttr res2a_branch2{a,b,c}/branch1
        "layer1.0.conv1.weight": ("bb_0_0.conv0._conv.weight", "res2a_branch2a_weights"),
        "layer1.0.conv2.weight": ("bb_0_0.conv1._conv.weight", "res2a_branch2b_weights"),
        "layer1.0.conv3.weight": ("bb_0_0.conv2._conv.weight", "res2a_branch2c_weights"),
        "layer1.0.downsample.0.weight": ("bb_0_0.short._conv.weight", "res2a_branch1_weights"),
        "layer1.0.bn2.weight": ("bb_0_0.conv1._batch_norm.weight", "bn2a_branch2b_scale"),
        "layer1.0.bn2.bias": ("bb_0_0.conv1._batch_norm.bias", "bn2a_branch2b_offset"),
        "layer1.0.bn2.running_mean": ("bb_0_0.conv1._batch_norm._mean", "bn2a_branch2b_mean"),
        "layer1.0.bn2.running_var": ("bb_0_0.conv1._batch_norm._variance", "bn2a_branch2b_variance"),
        "conv1.weight": ("conv._conv.weight", "res_conv1_weights"),
        "fc.weight": ("out.weight", "fc_weights"),
    }
    for canonical, (key, attr) in expected.items():
        assert (rows[canonical].state_dict, rows[canonical].param_attr) == (key, attr), canonical
    assert rows["layer1.0.conv2.weight"].paddleclas_layer == "conv1: conv weight"
    deep = {r.canonical: r for r in story.paddleclas_rows("ResNeXt101_32x4d", blocks=("layer3.22",), bn_of=None)}
    assert deep["layer3.22.conv2.weight"].param_attr == "res4b22_branch2b_weights"
    assert deep["layer3.22.conv2.weight"].state_dict == "bb_2_22.conv1._conv.weight"


def test_story_explains_num_filters_as_the_rule_computes_it():
    """story.md: num_filters = the grouped conv's width; output = 2 * num_filters for C = 32,
    num_filters for C = 64; both equal 256 * 2**(N-1)."""
    text = " ".join((ROOT / "docs" / "story.md").read_text(encoding="utf-8").split())
    m = re.search(r"the width of each stage's grouped 3x3 convolution: ([\d, ]+) for cardinality 32 and "
                  r"([\d, ]+) for cardinality 64", text)
    assert m
    for C, listed in ((32, m[1]), (64, m[2])):
        config = get_arch(f"ResNeXt50_{C}x4d")
        widths = [config.stage_width(s) for s in range(4)]
        assert [int(v) for v in re.findall(r"\d+", listed)] == widths
        outs = [w * 2 if C == 32 else w for w in widths]                # PaddleClas's expression
        assert outs == [config.stage_out(s) for s in range(4)] == [256 * 2 ** s for s in range(4)]


# --- the paper's numbers ---------------------------------------------------------------------------
def test_table3_settings_are_table2s_templates():
    for depth in (50, 101):
        rows = [s for s in results.TABLE3 if s.network.endswith(str(depth))]
        assert [(s.cardinality, s.width) for s in rows] == [(C, d) for C, d, _ in PAPER_TABLE2]


def _gmacs(s):
    config = custom(depths=s.depths, cardinality=s.cardinality, base_width=s.width, num_classes=1000,
                    stem_width=64)
    return totals(config, 224, 224)[1] / 1e9


def test_table3_settings_have_the_same_complexity():
    """The paper: about 4.1 G multiply-adds at 50 layers, 7.8 G at 101; every setting within 5 %."""
    for s in results.TABLE3:
        target = 4.1 if s.depths[2] == 6 else 7.8
        assert abs(_gmacs(s) / target - 1) < 0.05, s


def test_table4_doubles_the_complexity():
    base = _gmacs(results.TABLE4[0])                                     # ResNet-101
    for s in results.TABLE4[2:]:
        assert 1.9 < _gmacs(s) / base < 2.0, s


def test_table7_parameter_counts_are_recomputed():
    """ResNeXt-29 8x64d and 16x64d: the plan's counts, truncated to 0.1 M, are the paper's."""
    for c in results.TABLE7:
        if c.cardinality is None:
            continue
        config = custom(depths=results.CIFAR_DEPTHS, stem="cifar", cardinality=c.cardinality,
                        base_width=c.width, num_classes=10, stem_width=64)
        params = totals(config, 32, 32)[0]
        assert math.floor(params / 1e5) / 10 == c.params_m, (c, params)


def test_wsl_sizes_are_the_model_cards_within_rounding():
    for w in results.WSL:
        params, macs = totals(get_arch(w.arch), 224, 224)
        assert abs(params / 1e6 / w.card_params_m - 1) < 0.01, w
        assert abs(macs / 1e9 / w.card_gflops - 1) < 0.03, w
        assert get_arch(w.arch).cardinality == 32 and get_arch(w.arch).depths == (3, 4, 23, 3)


def test_every_row_says_how_it_was_checked():
    tables = (results.TABLE3, results.TABLE4, results.TABLE5, results.TABLE7, results.TABLE8)
    allowed = {"second source", "paper only", "top-1: second source", "224 top-1: second source",
               "computed (parameters)"}
    assert {r.checked for t in tables for r in t} <= allowed


# --- where the paper prints what: every citation in the package and its docs ---------------------
ITEM = r"(?:Table|Eq\.|Fig\.)\s?\d+"
SECTION = r"(?:Sec\.|Section|§)\s?\d+(?:\.\d+)?"
CLAUSE = re.compile(rf"(?:{ITEM}|{SECTION})(?:\s*(?:,|and|/|\()\s*(?:{ITEM}|{SECTION}))+")


def citations(text):
    """(item, section) pairs cited together, e.g. "Sec. 3.3, Table 2" or "Table 2 (§3.4"."""
    for m in CLAUSE.finditer(text):
        sections = re.findall(SECTION, m[0])
        if len(sections) != 1:
            continue
        section = "§" + re.sub(r"^(Sec\.|Section|§)\s?", "", sections[0])
        for item in re.findall(ITEM, m[0]):
            yield re.sub(r"\s", " ", item).replace("Eq.", "Eq.").replace("  ", " "), section


def _texts():
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md")),
             *sorted((ROOT / "numpy_resnext").glob("**/*.py")), *sorted((ROOT / "exercises").glob("**/*.*"))]
    return [(p, p.read_text(encoding="utf-8")) for p in files if p.suffix in (".md", ".py")]


def test_every_citation_names_the_section_that_prints_it():
    """An item cited with a section must sit in that section (results.LOCATIONS). The audit
    once cited "Sec. 3.3, Table 2" for Eq. 4 and Table 2, which are in §3.4."""
    wrong = []
    for path, text in _texts():
        for item, section in citations(text):
            item = re.sub(r"(Table|Eq\.|Fig\.)\s?(\d+)", r"\1 \2", item)
            if item in results.LOCATIONS and results.LOCATIONS[item] != section:
                wrong.append(f"{path.relative_to(ROOT)}: {item} cited in {section}, printed in "
                             f"{results.LOCATIONS[item]}")
    assert not wrong, "\n".join(wrong)
    assert list(citations("the template (Sec. 3.3, Table 2)")) == [("Table 2", "§3.3")]   # the old error


def test_the_audit_cites_section_3_4_for_table_2():
    from numpy_resnext.paper.claims import SECTION_TITLES
    assert SECTION_TITLES["Table 2"].startswith("Table 2 (§3.4, Model Capacity)")
    assert results.cite("Eq. 4") == "Eq. 4 (§3.4, Model Capacity)"


def test_digits_md_macs_spread_is_the_tables():
    text = " ".join((ROOT / "docs" / "digits.md").read_text(encoding="utf-8").split())
    m = re.search(r"multiply-adds per 8x8 image vary by up to (\d+) %", text)
    assert m
    from numpy_resnext.paper.sweep import budget_table, digits_config
    from numpy_resnext.plan import layer_plan
    macs = [totals(layer_plan(digits_config(c.cardinality, c.width)), 8, 8)[1] for c in budget_table()]
    assert round(100 * (max(macs) / min(macs) - 1)) == int(m[1])


def test_digits_md_reads_the_sweep_as_its_data_says():
    import json
    data = json.loads((ROOT / "docs" / docgen.SWEEP_DATA).read_text(encoding="utf-8"))
    text = " ".join((ROOT / "docs" / "digits.md").read_text(encoding="utf-8").split())
    rows = {f"{r['cardinality']}x{r['width']}d": r for r in data["summary"]}
    loss = {k: [x["history"]["train_loss"][-1] for x in data["runs"] if x["cardinality"] == r["cardinality"]]
            for k, r in rows.items()}
    m = re.search(r"mean held-out errors run from ([\d.]+) % \((\w+)\) to ([\d.]+) % \((\w+)\)", text)
    lo, hi = min(rows, key=lambda k: rows[k]["mean"]), max(rows, key=lambda k: rows[k]["mean"])
    assert m and (m[1], m[2], m[3], m[4]) == (f"{rows[lo]['mean']:.2f}", lo, f"{rows[hi]['mean']:.2f}", hi)
    ranges = [(r["low"], r["high"]) for r in rows.values()]
    assert "every cardinality's five seeds overlap every other's" in text
    assert all(a[0] <= b[1] and b[0] <= a[1] for a in ranges for b in ranges)
    m = re.search(r"its mean rises from ([\d.]+) at (\w+) to ([\d.]+) at (\w+),", text)
    top = max(loss, key=lambda k: np.mean(loss[k]))
    assert m and (m[1], m[2]) == (f"{np.mean(loss['1x36d']):.4f}", "1x36d") and (m[3], m[4]) == (
        f"{np.mean(loss[top]):.4f}", top)
    assert "1x36d's five seeds all end lower than four of 32x2d's five" in text
    assert sum(v > max(loss["1x36d"]) for v in loss["32x2d"]) == 4
