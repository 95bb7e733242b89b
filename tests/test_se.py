"""The SE-ResNeXt family without any framework: the registry, the SE width rules, names and
counts against the frameworks' own models (recorded in reference/fixtures/se/names.json.gz
by reference/se_facts.py: PaddleClas 2.6.0 on Paddle 3.3.1, timm 1.0.31), the files that
cannot be told apart, writing and converting, and BatchNorm's epsilon.
"""

import gzip
import json
import re
from pathlib import Path

import numpy as np
import pytest

import numpy_resnext as nrx
from numpy_resnext.archs import ARCHS, PADDLE_BN_EPS, TORCH_BN_EPS, get_arch, se_width
from numpy_resnext.cli import main
from numpy_resnext.errors import WeightsError
from numpy_resnext.io import load_weights, read_paddle, write_weights
from numpy_resnext.io.infer import TWINS, infer_config
from numpy_resnext.io.recognise import detect_scheme
from numpy_resnext.io.schemes import in_out_names, name_map
from numpy_resnext.params import count_params, param_shapes
from numpy_resnext.plan import layer_plan
from numpy_resnext.shapes import totals

ROOT = Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "se_resnext.md").read_text(encoding="utf-8")
KEY_SCHEME = {"paddle": "ppcls", "timm": "canonical", "legacy": "senet"}


@pytest.fixture(scope="module")
def recorded(fixtures_dir):
    with gzip.open(fixtures_dir / "se" / "names.json.gz", "rt") as f:
        return json.load(f)


def lazy(shape):
    return np.broadcast_to(np.zeros((), np.float32), tuple(shape))


def family(name):
    return "legacy" if name.startswith("legacy_") else ("paddle" if name[0].isupper() else "timm")


# --- the rounding rules, the registry, the counts --------------------------------------------
def test_se_width_rules_are_the_documented_table():
    """docs/se_resnext.md's table, measured with the libraries' own functions."""
    rows = {m.group(1): [int(v) for v in re.findall(r"\d+", m.group(2))]
            for m in re.finditer(r"^\| (C|PaddleClas, legacy|timm) \|(( \**\d+\** \|)+)$", DOC, re.M)}
    assert len(rows["C"]) == 12
    assert [se_width(c, 16, "floor") for c in rows["C"]] == rows["PaddleClas, legacy"]
    assert [se_width(c, 16, "timm") for c in rows["C"]] == rows["timm"]
    assert (se_width(256, 12, "floor"), se_width(256, 12, "timm")) == (21, 24)   # the custom case


def test_every_model_counts_as_its_framework_counts(recorded):
    """Trainable parameters and MACs at 224x224 of the plan equal the frameworks' own, and
    docs/se_resnext.md's and docs/architectures.md's tables say the same."""
    arch_doc = (ROOT / "docs" / "architectures.md").read_text(encoding="utf-8")
    for name, rec in recorded.items():
        if name.endswith("(declared)"):
            continue
        plan = layer_plan(name)
        assert totals(plan) == (rec["trainable"], rec["macs"]) == (count_params(plan), rec["macs"]), name
        registry = get_arch(name).name
        assert f"| {registry} | {rec['trainable']:,} | {rec['macs']:,} |" in arch_doc, registry


def test_the_registry_holds_the_issues_models_with_their_stems():
    s = {n: ARCHS[n] for n in ARCHS if ARCHS[n].se_reduction}
    assert len(s) == 13 and {c.se_reduction for c in s.values()} == {16}
    assert get_arch("seresnext50_32x4d") is ARCHS["SE_ResNeXt50_32x4d"]           # timm names: aliases
    assert get_arch("seresnext101_32x4d") is ARCHS["SE_ResNeXt101_32x4d"]
    stems = {n: (c.stem, c.deep_stem_widths if c.stem == "deep" else c.stem_width, c.avg_down, c.stem_pool)
             for n, c in s.items()}
    assert stems["SE_ResNeXt152_64x4d"] == ("deep", (64, 64, 128), False, "padded")   # three convs, 1x1/s
    assert stems["SENet154_vd"] == ("deep", (64, 64, 128), True, "padded")
    assert stems["SE_ResNeXt50_vd_32x4d"] == ("deep", (64, 64, 128), True, "padded")
    assert stems["seresnext26t_32x4d"] == ("deep", (24, 32, 64), True, "padded")      # tiered
    assert stems["seresnext101d_32x8d"] == ("deep", (32, 32, 64), True, "padded")
    assert stems["legacy_seresnext50_32x4d"] == ("plain", 64, False, "ceil")
    assert layer_plan("legacy_seresnext50_32x4d").stem_pool[3:6] == (3, 2, 0)


