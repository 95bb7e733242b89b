"""One block's split-transform-merge, laid out for a reader with the paper open.

:func:`block_layout` describes a bottleneck of an architecture as the paper draws it (Fig.
3a): C branches, each a 1x1 conv in -> d', a 3x3 conv d' -> d' and a 1x1 conv d' -> out
(d' = d in layer1, doubled by every later stage; d is the paper's bottleneck width), with
each branch's tensor shapes, parameters and multiply-accumulates (MACs), then the
aggregation (a sum of C tensors), and finally how the engine actually runs the same
arithmetic: the C first convs as one 1x1 conv, the C 3x3 convs as one grouped convolution
(one batched matmul over the group axis), the C last convs and the sum as one 1x1 conv.

:func:`branch_contributions` runs a model up to the block and splits the block's
aggregated transform T = sum_i T_i into the branches' outputs T_i (via
:mod:`numpy_resnext.paper.branches`), measuring each one's size and its share of T:

    share_i = <T_i, T> / <T, T>        (the shares sum to 1; a share can be negative when
                                        a branch mostly cancels the others)

:func:`plot_contributions` draws them (needs matplotlib).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from .._files import save_figure
from .._optional import pyplot
from ..plan import PAPER_STAGE_NAMES, Plan, as_plan
from .branches import branch, grouped_form
from ..params import is_trainable, param_shapes
from ..preprocess import MEAN, STD
from ..bounded import check_memory
from ..shapes import describe_run, memory_estimate, output_shapes



class Layer(NamedTuple):
    """One op of one branch (or of the merge): shapes are per sample."""

    name: str          # "conv1 slice", "bn1 slice", ...
    op: str
    weight: str        # where its weights sit inside the engine's tensors
    in_shape: tuple
    out_shape: tuple
    params: int
    macs: int


def _conv_op(layer, grouped=False) -> str:
    k = layer.kernel
    return f"conv {k}x{k}/{layer.stride}" + (f", groups={layer.groups}" if grouped else "")


def block_layout(plan: Plan, block, height=224, width=224) -> dict:
    """Shapes, parameters and MACs of block ``block`` (a name such as "layer1.1") of
    a plan (an architecture's name or config is accepted too) at a height x width input,
    branch by branch and as the engine runs it.

    ``d`` is the paper's bottleneck width (the template's, in layer1); ``dp`` is d', the
    channels per branch in this block's stage (d doubled per stage: width / C)."""
    plan = as_plan(plan)
    b = plan.block(block)
    c1, c2, c3 = b.conv1, b.conv2, b.conv3
    C, dp = b.groups, b.group_width
    rows = output_shapes(plan, height, width)
    by_name = {r["name"]: r for r in rows}
    cin, H, W = by_name[plan.block_input(b)]["shape"]
    _, OH, OW = by_name[c2.name]["shape"]
    out, k2 = b.out_channels, c2.kernel * c2.kernel
    lo_hi = f"i*{dp}:(i+1)*{dp}"
    short = lambda layer: layer.name.rsplit(".", 1)[1]                   # noqa: E731 ("conv2")
    bn = lambda layer: layer.bn.rsplit(".", 1)[1]                        # noqa: E731 ("bn2")
    branch = [
        Layer(f"{short(c1)} slice", _conv_op(c1), f"{short(c1)}.weight[{lo_hi}]  ({dp}, {cin}, 1, 1)",
              (cin, H, W), (dp, H, W), dp * cin, dp * cin * H * W),
        Layer(f"{bn(c1)} + relu", "per channel", f"{bn(c1)}.*[{lo_hi}]", (dp, H, W), (dp, H, W), 2 * dp, 0),
        Layer(f"{short(c2)} slice", _conv_op(c2),
              f"{short(c2)}.weight[{lo_hi}]  ({dp}, {dp}, {c2.kernel}, {c2.kernel})",
              (dp, H, W), (dp, OH, OW), dp * dp * k2, dp * dp * k2 * OH * OW),
        Layer(f"{bn(c2)} + relu", "per channel", f"{bn(c2)}.*[{lo_hi}]", (dp, OH, OW), (dp, OH, OW), 2 * dp, 0),
        Layer(f"{short(c3)} slice", _conv_op(c3), f"{short(c3)}.weight[:, {lo_hi}]  ({out}, {dp}, 1, 1)",
              (dp, OH, OW), (out, OH, OW), out * dp, out * dp * OH * OW),
    ]
    grouped = [
        Layer(short(c1), _conv_op(c1), f"{short(c1)}.weight {c1.weight_shape}",
              (cin, H, W), (C * dp, H, W), *_row(by_name, c1.name)),
        Layer(short(c2), _conv_op(c2, grouped=True), f"{short(c2)}.weight {c2.weight_shape}",
              (C * dp, H, W), (C * dp, OH, OW), *_row(by_name, c2.name)),
        Layer(short(c3), _conv_op(c3), f"{short(c3)}.weight {c3.weight_shape}",
              (C * dp, OH, OW), (out, OH, OW), *_row(by_name, c3.name)),
    ]
    branch_params = sum(layer.params for layer in branch if layer.op.startswith("conv"))
    branch_macs = sum(layer.macs for layer in branch)
    return dict(config=plan.config, block=b, cardinality=C, d=plan.config.base_width, dp=dp,
                kernel=c2.kernel, in_shape=(cin, H, W), se=_se_rows(b.se, by_name),
                out_shape=(out, OH, OW), branch=branch, grouped=grouped,
                branch_conv_params=branch_params, branch_macs=branch_macs,
                aggregation_adds=(C - 1) * out * OH * OW, input_size=(height, width),
                whole=_whole_block(plan, b, by_name))


