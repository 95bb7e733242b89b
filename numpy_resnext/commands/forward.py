"""``numpy-resnext forward``: logits of a .npy input, with seeded or loaded weights."""

import sys
import time

from ..model import build
from ._common import Progress, add_command, cast_input, check_output_path, load_npy, save_npy


def add_parser(sub):
    p = add_command(sub, "forward", "run a forward pass on an .npy input and save the logits",
                    "numpy-resnext forward ResNeXt50_32x4d --input x.npy --output logits.npy --dtype float64")
    add_model_options(p, default_dtype="float32", non_strict=True)
    p.add_argument("--input", required=True, help="(N, 3, H, W) float array in a .npy file")
    p.add_argument("--output", required=True, help="where to write the (N, classes) logits (.npy)")
    return p


def add_model_options(p, default_dtype, dtype_help=None, non_strict=False):
    """The options :func:`load_model` reads: ARCH (optional with --weights), --weights,
    --dtype, --seed and, where a command allows partial loads, --non-strict."""
    p.add_argument("arch", nargs="?", default=None,
                   help="architecture name; may be left out when --weights names a file the "
                        "architecture can be inferred from")
    p.add_argument("--weights", default=None, help="weight file or directory (default: seeded weights)")
    p.add_argument("--dtype", default=default_dtype, choices=["float32", "float64"], help=dtype_help)
    p.add_argument("--seed", type=int, default=0, help="seed of the initialisation (default 0)")
    if non_strict:
        p.add_argument("--non-strict", action="store_true",
                       help="load what matches (e.g. a backbone without its head), keep seeded "
                            "values for the rest and list what was skipped")


def load_model(args):
    """The model a command asked for (arch and/or --weights, --dtype, --seed)."""
    from ..errors import ArchitectureError
    if args.arch is None and args.weights is None:
        raise ArchitectureError("name an architecture (see `numpy-resnext archs`) or give --weights")
    strict = not getattr(args, "non_strict", False)
    model = build(args.arch, weights=args.weights, seed=args.seed, dtype=args.dtype, strict=strict)
    report = model.load_report
    skipped = report.get("missing", []) + report.get("skipped", []) + report.get("unexpected", [])
    if skipped:
        print(f"non-strict load skipped {len(skipped)} tensors: {', '.join(skipped)}", file=sys.stderr)
    for note in report.get("notes", []):
        if note.startswith(("fine-tuned head", "weights taken from")):
            print(f"note: {note}", file=sys.stderr)
    return model


def run(args):
    check_output_path(args.output, "--output")       # fail before the forward pass, not after
    x = cast_input(load_npy(args.input, "--input"), args.dtype, "--input")
    progress = Progress("forward")
    t0 = time.perf_counter()
    model = load_model(args)
    progress.update(0, f"built {model.config.name} ({model.num_params:,} params)")
    logits = model(x)
    save_npy(args.output, logits)
    progress.done(f"wrote {args.output}")
    print(f"{model.config.name}: input {x.shape} {x.dtype} -> logits {logits.shape} {logits.dtype} "
          f"in {time.perf_counter() - t0:.2f} s, written to {args.output}")
    return 0
