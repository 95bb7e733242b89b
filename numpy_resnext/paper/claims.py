"""The paper's complexity claims, recomputed from the engine's own layers.

Every "computed" figure below comes from the structures the forward pass itself walks:
:func:`numpy_resnext.params.param_shapes` (the tensors a model holds),
:func:`numpy_resnext.shapes.output_shapes` (per-layer output sizes and multiply-adds) and
:class:`numpy_resnext.archs.ArchConfig`. The paper's figures (Xie et al. 2017, Tables 1
and 2, Eq. 4, Fig. 3) are printed beside them with the tolerance used and a verdict.

The paper reports parameters in millions and FLOPs (meaning multiply-adds of the
convolutions and the fully connected layer, at 224 x 224) in billions, both with one
decimal; a figure "holds" when the computed value is within one unit of that last decimal
(the paper is not consistent about rounding versus truncating: ResNet-50's 25.557M
parameters appear as 25.5M, its 4.089 GFLOPs as 4.1).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..archs import ARCHS, STAGE_PLANES, ArchConfig, custom, get_arch
from .branches import block_branches, early_concat_form, grouped_form
from .results import cite
from ..model import build
from ..params import count_params, param_shapes
from ..plan import PAPER_STAGE_NAMES, Plan, layer_plan
from ..shapes import output_shapes

# (name in the paper, architecture, params in M, GFLOPs) -- Table 1
PAPER_TABLE1 = (("ResNet-50", "ResNet50", 25.5, 4.1),
                ("ResNeXt-50 (32x4d)", "ResNeXt50_32x4d", 25.0, 4.2))
# Table 1's conv2..conv5 rows (our layer1..layer4, plan.PAPER_STAGE_NAMES): width of the
# 3x3 conv and block output per stage, and the spatial output size of conv1 (the stem's
# conv), conv2 .. conv5 at 224 x 224
PAPER_STAGE_WIDTHS = {"ResNet50": (64, 128, 256, 512), "ResNeXt50_32x4d": (128, 256, 512, 1024)}
PAPER_STAGE_OUTS = (256, 512, 1024, 2048)
PAPER_OUTPUT_SIZES = (112, 56, 28, 14, 7)
# Table 2: (cardinality C, bottleneck width d, width of the grouped conv C*d)
PAPER_TABLE2 = ((1, 64, 64), (2, 40, 80), (4, 24, 96), (8, 14, 112), (32, 4, 128))
TEMPLATE_TARGET = 70_000          # "~70k" parameters per block template (Eq. 4 and Table 2, §3.4)
TEMPLATE_TOLERANCE = 0.025        # relative; the paper gives no tolerance, this is ours
FIG3_RTOL = 1e-12                 # float64: the three forms differ only in summation order


SECTION_TITLES = {        # the paper's sections come from results.LOCATIONS, the one table of them
    "Table 1": f"{cite('Table 1')}: ResNet-50 vs ResNeXt-50 (32x4d)",
    "Table 2": f"{cite('Table 2')} and Eq. 4: block templates of about the same complexity",
    "widths": "Widths: PaddleClas's num_filters rule = torchvision's formula = the engine's layers",
    "Fig. 3": f"{cite('Fig. 3')}: three equivalent forms of a block, evaluated",
    "SE": "Squeeze-and-excitation (Hu et al., CVPR 2018, Eq. 5): what SE adds to ResNeXt-50",
}
# Hu et al.'s Eq. 5: SE layers with reduction r add (2 / r) * sum_s N_s * C_s^2 weights (the
# biases aside): N_s blocks of C_s output channels in layerN, s = N; for a 50-layer network,
# about 2.5 million, a tenth of the network's parameters. (SE model, its plain twin, r,
# millions, share)
SE_CLAIM = ("SE_ResNeXt50_32x4d", "ResNeXt50_32x4d", 16, 2.5, 0.10)


class Check(NamedTuple):
    """One audited claim: what the paper says, what the engine computes, and the verdict."""

    section: str
    claim: str
    paper: str
    computed: str
    tolerance: str
    holds: bool
    source: str = "paper"     # whose figure ``paper`` is: the paper's, or a formula's


# --- Table 1 ------------------------------------------------------------------------------
def _within_last_digit(value: float, paper: float) -> bool:
    return abs(value - paper) < 0.1 - 1e-12


def _rounding_note(value: float, paper: float) -> str:
    if round(value, 1) == paper:
        return "rounded"
    if math.floor(value * 10) / 10 == paper:
        return "truncated"
    return "neither rounded nor truncated"


def table1_checks() -> list:
    checks = []
    for label, arch, p_params, p_gflops in PAPER_TABLE1:
        plan = layer_plan(arch)
        rows = output_shapes(plan, 224, 224)
        params = count_params(plan)                       # from the tensors a model holds
        params_rows = sum(r["params"] for r in rows)      # from the per-layer walk
        macs = sum(r["macs"] for r in rows)
        m, g = params / 1e6, macs / 1e9
        checks.append(Check(
            "Table 1", f"{label} parameters", f"{p_params:.1f}M",
            f"{m:.3f}M ({params:,}; per-layer walk {params_rows:,})",
            f"|diff| < 0.1M ({_rounding_note(m, p_params)})",
            _within_last_digit(m, p_params) and params == params_rows))
        checks.append(Check(
            "Table 1", f"{label} FLOPs (multiply-adds, conv + fc, 224x224)", f"{p_gflops:.1f}G",
            f"{g:.3f}G ({macs:,})", f"|diff| < 0.1G ({_rounding_note(g, p_gflops)})",
            _within_last_digit(g, p_gflops)))
        checks.append(_stage_check(plan, label))
    return checks


def _stage_check(plan: Plan, label: str) -> Check:
    """Table 1's per-stage widths, block outputs and output sizes, read off the real layers."""
    config = plan.config
    widths, outs, _ = engine_widths(plan)                            # K of conv2 / conv3
    rows = {r["name"]: r["shape"] for r in output_shapes(plan, 224, 224)}
    last = {b.layer: b.name for b in plan.blocks}                    # each stage's last block
    ends = [plan.stem[-1].relu] + [last[n] for n in sorted(last)]
    sizes = tuple(rows[n][1] for n in ends)
    paper = (PAPER_STAGE_WIDTHS[config.name], PAPER_STAGE_OUTS, PAPER_OUTPUT_SIZES)
    found = (widths, outs, sizes)
    fmt = "3x3 widths {}, outputs {}, sizes {}".format
    last = len(config.depths)
    return Check("Table 1", f"{label} stages layer1..layer{last} (the paper's "
                            f"{PAPER_STAGE_NAMES[1]}..{PAPER_STAGE_NAMES[last]}) and the stem's output size",
                 fmt(*paper), fmt(*found), "exact", found == paper)


