"""Training a tiny ResNeXt with the NumPy backward on scikit-learn's digits (``train-demo``).

The data: the 1,797 handwritten digits (8x8 grey images, values 0..16, ten classes) that
scikit-learn ships inside its package, so nothing is downloaded
(``pip install 'numpy-resnext[digits]'``). They are scaled to [0, 1], standardised with the
training split's mean and standard deviation, and repeated on the three input channels
the stem expects. The held-out split is stratified (the same share of every class) and
seeded.

The network: the paper's CIFAR form (Sec. 5.3) shrunk to fit 8x8 images,
:data:`DIGITS_CONFIG`: a 3x3/1 stem conv + BN + ReLU without max-pool, three stages of one
bottleneck each (layer1 at 8x8, layer2 at 4x4, layer3 at 2x2; outputs 256, 512 and 1024
channels as in the paper's CIFAR ResNeXt), cardinality C = 4 and bottleneck width d = 4,
then global average pooling and a 10-way fully connected layer. Its layers are the layer
plan's (:func:`numpy_resnext.plan.layer_plan`), run by the same forward and backward as the
ImageNet models.

The training: :func:`numpy_resnext.train.train_step` in place, i.e. BatchNorm with batch
statistics, mean softmax cross-entropy, the network backward, and momentum SGD with L2
weight decay the way Paddle's ``Momentum`` applies it (``v = mu*v + (g + wd*p)``,
``p -= lr*v``), the learning rate following a cosine from ``lr`` to 0 over all steps
(:func:`lr_at`). Every random choice (split, initialisation, batch order) comes from the
seed. A run repeats bit for bit on the same machine, NumPy and BLAS build and BLAS thread
count; anything that changes the last bit of a float32 sum (another CPU kind, whose BLAS
kernel adds in another order, or another thread count) changes the trajectory from the first
step on. :func:`nudge_last_bit` makes such a change on purpose, to measure the spread that
remains (docs/digits.md).
"""

from __future__ import annotations

import math
import time
from typing import NamedTuple

import numpy as np

from .._files import save_figure
from .._optional import install_hint, pyplot, require
from ..archs import custom
from ..errors import InputError
from ..model import build
from ..train import train_step

DIGITS_HINT = install_hint("sklearn")
DIGITS_CONFIG = custom(depths=(1, 1, 1), stem="cifar", cardinality=4, base_width=4, stem_width=16,
                       num_classes=10, name="DigitsResNeXt_4x4d")
DEFAULTS = dict(epochs=10, batch_size=64, lr=0.05, momentum=0.9, weight_decay=5e-4,
                test_fraction=0.2)


