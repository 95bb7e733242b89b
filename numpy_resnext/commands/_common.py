"""Helpers shared by the commands: examples in --help, progress, numeric option types
(each value checked when the command line is parsed: a seed is a non-negative integer, a
size a positive one below a stated cap, a tolerance a finite number), the model options
and the model they build, inputs (arrays and images), atomic writes."""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np

from .._checks import as_float_array, check_finite
from .._files import atomic_write, check_output_path, save_json, save_npy  # noqa: F401  (the commands import them from here)
from ..errors import ArchitectureError, InputError, printable
from ..init import DEFAULT_INIT, INITS
from ..model import build
from ..preprocess import describe, load_image, preprocess
from ..preprocess.presets import parse_spec
from ..shapes import check_compute, describe_run
from ..bounded import check_regular, clip_list, first_bytes, npz_names, read_npy
from ..bounded.arrays import ZIP_MAGICS
from ..io.torch.file import is_torch_file

MAX_SIZE = 1 << 20           # an image side: far beyond any camera, far below what overflows
MAX_COUNT = 1 << 20          # a batch, a number of test sets, epochs ...
MAX_SEED = (1 << 63) - 1
NON_FINITE_HELP = ("run inputs holding NaN or infinite values (refused by default) to see how "
                   "they propagate")

IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp", ".webp", ".tif", ".tiff")


def integer(low, high=None):
    """An argparse type: an integer from ``low`` to ``high`` (inclusive)."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, found {text[:40]!r}") from None
        if value < low or (high is not None and value > high):
            wanted = f"from {low} to {high:,}" if high is not None else f"of at least {low}"
            raise argparse.ArgumentTypeError(f"expected an integer {wanted}, found {text[:40]}")
        return value
    parse.__name__ = "integer"
    return parse


def number(low=0.0, positive=False):
    """An argparse type: a finite number, at least ``low`` (above it when ``positive``)."""
    def parse(text):
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, found {text[:40]!r}") from None
        if not math.isfinite(value) or value < low or (positive and value == low):
            raise argparse.ArgumentTypeError(
                f"expected a finite number {'above' if positive else 'of at least'} {low:g}, "
                f"found {text[:40]}")
        return value
    parse.__name__ = "number"
    return parse


def preset_spec(text):
    """An argparse type: a --preprocess spec, its preset, keys and numbers checked
    (:func:`numpy_resnext.preprocess.presets.parse_spec`)."""
    try:
        parse_spec(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("--preprocess ")) from None
    return text


SEED = integer(0, MAX_SEED)
SIZE = integer(1, MAX_SIZE)
COUNT = integer(1, MAX_COUNT)


def add_command(sub, name, help, example, description=None):
    """A sub-parser whose --help ends with a worked example."""
    return sub.add_parser(name, help=help, description=description or help,
                          epilog=f"example:\n  {example}",
                          formatter_class=argparse.RawDescriptionHelpFormatter)


class Progress:
    """Progress lines on stderr, shown only once work has taken more than ``after`` s."""

    def __init__(self, what, total=None, after=2.0, stream=None):
        self.what, self.total, self.after = what, total, after
        self.stream = stream or sys.stderr
        self.start = time.perf_counter()
        self._last = 0.0

    def update(self, done, note=""):
        now = time.perf_counter() - self.start
        if now < self.after or now - self._last < 1.0:
            return
        self._last = now
        frac = f"{done}/{self.total} " if self.total else ""
        print(f"[{now:6.1f}s] {self.what}: {frac}{note}", file=self.stream, flush=True)

    def done(self, note="done"):
        now = time.perf_counter() - self.start
        if now >= self.after:
            print(f"[{now:6.1f}s] {self.what}: {note}", file=self.stream, flush=True)


def load_npy(path, what="input"):
    """A .npy array, read as :func:`numpy_resnext.bounded.read_npy` reads: a regular file
    (a FIFO is refused, never waited on), a plain numeric dtype (nothing unpickled), the
    header's shape checked against the file's size and the reading ceiling first."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(f"{what}: file {path!r} does not exist")
    if is_torch_file(path):                           # torch.save(x, "x.pt"): say what to do
        raise InputError(f"{what} {path!r}: a torch.save file (a pickled tensor), not a NumPy "
                         "array; inputs are .npy files: numpy.save('x.npy', "
                         "torch.load('x.pt').numpy()) writes one (nothing in the file was read)")
    if first_bytes(path, 4, what) in ZIP_MAGICS:      # an .npz, whatever its name
        names = npz_names(path, what)                 # its directory: no member is read
        raise InputError(f"{what}: expected a plain .npy array, found an .npz archive {path!r} "
                         f"holding {clip_list(names, 8)}; save the one array with numpy.save")
    return read_npy(path, what)


