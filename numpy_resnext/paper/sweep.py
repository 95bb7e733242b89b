"""A miniature of the paper's Table 3 on the digits: cardinality against width at an equal
parameter budget (``train-demo --cardinality C [--width d]``, ``train-demo --sweep``).

The network is train-demo's (:data:`numpy_resnext.paper.digits.DIGITS_CONFIG`, the paper's
CIFAR form with one block per stage) with cardinality C and bottleneck width d changed. The
budget is the parameter count of the C = 32, d = 2 network (:data:`BUDGET_REFERENCE`: d = 2 is
the narrowest that leaves 32 branches room to differ from d = 1's, and the reference of the
paper's Table 2 is its largest cardinality too). For every other C, :func:`width_for` picks
the integer d whose network's trainable parameters, counted from its layer plan, come
nearest the budget, and refuses a C for which none lies within :data:`TOLERANCE`. As in the
paper, more branches means narrower ones: C = 1, 2, 4, 8, 16, 32 get d = 36, 22, 13, 7, 4, 2
(the paper's ImageNet templates: 64, 40, 24, 14, -, 4).

What a digits-size experiment can show, and what it cannot: docs/digits.md.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .._files import save_figure
from .._optional import pyplot
from ..errors import InputError
from ..params import count_params
from ..plan import layer_plan
from .digits import DIGITS_CONFIG, make_split, train_digits

SWEEP_CARDINALITIES = (1, 2, 4, 8, 16, 32)
BUDGET_REFERENCE = (32, 2)          # (C, d) whose parameter count is the budget
TOLERANCE = 0.02                    # relative, of the whole network's trainable parameters
MAX_WIDTH = 256


def digits_config(cardinality: int, width: int):
    """train-demo's network with cardinality C and bottleneck width d."""
    return DIGITS_CONFIG.replace(cardinality=cardinality, base_width=width,
                                 name=f"DigitsResNeXt_{cardinality}x{width}d")


def budget() -> int:
    """Trainable parameters of the reference network (C, d) = :data:`BUDGET_REFERENCE`."""
    return count_params(layer_plan(digits_config(*BUDGET_REFERENCE)))


class Choice(NamedTuple):
    cardinality: int
    width: int
    params: int
    budget: int

    @property
    def deviation(self) -> float:
        """(params - budget) / budget."""
        return self.params / self.budget - 1


def width_for(cardinality: int, tolerance: float = TOLERANCE) -> Choice:
    """The bottleneck width d that brings a C-branch network nearest the budget (ties: the
    narrower); an InputError when even the nearest misses it by more than ``tolerance``."""
    if cardinality < 1:
        raise InputError(f"--cardinality must be at least 1, found {cardinality}")
    target = budget()
    best = None
    for d in range(1, MAX_WIDTH + 1):
        p = count_params(layer_plan(digits_config(cardinality, d)))
        if best is None or abs(p - target) < abs(best.params - target):
            best = Choice(cardinality, d, p, target)
        if p > target:                           # the count grows with d: nothing nearer beyond
            break
    if abs(best.deviation) > tolerance:
        raise InputError(f"--cardinality {cardinality}: no bottleneck width keeps the network within "
                         f"{tolerance:.0%} of the {target:,}-parameter budget (nearest: d = {best.width}, "
                         f"{best.params:,} parameters, {best.deviation:+.1%}); give --width explicitly")
    return best


def budget_table(cardinalities=SWEEP_CARDINALITIES) -> list:
    return [width_for(C) for C in cardinalities]


def run_sweep(cardinalities=SWEEP_CARDINALITIES, seeds=(0, 1, 2), on_run=None, split_for=None,
              **train) -> list:
    """Train every (C, seed) pair at the equal budget; one dict per run (C, d, parameters,
    seed, held-out accuracy, the per-epoch history, seconds). ``train`` goes to
    :func:`numpy_resnext.paper.digits.train_digits` (epochs, max_steps, ...); ``split_for``
    (seed -> Split) replaces the data (tests use a small one); ``on_run(run)`` after each."""
    runs = []
    for choice in budget_table(cardinalities):
        for seed in seeds:
            split = split_for(seed) if split_for is not None else make_split(seed)
            r = train_digits(seed=seed, config=digits_config(choice.cardinality, choice.width),
                             split=split, **train)
            runs.append(dict(cardinality=choice.cardinality, width=choice.width, params=choice.params,
                             budget=choice.budget, seed=seed, test_accuracy=r.test_accuracy,
                             held_out=len(split.y_test), history=r.history, seconds=r.seconds))
            if on_run is not None:
                on_run(runs[-1])
    return runs


