"""The story the paper tells before its equations, made executable (docs/story.md).

- :func:`block_forms`: three ways of splitting, transforming and merging, at the width of a
  real block of the layer plan (ResNeXt-50 32x4d's layer1.1: 256 channels in and out, 56x56):
  the naive Inception module (1x1, 3x3 and 5x5 convolutions and a 3x3 max-pool side by side,
  concatenated), Inception with 1x1 reductions, and the ResNeXt block (C copies of one
  topology, summed), with the ResNet bottleneck for reference. Each form is a list of branches
  of convolutions; their parameters and multiply-accumulates are counted from the shapes, and
  :func:`run_form` runs a form with the package's own ops to show its output shape.
- :func:`depth_collapse`: why a block needs depth >= 3 (§3.3, Fig. 4): C branches of depth 2
  sum to one wide dense two-layer block, while at depth 3 the middle layer stays grouped (block
  diagonal), a real constraint.
- :func:`paddleclas_rows`: PaddleClas's layer names (the ``ConvBNLayer`` s of its
  ``BottleneckBlock``: conv0, conv1, conv2, short; and its ParamAttr names such as
  res2a_branch2b) beside this package's, read from the name maps the weight readers use
  (:mod:`numpy_resnext.io.schemes`), so the table cannot drift from the code that loads the files.

The Inception branch widths are GoogLeNet's module "inception (3a)" (Szegedy et al., *Going
Deeper with Convolutions*, CVPR 2015, Table 1), whose output is 256 channels like the block's;
they are scaled by out/256 for a block of another width.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..archs import get_arch
from ..io.schemes import name_map
from ..ops.conv import conv2d
from ..ops.pooling import maxpool2d
from ..plan import BN_FIELDS, layer_plan
from ..shapes import output_shapes

# GoogLeNet's inception (3a): #1x1, #3x3 reduce, #3x3, #5x5 reduce, #5x5, pool proj (out 256)
INCEPTION_3A = dict(c1=64, r3=96, c3=128, r5=16, c5=32, pool_proj=32)
INCEPTION_OUT = 256
INCEPTION_POOL = (3, 1, 1)         # its max-pool branch: 3x3 window, stride 1, padding 1 (same size)


class Conv(NamedTuple):
    """One convolution of a branch: kernel k x k, stride 1, 'same' padding, groups g."""

    kernel: int
    cin: int
    cout: int
    groups: int = 1

    @property
    def params(self) -> int:
        return self.cout * (self.cin // self.groups) * self.kernel * self.kernel


class Branch(NamedTuple):
    """A path through a block: an optional max-pool, then convolutions in order."""

    label: str
    convs: tuple
    pool: tuple | None = None  # (kernel, stride, padding) of a max-pool before the convolutions
    repeat: int = 1            # identical copies (ResNeXt's C branches)

    @property
    def out(self) -> int:
        return self.convs[-1].cout if self.convs else 0


class Form(NamedTuple):
    """A multi-branch block: its branches and how they merge ("concatenate" or "sum")."""

    name: str
    branches: tuple
    merge: str
    cin: int
    height: int
    width: int

    @property
    def out_channels(self) -> int:
        if self.merge == "sum":
            return self.branches[0].out
        return sum(b.repeat * (b.out if b.convs else self.cin) for b in self.branches)

    @property
    def params(self) -> int:
        """Convolution weights (no BN, no bias), as the paper counts Eq. 4."""
        return sum(b.repeat * sum(c.params for c in b.convs) for b in self.branches)

    @property
    def macs(self) -> int:
        """Multiply-accumulates per image: every convolution runs at every pixel (stride 1)."""
        return self.params * self.height * self.width

    @property
    def hyperparameters(self) -> str:
        """What a designer must choose for the form."""
        if self.merge == "sum":
            return "2 (C and d), one topology repeated"
        kinds = {(c.kernel, c.cout) for b in self.branches for c in b.convs}
        return f"{len(kinds)} (a width and a kernel per convolution, set branch by branch)"


def block_forms(arch="ResNeXt50_32x4d", block="layer1.1") -> list:
    """The naive Inception module, Inception with 1x1 reductions, the ResNeXt block and the
    ResNet bottleneck at the input width, output width and size of ``block`` (stride 1)."""
    plan = layer_plan(arch)
    b = plan.block(block)
    if b.stride != 1:
        raise ValueError(f"{b.name} strides; the comparison needs a stride-1 block such as layer1.1")
    rows = {r["name"]: r for r in output_shapes(plan, 224, 224)}
    cin, H, W = rows[plan.block_input(b)]["shape"]
    out, C, dp = b.out_channels, b.groups, b.group_width
    s = {k: v * out // INCEPTION_OUT for k, v in INCEPTION_3A.items()}   # widths scaled to the block's output
    naive = Form("naive Inception", (
        Branch("1x1", (Conv(1, cin, s["c1"]),)),
        Branch("3x3", (Conv(3, cin, s["c3"]),)),
        Branch("5x5", (Conv(5, cin, s["c5"]),)),
        Branch("3x3 max-pool", (), pool=INCEPTION_POOL)), "concatenate", cin, H, W)
    reduced = Form("Inception, 1x1 reductions", (
        Branch("1x1", (Conv(1, cin, s["c1"]),)),
        Branch("1x1 -> 3x3", (Conv(1, cin, s["r3"]), Conv(3, s["r3"], s["c3"]))),
        Branch("1x1 -> 5x5", (Conv(1, cin, s["r5"]), Conv(5, s["r5"], s["c5"]))),
        Branch("3x3 max-pool -> 1x1", (Conv(1, cin, s["pool_proj"]),), pool=INCEPTION_POOL)), "concatenate", cin, H, W)
    resnext = Form(f"ResNeXt {C}x{dp}d", (
        Branch("1x1 -> 3x3 -> 1x1", (Conv(1, cin, dp), Conv(3, dp, dp), Conv(1, dp, out)), repeat=C),),
        "sum", cin, H, W)
    resnet_width = get_arch("ResNet50").stage_width(b.stage)            # ResNet's bottleneck: C = 1
    resnet = Form(f"ResNet bottleneck 1x{resnet_width}d", (
        Branch("1x1 -> 3x3 -> 1x1", (Conv(1, cin, resnet_width), Conv(3, resnet_width, resnet_width),
                                     Conv(1, resnet_width, out))),), "sum", cin, H, W)
    return [naive, reduced, resnext, resnet]


def run_form(form: Form, x, rng) -> np.ndarray:
    """Run ``form`` on x (N, cin, H, W) with seeded random weights and the package's ops:
    each branch's convolutions (after its max-pool if it has one), then concatenation or
    sum. Shows the output shape the counts assume; the values mean nothing."""
    outs = []
    for b in form.branches:
        for _ in range(b.repeat):
            y = maxpool2d(x, *b.pool) if b.pool else x
            for c in b.convs:
                w = rng.standard_normal((c.cout, c.cin // c.groups, c.kernel, c.kernel)) / np.sqrt(c.cin * c.kernel ** 2)
                y = np.maximum(conv2d(y, w.astype(x.dtype), padding=c.kernel // 2, groups=c.groups), 0)
            outs.append(y)                                               # N, branch out, H, W
    return np.sum(outs, axis=0) if form.merge == "sum" else np.concatenate(outs, axis=1)


def format_forms(forms) -> str:
    """The comparison as a markdown table."""
    lines = ["| block form | branches | merge | out channels | parameters | x the ResNeXt block's | "
             "MACs per image | widths and kernels to choose |",
             "|---|---|---|---:|---:|---:|---:|---|"]
    ref = next(f for f in forms if f.name.startswith("ResNeXt")).params
    for f in forms:
        branches = "; ".join((f"{b.repeat} x " if b.repeat > 1 else "") + b.label for b in f.branches)
        lines.append(f"| {f.name} | {branches} | {f.merge} | {f.out_channels} | {f.params:,} | "
                     f"{f.params / ref:.2f} | {f.macs:,} | {f.hyperparameters} |")
    return "\n".join(lines)


# --- §3.3, Fig. 4: depth 2 collapses, depth 3 does not --------------------------------------
class Collapse(NamedTuple):
    depth2_difference: float     # max |sum of C depth-2 branches - one wide dense pair|
    depth3_difference: float     # max |sum of C depth-3 branches - grouped (block-diagonal) middle|
    dense_middle_difference: float   # the same with the middle layer's off-diagonal blocks filled
    grouped_middle_params: int   # C * d * d
    dense_middle_params: int     # (C * d) ** 2


def depth_collapse(C=4, d=3, cin=8, cout=8, n=5, seed=0) -> Collapse:
    """Fig. 4 with 1x1 layers (matrices on n input vectors): the sum of C depth-2 branches
    B_i relu(A_i x) *is* [B_1 .. B_C] relu([A_1; ..; A_C] x), one dense pair of width C*d; the
    sum of C depth-3 branches is D relu(M relu(A x)) with M block diagonal, C times sparser
    than a dense middle layer of the same width, and filling M changes the function."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((cin, n))                                    # cin, n
    A = [rng.standard_normal((d, cin)) for _ in range(C)]
    M = [rng.standard_normal((d, d)) for _ in range(C)]
    B = [rng.standard_normal((cout, d)) for _ in range(C)]

    def relu(z):
        return np.maximum(z, 0)
    two = sum(B[i] @ relu(A[i] @ x) for i in range(C))                   # cout, n
    wide = np.hstack(B) @ relu(np.vstack(A) @ x)                          # (cout, C*d) @ (C*d, n)
    three = sum(B[i] @ relu(M[i] @ relu(A[i] @ x)) for i in range(C))
    block_diag = np.zeros((C * d, C * d))
    for i in range(C):
        block_diag[i * d:(i + 1) * d, i * d:(i + 1) * d] = M[i]
    grouped = np.hstack(B) @ relu(block_diag @ relu(np.vstack(A) @ x))
    dense = block_diag + (block_diag == 0) * rng.standard_normal(block_diag.shape)
    filled = np.hstack(B) @ relu(dense @ relu(np.vstack(A) @ x))
    return Collapse(float(np.abs(two - wide).max()), float(np.abs(three - grouped).max()),
                    float(np.abs(three - filled).max()), C * d * d, (C * d) ** 2)


