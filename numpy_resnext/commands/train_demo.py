"""``numpy-resnext train-demo``: train a tiny ResNeXt on scikit-learn's digits with the NumPy
backward; with ``--cardinality``/``--width`` at the equal parameter budget of the cardinality
experiment, with ``--sweep`` the whole experiment (:mod:`numpy_resnext.paper.sweep`)."""

import contextlib
import os
import platform
import sys

import numpy as np

from .._files import save_npz
from .._optional import pyplot
from ..errors import InputError
from ..ops.cpu import cpu_name
from ..paper.digits import DEFAULTS, DIGITS_CONFIG, DIGITS_HINT, plot_curves, train_digits
from ..paper.sweep import (SWEEP_CARDINALITIES, budget, digits_config, format_summary, plot_sweep,
                           run_sweep, summarize, width_for)
from ..plan import layer_plan
from ..shapes import totals
from ._common import SEED, add_command, check_output_path, integer, number, save_json


def add_parser(sub):
    p = add_command(
        sub, "train-demo",
        "train a tiny ResNeXt (the paper's CIFAR form) on scikit-learn's 8x8 digits with the "
        "NumPy backward; held-out accuracy, loss and accuracy curves",
        "numpy-resnext train-demo --epochs 10 --seed 0 --json digits.json --png digits.png\n"
        "  numpy-resnext train-demo --cardinality 8          # d chosen for the equal budget\n"
        "  numpy-resnext train-demo --sweep --seeds 0 1 2 --png sweep.png",
        description="Train DigitsResNeXt_4x4d (3x3/1 stem without max-pool, three stages of one "
                    "bottleneck, C = 4, d = 4) on the 1,797 digits scikit-learn ships (no "
                    f"download; {DIGITS_HINT}), holding out a stratified, seeded 20 % split. "
                    "Momentum SGD with weight decay and a cosine learning rate, BatchNorm "
                    "with batch statistics, one-pixel random shifts. Progress goes to stderr; "
                    "the result to stdout. A run repeats bit for bit only on the same machine, "
                    "BLAS and thread count (docs/digits.md).")
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
    p.add_argument("--cardinality", type=integer(1, 1024), default=None, metavar="C",
                   help="branches per block (default 4); without --width, the bottleneck width is "
                        "chosen so that the network has the equal budget of the cardinality "
                        f"experiment ({budget():,} parameters, within 2 %%)")
    p.add_argument("--width", type=integer(1, 1024), default=None, metavar="d",
                   help="bottleneck width d, channels per branch in layer1 (default 4, or the "
                        "equal-budget width for --cardinality)")
    p.add_argument("--sweep", action="store_true",
                   help="the cardinality experiment: C = " + ", ".join(map(str, SWEEP_CARDINALITIES)) +
                        " at the equal budget, once per --seeds; --json gets every run, --png the figure")
    p.add_argument("--seeds", type=SEED, nargs="+", default=[0, 1, 2], metavar="S",
                   help="seeds of the --sweep (default 0 1 2)")
    p.add_argument("--json", metavar="OUT.json", default=None,
                   help="write test_accuracy, train_loss / train_accuracy / test_accuracy per "
                        "epoch, seconds and the settings as JSON (atomically)")
    p.add_argument("--png", metavar="CURVES.png", default=None,
                   help="draw the loss and accuracy curves (needs matplotlib: pip install "
                        "numpy-resnext[plot])")
    p.add_argument("--weights", metavar="OUT.npz", default=None,
                   help="save the trained network's tensors under canonical names; python -m "
                        "numpy_resnext.paper.trained OUT.npz shows its branch shares on held-out digits")
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


def _check(args):
    for flag, value, least in (("--threads", args.threads, 0), ("--epochs", args.epochs, 1),
                               ("--batch-size", args.batch_size, 2)):
        if value < least:
            why = " (BatchNorm needs two images)" if flag == "--batch-size" else ""
            raise InputError(f"{flag} must be at least {least}{why}, found {value}")
    if args.lr <= 0:
        raise InputError(f"--lr must be positive, found {args.lr}")
    if args.width is not None and args.width < 1:
        raise InputError(f"--width must be at least 1, found {args.width}")
    if args.sweep and (args.cardinality is not None or args.width is not None or args.weights):
        raise InputError("--sweep chooses every cardinality and width itself; give --cardinality, "
                         "--width and --weights only without --sweep")
    for flag, path, ext in (("--json", args.json, ".json"), ("--png", args.png, ".png"),
                            ("--weights", args.weights, ".npz")):
        if path is None:
            continue
        if ext != ".json" and not path.lower().endswith(ext):
            raise InputError(f"{flag}: expected a file name ending in {ext}, found {path!r}")
        check_output_path(path, flag, (ext,))
    if args.png:
        pyplot("--png")                       # fail before training, not after


