"""params.py: canonical names and shapes, parameter counts, the seeded initialisation, and
the one validation's (validate, check_params) all-at-once report of what does not match.
"""

import math

import numpy as np
import pytest

from numpy_resnext.archs import ARCHS, custom
from numpy_resnext.errors import WeightsError
from numpy_resnext.params import (check_params, count_params, init_params, is_trainable,
                                  param_shapes, validate)
from numpy_resnext.plan import layer_plan

# docs/architectures.md, trainable parameters (BN running statistics excluded), checked with Paddle and torch
PUBLISHED_PARAMS = {
    "ResNet50": 25_557_032,
    "ResNeXt50_32x4d": 25_028_904,
    "ResNeXt50_64x4d": 45_192_488,
    "ResNeXt101_32x4d": 44_177_704,
    "ResNeXt101_64x4d": 83_455_272,
    "ResNeXt152_32x4d": 59_951_400,
    "ResNeXt152_64x4d": 114_971_944,
    "ResNeXt50_vd_32x4d": 25_048_136,
    "ResNeXt50_vd_64x4d": 45_211_720,
    "ResNeXt101_32x8d_wsl": 88_791_336,
    "ResNeXt101_32x16d_wsl": 194_026_792,
    "ResNeXt101_32x32d_wsl": 468_530_472,
    "ResNeXt101_32x48d_wsl": 828_411_176,
}

TINY = custom(depths=(1, 2), cardinality=2, base_width=4, num_classes=5, name="tiny")
TINY_VD = custom(depths=(1, 1), cardinality=2, base_width=4, stem="deep", num_classes=5, name="tiny_vd")


@pytest.mark.parametrize("name,expected", PUBLISHED_PARAMS.items())
def test_count_params_matches_facts(name, expected):
    assert count_params(ARCHS[name]) == expected


def test_torchvision_names_and_shapes_resnext50():
    shapes = param_shapes(ARCHS["ResNeXt50_32x4d"])
    assert len(shapes) == 267          # paddle.vision's 50-layer state dict holds 267 tensors
    assert list(shapes)[:5] == ["conv1.weight", "bn1.weight", "bn1.bias", "bn1.running_mean",
                                "bn1.running_var"]
    assert list(shapes)[-2:] == ["fc.weight", "fc.bias"]
    expected = {
        "conv1.weight": (64, 3, 7, 7),
        "layer1.0.conv1.weight": (128, 64, 1, 1),
        "layer1.0.conv2.weight": (128, 4, 3, 3),          # (K, C/G, R, S), G = 32
        "layer1.0.conv3.weight": (256, 128, 1, 1),
        "layer1.0.downsample.0.weight": (256, 64, 1, 1),
        "layer1.0.downsample.1.running_var": (256,),
        "layer2.0.conv2.weight": (256, 8, 3, 3),
        "layer2.0.downsample.0.weight": (512, 256, 1, 1),
        "layer4.2.bn3.bias": (2048,),
        "fc.weight": (1000, 2048),                         # [out, in], torch's layout
        "fc.bias": (1000,),
    }
    for name, shape in expected.items():
        assert shapes[name] == shape, name
    assert "layer1.1.downsample.0.weight" not in shapes
    assert sum(1 for n in shapes if n.endswith(".running_mean")) == 53   # 1 stem + 16*3 + 4 shortcuts


def test_timm_names_and_shapes_vd():
    shapes = param_shapes(ARCHS["ResNeXt50_vd_32x4d"])
    assert len(shapes) == 277          # PaddleClas' ResNeXt50_vd holds 277 tensors
    expected = {
        "conv1.0.weight": (32, 3, 3, 3), "conv1.1.weight": (32,),
        "conv1.3.weight": (32, 32, 3, 3), "conv1.4.running_var": (32,),
        "conv1.6.weight": (64, 32, 3, 3), "bn1.bias": (64,),
        "layer1.0.downsample.1.weight": (256, 64, 1, 1),     # stage 0: no pool, same names
        "layer1.0.downsample.2.weight": (256,),
        "layer2.0.downsample.1.weight": (512, 256, 1, 1),    # 1x1 conv after the avg pool
        "layer2.0.downsample.2.running_mean": (512,),
    }
    for name, shape in expected.items():
        assert shapes[name] == shape, name
    assert "conv1.weight" not in shapes
    assert not any(n.startswith("layer2.0.downsample.0.") for n in shapes)   # the pool has none


