"""``numpy-resnext golden-set``: reference logits (and intermediates) for a whole data set,
one Dask task per shard, into a resumable Zarr store."""

from ..dataset import Options, run_golden_set
from ..preprocess import PRESETS
from ._common import COUNT, MAX_COUNT, add_command, add_model_options, integer, preset_spec
from .golden import parse_keep


def add_parser(sub):
    p = add_command(
        sub, "golden-set",
        "reference logits for every image of a folder, list file or tensor file, on Dask, "
        "into a resumable Zarr store (needs the dataset extra)",
        "numpy-resnext golden-set ResNeXt50_32x4d --weights ResNeXt50_32x4d_pretrained.pdparams "
        "--images ILSVRC2012/val_list.txt --output val.zarr --keep 'layer?.?,avgpool' --sample 16\n"
        "  numpy-resnext golden-set ResNeXt50_32x4d --images generated:64 --output demo.zarr "
        "--save-inputs\n"
        "  then: numpy-resnext set-status val.zarr; numpy-resnext compare-set val.zarr their_logits.npy",
        description="Run the model over every image of SRC and store, per image, the logits, the "
                    "sha256 of the model input and statistics of the kept intermediates (and the "
                    "full intermediates of the first --sample images) in a Zarr v3 store. Shards "
                    "are Dask tasks (a LocalCluster with one worker process per core by default; "
                    "--scheduler joins a cluster; --workers 0 runs here). Running the same command "
                    "again resumes: only shards not marked done are computed. Exit status 0 when "
                    "every shard is done (unreadable images are recorded, not fatal), 1 when a "
                    "shard could not be computed, 2 for bad input or a store made with other "
                    "options. Needs pip install 'numpy-resnext[dataset]'. See docs/dataset.md.")
    add_model_options(p, default_dtype="float64",
                      dtype_help="precision of the reference (default float64, the golden mode)")
    p.add_argument("--images", required=True, metavar="SRC",
                   help="a folder of images (an ImageFolder tree gives labels), a val_list / val_map "
                        "file ('path label' lines), an (N, 3, H, W) .npy or an .npz of tensors, "
                        "generated:N[:SEED] or skimage:N[:SEED]")
    p.add_argument("--output", required=True, metavar="RUN.zarr", help="the run store (created or resumed)")
    p.add_argument("--preprocess", default="paddleclas", metavar="PRESET", type=preset_spec,
                   help=f"image preprocessing: {', '.join(PRESETS)}, optionally with parameters "
                        "(torchvision:resize=232, timm:crop_pct=1.0); default paddleclas")
    p.add_argument("--keep", action="append", default=None, metavar="NAMES",
                   help="intermediates to keep statistics of (and, with --sample, in full): names or "
                        "globs, comma-separated, repeatable (default: logits only)")
    p.add_argument("--sample", type=integer(0, MAX_COUNT), default=0, metavar="M",
                   help="store the kept intermediates of the first M images in full (default 0)")
    p.add_argument("--shard", type=COUNT, default=None, metavar="N",
                   help="images per shard (default 64, fewer for small sets; a resumed run keeps its own)")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--workers", type=integer(0, 1024), default=None, metavar="N",
                       help="worker processes of the local cluster (default: one per core; 0: no Dask, "
                            "every shard in this process)")
    where.add_argument("--scheduler", default=None, metavar="ADDRESS",
                       help="a Dask scheduler to submit to (tcp://host:8786); its workers need "
                            "numpy-resnext and this run's paths (shared file system)")
    p.add_argument("--threads", type=integer(1, 1024), default=None, metavar="T",
                   help="BLAS threads per worker (default: cores / workers; 1 on a --scheduler cluster)")
    p.add_argument("--labels", default=None, metavar="FILE",
                   help="labels: 'id label' lines or an int .npy in id order (overrides SRC's)")
    p.add_argument("--image-root", default=None, metavar="DIR",
                   help="folder the paths of a list file are relative to (default: the list's folder)")
    p.add_argument("--save-inputs", action="store_true",
                   help="store the model inputs too, so a candidate runtime reads the same tensors")
    p.add_argument("--limit", type=COUNT, default=None, metavar="N", help="only the first N images")
    return p


def run(args):
    keep = parse_keep(args.keep)
    options = Options(images=args.images, output=args.output, arch=args.arch, weights=args.weights,
                      dtype=args.dtype, seed=args.seed, init=args.init, ema=args.ema,
                      preprocess=args.preprocess, keep=tuple(keep) if keep else None,
                      sample=args.sample, shard=args.shard, workers=args.workers,
                      scheduler=args.scheduler, threads=args.threads, labels=args.labels,
                      save_inputs=args.save_inputs, limit=args.limit, image_root=args.image_root)
    return run_golden_set(options)
