"""The shipped maps on the captures PyTorch users make, rebuilt here from a golden dump under
the names torch gives them (no framework needed; the live lane in
tests/test_torch_models_live.py makes them with real torchvision 0.28 and timm 1.0.31):

- hook captures: module names, ``NAME#k`` for a module called k times (torchvision's relu);
- torchvision's FX node names (create_feature_extractor): ``x``, ``layerL.i.relu``,
  ``relu_1``, ``relu_2``, ``add``, ``flatten``;
- timm's FX node names and its stage outputs (features_only, forward_intermediates, named
  by feature_info: ``act1``, ``layer1`` ... ``layer4``).

Before, FX captures compared 127 of 175 tensors under --map torchvision with 33 left over,
and timm's stage outputs compared 1 tensor and passed.
"""

import re
from collections import OrderedDict

import numpy as np
import pytest

import numpy_resnext as nrx
from numpy_resnext.golden import compare, golden_dump, write_golden
from numpy_resnext.cli import main

PLAIN = nrx.custom(depths=(2, 1), cardinality=4, base_width=2, num_classes=10, stem_width=16)
DEEP = nrx.custom(depths=(1, 2), cardinality=4, base_width=2, num_classes=10, stem_width=16,
                  deep_stem_width=8, stem="deep")


@pytest.fixture(scope="module", params=["plain", "deep"])
def dump(request):
    config = PLAIN if request.param == "plain" else DEEP
    model = nrx.build(config, seed=3, dtype="float64")
    x = np.random.default_rng(7).standard_normal((2, 3, 29, 27))
    tensors, manifest = golden_dump(model, x)
    return request.param, model.plan, tensors, manifest


# (reference name pattern, the candidate's names for that tensor; ":4d" keeps a pooled tensor
# as (N, C, 1, 1)), first match wins, other names unchanged
TORCHVISION_FX = [(r"^input$", ["x"]), (r"^(layer\d+\.\d+)\.relu1$", [r"\1.relu"]),
                  (r"^(layer\d+\.\d+)\.relu2$", [r"\1.relu_1"]), (r"^(layer\d+\.\d+)$", [r"\1.relu_2"]),
                  (r"^avgpool$", ["avgpool:4d", "flatten"])]
# timm's FX nodes: act names, the Identity placeholders (the same tensor as their input),
# act3 for the block output, global_pool.pool / .flatten
TIMM_FX = [(r"^input$", ["x"]), (r"^relu$", ["act1"]), (r"^(layer\d+\.\d+)\.relu1$", [r"\1.act1"]),
           (r"^(layer\d+\.\d+)\.relu2$", [r"\1.act2", r"\1.aa"]),
           (r"^(layer\d+\.\d+)\.bn2$", [r"\1.bn2", r"\1.drop_block"]), (r"^(layer\d+\.\d+)$", [r"\1.act3"]),
           (r"^avgpool$", ["global_pool.pool:4d", "global_pool.flatten"])]


def renamed(tensors, rules):
    """The golden's tensors under a framework's names (``rules`` as above)."""
    out = OrderedDict()
    for name, v in tensors.items():
        match = next((m for m in (re.match(p, name) for p, _ in rules) if m), None)
        if match is None:
            out[name] = v
            continue
        for template in dict(rules)[match.re.pattern]:
            key, _, form = match.expand(template).partition(":")
            out[key] = v[:, :, None, None] if form == "4d" else v
    return out


def hooks(plan, tensors, family):
    """A forward-hook capture that copies: module names, relu#k, block and stage outputs."""
    out = OrderedDict()
    last = {}
    for b in plan.blocks:
        last[f"layer{b.layer}"] = b.name
    for name, v in tensors.items():
        if name == "input" or name.endswith(".add"):
            continue                                               # no module has them
        if family == "torchvision" and name.endswith((".relu1", ".relu2")):
            out[f"{name[:-5]}relu#{name[-1]}"] = v
        elif family == "timm" and name.endswith((".relu1", ".relu2")):
            out[f"{name[:-5]}act{name[-1]}"] = v
        elif family == "timm" and name == "relu":
            out["act1"] = v
        elif family == "timm" and name == "avgpool":
            out["global_pool"] = v
        else:
            out[name] = v
        if name in last.values():
            if family == "torchvision":
                out[f"{name}.relu#3"] = v
            stage = [s for s, b in last.items() if b == name]
            if stage:
                out[stage[0]] = v                                  # the stage module fires after it
    return out


