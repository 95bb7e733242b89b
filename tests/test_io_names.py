"""Naming schemes, scheme detection and architecture inference.

The golden name lists (reference/fixtures/paddle/names.json.gz) are the state_dict keys,
ParamAttr names and shapes of full-size models as real Paddle 3.3.1 built them
(PaddleClas resnext.py / resnext_vd.py / resnext101_wsl.py and paddle.vision, every depth
and both cardinalities, WSL 32x8d and 32x48d), recorded by reference/paddle_models.py
under paddle.LazyGuard (no weights). Each must be recognised, inferred as the model it
is, and mapped name for name and shape for shape.
"""

import gzip
import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from numpy_resnext.archs import ARCHS, MATH_FIELDS, PADDLE_BN_EPS, custom, get_arch
from numpy_resnext.errors import WeightsError
from numpy_resnext.io import load_weights
from numpy_resnext.io import recognise as R
from numpy_resnext.io import schemes as N
from numpy_resnext.io import infer as I
from numpy_resnext.io.infer import infer_config
from numpy_resnext.params import param_shapes
from numpy_resnext.plan import layer_plan

KEY_SCHEME = {"resnext": "ppcls", "resnext_vd": "ppcls", "resnext101_wsl": "ppcls_wsl",
              "vision": "paddle_vision"}
PARAM_SCHEME = {"resnext": "ppcls_param", "resnext_vd": "ppcls_param",
                "resnext101_wsl": "ppcls_wsl_param"}


def lazy(shape, dtype=np.float32):
    """An array of the right shape and dtype without its memory (WSL 32x48d is 3.3 GB)."""
    return np.broadcast_to(np.zeros((), dtype), tuple(shape))


@pytest.fixture(scope="module")
def paddle_names(fixtures_dir):
    with gzip.open(fixtures_dir / "paddle" / "names.json.gz", "rt") as f:
        return json.load(f)


def test_golden_lists_cover_every_family(paddle_names):
    kinds = {v["kind"] for v in paddle_names.values()}
    assert kinds == set(KEY_SCHEME)
    assert len(paddle_names["ResNeXt152_32x4d"]["tensors"]) == len(param_shapes(get_arch("ResNeXt152_32x4d")))


@pytest.mark.parametrize("column", ["key", "param"])
def test_paddle_names_map_exactly(paddle_names, column):
    checked = 0
    for model, entry in paddle_names.items():
        if column == "param" and entry["kind"] == "vision":
            continue                         # generated names (conv2d_0.w_0): not a scheme
        idx = 0 if column == "key" else 1
        tensors = {row[idx]: lazy(row[2]) for row in entry["tensors"]}
        scheme = R.detect_scheme(list(tensors), tensors.get("fc.weight", lazy((1,))).shape,
                                 tensors.get("fc.bias", lazy((1,))).shape, paddle_file=True)
        want = (KEY_SCHEME if column == "key" else PARAM_SCHEME)[entry["kind"]]
        assert scheme == want, model
        config, _ = infer_config(tensors, scheme)
        assert config == get_arch(model), model
        fmap = N.name_map(config, scheme)
        assert set(fmap.values()) == set(tensors), model
        fc_w = fmap["fc.weight"]
        for canonical, shape in param_shapes(config).items():
            stored = tuple(tensors[fmap[canonical]].shape)
            expect = shape[::-1] if fmap[canonical] == fc_w else shape    # [in, out]
            assert stored == expect, (model, canonical)
        checked += 1
    assert checked >= 8


def test_key_and_param_columns_pair_up(paddle_names):
    """Both of PaddleClas's namings map a canonical name to the same Paddle tensor."""
    for model, entry in paddle_names.items():
        if entry["kind"] == "vision":
            continue
        key_to_param = {k: p for k, p, _ in entry["tensors"]}
        config = ARCHS[model]
        keys = N.name_map(config, KEY_SCHEME[entry["kind"]])
        params = N.name_map(config, PARAM_SCHEME[entry["kind"]])
        for canonical in keys:
            assert key_to_param[keys[canonical]] == params[canonical], (model, canonical)


