"""The picture of a conformance run: relative error per layer, one line per runtime.

x: every tensor the golden holds, in execution order (stage boundaries marked); y: the
tensor's max |runtime - golden| / max |golden|, log scale; each runtime's tolerance drawn
as a dashed line. An error of exactly 0 is drawn at the bottom of the axis.
Needs matplotlib (``pip install 'numpy-resnext[plot]'``).
"""

from __future__ import annotations

import math

from .._files import save_figure
from .._optional import pyplot

FLOOR = 1e-18                       # where exact agreement (error 0) is drawn


def stages(names):
    """The stage of each name, in execution order: "layer2" for "layer2.0.conv1", "stem"
    for the names before the first block, "head" for those after the last."""
    layers = [n.split(".")[0] if n.startswith("layer") else None for n in names]
    blocks = [i for i, s in enumerate(layers) if s]
    last = blocks[-1] if blocks else -1
    return [s or ("head" if i > last else "stem") for i, s in enumerate(layers)]


def plot_conformance(result, path):
    """Write ``result`` (a :class:`.conformance.Result`) as a PNG at ``path``."""
    plt = pyplot("--png")
    names = result.golden_names
    index = {n: i for i, n in enumerate(names)}
    fig, ax = plt.subplots(figsize=(11, 5.4), dpi=100)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    ran = [r for r in result.rows if r.layers]
    for k, row in enumerate(ran):
        colour = colours[k % len(colours)]
        xs = [index[n] for n, _ in row.layers]
        ys = [max(e, FLOOR) if not math.isnan(e) else FLOOR for _, e in row.layers]
        label = f"{row.runtime} {row.version or ''} {row.dtype}: logits {row.logits_max_rel:.1g}, {row.status}"
        ax.semilogy(xs, ys, "-", color=colour, lw=1.3, marker=".", ms=3, label=label)
    for dtype, rtol in sorted({(r.dtype, r.rtol) for r in ran}):
        ax.axhline(rtol, color="0.2", ls="--", lw=1)
        ax.text(1, rtol * 1.4, f"{dtype} tolerance {rtol:g}", color="0.2", ha="left", va="bottom",
                fontsize=8)
    starts = []
    for i, stage in enumerate(stages(names)):
        if not starts or stage != starts[-1][1]:
            starts.append((i, stage))
    for i, stage in starts:
        if i:
            ax.axvline(i - 0.5, color="0.6", lw=0.8, ls=":")
        ax.text(i + 0.5, 1.02, stage, transform=ax.get_xaxis_transform(), fontsize=8, color="0.3")
    ax.set_xlim(-1, len(names))
    errors = [max(e, FLOOR) for r in ran for _, e in r.layers if math.isfinite(e)] or [1e-16]
    highest = max(errors + [r.rtol for r in ran])
    ax.set_ylim(bottom=10 ** math.floor(math.log10(min(errors)) - 0.5),
                top=10 ** math.ceil(math.log10(highest) + 0.7))
    ax.set_xlabel(f"tensor, in execution order ({len(names)} tensors: conv, BN, ReLU, add, "
                  f"block outputs, pooled features, logits)")
    ax.set_ylabel("max |runtime - golden| / max |golden|")
    shape = "x".join(map(str, result.input_shape))
    ax.set_title(f"{result.arch} (input {shape}): ONNX runtimes against the numpy-resnext "
                 f"float64 golden", pad=16)
    ax.grid(True, which="major", axis="y", alpha=0.3)
    skipped = [f"{r.runtime} {r.dtype}: {r.reason}" for r in result.rows if not r.layers]
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2, fontsize=8, frameon=False)
    if skipped:
        fig.text(0.01, 0.01, "skipped: " + "; ".join(skipped), fontsize=7, color="0.35")
    fig.tight_layout(rect=(0, 0.03, 1, 1))

    save_figure(path, fig)
