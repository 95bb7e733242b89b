"""Live lane: real torchvision 0.28 and timm 1.0.31 model code against numpy-resnext.

Eight models (tests/_torch_models.py: torchvision's resnet50, resnext50_32x4d,
resnext101_32x8d, resnext101_64x4d; timm's resnext50d_32x4d, resnext50_32x4d,
resnext101_32x4d, resnet50d), random weights with trained-looking BatchNorm, float64, a
2x3x67x45 input:

- logits and every tensor agree: numpy-resnext built from the model's state dict against
  numpy_resnext.torch_capture (175 or 184 tensors, ``--strict``), a hand-written hook
  capture through ``--map`` (NAME#k), and an FX feature extractor's nodes;
- planted bugs in the torch models are caught at the tensor where they live;
- files: .pth, a training checkpoint with a ``module.`` prefix, .safetensors and
  save_for_hf folders give the same logits, and converted weights reload bit for bit in
  torch (``load_state_dict(strict=True)``, every tensor ``torch.equal``, num_batches_tracked
  included);
- refusals: timm's anti-aliased networks (resnetaa50, resnetblur50, resnetaa50d,
  seresnextaa101d_32x8d) and a dilated one, saved by timm's own save_for_hf.

torchvision and timm are installed beside the torch 2.13.0 CPU build with ``pip install
--no-deps torchvision==0.28.0 timm==1.0.31`` (and pyyaml, huggingface_hub); every test
skips with the reason when one is missing.
"""

import copy
import types
from collections import OrderedDict

import numpy as np
import pytest

import numpy_resnext as nrx
from numpy_resnext.cli import main
from numpy_resnext.errors import InputError, WeightsError
from numpy_resnext.golden import compare, golden_dump
from numpy_resnext.io import load_weights
from numpy_resnext.io.declared import expected_config
from numpy_resnext.io.infer import config_differences

import _torch_models as tm

pytestmark = [pytest.mark.torch, pytest.mark.slow]


@pytest.fixture(scope="module", params=list(tm.MODELS))
def case(request):
    """(key, torch model, x, our float64 model, golden tensors, manifest)."""
    pytest.importorskip("torch", reason="the torch lane needs pip install torch==2.13.0 (CPU build)")
    key = request.param
    model, x = tm.build(key)
    loaded = load_weights(tm.state(model))
    ours = nrx.build(loaded.config, weights=loaded.params, dtype="float64")
    tensors, manifest = golden_dump(ours, x)
    return key, model, x, ours, tensors, manifest


def rel(a, b):
    return float(np.abs(np.asarray(a) - b).max() / np.abs(b).max())


# --- logits and captures ------------------------------------------------------------------------
def test_logits_and_every_tensor_agree(case):
    key, model, x, ours, tensors, manifest = case
    expected = expected_config(tm.MODELS[key][2])          # the architecture read off the state dict
    assert ours.config.name == expected.name or not config_differences(expected, ours.config)
    assert rel(tensors["fc"], tm.logits(model, x)) < 1e-12
    capture = nrx.torch_capture(model, x)
    assert list(capture) == list(tensors)                 # canonical names, execution order
    report = compare(tensors, capture, strict=True)
    assert report.passed and len(report.compared) == len(ours.plan.names()) + 1, report.verdict()
    worst = max(r.max_rel for r in report.compared)
    assert worst < 1e-12, worst


def test_hook_and_fx_captures_through_the_maps(case):
    key, model, x, ours, tensors, manifest = case
    lib = tm.MODELS[key][0]
    family = "torchvision" if lib == "torchvision" else "timm"
    hooks = tm.hook_capture(model, x)
    report = compare(tensors, hooks, name_map=family, strict=True)
    assert report.passed and report.excused == {"residual add", "input"}, report.verdict()
    assert len(report.compared) == len(tensors) - len(ours.plan.blocks) - 1
    if ours.config.depths != (3, 4, 6, 3):
        return                                            # FX names: the 50-layer models show them
    # FX node names, every node returned (ReLUs out of place: FX returns the tensors themselves)
    torch, library = tm.library(lib)
    fx_model = tm.out_of_place(copy.deepcopy(model))
    if lib == "torchvision":
        from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names
    else:
        create_feature_extractor, get_graph_node_names = (library.models.create_feature_extractor,
                                                          library.models.get_graph_node_names)
    extractor = create_feature_extractor(fx_model, return_nodes=get_graph_node_names(fx_model)[1])
    with torch.no_grad():
        nodes = OrderedDict((k, v.numpy()) for k, v in extractor(torch.from_numpy(x)).items())
    report = compare(tensors, nodes, name_map=family, strict=True)
    assert report.passed and len(report.compared) == len(tensors), report.verdict()
    if family == "timm":                                  # timm's features: act1, layer1 .. layer4
        features = library.create_model(tm.MODELS[key][1], features_only=True).double().eval()
        features.load_state_dict(model.state_dict(), strict=False)
        with torch.no_grad():
            feats = features(torch.from_numpy(x))
            _, inter = model.forward_intermediates(torch.from_numpy(x))
        for values in (feats, inter):
            named = OrderedDict(zip(features.feature_info.module_name(), (f.numpy() for f in values)))
            report = compare(tensors, named, name_map="timm")
            assert report.passed and len(report.compared) == 5
            assert f"PASS ON 5 OF {len(tensors)} REFERENCE TENSORS ONLY" in report.verdict()


