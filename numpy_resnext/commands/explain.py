"""``numpy-resnext explain``: one block's split-transform-merge, branch by branch."""

import os


from .._optional import pyplot
from ..errors import InputError
from ..paper.explain import (block_layout, branch_contributions, check_contributions, denormalize,
                       format_contributions, format_layout, image_to_input, plot_contributions,
                       synthetic_image)
from ..plan import layer_plan
from ..shapes import check_input_size
from ._common import (SIZE, Progress, add_command, add_model_options, allow_nonfinite,
                      check_output_path, integer, load_input, load_model)


def add_parser(sub):
    p = add_command(
        sub, "explain", "one block as C branches: shapes, parameters, MACs, and their contributions",
        "numpy-resnext explain ResNeXt50_32x4d --block layer1.1 --input cat.jpg --png branches.png",
        description="Lay out one bottleneck block as the paper's split-transform-merge (Fig. "
                    "3a): each branch's shapes, parameters and multiply-accumulates, the "
                    "aggregation, and how the engine runs the same arithmetic as a grouped "
                    "convolution. With --input, also each branch's contribution to the "
                    "block's aggregated transform on that input; with --png, a figure of them "
                    "(needs matplotlib: pip install 'numpy-resnext[plot]').")
    add_model_options(p, default_dtype="float32", arch_required=True)
    p.add_argument("--block", default="layer1.1",
                   help="block name, layerS.I (default layer1.1: the block the paper draws in Fig. 3)")
    p.add_argument("--input", default=None,
                   help="image (.jpg/.png with Pillow), uint8 (H, W, 3) .npy, or preprocessed "
                        "float (3, H, W) / (N, 3, H, W) .npy")
    p.add_argument("--png", default=None, metavar="OUT.png",
                   help="write a figure of the branches' contributions (with no --input the "
                        "input is a seeded synthetic picture of discs and bars, --input-size)")
    p.add_argument("--input-size", nargs=2, type=SIZE, metavar=("H", "W"), default=(224, 224),
                   help="input size for the tables when there is no --input (default 224 224)")
    p.add_argument("--top", type=integer(0), default=0,
                   help="list only the N largest contributions (default 0: every branch)")
    return p


def run(args):
    for flag, path in (("--input", args.input), ("--weights", args.weights)):
        if path is not None and not os.path.exists(path):
            raise InputError(f"{flag}: {path!r} does not exist")
    if args.top < 0:
        raise InputError(f"--top must be at least 0 (0 lists every branch), found {args.top}")
    if args.png is not None and not args.png.lower().endswith(".png"):
        raise InputError(f"--png: expected a file name ending in .png, found {args.png!r}")
    if args.png is not None:
        pyplot("--png")                 # fail before the slow part, not after
        check_output_path(args.png, "--png", (".png",))
    plan = layer_plan(args.arch)
    plan.block(args.block)                          # a clear error for an unknown block, early
    x = load_input(args.input, args.dtype, allow_nonfinite=allow_nonfinite(args))[0] \
        if args.input else None
    h, w = x.shape[2:] if x is not None else args.input_size
    check_input_size(plan, h, w, "input")
    lay = block_layout(plan, args.block, h, w)
    print(format_layout(lay))
    if x is None and args.png is None:
        return 0
    progress = Progress("explain", total=2)
    model = load_model(args)
    note, image = "", None
    if x is None:
        check_contributions(model.plan, (1, 3, h, w), args.dtype, args.block, image=True)
        image = synthetic_image(h, w, args.seed)           # shapes to react to, not noise
        x = image_to_input(image, args.dtype)
        note = f"\nsynthetic input (seed {args.seed})"
    elif args.input:
        image = denormalize(x[0])
    if args.weights is None:
        note += ("; " if note else "\n") + (f"untrained weights of build(seed={args.seed}, "
                                             f"init={getattr(args, 'init', 'calibrated')!r})")
    if args.input:
        check_contributions(model.plan, x.shape, x.dtype, args.block,
                            source=f"--input {args.input!r}")
    progress.update(1, "running the branches")
    contrib = branch_contributions(model, x, args.block, allow_nonfinite=allow_nonfinite(args))
    print()
    print(format_contributions(contrib, args.block, args.top))
    if args.png:
        plot_contributions(contrib, lay, args.png, image=image, title_note=note)
        print(f"\nwrote {args.png}")
    progress.done()
    return 0
