"""archs.py and shapes.py: the registry, name lookup, configuration checks, the block plan,
and the per-layer shapes of all 17 built-in architectures checked against the paper's rules
(written out here again, independently of the package's own formulas).
"""

import re
from pathlib import Path

import pytest

from numpy_resnext.plan import layer_plan
from numpy_resnext.archs import (ALIASES, ARCHS, ArchConfig, custom, get_arch,
                                 list_archs)
from numpy_resnext.errors import ArchitectureError
from numpy_resnext.shapes import output_shapes

# PaddleClas' model names (ResNeXt{50,101,152}[_vd]_{32x4d,64x4d}, the four WSL models) + ResNet50
EXPECTED_NAMES = (
    [f"ResNeXt{d}_{c}x4d" for d in (50, 101, 152) for c in (32, 64)]
    + [f"ResNeXt{d}_vd_{c}x4d" for d in (50, 101, 152) for c in (32, 64)]
    + [f"ResNeXt101_32x{w}d_wsl" for w in (8, 16, 32, 48)]
    + ["ResNet50"])
PAPER_DEPTHS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
NAME_RE = re.compile(r"ResNeXt(\d+)(_vd)?_(\d+)x(\d+)d(_wsl)?$")


def paper_config(name):
    """(depths, C, d, vd) read off the name, as the paper and PaddleClas spell them."""
    if name == "ResNet50":
        return PAPER_DEPTHS[50], 1, 64, False
    m = NAME_RE.match(name)
    assert m, name
    return PAPER_DEPTHS[int(m.group(1))], int(m.group(3)), int(m.group(4)), bool(m.group(2))


# the SE-ResNeXt family (issue 22): PaddleClas's names, timm's where PaddleClas has no twin
SE_NAMES = ["SE_ResNeXt50_32x4d", "SE_ResNeXt101_32x4d", "SE_ResNeXt152_64x4d", "SE_ResNeXt50_vd_32x4d",
            "SENet154_vd", "seresnext26d_32x4d", "seresnext26t_32x4d", "seresnext101_32x8d",
            "seresnext101_64x4d", "seresnext101d_32x8d", "legacy_seresnext26_32x4d",
            "legacy_seresnext50_32x4d", "legacy_seresnext101_32x4d"]


def test_registry_holds_the_30_architectures():
    assert sorted(list_archs()) == sorted(EXPECTED_NAMES + SE_NAMES)
    assert len(ARCHS) == 30


@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_registry_fields_match_the_name(name):
    assert ARCHS[name].se_reduction == 0 and ARCHS[name].stem_pool == "padded"
    depths, C, d, vd = paper_config(name)
    cfg = ARCHS[name]
    assert cfg.name == name
    assert cfg.depths == depths and cfg.cardinality == C and cfg.base_width == d
    assert cfg.stem == ("deep" if vd else "plain") and cfg.avg_down == vd
    assert cfg.num_classes == 1000 and cfg.stem_width == 64
    assert cfg.naming == ("timm" if vd else "torchvision")
    assert cfg.description


def test_stage_widths_follow_the_paper():
    # PaddleClas' num_filters for cardinality 32 / 64 (docs/architectures.md), and d=8..48 for WSL
    assert [ARCHS["ResNeXt50_32x4d"].stage_width(s) for s in range(4)] == [128, 256, 512, 1024]
    assert [ARCHS["ResNeXt101_64x4d"].stage_width(s) for s in range(4)] == [256, 512, 1024, 2048]
    assert [ARCHS["ResNeXt101_32x8d_wsl"].stage_width(s) for s in range(4)] == [256, 512, 1024, 2048]
    assert [ARCHS["ResNeXt101_32x48d_wsl"].stage_width(s) for s in range(4)] == [1536, 3072, 6144, 12288]
    assert [ARCHS["ResNet50"].stage_width(s) for s in range(4)] == [64, 128, 256, 512]
    assert [ARCHS["ResNeXt50_32x4d"].stage_out(s) for s in range(4)] == [256, 512, 1024, 2048]