@pytest.mark.parametrize("config", [TINY, TINY_VD, custom(depths=(2, 1), cardinality=3, base_width=5,
                                                             stem_width=16, deep_stem_width=8)])
def test_count_params_equals_the_initialised_sizes(config):
    params = init_params(config)
    assert count_params(config) == sum(v.size for k, v in params.items() if is_trainable(k))


def test_is_trainable():
    assert is_trainable("layer1.0.bn1.weight") and is_trainable("fc.bias")
    assert not is_trainable("bn1.running_mean") and not is_trainable("layer1.0.downsample.1.running_var")


# --- seeded initialisation -------------------------------------------------------------------
def test_init_is_deterministic_and_seeded():
    a, b, c = init_params(TINY, seed=3), init_params(TINY, seed=3), init_params(TINY, seed=4)
    assert list(a) == list(param_shapes(TINY))
    for name in a:
        assert a[name].shape == param_shapes(TINY)[name] and a[name].dtype == np.float32
        np.testing.assert_array_equal(a[name], b[name])
    assert not np.array_equal(a["conv1.weight"], c["conv1.weight"])


@pytest.mark.parametrize("config", [TINY, TINY_VD])
def test_float32_and_float64_seeds_agree(config):
    f32, f64 = init_params(config, seed=11, dtype="float32"), init_params(config, seed=11, dtype="float64")
    for name in f32:
        assert f64[name].dtype == np.float64
        np.testing.assert_array_equal(f32[name], f64[name].astype(np.float32))


def test_init_distributions():
    p = init_params(ARCHS["ResNeXt50_32x4d"], seed=0, dtype="float64")
    w = p["layer3.0.conv1.weight"]                         # (512, 512, 1, 1): 262,144 draws
    assert abs(w.mean()) < 0.01 * math.sqrt(2 / 512)
    assert w.std() == pytest.approx(math.sqrt(2 / 512), rel=0.01)     # He normal, fan_in = C/G*R*S
    g = p["layer3.0.conv2.weight"]                         # grouped: fan_in = 16 * 9
    assert g.std() == pytest.approx(math.sqrt(2 / (16 * 9)), rel=0.02)
    bound = 1 / math.sqrt(2048)
    fc = p["fc.weight"]
    assert fc.min() >= -bound and fc.max() <= bound and fc.max() > 0.99 * bound
    assert (p["layer1.0.bn1.weight"] == 1).all() and (p["layer1.0.bn1.bias"] == 0).all()
    assert (p["bn1.running_mean"] == 0).all() and (p["bn1.running_var"] == 1).all()


# --- check_params ------------------------------------------------------------------------------
def test_check_params_reports_everything_at_once_by_name():
    good = init_params(TINY, seed=0, dtype="float64")
    bad = dict(good)
    del bad["layer1.0.conv2.weight"], bad["fc.bias"]
    bad["layer9.0.conv1.weight"] = np.zeros(3)
    bad["head.weight"] = np.zeros(3)
    bad["layer2.1.conv3.weight"] = np.zeros((1, 2, 3, 4))
    bad["layer1.0.bn2.running_var"] = np.ones(bad["layer1.0.bn2.running_var"].shape, dtype=np.int64)
    nan = bad["conv1.weight"].copy()
    nan[0, 0, 0, :2] = np.nan
    bad["conv1.weight"] = nan
    before = {k: v.copy() for k, v in bad.items()}
    with pytest.raises(WeightsError) as info:
        check_params(TINY, bad)
    msg = str(info.value)
    for part in ("do not match architecture tiny", "2 missing: layer1.0.conv2.weight, fc.bias",
                 "2 unexpected: layer9.0.conv1.weight, head.weight",
                 "layer2.1.conv3.weight: expected shape (512, 16, 1, 1), found (1, 2, 3, 4)",
                 "layer1.0.bn2.running_var: expected a floating-point array, found int64",
                 "conv1.weight: 2 of 9408 values are NaN or infinite"):
        assert part in msg, f"{part!r} not in:\n{msg}"
    assert set(bad) == set(before)                 # the caller's dict and arrays are untouched
    for k in bad:
        np.testing.assert_array_equal(bad[k], before[k])


