"""Save, or compare against, float64 results of the engine: logits, every intermediate,
gradients, and single convolutions of the wide-group shapes.

    python benchmarks/check_float64.py save REF.npz       # with the code before a change
    python benchmarks/check_float64.py compare REF.npz    # with the code after it

A speed change must leave float64 results equal to what they were (the figure printed is
the largest |new - old| / max |old| over each tensor). Hand-run, never a test: the saved
reference is this engine's own output, not an oracle.
"""

from __future__ import annotations

import sys

import numpy as np

from numpy_resnext.ops.conv import conv2d, conv2d_backward
from numpy_resnext.grad import gradients
from numpy_resnext.model import build

# (C, G, H, stride): grouped 3x3 convolutions of the wide models (32x48d: Cg = 48 and 32x8d:
# Cg = 8 at stage 1 and the strided first block of stage 2), and ResNeXt50_32x4d's
CONVS = [(1536, 32, 56, 1), (1536, 32, 28, 2), (256, 32, 56, 1), (512, 32, 56, 2), (128, 32, 56, 1),
         (1024, 32, 14, 1)]


def results():
    out = {}
    rng = np.random.default_rng(0)
    model = build("ResNeXt50_32x4d", seed=0, dtype="float64")
    x = rng.standard_normal((1, 3, 224, 224))
    logits, acts = model(x, keep=True)
    out["logits"] = logits
    out.update({f"act:{k}": v for k, v in acts.items()})
    del acts
    x = rng.standard_normal((2, 3, 96, 96))
    dlogits = rng.standard_normal((2, model.config.num_classes))
    for train in (False, True):
        g = gradients(model, x, dlogits, train=train)
        out.update({f"grad{int(train)}:{k}": v for k, v in g.grads.items()})
    for C, G, H, s in CONVS:
        xc = rng.standard_normal((1, C, H, H))
        w = rng.standard_normal((C, C // G, 3, 3))
        y = conv2d(xc, w, s, 1, G)
        dx, dw = conv2d_backward(rng.standard_normal(y.shape), xc, w, s, 1, G)
        out[f"conv{C}_{G}_{H}_{s}"] = y
        out[f"conv{C}_{G}_{H}_{s}:dx"] = dx
        out[f"conv{C}_{G}_{H}_{s}:dw"] = dw
    return out


def main(argv):
    mode, path = argv
    new = results()
    if mode == "save":
        np.savez(path, **new)
        print(f"saved {len(new)} tensors to {path}")
        return 0
    old = np.load(path)
    worst, worst_name = 0.0, None
    for k in old.files:
        a, b = old[k], new[k]
        rel = float(np.abs(a - b).max() / max(np.abs(a).max(), np.finfo(a.dtype).tiny))
        if rel > worst:
            worst, worst_name = rel, k
    print(f"{len(old.files)} tensors; largest |new - old| / max |old| = {worst:.3e} ({worst_name})")
    return 0 if worst <= 1e-13 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
