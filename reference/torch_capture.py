"""Capture every module output of ResNeXt networks built in plain torch, under torch's names.

The networks are written here module by module with torchvision's names (ResNet/ResNeXt:
``conv1 bn1 relu maxpool layerL.i.{conv,bn}{1,2,3} .relu .downsample.{0,1} avgpool fc``)
or timm's (deep stem ``conv1.0..6 bn1 act1``, blocks ``act1 act2 act3``, avg-pool shortcut
``downsample.{0,1,2}``, ``global_pool.{pool,flatten}``), so their ``state_dict`` keys are
numpy-resnext's canonical parameter names and one weight dict feeds both. torchvision and
timm themselves are not needed.

Every module output is recorded with a forward hook, in float64, in the order the hooks
fire (a container fires after its children). A module called k > 1 times in one forward
(torchvision's Bottleneck reuses ``relu`` three times) is recorded as ``NAME#1`` ...
``NAME#k`` in call order; a module called once keeps its name. The model input is stored as
``input``. Outputs are cloned at hook time because the ReLUs and ``out += identity`` work
in place.

Weights and inputs come from :func:`hashed_uniform`, a counter-based generator (splitmix64
in integer NumPy arithmetic) that gives bit-identical values on every platform and NumPy
version, so the tests can rebuild the same weights without torch and the fixtures need not
store them.

Usage::

    python reference/torch_capture.py --arch resnext50_32x4d --size 64 --out cap.npz
    python reference/torch_capture.py --arch resnext50d_32x4d --weights canonical.npz --out cap.npz
    python reference/torch_capture.py --fixtures      # rewrite reference/fixtures/torch/*
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import zlib
from collections import Counter, OrderedDict
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))              # _manifest, also when loaded by file path

from _manifest import FIXTURES, file_entry, save_npy, save_npz, update_manifest  # noqa: E402
from numpy_resnext.golden import params_sha256  # noqa: E402

MANIFEST_PREFIX = "torch/"

# name: (depths, cardinality, base_width, stem, stem_width, deep_stem_width, num_classes);
# stem True: the deep stem + avg-down shortcut (timm's names), False: the plain 7x7/2 stem,
# "cifar": one 3x3/1 conv without max-pool (the paper's CIFAR form, torchvision's names)
ARCHS = {
    "resnext50_32x4d": ((3, 4, 6, 3), 32, 4, False, 64, 32, 1000),
    "resnext101_32x8d": ((3, 4, 23, 3), 32, 8, False, 64, 32, 1000),
    "resnext50d_32x4d": ((3, 4, 6, 3), 32, 4, True, 64, 32, 1000),
    # tiny networks for the committed fixtures (two stages: a stride-2 block and, for the
    # deep one, the avg-pool shortcut)
    "tiny": ((1, 1), 4, 2, False, 16, 8, 10),
    "tiny_d": ((1, 1), 4, 2, True, 16, 8, 10),
    # ResNet50 (C = 1, d = 64) and one-stage networks for the weight-file fixtures
    "resnet50": ((3, 4, 6, 3), 1, 64, False, 64, 32, 1000),
    "micro": ((1,), 2, 2, False, 8, 8, 3),
    "micro_d": ((1,), 2, 2, True, 8, 4, 3),
    # train-demo's network (numpy_resnext.paper.digits.DIGITS_CONFIG)
    "digits_cifar": ((1, 1, 1), 4, 4, "cifar", 16, 8, 10),
}

# the committed fixtures: file -> (arch, input shape, weight seed, input seed)
FIXTURE_SPECS = {
    "tiny_torchvision.npz": ("tiny", (2, 3, 8, 8), 1, 101),
    "tiny_timm_d.npz": ("tiny_d", (1, 3, 12, 12), 2, 102),
}


# --- deterministic values, no torch needed -----------------------------------------------
def hashed_uniform(seed: int, key: str, n: int) -> np.ndarray:
    """n float64 values in [0, 1): splitmix64 of (seed, crc32(key), index), bit-exact anywhere."""
    base = np.uint64(((seed & 0xFFFFFFFF) << 32) | zlib.crc32(key.encode()))
    with np.errstate(over="ignore"):
        z = np.arange(n, dtype=np.uint64) + base * np.uint64(0x9E3779B97F4A7C15)
        z = z + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


def make_weights(shapes, seed: int) -> "OrderedDict[str, np.ndarray]":
    """Float64 weights for {name: shape}: He-scaled uniform convs, non-trivial BN statistics
    (scale and variance in [0.5, 1.5), offset and mean in [-0.2, 0.2)), fc in +-1/sqrt(in)."""
    out = OrderedDict()
    for name, shape in shapes.items():
        shape = tuple(int(s) for s in shape)
        u = hashed_uniform(seed, name, math.prod(shape)).reshape(shape)
        if len(shape) == 4:                                          # K, C/G, R, S
            fan_in = shape[1] * shape[2] * shape[3]
            v = (2 * u - 1) * math.sqrt(3.0) * math.sqrt(2.0 / fan_in)
        elif name.startswith("fc."):
            fan_in = shapes["fc.weight"][1]
            v = (2 * u - 1) / math.sqrt(fan_in)
        elif name.endswith((".weight", ".running_var")):
            v = 0.5 + u
        else:                                                        # BN bias, running_mean
            v = 0.4 * (u - 0.5)
        out[name] = v
    return out


def make_input(shape, seed: int) -> np.ndarray:
    """A float64 input in [-2, 2)."""
    return 4.0 * (hashed_uniform(seed, "input", math.prod(shape)).reshape(shape) - 0.5)


# --- the networks (torch imported lazily so the helpers above work without it) --------------
def build(arch: str, depths=None):
    """A torch ResNeXt with torchvision's (plain) or timm's (deep) module names, float64."""
    import torch
    from torch import nn

    depths_, groups, base_width, stem, stem_width, deep_w, num_classes = ARCHS[arch]
    depths = depths or depths_
    deep, cifar = stem is True, stem == "cifar"
    timm = deep

    def conv(cin, cout, k, stride=1, g=1):
        return nn.Conv2d(cin, cout, k, stride=stride, padding=k // 2, groups=g, bias=False)

    class Bottleneck(nn.Module):
        def __init__(self, cin, planes, stride, downsample):
            super().__init__()
            width = int(planes * (base_width / 64.0)) * groups
            self.conv1, self.bn1 = conv(cin, width, 1), nn.BatchNorm2d(width)
            if timm:
                self.act1 = nn.ReLU(inplace=True)
            self.conv2, self.bn2 = conv(width, width, 3, stride, groups), nn.BatchNorm2d(width)
            if timm:
                self.act2 = nn.ReLU(inplace=True)
            self.conv3, self.bn3 = conv(width, planes * 4, 1), nn.BatchNorm2d(planes * 4)
            if timm:
                self.act3 = nn.ReLU(inplace=True)
            else:
                self.relu = nn.ReLU(inplace=True)         # torchvision: one ReLU, called 3 times
            self.downsample = downsample

        def forward(self, x):
            a1, a2, a3 = (self.act1, self.act2, self.act3) if timm else (self.relu,) * 3
            out = a1(self.bn1(self.conv1(x)))
            out = a2(self.bn2(self.conv2(out)))
            out = self.bn3(self.conv3(out))
            identity = x if self.downsample is None else self.downsample(x)
            out += identity
            return a3(out)

    class GlobalPool(nn.Module):                          # timm's SelectAdaptivePool2d
        def __init__(self):
            super().__init__()
            self.pool, self.flatten = nn.AdaptiveAvgPool2d(1), nn.Flatten(1)

        def forward(self, x):
            return self.flatten(self.pool(x))

    class ResNet(nn.Module):
        def __init__(self):
            super().__init__()
            if deep:
                self.conv1 = nn.Sequential(
                    conv(3, deep_w, 3, 2), nn.BatchNorm2d(deep_w), nn.ReLU(inplace=True),
                    conv(deep_w, deep_w, 3), nn.BatchNorm2d(deep_w), nn.ReLU(inplace=True),
                    conv(deep_w, stem_width, 3))
                self.bn1, self.act1 = nn.BatchNorm2d(stem_width), nn.ReLU(inplace=True)
            else:
                self.conv1 = conv(3, stem_width, 3, 1) if cifar else conv(3, stem_width, 7, 2)
                self.bn1, self.relu = nn.BatchNorm2d(stem_width), nn.ReLU(inplace=True)
            self.maxpool = nn.Identity() if cifar else nn.MaxPool2d(3, 2, 1)
            cin = stem_width
            for s, depth in enumerate(depths):
                planes, blocks = 64 * 2 ** s, []
                for i in range(depth):
                    stride = 2 if (s > 0 and i == 0) else 1
                    down = None
                    if i == 0:
                        proj = [nn.Conv2d(cin, planes * 4, 1, stride=1 if deep else stride, bias=False),
                                nn.BatchNorm2d(planes * 4)]
                        if deep:                          # timm avg_down: pool, then 1x1 conv
                            pool = (nn.AvgPool2d(2, 2, ceil_mode=True, count_include_pad=False)
                                    if stride > 1 else nn.Identity())
                            proj = [pool] + proj
                        down = nn.Sequential(*proj)
                    blocks.append(Bottleneck(cin, planes, stride, down))
                    cin = planes * 4
                setattr(self, f"layer{s + 1}", nn.Sequential(*blocks))
            if deep:
                self.global_pool = GlobalPool()
            else:
                self.avgpool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(cin, num_classes)
            self.stages = len(depths)

        def forward(self, x):
            x = self.conv1(x)
            x = self.act1(self.bn1(x)) if deep else self.relu(self.bn1(x))
            x = self.maxpool(x)
            for s in range(self.stages):
                x = getattr(self, f"layer{s + 1}")(x)
            x = self.global_pool(x) if deep else torch.flatten(self.avgpool(x), 1)
            return self.fc(x)

    return ResNet().double().eval()


def canonical_shapes(model) -> "OrderedDict[str, tuple]":
    """The model's state_dict names and shapes, without torch's BN batch counters."""
    return OrderedDict((k, tuple(v.shape)) for k, v in model.state_dict().items()
                       if not k.endswith("num_batches_tracked"))


def load_canonical(model, weights):
    """Copy {canonical name: array} into the model; every name and shape must match."""
    import torch
    shapes = canonical_shapes(model)
    missing = [k for k in shapes if k not in weights]
    unexpected = [k for k in weights if k not in shapes]
    wrong = [f"{k}: {tuple(weights[k].shape)} vs {shapes[k]}" for k in shapes
             if k in weights and tuple(weights[k].shape) != shapes[k]]
    if missing or unexpected or wrong:
        raise SystemExit(f"weights do not fit: missing {missing[:5]}, unexpected {unexpected[:5]}, "
                         f"wrong shape {wrong[:5]}")
    state = {k: torch.from_numpy(np.asarray(weights[k], dtype=np.float64)) for k in shapes}
    model.load_state_dict(state, strict=False)           # only num_batches_tracked left out


def capture(model, x: np.ndarray) -> "OrderedDict[str, np.ndarray]":
    """{input, every module output} in hook order, float64, repeated modules as NAME#k."""
    import torch
    calls = []
    hooks = [m.register_forward_hook(
                 lambda mod, inp, out, name=name: calls.append((name, out.detach().clone())))
             for name, m in model.named_modules() if name]
    try:
        with torch.no_grad():
            model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64)))
    finally:
        for h in hooks:
            h.remove()
    counts, seen = Counter(n for n, _ in calls), Counter()
    out = OrderedDict([("input", np.array(x, dtype=np.float64))])
    for name, t in calls:
        if counts[name] > 1:
            seen[name] += 1
            name = f"{name}#{seen[name]}"
        out[name] = t.numpy()
    return out