# --- names: recognised, inferred, mapped tensor for tensor ----------------------------------
@pytest.mark.parametrize("column", ["key", "param"])
def test_framework_names_map_exactly(recorded, column):
    """Every model's state_dict keys (and PaddleClas's ParamAttr names, what jit.save writes)
    are recognised, give the model back (SE_ResNeXt152_64x4d and SENet154_vd: from the
    ParamAttr names, or the keys with paddle.save's table) and map name for name, shape for
    shape, Paddle's Linear [in, out]."""
    for name, rec in recorded.items():
        if name.endswith("(declared)") or (column == "param" and family(name) != "paddle"):
            continue
        idx = 0 if column == "key" else 1
        tensors = {row[idx]: lazy(row[2]) for row in rec["names"]}
        want = KEY_SCHEME[family(name)] if column == "key" else "ppcls_se_param"
        scheme = detect_scheme(list(tensors), paddle_file=family(name) == "paddle")
        assert scheme == want, name
        table = {k: p for k, p, _ in rec["names"]} if column == "key" else {}
        declared = name if name in TWINS else None          # seresnext101d_32x8d: the file must say
        config, _ = infer_config(tensors, scheme, evidence=dict(table=table, architecture=declared))
        assert config == get_arch(name), name
        fmap, in_out = name_map(config, scheme), set(in_out_names(layer_plan(config), scheme))
        assert set(fmap.values()) == set(tensors), name
        for canonical, shape in param_shapes(config).items():
            stored = (shape[1], shape[0]) if canonical in in_out else shape
            assert tuple(tensors[fmap[canonical]].shape) == stored, (name, canonical)


def test_paddleclas_files_say_which_152_layer_model_they_hold(recorded):
    """Structured keys and shapes of SE_ResNeXt152_64x4d (repaired) and SENet154_vd are
    identical; without the table or the ParamAttr names a load refuses in one line; naming
    the architecture settles it."""
    keys = {k: lazy(s) for k, _, s in recorded["SENet154_vd"]["names"]}
    other = {k: lazy(s) for k, _, s in recorded["SE_ResNeXt152_64x4d"]["names"]}
    assert {k: v.shape for k, v in keys.items()} == {k: v.shape for k, v in other.items()}
    with pytest.raises(WeightsError, match=r"^the tensors are those of SENet154_vd and of "
                                           r"SE_ResNeXt152_64x4d alike .*name the architecture$"):
        load_weights(keys)
    for name in ("SENet154_vd", "SE_ResNeXt152_64x4d"):
        loaded = load_weights(keys, arch=name)
        assert loaded.config == get_arch(name).replace(bn_eps=PADDLE_BN_EPS)


def test_the_unrunnable_declared_152_is_refused_naming_the_bug(recorded):
    rec = recorded["SE_ResNeXt152_64x4d (declared)"]
    tensors = {k: lazy(s) for k, _, s in rec["names"]}
    assert rec["trainable"] == 121_704_280 and "input's channels is 128" in rec["notes"][0]
    with pytest.raises(WeightsError, match=r"bb_0_0\.conv0\._conv\.weight takes 64 input channels but "
                                           r"the stem gives 128 \(PaddleClas 2\.6\.0 declares SE_ResNeXt152_64x4d"):
        load_weights(tensors)