def test_res4_numbering():
    a101, a50 = get_arch("ResNeXt101_32x4d"), get_arch("ResNeXt50_32x4d")
    assert N.ppcls_block_name(a101, 2, 0) == "res4a"
    assert N.ppcls_block_name(a101, 2, 22) == "res4b22"
    assert N.ppcls_block_name(a101, 1, 3) == "res3d"
    assert N.ppcls_block_name(a50, 2, 5) == "res4f"
    assert R.block_index("ppcls_param", "bn4b22_branch2a_scale") == (2, 22)
    assert R.block_index("ppcls_param", "res5c_branch2c_weights") == (3, 2)


@st.composite
def configs(draw):
    n = draw(st.integers(1, 4))
    card = draw(st.sampled_from([1, 2, 4, 8]))
    stem = draw(st.sampled_from(["plain", "deep"]))
    deep = draw(st.sampled_from([8, 32]))
    se = draw(st.sampled_from([0, 0, 16, 12]))
    return custom(depths=draw(st.lists(st.integers(1, 8), min_size=n, max_size=n)),
                  cardinality=card, base_width=draw(st.sampled_from([1, 2, 4])), stem=stem,
                  num_classes=draw(st.integers(1, 30)),
                  stem_width=draw(st.sampled_from([16, 64])), deep_stem_width=deep,
                  deep_stem_first=draw(st.sampled_from([0, 0, 3 * (deep // 4)])) if stem == "deep" else 0,
                  stem_pool=draw(st.sampled_from(["padded", "padded", "ceil"])),
                  se_reduction=se, se_rounding=draw(st.sampled_from(["floor", "timm"])))


def stored_shapes(config, scheme, fmap):
    """{file name: shape as the scheme stores it} (Paddle's Linear [in, out])."""
    shapes, in_out = param_shapes(config), set(N.in_out_names(layer_plan(config), scheme))
    return {f: (shapes[c][1], shapes[c][0]) if c in in_out else shapes[c] for c, f in fmap.items()}


@given(configs(), st.sampled_from(list(N.SCHEMES)))
def test_every_architecture_round_trips(config, scheme):
    """Names of any config in any scheme are unique, recognised, and infer back to it (or
    the scheme says why it cannot name it)."""
    why = N.cannot_name(config, scheme)
    if why:
        with pytest.raises(WeightsError, match="cannot be named"):
            N.name_map(config, scheme)
        return
    fmap = N.name_map(config, scheme)
    assert len(set(fmap.values())) == len(fmap)
    tensors = {f: lazy(shape) for f, shape in stored_shapes(config, scheme, fmap).items()}
    w, b = tensors[fmap["fc.weight"]].shape, tensors[fmap["fc.bias"]].shape
    found = R.detect_scheme(list(tensors), w, b, paddle_file=scheme != "canonical")
    if {found, scheme} <= {"canonical", "ppcls_wsl_param"} and w[0] == w[1]:
        pass                                 # a square head is decided by the file's origin
    else:
        assert found == scheme
    inferred, _ = infer_config(tensors, scheme, wanted=config)
    assert I.config_differences(config, inferred) == []
    for f in MATH_FIELDS:
        if f not in ("deep_stem_width", "deep_stem_first") or config.stem == "deep":   # no tensor without a deep stem
            assert getattr(inferred, f) == getattr(config, f), f


def test_torch_style_layout_is_read_off_the_head():
    assert R.detect_scheme(["fc.weight", "fc.bias", "bn1.running_mean"], (10, 2048), (10,)) == "canonical"
    assert R.detect_scheme(["fc.weight", "fc.bias", "bn1.running_mean"], (2048, 10), (10,)) == "ppcls_wsl_param"
    assert R.detect_scheme(["fc.weight", "bn1.running_mean"], (8, 8), None, paddle_file=True) == "ppcls_wsl_param"
    assert R.detect_scheme(["fc.weight", "bn1.running_mean"], (8, 8), None) == "canonical"


def test_unrecognised_and_generated_names_are_explained():
    with pytest.raises(WeightsError, match="unrecognised tensor names"):
        R.detect_scheme(["encoder.blocks.0.attn.qkv.weight"])
    with pytest.raises(WeightsError, match="generated per process"):
        R.detect_scheme(["conv2d_0.w_0", "batch_norm2d_0.w_1", "linear_0.b_0"])
    with pytest.raises(WeightsError, match="no tensors"):
        load_weights({})


def test_torchvision_state_dict_with_num_batches_tracked():
    config = custom(depths=(1, 1), cardinality=2, base_width=2, num_classes=3)
    sd = {k: np.full(s, 0.5, np.float64) for k, s in param_shapes(config).items()}
    sd.update({k.replace("running_mean", "num_batches_tracked"): np.array(7)
               for k in list(sd) if k.endswith("running_mean")})
    loaded = load_weights(sd)
    assert loaded.scheme == "canonical" and loaded.report.ignored
    assert loaded.params["fc.weight"].dtype == np.float64 and loaded.params["fc.weight"].shape == (3, 512)
    for f in MATH_FIELDS:
        assert getattr(loaded.config, f) == getattr(config, f)


def test_named_architecture_disagreeing_with_file():
    config = get_arch("ResNeXt50_32x4d")
    fmap = N.name_map(config, "ppcls")
    shapes = param_shapes(config)
    tensors = {f: lazy(shapes[c][::-1] if c == "fc.weight" else shapes[c]) for c, f in fmap.items()}
    # the same architecture, run with Paddle's BatchNorm epsilon (the weights are Paddle's)
    assert load_weights(tensors).config == config.replace(bn_eps=PADDLE_BN_EPS)
    assert any("BatchNorm epsilon 9.999999747378752e-06" in n for n in load_weights(tensors).report.notes)
    with pytest.raises(WeightsError, match=r"ResNeXt50_32x4d.*ResNeXt50_64x4d.*cardinality"):
        load_weights(tensors, arch="ResNeXt50_64x4d")
    # the same net with another head (fine-tuned) loads, takes the file's classes, says so
    tuned = load_weights(tensors, arch=config.replace(num_classes=10))
    assert tuned.config.num_classes == 1000 and "fc.weight" in tuned.params
    assert any("fine-tuned head: 1000 classes" in n for n in tuned.report.notes)
    # any other disagreement is still an error, listing every field, head included
    with pytest.raises(WeightsError, match=r"cardinality.*num_classes"):
        load_weights(tensors, arch=get_arch("ResNeXt50_64x4d").replace(num_classes=10))


def test_finetuned_head_is_named_after_its_backbone():
    config = get_arch("ResNeXt101_32x8d_wsl").replace(num_classes=37)
    fmap = N.name_map(config, "ppcls_wsl")
    shapes = param_shapes(config)
    tensors = {f: lazy(shapes[c][::-1] if c == "fc.weight" else shapes[c]) for c, f in fmap.items()}
    loaded = load_weights(tensors)
    assert loaded.config.name == "ResNeXt101_32x8d_wsl_37classes"
    assert loaded.config.num_classes == 37


@pytest.mark.parametrize("shape", [(0, 4, 3, 3), (128, 0, 3, 3), (130, 4, 3, 3), (128, 4)])
def test_malformed_grouped_weight_is_named_not_a_crash(shape):
    tensors = {k: np.zeros(s, np.float32) for k, s in param_shapes(get_arch("resnext50_32x4d")).items()}
    tensors["layer1.0.conv2.weight"] = np.zeros(shape, np.float32)
    with pytest.raises(WeightsError, match=r"layer1\.0\.conv2\.weight: expected a grouped "
                       rf"3x3 weight .*found shape \({shape[0]}, {shape[1]}"):
        infer_config(tensors, "canonical")
