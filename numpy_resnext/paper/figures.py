"""Lecture figures drawn from the layer plan: the paper's Fig. 1, Fig. 3 and a Table 1.

Every width, kernel, group count, block count and output size written on these figures is
read from :func:`numpy_resnext.plan.layer_plan` and :func:`numpy_resnext.shapes.output_shapes`
(never typed in), so a figure cannot disagree with the network the package runs:

- :func:`fig1_blocks`: a ResNet-50 block beside a ResNeXt-50 32x4d block, both the second
  block of layer1 (256 channels in and out), as the paper's Fig. 1 draws them.
- :func:`fig3_forms`: the three equivalent forms of that ResNeXt block (Fig. 3): (a) C
  branches summed, (b) early concatenation, (c) the grouped convolution the engine runs.
- :func:`table1`: the stages of ResNet-50 and ResNeXt-50 32x4d in the layout of Table 1:
  output size, block template, blocks per stage, parameters and MACs.

``python -m numpy_resnext.paper.figures docs/figures`` (or :func:`write_all`) regenerates the
PNGs kept in docs/figures/. Needs matplotlib (``pip install 'numpy-resnext[plot]'``).
Each function returns the figure's text labels, which the tests compare with the paper.
"""

from __future__ import annotations

import os
import sys

from .._files import save_figure
from .._optional import pyplot
from ..plan import PAPER_STAGE_NAMES, layer_plan
from ..shapes import output_shapes, totals

FIG_BLOCK = "layer1.1"            # the block the paper draws: 256-d in, identity shortcut
FONT = 13                         # points; readable on a projected slide
BOX = dict(boxstyle="round,pad=0.35", facecolor="#eef3fb", edgecolor="#1f4e9c", linewidth=1.6)
SUM = dict(boxstyle="circle,pad=0.25", facecolor="white", edgecolor="black", linewidth=1.5)


def _plt():
    return pyplot("the lecture figures")


def _save(fig, path, dpi=100):
    save_figure(path, fig, dpi)


def _labels(fig) -> list:
    return [t.get_text() for ax in fig.axes for t in ax.texts] + \
           [ax.get_title() for ax in fig.axes if ax.get_title()] + \
           ([fig._suptitle.get_text()] if fig._suptitle is not None else [])


def conv_label(layer, width_in=None, width_out=None, groups=None) -> str:
    """The paper's notation for a convolution: "in, kxk, out" (", grp=G" when grouped)."""
    cin = layer.in_channels if width_in is None else width_in
    cout = layer.out_channels if width_out is None else width_out
    g = layer.groups if groups is None else groups
    return f"{cin}, {layer.kernel}x{layer.kernel}, {cout}" + (f", grp={g}" if g > 1 else "")


def _box(ax, x, y, text, fontsize=FONT, **kw):
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize, bbox=kw.pop("bbox", BOX), **kw)


def _arrow(ax, x0, y0, x1, y1, **kw):
    ax.annotate("", xy=(x1, y1), xytext=(x0, y0),
                arrowprops=dict(arrowstyle="-|>", lw=1.4, color="black", shrinkA=14, shrinkB=14, **kw))


def _sum(ax, x, y):
    ax.text(x, y, "+", ha="center", va="center", fontsize=FONT + 3, bbox=SUM)


def _canvas(ax, w, h):
    ax.set_xlim(0, w)
    ax.set_ylim(0, h)
    ax.axis("off")


def _chain(ax, x, ys, labels, fontsize=FONT):
    for y, lab in zip(ys, labels):
        _box(ax, x, y, lab, fontsize=fontsize)
    for y0, y1 in zip(ys, ys[1:]):
        _arrow(ax, x, y0, x, y1)


def _paths(ax, xs, ys, labels_for, fontsize):
    """Branches at xs (None = an ellipsis column), each a chain of boxes at heights ys."""
    for i, x in enumerate(xs):
        if x is None:
            continue
        _chain(ax, x, ys, labels_for(i), fontsize)