def cast_input(x, dtype, what="input", allow_nonfinite=False, source=None):
    """An explicit, announced cast of a loaded input to the model dtype (never integers),
    with finite values unless ``allow_nonfinite`` (``source``: the file, for messages)."""
    label = what if source is None else f"{what} {source!r}"
    if x.dtype.kind in "iub":
        found = "" if source is None else f" in {source!r}"
        raise InputError(f"{what}: expected float32 or float64 values, found {x.dtype}{found}; "
                         f"preprocess images to floats first (see `numpy-resnext classify`)")
    x = as_float_array(x, label)
    if not allow_nonfinite:
        check_finite(x, label, "pass --allow-non-finite")
    if x.dtype == np.dtype(dtype):
        return x
    print(f"note: {what}: {x.dtype} values cast to {np.dtype(dtype)} (the model's --dtype)",
          file=sys.stderr)
    return x.astype(dtype)


# --- the model options ------------------------------------------------------------------------
def add_model_options(p, default_dtype, dtype_help=None, non_strict=False, arch_required=False,
                      with_dtype=True, arch_positional=True, non_finite=True):
    """The options :func:`load_model` reads: ARCH (optional with --weights unless
    ``arch_required``), --weights, --dtype, --seed, --init, --bn-eps and, where a command allows
    partial loads, --non-strict. A command whose precision is fixed (``with_dtype=False``)
    sets ``args.dtype`` itself; one whose positionals say themselves whether they start with
    an architecture (``arch_positional=False``: classify's ``[ARCH] IMAGE...``) sets
    ``args.arch``."""
    if not arch_positional:
        p.set_defaults(arch=None)
    elif arch_required:
        p.add_argument("arch", help="architecture name (see `numpy-resnext archs`)")
    else:
        p.add_argument("arch", nargs="?", default=None,
                       help="architecture name; may be left out when --weights names a file the "
                            "architecture can be inferred from")
    p.add_argument("--weights", default=None, help="weight file or directory (default: seeded weights)")
    if with_dtype:
        p.add_argument("--dtype", default=default_dtype, choices=["float32", "float64"],
                       help=dtype_help or f"precision of the model and its input (default {default_dtype})")
    p.add_argument("--seed", type=SEED, default=0,
                   help="seed of the initialisation when there is no --weights (default 0)")
    p.add_argument("--init", default=DEFAULT_INIT, choices=INITS,
                   help="seeded weights: BN statistics calibrated on a seeded batch (default) or "
                        "identity BatchNorm (scale 1, shift 0, mean 0, variance 1)")
    p.add_argument("--bn-eps", type=number(0.0, positive=True), default=None, metavar="EPS",
                   help="BatchNorm epsilon (default: the weights' source's: 1e-5, or Paddle's "
                        "float32(1e-5) = 9.999999747378752e-06 for weights in a Paddle naming)")
    ema = p.add_mutually_exclusive_group()
    ema.add_argument("--ema", dest="ema", action="store_true", default=None,
                     help="load the EMA copy of a torch checkpoint (state_dict_ema, model_ema)")
    ema.add_argument("--no-ema", dest="ema", action="store_false",
                     help="load the plain weights of a checkpoint that also holds an EMA copy "
                          "(default: the plain weights unless the EMA copy is all there is)")
    if non_strict:
        p.add_argument("--non-strict", action="store_true",
                       help="load what matches (e.g. a backbone without its head), keep seeded "
                            "values for the rest and list what was skipped")
    if non_finite:
        p.add_argument("--allow-non-finite", action="store_true", help=NON_FINITE_HELP)


