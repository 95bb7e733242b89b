"""``numpy-resnext audit``: the paper's complexity claims recomputed from the engine's layers;
with ``--mutants``, the mutation audit of golden comparisons (:mod:`numpy_resnext.golden.mutation_audit`)."""

import json
import math
import os

from ..dataset.mutation_set import format_set_table, run_mutants_over_set
from ..golden.mutation_audit import DEFAULT_ARCH, DEFAULT_SIZE, format_table, run_mutants, summary
from ..paper.claims import format_audit, run_audit
from ..errors import InputError
from ..init import DEFAULT_INIT, INITS
from ._common import COUNT, SEED, SIZE, Progress, add_command


def add_parser(sub):
    p = add_command(
        sub, "audit", "recompute the paper's Table 1/2, width rules and Fig. 3 and say if each holds",
        "numpy-resnext audit --fig3-block layer2.0\n"
        "  numpy-resnext audit --mutants --arch ResNeXt50_vd_32x4d --size 67 45 --init identity-bn",
        description="Recompute the paper's complexity claims from the engine's own layers "
                    "(parameter shapes, per-layer output sizes and multiply-adds) and print "
                    "them beside the paper's figures: Table 1 (ResNet-50 vs ResNeXt-50 32x4d), "
                    "Table 2's templates (Eq. 4), PaddleClas's num_filters rule against "
                    "torchvision's width formula for every architecture, and Fig. 3's three "
                    "equivalent forms evaluated on a real block. Exit status 1 if a claim fails. "
                    "With --mutants: run every bug of the mutation catalogue (numpy_resnext.golden.mutants) "
                    "through the forward walk, compare each with a float64 golden at the default "
                    "tolerance of its dtype and print whether it is caught and which tensor is named "
                    "as the first divergence; exit status 1 unless every non-equivalent mutant is "
                    "caught at the tensor where it lives and the unmutated forward passes.")
    p.add_argument("--fig3-arch", default="ResNeXt50_32x4d",
                   help="architecture whose block the Fig. 3 check runs (default ResNeXt50_32x4d)")
    p.add_argument("--fig3-block", default="layer1.1",
                   help="block for the Fig. 3 check (default layer1.1: 256 -> 32 x 4d -> 256, the "
                        "block the paper draws)")
    p.add_argument("--weights", default=None,
                   help="weights for the Fig. 3 block (default: seeded, BN statistics randomised)")
    p.add_argument("--seed", type=SEED, default=0,
                   help="seed of the weights and input of the Fig. 3 check (default 0)")
    p.add_argument("--json", action="store_true", help="a JSON list of checks (or mutants) instead of text")
    m = p.add_argument_group("mutation audit (--mutants)")
    m.add_argument("--mutants", action="store_true",
                   help="run the mutation audit instead of the paper's claims")
    m.add_argument("--arch", default=None,
                   help="architecture of the mutation audit (default ResNeXt50_vd_32x4d: a vd model, "
                        "so the average-pool mutants apply)")
    m.add_argument("--size", type=SIZE, nargs=2, metavar=("H", "W"), default=None,
                   help="input size (default 67 45: odd and even sizes at the strided layers, see "
                        "docs/golden.md)")
    m.add_argument("--init", default=None, choices=INITS,
                   help=f"seeded weights: calibrated BN statistics (default, {DEFAULT_INIT}) or identity BatchNorm")
    m.add_argument("--dtype", action="append", choices=["float32", "float64"], default=None,
                   help="dtype of the mutated forward (repeatable; default both); the golden is float64")
    m.add_argument("--mutant", action="append", default=None, metavar="NAME",
                   help="run only this mutant (repeatable); default every one")
    m.add_argument("--set", type=COUNT, default=None, metavar="N",
                   help="judge each mutant as compare-set does, on the logits of N seeded generated "
                        "images (docs/dataset.md), instead of every tensor of one image")
    return p


def run_mutation_audit(args):
    arch, size = args.arch or DEFAULT_ARCH, tuple(args.size or DEFAULT_SIZE)
    dtypes = tuple(dict.fromkeys(args.dtype)) if args.dtype else ("float32", "float64")
    progress = Progress("audit --mutants")
    init = args.init or DEFAULT_INIT
    if args.set is not None:
        return run_set_audit(args, arch, size, init, dtypes, progress)
    results = run_mutants(arch, size, init, dtypes, args.seed, args.mutant,
                          progress=lambda note: progress.update(0, note))
    progress.done()
    if args.json:
        def number(v):
            return v if math.isfinite(v) else None       # JSON has no NaN or infinity
        rows = [dict(r._asdict(), ok=r.ok, expected=list(r.expected), max_rel=number(r.max_rel),
                     worst_rel=number(r.worst_rel)) for r in results]
        print(json.dumps({"arch": arch, "size": list(size), "init": init, "seed": args.seed,
                          "summary": summary(results), "results": rows}, indent=1))
    else:
        print(format_table(results, f"{arch}, {size[0]}x{size[1]} input, seed {args.seed}, "
                                    f"{init} seeded weights, golden float64"))
    return 0 if all(r.ok for r in results) else 1


def run_set_audit(args, arch, size, init, dtypes, progress):
    results = run_mutants_over_set(arch, size, args.set, init, dtypes, args.seed, args.mutant,
                                   progress=lambda note: progress.update(0, note))
    progress.done()
    if args.json:
        print(json.dumps({"arch": arch, "size": list(size), "init": init, "seed": args.seed,
                          "images": args.set, "results": [dict(r._asdict(), ok=r.ok) for r in results]},
                         indent=1))
    else:
        print(format_set_table(results, f"{arch}, {args.set} generated images of {size[0]}x{size[1]}, "
                                        f"seed {args.seed}, {init} seeded weights, reference float64, "
                                        "judged by compare-set on the logits"))
    return 0 if all(r.ok for r in results) else 1


def run(args):
    if args.mutants:
        return run_mutation_audit(args)
    given = [f"--{k}" for k in ("arch", "size", "init", "dtype", "mutant", "set") if getattr(args, k) is not None]
    if given:
        raise InputError(f"{', '.join(given)}: only with --mutants (the mutation audit)")
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
