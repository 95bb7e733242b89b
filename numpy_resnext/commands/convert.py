"""``numpy-resnext convert``: any supported weight file -> a canonical-name ``.npz``.

The output holds one array per tensor under its canonical (torchvision / timm) name,
fc.weight as [out, in], dtypes as stored; ``numpy.load`` reads it without pickles and
``--weights`` accepts it back (the architecture is inferred from it again).
"""

from .._files import save_npz
from ..io import load_weights
from ._common import add_command, check_output_path


def add_parser(sub):
    p = add_command(sub, "convert", "write weights from a Paddle file under canonical names (.npz)",
                    "numpy-resnext convert --weights ResNeXt50_vd_32x4d_pretrained.pdparams "
                    "--output resnext50_vd.npz")
    p.add_argument("arch", nargs="?", default=None,
                   help="architecture the file must hold (default: inferred from the file)")
    p.add_argument("--weights", required=True,
                   help=".pdparams, a directory of per-parameter files, a .pdiparams file or "
                        "its prefix, or a canonical .npz")
    p.add_argument("--output", required=True, help="the .npz to write (replaced atomically)")
    p.add_argument("--non-strict", action="store_true",
                   help="write what matches and list what was skipped, instead of failing on "
                        "missing or unexpected tensors")
    return p


def run(args):
    check_output_path(args.output, "--output")
    loaded = load_weights(args.weights, arch=args.arch, strict=not args.non_strict)
    save_npz(args.output, loaded.params)
    dtypes = sorted({str(v.dtype) for v in loaded.params.values()})
    print(f"{args.weights}: naming scheme {loaded.scheme}, architecture {loaded.config.name}")
    for line in loaded.report.lines():
        print(f"  {line}")
    print(f"wrote {len(loaded.params)} tensors ({', '.join(dtypes)}) under canonical names "
          f"to {args.output}")
    return 0
