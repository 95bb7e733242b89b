"""PyTorch-world weight files read without torch (fixture lane: torch is never imported).

reference/fixtures/torch_io/ holds tiny networks saved by torch 2.13 and the safetensors
package in every layout and wrapper (reference/torch_io_fixtures.py). The float64 weights
are rebuilt here bit for bit by torch_capture.make_weights (their sha256 is in the
manifest); the float32 files hold them rounded by torch's .float(), which is IEEE
round-to-nearest like NumPy's astype; bfloat16 and float16 expectations are torch's own.
"""

import importlib.util
import json
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

import numpy_resnext as nrx
from numpy_resnext.archs import PADDLE_BN_EPS
from numpy_resnext.errors import ResNeXtError, WeightsError
from numpy_resnext.golden import params_sha256
from numpy_resnext.io import load_weights
from numpy_resnext.io.torch.file import TorchFile
from numpy_resnext.params import param_shapes
from numpy_resnext.plan import layer_plan

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "reference" / "fixtures" / "torch_io"

_spec = importlib.util.spec_from_file_location("torch_capture", ROOT / "reference" / "torch_capture.py")
tc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tc)

MICRO = nrx.custom(depths=(1,), cardinality=2, base_width=2, num_classes=3, stem_width=8)
MICRO_D = nrx.custom(depths=(1,), cardinality=2, base_width=2, num_classes=3, stem_width=8,
                     deep_stem_width=4, stem="deep")
SEEDS = {"micro": 31, "micro_d": 32}


def weights64(net):
    return tc.make_weights(param_shapes(MICRO if net == "micro" else MICRO_D), SEEDS[net])


@pytest.fixture(scope="module")
def expected():
    with np.load(FIX / "expected.npz") as z:
        return {k: z[k] for k in z.files}


def test_rebuilt_weights_are_the_ones_torch_saved(fixtures_dir):
    entry = json.loads((fixtures_dir / "MANIFEST.json").read_text())["torch_io/micro_zip.pth"]
    for net in SEEDS:
        assert params_sha256(weights64(net)) == entry["weights_sha256"][net]


def _same(got, want, dtype):
    assert list(got) == list(want)
    for k, v in want.items():
        assert got[k].dtype == np.dtype(dtype), k
        np.testing.assert_array_equal(got[k], v.astype(dtype), err_msg=k)


# (file, net, dtype of the tensors, wrapper note expected); the hub folder's config.json
# names 'micro_d', which is no architecture numpy-resnext knows: it loads when named
PLAIN = [("micro_zip.pth", "micro", "float64", "torch-zip"),
         ("micro_legacy.pth", "micro", "float32", "torch-legacy"),
         ("micro_views.pth", "micro", "float32", "torch-zip"),
         ("micro_views_legacy.pth", "micro", "float32", "torch-legacy"),
         ("micro_checkpoint.pth.tar", "micro", "float32", "'state_dict'"),
         ("micro_d_lightning.ckpt", "micro_d", "float32", "'state_dict'"),
         ("micro.safetensors", "micro", "float32", "safetensors metadata"),
         ("hub", "micro_d", "float32", "config.json: architecture 'micro_d'"),
         ("hub/model.safetensors.index.json", "micro_d", "float32", "2 files")]


@pytest.mark.parametrize("fname,net,dtype,note", PLAIN)
def test_every_layout_reads_bit_for_bit(fname, net, dtype, note):
    named = MICRO_D if fname.startswith("hub") else None
    loaded = load_weights(FIX / fname, arch=named)
    if named is not None:
        assert "config.json names architecture 'micro_d'" in " ".join(loaded.report.assumed)
    assert loaded.config == (MICRO if net == "micro" else MICRO_D).replace(
        name=loaded.config.name, description=loaded.config.description)
    assert loaded.scheme == "canonical"
    _same(loaded.params, weights64(net), dtype)
    assert any(note in n for n in loaded.report.notes), loaded.report.notes
    if fname.endswith((".pth", ".tar", ".ckpt")):     # torch's BN counters: ignored, said so
        assert len(loaded.report.ignored) == len(layer_plan(loaded.config).convs())     # 5 or 7
        assert any("num_batches_tracked" in line for line in loaded.report.lines())