def fig1_blocks(path, resnet="ResNet50", resnext="ResNeXt50_32x4d", block=FIG_BLOCK) -> list:
    """The paper's Fig. 1: a ResNet block (left) and a ResNeXt block of the same complexity
    (right), widths from the two plans. Returns the figure's text labels."""
    plt = _plt()
    rb, xb = layer_plan(resnet).block(block), layer_plan(resnext).block(block)
    C, dp = xb.groups, xb.group_width
    fig, (a, b) = plt.subplots(1, 2, figsize=(15, 8.2), width_ratios=[1, 2.3], layout="constrained")
    fig.suptitle(f"Fig. 1: a ResNet block and a ResNeXt block ({block} of {resnet} and {resnext})",
                 fontsize=FONT + 3)
    ys = [7.0, 5.3, 3.6]
    # left: ResNet
    _canvas(a, 4, 10)
    a.set_title(f"{resnet} {rb.name}", fontsize=FONT + 1)
    a.text(2, 9.2, f"{rb.in_channels}-d in", ha="center", fontsize=FONT)
    _arrow(a, 2, 9.0, 2, ys[0])
    _chain(a, 2, ys, [conv_label(rb.conv1), conv_label(rb.conv2), conv_label(rb.conv3)])
    _arrow(a, 2, ys[-1], 2, 1.9)
    _sum(a, 2, 1.7)
    a.annotate("", xy=(2.25, 1.75), xytext=(2.25, 9.0),
               arrowprops=dict(arrowstyle="-|>", lw=1.2, connectionstyle="bar,fraction=-0.18"))
    _arrow(a, 2, 1.7, 2, 0.7)
    a.text(3.55, 5.3, "identity", rotation=90, ha="center", va="center", fontsize=FONT - 1)
    a.text(2, 0.25, f"{rb.out_channels}-d out", ha="center", fontsize=FONT)
    # right: ResNeXt, C paths (three, an ellipsis, the last)
    W = 11
    _canvas(b, W, 10)
    b.set_title(f"{resnext} {xb.name}: {C} paths (cardinality C = {C}), d = {dp} channels each",
                fontsize=FONT + 1)
    xs = [1.3, 3.4, 5.5, None, 8.9]
    b.text(5.1, 9.2, f"{xb.in_channels}-d in", ha="center", fontsize=FONT)
    b.text(7.2, 5.3, ". . .", ha="center", va="center", fontsize=FONT + 6)
    labels = [conv_label(xb.conv1, width_out=dp), conv_label(xb.conv2, dp, dp, 1),
              conv_label(xb.conv3, width_in=dp)]
    for x in xs:
        if x is not None:
            _arrow(b, 5.1, 9.0, x, ys[0])
            _arrow(b, x, ys[-1], 5.1, 2.0)
    _paths(b, xs, ys, lambda i: labels, FONT - 2)
    b.text(7.2, 6.3, f"total {C} paths", ha="center", fontsize=FONT, style="italic")
    _sum(b, 5.1, 1.85)
    b.text(5.75, 1.85, "(aggregation: the sum of the C paths)", ha="left", va="center", fontsize=FONT - 2)
    _arrow(b, 5.1, 1.85, 5.1, 1.0)
    _sum(b, 5.1, 0.85)
    b.plot([5.8, 10.6], [9.32, 9.32], color="black", lw=1.2)
    b.annotate("", xy=(5.35, 0.9), xytext=(10.6, 9.32),
               arrowprops=dict(arrowstyle="-|>", lw=1.2, connectionstyle="angle,angleA=-90,angleB=180"))
    _arrow(b, 5.1, 0.85, 5.1, 0.0)
    b.text(10.75, 5.3, "identity", rotation=90, ha="center", va="center", fontsize=FONT - 1)
    b.text(6.3, 0.25, f"{xb.out_channels}-d out", ha="center", fontsize=FONT)
    labels_out = _labels(fig)
    _save(fig, path)
    return labels_out


