"""Write reference/fixtures/torch_io/: tiny PyTorch weight files in every layout, made by torch.

The networks are torch_capture.py's one-stage "micro" (torchvision names) and "micro_d"
(timm names, deep stem + avg-pool shortcut), with hashed weights and non-trivial BN
statistics (torch_capture.make_weights). Every file is written by torch itself (or the
safetensors package), so the NumPy readers are tested against the real formats:

=================================  ===============================================================
micro_zip.pth                      torch.save(state_dict), zip format, float64
micro_legacy.pth                   float32, _use_new_zipfile_serialization=False
micro_views.pth                    every float tensor a view into ONE shared storage (offsets),
                                   fc.weight a transposed (non-contiguous) view; float32
micro_views_legacy.pth             the same in the legacy format
micro_checkpoint.pth.tar           {'epoch', 'arch', 'state_dict' (module. prefix), 'optimizer'
                                   (SGD momentum buffers), 'state_dict_ema' (= 0.5 x weights)}
micro_d_lightning.ckpt             {'epoch', 'global_step', 'state_dict' (model. prefix),
                                   'model_ema' (= 0.25 x weights)}, legacy format
micro_half.pt                      float16 state dict
micro_d_bf16.bin                   bfloat16 state dict, legacy format
micro.safetensors                  safetensors.torch.save_file, float32, metadata
micro_d_bf16.safetensors           bfloat16
hub/                               config.json + model.safetensors.index.json + two shards (micro_d)
expected.npz                       "x" an input, "<net>/logits" torch's float64 logits, and the
                                   reduced-precision weights as torch widens them (.float()):
                                   "bf16/<name>", "f16/<name>"
=================================  ===============================================================

The float64 weights are not stored: tc.make_weights rebuilds them bit for bit without
torch (the manifest records their params_sha256), and every float32 file holds them
rounded by torch's .float() (IEEE round-to-nearest-even, as NumPy's astype)
=================================  ===============================================================

    python reference/torch_io_fixtures.py            # rewrites reference/fixtures/torch_io/
"""

from __future__ import annotations

import json
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import torch_capture as tc  # noqa: E402
from _manifest import FIXTURES, file_entry, params_sha256, save_npz, update_manifest, write_bytes  # noqa: E402

PREFIX = "torch_io/"
OUT = FIXTURES / "torch_io"
SEEDS = {"micro": 31, "micro_d": 32}
INPUT_SHAPE, INPUT_SEED = (2, 3, 13, 11), 33


def state(arch):
    """(torch model in float64 with the hashed weights, its state_dict incl. counters)."""
    model = tc.build(arch)
    tc.load_canonical(model, tc.make_weights(tc.canonical_shapes(model), SEEDS[arch]))
    return model, model.state_dict()


def cast(sd, dtype, scale=1.0):
    return OrderedDict((k, (v * scale).to(dtype) if v.is_floating_point() else v.clone())
                       for k, v in sd.items())


def shared_views(sd, dtype):
    """The same values, every float tensor a slice of one storage; fc.weight transposed."""
    import torch
    floats = [k for k, v in sd.items() if v.is_floating_point()]
    flat = torch.cat([sd[k].reshape(-1).to(dtype) for k in floats])
    out, at = OrderedDict(), 0
    for k, v in sd.items():
        if k in floats:
            n = v.numel()
            out[k] = flat[at:at + n].view(v.shape)
            at += n
        else:
            out[k] = v.clone()
    fc = sd["fc.weight"].to(dtype).t().contiguous()          # (in, out) storage
    out["fc.weight"] = fc.t()                                # (out, in) view, strides (1, out)
    assert not out["fc.weight"].is_contiguous()
    return out


def write(name, obj, legacy=False):
    import torch
    path = OUT / name
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp, _use_new_zipfile_serialization=not legacy)
    tmp.replace(path)
    return path