# --- Table 2 / Eq. 4 -----------------------------------------------------------------------
def template_params(cardinality: int, d: int) -> tuple:
    """(params of the conv weights of a 256-in, 256-out block of cardinality C and bottleneck
    width d, read from the engine's parameter shapes; the grouped conv's width C*d)."""
    config = custom(depths=(2,), cardinality=cardinality, base_width=d, num_classes=1,
                    name=f"template_{cardinality}x{d}d")
    block = "layer1.1"                                  # identity shortcut: 256 -> 256
    shapes = param_shapes(layer_plan(config))
    convs = [f"{block}.conv{i}.weight" for i in (1, 2, 3)]
    return sum(math.prod(shapes[n]) for n in convs), shapes[convs[1]][0]


def eq4(cardinality: int, d: int) -> int:
    """Eq. 4: C * (256*d + 3*3*d*d + d*256)."""
    return cardinality * (256 * d + 9 * d * d + d * 256)


def table2_checks() -> list:
    checks = []
    lo, hi = TEMPLATE_TARGET * (1 - TEMPLATE_TOLERANCE), TEMPLATE_TARGET * (1 + TEMPLATE_TOLERANCE)
    for C, d, width in PAPER_TABLE2:
        params, found_width = template_params(C, d)
        formula = eq4(C, d)
        ok = formula == params and found_width == width and lo <= params <= hi
        checks.append(Check(
            "Table 2", f"template C={C:>2}, d={d:>2}: parameters (Eq. 4) and grouped width",
            f"~70k, width {width}; Eq. 4 gives {formula:,}",
            f"{params:,} ({params / TEMPLATE_TARGET - 1:+.1%}), width {found_width}",
            f"Eq. 4 exact; 70k +-{TEMPLATE_TOLERANCE:.1%}", ok))
    return checks


