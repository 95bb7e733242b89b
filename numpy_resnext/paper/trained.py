"""explain's branch shares on weights that learned something: a digits network trained by
``train-demo --weights``.

On seeded weights the share of branch i, share_i = <T_i, T> / <T, T> (T = sum of the C
branch outputs T_i, before bn3; :func:`numpy_resnext.paper.explain.branch_contributions`),
mostly reflects the random per-channel scales of the initialisation. Here the same measure
is taken on held-out digits passed through a trained network, where it says how training
divided the block's work among its branches. docs/digits.md shows the figure and reads it.

    numpy-resnext train-demo --cardinality 32 --weights digits_32x2d.npz
    python -m numpy_resnext.paper.trained digits_32x2d.npz --block layer1.0 --png shares.png
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from ..bounded import read_npz
from ..errors import InputError, ResNeXtError
from ..model import build
from .digits import make_split
from .explain import block_layout, branch_contributions, format_contributions, plot_contributions
from .sweep import digits_config


def config_of(params):
    """The digits network a trained state holds: C and d read off layer1.0's grouped conv,
    (C*d, d, 3, 3)."""
    name = "layer1.0.conv2.weight"
    if name not in params or np.ndim(params[name]) != 4:
        raise InputError(f"expected a train-demo state with {name} (C*d, d, 3, 3), found "
                         f"{'no such tensor' if name not in params else np.shape(params[name])}")
    width, d = params[name].shape[:2]
    return digits_config(width // d, d)


def load_trained(path):
    """The model ``train-demo --weights path`` saved (inference BatchNorm, its dtype); read
    with the package's bounded .npz reader, checked strictly against the network's tensors."""
    params = dict(read_npz(path, "train-demo weights"))
    config = config_of(params)
    return build(config, weights=params, dtype=params["layer1.0.conv2.weight"].dtype.name)


def held_out(seed=0, count=None, dtype="float32"):
    """The held-out digits of train-demo's split for ``seed`` (the split the weights never saw)."""
    split = make_split(seed, dtype=dtype)
    n = len(split.y_test) if count is None else count
    return split.x_test[:n], split.y_test[:n], split


def montage(x, rows=4, cols=4):
    """The first rows*cols digits of x (N, 3, 8, 8) tiled into one grey (8*rows, 8*cols, 3) uint8 picture."""
    tiles = x[:rows * cols, 0]                                           # n, 8, 8
    lo, hi = float(tiles.min()), float(tiles.max())
    grid = tiles.reshape(rows, cols, 8, 8).transpose(0, 2, 1, 3).reshape(rows * 8, cols * 8)
    grey = np.round(255 * (grid - lo) / max(hi - lo, 1e-12)).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m numpy_resnext.paper.trained",
                                description="Branch shares of a block of a train-demo network on "
                                            "held-out digits (docs/digits.md).")
    p.add_argument("weights", help="a file written by train-demo --weights")
    p.add_argument("--block", default="layer1.0")
    p.add_argument("--seed", type=int, default=0, help="the seed train-demo trained with (its split)")
    p.add_argument("--png", default=None)
    args = p.parse_args(argv)
    try:
        model = load_trained(args.weights)
        x, y, _ = held_out(args.seed, dtype=model.dtype.name)
        contrib = branch_contributions(model, x, args.block)
        acc = float((model(x).argmax(axis=1) == y).mean())
        print(f"{model.config.name}, held-out accuracy {acc:.2%} on {len(y)} digits")
        print(format_contributions(contrib, args.block))
        if args.png:
            lay = block_layout(model.plan, args.block, 8, 8)
            plot_contributions(contrib, lay, args.png, image=montage(x),
                               title_note=f"\ntrained by train-demo (seed {args.seed}), shares over its "
                                          f"{len(y)} held-out digits (input: the first 16)")
            print(f"wrote {args.png}")
    except (ResNeXtError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
