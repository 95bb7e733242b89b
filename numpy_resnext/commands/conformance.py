"""``numpy-resnext conformance``: ONNX runtimes against the float64 golden, one row each."""

import os
import sys

import numpy as np

from .._optional import require
from ..onnx_export.conformance import conformance
from ..onnx_export.plot import plot_conformance
from ..onnx_export.runtimes import parse_runtimes
from ..errors import InputError
from ..shapes import check_compute
from ._common import (COUNT, SEED, SIZE, add_command, add_model_options, check_output_path, save_json,
                      load_input, load_model)

DESCRIPTION = """\
export the model to ONNX once per dtype the runtimes need (float32 for onnxruntime, whose CPU
provider has no float64 Conv, and OpenVINO; float64 for onnx.reference.ReferenceEvaluator),
with every intermediate as a graph output; run every installed runtime on the same input; and
compare every tensor with numpy-resnext's float64 golden (max |runtime - golden| / max |golden|,
the measure of `numpy-resnext compare`) at the runtime's dtype tolerance (float32 1e-4,
float64 1e-10). One row per runtime: logits error, top-1 agreement, worst tensor, first
divergence. Runtimes that are not installed or lack kernels are listed as skipped, with the
reason. Exit 0 when every runtime that ran passes, 1 otherwise.
Needs the onnx package: pip install 'numpy-resnext[onnx]'."""


def add_parser(sub):
    p = add_command(
        sub, "conformance", "check ONNX runtimes against the float64 golden, one row per runtime",
        "numpy-resnext conformance ResNeXt50_vd_32x4d --size 97 113 --png conformance.png --json c.json",
        description=DESCRIPTION)
    add_model_options(p, default_dtype="float64", with_dtype=False,     # the golden is float64
                      non_finite=False)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--input", default=None,
                     help="(N, 3, H, W) float .npy or an image (preprocessed as PaddleClas evaluates)")
    src.add_argument("--size", nargs=2, type=SIZE, default=None, metavar=("H", "W"),
                     help="seeded standard-normal input of this size (default 224 224)")
    p.add_argument("--batch", type=COUNT, default=1, help="batch of the seeded input (default 1)")
    p.add_argument("--input-seed", type=SEED, default=0, help="seed of the seeded input (default 0)")
    p.add_argument("--runtimes", default="onnxruntime,onnx-reference,openvino",
                   help="comma-separated runtimes, each optionally NAME:DTYPE (default "
                        "onnxruntime,onnx-reference,openvino; also openvino-default, the device's own "
                        "precision; e.g. onnxruntime:float64 to see it refused)")
    p.add_argument("--save-onnx", default=None, metavar="DIR",
                   help="keep the exported models in DIR (default: a temporary directory)")
    p.add_argument("--json", default=None, metavar="OUT", help="also write the result as JSON")
    p.add_argument("--png", default=None, metavar="OUT.png",
                   help="plot the relative error per layer, one line per runtime (needs matplotlib)")
    return p


def run(args):
    require("onnx", "ONNX export")
    parse_runtimes(args.runtimes)                     # a clear error before any work
    for path, what, ext in ((args.json, "--json", ".json"), (args.png, "--png", ".png")):
        if path:
            check_output_path(path, what, (ext,))
    if args.save_onnx and not os.path.isdir(args.save_onnx):
        raise InputError(f"--save-onnx {args.save_onnx!r}: not an existing directory")
    args.dtype, args.non_strict = "float64", False
    if args.input:
        x, _ = load_input(args.input, "float64")
    else:
        H, W = args.size or (224, 224)
        model = load_model(args)
        check_compute(model.plan, (args.batch, 3, H, W), "float64", "golden",
                      what=f"the seeded ({args.batch}, 3, {H}, {W}) input and its golden")
        x = np.random.default_rng(args.input_seed).standard_normal((args.batch, 3, H, W))
    if args.input:
        model = load_model(args)
    model.check_input(x)
    source = os.path.basename(os.path.normpath(args.weights)) if args.weights else f"seeded (seed {args.seed})"
    result = conformance(model, x, args.runtimes, workdir=args.save_onnx, weights_source=source,
                         log=lambda s: print(s, file=sys.stderr, flush=True))
    print(result.format())
    if args.json:
        save_json(args.json, result.to_dict())
    if args.png:
        plot_conformance(result, args.png)
    return 0 if result.passed else 1