def summarize(runs) -> list:
    """Per cardinality: d, parameters, held-out error (%) per seed, its mean, min and max, and
    the last epoch's mean training loss."""
    rows = []
    for C in sorted({r["cardinality"] for r in runs}):
        mine = [r for r in runs if r["cardinality"] == C]
        err = np.array([100 * (1 - r["test_accuracy"]) for r in mine])
        loss = np.array([r["history"]["train_loss"][-1] for r in mine])
        rows.append(dict(cardinality=C, width=mine[0]["width"], params=mine[0]["params"],
                         errors=err.tolist(), mean=float(err.mean()), low=float(err.min()),
                         high=float(err.max()), train_loss=float(loss.mean())))
    return rows


def format_summary(rows, budget_params) -> str:
    lines = [f"equal budget: {budget_params:,} parameters (C = {BUDGET_REFERENCE[0]}, d = {BUDGET_REFERENCE[1]}), "
             f"widths chosen within {TOLERANCE:.0%}",
             "    C    d   parameters  deviation   held-out error %: mean [min, max] over seeds   final train loss"]
    for r in rows:
        lines.append(f"  {r['cardinality']:3d}  {r['width']:3d}  {r['params']:11,}  {r['params'] / budget_params - 1:+8.2%}"
                     f"   {r['mean']:5.2f} [{r['low']:.2f}, {r['high']:.2f}] over {len(r['errors'])}"
                     f"{'':24s}{r['train_loss']:.4f}")
    return "\n".join(lines)


def plot_sweep(runs, path, title=""):
    """Held-out error against C (every seed, the mean and the range), the last epoch's
    training loss against C, and the mean held-out accuracy per epoch for each C."""
    plt = pyplot("--png")
    rows = summarize(runs)
    Cs = np.array([r["cardinality"] for r in rows])
    fig, (a, b, c) = plt.subplots(1, 3, figsize=(16, 4.8), layout="constrained")
    for r in runs:
        a.plot(r["cardinality"], 100 * (1 - r["test_accuracy"]), "o", color="tab:blue", alpha=0.35, ms=5)
        b.plot(r["cardinality"], r["history"]["train_loss"][-1], "o", color="tab:orange", alpha=0.35, ms=5)
    a.fill_between(Cs, [r["low"] for r in rows], [r["high"] for r in rows], color="tab:blue", alpha=0.12,
                   label="range over seeds")
    a.plot(Cs, [r["mean"] for r in rows], "s-", color="tab:blue", label="mean over seeds")
    held = runs[0]["held_out"]
    a.axhline(100 / held, color="grey", lw=0.8, ls=":", label=f"one digit of {held}")
    b.plot(Cs, [r["train_loss"] for r in rows], "s-", color="tab:orange", label="mean over seeds")
    for r in rows:
        curves = np.array([x["history"]["test_accuracy"] for x in runs if x["cardinality"] == r["cardinality"]])
        c.plot(np.arange(1, curves.shape[1] + 1), 100 * curves.mean(axis=0), "-",
               label=f"C = {r['cardinality']}, d = {r['width']}")
    for ax, ylabel, what in ((a, "held-out error (%)", "held-out error after the last epoch"),
                             (b, "mean softmax cross-entropy", "training loss in the last epoch"),
                             (c, "held-out accuracy (%)", "held-out accuracy per epoch (mean over seeds)")):
        ax.set_ylabel(ylabel)
        ax.set_title(what)
        ax.grid(alpha=0.3)
    for ax in (a, b):
        ax.set_xscale("log", base=2)
        ax.set_xticks(Cs, [f"{r['cardinality']}x{r['width']}d" for r in rows])
        ax.set_xlabel("cardinality x bottleneck width (equal parameters)")
        ax.legend(fontsize=9)
    c.set_xlabel("epoch")
    c.set_ylim(80, 100)
    c.legend(fontsize=9, loc="lower right")
    if title:
        fig.suptitle(title)
    save_figure(path, fig, dpi=100)
