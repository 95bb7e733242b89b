"""``numpy-resnext grad``: gradients of the input and every parameter for a given dloss/dlogits."""

import time

from ..errors import InputError, printable
from .._files import save_npz
from ..grad import gradients
from ._common import (Progress, add_command, add_model_options, allow_nonfinite, cast_input,
                      check_output_path, check_run, load_input, load_model, load_npy)


def add_parser(sub):
    p = add_command(
        sub, "grad",
        "backward pass: the gradient of the input and of every parameter (canonical names) "
        "for a given gradient of the loss with respect to the logits, written to an .npz",
        "numpy-resnext grad ResNeXt50_32x4d --input x.npy --dout d.npy --output g.npz --dtype float64")
    add_model_options(p, default_dtype="float64",
                      dtype_help="precision (default float64, the mode gradient checks use)")
    p.add_argument("--input", required=True,
                   help="(N, 3, H, W) or (3, H, W) float array in a .npy file (or an image, as golden "
                        "takes it)")
    p.add_argument("--dout", required=True,
                   help="(N, classes) .npy: dloss/dlogits (for loss = sum(logits * D), D itself)")
    p.add_argument("--output", required=True,
                   help="the .npz to write (atomically): 'input' and every trainable parameter's "
                        "gradient under its canonical name")
    p.add_argument("--train", action="store_true",
                   help="BatchNorm in training mode (batch statistics), as in a training step; "
                        "default: inference mode (running statistics)")
    p.add_argument("--running", metavar="OUT.npz", default=None,
                   help="with --train: also write the updated BatchNorm running statistics "
                        "(every running_mean / running_var under its canonical name, Paddle's "
                        "momentum 0.9 as float32) to this .npz, atomically")
    return p


def run(args):
    check_output_path(args.output, "--output", (".npz",))       # fail before the backward pass, not after
    if args.running is not None:
        if not args.train:
            raise InputError("--running: the running statistics change only in training mode; add --train")
        check_output_path(args.running, "--running", (".npz",))
    x, _ = load_input(args.input, args.dtype, "--input", allow_nonfinite(args))
    dout = cast_input(load_npy(args.dout, "--dout"), args.dtype, "--dout", allow_nonfinite(args),
                      args.dout)
    if dout.ndim == 1 and x.shape[0] == 1:
        dout = dout[None]                             # (classes,) for a (3, H, W) input
    progress = Progress("grad")
    t0 = time.perf_counter()
    model = load_model(args)
    model.check_input(x, allow_nonfinite(args))
    expected = (x.shape[0], model.config.num_classes)
    if dout.shape != expected:
        raise InputError(f"--dout {args.dout!r}: expected shape (N, classes) = {expected} for input "
                         f"{x.shape} and {model.config.name}, found {dout.shape}")
    check_run(model, x, "gradients", args.input)
    progress.update(0, f"built {model.config.name}, running forward and backward")
    result = gradients(model, x, dout, train=args.train, allow_nonfinite=allow_nonfinite(args))
    grads = result.grads
    save_npz(args.output, grads)
    if args.running is not None:
        save_npz(args.running, result.running)
    progress.done(f"wrote {printable(args.output)}")
    mode = "training" if args.train else "inference"
    print(f"{model.config.name}: {len(grads) - 1} parameter gradients + input gradient "
          f"({x.dtype}, BN {mode} mode) in {time.perf_counter() - t0:.2f} s, written to "
          f"{printable(args.output)}")
    if args.running is not None:
        print(f"{len(result.running)} updated running statistics written to "
              f"{printable(args.running)}")
    return 0
