"""The paper's equivalences and the ops' laws as Hypothesis properties, in float64.

Examples are drawn (shapes, strides, paddings, cardinalities, widths); the profile picked by
NUMPY_RESNEXT_PROFILE (tests/conftest.py) sets how many: "dev" for quick local runs, "ci"
derandomized (the same examples every run) with no deadline. A failure prints the minimal
falsifying example Hypothesis shrank it to.

1. Fig. 3: split-transform-merge (a) == early concatenation (b) == grouped block (c), BN
   and ReLU included; C = 32, d = 4 (ResNeXt-50's first stage) explicitly.
2. Grouped convolution == G convolutions on channel slices, concatenated; groups = 1 is the
   plain convolution; groups = C is depthwise; all == a SciPy (scipy.signal.correlate) oracle.
3. (im2col and col2im are adjoint: test_conv.py, on the same drawn cases.)
4. Inference BN is a per-channel affine map; folding it into the conv before it is exact.
5. Output-size laws; max-pool padding never wins; the vd average pool counts real pixels.
6. No forward or backward function modifies its inputs (checked on writable inputs against
   copies taken before the call).

Closeness is the toolkit's one measure (tests/_arrays.py), against the reference side.
"""

import numpy as np
import pytest
from hypothesis import assume, given, settings, strategies as st

scipy_signal = pytest.importorskip("scipy.signal")

import numpy_resnext as nrx                                            # noqa: E402
from numpy_resnext.ops.activations import relu, relu_backward                # noqa: E402
from numpy_resnext.ops.batchnorm import (batchnorm, batchnorm_backward, batchnorm_train,  # noqa: E402
                                     batchnorm_train_backward, fold_bn)
from numpy_resnext.paper.branches import (block_branches, early_concat_form,   # noqa: E402
                                    find_block, grouped_form)
from numpy_resnext.ops.conv import conv2d, conv2d_backward                   # noqa: E402
from numpy_resnext.grad import gradients                                 # noqa: E402
from numpy_resnext.ops.linear import linear, linear_backward                 # noqa: E402
from numpy_resnext.ops.loss import softmax_cross_entropy, softmax_cross_entropy_backward  # noqa: E402
from numpy_resnext.plan import make_block                               # noqa: E402
from numpy_resnext.ops.pooling import (avgpool2d, avgpool2d_backward, global_avgpool,  # noqa: E402
                                   global_avgpool_backward, maxpool2d, maxpool2d_backward)

from _arrays import assert_close, assert_unmodified, conv_cases, pool_cases  # noqa: E402

