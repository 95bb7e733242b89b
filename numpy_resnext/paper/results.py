"""The paper's results as data: every number with the table or section that prints it.

Numbers only, as facts (no prose of the paper). The paper is Xie, Girshick, Dollár, Tu and
He, *Aggregated Residual Transformations for Deep Neural Networks*, CVPR 2017
(arXiv:1611.05431). Error rates are in percent on the ImageNet-1K validation set, single
224x224 crop, unless a row says otherwise. :mod:`numpy_resnext.paper.docgen` renders these
tables into docs/paper_results.md beside what this package computes for the same settings
(parameters and multiply-accumulates from the layer plan).

``checked`` on every row says how far the numbers were confirmed:

- ``"second source"``: found again in a public source other than the paper, named in
  :data:`SOURCES` (the authors' repository README, the WSL-Images model card,
  PaddleClas's model tables);
- ``"computed"``: recomputed here from the layer plan (parameter counts);
- ``"paper only"``: transcribed from the paper and not confirmed by a second source;
- ``"top-1: second source"``: the top-1 error confirmed, the rest paper only.
"""

from __future__ import annotations

from typing import NamedTuple

PAPER = ("Xie, Girshick, Dollár, Tu, He: Aggregated Residual Transformations for Deep Neural "
         "Networks, CVPR 2017 (arXiv:1611.05431)")
WSL_PAPER = ("Mahajan, Girshick, Ramanathan, He, Paluri, Li, Bharambe, van der Maaten: Exploring "
             "the Limits of Weakly Supervised Pretraining, ECCV 2018 (arXiv:1805.00932)")

# Where each numbered item of the paper is printed: the one place this package cites from.
LOCATIONS = {
    "Fig. 1": "§1", "Table 1": "§3.1", "Eq. 1": "§3.2", "Fig. 2": "§3.2",
    "Eq. 2": "§3.3", "Eq. 3": "§3.3", "Fig. 3": "§3.3", "Fig. 4": "§3.3",
    "Eq. 4": "§3.4", "Table 2": "§3.4",
    "Table 3": "§5.1", "Table 4": "§5.1", "Table 5": "§5.1", "Fig. 5": "§5.1",
    "Table 7": "§5.3", "Table 8": "§5.4",
}
SECTIONS = {
    "§1": "Introduction", "§3.1": "Template", "§3.2": "Revisiting Simple Neurons",
    "§3.3": "Aggregated Transformations", "§3.4": "Model Capacity",
    "§5.1": "Experiments on ImageNet-1K", "§5.3": "Experiments on CIFAR",
    "§5.4": "Experiments on COCO object detection",
}
SOURCES = {
    "repo": "facebookresearch/ResNeXt README (the authors' code): 1x-complexity (C, d) table and "
            "single-crop top-1 errors of ResNet-50/101, ResNeXt-50 32x4d, ResNeXt-101 32x4d and 64x4d",
    "wsl-card": "facebookresearch/WSL-Images README (the WSL models' card): data set, parameters, FLOPs, accuracies",
    "paddleclas": "PaddleClas's published ImageNet accuracies of its ResNeXt weights",
}


def cite(item: str) -> str:
    """"Table 2 (§3.4, Model Capacity)": an item of the paper with its section."""
    section = LOCATIONS[item]
    return f"{item} ({section}, {SECTIONS[section]})"


class Setting(NamedTuple):
    """One row of an ImageNet table: a network and its errors (None: not reported)."""

    network: str
    depths: tuple          # blocks per stage (for recomputing its size here)
    cardinality: int
    width: int             # the bottleneck width d
    top1: float
    top5: float | None
    checked: str           # "second source", "paper only"
    note: str = ""


# Table 3: cardinality against width, complexity preserved (about 4.1 / 7.8 G multiply-adds)
TABLE3 = (
    Setting("ResNet-50", (3, 4, 6, 3), 1, 64, 23.9, None, "second source"),
    Setting("ResNeXt-50", (3, 4, 6, 3), 2, 40, 23.0, None, "paper only"),
    Setting("ResNeXt-50", (3, 4, 6, 3), 4, 24, 22.6, None, "paper only"),
    Setting("ResNeXt-50", (3, 4, 6, 3), 8, 14, 22.3, None, "paper only"),
    Setting("ResNeXt-50", (3, 4, 6, 3), 32, 4, 22.2, None, "second source"),
    Setting("ResNet-101", (3, 4, 23, 3), 1, 64, 22.0, None, "second source"),
    Setting("ResNeXt-101", (3, 4, 23, 3), 2, 40, 21.7, None, "paper only"),
    Setting("ResNeXt-101", (3, 4, 23, 3), 4, 24, 21.4, None, "paper only"),
    Setting("ResNeXt-101", (3, 4, 23, 3), 8, 14, 21.3, None, "paper only"),
    Setting("ResNeXt-101", (3, 4, 23, 3), 32, 4, 21.2, None, "second source"),
)

