"""``numpy-resnext forward``: logits of a .npy input, with seeded or loaded weights."""

import time

from ._common import Progress, add_command, add_model_options, check_output_path, load_input, load_model, save_npy


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
    x, _ = load_input(args.input, args.dtype)
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
