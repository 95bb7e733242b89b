"""``numpy-resnext summary``: per-layer table and totals of an architecture."""

import json

from ..plan import layer_plan
from ..shapes import check_input_size
from ..summary import format_summary, summarize
from ._common import SIZE, add_command


def add_parser(sub):
    p = add_command(sub, "summary", "per-layer shapes, groups, parameters and MACs",
                    "numpy-resnext summary ResNeXt50_32x4d --input-size 224 224 --json")
    p.add_argument("arch", help="architecture name (see `numpy-resnext archs`)")
    p.add_argument("--input-size", nargs=2, type=SIZE, metavar=("H", "W"), default=(224, 224),
                   help="input height and width the shapes and MACs are computed for (default 224 224)")
    p.add_argument("--json", action="store_true",
                   help="one JSON object: params (trainable), macs (conv + fc), layers")
    return p


def run(args):
    plan = layer_plan(args.arch)
    h, w = args.input_size
    check_input_size(plan, h, w, "--input-size")
    s = summarize(plan, (h, w))
    print(json.dumps(s) if args.json else format_summary(s))
    return 0
