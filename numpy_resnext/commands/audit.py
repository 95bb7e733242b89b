"""``numpy-resnext audit``: the paper's complexity claims recomputed from the engine's layers."""

import json
import os

from ..audit import format_audit, run_audit
from ..errors import InputError
from ._common import Progress, add_command


def add_parser(sub):
    p = add_command(
        sub, "audit", "recompute the paper's Table 1/2, width rules and Fig. 3 and say if each holds",
        "numpy-resnext audit --fig3-block layer2.0",
        description="Recompute the paper's complexity claims from the engine's own layers "
                    "(parameter shapes, per-layer output sizes and multiply-adds) and print "
                    "them beside the paper's figures: Table 1 (ResNet-50 vs ResNeXt-50 32x4d), "
                    "Table 2's templates (Eq. 4), PaddleClas's num_filters rule against "
                    "torchvision's width formula for every architecture, and Fig. 3's three "
                    "equivalent forms evaluated on a real block. Exit status 1 if a claim fails.")
    p.add_argument("--fig3-arch", default="ResNeXt50_32x4d",
                   help="architecture whose block the Fig. 3 check runs (default ResNeXt50_32x4d)")
    p.add_argument("--fig3-block", default="layer1.1",
                   help="block for the Fig. 3 check (default layer1.1: 256 -> 32 x 4d -> 256, the "
                        "block the paper draws)")
    p.add_argument("--weights", default=None,
                   help="weights for the Fig. 3 block (default: seeded, BN statistics randomised)")
    p.add_argument("--seed", type=int, default=0,
                   help="seed of the weights and input of the Fig. 3 check (default 0)")
    p.add_argument("--json", action="store_true", help="a JSON list of checks instead of text")
    return p


def run(args):
    if args.weights is not None and not os.path.exists(args.weights):
        raise InputError(f"--weights: {args.weights!r} does not exist")
    progress = Progress("audit", total=4)
    checks = run_audit(args.fig3_arch, args.fig3_block, args.weights, args.seed, progress)
    progress.done()
    if args.json:
        print(json.dumps([c._asdict() for c in checks], indent=1))
    else:
        print(format_audit(checks))
    return 0 if all(c.holds for c in checks) else 1
