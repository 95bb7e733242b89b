"""Live lane: torch 2.13 (CPU), safetensors and Paddle 3.3.1 write, read and run the files.

- Four full-size architectures (a plain 32x4d, a 'd' model, a WSL 32x8d, ResNet50) written
  in plain torch with torchvision's / timm's names (reference/torch_capture.py), random
  weights and BN statistics, saved by torch.save; numpy-resnext reads the file without
  torch and its float64 logits and every intermediate agree with torch's to 1e-12.
- Every layout and wrapper, written by torch / safetensors now, reads bit for bit.
- Converted files are loaded by their destination framework: torch.load(weights_only=True)
  + load_state_dict(strict=True), safetensors.torch.load_file, paddle.load + set_state_dict
  on PaddleClas / paddle.vision models, with the same numbers.
- A Paddle-saved ResNeXt101_32x8d_wsl converted to .pth gives in torch the logits Paddle
  gives (1e-10, float64), and a torch-saved one converted to .pdparams gives in Paddle the
  logits torch gives.
"""

import importlib.util
import json
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

import numpy_resnext as nrx
from numpy_resnext.cli import main
from numpy_resnext.golden import compare, golden_dump
from numpy_resnext.io import load_weights
from _scratch import scratch

ROOT = Path(__file__).resolve().parent.parent


def _script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "reference" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tc = _script("torch_capture")

# torch_capture name: (our architecture, intermediate-name map, PaddleClas kind and model)
ARCHS = {"resnext50_32x4d": ("ResNeXt50_32x4d", "torchvision", ("resnext", "ResNeXt50_32x4d")),
         "resnext50d_32x4d": ("ResNeXt50_vd_32x4d", "timm", ("resnext_vd", "ResNeXt50_vd_32x4d")),
         "resnext101_32x8d": ("ResNeXt101_32x8d_wsl", "torchvision",
                              ("resnext101_wsl", "ResNeXt101_32x8d_wsl")),
         "resnet50": ("ResNet50", "torchvision", ("vision", "resnet50"))}
SHAPE = (1, 3, 37, 35)


# PaddleClas's fixed ParamAttr names allow one model per process: Paddle runs in a subprocess
PADDLE_RUN = """
import importlib.util, json, sys
import numpy as np
import paddle
spec = importlib.util.spec_from_file_location("pm", sys.argv[1])
pm = importlib.util.module_from_spec(spec); spec.loader.exec_module(pm)
kind, name, mode, weights, x, out = sys.argv[2:8]
paddle.set_device("cpu")
model = pm.full_model(kind, name)
model.to(dtype="float64")
model.eval()
result = {"paddle": paddle.__version__}
if mode == "save":                          # random weights and BN statistics, saved by Paddle
    pm.randomize(model, 3)
    paddle.save(model.state_dict(), weights)
else:                                       # load a converted file
    missing, unexpected = model.set_state_dict(paddle.load(weights))
    result.update(missing=list(missing), unexpected=list(unexpected))
with paddle.no_grad():
    np.save(out, model(paddle.to_tensor(np.load(x))).numpy())
print(json.dumps(result))
"""


def run_paddle(tmp_path, kind, name, mode, weights, x):
    import subprocess
    import sys
    pytest.importorskip("paddle", reason="the Paddle half needs paddlepaddle==3.3.1")
    xp, out = tmp_path / "x.npy", tmp_path / "paddle_logits.npy"
    np.save(xp, x)
    res = subprocess.run([sys.executable, "-c", PADDLE_RUN, str(ROOT / "reference" / "paddle_models.py"),
                          kind, name, mode, str(weights), str(xp), str(out)],
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr[-3000:]
    return json.loads(res.stdout.strip().splitlines()[-1]), np.load(out)


def rel(a, b):
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / np.abs(np.asarray(b)).max())


