"""A reader never guesses: files whose config, name or tensors say they hold a network
numpy-resnext does not implement are refused in one line, unless an architecture is named
(then the one load report says what was assumed); every non-strict load lists what it
skipped and filled, in the command line and in build()'s load_report.

No framework is needed: the tensors are the committed one-stage fixtures
(reference/fixtures/torch_io), written again here in the layouts under test.
"""

import json
from argparse import Namespace
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

import numpy_resnext as nrx
from numpy_resnext.cli import main
from numpy_resnext.commands._common import load_model
from numpy_resnext.errors import WeightsError
from numpy_resnext.io import load_weights, safetensors
from numpy_resnext.io.declared import expected_config, unsupported
from numpy_resnext.io.torch.save import write_torch_zip

FIX = Path(__file__).resolve().parent.parent / "reference" / "fixtures" / "torch_io"
MICRO = nrx.custom(depths=(1,), cardinality=2, base_width=2, num_classes=3, stem_width=8)


@pytest.fixture(scope="module")
def micro():
    return OrderedDict(load_weights(FIX / "micro_zip.pth").params)


def hub_folder(root, tensors, config):
    root.mkdir(parents=True, exist_ok=True)
    safetensors.write(root / "model.safetensors", tensors)
    (root / "config.json").write_text(json.dumps(config))
    return root


# --- what the names say -------------------------------------------------------------------------
@pytest.mark.parametrize("name,lacks", [
    ("resnetaa50", "anti-aliased"), ("resnetblur50", "anti-aliased"), ("resnetaa50d", "anti-aliased"),
    ("resnetaa50d.sw_in12k_ft_in1k", "anti-aliased"), ("seresnet50", "SE-ResNet"),
    ("legacy_seresnet101", "SE-ResNet"), ("senet154", "SENet-154"), ("resnet18", "basic blocks"),
    ("resnext26ts", "ByobNet"), ("resnetblur50-84f4748f.pth", "anti-aliased")])
def test_unsupported_families_are_named(name, lacks):
    assert any(lacks in why for why in unsupported(name)), unsupported(name)


def test_an_anti_aliased_se_network_lacks_only_the_anti_aliasing():
    """SE-ResNeXt is implemented (docs/se_resnext.md); timm's anti-aliased one is not."""
    whys = " ".join(unsupported("seresnextaa101d_32x8d"))
    assert "anti-aliased" in whys and "SE" not in whys


@pytest.mark.parametrize("name", ["resnet50", "resnext50d_32x4d", "resnext101_32x8d.fb_wsl_ig1b_ft_in1k",
                                  "ResNeXt101_32x4d", "ig_resnext101_32x8-c38310e5.pth", "seresnext50_32x4d",
                                  "SE_ResNeXt50_vd_32x4d_pretrained.pdparams", "legacy_seresnext101_32x4d",
                                  "SENet154_vd", "seresnext101d_32x8d.sw_in1k"])
def test_our_networks_lack_nothing(name):
    assert unsupported(name) == []


def test_same_math_resnets_have_configs():
    assert expected_config("resnet50d").stem == "deep" and expected_config("resnet50d").avg_down
    assert expected_config("wide_resnet50_2").base_width == 128
    assert expected_config("resnext50d_32x4d.bt_in1k").name == "ResNeXt50_vd_32x4d"
    assert expected_config("resnetaa50") is None


# --- config.json --------------------------------------------------------------------------------
def test_config_naming_an_anti_aliased_network_is_refused(tmp_path, micro):
    """Before: the field was read, reported, and the tensors ran as their twin (exit 0)."""
    folder = hub_folder(tmp_path / "aa", micro, {"architecture": "resnetaa50", "num_classes": 3})
    for source in (folder, folder / "model.safetensors"):       # the folder, or its weights file
        with pytest.raises(WeightsError) as info:
            load_weights(source)
        msg = str(info.value)
        assert "not loaded" in msg and "anti-aliased downsampling" in msg and "'resnetaa50'" in msg
        assert "\n" not in msg                                  # one line
    loaded = load_weights(folder, arch=MICRO)
    assert any("resnetaa50" in a and f"loaded as {MICRO.name}" in a for a in loaded.report.assumed)
    assert any(line.startswith("assumed: config.json names") for line in loaded.report.lines())