# the heavier properties run fewer examples than the profile's default
FEW = settings(max_examples=max(5, settings.default.max_examples // 3))


def random_bn(rng, params, name, C):
    params[f"{name}.weight"] = rng.uniform(0.5, 1.5, C)
    params[f"{name}.bias"] = rng.normal(0, 0.3, C)
    params[f"{name}.running_mean"] = rng.normal(0, 0.3, C)
    params[f"{name}.running_var"] = rng.uniform(0.5, 2.0, C)


# --- 1. Fig. 3 -----------------------------------------------------------------------
def block_setup(rng, C, d, cin, cout, stride, shortcut, vd):
    """An odd-sized Block, a config (the forms take it), and random params under canonical names."""
    config = nrx.custom(depths=(1, 1), cardinality=C, base_width=d, stem="deep" if vd else "plain")
    width = C * d
    block = make_block("layer2.0", 2, 0, cin, width, cout, stride, C, shortcut, config.naming)
    p = {"layer2.0.conv1.weight": rng.standard_normal((width, cin, 1, 1)) / np.sqrt(cin),
         "layer2.0.conv2.weight": rng.standard_normal((width, d, 3, 3)) / np.sqrt(9 * d),
         "layer2.0.conv3.weight": rng.standard_normal((cout, width, 1, 1)) / np.sqrt(width)}
    for i, c in ((1, width), (2, width), (3, cout)):
        random_bn(rng, p, f"layer2.0.bn{i}", c)
    if block.projection is not None:
        p[f"{block.projection.name}.weight"] = rng.standard_normal((cout, cin, 1, 1)) / np.sqrt(cin)
        random_bn(rng, p, block.projection.bn, cout)
    return config, block, p


def assert_three_forms_agree(x, p, block, config):
    block = find_block(config, block)
    a = block_branches(x, p, block, config)
    b = early_concat_form(x, p, block, config)
    c = grouped_form(x, p, block, config)
    assert len(a.branches) == len(b.branches) == block.groups
    for field in ("total", "bn3", "shortcut", "output"):
        assert_close(getattr(a, field), getattr(c, field))
        assert_close(getattr(b, field), getattr(c, field))
    return a, c


@FEW
@given(C=st.integers(1, 6), d=st.integers(1, 4), cin=st.integers(1, 8), cout=st.integers(1, 8),
       H=st.integers(2, 7), W=st.integers(2, 7), stride=st.integers(1, 2), N=st.integers(1, 2),
       kind=st.sampled_from(["identity", "projection", "avgpool_projection"]), seed=st.integers(0, 2**31))
def test_fig3_branches_early_concat_and_grouped_agree(C, d, cin, cout, H, W, stride, N, kind, seed):
    if kind == "identity":
        cout, stride = cin, 1                     # an identity shortcut needs matching shapes
    if kind == "avgpool_projection":
        stride = 2
    rng = np.random.default_rng(seed)
    config, block, p = block_setup(rng, C, d, cin, cout, stride, kind, vd=(kind == "avgpool_projection"))
    x = rng.standard_normal((N, cin, H, W))
    assert_three_forms_agree(x, p, block, config)


@pytest.fixture(scope="module")
def resnext50():
    """ResNeXt-50 32x4d's seeded weights with random BN statistics (float64)."""
    model = nrx.build("ResNeXt50_32x4d", dtype="float64", seed=0)
    rng = np.random.default_rng(0)
    for layer in model.plan.convs():
        random_bn(rng, model.params, layer.bn, layer.out_channels)
    return model


@pytest.mark.parametrize("block", ["layer1.0", "layer1.1", "layer2.0"])
def test_fig3_on_resnext50_first_stages(resnext50, block):
    """C = 32 branches of d = 4 (layer1) and d = 8 with stride 2 (layer2.0), real blocks."""
    model = resnext50
    rng = np.random.default_rng(1)
    cin = {"layer1.0": 64, "layer1.1": 256, "layer2.0": 256}[block]
    x = rng.standard_normal((2, cin, 8, 8))
    a, c = assert_three_forms_agree(x, model.params, block, model.config)
    assert len(a.branches) == 32
    assert a.branches[0].shape == c.total.shape
    # the grouped form is the block the model runs: compare with the model's own intermediates
    if block == "layer1.0":
        _, acts = model.forward(rng.standard_normal((1, 3, 32, 32)), keep=["maxpool", "layer1.0*"])
        g = block_branches(acts["maxpool"], model.params, "layer1.0", model.config)
        assert_close(g.total, acts["layer1.0.conv3"])
        assert_close(g.bn3, acts["layer1.0.bn3"])
        assert_close(g.output, acts["layer1.0"])


def test_fig3_bn3_shift_is_added_once(resnext50):
    """Applying bn3 to every branch instead of to the sum adds its shift 32 times."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal((1, 64, 4, 4))
    a = block_branches(x, resnext50.params, "layer1.0", resnext50.config)
    p = {k[len("layer1.0.bn3."):]: v for k, v in resnext50.params.items() if k.startswith("layer1.0.bn3.")}
    per_branch = sum(batchnorm(t, p["weight"], p["bias"], p["running_mean"], p["running_var"]) for t in a.branches)
    scale, shift = nrx.bn_scale_shift(p["weight"], p["bias"], p["running_mean"], p["running_var"])
    assert_close(per_branch - 31 * shift.reshape(1, -1, 1, 1), a.bn3)
    assert np.abs(per_branch - a.bn3).max() > 1e-3


# --- 2. grouped convolution ------------------------------------------------------------
def scipy_conv(x, w, stride, padding, groups):
    """An independent oracle: scipy.signal.correlate ('valid', direct) per (n, k, c)."""
    (sh, sw), (ph, pw) = stride, padding
    N, C, H, W = x.shape
    K, Cg, R, S = w.shape
    Kg = K // groups
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out = []
    for n in range(N):
        maps = []
        for k in range(K):
            g = k // Kg
            acc = sum(scipy_signal.correlate(xp[n, g * Cg + c], w[k, c], mode="valid", method="direct")
                      for c in range(Cg))
            maps.append(acc[::sh, ::sw])
        out.append(maps)
    return np.array(out)


# the scipy oracle affords wider cases than the loop twins: 4 groups, 3 channels, 4x4 kernels
def oracle_cases(**pinned):
    return conv_cases(max_hw=8, max_kernel=4, max_groups=4, max_group_channels=3, **pinned)


@given(oracle_cases())
def test_grouped_conv_is_g_convs_on_slices(c):
    x, w, stride, padding, G, _ = c
    Cg, Kg = x.shape[1] // G, w.shape[0] // G
    pieces = [conv2d(np.ascontiguousarray(x[:, g * Cg:(g + 1) * Cg]), w[g * Kg:(g + 1) * Kg], stride, padding, 1)
              for g in range(G)]
    out = conv2d(x, w, stride, padding, G)
    assert_close(out, np.concatenate(pieces, axis=1))
    assert_close(out, scipy_conv(x, w, stride, padding, G))


@given(oracle_cases(groups=1))
def test_groups_one_is_plain_convolution(c):
    x, w, stride, padding, _, _ = c
    assert_close(conv2d(x, w, stride, padding, 1), scipy_conv(x, w, stride, padding, 1))


@given(oracle_cases(group_channels=1))
def test_groups_equal_to_channels_is_depthwise(c):
    x, w, stride, padding, G, _ = c
    (sh, sw), (ph, pw) = stride, padding
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    depthwise = np.array([[scipy_signal.correlate(xp[n, ch], w[ch, 0], mode="valid", method="direct")[::sh, ::sw]
                           for ch in range(G)] for n in range(x.shape[0])])
    assert_close(conv2d(x, w, stride, padding, G), depthwise)


# --- 4. BatchNorm ------------------------------------------------------------------------
@given(N=st.integers(1, 3), C=st.integers(1, 5), H=st.integers(1, 4), W=st.integers(1, 4),
       seed=st.integers(0, 2**31))
def test_inference_bn_is_a_per_channel_affine_map(N, C, H, W, seed):
    rng = np.random.default_rng(seed)
    w, b, m, v = rng.uniform(0.5, 1.5, C), rng.normal(0, 1, C), rng.normal(0, 1, C), rng.uniform(0.1, 3, C)
    x1, x2 = rng.standard_normal((2, N, C, H, W))
    t = rng.uniform(-2, 2)
    y = lambda x: batchnorm(x, w, b, m, v)
    assert_close(y(t * x1 + (1 - t) * x2), t * y(x1) + (1 - t) * y(x2), 1e-12)     # affine
    direct = (x1 - m[:, None, None]) / np.sqrt(v[:, None, None] + 1e-5) * w[:, None, None] + b[:, None, None]
    assert_close(y(x1), direct)                                                  # the claimed formula
    x3 = x1.copy()
    x3[:, 0] += 5.0                                                       # channels do not mix
    assert_close(y(x3)[:, 1:], y(x1)[:, 1:], 0)


@given(oracle_cases())
def test_folding_bn_into_the_conv_is_exact(c):
    x, w, stride, padding, G, rng = c
    K = w.shape[0]
    bw, bb, m, v = rng.uniform(0.5, 1.5, K), rng.normal(0, 1, K), rng.normal(0, 1, K), rng.uniform(0.1, 3, K)
    wf, bf = fold_bn(w, bw, bb, m, v)
    assert_close(conv2d(x, wf, stride, padding, G) + bf[None, :, None, None],
          batchnorm(conv2d(x, w, stride, padding, G), bw, bb, m, v))


# --- 5. output sizes and pooling padding --------------------------------------------------
def windows(size, k, s, p, ceil):
    """Window starts (in padded coordinates) by enumeration, not by the formula."""
    starts = []
    i = 0
    while True:
        start = i * s
        full = start + k <= size + 2 * p
        partial = ceil and start < size + p and (not starts or starts[-1] + k < size + 2 * p)
        if not (full or partial):
            return starts
        starts.append(start)
        i += 1


@given(H=st.integers(1, 12), W=st.integers(1, 12), k=st.integers(1, 4), s=st.integers(1, 3),
       p=st.integers(0, 2))
def test_output_size_law(H, W, k, s, p):
    assume(H + 2 * p >= k and W + 2 * p >= k)
    x = np.zeros((1, 2, H, W))
    law = ((H + 2 * p - k) // s + 1, (W + 2 * p - k) // s + 1)
    assert law == (len(windows(H, k, s, p, False)), len(windows(W, k, s, p, False)))
    assert conv2d(x, np.zeros((3, 2, k, k)), s, p).shape == (1, 3) + law
    if 2 * p <= k:
        assert maxpool2d(x, k, s, p).shape == (1, 2) + law
        assert avgpool2d(x, k, s, p, ceil_mode=False).shape == (1, 2) + law
        ceil = (len(windows(H, k, s, p, True)), len(windows(W, k, s, p, True)))
        assert avgpool2d(x, k, s, p, ceil_mode=True).shape == (1, 2) + ceil


def clipped_pool(x, k, s, p, OH, OW, reduce):
    """Reduce each window clipped to the real pixels (padding never takes part)."""
    N, C, H, W = x.shape
    out = np.empty((N, C, OH, OW))
    for i in range(OH):
        for j in range(OW):
            r0, c0 = i * s - p, j * s - p
            win = x[:, :, max(r0, 0):min(r0 + k, H), max(c0, 0):min(c0 + k, W)]
            out[:, :, i, j] = reduce(win, axis=(2, 3))
    return out


@given(case=pool_cases(max_hw=9), shift=st.floats(-50, 0))
def test_maxpool_padding_never_wins(case, shift):
    x, k, s, p, _ = case
    x = x + shift                                                         # mostly negative
    y = maxpool2d(x, k, s, p)
    assert_close(y, clipped_pool(x, k, s, p, y.shape[2], y.shape[3], np.max), 0)


@given(H=st.integers(1, 9), W=st.integers(1, 9), seed=st.integers(0, 2**31),
       ksp=st.sampled_from([(2, 2, 0), (3, 2, 1), (3, 1, 1), (2, 1, 0)]))
def test_vd_avgpool_counts_only_real_pixels(H, W, seed, ksp):
    k, s, p = ksp
    assume(H + 2 * p >= k and W + 2 * p >= k)
    x = np.random.default_rng(seed).standard_normal((2, 3, H, W))
    y = avgpool2d(x, k, s, p, ceil_mode=True, exclusive=True)
    assert_close(y, clipped_pool(x, k, s, p, y.shape[2], y.shape[3], np.mean), 1e-14)


# --- 6. no function modifies its inputs ---------------------------------------------------
# Inputs stay writable (a read-only input would make a write raise, but may also take another
# path than callers' arrays); assert_unmodified compares every array argument with a copy.
@given(oracle_cases())
def test_no_op_modifies_its_inputs(c):
    x, w, stride, padding, G, rng = c
    same = assert_unmodified
    y = same(conv2d, x, w, stride, padding, G)
    dout = rng.standard_normal(y.shape)
    same(conv2d_backward, dout, x, w, stride, padding, G)
    K = w.shape[0]
    bw, bb, m, v = rng.uniform(0.5, 1.5, K), rng.normal(0, 1, K), rng.normal(0, 1, K), rng.uniform(0.5, 2, K)
    same(batchnorm, y, bw, bb, m, v)
    same(batchnorm_backward, dout, y, bw, m, v)
    _, cache, _, _ = same(batchnorm_train, y, bw, bb, m, v)
    same(batchnorm_train_backward, dout, cache)              # the cache's arrays are checked too
    same(fold_bn, w, bw, bb, m, v)
    same(relu, y)
    same(relu_backward, dout, y)
    same(maxpool2d_backward, same(maxpool2d, x, 1, 1, 0), x, 1, 1, 0)
    if x.shape[2] >= 2 and x.shape[3] >= 2:
        yp = same(maxpool2d, x, 2, 2, 1)
        same(maxpool2d_backward, rng.standard_normal(yp.shape), x, 2, 2, 1)
        ya = same(avgpool2d, x)
        same(avgpool2d_backward, rng.standard_normal(ya.shape), x.shape)
    f = same(global_avgpool, x)
    same(global_avgpool_backward, rng.standard_normal(f.shape), x.shape)
    fw = rng.standard_normal((3, f.shape[1]))
    z = same(linear, f, fw)
    same(linear_backward, rng.standard_normal(z.shape), f, fw)
    labels = rng.integers(0, 3, z.shape[0])
    _, probs = same(softmax_cross_entropy, z, labels)
    same(softmax_cross_entropy_backward, probs, labels)


@FEW
@given(stem=st.sampled_from(["plain", "deep"]), train=st.booleans(), seed=st.integers(0, 2**31))
def test_network_forward_and_backward_modify_nothing(stem, train, seed):
    cfg = nrx.custom(depths=(1, 1), cardinality=2, base_width=2, stem=stem, num_classes=3,
                     stem_width=8, deep_stem_width=4)
    model = nrx.build(cfg, dtype="float64", seed=seed % 1000)
    rng = np.random.default_rng(seed)
    x, d = rng.standard_normal((2, 3, 16, 16)), rng.standard_normal((2, 3))
    # the model's parameters are passed along as a dict so that they are checked too
    g = assert_unmodified(lambda params, *a, **k: gradients(model, *a, **k), model.params, x, d, train=train)
    assert g.grads["input"].shape == x.shape
    a = assert_unmodified(block_branches, rng.standard_normal((1, 8, 4, 4)), model.params, "layer1.0", cfg)
    assert len(a.branches) == 2
