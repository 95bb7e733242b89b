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
from ..io.schemes import TABLE, WRITE_SCHEMES
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


def _counters(loaded, scheme):
    """What became of torch's BatchNorm step counters (num_batches_tracked)."""
    kept = loaded.buffers or {}
    if not TABLE[scheme].counters:
        return (f"{len(kept)} num_batches_tracked counters of the source not written ({scheme} "
                "files hold model state only)" if kept else "no num_batches_tracked counters "
                f"({scheme} files hold none)")
    if kept:
        shapes = sorted({str(tuple(v.shape)) for v in kept.values()})
        values = sorted({int(v.reshape(-1)[0]) for v in kept.values() if v.size})
        rest = len(loaded.plan.convs()) - len(kept)
        return (f"num_batches_tracked: {len(kept)} counters written as read (shape "
                f"{', '.join(shapes)}, values {', '.join(map(str, values[:4]))}"
                f"{', ...' if len(values) > 4 else ''})" + (f"; {rest} the source lacks as 0"
                                                            if rest else ""))
    return "num_batches_tracked: written as torch's fresh counters (0, shape ()), the source has none"


def run(args):
    check_output_path(args.output, "--output", FORMATS)
    loaded = load_weights(args.weights, arch=args.arch, strict=not args.non_strict, ema=args.ema)
    metadata = {"source_sha256": _sha256(args.weights), "numpy_resnext": __version__,
                "source": str(args.weights)}
    scheme, why, where = write_weights(args.output, loaded.params, loaded.plan,
                                       args.names, metadata, loaded.buffers)
    dtypes = sorted({str(v.dtype) for v in loaded.params.values()})
    print(f"{printable(args.weights)}: naming scheme {loaded.scheme}, architecture "
          f"{loaded.config.name}")
    for line in loaded.report.lines():            # names from the file: one printable line each
        print(f"  {printable(line, 2000)}")
    print(f"wrote {len(loaded.params)} tensors ({', '.join(dtypes)}) to {printable(args.output)}, "
          f"names {scheme} ({why}); metadata {where}")
    print(f"  {_counters(loaded, scheme)}")
    written_eps = TABLE[scheme].bn_eps
    if written_eps != loaded.config.bn_eps:
        print(f"note: BatchNorm epsilon: the source runs with {loaded.config.bn_eps!r}; in {scheme} "
              f"names these weights run with {written_eps!r} (--bn-eps {loaded.config.bn_eps!r} "
              "keeps the source's when they are run here)")
    return 0