def fig3_forms(path, arch="ResNeXt50_32x4d", block=FIG_BLOCK) -> list:
    """The paper's Fig. 3: three equivalent forms of one ResNeXt block, with its real
    widths. Returns the figure's text labels."""
    plt = _plt()
    b = layer_plan(arch).block(block)
    C, dp, width = b.groups, b.group_width, b.width
    fig, axes = plt.subplots(1, 3, figsize=(18, 8.2), width_ratios=[1.25, 1.25, 0.75], layout="constrained")
    fig.suptitle(f"Fig. 3: three equivalent forms of {arch} {b.name} (C = {C}, d = {dp}); "
                 f"all compute the same numbers (numpy-resnext audit)\n"
                 f"each is followed by bn3 (once: split into branches, its shift would be added "
                 f"C times), the shortcut and a ReLU", fontsize=FONT + 1)
    ys = [6.9, 5.2, 3.5]
    branch = [conv_label(b.conv1, width_out=dp), conv_label(b.conv2, dp, dp, 1),
              conv_label(b.conv3, width_in=dp)]
    xs = [1.2, 3.2, None, 5.6]
    titles = [f"(a) {C} branches, summed", "(b) early concatenation", "(c) grouped convolution"]
    for k, ax in enumerate(axes):
        _canvas(ax, 7 if k < 2 else 4, 10)
        ax.set_title(titles[k], fontsize=FONT + 1)
    # (a)
    a = axes[0]
    a.text(3.4, 9.1, f"{b.in_channels}-d in", ha="center", fontsize=FONT)
    for x in xs:
        if x is not None:
            _arrow(a, 3.4, 8.9, x, ys[0])
            _arrow(a, x, ys[-1], 3.4, 2.0)
    _paths(a, xs, ys, lambda i: branch, FONT - 3)
    a.text(4.4, 5.2, "...", ha="center", va="center", fontsize=FONT + 4)
    _sum(a, 3.4, 1.85)
    a.text(3.4, 1.0, f"{b.out_channels}-d: the sum of {C} branches", ha="center", fontsize=FONT - 1)
    # (b)
    bb = axes[1]
    bb.text(3.4, 9.1, f"{b.in_channels}-d in", ha="center", fontsize=FONT)
    for x in xs:
        if x is not None:
            _arrow(bb, 3.4, 8.9, x, ys[0])
            _arrow(bb, x, ys[1], 3.4, 3.7)
    _paths(bb, xs, ys[:2], lambda i: branch[:2], FONT - 3)
    bb.text(4.4, 6.1, "...", ha="center", va="center", fontsize=FONT + 4)
    _box(bb, 3.4, 3.45, f"concatenate: {C} x {dp} = {width}-d", fontsize=FONT - 1,
         bbox=dict(boxstyle="round,pad=0.3", facecolor="#fff4e0", edgecolor="#b06000"))
    _arrow(bb, 3.4, 3.45, 3.4, 2.0)
    _box(bb, 3.4, 1.8, conv_label(b.conv3))
    _arrow(bb, 3.4, 1.8, 3.4, 0.5)
    bb.text(3.4, 0.25, f"{b.out_channels}-d", ha="center", fontsize=FONT)
    # (c)
    c = axes[2]
    c.text(2, 9.1, f"{b.in_channels}-d in", ha="center", fontsize=FONT)
    _arrow(c, 2, 8.9, 2, ys[0])
    _chain(c, 2, ys, [conv_label(b.conv1), conv_label(b.conv2), conv_label(b.conv3)])
    _arrow(c, 2, ys[-1], 2, 2.0)
    c.text(2, 1.7, f"{b.out_channels}-d", ha="center", fontsize=FONT)
    c.text(2, 0.6, f"grp={C}: {C} groups of {dp} channels,\none group per branch", ha="center",
           fontsize=FONT - 1, style="italic")
    labels_out = _labels(fig)
    _save(fig, path)
    return labels_out