def run(arch, input_shape, seed=0, input_seed=100, weights=None):
    """(capture, weights used, facts) for one network and input."""
    import torch
    torch.manual_seed(seed)                               # nothing random is drawn from torch
    model = build(arch)
    if weights is None:
        weights = make_weights(canonical_shapes(model), seed)
    load_canonical(model, weights)
    x = make_input(input_shape, input_seed)
    facts = {"torch": torch.__version__, "numpy": np.__version__, "arch": arch,
             "config": dict(zip(("depths", "cardinality", "base_width", "deep", "stem_width",
                                 "deep_stem_width", "num_classes"), ARCHS[arch])),
             "input_shape": list(input_shape), "dtype": "float64", "weights_seed": seed,
             "input_seed": input_seed, "weights_sha256": params_sha256(weights)}
    return capture(model, x), weights, facts


# --- files ---------------------------------------------------------------------------------
def write_fixtures():
    out_dir = FIXTURES / "torch"
    out_dir.mkdir(parents=True, exist_ok=True)
    entries = {}
    for fname, (arch, shape, seed, input_seed) in FIXTURE_SPECS.items():
        cap, _, facts = run(arch, shape, seed, input_seed)
        path = out_dir / fname
        save_npz(path, cap, compressed=True)
        facts = file_entry(path, **facts)
        facts.update(script="reference/torch_capture.py", command="python reference/torch_capture.py --fixtures",
                     tensors=len(cap),
                     what="forward-hook outputs under torch module names (repeated modules as NAME#k), "
                          "weights = make_weights(state_dict shapes, weights_seed), "
                          "input = make_input(input_shape, input_seed)")
        entries[f"{MANIFEST_PREFIX}{fname}"] = facts
        print(f"{path.relative_to(HERE.parent)}: {len(cap)} tensors, {path.stat().st_size / 1e3:.0f} kB")
    update_manifest(MANIFEST_PREFIX, entries)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="example:\n  python reference/torch_capture.py --arch "
                                       "resnext50_32x4d --size 64 --out cap.npz --save-weights w.npz")
    p.add_argument("--arch", choices=sorted(ARCHS), default="resnext50_32x4d")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--size", type=int, default=224, help="input height = width")
    p.add_argument("--seed", type=int, default=0, help="seed of the hashed weights")
    p.add_argument("--input-seed", type=int, default=100)
    p.add_argument("--weights", help="an .npz of canonical weights to load instead of hashed ones")
    p.add_argument("--out", help="the capture .npz to write")
    p.add_argument("--save-weights", help="also write the weights used as an .npz (canonical names)")
    p.add_argument("--save-input", help="also write the input as an .npy")
    p.add_argument("--fixtures", action="store_true", help="rewrite reference/fixtures/torch/*")
    args = p.parse_args(argv)
    if args.fixtures:
        write_fixtures()
        return 0
    if not args.out:
        p.error("--out is required (or --fixtures)")
    weights = None
    if args.weights:
        with np.load(args.weights, allow_pickle=False) as f:
            weights = OrderedDict((k, f[k]) for k in f.files)
    cap, weights, facts = run(args.arch, (args.batch, 3, args.size, args.size), args.seed,
                              args.input_seed, weights)
    save_npz(args.out, cap)
    if args.save_weights:
        save_npz(args.save_weights, weights)
    if args.save_input:
        save_npy(args.save_input, cap["input"])
    print(json.dumps(facts, indent=1))
    print(f"{args.out}: {len(cap)} tensors")
    return 0


if __name__ == "__main__":
    sys.exit(main())
