"""Numbers and claims that README.md and docs/ state in prose, recomputed.

Each test reads the sentence from the file (so an edit that breaks it fails here) and
recomputes what it says from the paper's own definitions, not from the package's output.
"""

import re
from pathlib import Path

import numpy as np

import numpy_resnext as nrx
from numpy_resnext.paper import claims as audit
from numpy_resnext.ops.batchnorm import batchnorm
from numpy_resnext.ops.conv import conv2d

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")
BOTTLENECK = (ROOT / "docs" / "bottleneck.md").read_text(encoding="utf-8")
TABLE2 = ((1, 64), (2, 40), (4, 24), (8, 14), (32, 4))      # the paper's Table 2 (C, d)


def eq4(C, d):
    """The paper's Eq. 4, written here from the paper: C * (256*d + 3*3*d*d + d*256)."""
    return C * (256 * d + 3 * 3 * d * d + d * 256)


def _int(s):
    return int(s.replace(",", ""))


def test_table2_is_the_papers():
    assert tuple((C, d) for C, d, _ in audit.PAPER_TABLE2) == TABLE2
    assert all(audit.eq4(C, d) == eq4(C, d) for C, d in TABLE2)


def test_readme_eq4_range_over_table2():
    m = re.search(r"Table 2's templates by Eq\. 4 \(([\d,]+) … ([\d,]+)", README)
    assert m, "README's audit paragraph no longer states Eq. 4's range over Table 2"
    values = [eq4(C, d) for C, d in TABLE2]
    assert (_int(m[1]), _int(m[2])) == (min(values), max(values))
    m = re.search(r"Table 2's templates by Eq\. 4 \([\d,]+ … [\d,]+, i\.e\. 70k ([−+-][\d.]+) % … "
                  r"([−+-][\d.]+) %\)", README)
    assert m, "README's audit paragraph no longer states the range as percentages of 70k"
    pct = [float(g.replace("−", "-")) for g in (m[1], m[2])]
    assert pct == [round(100 * (v / 70_000 - 1), 1) for v in (min(values), max(values))]


def test_bottleneck_md_eq4_values():
    m = re.search(r"cost about 70k \(([\d,]+), ([\d,]+), ([\d,]+), ([\d,]+) and ([\d,]+): "
                  r"from ([−+-][\d.]+) % to ([−+-][\d.]+) %\)", BOTTLENECK)
    assert m, "docs/bottleneck.md no longer lists Eq. 4 for Table 2's templates"
    values = [eq4(C, d) for C, d in TABLE2]
    assert [_int(m[i]) for i in range(1, 6)] == values
    assert float(m[6].replace("−", "-")) == round(100 * (min(values) / 70_000 - 1), 1)
    assert float(m[7].replace("−", "-")) == round(100 * (max(values) / 70_000 - 1), 1)
    m = re.search(r"ResNet's bottleneck \(C = 1, d = 64\) has ([\d,]+); ResNeXt's 32x4d has ([\d,]+)", BOTTLENECK)
    assert m and (_int(m[1]), _int(m[2])) == (eq4(1, 64), eq4(32, 4))


def _fig3b_paragraph(text, start):
    i = text.index(start)
    return " ".join(text[i:text.index("\n\n", i)].split())


def test_fig3b_prose_names_separate_first_layers():
    """Fig. 3b keeps C separate first 1x1 layers (and 3x3s) and concatenates before the last
    1x1; only Fig. 3c has one 1x1 for all branches. Both descriptions must say so."""
    doc = _fig3b_paragraph(BOTTLENECK, "Fig. 3b (early concatenation)")
    import numpy_resnext.paper.branches as branches
    mod = _fig3b_paragraph(branches.__doc__, "(b) early concatenation")
    for text in (doc, mod):
        assert "one 1x1 conv for all branches" not in text
        assert re.search(r"(C separate 1x1|own\s+first 1x1)", text), text
        assert re.search(r"(its own 3x3|own 3x3)", text), text
        assert re.search(r"concatenated .*before\*? the last", text), text