# --- PaddleClas's names beside this package's ------------------------------------------------
class NameRow(NamedTuple):
    paddleclas_layer: str      # the BottleneckBlock attribute / ConvBNLayer part
    state_dict: str            # key in a PaddleClas .pdparams (scheme ppcls)
    param_attr: str            # ParamAttr name in a legacy .tar (scheme ppcls_param)
    canonical: str             # this package's (torchvision's) name


def paddleclas_rows(arch="ResNeXt50_32x4d", blocks=("layer1.0",), bn_of="conv2") -> list:
    """Rows for the stem conv, every conv of ``blocks`` (with all four BN tensors of the
    ``bn_of`` conv), and the head, from :func:`numpy_resnext.io.schemes.name_map`."""
    config = get_arch(arch)
    ppcls, param = name_map(config, "ppcls"), name_map(config, "ppcls_param")
    plan = layer_plan(config)
    names = [f"{plan.stem[0].name}.weight"]
    for block in blocks:
        b = plan.block(block)
        for layer in b.convs:
            names.append(f"{layer.name}.weight")
            if layer.role == bn_of:
                names += [f"{layer.bn}.{f}" for f in BN_FIELDS]
    names += [f"{plan.head.fc}.weight", f"{plan.head.fc}.bias"]
    rows = []
    for n in names:
        key = ppcls[n]
        parts = key.split(".")
        layer = parts[1] if key.startswith("bb_") else parts[0]          # conv0 / conv1 / conv2 / short
        part = "BN " + parts[-1] if "_batch_norm" in key else ("conv" if "_conv" in key else "fc")
        rows.append(NameRow(f"{layer}: {part} {'' if part.startswith('BN') else parts[-1]}".rstrip(),
                            key, param[n], n))
    return rows


def format_names(rows) -> str:
    lines = ["| PaddleClas layer | PaddleClas state-dict key | PaddleClas ParamAttr name | this package |",
             "|---|---|---|---|"]
    lines += [f"| {r.paddleclas_layer} | `{r.state_dict}` | `{r.param_attr}` | `{r.canonical}` |" for r in rows]
    return "\n".join(lines)