class Split(NamedTuple):
    """The digits as network inputs: (N, 3, 8, 8) arrays and integer labels."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    mean: float            # of the training pixels in [0, 1], used for both splits
    std: float

    @property
    def background(self) -> float:
        """The input value of a blank (0) pixel after standardisation."""
        return -self.mean / self.std


def load_digits_images():
    """(images (1797, 8, 8) float64 in [0, 1], labels (1797,) int64) from scikit-learn's
    bundled copy; a clear error naming the extra when scikit-learn is missing."""
    data = require("sklearn.datasets", "the digits data set").load_digits()
    return data.images.astype(np.float64) / 16.0, data.target.astype(np.int64)


def stratified_split(labels, test_fraction, seed):
    """(train indices, test indices): of every class, round(n_class * test_fraction) samples
    drawn at random (seeded) go to the test split. Both index arrays are sorted."""
    labels = np.asarray(labels)
    if not 0 < test_fraction < 1:
        raise InputError(f"test_fraction must lie in (0, 1), found {test_fraction}")
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        k = int(round(len(members) * test_fraction))
        test.append(rng.permutation(members)[:k])
    test = np.sort(np.concatenate(test))
    train = np.setdiff1d(np.arange(len(labels)), test)
    return train, test


def make_split(seed=0, test_fraction=DEFAULTS["test_fraction"], dtype="float32", images=None) -> Split:
    """The stratified, seeded split as standardised (N, 3, 8, 8) network inputs."""
    if images is None:
        images = load_digits_images()
    x, y = images
    train, test = stratified_split(y, test_fraction, seed)
    mean, std = float(x[train].mean()), float(x[train].std())

    def inputs(idx):
        z = (x[idx] - mean) / std                                        # n, 8, 8
        return np.ascontiguousarray(np.repeat(z[:, None], 3, axis=1), dtype=dtype)  # n, 3, 8, 8
    return Split(inputs(train), y[train], inputs(test), y[test], mean, std)


def epoch_batches(n, batch_size, rng):
    """One epoch's batches of indices into the training set, in a random (seeded) order;
    a last batch of one sample joins the batch before it (BatchNorm needs two)."""
    order = rng.permutation(n)
    cuts = list(range(batch_size, n, batch_size))
    if cuts and n - cuts[-1] < 2:
        cuts.pop()
    return np.split(order, cuts)


def shift_augment(x, rng, background, max_shift=1):
    """Each image moved by a random (seeded) whole-pixel shift of up to ``max_shift`` rows
    and columns, the uncovered border filled with the background value: the translation
    part of the paper's CIFAR augmentation (its horizontal flips would turn digits into
    other shapes, so there are none). A new array; ``x`` is not modified."""
    m = max_shift
    N, _, H, W = x.shape
    pad = np.pad(x, ((0, 0), (0, 0), (m, m), (m, m)), constant_values=background)  # N, 3, H+2m, W+2m
    dy, dx = rng.integers(-m, m + 1, size=(2, N))
    out = np.empty_like(x)
    for i in range(N):
        out[i] = pad[i, :, m + dy[i]:m + dy[i] + H, m + dx[i]:m + dx[i] + W]
    return out


def lr_at(step, total_steps, lr):
    """Cosine schedule: lr at step 0, falling to 0 after ``total_steps`` steps."""
    return lr * 0.5 * (1.0 + math.cos(math.pi * step / max(total_steps, 1)))


def accuracy(model, x, y, batch_size=512):
    """Share of ``x`` classified as ``y`` (inference BN, running statistics)."""
    hits = 0
    for i in range(0, len(x), batch_size):
        hits += int((model(x[i:i + batch_size]).argmax(axis=1) == y[i:i + batch_size]).sum())
    return hits / max(len(x), 1)


class DemoResult(NamedTuple):
    model: object              # the trained :class:`~numpy_resnext.model.ResNeXt`
    history: dict              # per epoch: train_loss, train_accuracy, test_accuracy, seconds
    test_accuracy: float       # after the last epoch
    seconds: float             # data + training + evaluation, wall clock
    steps: int
    split: Split


INIT = "identity-bn"


def initial_model(config=DIGITS_CONFIG, seed=0, dtype="float32", nudge=None):
    """The untrained network: He-normal convolutions and BatchNorm at scale 1, shift 0
    (``build(init="identity-bn")``), the usual start of training from scratch. (build()'s
    default calibrated weights set BN statistics for inference-mode forward passes; training
    normalises with batch statistics and replaces the running ones as it goes.) ``nudge``:
    see :func:`nudge_last_bit`."""
    model = build(config, seed=seed, dtype=dtype, init=INIT)
    if nudge is not None:
        model.params.update(nudge_last_bit(model.params, nudge))
    return model


def nudge_last_bit(params, seed) -> dict:
    """Every convolution and fc weight moved by one unit in the last place, up or down or not
    at all (seeded, a third each): a stand-in for another CPU, whose sums round differently
    in the last bit. New arrays under the same names; ``params`` is not modified."""
    rng = np.random.default_rng([seed, 2])
    out = {}
    for name, w in params.items():
        if name.endswith(".weight") and w.ndim > 1:                      # conv (K, C/G, R, S), fc (out, in)
            toward = np.where(rng.integers(-1, 2, w.shape) > 0, np.inf, -np.inf).astype(w.dtype)
            stay = rng.integers(0, 3, w.shape) == 0
            out[name] = np.where(stay, w, np.nextafter(w, toward))
    return out


def train_digits(epochs=DEFAULTS["epochs"], seed=0, batch_size=DEFAULTS["batch_size"],
                 lr=DEFAULTS["lr"], momentum=DEFAULTS["momentum"],
                 weight_decay=DEFAULTS["weight_decay"], dtype="float32",
                 test_fraction=DEFAULTS["test_fraction"], augment=True, config=DIGITS_CONFIG, max_steps=None,
                 on_step=None, on_epoch=None, split=None, nudge=None) -> DemoResult:
    """Train ``config`` on the digits; see the module docstring for what happens.

    on_step(step, x, y, lr, step_result) is called after every SGD step with the batch it
    used (shifted by :func:`shift_augment` when ``augment``); on_epoch(epoch, history)
    after every epoch.
    max_steps stops early (the torch comparison runs 20 steps). The seed draws the split,
    the initialisation (:func:`initial_model`) and the batch order; ``nudge`` (a seed) moves
    the initial weights by one unit in the last place (:func:`nudge_last_bit`).
    """
    if epochs < 1 or batch_size < 2:
        raise InputError(f"epochs must be >= 1 and batch_size >= 2, found {epochs} and {batch_size}")
    t0 = time.perf_counter()
    split = split if split is not None else make_split(seed, test_fraction, dtype)
    model = initial_model(config, seed, dtype, nudge)
    rng = np.random.default_rng([seed, 1])                               # batch order, shifts
    n = len(split.x_train)
    per_epoch = len(epoch_batches(n, batch_size, np.random.default_rng(0)))
    total = epochs * per_epoch
    if max_steps is not None:
        total = min(total, max_steps)
    history = {k: [] for k in ("train_loss", "train_accuracy", "test_accuracy", "seconds")}
    velocity, step = {}, 0
    for epoch in range(epochs):
        losses, hits, seen = [], 0, 0
        for idx in epoch_batches(n, batch_size, rng):
            if step >= total:
                break
            rate = lr_at(step, epochs * per_epoch, lr)
            x, y = split.x_train[idx], split.y_train[idx]
            if augment:
                x = shift_augment(x, rng, split.background)
            res = train_step(model, x, y, velocity, lr=rate, momentum=momentum,
                             weight_decay=weight_decay, inplace=True)
            losses.append(res.loss * len(idx))
            hits += int((res.logits.argmax(axis=1) == y).sum())
            seen += len(idx)
            step += 1
            if on_step is not None:
                on_step(step, x, y, rate, res)
        if not seen:
            break
        history["train_loss"].append(sum(losses) / seen)
        history["train_accuracy"].append(hits / seen)              # during the epoch, train BN
        history["test_accuracy"].append(accuracy(model, split.x_test, split.y_test))
        history["seconds"].append(time.perf_counter() - t0)
        if on_epoch is not None:
            on_epoch(epoch + 1, history)
    test_acc = history["test_accuracy"][-1] if history["test_accuracy"] else float("nan")
    return DemoResult(model, history, test_acc, time.perf_counter() - t0, step, split)


def plot_curves(history, path, title=""):
    """A PNG of the training loss and the train / held-out accuracy per epoch (matplotlib)."""
    plt = pyplot("--png")
    epochs = np.arange(1, len(history["train_loss"]) + 1)
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4.2), layout="constrained")
    a.plot(epochs, history["train_loss"], "o-", color="tab:blue")
    a.set_xlabel("epoch")
    a.set_ylabel("mean softmax cross-entropy")
    a.set_title("training loss")
    a.set_yscale("log")
    b.plot(epochs, 100 * np.asarray(history["train_accuracy"]), "o-", label="train (during the epoch)")
    b.plot(epochs, 100 * np.asarray(history["test_accuracy"]), "s-", label="held-out (after the epoch)")
    b.set_xlabel("epoch")
    b.set_ylabel("accuracy (%)")
    b.set_title("accuracy")
    b.legend(loc="lower right")
    b.grid(alpha=0.3)
    a.grid(alpha=0.3)
    if title:
        fig.suptitle(title)

    save_figure(path, fig, dpi=100)