@pytest.mark.parametrize("case", ["tv_resnext50_32x4d", "timm_resnext50d_32x4d"], indirect=True)
def test_hooks_without_a_copy_are_recognised(case):
    key, model, x, ours, tensors, manifest = case
    family = "torchvision" if key.startswith("tv") else "timm"
    report = compare(tensors, tm.hook_capture(model, x, clone=False), name_map=family)
    first = report.first_divergence
    assert first.name == ("bn1" if family == "torchvision" else "conv1.1")
    assert "overwritten in place" in first.note and "torch_capture" in first.note


# --- planted bugs ---------------------------------------------------------------------------------
def _no_residual(block):
    """torchvision's Bottleneck forward with the identity left out (the add's bug)."""
    def forward(self, x):
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        return self.relu(self.bn3(self.conv3(out)))
    block.forward = types.MethodType(forward, block)


def _swap_groups(conv):
    """The grouped convolution's first two groups' filters exchanged (a port that orders the
    groups differently)."""
    w, per = conv.weight.data, conv.out_channels // conv.groups
    first = w[:per].clone()
    w[:per] = w[per:2 * per]
    w[per:2 * per] = first


def _batch_statistics(bn):
    """A BN that normalises with the batch's statistics in eval mode too (torch_capture runs
    the model in eval mode, so a module left in training mode is no bug it can show)."""
    bn.running_mean = bn.running_var = None
    bn.track_running_stats = False


def _set(sequential, index, module):
    sequential[index] = module


def _planted(torch):
    nn = torch.nn
    tv = [("BN epsilon 1e-3", lambda m: setattr(m.layer2[0].bn2, "eps", 1e-3), "layer2.0.bn2"),
          ("stem max-pool without padding", lambda m: setattr(m.maxpool, "padding", 0), "maxpool"),
          ("groups in the wrong order", lambda m: _swap_groups(m.layer3[0].conv2), "layer3.0.conv2"),
          ("a BN with batch statistics", lambda m: _batch_statistics(m.layer1[1].bn1), "layer1.1.bn1"),
          ("shortcut BN without its shift", lambda m: m.layer2[0].downsample[1].bias.data.zero_(),
           "layer2.0.downsample.1"),
          ("global max pool", lambda m: setattr(m, "avgpool", nn.AdaptiveMaxPool2d(1)), "avgpool"),
          ("fc bias dropped", lambda m: m.fc.bias.data.zero_(), "fc"),
          ("leaky ReLU", lambda m: setattr(m.layer4[0], "relu", nn.LeakyReLU(0.01)), "layer4.0.relu1"),
          ("residual left out", lambda m: _no_residual(m.layer3[2]), "layer3.2.add")]
    timm = [("vd pool as a max pool", lambda m: _set(m.layer2[0].downsample, 0, nn.MaxPool2d(2, 2, ceil_mode=True)),
             "layer2.0.downsample.0"),
            ("vd pool dividing partial windows by 4", lambda m: setattr(m.layer3[0].downsample[0],
                                                                      "divisor_override", 4),
             "layer3.0.downsample.0"),
            ("deep stem BN epsilon", lambda m: setattr(m.conv1[4], "eps", 1e-3), "conv1.4"),
            ("deep stem stride", lambda m: setattr(m.conv1[3], "stride", (2, 2)), "conv1.3")]
    return {"tv_resnext50_32x4d": tv, "timm_resnext50d_32x4d": timm}


@pytest.mark.parametrize("case", ["tv_resnext50_32x4d", "timm_resnext50d_32x4d"], indirect=True)
def test_planted_bugs_are_caught_at_their_tensor(case):
    key, model, x, ours, tensors, manifest = case
    torch, _ = tm.library("torchvision")
    bugs = _planted(torch)[key]
    for what, plant, where in bugs:
        buggy = copy.deepcopy(model)
        plant(buggy)
        report = compare(tensors, nrx.torch_capture(buggy, x), strict=True)
        assert not report.passed, what
        assert report.first_divergence.name == where, (what, report.first_divergence)


# --- files ------------------------------------------------------------------------------------------
FILES = ("tv_resnet50", "tv_resnext50_32x4d", "timm_resnext50d_32x4d", "timm_resnext50_32x4d")