@pytest.fixture(scope="module")
def saved(torch, tmp_path_factory):
    """{arch: (path of torch.save(state_dict) float64, torch capture, state dict)}, made lazily."""
    cache = {}
    with scratch(tmp_path_factory, "torch_io_live") as out:
        def get(arch):
            if arch not in cache:
                capture, weights, _ = tc.run(arch, SHAPE, seed=5, input_seed=6)
                model = tc.build(arch)
                tc.load_canonical(model, weights)
                path = out / f"{arch}.pth"
                torch.save(model.state_dict(), path)
                cache[arch] = (path, capture, model)
            return cache[arch]
        yield get


@pytest.mark.torch
@pytest.mark.slow
@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_file_read_without_torch_matches_torch_everywhere(saved, arch):
    path, capture, _ = saved(arch)
    ours_name, map_name, _ = ARCHS[arch]
    model = nrx.build(None, weights=path, dtype="float64")
    assert model.config.name == ours_name
    dump, _ = golden_dump(model, capture["input"])
    report = compare(dump, capture, rtol=1e-12, atol=0.0, name_map=map_name)
    worst = max(r.max_rel for r in report.compared)
    print(f"\n{arch} from torch.save: {len(report.compared)} tensors, worst {worst:.1e}, "
          f"logits {rel(dump['fc'], capture['fc']):.1e}")
    assert report.passed, report.format(show="fail")
    assert len(report.compared) > 100 and rel(dump["fc"], capture["fc"]) <= 1e-12


def _layouts(torch, sd, tmp):
    """{label: path} of every layout and wrapper, written by torch / safetensors."""
    pytest.importorskip("safetensors", reason="the layouts lane needs `pip install safetensors`")
    from safetensors.torch import save_file
    f32 = OrderedDict((k, v.float() if v.is_floating_point() else v) for k, v in sd.items())
    files = {}

    def save(name, obj, legacy=False):
        files[name] = tmp / name
        torch.save(obj, files[name], _use_new_zipfile_serialization=not legacy)
    save("zip.pth", sd)
    save("legacy.pt", sd, legacy=True)
    save("state_dict.pth.tar", {"epoch": 3, "state_dict": sd, "optimizer": {"state": {}, "param_groups": []}})
    save("model.bin", {"model": OrderedDict((f"module.{k}", v) for k, v in sd.items())}, legacy=True)
    save("ema.ckpt", {"state_dict": OrderedDict((f"model.{k}", v) for k, v in sd.items()),
                      "state_dict_ema": OrderedDict((k, v * 0.5 if v.is_floating_point() else v)
                                                    for k, v in sd.items())})
    save("half.pth", OrderedDict((k, v.half() if v.is_floating_point() else v) for k, v in sd.items()))
    save("bf16.pth", OrderedDict((k, v.bfloat16() if v.is_floating_point() else v) for k, v in sd.items()))
    files["single.safetensors"] = tmp / "single.safetensors"
    save_file(f32, files["single.safetensors"])
    hub = tmp / "hub"
    hub.mkdir()
    keys = list(f32)
    wmap = {k: f"model-0000{1 + (i % 2)}-of-00002.safetensors" for i, k in enumerate(keys)}
    for shard in set(wmap.values()):
        save_file(OrderedDict((k, f32[k]) for k in keys if wmap[k] == shard), hub / shard)
    (hub / "model.safetensors.index.json").write_text(json.dumps({"weight_map": wmap}))
    # a config.json without an architecture: one naming a network the tiny tensors are not
    # (resnext50_32x4d, say) is refused (tests/test_declared.py)
    (hub / "config.json").write_text(json.dumps({"global_pool": "avg"}))
    files["hub"] = hub
    return files


