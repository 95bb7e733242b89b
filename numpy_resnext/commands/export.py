"""``numpy-resnext export``: the model as an ONNX file (optionally with model-zoo test data)."""

import argparse
import os

from .._optional import require
from ..onnx_export.save import export
from ..onnx_export.testdata import write_test_data
from ..errors import InputError
from ._common import (COUNT, SEED, SIZE, Progress, add_command, add_model_options, check_output_path,
                      integer, load_model)

DESCRIPTION = """\
export a model as ONNX (opset 17), built from the same layer plan the NumPy forward walks:
Conv (group = cardinality), BatchNormalization (or folded into the Conv with --fold-bn), Relu,
Add, MaxPool, AveragePool (ceil_mode=1, count_include_pad=0: the vd shortcut),
GlobalAveragePool, Flatten, Gemm (transB=1). Node and value names are numpy-resnext's
intermediate names, so a runtime's tensors compare one-to-one with a golden dump. The batch
axis is dynamic ("N"); the spatial size is fixed by --size H W, or symbolic ("H", "W") with
--size dynamic (one graph for every input size; test data is then written at --test-size,
default 224 224). Weights over 512 MiB go to a sibling
OUT.onnx.data file (ONNX external data). Every file is checked with onnx.checker (full check,
strict shape inference) before it is renamed into place.
Needs the onnx package: pip install 'numpy-resnext[onnx]'."""


def add_parser(sub):
    p = add_command(
        sub, "export", "export a model as ONNX, with optional model-zoo test data",
        "numpy-resnext export ResNeXt50_32x4d --weights ResNeXt50_32x4d_pretrained.pdparams "
        "--onnx resnext50.onnx --test-data 3 --intermediates 'layer?.?'",
        description=DESCRIPTION)
    add_model_options(p, default_dtype="float32",
                      dtype_help="dtype of the exported weights, input and outputs (default float32; "
                                 "onnxruntime's CPU provider has no float64 Conv)")
    p.add_argument("--onnx", required=True, metavar="OUT.onnx", help="the ONNX file to write (atomically)")
    p.add_argument("--size", nargs="+", type=size_or_dynamic, default=[224, 224],
                   metavar="H W | dynamic",
                   help="spatial size of the input the graph declares (default 224 224), or "
                        "'dynamic' for symbolic H and W; the batch axis is dynamic")
    p.add_argument("--test-size", nargs=2, type=SIZE, default=None, metavar=("H", "W"),
                   help="with --size dynamic: the size of the --test-data inputs (default 224 224)")
    p.add_argument("--intermediates", action="append", default=None, metavar="GLOBS",
                   help="also expose these intermediates as graph outputs, after the logits: names or "
                        "glob patterns, comma-separated, repeatable (e.g. 'layer?.?,avgpool' or '*')")
    p.add_argument("--test-data", type=integer(0, 1000), default=0, metavar="N",
                   help="write N model-zoo test sets (test_data_set_0 .. N-1 beside OUT.onnx: input_0.pb, "
                        "output_0.pb, ...) from the float64 golden cast to the model's dtype")
    p.add_argument("--batch", type=COUNT, default=1, help="batch size of the test-data inputs (default 1)")
    p.add_argument("--data-seed", type=SEED, default=0,
                   help="seed of the test-data inputs (set i draws from default_rng([seed, i]); default 0)")
    p.add_argument("--fold-bn", action="store_true",
                   help="fold each BatchNorm into the Conv before it (the conv outputs before BN then "
                        "do not exist in the graph)")
    p.add_argument("--external-data", choices=["auto", "always", "never"], default="auto",
                   help="write the weights to OUT.onnx.data: auto (when over 512 MiB, default), always, never")
    return p


def size_or_dynamic(text):
    """An argparse type of one --size item: 'dynamic', or a side as :data:`SIZE` checks it."""
    if str(text).strip().lower() == "dynamic":
        return "dynamic"
    try:
        return SIZE(str(text))
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (or 'dynamic')") from None


def parse_size(items):
    """(H, W) from --size H W, or None for --size dynamic."""
    try:
        sizes = [size_or_dynamic(i) for i in items]
    except argparse.ArgumentTypeError:
        sizes = []
    if sizes == ["dynamic"]:
        return None
    if len(sizes) != 2 or "dynamic" in sizes:
        raise InputError(f"--size: expected two positive integers H W or 'dynamic', found "
                         f"{' '.join(map(str, items))}")
    return tuple(sizes)


def parse_globs(items, option="--intermediates"):
    if not items:
        return None
    names = [n.strip() for item in items for n in item.split(",") if n.strip()]
    if not names:
        raise InputError(f"{option}: no names or patterns given")
    return names


def run(args):
    require("onnx", "ONNX export")                                    # exit 2 naming the extra, before any work
    check_output_path(args.onnx, "--onnx", (".onnx",))
    size = parse_size(args.size)
    if args.test_size is not None and size is not None:
        raise InputError("--test-size: only with --size dynamic (a fixed graph's test data has its "
                         f"size); found --size {size[0]} {size[1]}")
    intermediates = parse_globs(args.intermediates)
    model = load_model(args)
    external = {"auto": None, "always": True, "never": False}[args.external_data]
    source = os.path.basename(os.path.normpath(args.weights)) if args.weights else f"seeded (seed {args.seed})"
    info = export(model, args.onnx, dtype=args.dtype, size=size, intermediates=intermediates,
                  fold=args.fold_bn, external=external, weights_source=source)
    data = f" + {info['data_file']}" if info["data_file"] else ""
    print(f"{info['arch']} {info['dtype']}: {args.onnx}{data} ({info['file_bytes'] / 1e6:.1f} MB; opset "
          f"{info['opset']}, IR {info['ir_version']}, {info['nodes']} nodes, input "
          f"{'x'.join(map(str, info['input_shape']))}, {len(info['outputs'])} output(s)"
          f"{', BN folded' if info['fold_bn'] else ''}) checked with onnx.checker in {info['seconds']:.1f} s")
    if args.test_data:
        progress = Progress("test data", total=args.test_data)
        dirs = write_test_data(args.onnx, model, args.test_data, batch=args.batch, seed=args.data_seed,
                               progress=lambda done, total, note: progress.update(done, note),
                               size=args.test_size)
        progress.done()
        print(f"test data: {len(dirs)} set(s) beside {args.onnx} (test_data_set_0 .. "
              f"test_data_set_{len(dirs) - 1}), batch {args.batch}, inputs seeded with "
              f"default_rng([{args.data_seed}, i]), outputs from the float64 golden")
    return 0