# --- widths: PaddleClas's num_filters rule vs torchvision's formula --------------------------
def torchvision_widths(config: ArchConfig) -> tuple:
    """width = floor(planes * base_width / 64) * cardinality, out = planes * 4, per stage."""
    planes = STAGE_PLANES[:len(config.depths)]
    return (tuple((p * config.base_width // 64) * config.cardinality for p in planes),
            tuple(p * 4 for p in planes))


def paddleclas_widths(config: ArchConfig):
    """(widths, outputs, rule text) per stage as PaddleClas's model files write them, or None
    for a configuration PaddleClas has no file for."""
    C, d = config.cardinality, config.base_width
    n = len(config.depths)
    if config.name.endswith("_wsl"):
        # resnext101_wsl.py: num_filters = C * width * [1, 2, 4, 8], conv3 out = nf // (width // 8)
        nf = [C * d * m for m in (1, 2, 4, 8)][:n]
        return tuple(nf), tuple(f // (d // 8) for f in nf), f"wsl: {C}*{d}*[1,2,4,8], out nf//{d // 8}"
    if C == 1 and d == 64:
        # legendary_models/resnet.py: num_filters = [64, 128, 256, 512], out = num_filters * 4
        nf = [64, 128, 256, 512][:n]
        return tuple(nf), tuple(4 * f for f in nf), "resnet: [64,128,256,512], out nf*4"
    if d == 4 and C in (32, 64):
        # resnext.py / resnext_vd.py: num_filters by cardinality, out doubled only for 32
        nf = ([128, 256, 512, 1024] if C == 32 else [256, 512, 1024, 2048])[:n]
        out = tuple(f * 2 if C == 32 else f for f in nf)
        return tuple(nf), out, f"resnext: {nf}, out nf{'*2' if C == 32 else ''}"
    return None


def _same(found, expected) -> str:
    return "the same" if found == expected else f"DIFFERENT: {found[0]}, {found[1]}"


def engine_widths(plan: Plan) -> tuple:
    """Per-stage (widths, outputs) read off the conv2 / conv3 weights of each stage's first
    block, and the names of any later blocks that disagree with their stage's first."""
    shapes = param_shapes(plan)
    widths, outs, odd = {}, {}, []
    for b in plan.blocks:
        w, o = shapes[f"{b.conv2.name}.weight"][0], shapes[f"{b.conv3.name}.weight"][0]
        if widths.setdefault(b.stage, w) != w or outs.setdefault(b.stage, o) != o:
            odd.append(b.name)
    return tuple(widths[s] for s in sorted(widths)), tuple(outs[s] for s in sorted(outs)), odd


def width_checks(archs=None) -> list:
    checks = []
    for name in archs or list(ARCHS):
        config = get_arch(name)
        *engine, odd = engine_widths(layer_plan(config))
        engine = tuple(engine)
        odd_note = f"; blocks {', '.join(odd)} DIFFER from their stage" if odd else ""
        tv = torchvision_widths(config)
        pc = paddleclas_widths(config)
        if pc is None:
            checks.append(Check("widths", f"{config.name} (no PaddleClas model file)",
                                f"3x3 widths {tv[0]}, outputs {tv[1]}",
                                f"engine's conv2/conv3 weights {_same(engine, tv)}{odd_note}",
                                "exact", engine == tv and not odd, "torchvision"))
            continue
        ok = engine == tv == pc[:2] and not odd
        found = [f"PaddleClas rule {_same(pc[:2], tv)}", f"engine's conv2/conv3 weights {_same(engine, tv)}"]
        checks.append(Check(
            "widths", f"{config.name} (PaddleClas {pc[2]})",
            f"3x3 widths {tv[0]}, outputs {tv[1]}", "; ".join(found) + odd_note, "exact", ok,
            "torchvision"))
    return checks


# --- Fig. 3 --------------------------------------------------------------------------------------
def block_input(model, x, block_name):
    """What ``model`` feeds block ``block_name`` on input ``x``: the forward walk stopped
    before that block (the rest is not computed)."""
    return model.forward(x, stop_before=block_name)


def _randomise_bn(params, block_name, rng):
    """Parameters for the block's bn1, bn2 and bn3 drawn independently of the model's, so
    that Fig. 3's check exercises BN slicing whatever seeded weights the model has (the
    identity-BN ones have mean 0, var 1, scale 1, offset 0). The shortcut's BN is left as
    it is: all three forms run the same shortcut."""
    params = dict(params)
    for name in [n for n in params if n.startswith(block_name + ".bn")]:
        shape = params[name].shape
        if name.endswith("running_var"):
            params[name] = rng.uniform(0.5, 2.0, shape)
        elif name.endswith("weight"):
            params[name] = rng.uniform(0.5, 1.5, shape)
        else:
            params[name] = rng.normal(0.0, 0.2, shape)
    return params


class Fig3Inputs(NamedTuple):
    """A real block of a float64 model and what it receives."""

    config: ArchConfig
    params: dict          # the model's parameters (BN statistics randomised for seeded weights)
    x: np.ndarray         # the block's input, computed by the model from a seeded image
    block: object         # the :class:`~numpy_resnext.plan.Block`


def fig3_inputs(arch="ResNeXt50_32x4d", block="layer1.1", weights=None, seed=0, size=224) -> Fig3Inputs:
    """The block ``block`` of a float64 model, its parameters and its input on a seeded
    random image (:class:`Fig3Inputs`)."""
    model = build(arch, weights=weights, seed=seed, dtype="float64")
    b = model.plan.block(block)
    rng = np.random.default_rng(seed)
    x = block_input(model, rng.standard_normal((1, 3, size, size)), b.name)
    params = model.params if weights is not None else _randomise_bn(model.params, b.name, rng)
    return Fig3Inputs(model.config, params, x, b)


def _rel(u, v) -> float:
    return float(np.abs(u - v).max() / max(np.abs(v).max(), 1e-300))


def fig3_check(arch="ResNeXt50_32x4d", block="layer1.1", weights=None, seed=0) -> Check:
    """Fig. 3: the sum of C branches (a), early concatenation (b) and the grouped
    convolution the model runs (c) give the same aggregated transform and block output."""
    config, params, x, plan = fig3_inputs(arch, block, weights, seed)
    a = block_branches(x, params, plan, config)
    b = early_concat_form(x, params, plan, config)
    c = grouped_form(x, params, plan, config)
    rel = {"(a) vs (c), aggregated transform": _rel(a.total, c.total),
           "(b) vs (c), aggregated transform": _rel(b.total, c.total),
           "(a) vs (c), block output": _rel(a.output, c.output),
           "(b) vs (c), block output": _rel(b.output, c.output)}
    where = "loaded weights" if weights is not None else "seeded weights, BN statistics randomised"
    return Check(
        "Fig. 3", f"{config.name} {plan.name}: {plan.groups} branches of d'={plan.group_width} channels, "
                  f"stride {plan.stride}, {plan.shortcut} shortcut; float64, {where}",
        "(a) sum of branches = (b) early concatenation = (c) grouped conv",
        "; ".join(f"{k} {v:.1e}" for k, v in rel.items()) + " (max relative difference)",
        f"relative {FIG3_RTOL:g}", max(rel.values()) <= FIG3_RTOL)


def se_checks() -> list:
    """Eq. 5 of Hu et al. against the SE layers of the plan (their weights' shapes), and its
    order of magnitude against the plain twin's parameters."""
    se_arch, plain_arch, r, millions, share = SE_CLAIM
    plan = layer_plan(se_arch)
    shapes = param_shapes(plan)
    weights = sum(math.prod(shapes[f"{fc.name}.weight"]) for se in plan.se_layers() for fc in (se.fc1, se.fc2))
    biases = sum(se.reduced + se.channels for se in plan.se_layers())
    per_stage = {}                                                     # C_s -> N_s
    for b in plan.blocks:
        per_stage[b.out_channels] = per_stage.get(b.out_channels, 0) + 1
    eq5 = sum(2 * n * c * c for c, n in per_stage.items()) // r
    base = count_params(layer_plan(plain_arch))
    terms = " + ".join(f"{n}*{c}^2" for c, n in per_stage.items())
    return [Check("SE", f"{se_arch}: Eq. 5, (2/r) * sum_s N_s * C_s^2 weights, r = {r}",
                  f"(2/{r}) * ({terms}) = {eq5:,}",
                  f"{weights:,} in the plan's SE fc1/fc2 weights ({biases:,} biases besides)", "exact",
                  weights == eq5, "Eq. 5"),
            Check("SE", f"{se_arch}: about {millions} million more parameters than {plain_arch}, "
                        f"about {share:.0%}",
                  f"~{millions}M, ~{share:.0%}", f"{(weights + biases) / 1e6:.3f}M, "
                  f"{(weights + biases) / base:.1%} of {base:,}",
                  "|diff| < 0.1M and the share rounds to that percent",
                  abs((weights + biases) / 1e6 - millions) < 0.1 and round((weights + biases) / base, 2) == share)]


def run_audit(fig3_arch="ResNeXt50_32x4d", fig3_block="layer1.1", weights=None, seed=0,
              progress=None) -> list:
    """Every check, in the order the papers make the claims (ResNeXt's, then SE's)."""
    steps = [("Table 1", table1_checks), ("Table 2", table2_checks),
             ("PaddleClas num_filters vs torchvision widths", width_checks),
             ("Fig. 3", lambda: [fig3_check(fig3_arch, fig3_block, weights, seed)]),
             ("SE, Eq. 5", se_checks)]
    checks = []
    for i, (what, step) in enumerate(steps):
        if progress is not None:
            progress.update(i, what)
        checks += step()
    return checks


def format_audit(checks) -> str:
    """Text report: one block per claim, its verdict first."""
    lines, section = [], None
    for c in checks:
        if c.section != section:
            section = c.section
            lines.append(f"\n== {SECTION_TITLES.get(section, section)} ==")
        lines.append(f"[{'holds' if c.holds else 'FAILS'}] {c.claim}")
        lines.append(f"    {c.source + ':':<12} {c.paper}")
        lines.append(f"    {'computed:':<12} {c.computed}")
        lines.append(f"    {'tolerance:':<12} {c.tolerance}")
    n_ok = sum(c.holds for c in checks)
    lines.append(f"\n{n_ok} of {len(checks)} claims hold." +
                 ("" if n_ok == len(checks) else " Claims marked FAILS need attention."))
    lines.append("Not recomputed: Tables 3-5, 7 and 8 (error rates) need the data sets; their numbers "
                 "are in docs/paper_results.md.")
    return "\n".join(lines).lstrip("\n")
