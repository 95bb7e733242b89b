"""``numpy-resnext classify``: top-k ImageNet classes of images, with PaddleClas's preprocessing."""

import json
import os

from ..errors import InputError
from ..labels import label_names, short_name, top_k
from ..preprocess import describe, load_image
from ._common import Progress, add_command, add_model_options, allow_nonfinite, cast_input, load_model


def add_parser(sub):
    p = add_command(
        sub, "classify", "top-k classes of images (.jpg/.png with Pillow, or .npy)",
        "numpy-resnext classify ResNeXt50_32x4d --weights ResNeXt50_32x4d_pretrained.pdparams "
        "cat.jpg dog.npy --top 5",
        description="Classify images the way PaddleClas evaluates its ResNeXt weights: "
                    "resize the short side to 256 (bilinear, OpenCV's rounding), center crop "
                    "224, scale to [0, 1], subtract the ImageNet mean, divide by the std. "
                    "A .npy file holds either uint8 (H, W, 3) RGB pixels (preprocessed here) "
                    "or float (3, H, W) values already preprocessed (used as they are). "
                    "Other image files need Pillow: pip install 'numpy-resnext[image]'.")
    add_model_options(p, default_dtype="float32", arch_required=True)
    p.add_argument("images", nargs="+", metavar="IMAGE", help="image files or .npy arrays")
    p.add_argument("--top", type=int, default=5, help="classes to list per image (default 5)")
    p.add_argument("--json", action="store_true", help="one JSON object per image")
    return p


def _check_args(args):
    missing = [f for f in args.images if not os.path.exists(f)]
    if missing:
        raise InputError("image file(s) not found: " + ", ".join(repr(m) for m in missing))
    if args.weights is not None and not os.path.exists(args.weights):
        raise InputError(f"--weights: {args.weights!r} does not exist")
    if args.top < 1:
        raise InputError(f"--top must be at least 1, found {args.top}")


def run(args):
    _check_args(args)
    progress = Progress("classify", total=len(args.images))
    model = load_model(args)
    names = label_names(model.config.num_classes)
    k = min(args.top, model.config.num_classes)
    if args.weights is None and not args.json:
        print(f"note: {model.config.name} has seeded random weights (no --weights); "
              f"these predictions are meaningless")
    elif not args.json:
        print(f"{model.config.name}, weights {args.weights}; preprocessing: {describe()}")
    for done, path in enumerate(args.images):
        x = cast_input(load_image(path, args.dtype), args.dtype, path,   # 3, H, W
                       allow_nonfinite(args))
        logits = model(x[None], allow_nonfinite=allow_nonfinite(args))[0]  # classes
        best = top_k(logits, k)
        if args.json:
            print(json.dumps({"image": path, "arch": model.config.name, "weights": args.weights,
                              "top": [{"index": i, "probability": p, "label": names[i]}
                                      for i, p in best]}))
        else:
            print(f"\n{path}")
            for rank, (i, p) in enumerate(best, 1):
                print(f"  {rank}. {p:7.2%}  {i:4d}  {short_name(names[i])}")
        progress.update(done + 1, path)
    progress.done()
    return 0