def test_seresnext101d_needs_the_file_to_say_it_is_not_the_anti_aliased_one(tmp_path):
    """seresnextaa101d_32x8d has exactly these tensors: a file that does not say which it holds
    is refused; a hub config.json or our own metadata decides; the anti-aliased one is refused."""
    model = nrx.build("seresnext101d_32x8d", init="identity-bn")
    with pytest.raises(WeightsError, match="seresnext101d_32x8d and of seresnextaa101d_32x8d.*name the "
                                           "architecture"):
        load_weights(dict(model.params))
    assert load_weights(dict(model.params), arch="seresnext101d_32x8d").config.name == "seresnext101d_32x8d"
    hub = tmp_path / "hub"
    hub.mkdir()
    write_weights(hub / "model.safetensors", model.params, model.plan)
    # our own files say what they hold (safetensors metadata "architecture")
    assert load_weights(hub / "model.safetensors").config.name == "seresnext101d_32x8d"
    for declared, ok in (("seresnext101d_32x8d.sw_in1k", True), ("seresnextaa101d_32x8d.sw_in12k", False)):
        (hub / "config.json").write_text(json.dumps({"architecture": declared, "num_classes": 1000}))
        if ok:
            assert load_weights(hub).config.name == "seresnext101d_32x8d"
        else:
            with pytest.raises(WeightsError, match=r"not loaded: .*anti-aliased downsampling.*config\.json "
                                                   r"names architecture 'seresnextaa101d_32x8d\.sw_in12k'"):
                load_weights(hub)


def test_a_plain_architecture_named_for_an_se_file_says_what_is_missing():
    config = get_arch("SE_ResNeXt50_32x4d")
    tensors = {k: lazy(s) for k, s in param_shapes(config).items()}
    with pytest.raises(WeightsError, match=r"squeeze-and-excitation: ResNeXt50_32x4d has none, the file "
                                           r"has squeeze-and-excitation layers \(reduced widths 16, 32, 64, 128\)"):
        load_weights(tensors, arch="ResNeXt50_32x4d")


# --- writing and converting --------------------------------------------------------------------
@pytest.mark.parametrize("arch, ext, scheme", [
    ("SE_ResNeXt50_vd_32x4d", ".pdparams", "ppcls"), ("SE_ResNeXt152_64x4d", ".pdparams", "ppcls"),
    ("seresnext26t_32x4d", ".safetensors", "timm"), ("SE_ResNeXt50_32x4d", ".pth", "timm"),
    ("legacy_seresnext26_32x4d", ".pth", "senet"), ("legacy_seresnext26_32x4d", ".npz", "senet"),
    ("seresnext26d_32x4d", ".npz", "canonical")])
def test_se_models_convert_and_read_back_bit_exact(tmp_path, arch, ext, scheme):
    model = nrx.build(arch, seed=1, dtype="float64")
    out = tmp_path / f"w{ext}"
    used, _, _ = write_weights(out, model.params, model.plan)
    assert used == scheme
    back = load_weights(out)
    paddle = ext == ".pdparams"
    assert back.config == model.config.replace(bn_eps=PADDLE_BN_EPS if paddle else TORCH_BN_EPS)
    for name, value in model.params.items():
        np.testing.assert_array_equal(back.params[name], value, err_msg=name)
    if paddle:                   # paddle.save's table of PaddleClas's ParamAttr names, as jit.save names them
        table = read_paddle(out).structured_to_param
        assert table["bb_0_0.scale.squeeze.weight"] == f"fc{2 if '50' in arch else 4}_1_sqz_weights"
        stem = table["conv1_1._conv.weight"]
        assert stem == ("conv1_1_weights" if "vd" in arch else "conv1_weights")


def test_names_that_cannot_hold_the_model_are_refused(tmp_path):
    legacy, timm_only = nrx.build("legacy_seresnext26_32x4d"), nrx.build("seresnext26d_32x4d")
    with pytest.raises(WeightsError, match="legacy SENet one.*use --names senet"):
        write_weights(tmp_path / "a.pth", legacy.params, legacy.plan, scheme="timm")
    with pytest.raises(WeightsError, match="paddle.vision names no model with squeeze-and-excitation"):
        write_weights(tmp_path / "b.pdparams", timm_only.params, timm_only.plan)
    with pytest.raises(WeightsError, match="torchvision has no model with squeeze-and-excitation"):
        write_weights(tmp_path / "c.pth", nrx.build("SE_ResNeXt50_32x4d").params,
                      layer_plan("SE_ResNeXt50_32x4d"), scheme="torchvision")