def _config(args):
    """The network: DigitsResNeXt_4x4d, or C x d (d from the equal budget when not given)."""
    if args.cardinality is None and args.width is None:
        return DIGITS_CONFIG, ""
    C = DIGITS_CONFIG.cardinality if args.cardinality is None else args.cardinality
    if args.width is not None:
        return digits_config(C, args.width), ""
    choice = width_for(C)
    return digits_config(C, choice.width), (f"; d = {choice.width} keeps the equal budget of "
                                            f"{choice.budget:,} parameters ({choice.deviation:+.2%})")


def _machine():
    return {"cpus": os.cpu_count(), "cpu": cpu_name(), "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(), "numpy": np.__version__}


def run(args):
    _check(args)
    if args.sweep:
        return _run_sweep(args)
    cfg, note = _config(args)
    params, macs = totals(layer_plan(cfg), 8, 8)
    print(f"train-demo: {cfg.name} ({'-'.join(map(str, cfg.depths))} blocks, C = {cfg.cardinality}, "
          f"d = {cfg.base_width}, cifar stem), {params:,} parameters, {macs / 1e6:.2f} M MACs per "
          f"8x8 image{note}; {args.epochs} epochs, batch {args.batch_size}, seed {args.seed}, {args.dtype}",
          file=sys.stderr, flush=True)

    def on_epoch(epoch, h):
        print(f"[{h['seconds'][-1]:6.1f}s] epoch {epoch}/{args.epochs}: train loss "
              f"{h['train_loss'][-1]:.4f}, train accuracy {h['train_accuracy'][-1]:.1%}, "
              f"held-out accuracy {h['test_accuracy'][-1]:.1%}", file=sys.stderr, flush=True)
    with _blas_threads(args.threads):
        result = train_digits(epochs=args.epochs, seed=args.seed, batch_size=args.batch_size,
                              lr=args.lr, dtype=args.dtype, config=cfg, on_epoch=on_epoch)
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
            "machine": _machine(),
        }
        save_json(args.json, report)
        print(f"wrote {args.json}")
    if args.weights:
        save_npz(args.weights, dict(result.model.params))
        print(f"wrote {args.weights}")
    if args.png:
        plot_curves(result.history, args.png,
                    title=f"{cfg.name} on scikit-learn's digits (seed {args.seed}): held-out "
                          f"accuracy {result.test_accuracy:.1%}\none run: it repeats bit for bit on the "
                          f"same machine, BLAS and thread count only (docs/digits.md)")
        print(f"wrote {args.png}")
    return 0


def _run_sweep(args):
    def on_run(r):
        print(f"[{r['seconds']:6.1f}s] C = {r['cardinality']:2d}, d = {r['width']:2d} "
              f"({r['params']:,} parameters), seed {r['seed']}: held-out accuracy {r['test_accuracy']:.2%}",
              file=sys.stderr, flush=True)
    with _blas_threads(args.threads):
        runs = run_sweep(seeds=tuple(args.seeds), on_run=on_run, epochs=args.epochs,
                         batch_size=args.batch_size, lr=args.lr, dtype=args.dtype)
    rows = summarize(runs)
    print(format_summary(rows, budget()))
    if args.json:
        save_json(args.json, {"budget": budget(), "summary": rows, "runs": runs, "machine": _machine(),
                              "settings": {"epochs": args.epochs, "batch_size": args.batch_size,
                                           "lr": args.lr, "dtype": args.dtype, "seeds": args.seeds,
                                           "blas_threads": args.threads or "default"}})
        print(f"wrote {args.json}")
    if args.png:
        plot_sweep(runs, args.png, title=f"cardinality against width at {budget():,} parameters, "
                                         f"digits, {len(args.seeds)} seeds, {args.epochs} epochs")
        print(f"wrote {args.png}")
    return 0
