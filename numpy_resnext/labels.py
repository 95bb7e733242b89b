"""ImageNet-1k class names, in the index order the published ResNeXt weights use.

``data/imagenet1k_labels.txt`` holds one class per line, line i = class i (0-based), each
line the WordNet synonyms separated by commas ("tench, Tinca tinca"). The list is the one
PaddleClas ships for its ImageNet models (ppcls/utils/imagenet1k_label_list.txt) with the
leading index removed. Two names occur twice ("crane", "maillot"): ImageNet has two
different synsets for each, so a label is identified by its index, not its name.
"""

from __future__ import annotations

import functools
from importlib import resources

import numpy as np

from .errors import InputError
from .ops.loss import softmax  # noqa: F401  (top_k uses it; also importable from here)

NUM_IMAGENET_CLASSES = 1000


@functools.lru_cache(maxsize=1)
def imagenet_labels() -> tuple:
    """The 1000 ImageNet-1k class names, index i = class i."""
    text = resources.files(__package__).joinpath("data/imagenet1k_labels.txt").read_text("utf-8")
    labels = tuple(line.strip() for line in text.splitlines() if line.strip())
    if len(labels) != NUM_IMAGENET_CLASSES:   # a damaged install, not a user error
        raise RuntimeError(f"imagenet1k_labels.txt holds {len(labels)} names, expected 1000")
    return labels


def label_names(num_classes: int) -> tuple:
    """Names for a head of ``num_classes`` outputs: ImageNet's for 1000, "class i" otherwise."""
    if num_classes == NUM_IMAGENET_CLASSES:
        return imagenet_labels()
    return tuple(f"class {i}" for i in range(num_classes))


def short_name(label: str) -> str:
    """The first synonym: "great white shark, white shark, ..." -> "great white shark"."""
    return label.split(",")[0].strip()


def top_k(logits: np.ndarray, k: int = 5):
    """[(index, probability)] of the k most probable classes of one logit vector (classes,),
    most probable first; ties keep the lower index first."""
    logits = np.asarray(logits)
    if logits.ndim != 1:
        raise InputError(f"top_k: expected one logit vector (classes,), found shape {logits.shape}")
    if k < 1:
        raise InputError(f"top_k: k must be at least 1, found {k}")
    p = softmax(logits)
    order = np.argsort(-p, kind="stable")[:k]
    return [(int(i), float(p[i])) for i in order]