def stage_rows(arch, size=224) -> list:
    """Table 1's rows for ``arch``: (stage, the paper's name, output size, template, blocks)."""
    plan = layer_plan(arch)
    shapes = {r["name"]: r["shape"] for r in output_shapes(plan, size, size)}
    hw = lambda name: "x".join(map(str, shapes[name][1:]))              # noqa: E731
    stem_text = "\n".join(f"{s.kernel}x{s.kernel}, {s.out_channels}, stride {s.stride}" for s in plan.stem)
    rows = [("stem", "conv1", hw(plan.stem[-1].relu), stem_text, "")]
    if plan.stem_pool is not None:
        p = plan.stem_pool
        rows.append(("stem pool", "start of conv2", hw(p.name), f"{p.kernel}x{p.kernel} max pool, stride {p.stride}", ""))
    for n in range(1, len(plan.config.depths) + 1):
        blocks = [b for b in plan.blocks if b.layer == n]
        b = blocks[0]
        template = "\n".join([f"1x1, {b.conv1.out_channels}",
                              f"3x3, {b.width}" + (f", C={b.groups}" if b.groups > 1 else ""),
                              f"1x1, {b.out_channels}"])
        rows.append((f"layer{n}", PAPER_STAGE_NAMES[n], hw(blocks[-1].name), template, f"x {len(blocks)}"))
    rows.append(("head", "", "1x1", f"global average pool,\n{plan.head.num_classes}-d fc, softmax", ""))
    return rows


def table1(path, archs=("ResNet50", "ResNeXt50_32x4d"), size=224) -> list:
    """Table 1: the stages of two architectures side by side. Returns the cell texts."""
    plt = _plt()
    per = [stage_rows(a, size) for a in archs]
    if any([r[:3] + r[4:] for r in p] != [r[:3] + r[4:] for r in per[0]] for p in per):
        raise ValueError(f"table1: {archs} differ in stages, sizes or depths; one table cannot hold them")
    header = ["stage", "paper", "output"] + [f"{a}" for a in archs] + ["blocks"]
    cells = [[r[0], r[1], r[2]] + [p[i][3] for p in per] + [r[4]] for i, r in enumerate(per[0])]
    foot = ["total", "", ""]
    for a in archs:
        params, macs = totals(a, size, size)
        foot.append(f"{params / 1e6:.2f} M params\n{macs / 1e9:.2f} G MACs")
    cells.append(foot + [""])
    fig, ax = plt.subplots(figsize=(14, 10.5), layout="constrained")
    ax.axis("off")
    ax.set_title(f"Table 1: the stages at {size}x{size} input; block template [1x1; 3x3; 1x1] with "
                 f"output channels,\nC = groups of the 3x3 (cardinality); MACs are what the paper "
                 f"calls FLOPs", fontsize=FONT + 1)
    tab = ax.table(cellText=cells, colLabels=header, loc="center", cellLoc="center",
                   colWidths=[0.12, 0.15, 0.1, 0.27, 0.27, 0.09])
    tab.auto_set_font_size(False)
    tab.set_fontsize(FONT)
    for (r, c), cell in tab.get_celld().items():
        lines = max(v.count("\n") + 1 for v in cells[r - 1]) if r > 0 else 1
        cell.set_height(0.032 * lines + 0.02)
        if r == 0:
            cell.set_facecolor("#dde6f5")
            cell.set_text_props(weight="bold")
    texts = header + [c for row in cells for c in row] + [ax.get_title()]
    _save(fig, path)
    return texts


FIGURES = {"fig1_blocks.png": fig1_blocks, "fig3_forms.png": fig3_forms, "table1_stages.png": table1}


def write_all(out_dir) -> dict:
    """Write every figure into ``out_dir``: {file name: its text labels}."""
    os.makedirs(out_dir, exist_ok=True)
    return {name: draw(os.path.join(out_dir, name)) for name, draw in FIGURES.items()}


if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join("docs", "figures")
    for name in write_all(out):
        print(os.path.join(out, name))
