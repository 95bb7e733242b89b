"""model.py and blocks.py: build(), the forward pass, its named intermediates (checked against
shapes.output_shapes and against the ops chained by hand), dtypes, odd input sizes, seeds,
weight dicts, and clear errors for bad input. Only small models and inputs run here: the
50-layer networks at 32x32 or 37x45, and tiny custom configurations.
"""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from numpy_resnext.ops import naive
from numpy_resnext.ops.activations import relu
from numpy_resnext.archs import ARCHS, custom
from numpy_resnext.ops.batchnorm import batchnorm
from numpy_resnext.ops.conv import conv2d
from numpy_resnext.errors import ArchitectureError, InputError, InputTypeError, WeightsError
from numpy_resnext.ops.linear import linear
from numpy_resnext.model import build
from numpy_resnext.params import init_params, is_trainable
from numpy_resnext.ops.pooling import avgpool2d, global_avgpool, maxpool2d
from numpy_resnext.shapes import output_shapes

from _arrays import assert_close


def random_bn(params, seed):
    """Weights whose BatchNorms are not the identity, so that a misplaced BN shows."""
    rng = np.random.default_rng(seed)
    out = dict(params)
    for name, value in params.items():
        if name.endswith(".running_var"):
            out[name] = rng.uniform(0.5, 2.0, value.shape).astype(value.dtype)
        elif name.endswith((".running_mean", ".bias")) and value.ndim == 1:
            out[name] = (0.1 * rng.standard_normal(value.shape)).astype(value.dtype)
        elif value.ndim == 1 and name.endswith(".weight"):
            out[name] = rng.uniform(0.5, 1.5, value.shape).astype(value.dtype)
    return out


def built(arch, dtype="float64", seed=0):
    config = ARCHS[arch] if isinstance(arch, str) else arch
    return build(config, weights=random_bn(init_params(config, seed, dtype), seed + 1), dtype=dtype)


@pytest.fixture(scope="module")
def plain64():
    return built("ResNeXt50_32x4d")


@pytest.fixture(scope="module")
def vd64():
    return built("ResNeXt50_vd_32x4d")


@pytest.fixture(scope="module")
def runs(plain64, vd64):
    """One captured forward per model on a read-only odd-sized batch, shared by the tests."""
    out = {}
    for which, model in (("plain64", plain64), ("vd64", vd64)):
        x = image((2, 3, 37, 45))
        x0 = x.copy()
        x.flags.writeable = False              # any write into the input would raise
        logits, acts = model.forward(x, keep=True)
        out[which] = (x, x0, logits, acts)
    return out


