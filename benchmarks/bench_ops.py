"""Where the forward's time goes, op kind by op kind, in NumPy and in torch, in one run.

    python benchmarks/bench_ops.py                                  # ResNeXt50_32x4d, batch 1
    python benchmarks/bench_ops.py --batch 8 --arch ResNeXt101_32x8d_wsl --rounds 9

Kinds: 1x1 convolutions, grouped 3x3 convolutions, the stem's 7x7 convolution, BatchNorm,
ReLU, pooling, the residual addition ("add"; in torch a plain tensor addition inside the
block, not a module, so it falls into "other"), the head. NumPy's ops are timed by wrapping
the forward walk's ops (numpy_resnext.walk.ArrayOps); torch's by pre/post hooks on its
leaf modules, in channels-last memory (NumPy's layout) under torch.no_grad. The two
alternate round by round in the same process (NumPy's OpenBLAS and torch's threads get a
pause between them to fall asleep); the table shows medians of the per-round sums, the
numpy/torch ratio per kind, and "if each kind ran at the faster of the two": the total
the NumPy forward would take if only the kinds where torch is faster were replaced by
torch's times, i.e. how far each kind's gap explains the whole. Hand-run, never a test.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_forward import cpu_model, torch_resnext  # noqa: E402

from numpy_resnext.model import build  # noqa: E402
from numpy_resnext.walk import ArrayOps, walk  # noqa: E402


def conv_kind(kernel, groups):
    return "conv grouped" if groups > 1 else f"conv {kernel}x{kernel}"


class TimedOps(ArrayOps):
    """ArrayOps that add each op's wall time to ``self.times[kind]``."""

    def __init__(self, params):
        super().__init__(params)
        self.times = collections.defaultdict(float)

    def _timed(self, kind, fn, *args):
        t = time.perf_counter()
        out = fn(*args)
        self.times[kind] += time.perf_counter() - t
        return out

    def conv(self, x, layer):
        return self._timed(conv_kind(layer.kernel, layer.groups), super().conv, x, layer)

    def bn(self, x, layer):
        return self._timed("batchnorm", super().bn, x, layer)

    def relu(self, x, name):
        return self._timed("relu", super().relu, x, name)

    def pool(self, x, pool):
        return self._timed("pool", super().pool, x, pool)

    def add(self, y, shortcut, block):
        return self._timed("add", super().add, y, shortcut, block)

    def global_pool(self, x, head):
        return self._timed("head", super().global_pool, x, head)

    def fc(self, features, head):
        return self._timed("head", super().fc, features, head)


def torch_timer(net):
    """Hooks on every leaf module adding its wall time to the returned dict, by kind."""
    import torch.nn as nn
    times = collections.defaultdict(float)
    kinds = {nn.BatchNorm2d: "batchnorm", nn.ReLU: "relu", nn.MaxPool2d: "pool", nn.AvgPool2d: "pool",
             nn.AdaptiveAvgPool2d: "head", nn.Linear: "head"}
    for mod in net.modules():
        if next(mod.children(), None) is not None:
            continue
        kind = (conv_kind(mod.kernel_size[0], mod.groups) if isinstance(mod, nn.Conv2d)
                else kinds.get(type(mod), type(mod).__name__))

        def pre(m, inp):
            m._t0 = time.perf_counter()

        def post(m, inp, out, kind=kind):
            times[kind] += time.perf_counter() - m._t0
        mod.register_forward_pre_hook(pre)
        mod.register_forward_hook(post)
    return times


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", default="ResNeXt50_32x4d")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--threads", type=int, default=2, help="torch intra-op threads (default 2)")
    p.add_argument("--pause", type=float, default=0.3, help="seconds between the two sides (default 0.3)")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    model = build(args.arch, dtype=args.dtype)
    x = np.random.default_rng(0).standard_normal((args.batch, 3, 224, 224)).astype(args.dtype)
    ops = TimedOps(model.params)
    net = torch_resnext(model.config)
    net.load_state_dict({k: torch.from_numpy(v) for k, v in model.params.items()}, strict=False)
    net = net.to(getattr(torch, args.dtype)).eval().to(memory_format=torch.channels_last)
    xt = torch.from_numpy(x).contiguous(memory_format=torch.channels_last)
    ttimes = torch_timer(net)
    with torch.no_grad():
        check = np.abs(net(xt).numpy() - walk(model.plan, x, ops)).max()
    print(f"bench_ops: {args.arch}, {args.dtype}, batch {args.batch}, {args.rounds} rounds; CPU {cpu_model()}; "
          f"numpy {np.__version__}, torch {torch.__version__} ({args.threads} threads, channels-last); "
          f"max |logit diff| {check:.1e}")
    rounds = {"numpy": collections.defaultdict(list), "torch": collections.defaultdict(list)}
    for _ in range(args.rounds):
        for side in ("numpy", "torch"):
            time.sleep(args.pause)
            times = ops.times if side == "numpy" else ttimes
            if side == "numpy":
                walk(model.plan, x, ops)                         # settle, then the timed run
            else:
                with torch.no_grad():
                    net(xt)
            times.clear()
            t = time.perf_counter()
            if side == "numpy":
                walk(model.plan, x, ops)
            else:
                with torch.no_grad():
                    net(xt)
            total = time.perf_counter() - t
            for kind, v in times.items():
                rounds[side][kind].append(v)
            rounds[side]["other"].append(total - sum(times.values()))
            rounds[side]["total"].append(total)
    med = {side: {k: 1e3 * float(np.median(v)) for k, v in r.items()} for side, r in rounds.items()}
    kinds = sorted(set(med["numpy"]) | set(med["torch"]), key=lambda k: (k == "total", -med["numpy"].get(k, 0)))
    print(f"  {'kind':14s} {'numpy ms':>9s} {'torch ms':>9s} {'ratio':>7s}")
    for k in kinds:
        a, b = med["numpy"].get(k, 0.0), med["torch"].get(k, 0.0)
        ratio = f"{a / b:6.2f}x" if b > 0.05 else f"{'-':>7s}"
        print(f"  {k:14s} {a:9.1f} {b:9.1f} {ratio}")
    best = sum(min(med["numpy"].get(k, 0.0), med["torch"].get(k, 0.0)) if k not in ("add", "other")
               else med["numpy"].get(k, 0.0) for k in kinds if k != "total")
    print(f"  if each kind ran at the faster of the two (add and other as NumPy's): {best:.1f} ms = "
          f"{best / med['torch']['total']:.2f}x torch's total")
    return 0


if __name__ == "__main__":
    sys.exit(main())