def _whole_block(plan: Plan, b, by_name) -> dict:
    """Every tensor of block ``b``, not only its three residual convolutions: the
    projection's weight, all BatchNorm scales and shifts (trainable) and running statistics
    (not trainable), and the MACs of every convolution, the projection's included."""
    shapes = {n: s for n, s in param_shapes(plan).items() if n.startswith(b.name + ".")}
    size = {n: math.prod(s) for n, s in shapes.items()}
    convs = [layer.name for layer in b.convs]                           # conv1..3 [+ projection]
    running = sum(v for n, v in size.items() if not is_trainable(n))
    projection = size[f"{b.projection.name}.weight"] if b.projection else 0
    conv_weights = sum(size[f"{c}.weight"] for c in convs)
    return dict(conv_weights=conv_weights, projection=projection,
                bn=sum(size.values()) - running - conv_weights, running=running,
                trainable=sum(size.values()) - running,
                macs=sum(by_name[c]["macs"] for c in convs))


def _row(by_name, name):
    r = by_name[name]
    return r["params"], r["macs"]


def _se_rows(se, by_name) -> list:
    """The squeeze-and-excitation layer's ops (none without SE), read off the shape walk."""
    if se is None:
        return []
    weights = {se.fc1.name: f"fc1.weight {se.fc1.weight_shape} + bias",
               se.fc2.name: f"fc2.weight {se.fc2.weight_shape} + bias"}
    branch = by_name[se.name]["shape"]                                   # C, OH, OW: what SE scales
    rows, prev = [], branch
    for name in se.emits:
        r = by_name[name]
        label = "scale" if name == se.name else name[len(se.name) + 1:]
        rows.append(Layer(f"se.{label}", r["op"], weights.get(name, "-"),
                          branch if name == se.name else prev, r["shape"], r["params"], r["macs"]))
        prev = r["shape"]
    return rows