def test_fig3b_as_the_paper_draws_it_is_the_block(rng):
    """Execute the documented form (b) literally: C separate first 1x1 convs (row slices of
    conv1), C separate 3x3s, concatenate, one last 1x1; it gives the block's conv3 output."""
    cfg = nrx.custom(depths=(1,), cardinality=4, base_width=2, num_classes=3)
    model = nrx.build(cfg, dtype="float64", seed=1)
    p = model.params
    x = rng.standard_normal((2, 3, 12, 12))
    _, acts = model.forward(x, keep=["maxpool", "layer1.0.conv3"])
    blk = model.plan.blocks[0]
    C, d = blk.groups, blk.width // blk.groups

    def bn(y, name, lo, hi):
        return batchnorm(np.ascontiguousarray(y), *(p[f"{name}.{f}"][lo:hi]
                                                     for f in ("weight", "bias", "running_mean", "running_var")))

    pieces = []
    for i in range(C):
        lo, hi = i * d, (i + 1) * d
        y = np.maximum(bn(conv2d(acts["maxpool"], p["layer1.0.conv1.weight"][lo:hi]), "layer1.0.bn1", lo, hi), 0)
        y = conv2d(y, p["layer1.0.conv2.weight"][lo:hi], stride=blk.stride, padding=1)
        pieces.append(np.maximum(bn(y, "layer1.0.bn2", lo, hi), 0))
    total = conv2d(np.concatenate(pieces, axis=1), p["layer1.0.conv3.weight"])
    ref = acts["layer1.0.conv3"]
    assert np.abs(total - ref).max() <= 1e-12 * np.abs(ref).max()


def test_units_are_stated_once_and_consistently():
    """docs/README.md fixes the vocabulary (FLOP = 2 x MACs); its example numbers obey it and
    round to the paper's Table 1 (4.1 G multiply-adds for ResNet-50, 4.2 G for 32x4d)."""
    docs = (ROOT / "docs" / "README.md").read_text(encoding="utf-8")
    assert "## Units: MACs and FLOP" in docs and "FLOP = 2 × MACs" in docs
    m = re.search(r"4\.1\s+billion FLOPs for ResNet-50 are ([\d.]+) G MACs", docs)
    assert m and round(float(m[1]), 1) == 4.1
    m = re.search(r"ResNeXt-50 32x4d at 224x224 is ([\d.]+) GMACs = ([\d.]+) GFLOP", docs)
    assert m and round(float(m[1]), 1) == 4.2 and abs(float(m[2]) - 2 * float(m[1])) < 0.006
    assert "docs/README.md#units-macs-and-flop" in README


BACKWARD = (ROOT / "docs" / "backward.md").read_text(encoding="utf-8")


def _floats(text):
    """The numbers in a piece of prose, "−" read as a minus sign."""
    return [float(v.replace("−", "-")) for v in re.findall(r"−?\d+(?:\.\d+)?", text)]


def test_backward_md_softmax_example():
    m = re.search(r"Example: z = \(([^)]*)\), label (\d), N = 1: p = \(([^)]*)\), L = −log ([\d.]+) = ([\d.]+),\s+"
                  r"∂L/∂z = \(([^)]*)\)", BACKWARD)
    assert m, "docs/backward.md: the softmax example moved"
    import math
    z, label = _floats(m[1]), int(m[2])
    e = [math.exp(v) for v in z]
    p = [v / sum(e) for v in e]
    assert _floats(m[3]) == [round(v, 3) for v in p]
    assert float(m[4]) == round(p[label], 3) and float(m[5]) == round(-math.log(p[label]), 3)
    assert _floats(m[6]) == [round(v - (j == label), 3) for j, v in enumerate(p)]


def test_backward_md_avgpool_example():
    """H = 6, k = 3, s = 2, p = 1, ceil mode: counts, outputs and gradients, by hand."""
    sec = " ".join(BACKWARD[BACKWARD.index("Example along one axis"):BACKWARD.index("## 6.")].split())
    H, k, s, p = 6, 3, 2, 1
    assert f"H = {H}, k = {k}, s = {s}, p = {p}, ceil mode" in sec
    starts = [-p]      # ceil mode: add windows until one reaches the padded end, none starting in the right padding
    while starts[-1] + k < H + 2 * p and starts[-1] + s < H:
        starts.append(starts[-1] + s)
    rows = [[h for h in range(h0, h0 + k) if 0 <= h < H] for h0 in starts]
    excl = [len(r) for r in rows]
    incl = [min(h0 + k, H + p) - h0 for h0 in starts]
    m = re.search(r"Exclusive counts are ([\d, ]+) \(", sec)
    assert m and [int(v) for v in m[1].split(",")] == excl
    m = re.search(r"inclusive counts are ([\d, ]+) \(", sec)
    assert m and [int(v) for v in m[1].split(",")] == incl
    m = re.search(r"outputs are ([\d., ]+) \(exclusive\) and ([\d., ]+) \(inclusive\)", sec)
    assert [round(sum(r) / c, 3) for r, c in zip(rows, excl)] == _floats(m[1])
    assert [round(sum(r) / c, 3) for r, c in zip(rows, incl)] == _floats(m[2])
    grad = [sum(1 / c for r, c in zip(rows, excl) if h in r) for h in range(H)]
    m = re.search(r"the exclusive gradient is ([\d., ]+) \(", sec)
    assert m and _floats(m[1]) == [round(g, 3) for g in grad]


