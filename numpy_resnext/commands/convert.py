"""``numpy-resnext convert``: any supported weight file -> .npz, .safetensors, .pth or .pdparams.

The output format follows the extension of --output; the names follow --names or the
default of that format (torchvision for plain/WSL models and timm for vd models in
.pth/.safetensors, PaddleClas or paddle.vision in .pdparams, canonical in .npz: see
:mod:`numpy_resnext.io.schemes`). No framework is imported, for reading or writing.
The source's sha256, the architecture and this package's version go into the file where
the format has room (safetensors metadata, the .pth archive comment).
"""

from .. import __version__
from ..checksums import file_sha256
from ..errors import printable
from ..io import FORMATS, load_weights, write_weights
from ..io.schemes import WRITE_SCHEMES
from ._common import add_command, check_output_path


def add_parser(sub):
    p = add_command(sub, "convert", "convert weights between Paddle, PyTorch, safetensors and .npz",
                    "numpy-resnext convert --weights ResNeXt50_vd_32x4d_pretrained.pdparams "
                    "--output resnext50d_32x4d.safetensors")
    p.add_argument("arch", nargs="?", default=None,
                   help="architecture the file must hold (default: inferred from the file)")
    p.add_argument("--weights", required=True,
                   help="any weight file numpy-resnext reads: Paddle (.pdparams, .pdiparams, "
                        "directories, .tar), torch.save (.pth .pt .bin .ckpt .tar), "
                        ".safetensors, a shard index, a Hugging Face directory or .npz")
    p.add_argument("--output", required=True,
                   help=f"the file to write ({', '.join(FORMATS)}; replaced atomically)")
    p.add_argument("--names", choices=WRITE_SCHEMES, default=None,
                   help="naming scheme of the output (default: the format's usual one)")
    ema = p.add_mutually_exclusive_group()
    ema.add_argument("--ema", dest="ema", action="store_true", default=None,
                     help="load the EMA copy of a torch checkpoint (state_dict_ema, model_ema)")
    ema.add_argument("--no-ema", dest="ema", action="store_false",
                     help="never load an EMA copy (an error when it is the only state dict)")
    p.add_argument("--non-strict", action="store_true",
                   help="write what matches and list what was skipped, instead of failing on "
                        "missing or unexpected tensors")
    return p


def _sha256(path):
    try:
        return file_sha256(path)
    except OSError:
        return "unknown"


def run(args):
    check_output_path(args.output, "--output")
    loaded = load_weights(args.weights, arch=args.arch, strict=not args.non_strict, ema=args.ema)
    metadata = {"source_sha256": _sha256(args.weights), "numpy_resnext": __version__,
                "source": str(args.weights)}
    scheme, why, where = write_weights(args.output, loaded.params, loaded.plan,
                                       args.names, metadata)
    dtypes = sorted({str(v.dtype) for v in loaded.params.values()})
    print(f"{printable(args.weights)}: naming scheme {loaded.scheme}, architecture "
          f"{loaded.config.name}")
    for line in loaded.report.lines():            # names from the file: one printable line each
        print(f"  {printable(line, 2000)}")
    print(f"wrote {len(loaded.params)} tensors ({', '.join(dtypes)}) to {printable(args.output)}, "
          f"names {scheme} ({why}); metadata {where}")
    return 0