def format_layout(lay: dict) -> str:
    """The layout as text tables."""
    b, C, d, dp = lay["block"], lay["cardinality"], lay["d"], lay["dp"]
    cfg = lay["config"]
    h, w = lay["input_size"]
    lines = [f"{cfg.name} {b.name} (stage layer{b.layer} = the paper's {PAPER_STAGE_NAMES.get(b.layer, '-')}, "
             f"block {b.index}) at a {h}x{w} input",
             f"  input {_shape(lay['in_shape'])} -> output {_shape(lay['out_shape'])}; "
             f"cardinality C = {C}, bottleneck width d = {d} (layer1's; doubled per stage), "
             f"here d' = {dp} channels per branch; stride {b.stride}, {b.shortcut} shortcut",
             "",
             f"Split-transform-merge (Fig. 3a): each of the C = {C} branches, i = 0..{C - 1}:",
             _table(lay["branch"])]
    gp, gm = lay["branch_conv_params"], lay["branch_macs"]
    lines += [f"  one branch: {gp:,} conv parameters, {gm:,} MACs;  x {C} branches = "
              f"{C * gp:,} parameters, {C * gm:,} MACs",
              "",
              "Aggregation: T = T_0 + ... + T_{C-1}, a sum of %d tensors %s (%s additions);" % (
                  C, _shape(lay["out_shape"]), f"{lay['aggregation_adds']:,}"),
              "  then bn3 once on T, plus the shortcut, then ReLU. bn3 is not split: its shift "
              "would be added C times."]
    if lay["se"]:
        lines += ["",
                  f"Squeeze-and-excitation on bn3's output, before the add (r = {b.se.reduced} of "
                  f"{b.se.channels} channels): one gate per channel, from the whole image's means",
                  _table(lay["se"]),
                  "  like bn3 it acts on the aggregated T, not per branch: each gate needs every "
                  "channel's mean."]
    lines += [
              "",
              "What the engine runs (Fig. 3c), the same arithmetic in three convolutions:",
              _table(lay["grouped"])]
    g_params = sum(layer.params for layer in lay["grouped"])
    g_macs = sum(layer.macs for layer in lay["grouped"])
    same = (g_params, g_macs) == (C * gp, C * gm)
    K, P, RS = C * dp, lay["out_shape"][1] * lay["out_shape"][2], lay["kernel"] ** 2
    whole = lay["whole"]
    projection = (f"the projection's {whole['projection']:,} included" if whole["projection"]
                  else "no projection: the shortcut is the identity")
    lines += [f"  the three residual convolutions: {g_params:,} weights, {g_macs:,} MACs "
              f"({'equal to' if same else 'DIFFERENT from'} C x one branch)",
              f"  the whole block: {whole['trainable']:,} trainable parameters = {whole['conv_weights']:,} "
              f"convolution weights ({projection}) + {whole['bn']:,} BatchNorm scales and shifts;",
              f"    besides, {whole['running']:,} BatchNorm running statistics (not trained); "
              f"{whole['macs']:,} MACs {'with the projection' if whole['projection'] else 'in all'}",
              f"  conv1: rows i*{dp}:(i+1)*{dp} of its weight are branch i's first conv; the C "
              f"outputs come out concatenated ({K} channels).",
              f"  conv2: group g = branch g (G = C = {C} groups of Cg = d' = {dp} channels). "
              f"im2col gives columns (G, P, R*S*Cg) = ({C}, {P}, {RS * dp}) for one sample, "
              f"the weight matrix is (G, R*S*Cg, Kg) = ({C}, {RS * dp}, {dp}), and one batched "
              f"matmul over the group axis gives (G, P, Kg) = ({C}, {P}, {dp}).",
              f"  conv3: columns i*{dp}:(i+1)*{dp} of its weight are branch i's last conv; its "
              f"matmul's inner sum over {K} channels is the aggregation over branches."]
    return "\n".join(lines)


def _shape(s):
    return "x".join(str(v) for v in s)


def _table(layers) -> str:
    head = ("layer", "op", "weights", "in", "out", "params", "MACs")
    body = [(l.name, l.op, l.weight, _shape(l.in_shape), _shape(l.out_shape),
             f"{l.params:,}", f"{l.macs:,}") for l in layers]
    widths = [max(len(r[i]) for r in [head] + body) for i in range(len(head))]
    fmt = lambda r: "  " + "  ".join(  # noqa: E731 (right-align the numbers)
        v.rjust(widths[i]) if i >= 5 else v.ljust(widths[i]) for i, v in enumerate(r))
    return "\n".join([fmt(head)] + [fmt(r) for r in body])


# --- contributions of the branches on a real input -------------------------------------------
class Contributions(NamedTuple):
    """Per-branch contributions to a block's aggregated transform T (before bn3).

    norms:  (C,) ||T_i|| over the batch, channels and pixels
    shares: (C,) <T_i, T> / <T, T>; they sum to 1
    maps:   (C, OH, OW) per-pixel norm over channels of T_i, averaged over the batch
    total_map: (OH, OW) the same for T
    total_norm: ||T||
    check: max |sum_i T_i - conv3 output of the model| / max |conv3 output|
    """

    norms: np.ndarray
    shares: np.ndarray
    maps: np.ndarray
    total_map: np.ndarray
    total_norm: float
    check: float