def test_wrappers_prefixes_and_ema_are_reported():
    ckpt = load_weights(FIX / "micro_checkpoint.pth.tar")
    notes = " | ".join(ckpt.report.notes)
    assert "weights taken from 'state_dict'; EMA copy 'state_dict_ema' not used" in notes
    assert "'epoch', 'arch', 'best_acc1', 'optimizer'" in notes
    assert "prefix 'module.' removed" in notes
    ema = load_weights(FIX / "micro_checkpoint.pth.tar", ema=True)
    assert "EMA copy 'state_dict_ema' (asked for)" in " | ".join(ema.report.notes)
    w = weights64("micro")
    _same(ema.params, OrderedDict((k, (v.astype(np.float32) * np.float32(0.5))) for k, v in w.items()),
          "float32")
    light = load_weights(FIX / "micro_d_lightning.ckpt", ema=True)
    assert "prefix" not in " ".join(light.report.notes)          # model_ema has no prefix
    _same(light.params, OrderedDict((k, v.astype(np.float32) * np.float32(0.25))
                                    for k, v in weights64("micro_d").items()), "float32")
    assert any("prefix 'model.' removed" in n
               for n in load_weights(FIX / "micro_d_lightning.ckpt").report.notes)
    with pytest.raises(WeightsError, match="no EMA copy"):
        load_weights(FIX / "micro_zip.pth", ema=True)


def test_only_the_chosen_state_dict_is_read(monkeypatch):
    """The optimizer's momentum buffers and the EMA copy stay unread references."""
    read = []
    original = TorchFile._read_storage

    def spy(self, f, info):
        read.append(info.key)
        return original(self, f, info)
    monkeypatch.setattr(TorchFile, "_read_storage", spy)
    loaded = load_weights(FIX / "micro_checkpoint.pth.tar")
    from numpy_resnext.io.torch.file import open_torch
    tf = open_torch(FIX / "micro_checkpoint.pth.tar")
    n_state = len(tf.obj["state_dict"])
    assert len(read) == n_state < len(tf.storages)                # momentum + EMA left alone
    assert len(loaded.params) + len(loaded.report.ignored) == n_state


@pytest.mark.parametrize("fname,key", [("micro_d_bf16.bin", "bf16"),
                                       ("micro_d_bf16.safetensors", "bf16"),
                                       ("micro_half.pt", "f16")])
def test_reduced_precision_is_widened_as_torch_does(fname, key, expected):
    loaded = load_weights(FIX / fname)
    want = {k.split("/", 1)[1]: v for k, v in expected.items() if k.startswith(key + "/")}
    dtype = "float32" if key == "bf16" else "float16"
    _same(loaded.params, OrderedDict((k, want[k]) for k in loaded.params), dtype)


def test_logits_from_the_torch_file_match_torch(expected):
    model = nrx.build(None, weights=FIX / "micro_zip.pth", dtype="float64")
    logits = model(expected["x"])
    ref = expected["micro/logits"]
    assert np.abs(logits - ref).max() / np.abs(ref).max() <= 1e-12
    deep = nrx.build(MICRO_D, weights=weights64("micro_d"), dtype="float64")(expected["x"])
    ref = expected["micro_d/logits"]
    assert np.abs(deep - ref).max() / np.abs(ref).max() <= 1e-12


@pytest.mark.parametrize("ext", [".pth", ".safetensors", ".pdparams", ".npz", ".pt", ".bin"])
def test_conversions_round_trip_bit_exact(tmp_path, ext):
    from numpy_resnext.io import write_weights
    src = load_weights(FIX / "micro_zip.pth")
    out = tmp_path / f"w{ext}"
    write_weights(out, src.params, src.config, metadata={"source_sha256": "0" * 64})
    back = load_weights(out)
    eps = PADDLE_BN_EPS if ext == ".pdparams" else src.config.bn_eps     # Paddle names: Paddle's epsilon
    assert back.config == src.config.replace(bn_eps=eps) and list(back.params) == list(src.params)
    _same(back.params, src.params, "float64")