def test_torchvision_fx_node_names_map_every_tensor(dump):
    kind, plan, tensors, _ = dump
    if kind == "deep":
        pytest.skip("torchvision has no deep-stem model")
    report = compare(tensors, renamed(tensors, TORCHVISION_FX), name_map="torchvision", strict=True)
    assert report.passed and len(report.compared) == len(tensors) and not report.missing
    assert report.extra == [] and report.ignored == ["flatten (= avgpool)"]
    assert "PASS: every reference tensor compared" in report.verdict()


def test_timm_fx_node_names_map_every_tensor(dump):
    _, plan, tensors, _ = dump
    report = compare(tensors, renamed(tensors, TIMM_FX), name_map="timm", strict=True)
    assert report.passed and len(report.compared) == len(tensors) and not report.extra


@pytest.mark.parametrize("family", ["torchvision", "timm"])
def test_hook_captures_pass_strict_without_the_adds(dump, family):
    kind, plan, tensors, _ = dump
    if kind == "deep" and family == "torchvision":
        pytest.skip("torchvision has no deep-stem model")
    report = compare(tensors, hooks(plan, tensors, family), name_map=family, strict=True)
    assert report.passed, report.verdict()
    assert sorted(r.name for r in report.missing) == sorted(["input"] + [b.add for b in plan.blocks])
    assert report.excused == {"residual add", "input"}
    assert any(i.startswith("layer1 (= ") for i in report.ignored)   # a stage output, kept once


def test_timm_stage_outputs_are_the_last_blocks(dump):
    """features_only / forward_intermediates under feature_info's names: act1, layer1, ..."""
    _, plan, tensors, _ = dump
    last = {f"layer{b.layer}": b.name for b in plan.blocks}
    feats = OrderedDict([("act1", tensors["relu"])] + [(s, tensors[b]) for s, b in last.items()])
    report = compare(tensors, feats, name_map="timm")
    assert [r.name for r in report.compared] == ["relu"] + list(last.values())
    assert report.passed and f"PASS ON 3 OF {len(tensors)} REFERENCE TENSORS ONLY" in report.verdict()
    wrong = OrderedDict(feats)
    wrong["layer1"] = feats["layer1"] + 1e-3
    assert not compare(tensors, wrong, name_map="timm").passed


def test_the_command_says_partial_and_strict(tmp_path, dump, capsys):
    kind, plan, tensors, manifest = dump
    write_golden(tmp_path / "ref.npz", tensors, manifest)
    family = "torchvision" if kind == "plain" else "timm"
    write_golden(tmp_path / "hooks.npz", hooks(plan, tensors, family))
    partial = OrderedDict((k, v) for k, v in tensors.items() if "relu" not in k)
    write_golden(tmp_path / "partial.npz", partial)
    assert main(["compare", str(tmp_path / "ref.npz"), str(tmp_path / "hooks.npz"), "--map", family,
                 "--strict", "--show", "none"]) == 0
    out = capsys.readouterr().out
    assert "PASS (--strict): every reference tensor a capture can hold" in out
    assert "not held by the capture" in out and "residual add" in out
    assert main(["compare", str(tmp_path / "ref.npz"), str(tmp_path / "partial.npz"), "--show", "none"]) == 0
    out = capsys.readouterr().out
    assert "REFERENCE TENSORS ONLY: not compared: " in out and "ReLUs (" in out
    assert main(["compare", str(tmp_path / "ref.npz"), str(tmp_path / "partial.npz"), "--strict",
                 "--show", "none"]) == 1
    out = capsys.readouterr().out
    assert "not in the candidate (--strict)" in out and "ReLU" in out
