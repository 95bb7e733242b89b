"""``numpy-resnext train-demo``: train a tiny ResNeXt on scikit-learn's digits with the NumPy backward."""

import contextlib
import os
import platform
import sys

import numpy as np

from ..paper.digits import DEFAULTS, DIGITS_CONFIG, DIGITS_HINT, plot_curves, train_digits
from .._optional import pyplot
from ..errors import InputError
from ..shapes import totals
from ._common import SEED, add_command, check_output_path, integer, number, save_json


def add_parser(sub):
    p = add_command(
        sub, "train-demo",
        "train a tiny ResNeXt (the paper's CIFAR form) on scikit-learn's 8x8 digits with the "
        "NumPy backward; held-out accuracy, loss and accuracy curves",
        "numpy-resnext train-demo --epochs 10 --seed 0 --json digits.json --png digits.png",
        description="Train DigitsResNeXt_4x4d (3x3/1 stem without max-pool, three stages of one "
                    "bottleneck, C = 4, d = 4) on the 1,797 digits scikit-learn ships (no "
                    f"download; {DIGITS_HINT}), holding out a stratified, seeded 20 % split. "
                    "Momentum SGD with weight decay and a cosine learning rate, BatchNorm "
                    "with batch statistics, one-pixel random shifts. Progress goes to stderr; "
                    "the result to stdout.")
    p.add_argument("--epochs", type=integer(1, 10_000), default=DEFAULTS["epochs"],
                   help=f"passes over the training split (default {DEFAULTS['epochs']})")
    p.add_argument("--seed", type=SEED, default=0,
                   help="seed of the split, the initialisation, the batch order and the shifts (default 0)")
    p.add_argument("--batch-size", type=integer(2, 1 << 20), default=DEFAULTS["batch_size"],
                   help=f"images per SGD step (default {DEFAULTS['batch_size']})")
    p.add_argument("--lr", type=number(0.0, positive=True), default=DEFAULTS["lr"],
                   help=f"peak learning rate of the cosine schedule (default {DEFAULTS['lr']})")
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"],
                   help="precision of the training (default float32)")
    p.add_argument("--threads", type=integer(0, 1024), default=1,
                   help="BLAS threads while training (default 1: the layers are small, and on a "
                        "shared machine two threads mostly wait for each other; 0 leaves the BLAS "
                        "default). Set through threadpoolctl, which scikit-learn installs")
    p.add_argument("--json", metavar="OUT.json", default=None,
                   help="write test_accuracy, train_loss / train_accuracy / test_accuracy per "
                        "epoch, seconds and the settings as JSON (atomically)")
    p.add_argument("--png", metavar="CURVES.png", default=None,
                   help="draw the loss and accuracy curves (needs matplotlib: pip install "
                        "numpy-resnext[plot])")
    return p


def _blas_threads(n):
    """A context limiting BLAS to n threads (n = 0, or no threadpoolctl: unchanged)."""
    try:
        from threadpoolctl import threadpool_limits      # optional: BLAS threads stay as they are without it
    except ImportError:
        threadpool_limits = None
    if not n or threadpool_limits is None:
        return contextlib.nullcontext()
    return threadpool_limits(limits=n, user_api="blas")


def run(args):
    if args.threads < 0:
        raise InputError(f"--threads must be 0 (BLAS default) or more, found {args.threads}")
    if args.epochs < 1:
        raise InputError(f"--epochs must be at least 1, found {args.epochs}")
    if args.batch_size < 2:
        raise InputError(f"--batch-size must be at least 2 (BatchNorm needs two images), found {args.batch_size}")
    if args.lr <= 0:
        raise InputError(f"--lr must be positive, found {args.lr}")
    if args.json:
        check_output_path(args.json, "--json")
    if args.png:
        if not args.png.lower().endswith(".png"):
            raise InputError(f"--png: expected a file name ending in .png, found {args.png!r}")
        check_output_path(args.png, "--png")
        pyplot("--png")                       # fail before training, not after
    cfg = DIGITS_CONFIG
    params, macs = totals(cfg, 8, 8)
    print(f"train-demo: {cfg.name} ({'-'.join(map(str, cfg.depths))} blocks, C = {cfg.cardinality}, "
          f"d = {cfg.base_width}, cifar stem), {params:,} parameters, {macs / 1e6:.2f} M MACs per "
          f"8x8 image; {args.epochs} epochs, batch {args.batch_size}, seed {args.seed}, {args.dtype}",
          file=sys.stderr, flush=True)

    def on_epoch(epoch, h):
        print(f"[{h['seconds'][-1]:6.1f}s] epoch {epoch}/{args.epochs}: train loss "
              f"{h['train_loss'][-1]:.4f}, train accuracy {h['train_accuracy'][-1]:.1%}, "
              f"held-out accuracy {h['test_accuracy'][-1]:.1%}", file=sys.stderr, flush=True)
    with _blas_threads(args.threads):
        result = train_digits(epochs=args.epochs, seed=args.seed, batch_size=args.batch_size,
                              lr=args.lr, dtype=args.dtype, on_epoch=on_epoch)
    split = result.split
    print(f"held-out accuracy {result.test_accuracy:.2%} ({round(result.test_accuracy * len(split.y_test))} "
          f"of {len(split.y_test)} digits) after {args.epochs} epochs ({result.steps} steps) "
          f"in {result.seconds:.1f} s; final train loss {result.history['train_loss'][-1]:.4f}")
    if args.json:
        report = {
            "test_accuracy": result.test_accuracy,
            "train_loss": result.history["train_loss"],
            "train_accuracy": result.history["train_accuracy"],
            "test_accuracy_per_epoch": result.history["test_accuracy"],
            "epoch_seconds": result.history["seconds"],
            "seconds": result.seconds,
            "steps": result.steps,
            "settings": {"epochs": args.epochs, "seed": args.seed, "batch_size": args.batch_size,
                         "lr": args.lr, "momentum": DEFAULTS["momentum"],
                         "weight_decay": DEFAULTS["weight_decay"], "schedule": "cosine to 0",
                         "augmentation": "random shift of up to 1 pixel", "dtype": args.dtype,
                         "blas_threads": args.threads or "default", "init": "identity-bn (He-normal convs, BN 1/0)"},
            "data": {"train": int(len(split.y_train)), "test": int(len(split.y_test)),
                     "split": "stratified, seeded", "input": "8x8 grey repeated on 3 channels"},
            "architecture": cfg.to_dict(),
            "parameters": params,
            "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
                        "python": platform.python_version(), "numpy": np.__version__},
        }
        save_json(args.json, report)
        print(f"wrote {args.json}")
    if args.png:
        plot_curves(result.history, args.png,
                    title=f"{cfg.name} on scikit-learn's digits (seed {args.seed}): held-out "
                          f"accuracy {result.test_accuracy:.1%}")
        print(f"wrote {args.png}")
    return 0