def test_convert_command_names_formats_and_metadata(tmp_path, capsys):
    import zipfile
    from numpy_resnext.cli import main
    from numpy_resnext.io.safetensors import read_header
    out = tmp_path / "m.safetensors"
    assert main(["convert", "--weights", str(FIX / "micro_d_lightning.ckpt"), "--output", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "names timm" in printed and "safetensors __metadata__" in printed
    _, meta, _ = read_header(out)
    assert meta["architecture"] == load_weights(out).config.name and len(meta["source_sha256"]) == 64
    pth = tmp_path / "m.pth"
    assert main(["convert", "--weights", str(FIX / "micro.safetensors"), "--output", str(pth)]) == 0
    assert "names torchvision" in capsys.readouterr().out
    assert json.loads(zipfile.ZipFile(pth).comment)["names"] == "torchvision"
    pd = tmp_path / "m.pdparams"
    assert main(["convert", "--weights", str(pth), "--output", str(pd)]) == 0
    assert "names paddle_vision" in capsys.readouterr().out        # no PaddleClas micro net
    assert load_weights(pd).scheme == "paddle_vision"
    bad = tmp_path / "bad.pth"
    assert main(["convert", "--weights", str(FIX / "micro_d_lightning.ckpt"), "--output", str(bad),
                 "--names", "torchvision"]) == 2
    assert "deep (vd) stem" in capsys.readouterr().err and not bad.exists()


def test_finetuned_head_loads_under_the_named_architecture(tmp_path, capsys):
    from numpy_resnext.cli import main
    from numpy_resnext.io import write_weights
    config = nrx.get_arch("ResNet50").replace(num_classes=10)
    params = OrderedDict((k, np.zeros(s, np.float16)) for k, s in param_shapes(config).items())
    src = tmp_path / "finetuned.safetensors"
    write_weights(src, params, config)
    loaded = load_weights(src, arch="resnet50")
    assert loaded.config.num_classes == 10 and loaded.config.depths == (3, 4, 6, 3)
    assert "fine-tuned head: 10 classes taken from the file (ResNet50 has 1000)" in loaded.report.notes
    model = nrx.build("ResNet50", weights=src)
    assert model.config.num_classes == 10
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((1, 3, 32, 32), np.float32))
    assert main(["forward", "resnet50", "--weights", str(src), "--input", str(x),
                 "--output", str(tmp_path / "y.npy")]) == 0
    assert "note: fine-tuned head: 10 classes" in capsys.readouterr().err
    assert np.load(tmp_path / "y.npy").shape == (1, 10)
    out = tmp_path / "ft.npz"
    assert main(["convert", "ResNet50", "--weights", str(src), "--output", str(out)]) == 0
    assert "fine-tuned head: 10 classes" in capsys.readouterr().out
    # the backbone disagreeing too stays an error listing every field
    assert main(["convert", "ResNeXt50_32x4d", "--weights", str(src), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert "cardinality" in err and "num_classes" in err


def test_every_error_is_a_resnext_error_on_truncation(tmp_path):
    for fname in ("micro_zip.pth", "micro_legacy.pth", "micro.safetensors"):
        data = (FIX / fname).read_bytes()
        for cut in sorted({1, 9, 30, 100, 500, len(data) // 2, len(data) - 100, len(data) - 1}):
            p = tmp_path / f"cut{Path(fname).suffix}"
            p.write_bytes(data[:cut])
            with pytest.raises(ResNeXtError):
                load_weights(p)


@pytest.mark.parametrize("dtype", ["float32", "float16"])
@pytest.mark.parametrize("ext", [".pth", ".safetensors"])
def test_reduced_precision_writes_round_trip(tmp_path, ext, dtype):
    from numpy_resnext.io import write_weights
    src = load_weights(FIX / "micro_zip.pth")
    params = OrderedDict((k, v.astype(dtype)) for k, v in src.params.items())
    write_weights(tmp_path / f"w{ext}", params, src.config)
    _same(load_weights(tmp_path / f"w{ext}").params, params, dtype)


def test_sharded_torch_bins_read_through_their_index(tmp_path):
    """pytorch_model.bin.index.json: the same weight_map, .bin shards (torch.save files)."""
    from numpy_resnext.io.torch.save import write_torch_zip
    src = load_weights(FIX / "micro_zip.pth")
    names = list(src.params)
    shards = {"pytorch_model-00001-of-00002.bin": names[:10],
              "pytorch_model-00002-of-00002.bin": names[10:]}
    for shard, keys in shards.items():
        write_torch_zip(tmp_path / shard, OrderedDict((k, src.params[k]) for k in keys))
    index = {"weight_map": {k: shard for shard, keys in shards.items() for k in keys}}
    (tmp_path / "pytorch_model.bin.index.json").write_text(json.dumps(index))
    (tmp_path / "config.json").write_text(json.dumps({"architecture": "micro"}))
    for source in (tmp_path, tmp_path / "pytorch_model.bin.index.json"):
        loaded = load_weights(source, arch=MICRO)       # 'micro' is no architecture it knows
        _same(loaded.params, src.params, "float64")
        assert any("sharded: 27 tensors in 2 files" in n for n in loaded.report.notes)
    wrapped = tmp_path / "wrapped"                 # names as a DataParallel model saved them
    wrapped.mkdir()
    for shard, keys in shards.items():
        write_torch_zip(wrapped / shard, OrderedDict((f"module.{k}", src.params[k]) for k in keys))
    (wrapped / "pytorch_model.bin.index.json").write_text(json.dumps(
        {"weight_map": {f"module.{k}": v for k, v in index["weight_map"].items()}}))
    loaded = load_weights(wrapped, arch=MICRO)          # was: shard 1 "lacks ['module.conv1...']"
    _same(loaded.params, src.params, "float64")
    assert any("module." in n for n in loaded.report.notes), loaded.report.notes
    index["weight_map"]["fc.bias"] = "pytorch_model-00001-of-00002.bin"     # not in that shard
    (tmp_path / "pytorch_model.bin.index.json").write_text(json.dumps(index))
    with pytest.raises(ResNeXtError, match=r"lacks \['fc.bias'\]"):
        load_weights(tmp_path)
