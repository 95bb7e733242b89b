"""Self-check of the SE-ResNeXt oracles (tests/_se_oracle.py): runs every model once.

Per model: the framework, trainable parameters, BN running-statistic values, state_dict
entries, captured tensors, SE blocks, seconds, the spread of the SE gates, and whether every
value is finite. Then the pairs that must agree because they are the same network with the
same drawn weights (PaddleClas and timm name the same layers in the same order), and the
legacy SENet models, whose stem max-pool differs (3x3/2, ceil mode, no padding).

    python reference/se_oracle_check.py                 # every model, 2x3x67x45
    python reference/se_oracle_check.py --models seresnext50_32x4d SE_ResNeXt50_32x4d --shape 1x3x45x67
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
import _se_oracle as so  # noqa: E402

# (PaddleClas, timm): the same architecture, so the same draws give the same logits
SAME = [("SE_ResNeXt50_32x4d", "seresnext50_32x4d"), ("SE_ResNeXt101_32x4d", "seresnext101_32x4d")]
LEGACY = [("seresnext50_32x4d", "legacy_seresnext50_32x4d")]
PADDLE_EPS = float(np.float32(1e-5))          # what Paddle's float64 BatchNorm adds to the variance


def rel(a, b):
    return float(np.abs(a - b).max() / np.abs(b).max())


def first_bn_epsilon(o):
    """Which epsilon reproduces the first stem BN: {eps: rel err} for 1e-5 and float32(1e-5)."""
    if "conv._conv" in o.tensors:                                     # PaddleClas 50/101: BN+ReLU fused
        conv, bn, out, relu = "conv._conv", "conv._batch_norm", "conv._batch_norm", True
        fields = ("weight", "bias", "_mean", "_variance")
    elif "conv1_1._conv" in o.tensors:                                # PaddleClas three-conv stems
        conv, bn, out, relu = "conv1_1._conv", "conv1_1._batch_norm", "conv1_1._batch_norm", True
        fields = ("weight", "bias", "_mean", "_variance")
    elif "layer0.conv1" in o.tensors:                                 # legacy SENet
        conv, bn, out, relu = "layer0.conv1", "layer0.bn1", "layer0.bn1", False
        fields = ("weight", "bias", "running_mean", "running_var")
    elif "conv1.0" in o.tensors:                                      # timm deep / tiered stem
        conv, bn, out, relu = "conv1.0", "conv1.1", "conv1.1", False
        fields = ("weight", "bias", "running_mean", "running_var")
    else:                                                             # timm 7x7 stem
        conv, bn, out, relu = "conv1", "bn1", "bn1", False
        fields = ("weight", "bias", "running_mean", "running_var")
    x = o.tensors[conv]
    w, b, m, v = (o.params[f"{bn}.{f}"][:, None, None] for f in fields)
    errs = {}
    for eps in (1e-5, float(np.float32(1e-5))):
        y = (x - m) / np.sqrt(v + eps) * w + b
        errs[eps] = rel(np.maximum(y, 0) if relu else y, o.tensors[out])
    return errs


def _decades(o):
    """The widest spread (log10 max/min) of one BN's running variances."""
    return max(np.log10(v.max() / v.min()) for k, v in o.params.items()
               if k.endswith(("running_var", "_variance")))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--models", nargs="*", default=list(so.MODELS))
    p.add_argument("--shape", default="x".join(map(str, so.SHAPE)))
    p.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    shape = tuple(int(s) for s in a.shape.split("x"))
    got = {}
    print(f"{'model':28} {'trainable':>11} {'BN stats':>8} {'keys':>5} {'tensors':>7} {'SE':>3} "
          f"{'gates in (.05,.95)':>18} {'finite':>6} {'seconds':>8}")
    for name in a.models:
        t = time.perf_counter()
        o = so.oracle(name, shape, a.seed)
        wall = time.perf_counter() - t
        got[name] = o
        stats = sum(v.size for k, v in o.params.items() if k not in set(o.trainable))
        gates = np.concatenate([o.tensors[r["gate"]].ravel() for r in o.se.values()])
        finite = all(np.isfinite(v).all() for v in o.tensors.values()) and np.isfinite(o.logits).all()
        print(f"{name:28} {so.trainable_count(o):>11,} {stats:>8,} {len(o.params):>5} {len(o.tensors):>7} "
              f"{len(o.se):>3} {np.mean((gates > 0.05) & (gates < 0.95)):>18.2f} {str(finite):>6} "
              f"{wall:>8.1f}")
        bugs = port_bugs(o)
        print("  port bugs, first SE block: " + "; ".join(f"{b} changes {role} by {e:.2f}"
                                                          for b, (role, e) in bugs.items()))
        eps = first_bn_epsilon(o)
        print("  first BN recomputed in NumPy: " + ", ".join(f"eps {e!r}: {r:.1e}" for e, r in eps.items())
              + f"; running_var spans {_decades(o):.1f} decades")
        for note in o.notes:
            print(f"  note: {note}")
    for pair in SAME + LEGACY:
        if all(n in got for n in pair):
            same = "same network" if pair in SAME else "differs only in the stem max-pool"
            print(f"{pair[0]} vs {pair[1]} ({same}): logits differ by "
                  f"{rel(got[pair[0]].logits, got[pair[1]].logits):.2e} relative")
    for paddle_name, timm_name in SAME:
        if paddle_name in got:
            cross_check(got[paddle_name], so.oracle(timm_name, shape, a.seed, bn_eps=PADDLE_EPS))


def port_bugs(o, block=None):
    """{bug: (tensor role where it shows first, relative change there)} for one SE block
    (default the first), computed in NumPy from the captured tensors and weights."""
    roles = o.se[block or next(iter(o.se))]
    t = {r: o.tensors[k] for r, k in roles.items()}
    n, c = t["input"].shape[:2]
    pooled = t["pool"].reshape(n, c)                                      # N, C
    w1, b1 = so.fc_matrix(o, roles["reduce"]), o.params[f"{roles['reduce']}.bias"]
    r = w1.shape[0]
    reduce = t["reduce"].reshape(n, r)
    not_transposed = w1.T.copy().reshape(r, c)                            # [in, out] memory read as [out, in]
    shortcut = t["add"] - t["scale"]                                      # N, C, H, W
    return {
        "hard-sigmoid for sigmoid": ("gate", rel(np.clip(t["expand"] / 6 + 0.5, 0, 1), t["gate"])),
        "squeeze by max": ("pool", rel(t["input"].max(axis=(2, 3)), pooled)),
        "reduce weight not transposed": ("reduce", rel(pooled @ not_transposed.T + b1, reduce)),
        "SE after the add": ("pool", rel((t["input"] + shortcut).mean(axis=(2, 3)), pooled)),
    }


def cross_check(p, t):
    """A PaddleClas oracle against the timm oracle of the same network with Paddle's epsilon:
    the logits and every SE role of every block."""
    errors = so.twin_errors(p, t)
    (where, _), worst = max(errors.items(), key=lambda kv: kv[1])
    print(f"{p.name} vs {t.name} with eps {PADDLE_EPS!r}: logits {rel(p.logits, t.logits):.1e}, "
          f"worst of {len(errors)} SE-role tensors {worst:.1e} ({where})")


if __name__ == "__main__":
    main()
