"""``numpy-resnext classify``: top-k ImageNet classes of images, preprocessed as PaddleClas,
torchvision or timm evaluate (:mod:`numpy_resnext.preprocess.presets`)."""

import json
import os

from ..archs import get_arch
from ..errors import ArchitectureError, InputError, printable
from ..labels import label_names, short_name, top_k
from ..preprocess import PRESETS, get_preset, load_image
from ._common import (COUNT, Progress, add_command, add_model_options, allow_nonfinite, cast_input, load_model,
                      preset_spec)


def add_parser(sub):
    p = add_command(
        sub, "classify", "top-k classes of images (.jpg/.png with Pillow, or .npy)",
        "numpy-resnext classify --weights resnext50_32x4d-7cdf4587.pth cat.jpg dog.npy "
        "--preprocess torchvision --top 5\n"
        "  numpy-resnext classify ResNeXt50_32x4d --weights ResNeXt50_32x4d_pretrained.pdparams cat.jpg",
        description="Classify images the way the weights were evaluated: --preprocess paddleclas "
                    "(the default: resize the short side to 256 with OpenCV's bilinear rounding, "
                    "center crop 224, /255, ImageNet mean and std), torchvision (Pillow's "
                    "antialiased resize to 256, crop 224; torchvision:resize=232 for its V2 "
                    "weights) or timm (the architecture's pretrained config: size, crop_pct, "
                    "interpolation). The architecture is inferred from --weights when it is "
                    "not named. A .npy file holds either uint8 (H, W, 3) RGB pixels "
                    "(preprocessed here) or float (3, H, W) values already preprocessed (used "
                    "as they are). Other image files need Pillow: pip install "
                    "'numpy-resnext[image]'.")
    add_model_options(p, default_dtype="float32", arch_positional=False)
    p.add_argument("items", nargs="+", metavar="[ARCH] IMAGE",
                   help="an architecture name (optional with --weights, which says which it is) "
                        "and image files or .npy arrays")
    p.add_argument("--preprocess", default="paddleclas", metavar="PRESET", type=preset_spec,
                   help=f"image preprocessing: {', '.join(PRESETS)}, optionally with parameters "
                        "(torchvision:resize=232, timm:crop_pct=1.0); default paddleclas")
    p.add_argument("--top", type=COUNT, default=5, help="classes to list per image (default 5)")
    p.add_argument("--json", action="store_true", help="one JSON object per image")
    p.set_defaults(_more_positionals="items")     # images after the options too (cli.main)
    return p


def split_items(items, weights):
    """(architecture or None, images) from ``[ARCH] IMAGE...``: the first item is an
    architecture when it is no existing file and names one (or, without --weights, always)."""
    first, rest = items[0], list(items[1:])
    if os.path.exists(first):
        return None, list(items)
    try:
        get_arch(first)
    except ArchitectureError:
        if weights is not None:                     # an image that does not exist, or a typo
            if rest:
                raise
            return None, [first]
        raise
    if not rest:
        raise InputError(f"classify: {first!r} names an architecture; give at least one IMAGE after it")
    return first, rest


def _check_args(args):
    args.arch, args.images = split_items(args.items, args.weights)
    if args.arch is None and args.weights is None:
        raise ArchitectureError("name an architecture (see `numpy-resnext archs`) or give --weights")
    missing = [f for f in args.images if not os.path.exists(f)]
    if missing:
        raise InputError("image file(s) not found: " + ", ".join(repr(m) for m in missing))
    if args.weights is not None and not os.path.exists(args.weights):
        raise InputError(f"--weights: {args.weights!r} does not exist")
    get_preset(args.preprocess, args.arch)          # a bad spec fails before the model is built


def run(args):
    _check_args(args)
    progress = Progress("classify", total=len(args.images))
    model = load_model(args)
    preset = get_preset(args.preprocess, model.config.name)        # timm's: the architecture's config
    names = label_names(model.config.num_classes)
    k = min(args.top, model.config.num_classes)
    if args.weights is None and not args.json:
        print(f"note: {model.config.name} has seeded random weights (no --weights); "
              f"these predictions are meaningless")
    elif not args.json:
        print(f"{model.config.name}, weights {printable(args.weights)}")
    if not args.json:
        print(f"preprocessing: {preset.describe()}")
    for done, path in enumerate(args.images):
        x = cast_input(load_image(path, "float32", preset), args.dtype, path,   # 3, H, W
                       allow_nonfinite(args))
        logits = model(x[None], allow_nonfinite=allow_nonfinite(args))[0]        # classes
        best = top_k(logits, k)
        if args.json:
            print(json.dumps({"image": path, "arch": model.config.name, "weights": args.weights,
                              "preprocess": preset.to_dict(),
                              "top": [{"index": i, "probability": p, "label": names[i]}
                                      for i, p in best]}))
        else:
            print(f"\n{printable(path)}")
            for rank, (i, p) in enumerate(best, 1):
                print(f"  {rank}. {p:7.2%}  {i:4d}  {short_name(names[i])}")
        progress.update(done + 1, path)
    progress.done()
    return 0