@pytest.mark.parametrize("config,says", [
    ({"architecture": "resnet50", "model_args": {"output_stride": 16}}, "dilated convolutions"),
    ({"architecture": "resnet50", "model_args": {"aa_layer": "avgpool"}}, "anti-aliased"),
    ({"architecture": "resnet50", "model_args": {"block_args": {"attn_layer": "se"}}}, "cannot be checked"),
    ({"architecture": "resnet50", "global_pool": "max"}, "average pool"),
    ({"architecture": "convnext_tiny"}, "not among `numpy-resnext archs`")])
def test_config_settings_that_change_the_math_are_refused(tmp_path, micro, config, says):
    folder = hub_folder(tmp_path / "c", micro, config)
    with pytest.raises(WeightsError, match="not loaded") as info:
        load_weights(folder)
    assert says in str(info.value)


def test_a_declared_network_of_ours_is_checked_against_the_tensors(tmp_path, micro):
    folder = hub_folder(tmp_path / "vd", micro, {"architecture": "resnext50d_32x4d"})
    with pytest.raises(WeightsError, match=r"declares the architecture 'resnext50d_32x4d' "
                                           r"\(ResNeXt50_vd_32x4d\), but the tensors hold"):
        load_weights(folder)
    loaded = load_weights(folder, arch=MICRO)
    assert any("disagrees with the tensors" in a for a in loaded.report.assumed)


def test_a_declared_resnet_of_the_same_math_takes_its_name(tmp_path):
    """timm's resnet26d (deep stem, avg-pool shortcut, C = 1, d = 64) is no registry entry:
    its tensors load as a custom network, named as the config names it once they match."""
    config = expected_config("resnet26d")
    tensors = OrderedDict((k, np.zeros(s, np.float16)) for k, s in nrx.param_shapes(config).items())
    loaded = load_weights(hub_folder(tmp_path / "r26d", tensors, {"architecture": "resnet26d"}))
    assert loaded.config.name == "resnet26d" and loaded.config.depths == (2, 2, 2, 2)
    assert "config.json declares 'resnet26d', which the tensors match" in loaded.report.assumptions()
    short = OrderedDict((k, np.zeros(s, np.float16)) for k, s in
                        nrx.param_shapes(config.replace(depths=(1,))).items())
    with pytest.raises(WeightsError, match=r"declares the architecture 'resnet26d' \(resnet26d\), "
                                           r"but the tensors hold custom_1_1x64d_vd: depths"):
        load_weights(hub_folder(tmp_path / "r26d_short", short, {"architecture": "resnet26d"}))


def test_a_config_of_many_entries_is_one_short_refusal(tmp_path, micro):
    """A config.json of 200,000 model_args or architectures: a few findings and a count, not
    one per entry (before: a finding each, 23 s for 1.5 M names), within the load's budget."""
    args = {f"k{i}": 0 for i in range(200_000)}
    for config, says in (({"architecture": "resnet50", "model_args": args},
                          "config.json sets 200,000 model_args"),
                         ({"architectures": [f"resnetaa{i}" for i in range(200_000)]},
                          "config.json names 200,000 architectures")):
        folder = hub_folder(tmp_path / says.split()[3], micro, config)
        with pytest.raises(WeightsError, match="not loaded") as info:
            load_weights(folder)
        assert says in str(info.value) and len(str(info.value)) < 4000


def test_a_declared_name_is_printable_when_it_names_the_model(tmp_path):
    config = expected_config("resnet26d")
    tensors = OrderedDict((k, np.zeros(s, np.float16)) for k, s in nrx.param_shapes(config).items())
    hostile = "resnet26d.\x1b]0;x\x07\r\nFORGED" + "a" * 500
    loaded = load_weights(hub_folder(tmp_path / "r26d", tensors, {"architecture": hostile}))
    assert loaded.config.name.startswith("resnet26d.\\x1b]0;x\\x07\\r\\nFORGED")
    assert len(loaded.config.name) < 200 and loaded.config.name.isprintable()


# --- file names and tensors ---------------------------------------------------------------------
def test_a_file_named_after_an_unsupported_family_is_refused(tmp_path, micro):
    path = tmp_path / "resnetblur50-84f4748f.pth"
    write_torch_zip(path, micro)
    with pytest.raises(WeightsError, match="the file is named 'resnetblur50-84f4748f.pth'"):
        load_weights(path)
    assert load_weights(path, arch=MICRO).report.assumed


def se_tensors(micro):
    se = OrderedDict(micro)
    se["layer1.0.se.fc1.weight"] = np.zeros((2, 32, 1, 1), np.float64)
    se["layer1.0.se.fc1.bias"] = np.zeros(2)
    se["layer1.0.se.fc2.weight"] = np.zeros((32, 2, 1, 1))
    se["layer1.0.se.fc2.bias"] = np.zeros(32)
    return se


