"""``numpy-resnext demo``: build a model, push a seeded image through it, report what happened.

Needs no files and no network: the weights and the input come from seeds.
"""

import time

import numpy as np

from ..checksums import tensor_sha256
from ..init import DEFAULT_INIT, INITS
from ..model import build
from ..plan import layer_plan
from ..shapes import check_compute, totals
from ._common import COUNT, SEED, SIZE, add_command, integer


def add_parser(sub):
    p = add_command(sub, "demo", "run a model on a seeded input (no files needed) and report",
                    "numpy-resnext demo --arch ResNeXt50_vd_32x4d --batch 2 --dtype float64")
    p.add_argument("--arch", default="ResNeXt50_32x4d", help="architecture (default ResNeXt50_32x4d)")
    p.add_argument("--batch", type=COUNT, default=1, help="images in the seeded input batch (default 1)")
    p.add_argument("--size", type=SIZE, default=224, help="input height and width (default 224)")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"],
                   help="precision of weights and input (default float32)")
    p.add_argument("--seed", type=SEED, default=0, help="seed of weights and input (default 0)")
    p.add_argument("--init", default=DEFAULT_INIT, choices=INITS,
                   help="seeded weights: calibrated BN statistics (default) or identity BatchNorm")
    p.add_argument("--repeat", type=integer(1, 1000), default=3,
                   help="timed runs after a warm-up (median shown; default 3)")
    return p


def checksum(a: np.ndarray) -> str:
    """First 16 hex digits of the array's sha256 (:func:`numpy_resnext.checksums.tensor_sha256`)."""
    return tensor_sha256(a)[:16]


def run(args):
    shape = (args.batch, 3, args.size, args.size)
    # the input is drawn in float64 and cast: check before either exists
    check_compute(layer_plan(args.arch), shape, args.dtype, "forward",
                  extra=args.batch * 3 * args.size ** 2 * 16)
    t0 = time.perf_counter()
    model = build(args.arch, seed=args.seed, dtype=args.dtype, init=args.init)
    t_build = time.perf_counter() - t0
    cfg = model.config
    rng = np.random.default_rng(args.seed)
    x = rng.standard_normal(shape).astype(args.dtype)
    model.check_input(x)
    params, macs = totals(cfg, args.size, args.size)
    print(f"numpy-resnext demo: {cfg.name} ({cfg.description})")
    print(f"  architecture  depths {'-'.join(map(str, cfg.depths))}, cardinality {cfg.cardinality}, "
          f"base width {cfg.base_width}, {cfg.stem} stem{', avg-pool shortcut' if cfg.avg_down else ''}")
    print(f"  parameters    {params:,} trainable, seeded (seed {args.seed}, {args.init} init), built in {t_build:.2f} s")
    print(f"  input         {x.shape} {x.dtype}, standard normal (seed {args.seed}), sha256 {checksum(x)}")
    model(x)                                                   # warm-up
    times = []
    for _ in range(args.repeat):
        t = time.perf_counter()
        logits = model(x)
        times.append(time.perf_counter() - t)
    med = float(np.median(times))
    gmacs = macs * args.batch / 1e9
    gflop = 2 * gmacs                                          # 1 multiply-accumulate = 2 FLOP
    print(f"  logits        {logits.shape} {logits.dtype}, sha256 {checksum(logits)}")
    print(f"                mean {logits.mean():.6g}, std {logits.std():.6g}, "
          f"first {np.array2string(logits[0, :4], precision=5)}")
    top = np.argsort(-logits[0])[:5]
    print(f"  top-5 (image 0) classes {top.tolist()} (seeded weights: indices only, not a prediction)")
    print(f"  forward       median {med * 1000:.1f} ms over {len(times)} runs "
          f"({gmacs:.2f} GMACs = {gflop:.2f} GFLOP at 2 FLOP per multiply-accumulate; "
          f"{gflop / med:.1f} GFLOP/s)")
    return 0