def main():
    import safetensors
    import torch
    from safetensors.torch import save_file
    OUT.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    micro, sd = state("micro")
    micro_d, sdd = state("micro_d")
    x = tc.make_input(INPUT_SHAPE, INPUT_SEED)
    with torch.no_grad():
        logits = {k: m(torch.from_numpy(x)).numpy() for k, m in (("micro", micro), ("micro_d", micro_d))}
    files = [write("micro_zip.pth", sd),
             write("micro_legacy.pth", cast(sd, torch.float32), legacy=True),
             write("micro_views.pth", shared_views(sd, torch.float32)),
             write("micro_views_legacy.pth", shared_views(sd, torch.float32), legacy=True)]
    # a training checkpoint: DataParallel prefix, optimizer state, an EMA copy
    net = tc.build("micro").float()
    net.load_state_dict(cast(sd, torch.float32))
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    net.train()
    net(torch.from_numpy(x).float()).sum().backward()
    opt.step()
    f32 = cast(sd, torch.float32)
    files.append(write("micro_checkpoint.pth.tar", {
        "epoch": 7, "arch": "micro", "best_acc1": 0.25,
        "state_dict": OrderedDict((f"module.{k}", v) for k, v in f32.items()),
        "optimizer": opt.state_dict(),
        "state_dict_ema": OrderedDict((f"module.{k}", v) for k, v in cast(sd, torch.float32, 0.5).items())}))
    d32 = cast(sdd, torch.float32)
    files.append(write("micro_d_lightning.ckpt", {
        "epoch": 1, "global_step": 10, "pytorch-lightning_version": "2.4.0",
        "state_dict": OrderedDict((f"model.{k}", v) for k, v in d32.items()),
        "model_ema": cast(sdd, torch.float32, 0.25)}, legacy=True))
    files.append(write("micro_half.pt", cast(sd, torch.float16)))
    bf = cast(sdd, torch.bfloat16)
    files.append(write("micro_d_bf16.bin", bf, legacy=True))
    meta = {"format": "pt", "note": "written by reference/torch_io_fixtures.py"}
    save_file(OrderedDict((k, v.contiguous()) for k, v in f32.items()), OUT / "micro.safetensors", meta)
    save_file(bf, OUT / "micro_d_bf16.safetensors")
    files += [OUT / "micro.safetensors", OUT / "micro_d_bf16.safetensors"]
    # a Hugging Face-style directory: config.json, an index and two shards
    hub = OUT / "hub"
    hub.mkdir(exist_ok=True)
    keys = list(d32)
    shards = {"model-00001-of-00002.safetensors": keys[: len(keys) // 2],
              "model-00002-of-00002.safetensors": keys[len(keys) // 2:]}
    weight_map = {}
    for shard, names in shards.items():
        save_file(OrderedDict((k, d32[k]) for k in names), hub / shard, {"format": "pt"})
        weight_map.update({k: shard for k in names})
        files.append(hub / shard)
    total = sum(v.numel() * v.element_size() for v in d32.values())
    write_bytes(hub / "model.safetensors.index.json",
                json.dumps({"metadata": {"total_size": total}, "weight_map": weight_map},
                           indent=2).encode())
    write_bytes(hub / "config.json", json.dumps({"architecture": "micro_d", "num_classes": 3,
                                                 "num_features": 256}, indent=2).encode())
    files += [hub / "model.safetensors.index.json", hub / "config.json"]
    expected = {"x": x}
    for net_name in ("micro", "micro_d"):
        expected[f"{net_name}/logits"] = logits[net_name]
    expected.update({f"bf16/{k}": v.float().numpy() for k, v in bf.items() if v.is_floating_point()})
    expected.update({f"f16/{k}": v.numpy() for k, v in cast(sd, torch.float16).items()
                     if v.is_floating_point()})
    save_npz(OUT / "expected.npz", expected, compressed=True)
    files.append(OUT / "expected.npz")
    facts = dict(script="reference/torch_io_fixtures.py",
                 command="python reference/torch_io_fixtures.py", torch=torch.__version__,
                 safetensors=safetensors.__version__, numpy=np.__version__,
                 weights_seeds=SEEDS, weights_sha256={
                     k: params_sha256(OrderedDict((n, v.numpy()) for n, v in s.items()
                                                  if v.is_floating_point()))
                     for k, s in (("micro", sd), ("micro_d", sdd))}, input_seed=INPUT_SEED, input_shape=list(INPUT_SHAPE))
    entries = {}
    for path in files:
        path.chmod(0o644)
        rel = path.relative_to(FIXTURES).as_posix()
        entries[rel] = file_entry(path, **facts)
        print(f"{rel}: {path.stat().st_size / 1e3:.1f} kB")
    update_manifest(PREFIX, entries, replace=True)
    print(f"total {sum(p.stat().st_size for p in files) / 1e3:.0f} kB")


if __name__ == "__main__":
    main()