# --- every architecture's per-layer shapes at 224x224 ----------------------------------------
@pytest.mark.parametrize("name", EXPECTED_NAMES)
def test_network_shapes_follow_the_paper(name):
    depths, C, d, vd = paper_config(name)
    rows = output_shapes(ARCHS[name], 224, 224)
    by_name = {r["name"]: r for r in rows}
    assert len(by_name) == len(rows), "intermediate names must be unique"

    if vd:   # three 3x3 convs 3->32 (stride 2), 32->32, 32->64
        assert [by_name[n]["shape"] for n in ("conv1.0", "conv1.3", "conv1.6")] == \
            [(32, 112, 112), (32, 112, 112), (64, 112, 112)]
        assert "conv1" not in by_name
    else:    # one 7x7/2 conv 3->64
        assert by_name["conv1"]["shape"] == (64, 112, 112)
        assert by_name["conv1"]["params"] == 64 * 3 * 7 * 7
    assert by_name["relu"]["shape"] == (64, 112, 112)
    assert by_name["maxpool"]["shape"] == (64, 56, 56)

    spatial = [56, 28, 14, 7]
    in_ch, in_hw = 64, 56
    for s, depth in enumerate(depths):
        width = (64 * 2 ** s * d // 64) * C            # floor(64 * 2^s * d / 64) * C
        out = 256 * 2 ** s
        hw = spatial[s]
        for i in range(depth):
            b = f"layer{s + 1}.{i}"
            assert by_name[f"{b}.conv1"]["shape"] == (width, in_hw, in_hw)      # 1x1, no stride
            assert by_name[f"{b}.conv1"]["params"] == width * in_ch
            assert by_name[f"{b}.conv2"]["shape"] == (width, hw, hw)            # stride here
            assert by_name[f"{b}.conv2"]["groups"] == C
            assert by_name[f"{b}.conv2"]["params"] == width * (width // C) * 9
            assert by_name[f"{b}.conv3"]["shape"] == (out, hw, hw)
            assert by_name[f"{b}.conv3"]["params"] == out * width
            assert by_name[b]["shape"] == (out, hw, hw)
            has_pool = f"{b}.downsample.0" in by_name and by_name[f"{b}.downsample.0"]["op"].startswith("avgpool")
            if i == 0:    # projection in the first block of every stage, stage 0 too
                if vd and s > 0:
                    assert has_pool
                    assert by_name[f"{b}.downsample.0"]["shape"] == (in_ch, hw, hw)
                    assert by_name[f"{b}.downsample.1"]["shape"] == (out, hw, hw)
                    assert by_name[f"{b}.downsample.2"]["shape"] == (out, hw, hw)
                else:
                    assert not has_pool
                    proj = f"{b}.downsample.1" if vd else f"{b}.downsample.0"
                    assert by_name[proj]["shape"] == (out, hw, hw)
                    assert by_name[proj]["params"] == out * in_ch
            else:
                assert not any(n.startswith(f"{b}.downsample") for n in by_name)
            in_ch, in_hw = out, hw
        assert f"layer{s + 1}.{depth}" not in by_name
    assert f"layer{len(depths) + 1}.0" not in by_name
    assert by_name["avgpool"]["shape"] == (2048,)
    assert by_name["fc"]["shape"] == (1000,)
    # groups only on the 3x3 convolutions of the blocks
    for r in rows:
        if r["name"].endswith(".conv2") and r["name"].startswith("layer"):
            continue
        assert r["groups"] == 1, r


def test_block_template_parameters_match_eq4():
    """Paper Eq. 4: a stage-0 block costs C*(256*d + 9*d*d + d*256) parameters (~70k)."""
    def template(name):
        rows = {r["name"]: r for r in output_shapes(ARCHS[name], 224, 224)}
        return sum(rows[f"layer1.1.conv{i}"]["params"] for i in (1, 2, 3))
    assert template("ResNeXt50_32x4d") == 32 * (256 * 4 + 9 * 4 * 4 + 4 * 256) == 70_144
    assert template("ResNet50") == 256 * 64 + 9 * 64 ** 2 + 64 * 256 == 69_632


# --- lookup -----------------------------------------------------------------------------------
@pytest.mark.parametrize("spelling", ["ResNeXt50_32x4d", "resnext50_32x4d", "RESNEXT50_32X4D",
                                      "  resNeXt50_32x4d "])
def test_lookup_ignores_case_and_spaces(spelling):
    assert get_arch(spelling) is ARCHS["ResNeXt50_32x4d"]


@pytest.mark.parametrize("alias,target", [("resnext50_32x4d", "ResNeXt50_32x4d"),
                                          ("resnext101_32x8d", "ResNeXt101_32x8d_wsl"),
                                          ("resnext101_64x4d", "ResNeXt101_64x4d"),
                                          ("RESNEXT101_32X8D", "ResNeXt101_32x8d_wsl")])
def test_torchvision_aliases(alias, target):
    assert get_arch(alias) is ARCHS[target]
    assert ALIASES[alias.lower()] == target


@pytest.mark.parametrize("alias,target", [("resnext50d_32x4d", "ResNeXt50_vd_32x4d"),
                                          ("resnext101_32x4d", "ResNeXt101_32x4d"),
                                          ("resnext101_32x16d", "ResNeXt101_32x16d_wsl"),
                                          ("resnext101_32x32d", "ResNeXt101_32x32d_wsl"),
                                          ("resnext50d_32x4d.bt_in1k", "ResNeXt50_vd_32x4d"),
                                          ("resnext101_64x4d.c1_in1k", "ResNeXt101_64x4d"),
                                          ("ig_resnext101_32x48d", "ResNeXt101_32x48d_wsl")])
def test_timm_names_are_aliases(alias, target):
    """timm's names (and pretrained tags) of the registry's networks; before, the vd ones
    were 'unknown architecture ... did you mean ResNeXt50_vd_32x4d'."""
    assert get_arch(alias) is ARCHS[target]


def test_a_tag_does_not_rescue_an_unknown_name():
    with pytest.raises(ArchitectureError, match="unknown architecture"):
        get_arch("resnetaa50.a1h_in1k")


def test_every_alias_is_listed_in_the_docs():
    """docs/architectures.md's table of other libraries' names is ALIAS_TABLE, row for row."""
    from numpy_resnext.archs import ALIAS_TABLE
    text = (Path(__file__).resolve().parent.parent / "docs" / "architectures.md").read_text()
    rows = re.findall(r"^\| `([a-z0-9_]+)` \| (\w+) \| ([^|]+) \|$", text, re.M)
    assert [(a, t, w.strip()) for a, t, w in rows] == list(ALIAS_TABLE)


def test_config_passes_through():
    cfg = custom(depths=(1, 1))
    assert get_arch(cfg) is cfg


@pytest.mark.parametrize("typo,suggestion", [("ResNeXt50_32x4", "ResNeXt50_32x4d"),
                                             ("resnext50_vd_32x4", "ResNeXt50_vd_32x4d"),
                                             ("ResNeXt101_32x16", "ResNeXt101_32x16d_wsl"),
                                             ("resnext152_64x4", "ResNeXt152_64x4d")])
def test_unknown_name_suggests_the_closest(typo, suggestion):
    with pytest.raises(ArchitectureError) as info:
        get_arch(typo)
    msg = str(info.value)
    assert f"unknown architecture {typo!r}" in msg
    assert "did you mean" in msg and suggestion in msg
    assert "numpy-resnext archs" in msg
    assert isinstance(info.value, KeyError)           # callers may catch the built-in
    assert not msg.startswith(("'", '"'))             # printed plainly, not as a KeyError repr


def test_unknown_name_without_close_match():
    with pytest.raises(ArchitectureError, match=r"unknown architecture 'vgg16'\. Run `numpy-resnext archs`"):
        get_arch("vgg16")


def test_lookup_rejects_non_names():
    with pytest.raises(ArchitectureError, match="found int"):
        get_arch(50)


# --- configurations ---------------------------------------------------------------------------
def test_invalid_config_reports_every_problem_at_once():
    with pytest.raises(ArchitectureError) as info:
        ArchConfig("bad", depths=(0, 1), cardinality=0, stem="wide", num_classes=0)
    msg = str(info.value)
    for part in ("invalid architecture 'bad'", "depths must be positive block counts, found (0, 1)",
                 "cardinality must be >= 1, found 0", "stem must be one of 'plain', 'deep', 'cifar', found 'wide'",
                 "num_classes must be >= 1, found 0"):
        assert part in msg


def test_too_many_stages_and_zero_width():
    with pytest.raises(ArchitectureError, match="at most 4 stages, found 5"):
        ArchConfig("five", depths=(1, 1, 1, 1, 1))
    with pytest.raises(ArchitectureError, match="base_width must be >= 1, found 0"):
        ArchConfig("w0", base_width=0)
    with pytest.raises(ArchitectureError, match="stem widths must be >= 1, found stem_width=0, deep_stem_width=32"):
        ArchConfig("s0", stem_width=0)


def test_custom_tiny_configs():
    cfg = custom()
    assert (cfg.depths, cfg.cardinality, cfg.base_width, cfg.num_classes) == ((1, 1, 1, 1), 4, 4, 10)
    assert cfg.stem == "plain" and not cfg.avg_down
    vd = custom(depths=(2,), stem="deep", cardinality=2)
    assert vd.avg_down and vd.naming == "timm" and vd.num_features == 256
    assert custom(stem="deep", avg_down=False).avg_down is False
    assert ARCHS["ResNeXt50_32x4d"].replace(num_classes=7).num_classes == 7


def test_block_plan_of_resnext50():
    plan = layer_plan(ARCHS["ResNeXt50_32x4d"]).blocks
    assert [b.name for b in plan] == [f"layer{s + 1}.{i}" for s, d in enumerate((3, 4, 6, 3)) for i in range(d)]
    firsts = [b for b in plan if b.index == 0]
    assert [b.stride for b in firsts] == [1, 2, 2, 2]
    assert all(b.stride == 1 for b in plan if b.index > 0)
    assert [b.shortcut for b in firsts] == ["projection"] * 4
    assert all(b.shortcut == "identity" for b in plan if b.index > 0)
    assert [b.in_channels for b in firsts] == [64, 256, 512, 1024]
    assert all(b.groups == 32 for b in plan)
    vd = layer_plan(ARCHS["ResNeXt50_vd_32x4d"]).blocks
    assert [b.shortcut for b in vd if b.index == 0] == ["projection"] + ["avgpool_projection"] * 3