def load_model(args):
    """The model a command asked for (arch and/or --weights, --dtype, --seed)."""
    if args.arch is None and args.weights is None:
        raise ArchitectureError("name an architecture (see `numpy-resnext archs`) or give --weights")
    strict = not getattr(args, "non_strict", False)
    model = build(args.arch, weights=args.weights, seed=args.seed, dtype=args.dtype, strict=strict,
                  init=args.init, ema=args.ema, bn_eps=getattr(args, "bn_eps", None))
    report = model.load_report
    for line in report.assumptions():
        print(f"note: {printable(line, 1000)}", file=sys.stderr)
    if not strict and args.weights is not None:
        for line in report.skipped_and_filled():
            print(f"non-strict load: {printable(line, 4000)}", file=sys.stderr)
    return model


def check_run(model, x, kind, path, keep=None):
    """The memory check of a computation on ``x`` (:func:`numpy_resnext.shapes.check_compute`),
    its message naming the input file ``path``."""
    label = {"forward": "a forward pass", "golden": "golden", "gradients": "gradients"}[kind]
    check_compute(model.plan, x.shape, model.dtype, kind, keep,
                  what=f"{label} of {describe_run(model.plan, x.shape, model.dtype)} "
                       f"(--input {path!r})")


def allow_nonfinite(args) -> bool:
    return bool(getattr(args, "allow_non_finite", False))


def warn_nonfinite(values, what):
    """One warning line when a finite input still gave NaN or infinite ``values`` (an
    overflow in the arithmetic of the dtype)."""
    bad = int(values.size - np.count_nonzero(np.isfinite(values)))
    if bad:
        print(f"warning: {bad:,} of {values.size:,} {what} are NaN or infinite", file=sys.stderr)


# --- inputs ---------------------------------------------------------------------------------
def load_input(path, dtype, what="--input", allow_nonfinite=False):
    """(x, note): an (N, 3, H, W) array of ``dtype`` from a .npy file or an image, and how it
    was made (None, or the preprocessing applied).

    An image file (by extension) or a uint8 (H, W, 3) .npy is preprocessed as PaddleClas
    evaluates, in float32 as PaddleClas computes it, then cast to ``dtype``; a float
    (3, H, W) or (N, 3, H, W) .npy is used as it is (cast, with a note, if needed).
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(f"{what}: file {path!r} does not exist")
    check_regular(path, what)                         # a directory, a FIFO: say so
    if path.lower().endswith(IMAGE_EXTS):
        x, note = load_image(path, dtype="float32"), describe()
    else:
        x, note = load_npy(path, what), None
        if x.dtype == np.uint8:
            if x.ndim != 3 or x.shape[-1] != 3:
                raise InputError(f"{what} {path!r}: expected float32 or float64 values (N, 3, H, W) "
                                 f"or (3, H, W), or a uint8 image (H, W, 3) RGB; found uint8 of "
                                 f"shape {x.shape}")
            x, note = preprocess(x, dtype="float32"), describe()
    if x.ndim == 3:
        x = x[None]                                   # (3, H, W) -> (1, 3, H, W)
    if x.ndim != 4 or x.shape[1] != 3 or 0 in x.shape:
        hint = " (channels-last? use x.transpose(0, 3, 1, 2))" if x.ndim and x.shape[-1] == 3 else ""
        raise InputError(f"{what} {path!r}: expected (3, H, W) or (N, 3, H, W) values with "
                         f"N, H and W at least 1, found shape {x.shape}{hint}")
    return cast_input(x, dtype, what, allow_nonfinite, path), note
