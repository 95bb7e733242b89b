"""``numpy-resnext compare``: per-tensor errors of a candidate against a golden dump."""


from ..golden import SHIPPED_MAPS, compare
from ._common import add_command, check_output_path, number, save_json

DESCRIPTION = """\
compare a candidate's tensors with a reference golden dump, tensor by tensor, in the
reference's execution order; exit status 0 when every compared tensor passes, 1 otherwise
(2 on bad files or options).

Per tensor, with r = reference and c = candidate read as float64:
  max_abs = max |c - r|,  max_rel = max_abs / max(max |r|, tiny)
  pass    iff max_abs <= atol + rtol * max |r|
a norm-wise test: the whole tensor's worst error against its largest value. Shapes may
differ only by size-1 axes (a (N, C, 1, 1) pooled tensor matches (N, C)).
The candidate is another dump, anyone's .npz (with --map to translate its names), or one
.npy of logits (compared with the reference's `fc`)."""


def add_parser(sub):
    p = add_command(
        sub, "compare", "compare a candidate's tensors with a golden dump (exit 0 pass / 1 fail)",
        "numpy-resnext compare golden.npz torch_capture.npz --map torchvision --rtol 1e-10\n"
        "  numpy-resnext compare golden.npz their_logits.npy --rtol 1e-4",
        description=DESCRIPTION)
    p.add_argument("reference", help="the reference dump (.npz from `numpy-resnext golden`)")
    p.add_argument("candidate", help="the candidate: an .npz of named tensors, or an .npy of logits")
    p.add_argument("--rtol", type=number(0.0), default=None,
                   help="relative tolerance (default: the reference's suggestion for the less "
                        "precise dtype: 1e-10 for float64, 1e-4 for float32)")
    p.add_argument("--atol", type=number(0.0), default=None, help="absolute tolerance (default 0)")
    p.add_argument("--map", default=None, metavar="MAP",
                   help=f"translate the candidate's names: {'|'.join(SHIPPED_MAPS)} or a JSON file "
                        "{candidate name or pattern: reference name or null}")
    p.add_argument("--strict", action="store_true",
                   help="reference tensors missing from the candidate count as failures")
    p.add_argument("--show", choices=["all", "fail", "none"], default="all",
                   help="which rows to print (default all)")
    p.add_argument("--json", default=None, metavar="PATH", help="also write the report as JSON")
    return p


def run(args):
    if args.json:
        check_output_path(args.json, "--json", (".json",))       # fail before reading the dumps, not after
    report = compare(args.reference, args.candidate, rtol=args.rtol, atol=args.atol,
                     name_map=args.map, strict=args.strict)
    if args.show == "none":
        print(report.verdict())
    else:
        print(report.format(show=args.show))
    if args.json:
        save_json(args.json, report.to_dict())
    return 0 if report.passed else 1