def test_squeeze_excitation_tensors_that_fit_no_se_resnext_are_refused_saying_so(tmp_path, micro):
    """SE tensors are read as an SE-ResNeXt's (docs/se_resnext.md); these (a 32-channel
    reduce on layer1's 256 channels) fit none, and the error says which and why."""
    path = tmp_path / "checkpoint.pth"
    write_torch_zip(path, se_tensors(micro))
    with pytest.raises(WeightsError) as info:
        load_weights(path)
    assert ("layer1.0.se.fc1.weight: expected the squeeze-and-excitation reduce of layer1's 256 "
            "channels, (r, C, 1, 1), found shape (2, 32, 1, 1)") in str(info.value)
    # named and strict: the four SE tensors are unexpected, and the error says why
    with pytest.raises(WeightsError, match=r"(?s)4 unexpected.*assumed: 4 of its tensors belong to "
                                           r"squeeze-and-excitation layers"):
        load_weights(path, arch=MICRO)


def test_non_strict_build_reports_what_it_skipped_and_filled(tmp_path, micro):
    """Before: build(strict=False).load_report had the SE tensors nowhere the user looked."""
    tensors = se_tensors(micro)
    del tensors["fc.bias"]
    path = tmp_path / "partial.pth"
    write_torch_zip(path, tensors)
    model = nrx.build(MICRO, weights=str(path), strict=False, dtype="float64")
    report = model.load_report
    assert report["unexpected"] == ["layer1.0.se.fc1.weight", "layer1.0.se.fc1.bias",
                                    "layer1.0.se.fc2.weight", "layer1.0.se.fc2.bias"]
    assert report["filled"] == ["fc.bias"] and "seed 0" in report.filled_with
    assert any("squeeze-and-excitation" in a for a in report["assumed"])
    unused, filled = report.skipped_and_filled()
    assert unused.startswith("4 tensors of the file not used: layer1.0.se.fc1.weight")
    assert filled.startswith("1 tensors the file lacks filled with seeded values") and "fc.bias" in filled


def test_cli_refuses_in_one_line_and_prints_what_was_assumed(tmp_path, micro, capsys):
    tensors = OrderedDict((f"module.{k}", v) for k, v in se_tensors(micro).items())
    del tensors["module.fc.bias"]
    path = tmp_path / "partial.pth"
    write_torch_zip(path, tensors)
    np.save(tmp_path / "x.npy", np.zeros((3, 16, 16)))
    code = main(["forward", "--weights", str(path), "--input", str(tmp_path / "x.npy"),
                 "--output", str(tmp_path / "y.npy"), "--dtype", "float64", "--non-strict"])
    err = capsys.readouterr().err
    assert code == 2 and "squeeze-and-excitation" in err and err.count("\n") == 1
    # named (a custom network has no name on the command line: the shared loader is called)
    args = Namespace(arch=MICRO, weights=str(path), seed=0, dtype="float64", init="calibrated",
                     ema=None, non_strict=True)
    model = load_model(args)
    err = capsys.readouterr().err
    assert "note: 4 of its tensors belong to squeeze-and-excitation layers" in err and f"loaded as {MICRO.name}" in err
    assert "note: prefix 'module.' removed from every name" in err
    assert "non-strict load: 4 tensors of the file not used: layer1.0.se.fc1.weight" in err
    assert "non-strict load: 1 tensors the file lacks filled with seeded values" in err
    assert model.load_report["filled"] == ["fc.bias"]


def test_cli_names_prefix_and_non_strict_lines(tmp_path, capsys):
    """ResNet50-shaped file with a 'module.' prefix and no head, loaded non-strict."""
    config = nrx.get_arch("ResNet50").replace(depths=(1,))
    shapes = nrx.param_shapes(config)
    tensors = OrderedDict((f"module.{k}", np.ones(s, np.float32)) for k, s in shapes.items()
                          if not k.startswith("fc."))
    path = tmp_path / "backbone.pth"
    write_torch_zip(path, tensors)
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 32, 32), np.float32))
    code = main(["forward", "--weights", str(path), "--input", str(tmp_path / "x.npy"),
                 "--output", str(tmp_path / "y.npy"), "--non-strict"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "note: prefix 'module.' removed from every name" in err
    assert "non-strict load: every tensor of the file used" in err
    assert "non-strict load: 2 tensors the file lacks filled with seeded values" in err
    assert "fc.weight, fc.bias" in err