def image(shape, dtype=np.float64, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def bn(x, p, name):
    return batchnorm(x, p[f"{name}.weight"], p[f"{name}.bias"], p[f"{name}.running_mean"],
                     p[f"{name}.running_var"])


# --- named intermediates ---------------------------------------------------------------------
@pytest.mark.parametrize("which", ["plain64", "vd64"])
@pytest.mark.parametrize("hw", [(32, 32), (37, 45)])
def test_capture_matches_output_shapes(which, hw, request, runs):
    model = request.getfixturevalue(which)
    if hw == (37, 45):
        x, _, logits, acts = runs[which]
    else:
        x = image((2, 3) + hw)
        logits, acts = model.forward(x, keep=True)
    rows = output_shapes(model.config, *hw)
    assert list(acts) == [r["name"] for r in rows]                # every name, in order
    for r in rows:
        assert acts[r["name"]].shape == (2,) + tuple(r["shape"]), r["name"]
        assert acts[r["name"]].dtype == np.float64
    assert logits.shape == (2, 1000) and np.isfinite(logits).all()
    np.testing.assert_array_equal(acts["fc"], logits)
    np.testing.assert_array_equal(model(x), logits)               # capture changes nothing
    assert model.intermediate_names() == [r["name"] for r in output_shapes(model.config, 224, 224)]


def test_plain_stem_and_head_chained_by_hand(plain64, runs):
    p = plain64.params
    x, _, logits, acts = runs["plain64"]
    y = conv2d(x, p["conv1.weight"], stride=2, padding=3)
    assert_close(acts["conv1"], y, what="conv1")
    y = bn(y, p, "bn1")
    assert_close(acts["bn1"], y, what="bn1")
    y = relu(y)
    assert_close(acts["relu"], y, what="relu")
    assert_close(acts["maxpool"], maxpool2d(y, 3, 2, 1), what="maxpool")
    f = global_avgpool(acts["layer4.2"])
    assert_close(acts["avgpool"], f, what="avgpool")
    assert_close(logits, linear(f, p["fc.weight"], p["fc.bias"]), what="fc")


def test_vd_stem_chained_by_hand(vd64, runs):
    p = vd64.params
    x, _, _, acts = runs["vd64"]
    y = x
    for i, (conv, norm, act, stride) in enumerate([("conv1.0", "conv1.1", "conv1.2", 2),
                                                   ("conv1.3", "conv1.4", "conv1.5", 1),
                                                   ("conv1.6", "bn1", "relu", 1)]):
        y = conv2d(y, p[f"{conv}.weight"], stride=stride, padding=1)
        assert_close(acts[conv], y, what=conv)
        y = bn(y, p, norm)
        assert_close(acts[norm], y, what=norm)
        y = relu(y)
        assert_close(acts[act], y, what=act)
    assert_close(acts["maxpool"], maxpool2d(y, 3, 2, 1), what="maxpool")


def chain_block(p, x, b, groups, stride, shortcut, ops):
    """One bottleneck by hand: 1x1 -> BN -> ReLU -> grouped 3x3 (stride) -> BN -> ReLU -> 1x1 -> BN,
    plus the shortcut, add, ReLU. Returns {name: array} under the forward's names."""
    conv, bnorm, act, avgpool = ops
    out = {}

    def norm(y, name):
        return bnorm(y, p[f"{name}.weight"], p[f"{name}.bias"], p[f"{name}.running_mean"],
                     p[f"{name}.running_var"])

    y = out[f"{b}.conv1"] = conv(x, p[f"{b}.conv1.weight"], 1, 0, 1)
    y = out[f"{b}.bn1"] = norm(y, f"{b}.bn1")
    y = out[f"{b}.relu1"] = act(y)
    y = out[f"{b}.conv2"] = conv(y, p[f"{b}.conv2.weight"], stride, 1, groups)
    y = out[f"{b}.bn2"] = norm(y, f"{b}.bn2")
    y = out[f"{b}.relu2"] = act(y)
    y = out[f"{b}.conv3"] = conv(y, p[f"{b}.conv3.weight"], 1, 0, 1)
    y = out[f"{b}.bn3"] = norm(y, f"{b}.bn3")
    d = f"{b}.downsample"
    if shortcut == "torchvision":              # 1x1 conv with the stride, BN
        s = out[f"{d}.0"] = conv(x, p[f"{d}.0.weight"], stride, 0, 1)
        s = out[f"{d}.1"] = norm(s, f"{d}.1")
    elif shortcut == "vd":                     # [2x2/2 avg pool (ceil, exclusive)], 1x1 conv, BN
        s = x
        if stride > 1:                         # stage 0 has no pool (timm's Identity)
            s = out[f"{d}.0"] = avgpool(x, 2, 2, 0, ceil_mode=True, exclusive=True)
        s = out[f"{d}.1"] = conv(s, p[f"{d}.1.weight"], 1, 0, 1)
        s = out[f"{d}.2"] = norm(s, f"{d}.2")
    else:
        s = x
    y = out[f"{b}.add"] = y + s
    out[b] = act(y)
    return out


FAST = (lambda x, w, s, p, g: conv2d(x, w, stride=s, padding=p, groups=g), batchnorm, relu, avgpool2d)
LOOPS = (naive.conv2d, naive.batchnorm, naive.relu, naive.avgpool2d)


@pytest.mark.parametrize("which,block,prev,shortcut", [
    ("plain64", "layer1.0", "maxpool", "torchvision"),     # stride 1 projection
    ("plain64", "layer2.0", "layer1.2", "torchvision"),    # stride 2 on the grouped 3x3
    ("plain64", "layer2.1", "layer2.0", "identity"),
    ("vd64", "layer1.0", "maxpool", "vd"),                 # stage 0: no pool
    ("vd64", "layer3.0", "layer2.3", "vd"),                # avg pool on an odd 5x6 map
])
def test_block_chained_by_hand(which, block, prev, shortcut, request, runs):
    model = request.getfixturevalue(which)
    _, _, _, acts = runs[which]
    plan = {b.name: b for b in model.plan.blocks}[block]
    expected = chain_block(model.params, acts[prev], block, plan.groups, plan.stride, shortcut, FAST)
    names = [n for n in acts if n == block or n.startswith(block + ".")]
    assert sorted(names) == sorted(expected)
    for name in names:
        assert_close(acts[name], expected[name], what=name)
    assert plan.groups == 32
    if plan.stride == 2:                      # the stride sits on conv2, not conv1
        assert acts[f"{block}.conv1"].shape[2:] == acts[prev].shape[2:]
        assert acts[f"{block}.conv2"].shape[2] == (acts[prev].shape[2] + 1) // 2


@pytest.mark.parametrize("stem", ["plain", "deep"])
def test_tiny_block_matches_the_loop_twins(stem):
    """The same chain with the loop twins (independent of every fast op) on a tiny network."""
    config = custom(depths=(1, 1), cardinality=2, base_width=2, stem=stem, num_classes=3)
    model = built(config, seed=5)
    x = image((1, 3, 13, 11), seed=2)
    _, acts = model.forward(x, keep=True)
    plan = model.plan.blocks[1]                # layer2.0: stride 2, projection (+ pool for vd)
    expected = chain_block(model.params, acts["layer1.0"], "layer2.0", plan.groups, plan.stride,
                           "vd" if stem == "deep" else "torchvision", LOOPS)
    for name, value in expected.items():
        assert_close(acts[name], value, what=name)


# --- dtypes ------------------------------------------------------------------------------------
def test_float32_in_float32_out_everywhere():
    model = build(custom(depths=(1, 1), cardinality=2), seed=0, dtype="float32")
    logits, acts = model.forward(image((2, 3, 19, 17), np.float32), keep=True)
    assert logits.dtype == np.float32
    assert all(a.dtype == np.float32 for a in acts.values())
    assert all(v.dtype == np.float32 for v in model.params.values())


def test_precisions_are_never_mixed_silently():
    m32 = build(custom(depths=(1,)), dtype="float32")
    m64 = build(custom(depths=(1,)), dtype="float64")
    with pytest.raises(InputTypeError, match=r"dtype float64 but the model is float32.*cast explicitly"):
        m32(image((1, 3, 8, 8), np.float64))
    with pytest.raises(InputTypeError, match=r"dtype float32 but the model is float64"):
        m64(image((1, 3, 8, 8), np.float32))
    for bad in ("nonsense", None, "int32"):      # not dtypes, or not float32/float64
        with pytest.raises(InputTypeError, match=r"expected 'float32' or 'float64', found"):
            build(custom(depths=(1,)), dtype=bad)
    with pytest.raises(InputTypeError, match=r"expected 'float32' or 'float64', found 'float16'"):
        build(custom(depths=(1,)), dtype="float16")


def test_seeded_float32_and_float64_models_agree():
    config = custom(depths=(1, 1), cardinality=4, base_width=4)
    x = image((2, 3, 16, 16))
    l32 = build(config, seed=9, dtype="float32")(x.astype(np.float32))
    l64 = build(config, seed=9, dtype="float64")(x)
    assert_close(l32, l64, rtol=1e-4, what="float32 vs float64")


def test_seeded_init_is_deterministic():
    config = custom(depths=(1, 1), cardinality=2)
    x = image((1, 3, 12, 12), np.float32)
    a, b, c = build(config, seed=1)(x), build(config, seed=1)(x), build(config, seed=2)(x)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


# --- input checks ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny32():
    return build(custom(depths=(1, 1), cardinality=2), seed=0, dtype="float32")


@pytest.mark.parametrize("x,error,pattern", [
    (np.zeros((3, 32, 32), np.float32), InputError, r"expected a 4-D array \(N, 3, H, W\), found 3-D with shape \(3, 32, 32\)"),
    (np.zeros((1, 4, 32, 32), np.float32), InputError, r"expected 3 channels at axis 1.*found shape \(1, 4, 32, 32\)"),
    (np.zeros((1, 32, 32, 3), np.float32), InputError, r"channels-last\? use x.transpose\(0, 3, 1, 2\)"),
    (np.zeros((1, 3, 0, 9), np.float32), InputError, r"spatial size 0x9 is too small.*at least 1x1"),
    (np.zeros((0, 3, 8, 8), np.float32), InputError, r"batch is empty"),
    (np.zeros((1, 3, 8, 8), np.int64), InputTypeError, r"expected dtype float32 or float64, found int64 \(integer\)"),
    (np.zeros((1, 3, 8, 8), np.uint8), InputTypeError, r"found uint8 \(unsigned integer\)"),
    (np.zeros((1, 3, 8, 8), np.complex64), InputTypeError, r"found complex64 \(complex\)"),
    ([[[[0.0]]]], InputTypeError, r"expected a numpy.ndarray, found list"),
])
def test_bad_input_gets_a_clear_error(tiny32, x, error, pattern):
    with pytest.raises(error, match=pattern):
        tiny32(x)


@pytest.mark.parametrize("which", ["plain64", "vd64"])
def test_input_is_never_modified(which, runs):
    x, x0, _, _ = runs[which]                  # ran read-only, so no write could happen
    np.testing.assert_array_equal(x, x0)


def test_writable_and_channels_last_inputs(tiny32):
    x = image((2, 3, 15, 13), np.float32)
    x0 = x.copy()
    logits = tiny32(x)
    np.testing.assert_array_equal(x, x0)
    cl = np.ascontiguousarray(x0.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)   # channels-last view
    np.testing.assert_array_equal(tiny32(cl), logits)
    np.testing.assert_array_equal(tiny32(np.asfortranarray(x0)), logits)


TINY_PLAIN = custom(depths=(1, 1, 1), cardinality=2, num_classes=3, name="tiny_plain")
TINY_DEEP = custom(depths=(1, 1, 1), cardinality=2, num_classes=3, stem="deep", name="tiny_deep")
MODELS = {"plain": build(TINY_PLAIN, dtype="float64"), "deep": build(TINY_DEEP, dtype="float64")}


@given(h=st.integers(1, 40), w=st.integers(1, 40), n=st.integers(1, 2),
       stem=st.sampled_from(["plain", "deep"]))
def test_any_size_that_leaves_1x1_works(h, w, n, stem):
    config = TINY_DEEP if stem == "deep" else TINY_PLAIN
    logits, acts = MODELS[stem].forward(image((n, 3, h, w)), keep=["layer*", "fc"])
    assert logits.shape == (n, 3) and np.isfinite(logits).all()
    rows = {r["name"]: r["shape"] for r in output_shapes(config, h, w)}
    for name, a in acts.items():
        assert a.shape == (n,) + tuple(rows[name]), name


@given(depths=st.lists(st.integers(1, 2), min_size=1, max_size=4), cardinality=st.integers(1, 4),
       base_width=st.integers(1, 8), stem=st.sampled_from(["plain", "deep"]), avg_down=st.booleans(),
       h=st.integers(1, 24), w=st.integers(1, 24), stem_width=st.integers(1, 16),
       deep_stem_width=st.integers(1, 8), num_classes=st.integers(1, 5))
def test_random_tiny_configs_follow_output_shapes(depths, cardinality, base_width, stem, avg_down, h, w,
                                                  stem_width, deep_stem_width, num_classes):
    """Any configuration (also avg_down with the plain stem, which no registry entry has) runs,
    emits exactly output_shapes' names and shapes, and holds count_params parameters."""
    config = custom(depths=depths, cardinality=cardinality, base_width=base_width, stem=stem,
                    avg_down=avg_down, stem_width=stem_width, deep_stem_width=deep_stem_width,
                    num_classes=num_classes)
    model = build(config, dtype="float64")
    logits, acts = model.forward(image((1, 3, h, w)), keep=True)
    rows = output_shapes(config, h, w)
    assert list(acts) == [r["name"] for r in rows]
    for r in rows:
        assert acts[r["name"]].shape == (1,) + tuple(r["shape"]), r["name"]
    assert logits.shape == (1, num_classes) and np.isfinite(logits).all()
    trainable = sum(v.size for k, v in model.params.items() if is_trainable(k))
    assert trainable == model.num_params == sum(r["params"] for r in rows)


@pytest.mark.parametrize("stem", ["plain", "deep"])
def test_custom_widths_and_odd_cardinality(stem):
    """Nothing assumes 64 stem channels, 4 stages, a power-of-two cardinality or 1000 classes."""
    config = custom(depths=(2, 1), cardinality=3, base_width=5, stem=stem, stem_width=16,
                    deep_stem_width=8, num_classes=1)
    assert (config.stage_width(0), config.stage_width(1)) == (15, 30)      # floor(64*5/64)*3, floor(128*5/64)*3
    logits, acts = build(config, dtype="float64").forward(image((2, 3, 21, 9)), keep=True)
    rows = output_shapes(config, 21, 9)
    assert list(acts) == [r["name"] for r in rows]
    for r in rows:
        assert acts[r["name"]].shape == (2,) + tuple(r["shape"]), r["name"]
    assert logits.shape == (2, 1)


@pytest.mark.parametrize("which", ["plain64", "vd64"])
def test_smallest_inputs_run_on_resnext50(which, request):
    model = request.getfixturevalue(which)
    for hw in [(1, 1), (2, 3), (7, 5)]:
        assert model(image((1, 3) + hw)).shape == (1, 1000)


# --- capture selection ---------------------------------------------------------------------
def test_capture_patterns(tiny32):
    x = image((1, 3, 16, 16), np.float32)
    _, acts = tiny32.forward(x, keep=["layer1.0.*"])
    assert list(acts) == ["layer1.0.conv1", "layer1.0.bn1", "layer1.0.relu1", "layer1.0.conv2",
                          "layer1.0.bn2", "layer1.0.relu2", "layer1.0.conv3", "layer1.0.bn3",
                          "layer1.0.downsample.0", "layer1.0.downsample.1", "layer1.0.add"]
    _, acts = tiny32.forward(x, keep="fc")
    assert list(acts) == ["fc"]
    assert isinstance(tiny32.forward(x, keep=False), np.ndarray)
    logits, acts = tiny32.forward(x, keep=["fc", "avgpool"])
    assert list(acts) == ["avgpool", "fc"]           # execution order, not request order
    acts["fc"][:] = 0                                # a copy: the logits are untouched
    assert np.any(logits != 0)


# --- building -----------------------------------------------------------------------------------
def test_build_by_alias_and_any_case():
    model = build(" RESNEXT50_32x4D ", seed=0)
    assert model.config is ARCHS["ResNeXt50_32x4d"]
    assert model.num_params == 25_028_904 and model.dtype == np.float32
    assert "ResNeXt50_32x4d" in repr(model) and "25,028,904" in repr(model)
    with pytest.raises(ArchitectureError, match=r"did you mean: ResNeXt50_32x4d"):
        build("resnext50_32x4")


def test_weights_dict_is_used_and_not_modified():
    config = custom(depths=(1, 1), cardinality=2, num_classes=4)
    base = build(config, seed=3, dtype="float64")
    x = image((2, 3, 10, 10))
    weights = base.state_dict()
    weights["fc.bias"] = weights["fc.bias"] + 1.0
    saved = {k: v.copy() for k, v in weights.items()}
    shifted = build(config, weights=weights, seed=99, dtype="float64")   # the seed is not used
    assert_close(shifted(x), base(x) + 1.0, what="fc.bias + 1")
    for k in weights:
        np.testing.assert_array_equal(weights[k], saved[k])
    # float32 weights are cast explicitly to the model's float64
    w32 = {k: v.astype(np.float32) for k, v in base.state_dict().items()}
    m = build(config, weights=w32, dtype="float64")
    assert all(v.dtype == np.float64 for v in m.params.values())
    assert_close(m(x), base(x), rtol=1e-5)


def test_weights_dict_with_nan_or_mismatch_is_refused():
    config = custom(depths=(1,), cardinality=2, num_classes=4)
    weights = build(config, dtype="float64").state_dict()
    weights["layer1.0.conv2.weight"][0, 0, 0, 0] = np.nan
    with pytest.raises(WeightsError, match=r"layer1.0.conv2.weight: 1 of \d+ values are NaN"):
        build(config, weights=weights, dtype="float64")
    del weights["layer1.0.conv2.weight"]
    weights["fc.weight"] = np.zeros((4, 3))
    weights["fc.extra"] = np.zeros(1)
    with pytest.raises(WeightsError) as info:
        build(config, weights=weights, dtype="float64")
    msg = str(info.value)
    assert "1 missing: layer1.0.conv2.weight" in msg and "1 unexpected: fc.extra" in msg
    assert "fc.weight: expected shape (4, 256), found (4, 3)" in msg


def test_weight_file_with_nan_loads_as_stored_but_does_not_build(tmp_path):
    """load_weights (and convert) copy values as they are; build refuses NaN from a file as
    it does from a dict."""
    from numpy_resnext.io import load_weights
    config = custom(depths=(1,), cardinality=2, num_classes=4)
    weights = build(config, dtype="float32").state_dict()
    weights["layer1.0.conv2.weight"][0, 0, 0, 0] = np.nan
    path = tmp_path / "w.npz"
    np.savez(path, **weights)
    assert np.isnan(load_weights(path).params["layer1.0.conv2.weight"][0, 0, 0, 0])
    with pytest.raises(WeightsError, match=r"(?s)w\.npz.*1 not finite: layer1\.0\.conv2\.weight: "
                       r"1 of \d+ values are NaN"):
        build(None, weights=path)


def test_non_strict_build_reports_what_it_filled():
    config = custom(depths=(1,), cardinality=2, num_classes=4)
    weights = build(config, dtype="float32").state_dict()
    del weights["fc.bias"]
    model = build(config, weights=weights, strict=False)
    assert model.load_report.as_dict()["missing"] == ["fc.bias"]
    assert model.params["fc.bias"].shape == (4,)


def test_state_dict_is_a_copy(tiny32):
    sd = tiny32.state_dict()
    sd["fc.bias"][:] = 123
    assert not np.any(tiny32.params["fc.bias"] == 123)
    assert tiny32.trainable_names()[-2:] == ["fc.weight", "fc.bias"]
    assert not any(n.endswith("running_mean") for n in tiny32.trainable_names())


# --- the whole network in torch's functional ops, written from the paper ------------------------
def torch_resnext(torch, p, depths, vd, x):
    """ResNeXt written out with torch.nn.functional, independent of the package's block code."""
    F = torch.nn.functional
    t = {k: torch.from_numpy(v) for k, v in p.items()}

    def cbn(y, conv, norm, stride=1, padding=0, groups=1):
        y = F.conv2d(y, t[f"{conv}.weight"], stride=stride, padding=padding, groups=groups)
        return F.batch_norm(y, t[f"{norm}.running_mean"], t[f"{norm}.running_var"], t[f"{norm}.weight"],
                            t[f"{norm}.bias"], training=False, eps=1e-5)

    y = torch.from_numpy(x)
    if vd:
        y = F.relu(cbn(y, "conv1.0", "conv1.1", 2, 1))
        y = F.relu(cbn(y, "conv1.3", "conv1.4", 1, 1))
        y = F.relu(cbn(y, "conv1.6", "bn1", 1, 1))
    else:
        y = F.relu(cbn(y, "conv1", "bn1", 2, 3))
    y = F.max_pool2d(y, 3, 2, 1)
    for s, depth in enumerate(depths):
        for i in range(depth):
            b = f"layer{s + 1}.{i}"
            stride = 2 if (s > 0 and i == 0) else 1
            groups = t[f"{b}.conv1.weight"].shape[0] // t[f"{b}.conv2.weight"].shape[1]
            z = F.relu(cbn(y, f"{b}.conv1", f"{b}.bn1"))
            z = F.relu(cbn(z, f"{b}.conv2", f"{b}.bn2", stride, 1, groups))
            z = cbn(z, f"{b}.conv3", f"{b}.bn3")
            if i > 0:
                short = y
            elif vd:
                pooled = F.avg_pool2d(y, 2, 2, 0, ceil_mode=True, count_include_pad=False) if stride == 2 else y
                short = cbn(pooled, f"{b}.downsample.1", f"{b}.downsample.2")
            else:
                short = cbn(y, f"{b}.downsample.0", f"{b}.downsample.1", stride)
            y = F.relu(z + short)
    y = F.adaptive_avg_pool2d(y, 1).flatten(1)
    return F.linear(y, t["fc.weight"], t["fc.bias"]).numpy()


@pytest.mark.torch
@pytest.mark.parametrize("which", ["plain64", "vd64"])
def test_whole_network_matches_torch_functional(torch, which, request, runs):
    model = request.getfixturevalue(which)
    x, _, logits, _ = runs[which]
    ref = torch_resnext(torch, model.params, model.config.depths, which == "vd64", x.copy())
    assert_close(logits, ref, rtol=1e-12, what=f"{model.config.name} logits vs torch")
