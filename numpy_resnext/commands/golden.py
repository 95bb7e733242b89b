"""``numpy-resnext golden``: every named intermediate of a forward pass in one .npz."""

import fnmatch
import os
import time

import numpy as np

from ..errors import InputError
from ..golden import INPUT_NAME, file_sha256, golden_dump, write_golden
from ..preprocess import describe, load_image, preprocess
from ._common import Progress, add_command, cast_input, check_output_path, load_npy
from .forward import add_model_options, load_model

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def add_parser(sub):
    p = add_command(
        sub, "golden",
        "dump every named intermediate (stem, each conv/BN/ReLU/add, block outputs, pooled "
        "features, logits) of one forward pass to an .npz with a JSON manifest",
        "numpy-resnext golden ResNeXt50_32x4d --input x.npy --output g.npz "
        "--weights ResNeXt50_32x4d_pretrained.pdparams --keep 'layer4.*' --keep fc\n"
        "  then: numpy-resnext compare g.npz theirs.npz --map torchvision")
    add_model_options(p, default_dtype="float64",
                      dtype_help="precision of the forward pass (default float64, the golden mode)")
    p.add_argument("--input", required=True,
                   help="(N, 3, H, W) or (3, H, W) float array in a .npy file, or an image (.png, .jpg, "
                        "... or a uint8 (H, W, 3) .npy) preprocessed as PaddleClas evaluates "
                        "(resize 256, crop 224, normalise, in float32)")
    p.add_argument("--output", required=True, help="the .npz to write (atomically)")
    p.add_argument("--keep", action="append", default=None, metavar="NAMES",
                   help="keep only these tensors: names or glob patterns, comma-separated, "
                        "repeatable (e.g. --keep 'layer4.*,fc'); the input is always kept. "
                        "Default: every tensor")
    return p


def load_input(path, dtype):
    """(x, note): an (N, 3, H, W) array of ``dtype`` from a .npy or an image, and how it was
    made (None, or the preprocessing applied to an image or a uint8 (H, W, 3) .npy).

    Images are preprocessed as PaddleClas evaluates, in float32 as PaddleClas computes it,
    then cast to ``dtype``.
    """
    if not os.path.exists(path):
        raise InputError(f"--input: file {path!r} does not exist")
    if path.lower().endswith(IMAGE_EXTS):
        x, note = load_image(path, dtype="float32"), describe()
    else:
        x, note = load_npy(path, "--input"), None
        if x.dtype == np.uint8 and x.ndim == 3 and x.shape[-1] == 3:   # raw RGB pixels
            x, note = preprocess(x, dtype="float32"), describe()
    if x.ndim == 3:
        x = x[None]                                   # (3, H, W) -> (1, 3, H, W)
    return cast_input(x, dtype, "--input"), note


def parse_keep(keep):
    if not keep:
        return None
    names = [n.strip() for item in keep for n in item.split(",") if n.strip()]
    if not names:
        raise InputError("--keep: no names or patterns given")
    return names


def run(args):
    t0 = time.perf_counter()
    select = parse_keep(args.keep)
    check_output_path(args.output, "--output")       # fail before the forward pass, not after
    x, note = load_input(args.input, args.dtype)
    model = load_model(args)
    if select is not None and not any(fnmatch.fnmatchcase(n, p) for n in model.intermediate_names()
                                      for p in select):
        raise InputError(f"--keep {','.join(select)}: matches no tensor name; see "
                         f"`numpy-resnext summary {model.config.name}` for the names")
    progress = Progress(f"golden {model.config.name}", total=len(model.block_plan) + 2)
    tensors, manifest = golden_dump(model, x, select,
                                    progress=lambda done, total, note: progress.update(done, note))
    manifest["input"].update(source=os.path.basename(args.input), file_sha256=file_sha256(args.input))
    if note:
        manifest["input"]["preprocessing"] = note + " (float32, then cast to the model dtype)"
    if args.weights is None:
        manifest["weights"].update(source="seeded", seed=args.seed)
    else:
        manifest["weights"].update(source=os.path.basename(os.path.normpath(args.weights)),
                                   file_sha256=file_sha256(args.weights))
    progress.update(progress.total, f"writing {len(tensors)} tensors")
    size = write_golden(args.output, tensors, manifest)
    progress.done(f"wrote {args.output}")
    shape = tensors[INPUT_NAME].shape
    print(f"{model.config.name} {args.dtype}: input {shape} -> {len(tensors)} tensors "
          f"({len(manifest['execution_order'])} named in execution order), {size / 1e6:.1f} MB "
          f"written to {args.output} in {time.perf_counter() - t0:.1f} s")
    return 0