@pytest.mark.parametrize("case", FILES, indirect=True)
def test_files_load_and_converted_weights_reload_bit_for_bit(case, tmp_path, capsys):
    key, model, x, ours, tensors, manifest = case
    torch, library = tm.library(tm.MODELS[key][0])
    from safetensors.torch import load_file, save_file
    sd = model.state_dict()
    expect = tensors["fc"]
    paths = {"pth": tmp_path / "w.pth", "ckpt": tmp_path / "checkpoint.pth.tar",
             "st": tmp_path / "w.safetensors", "hf": tmp_path / "hf"}
    torch.save(sd, paths["pth"])
    torch.save({"state_dict": OrderedDict((f"module.{k}", v) for k, v in sd.items()), "epoch": 3},
               paths["ckpt"])
    save_file({k: v.contiguous() for k, v in sd.items()}, str(paths["st"]))
    if tm.MODELS[key][0] == "timm":
        library.models.save_for_hf(model, str(paths["hf"]), safe_serialization=True)
    else:
        paths["hf"].mkdir()
        save_file(dict(sd), str(paths["hf"] / "model.safetensors"))
        (paths["hf"] / "config.json").write_text('{"architecture": "%s"}' % tm.MODELS[key][1])
    for kind, path in paths.items():
        got = nrx.build(None, weights=str(path), dtype="float64")
        assert got.config.name == tm.MODELS[key][2], kind
        assert rel(got(x), expect) < 1e-13, kind
    for ext in (".pth", ".safetensors"):
        out = tmp_path / f"converted{ext}"
        assert main(["convert", "--weights", str(paths["ckpt"]), "--output", str(out)]) == 0
        assert "written as read (shape ()" in capsys.readouterr().out
        back = torch.load(out, weights_only=True) if ext == ".pth" else load_file(str(out))
        assert list(back) == list(sd)
        for k, v in sd.items():
            assert back[k].shape == v.shape and back[k].dtype == v.dtype and torch.equal(back[k], v), k
        fresh = tm.create(*tm.MODELS[key][:2]).double()
        fresh.load_state_dict(back, strict=True)
        assert np.array_equal(tm.logits(fresh.eval(), x), tm.logits(model, x))


# --- refusals ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", tm.ANTI_ALIASED)
def test_anti_aliased_networks_are_refused(name, tmp_path, capsys):
    """Before: resnetaa50's folder ran as ResNet50 (logits 0.09-0.35 off), exit 0."""
    torch, timm = tm.library("timm")
    model = tm.create("timm", name)
    folder = tmp_path / name
    timm.models.save_for_hf(model, str(folder), safe_serialization=True)
    with pytest.raises(WeightsError, match="anti-aliased downsampling"):
        load_weights(folder)
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 64, 64), np.float32))
    assert main(["forward", "--weights", str(folder), "--input", str(tmp_path / "x.npy"),
                 "--output", str(tmp_path / "y.npy")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"config.json names architecture '{name}'" in err
    assert "anti-aliased downsampling" in err          # SE blocks are implemented: not the reason
    assert "squeeze-and-excitation" not in err
    bare = tmp_path / f"{name}_a1h-4cf422b3.pth"                # timm's release naming
    torch.save(model.state_dict(), bare)
    with pytest.raises(WeightsError, match="the file is named"):
        load_weights(bare)
    with pytest.raises(InputError, match="anti-aliased downsampling"):
        nrx.torch_capture(model.double(), np.zeros((1, 3, 64, 64)))
    if name == "resnetaa50":         # what loading it as its twin would give (even sizes: timm's
        aa, x = tm.randomise(model, seed=1, shape=(2, 3, 64, 64))    # aa blocks fail on odd ones)
        twin = nrx.build("ResNet50", weights=tm.state(aa), dtype="float64")
        assert rel(twin(x), tm.logits(aa, x)) > 0.05
    if not name.startswith("se"):                                # named: loads, and the report says so
        twin = expected_config("resnet50d" if name.endswith("d") else "resnet50")
        loaded = load_weights(folder, arch=twin)
        assert any("anti-aliased" in a and "because it was named" in a for a in loaded.report.assumed)


def test_a_dilated_network_is_refused(tmp_path):
    torch, timm = tm.library("timm")
    model = tm.create("timm", "resnext50d_32x4d", output_stride=16)
    folder = tmp_path / "dilated"
    timm.models.save_for_hf(model, str(folder), model_args={"output_stride": 16}, safe_serialization=True)
    with pytest.raises(WeightsError, match="dilated convolutions"):
        load_weights(folder)
    with pytest.raises(InputError, match="dilation"):
        nrx.torch_capture(model.double(), np.zeros((1, 3, 64, 64)))