def check_contributions(plan, shape, dtype, block, image=False, source=None):
    """Raise BudgetError unless the memory :func:`branch_contributions` needs on an input
    of ``shape`` fits: the forward to the block, then the block's output in float64 a few
    times over (T, the running sum, one branch and its square; the branches come one at a
    time) and, with ``image``, the synthetic picture and its input; ``source`` names the
    input in the message."""
    b = plan.block(block)
    rows = {r["name"]: r["shape"] for r in output_shapes(plan, *shape[2:])}
    out = int(np.prod(rows[b.conv3.name])) * shape[0]                    # one branch's elements
    need = memory_estimate(plan, shape, dtype, "forward") \
        + out * (5 * 8 + 3 * np.dtype(dtype).itemsize)
    if image:
        need += 64 * shape[2] * shape[3]                     # float64 grids and planes
    check_memory(need, f"explaining {b.name} of {describe_run(plan, shape, dtype)}"
                       + (f" ({source})" if source else ""))


def branch_contributions(model, x, block, allow_nonfinite=False) -> Contributions:
    """Split the block's aggregated transform on input batch ``x`` into its C branches.

    T is the block's conv3 output as the model computes it (the grouped form); the branches
    are computed one at a time (:func:`numpy_resnext.paper.branches.branch`) and only their
    statistics kept, so memory holds one branch, not C. ``check`` compares their sum with T.
    The memory it needs is checked first (:func:`check_contributions`)."""
    b = model.plan.block(block)
    x = model.check_input(x, allow_nonfinite)
    check_contributions(model.plan, x.shape, x.dtype, block)
    xin = model.forward(x, stop_before=b.name, allow_nonfinite=allow_nonfinite)  # N, in, H, W
    T = grouped_form(xin, model.params, b, model.plan).total.astype(np.float64)   # N, out, OH, OW
    tot = T.reshape(-1)                                                  # N*out*OH*OW
    tt = max(float(tot @ tot), 1e-300)
    norms, shares, maps = np.empty(b.groups), np.empty(b.groups), []
    summed = np.zeros_like(T)
    for i in range(b.groups):
        Ti = branch(xin, model.params, b, i).astype(np.float64)          # N, out, OH, OW
        flat = Ti.reshape(-1)
        norms[i], shares[i] = np.sqrt(flat @ flat), flat @ tot / tt
        maps.append(np.sqrt((Ti ** 2).sum(axis=1)).mean(axis=0))         # OH, OW
        summed += Ti
    total_map = np.sqrt((T ** 2).sum(axis=1)).mean(axis=0)               # OH, OW
    check = float(np.abs(summed - T).max() / max(np.abs(T).max(), 1e-300))
    return Contributions(norms, shares, np.stack(maps), total_map, float(np.sqrt(tt)), check)


def format_contributions(c: Contributions, block_name: str, top: int = 0) -> str:
    """A table of the branches, most contributing first (all of them unless ``top``)."""
    order = np.argsort(-c.shares, kind="stable")
    if top:
        order = order[:top]
    lines = [f"Branch contributions to {block_name}'s aggregated transform T = sum_i T_i "
             f"(before bn3):",
             f"  sum of branches vs the grouped conv the model runs: max relative difference "
             f"{c.check:.1e}",
             "  branch   ||T_i||     share <T_i,T>/<T,T>"]
    for i in order:
        bar = "#" * int(round(max(c.shares[i], 0) * 100))
        lines.append(f"  {i:6d}  {c.norms[i]:9.3f}   {c.shares[i]:+8.2%}  {bar}")
    lines.append(f"  ||T|| = {c.total_norm:.3f}; the shares sum to {c.shares.sum():.6f}")
    return "\n".join(lines)