# Table 4: doubling the complexity of ResNet-101 by going deeper, wider, or to more cardinality
TABLE4 = (
    Setting("ResNet-101", (3, 4, 23, 3), 1, 64, 22.0, 6.0, "top-1: second source", "1x complexity, reference"),
    Setting("ResNeXt-101", (3, 4, 23, 3), 32, 4, 21.2, 5.6, "top-1: second source", "1x complexity, reference"),
    Setting("ResNet-200", (3, 24, 36, 3), 1, 64, 21.7, 5.8, "paper only", "2x: deeper"),
    Setting("ResNet-101, wider", (3, 4, 23, 3), 1, 100, 21.3, 5.7, "paper only", "2x: wider"),
    Setting("ResNeXt-101", (3, 4, 23, 3), 2, 64, 20.7, 5.5, "paper only", "2x: more cardinality"),
    Setting("ResNeXt-101", (3, 4, 23, 3), 64, 4, 20.4, 5.3, "top-1: second source", "2x: more cardinality"),
)


class Crop(NamedTuple):
    """One row of Table 5: single-crop errors at 224x224 and at a larger test crop."""

    network: str
    top1_224: float | None
    top5_224: float | None
    crop: int | None          # the larger crop's side (320 or 299), None if not reported
    top1_large: float | None
    top5_large: float | None
    checked: str


# Table 5: state-of-the-art models, single-crop testing
TABLE5 = (
    Crop("ResNet-101", 22.0, 6.0, None, None, None, "top-1: second source"),
    Crop("ResNet-200", 21.7, 5.8, 320, 20.1, 4.8, "paper only"),
    Crop("Inception-v3", None, None, 299, 21.2, 5.6, "paper only"),
    Crop("Inception-v4", None, None, 299, 20.0, 5.0, "paper only"),
    Crop("Inception-ResNet-v2", None, None, 299, 19.9, 4.9, "paper only"),
    Crop("ResNeXt-101 (64x4d)", 20.4, 5.3, 320, 19.1, 4.4, "224 top-1: second source"),
)


class Cifar(NamedTuple):
    """One row of Table 7: parameters (millions) and test errors on CIFAR-10 / CIFAR-100."""

    network: str
    cardinality: int | None   # None: not a ResNeXt
    width: int | None
    params_m: float
    cifar10: float
    cifar100: float
    checked: str


# Table 7: ResNeXt-29 (three stages of three blocks, CIFAR stem) against a Wide ResNet
TABLE7 = (
    Cifar("Wide ResNet", None, None, 36.5, 4.17, 20.50, "paper only"),
    Cifar("ResNeXt-29, 8x64d", 8, 64, 34.4, 3.65, 17.77, "computed (parameters)"),
    Cifar("ResNeXt-29, 16x64d", 16, 64, 68.1, 3.58, 17.31, "computed (parameters)"),
)
CIFAR_DEPTHS = (3, 3, 3)      # ResNeXt-29: 3 stages x 3 blocks x 3 layers + stem + fc = 29
CIFAR_NOTE = ("the authors' README says the paper's CIFAR numbers come from pre-activation "
              "bottlenecks and batch 256; this package builds the original (post-activation) block")


class Detection(NamedTuple):
    """One row of Table 8: Faster R-CNN on COCO minival with a given backbone."""

    backbone: str
    ap50: float
    ap: float
    checked: str


# Table 8: object detection, AP at IoU 0.5 and AP averaged over IoU 0.5:0.95
TABLE8 = (
    Detection("ResNet-50", 47.6, 26.5, "paper only"),
    Detection("ResNeXt-50", 49.7, 27.5, "paper only"),
    Detection("ResNet-101", 51.1, 29.8, "paper only"),
    Detection("ResNeXt-101", 51.9, 30.0, "paper only"),
)

# §3.3, Fig. 4: why the block needs depth >= 3 (a claim, executed by story.depth_collapse)
DEPTH_CLAIM = ("§3.3, Fig. 4", "the reformulation of Fig. 3 gives a non-trivial topology only for "
               "blocks of depth >= 3; C branches of depth 2 aggregate into one wide dense block")


class Wsl(NamedTuple):
    """A WSL model: weakly supervised pre-training on Instagram, fine-tuned on ImageNet-1K."""

    arch: str                 # this package's name for it
    card_params_m: int        # the model card's parameters (millions)
    card_gflops: int          # the model card's FLOPs (billions of multiply-adds)
    top1: float               # accuracy (not error), percent, model card
    top5: float
    paddleclas: tuple | None  # PaddleClas's published (top-1, top-5) accuracy, when gathered


WSL_DATA = ("about 940 million public Instagram images, weakly labelled by 1.5 thousand hashtags "
            "matched to the 1,000 ImageNet-1K synsets; pre-trained on them, then fine-tuned on ImageNet-1K")
WSL = (
    Wsl("ResNeXt101_32x8d_wsl", 88, 16, 82.2, 96.4, (82.6, 96.7)),
    Wsl("ResNeXt101_32x16d_wsl", 193, 36, 84.2, 97.2, None),
    Wsl("ResNeXt101_32x32d_wsl", 466, 87, 85.1, 97.5, None),
    Wsl("ResNeXt101_32x48d_wsl", 829, 153, 85.4, 97.6, (85.4, 97.7)),
)
