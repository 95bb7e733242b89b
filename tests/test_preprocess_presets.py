"""The presets paddleclas / torchvision / timm: their rules by hand, then against the
libraries that define them (Pillow's resize; torchvision.transforms and its weights'
transforms; timm.data.create_transform with timm's pretrained configs), on PIL images."""

import numpy as np
import pytest

from numpy_resnext.errors import InputError
from numpy_resnext.preprocess import get_preset, preprocess
from numpy_resnext.preprocess.pil import (center_crop_torchvision, coefficients, resize_pil,
                                          torchvision_size, vertical_first)
from numpy_resnext.preprocess.presets import TIMM_CONFIGS, parse_spec

from _torchvision import timm as need_timm, torchvision as need_torchvision


# --- by hand ----------------------------------------------------------------------------------
def test_spec_parsing_and_errors():
    assert parse_spec("torchvision:resize=232") == ("torchvision", {"resize": 232})
    assert parse_spec(" TIMM:crop_pct=1.0, size=288 ") == ("timm", {"crop_pct": 1.0, "size": 288})
    for spec, message in [("caffe", "unknown preset 'caffe'"), ("paddleclas:interpolation=bicubic", "not key=value"),
                          ("torchvision:resize=big", "resize must be a int"),
                          ("torchvision:crop=0", "crop must be between 1 and 8192"),
                          ("timm:interpolation=lanczos", "bilinear or bicubic"),
                          ("paddleclas:resize=100,crop=200", "resize must be at least crop"),
                          ("timm:crop_pct=1.5", "crop_pct must be in"),
                          ("timm:crop_pct=nan", "crop_pct must be in"),
                          ("timm:crop_pct=1e-300", r"resizes the short side beyond 8192"),
                          ("timm:crop_pct=5e-324", r"resizes the short side beyond 8192")]:
        with pytest.raises(InputError, match=message):
            get_preset(spec, "ResNeXt50_32x4d")


def test_torchvision_truncates_the_long_side_where_paddleclas_rounds():
    assert torchvision_size(375, 500, 256) == (256, 341)
    assert torchvision_size(333, 512, 256) == (256, 393)           # 393.6: PaddleClas gives 394
    assert torchvision_size(512, 333, 256) == (393, 256)


def test_torchvision_crop_rounds_half_to_even_and_pads():
    H, W = 257, 259
    yy, xx = np.mgrid[0:H, 0:W]
    img = np.stack([yy, xx, yy * 0], axis=-1)
    crop = center_crop_torchvision(img, 224)
    assert (crop[0, 0, 0], crop[0, 0, 1]) == (16, 18)             # round(16.5) = 16, round(17.5) = 18
    small = center_crop_torchvision(np.full((200, 230, 3), 9, np.uint8), 224)
    assert small.shape == (224, 224, 3)
    assert (small[:12] == 0).all() and (small[12:212, 0] == 9).all() and (small[212:] == 0).all()


def test_pillow_resampling_weights_by_hand():
    # bilinear 2 -> 4: centres 0.25, 0.75, 1.25, 1.75; the filter only widens when shrinking
    first, w = coefficients(2, 4, "bilinear")
    assert list(first) == [0, 0, 0, 1] and (w[:, :2] == [[1 << 22, 0], [3 << 20, 1 << 20],
                                                          [1 << 20, 3 << 20], [1 << 22, 0]]).all()
    img = np.array([[[0], [255]]], np.uint8).repeat(3, axis=2)
    assert resize_pil(img, 1, 4)[0, :, 0].tolist() == [0, 64, 191, 255]
    # bilinear 4 -> 2: support 2, taps at (x - centre + 0.5) / 2: weights 3/7, 3/7, 1/7 then 1/7, 3/7, 3/7
    ramp = np.array([[[0], [70], [140], [210]]], np.uint8).repeat(3, axis=2)
    assert resize_pil(ramp, 1, 2)[0, :, 0].tolist() == [50, 160]


def test_pillow_13_pass_order():
    assert vertical_first(1127, 550, 524, 256)                      # loses 603 rows, 294 columns
    assert not vertical_first(500, 375, 341, 256)                   # 159 rows, 119 columns
    assert not vertical_first(100, 100, 50, 75)                     # exactly twice: horizontal first
    assert not vertical_first(100, 200, 150, 20)                    # the height grows


def test_presets_shapes_and_the_paddleclas_default():
    img = np.random.default_rng(0).integers(0, 256, (300, 451, 3), dtype=np.uint8)
    np.testing.assert_array_equal(get_preset("paddleclas")(img), preprocess(img))
    for spec in ("torchvision", "torchvision:resize=232", "timm"):
        x = get_preset(spec, "ResNeXt50_32x4d")(img)
        assert x.shape == (3, 224, 224) and x.dtype == np.float32 and x.flags.c_contiguous
    timm = get_preset("timm", "ResNeXt50_32x4d")
    assert (timm.resize, timm.crop, timm.interpolation) == (235, 224, "bicubic")   # floor(224 / 0.95)
    other = get_preset("timm", "ResNeXt152_32x4d")
    assert (other.resize, other.interpolation) == (256, "bicubic") and "no pretrained config" in other.origin