def test_early_concat_form_runs_what_bottleneck_md_says(monkeypatch, rng):
    """docs/bottleneck.md says how many convolutions `early_concat_form` runs and of what
    shape; count the calls the code really makes (the claim "(b)'s C first 1x1 layers as
    that one 1x1 conv" was once printed there while the code ran C separate ones)."""
    text = " ".join(BOTTLENECK.split())
    m = re.search(r"`early_concat_form` runs \(b\) as drawn: C separate 1x1 convolutions, C separate "
                  r"3x3 convolutions and one 1x1 convolution over their concatenation \(2·C \+ 1 calls", text)
    assert m, "docs/bottleneck.md no longer says what early_concat_form runs"
    assert "as that one 1x1 conv" not in text
    import numpy_resnext.paper.branches as branches
    calls = []
    real = branches.conv2d

    def counting(x, w, *args, **kwargs):
        calls.append(w.shape)
        return real(x, w, *args, **kwargs)
    monkeypatch.setattr(branches, "conv2d", counting)
    cfg = nrx.custom(depths=(1,), cardinality=4, base_width=2, num_classes=3)
    model = nrx.build(cfg, dtype="float64", seed=1)
    blk = model.plan.blocks[0]
    C, d = blk.groups, blk.group_width
    x = model.forward(rng.standard_normal((1, 3, 12, 12)), stop_before=blk.name)
    branches.early_concat_form(x, model.params, blk, cfg)
    assert calls == [(d, blk.in_channels, 1, 1), (d, d, 3, 3)] * C + [(blk.out_channels, C * d, 1, 1)]
    assert len(calls) == 2 * C + 1


def test_backward_md_step_example():
    """docs/backward.md §11's example, recomputed on the walkthrough's tiny network: the
    gradient entry, its channel's rms, the miss of a fixed h = 1e-6 and the agreement of
    h = 1e-6 x rms (the step guidance rests on these numbers)."""
    from numpy_resnext.grad import gradients
    sec = " ".join(BACKWARD[BACKWARD.index("## 11."):].split())
    m = re.search(r"largest gradient entry of `(\S+)` is about ([\d.e]+) in a channel whose weights have "
                  r"rms ([\d.e-]+); h = 1e-6 misses it by (\d+) %, h = ([\d.e-]+) \(1e-6 × rms\) agrees to ([\d.e-]+)\.", sec)
    assert m, "docs/backward.md §11: the example moved"
    rng = np.random.default_rng(0)
    rng.standard_normal(16), rng.standard_normal(16)                  # as the walkthrough draws
    config = nrx.custom(depths=(1, 1), cardinality=4, base_width=4, stem_width=16, num_classes=10)
    model = nrx.build(config, seed=0, dtype="float64")
    images, dlogits = rng.standard_normal((2, 3, 32, 32)), rng.standard_normal((2, 10))
    name = m[1]
    grad = gradients(model, images, dlogits).grads[name]
    idx = np.unravel_index(np.abs(grad).argmax(), grad.shape)
    rms = float(np.sqrt(np.mean(model.params[name][idx[0]] ** 2)))

    def fd(h):
        def loss(sign):
            p = dict(model.params)
            p[name] = p[name].copy()
            p[name][idx] += sign * h
            return float((nrx.build(config, weights=p, dtype="float64")(images) * dlogits).sum())
        return (loss(1) - loss(-1)) / (2 * h)
    def sci(v):                                                        # 2.6e3, 6.5e-4
        return f"{v:.1e}".replace("e+0", "e").replace("e-0", "e-")
    assert (sci(grad[idx]), sci(rms)) == (m[2], m[3])
    assert round(100 * abs(fd(1e-6) - grad[idx]) / abs(grad[idx]), -1) == int(m[4])
    assert sci(1e-6 * rms) == m[5]
    assert abs(fd(1e-6 * rms) - grad[idx]) / abs(grad[idx]) <= 2 * float(m[6])
