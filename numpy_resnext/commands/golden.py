"""``numpy-resnext golden``: every named intermediate of a forward pass in one .npz."""

import os
import time

from .._select import Selection
from ..bounded import clip_list
from ..errors import InputError, printable
from ..golden import INPUT_NAME, LOGITS_NAME, file_sha256, golden_dump, write_golden
from ._common import (Progress, add_command, add_model_options, allow_nonfinite, check_output_path,
                      check_run, load_input, load_model, warn_nonfinite)


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


def parse_keep(keep):
    if not keep:
        return None
    names = [n.strip() for item in keep for n in item.split(",") if n.strip()]
    if not names:
        raise InputError("--keep: no names or patterns given")
    return names


def run(args):
    t0 = time.perf_counter()
    keep = parse_keep(args.keep)
    check_output_path(args.output, "--output", (".npz",))       # fail before the forward pass, not after
    x, note = load_input(args.input, args.dtype, allow_nonfinite=allow_nonfinite(args))
    model = load_model(args)
    if keep is not None and not any(map(Selection(keep).matches, model.intermediate_names())):
        raise InputError(f"--keep {clip_list(keep, 10, ',')}: matches no tensor name; see "
                         f"`numpy-resnext summary {model.config.name}` for the names")
    model.check_input(x, allow_nonfinite(args))
    check_run(model, x, "golden", args.input, keep)
    progress = Progress(f"golden {model.config.name}", total=len(model.plan.blocks) + 2)
    tensors, manifest = golden_dump(model, x, keep,
                                    progress=lambda done, total, note: progress.update(done, note),
                                    allow_nonfinite=allow_nonfinite(args))
    if LOGITS_NAME in tensors:
        warn_nonfinite(tensors[LOGITS_NAME], "logits")
    manifest["input"].update(source=os.path.basename(args.input), file_sha256=file_sha256(args.input))
    if note:
        manifest["input"]["preprocessing"] = note + " (float32, then cast to the model dtype)"
    if args.weights is None:
        manifest["weights"].update(source="seeded", seed=args.seed, init=args.init)
    else:
        manifest["weights"].update(source=os.path.basename(os.path.normpath(args.weights)),
                                   file_sha256=file_sha256(args.weights))
    progress.update(progress.total, f"writing {len(tensors)} tensors")
    size = write_golden(args.output, tensors, manifest)
    progress.done(f"wrote {printable(args.output)}")
    shape = tensors[INPUT_NAME].shape
    print(f"{model.config.name} {args.dtype}: input {shape} -> {len(tensors)} tensors "
          f"({len(manifest['execution_order'])} named in execution order), {size / 1e6:.1f} MB "
          f"written to {printable(args.output)} in {time.perf_counter() - t0:.1f} s")
    return 0