def test_convert_cli_paddle_names_to_timm_says_the_epsilon_changes(tmp_path, capsys):
    model = nrx.build("SE_ResNeXt50_32x4d", seed=2)
    src = tmp_path / "se.pdparams"
    write_weights(src, model.params, model.plan)
    assert main(["convert", "--weights", str(src), "--output", str(tmp_path / "se.safetensors")]) == 0
    out = capsys.readouterr().out
    assert "naming scheme ppcls, architecture SE_ResNeXt50_32x4d" in out
    assert "note: BatchNorm epsilon: the source runs with 9.999999747378752e-06; in timm names" in out
    assert load_weights(tmp_path / "se.safetensors").config.bn_eps == TORCH_BN_EPS


# --- BatchNorm's epsilon ---------------------------------------------------------------------
def test_bn_eps_is_carried_by_every_bn_layer_and_recorded_in_goldens(tmp_path, capsys):
    config = nrx.custom(se_reduction=16, bn_eps=PADDLE_BN_EPS)
    plan = layer_plan(config)
    assert {c.eps for c in plan.convs()} == {PADDLE_BN_EPS}
    model = nrx.build(config, dtype="float64")
    x = np.random.default_rng(0).standard_normal((1, 3, 33, 31))
    other = nrx.build(config, dtype="float64", bn_eps=1e-5, weights=dict(model.params))
    assert other.config.bn_eps == 1e-5 and any("BatchNorm epsilon 1e-05 as asked" in n
                                               for n in other.load_report.notes)
    a, b = model(x), other(x)
    assert 0 < np.abs(a - b).max() / np.abs(a).max() < 1e-5                 # seeded BN reaches eps
    np.save(tmp_path / "x.npy", x)
    args = ["golden", "seresnext26d_32x4d", "--input", str(tmp_path / "x.npy"), "--keep", "fc",
            "--output", str(tmp_path / "g.npz"), "--bn-eps", repr(PADDLE_BN_EPS)]
    assert main(args) == 0
    capsys.readouterr()
    manifest = nrx.golden.read_golden(tmp_path / "g.npz")[1]
    assert manifest["arch"]["bn_eps"] == manifest["arch"]["config"]["bn_eps"] == PADDLE_BN_EPS


def test_the_per_stage_cost_table_is_the_plans():
    """docs/se_resnext.md's "What SE costs, per stage" (measured on timm's models) equals the
    shape walk's weights (convolutions and fully connected layers) and MACs, stage by stage."""
    def per_stage(arch):
        out = {}
        for r in nrx.summarize(arch)["layers"]:
            stage = r["name"].split(".")[0] if r["name"].startswith("layer") else (
                "head" if r["name"] in ("avgpool", "fc") else "stem")
            weights = r["params"] if r["op"].startswith(("conv", "SE fc", "fully")) else 0
            w, m = out.get(stage, (0, 0))
            out[stage] = (w + weights, m + r["macs"])
        return out
    plain, se = per_stage("ResNeXt50_32x4d"), per_stage("SE_ResNeXt50_32x4d")
    rows = re.findall(r"^\| (stem|layer\d|head) \| ([\d,]+) \| ([\d,]+) \| [\d,]+ \| [^|]+ \| ([\d,]+) \| "
                      r"([\d,]+) \|", DOC, re.M)
    assert len(rows) == 6
    for stage, w0, w1, m0, m1 in rows:
        assert (plain[stage][0], se[stage][0]) == (int(w0.replace(",", "")), int(w1.replace(",", ""))), stage
        assert (plain[stage][1], se[stage][1]) == (int(m0.replace(",", "")), int(m1.replace(",", ""))), stage
