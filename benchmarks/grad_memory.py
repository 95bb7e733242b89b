"""Peak memory (and time) of one forward + backward of a full model, in a fresh process.

    python benchmarks/grad_memory.py ResNeXt50_32x4d --size 224 --batch 2 --dtype float64 [--train]

Prints the process's peak resident set size (ru_maxrss) after the backward, the baseline
after building the model, and the wall time. Run one configuration per process: ru_maxrss
is a high-water mark.
"""

import argparse
import resource
import time

import numpy as np

import numpy_resnext as nrx
from numpy_resnext.grad import gradients


def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024          # Linux: KiB


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("arch", nargs="?", default="ResNeXt50_32x4d")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--dtype", default="float64")
    ap.add_argument("--train", action="store_true")
    a = ap.parse_args()
    model = nrx.build(a.arch, dtype=a.dtype)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((a.batch, 3, a.size, a.size)).astype(a.dtype)
    d = rng.standard_normal((a.batch, model.config.num_classes)).astype(a.dtype)
    base = peak_mb()
    t0 = time.perf_counter()
    g = gradients(model, x, d, train=a.train)
    dt = time.perf_counter() - t0
    grad_mb = sum(v.nbytes for v in g.grads.values()) / 2**20
    print(f"{a.arch} {a.batch}x3x{a.size}x{a.size} {a.dtype} BN {'train' if a.train else 'eval'}: "
          f"peak RSS {peak_mb():.0f} MiB (after build {base:.0f} MiB; gradients {grad_mb:.0f} MiB), "
          f"forward+backward {dt:.1f} s")


if __name__ == "__main__":
    main()