@pytest.mark.torch
@pytest.mark.parametrize("arch", ["tiny", "tiny_d"])
def test_every_layout_written_by_torch_reads_bit_for_bit(torch, tmp_path, arch):
    model = tc.build(arch)
    tc.load_canonical(model, tc.make_weights(tc.canonical_shapes(model), 9))
    sd = model.state_dict()
    for label, path in _layouts(torch, sd, tmp_path).items():
        ema = label == "ema.ckpt"
        loaded = load_weights(path, ema=ema)
        want = OrderedDict((k, v) for k, v in sd.items() if v.is_floating_point())
        assert list(loaded.params) == list(want), label
        for k, v in want.items():
            if label.startswith("bf16"):
                v = v.bfloat16().float()
            elif label.startswith("half"):
                v = v.half()
            elif label in ("single.safetensors", "hub"):
                v = v.float()
            elif ema:
                v = v * 0.5
            np.testing.assert_array_equal(loaded.params[k], v.numpy(), err_msg=f"{label}: {k}")
            assert loaded.params[k].dtype == v.numpy().dtype, (label, k)


@pytest.mark.torch
@pytest.mark.slow
@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_destination_frameworks_load_converted_files(torch, saved, arch, tmp_path, capsys):
    pytest.importorskip("safetensors", reason="this lane needs `pip install safetensors`")
    from safetensors.torch import load_file
    path, capture, model = saved(arch)
    x = torch.from_numpy(capture["input"])
    for ext in (".pth", ".safetensors"):
        out = tmp_path / f"w{ext}"
        assert main(["convert", "--weights", str(path), "--output", str(out)]) == 0
        state = torch.load(out, weights_only=True) if ext == ".pth" else load_file(out)
        fresh = tc.build(arch)
        fresh.load_state_dict(state, strict=True)
        with torch.no_grad():
            got = fresh(x).numpy()
        np.testing.assert_array_equal(got, capture["fc"], err_msg=f"{arch} {ext}")
    # and Paddle: PaddleClas (or paddle.vision for ResNet50) accepts the .pdparams
    pdp = tmp_path / "w.pdparams"
    assert main(["convert", "--weights", str(path), "--output", str(pdp)]) == 0
    printed = capsys.readouterr().out
    kind, name = ARCHS[arch][2]
    result, plogits = run_paddle(tmp_path, kind, name, "load", pdp, capture["input"])
    assert not result["missing"] and not result["unexpected"], result
    err = rel(plogits, capture["fc"])
    print(f"\n{arch}: {printed.strip().splitlines()[-1]}\n  paddle vs torch logits {err:.1e}")
    assert err <= 1e-10


@pytest.mark.torch
@pytest.mark.paddle
@pytest.mark.slow
def test_paddle_wsl_to_torch_and_back(torch, tmp_path):
    src = tmp_path / "wsl.pdparams"
    x = tc.make_input((2, 3, 35, 33), 4)
    _, plogits = run_paddle(tmp_path, "resnext101_wsl", "ResNeXt101_32x8d_wsl", "save", src, x)
    pth = tmp_path / "wsl.pth"
    assert main(["convert", "--weights", str(src), "--output", str(pth)]) == 0
    tmodel = tc.build("resnext101_32x8d")
    tmodel.load_state_dict(torch.load(pth, weights_only=True), strict=True)
    with torch.no_grad():
        tlogits = tmodel(torch.from_numpy(x)).numpy()
    forward = rel(tlogits, plogits)
    # the reverse: torch-saved weights -> .pdparams -> PaddleClas's WSL model
    tc.load_canonical(tmodel, tc.make_weights(tc.canonical_shapes(tmodel), 8))
    tsrc = tmp_path / "wsl_torch.pth"
    torch.save(tmodel.state_dict(), tsrc)
    with torch.no_grad():
        tlogits = tmodel(torch.from_numpy(x)).numpy()
    back = tmp_path / "wsl_torch.pdparams"
    assert main(["convert", "--weights", str(tsrc), "--output", str(back)]) == 0
    result, plogits = run_paddle(tmp_path, "resnext101_wsl", "ResNeXt101_32x8d_wsl", "load", back, x)
    assert not result["missing"] and not result["unexpected"], result
    reverse = rel(plogits, tlogits)
    print(f"\nResNeXt101_32x8d_wsl float64: paddle->.pth->torch {forward:.1e}, "
          f"torch->.pdparams->paddle {reverse:.1e}")
    assert forward <= 1e-10 and reverse <= 1e-10