def test_check_params_non_strict_and_casting():
    good = init_params(TINY, seed=0, dtype="float32")
    partial = {k: v for k, v in good.items() if not k.startswith("fc.")}
    partial["extra.weight"] = np.zeros(2, np.float32)
    checked, report = check_params(TINY, partial, dtype="float64", strict=False)
    assert report == {"missing": ["fc.weight", "fc.bias"], "unexpected": ["extra.weight"]}
    assert "extra.weight" not in checked and len(checked) == len(good) - 2
    assert all(v.dtype == np.float64 for v in checked.values())
    np.testing.assert_array_equal(checked["conv1.weight"], good["conv1.weight"].astype(np.float64))
    partial["fc.weight"] = np.zeros((3, 3), np.float32)       # shapes are checked either way
    with pytest.raises(WeightsError, match=r"fc.weight: expected shape \(5, 512\), found \(3, 3\)"):
        check_params(TINY, partial, strict=False)


def test_check_params_infinite_and_non_mapping():
    w = init_params(TINY, seed=0)
    w["fc.bias"] = w["fc.bias"].copy()
    w["fc.bias"][0] = np.inf
    with pytest.raises(WeightsError, match=r"fc.bias: 1 of 5 values are NaN or infinite"):
        check_params(TINY, w)
    with pytest.raises(WeightsError, match=r"expected a mapping of canonical names to arrays, found list"):
        check_params(TINY, [1, 2])


def test_validate_names_the_file_and_reads_the_stored_head_layout():
    """A renamed file: each problem under the canonical name and the file's; the head stored
    [in, out] is checked in that layout and comes back [out, in], contiguous."""
    good = init_params(TINY, seed=0, dtype="float32")
    stored = dict(good, **{"fc.weight": np.ascontiguousarray(good["fc.weight"].T)})
    names = {n: f"f/{n}" for n in good}
    checked, report = validate(layer_plan(TINY), stored, file_names=names, in_out=("fc.weight",))
    np.testing.assert_array_equal(checked["fc.weight"], good["fc.weight"])
    assert checked["fc.weight"].flags.c_contiguous and list(checked) == list(good)
    assert report.missing == [] and report.unexpected == []
    bad = dict(stored, **{"fc.weight": good["fc.weight"]})          # [out, in]: not as stored
    del bad["conv1.weight"]
    with pytest.raises(WeightsError) as info:
        validate(TINY, bad, file_names=names, in_out=("fc.weight",), unexpected=["f/extra"])
    msg = str(info.value)
    for part in ("1 missing: conv1.weight (file: f/conv1.weight)", "1 unexpected: f/extra",
                 "fc.weight (file: f/fc.weight): expected shape (512, 5) ([in, out], "
                 "Paddle's Linear), found (5, 512)"):
        assert part in msg, f"{part!r} not in:\n{msg}"
    del bad["fc.weight"]
    checked, report = validate(TINY, bad, strict=False, file_names=names, unexpected=["f/extra"])
    assert report.missing == [("conv1.weight", "f/conv1.weight"), ("fc.weight", "f/fc.weight")]
    assert report.as_dict()["missing"] == ["conv1.weight", "fc.weight"]
    assert report.unexpected == ["f/extra"] and "conv1.weight" not in checked


def test_validate_finite_is_optional():
    w = init_params(TINY, seed=0)
    w["fc.bias"] = np.full(5, np.nan, np.float32)
    with pytest.raises(WeightsError, match=r"1 not finite: fc.bias: 5 of 5 values are NaN"):
        validate(TINY, w)
    checked, _ = validate(TINY, w, finite=False)
    assert np.isnan(checked["fc.bias"]).all()


@pytest.mark.paddle
def test_names_and_shapes_match_paddle_vision(paddle):
    """paddle.vision's resnext50_32x4d has the same tensors (Paddle spells the BN statistics
    _mean/_variance and stores the fc weight [in, out])."""
    model = paddle.vision.models.resnext50_32x4d(pretrained=False)
    theirs = {}
    for key, value in model.state_dict().items():
        name = key.replace("._mean", ".running_mean").replace("._variance", ".running_var")
        shape = tuple(value.shape)
        theirs[name] = shape[::-1] if name == "fc.weight" else shape
    assert theirs == dict(param_shapes(ARCHS["ResNeXt50_32x4d"]))
    trainable = sum(int(np.prod(p.shape)) for p in model.parameters() if not p.stop_gradient)
    assert trainable == count_params(ARCHS["ResNeXt50_32x4d"])