# --- Pillow -------------------------------------------------------------------------------------
def test_resize_equals_pillow_bytes():
    Image = pytest.importorskip("PIL.Image", reason="the Pillow lane needs Pillow")
    rng = np.random.default_rng(1)
    same = total = 0
    cases = [(1127, 550, 524, 256), (550, 1127, 256, 524), (375, 500, 256, 341), (37, 41, 256, 283)]
    cases += [tuple(int(v) for v in rng.integers(2, 400, 4)) for _ in range(40)]
    for H, W, h, w in cases:
        img = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        for name, flag in (("bilinear", Image.BILINEAR), ("bicubic", Image.BICUBIC)):
            ref = np.asarray(Image.fromarray(img).resize((w, h), flag))
            same += int(np.array_equal(resize_pil(img, h, w, name), ref))
            total += 1
    print(f"Pillow {Image.__version__}: {same} of {total} resizes byte-identical")
    assert same == total


# --- torchvision and timm -----------------------------------------------------------------------
def _images(seed):
    rng = np.random.default_rng(seed)
    sizes = [(375, 500), (500, 375), (1127, 550), (257, 1023), (224, 225), (180, 120), (97, 131)]
    for H, W in sizes:
        noise = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        yy, xx = np.mgrid[0:H, 0:W]
        smooth = np.stack([yy * 255 // H, xx * 255 // W, (yy + xx) * 127 // (H + W)], -1).astype(np.uint8)
        yield noise
        yield smooth


def _agreement(transform, preset, Image):
    worst, equal, total = 0.0, 0, 0
    for img in _images(2):
        ref = transform(Image.fromarray(img)).numpy()
        ours = preset(img)
        assert ref.shape == ours.shape and ref.dtype == ours.dtype
        worst = max(worst, float(np.abs(ref - ours).max()))
        equal, total = equal + int((ref == ours).sum()), total + ref.size
    return worst, equal, total


@pytest.mark.torch
@pytest.mark.parametrize("resize", [256, 232])
def test_torchvision_preset_equals_torchvision_transforms(resize):
    tv = need_torchvision()
    from PIL import Image
    T = tv.transforms
    preset = get_preset(f"torchvision:resize={resize}")
    transform = T.Compose([T.Resize(resize), T.CenterCrop(224), T.ToTensor(),
                           T.Normalize((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))])
    worst, equal, total = _agreement(transform, preset, Image)
    print(f"torchvision {tv.__version__} Resize({resize}): {equal} of {total} values identical, worst {worst}")
    assert worst == 0.0


@pytest.mark.torch
def test_torchvision_weights_transforms():
    tv = need_torchvision()
    from PIL import Image
    M = tv.models
    for weights, spec in [(M.ResNeXt50_32X4D_Weights.IMAGENET1K_V1, "torchvision"),
                          (M.ResNeXt50_32X4D_Weights.IMAGENET1K_V2, "torchvision:resize=232"),
                          (M.ResNeXt101_32X8D_Weights.IMAGENET1K_V2, "torchvision:resize=232"),
                          (M.ResNeXt101_64X4D_Weights.IMAGENET1K_V1, "torchvision:resize=232")]:
        worst, equal, total = _agreement(weights.transforms(), get_preset(spec), Image)
        print(f"{weights}: {equal} of {total} values identical, worst {worst}")
        assert worst == 0.0, weights


@pytest.mark.torch
@pytest.mark.parametrize("arch", sorted(TIMM_CONFIGS) + ["ResNeXt152_32x4d"])
def test_timm_preset_equals_timm_create_transform(arch):
    timm = need_timm()
    from PIL import Image
    from timm.data import create_transform, resolve_data_config
    if arch in TIMM_CONFIGS:
        model, size, pct, interp = TIMM_CONFIGS[arch]
        cfg = timm.models.get_pretrained_cfg(model).to_dict()
        assert (cfg["input_size"], cfg["crop_pct"], cfg["interpolation"]) == ((3, size, size), pct, interp)
        assert cfg["crop_mode"] == "center"
    else:                                  # no timm model: timm's defaults for a bare config
        cfg = {"architecture": arch}
    config = resolve_data_config(pretrained_cfg=cfg)
    worst, equal, total = _agreement(create_transform(**config), get_preset("timm", arch), Image)
    print(f"timm {timm.__version__} {arch} {config}: {equal} of {total} values identical, worst {worst}")
    assert worst == 0.0