def synthetic_image(height, width, seed=0) -> np.ndarray:
    """A seeded (H, W, 3) uint8 picture with structure to respond to: a few discs, bars and
    a ring of random colours on a smooth two-colour gradient. explain uses it when no
    --input is given, so the branch maps show where each branch reacts to edges and
    colours instead of the speckle a noise input gives."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)             # H, W in [0, 1)
    c0, c1 = rng.uniform(40, 215, (2, 3))
    t = (xx + yy)[..., None] / 2                                          # H, W, 1
    img = c0 * (1 - t) + c1 * t                                           # H, W, 3
    for _ in range(3):                                                    # discs
        cy, cx, r = rng.uniform(0.15, 0.85), rng.uniform(0.15, 0.85), rng.uniform(0.08, 0.2)
        img[(yy - cy) ** 2 + (xx - cx) ** 2 < r * r] = rng.uniform(0, 255, 3)
    for _ in range(2):                                                    # bars
        y0, x0 = rng.uniform(0, 0.8, 2)
        img[(yy > y0) & (yy < y0 + 0.06) & (xx > x0) & (xx < x0 + 0.5)] = rng.uniform(0, 255, 3)
    cy, cx = rng.uniform(0.3, 0.7, 2)
    d2 = (yy - cy) ** 2 + (xx - cx) ** 2
    img[(d2 > 0.05 ** 2) & (d2 < 0.08 ** 2)] = rng.uniform(0, 255, 3)    # a ring
    return (img + 0.5).astype(np.uint8)


def image_to_input(img, dtype="float32") -> np.ndarray:
    """An (H, W, 3) uint8 picture as a (1, 3, H, W) network input: /255, ImageNet mean and
    standard deviation, channels first (the normalisation of preprocess, without resizing)."""
    x = (img.astype(np.float64) / 255 - np.asarray(MEAN)) / np.asarray(STD)   # H, W, 3
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=dtype)   # 1, 3, H, W


def plot_contributions(c: Contributions, lay: dict, path, image=None, title_note=""):
    """A PNG at lecture size: the input, each branch's share as bars, and each branch's
    per-pixel contribution map beside the total's (one colour scale). Needs matplotlib."""
    plt = pyplot("--png")
    C = len(c.shares)
    cols = 8 if C >= 16 else max(C, 2)
    grid_rows = -(-C // cols)
    fs = 13                                                              # points
    fig = plt.figure(figsize=(max(2.1 * cols, 12.0), 5.2 + 2.3 * grid_rows), layout="constrained")
    top, bottom = fig.subfigures(2, 1, height_ratios=[4.6, 2.3 * grid_rows])
    b = lay["block"]
    fig.suptitle(f"{lay['config'].name} {b.name} (stage layer{b.layer}, the paper's "
                 f"{PAPER_STAGE_NAMES.get(b.layer, '-')}): {C} branch{'es' if C != 1 else ''} of "
                 f"d' = {lay['dp']} channels; in {_shape(lay['in_shape'])}, out "
                 f"{_shape(lay['out_shape'])}{title_note}", fontsize=fs + 2)
    axes = top.subplots(1, 3, width_ratios=[1, 1, 3.2]) if image is not None else [None, None, top.subplots()]
    if image is not None:
        axes[0].imshow(image)
        axes[0].set_title("input image", fontsize=fs)
        axes[0].axis("off")
        im = axes[1].imshow(c.total_map, cmap="magma")
        axes[1].set_title("||T|| per pixel\n(all branches summed)", fontsize=fs)
        axes[1].axis("off")
    ax = axes[2]
    colors = ["tab:blue" if s >= 0 else "tab:red" for s in c.shares]
    ax.bar(np.arange(C), c.shares * 100, color=colors)
    ax.axhline(100 / C, color="grey", lw=1.0, ls="--", label=f"equal share, 100/{C} %")
    ax.set_xlabel("branch i", fontsize=fs)
    ax.set_ylabel("share of T (%)", fontsize=fs)
    ax.set_title("share of each branch: <T_i, T> / <T, T>, with T = sum of the T_i\n"
                 "(the shares add up to 100 %; red: a branch working against the sum)", fontsize=fs)
    ax.set_xlim(-0.6, C - 0.4)
    ax.tick_params(labelsize=fs - 1)
    ax.set_xticks(np.arange(0, C, 1 if C <= 16 else 4))
    ax.legend(fontsize=fs - 1, loc="upper right")
    bottom.suptitle(f"where each branch contributes: the size of T_i at each pixel (norm over its "
                    f"{lay['out_shape'][0]} output channels), one colour scale for all", fontsize=fs)
    vmax = float(c.maps.max()) or 1.0
    grid = np.atleast_2d(bottom.subplots(grid_rows, cols))
    for i, ax in enumerate(grid.flat):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= C:
            ax.axis("off")
            continue
        im = ax.imshow(c.maps[i], cmap="magma", vmin=0, vmax=vmax)
        ax.set_title(f"branch {i}: {c.shares[i]:+.0%}", fontsize=fs - 1)
    cb = bottom.colorbar(im, ax=grid, shrink=0.8)
    cb.set_label("||T_i|| at the pixel", fontsize=fs)
    cb.ax.tick_params(labelsize=fs - 2)

    save_figure(path, fig, dpi=90)


def denormalize(x_chw: np.ndarray) -> np.ndarray:
    """A preprocessed (3, H, W) array back to displayable uint8 (H, W, 3)."""
    img = x_chw.transpose(1, 2, 0) * np.asarray(STD) + np.asarray(MEAN)   # H, W, 3
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
