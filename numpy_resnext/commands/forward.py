"""``numpy-resnext forward``: logits of a .npy input, with seeded or loaded weights."""

import time

from ..errors import printable
from ._common import (Progress, add_command, add_model_options, allow_nonfinite, check_output_path,
                      check_run, load_input, load_model, save_npy, warn_nonfinite)


def add_parser(sub):
    p = add_command(sub, "forward", "run a forward pass on an .npy input and save the logits",
                    "numpy-resnext forward ResNeXt50_32x4d --input x.npy --output logits.npy --dtype float64")
    add_model_options(p, default_dtype="float32", non_strict=True)
    p.add_argument("--input", required=True,
                   help="(N, 3, H, W) or (3, H, W) float array in a .npy file, or an image (.png, "
                        ".jpg, ... or a uint8 (H, W, 3) .npy) preprocessed as PaddleClas evaluates "
                        "(as golden takes it)")
    p.add_argument("--output", required=True, help="where to write the (N, classes) logits (.npy)")
    return p


def run(args):
    check_output_path(args.output, "--output", (".npy",))       # fail before the forward pass, not after
    x, _ = load_input(args.input, args.dtype, "--input", allow_nonfinite(args))
    progress = Progress("forward")
    t0 = time.perf_counter()
    model = load_model(args)
    progress.update(0, f"built {model.config.name} ({model.num_params:,} params)")
    check_run(model, x, "forward", args.input)
    logits = model(x, allow_nonfinite=allow_nonfinite(args))
    warn_nonfinite(logits, "logits")
    save_npy(args.output, logits)
    progress.done(f"wrote {printable(args.output)}")
    print(f"{model.config.name}: input {x.shape} {x.dtype} -> logits {logits.shape} {logits.dtype} "
          f"in {time.perf_counter() - t0:.2f} s, written to {printable(args.output)}")
    return 0
