"""Preprocessing: the resize/crop/normalise rules by hand, then against OpenCV and PaddleClas.

Lanes: the rule tests need NumPy only; the OpenCV lane (opencv-python installed) compares
the resize with cv2.resize INTER_LINEAR on random images of odd sizes and both
orientations; the PaddleClas lane runs PaddleClas's own deploy preprocessing operators.
"""

import importlib.util
import os
import sys
import types

import numpy as np
import pytest

from numpy_resnext import preprocess as pp
from numpy_resnext.errors import FormatError, InputError, InputTypeError, ResNeXtError


# --- the size rule and the crop -------------------------------------------------------------
@pytest.mark.parametrize("hw, expected", [
    ((375, 500), (256, 341)),      # 500 * 256/375 = 341.33
    ((500, 375), (341, 256)),      # portrait
    ((512, 333), (394, 256)),      # 512 * 256/333 = 393.6 -> 394
    ((333, 512), (256, 394)),
    ((256, 256), (256, 256)),
    ((100, 101), (256, 259)),      # upscaling: 101 * 2.56 = 258.56
    ((512, 1001), (256, 500)),     # 1001 * 0.5 = 500.5: Python's round goes to the even 500
    ((512, 1003), (256, 502)),     # 501.5 -> 502 (even)
])
def test_short_side_size_follows_paddleclas_rounding(hw, expected):
    assert pp.short_side_size(*hw) == expected


def test_center_crop_offsets_are_floor_halves():
    H, W = 257, 300
    yy, xx = np.mgrid[0:H, 0:W]
    img = np.stack([yy, xx, yy * 0], axis=-1)             # each pixel holds its own (row, col)
    crop = pp.center_crop(img, 224)
    assert crop.shape == (224, 224, 3)
    # top = (257 - 224) // 2 = 16, left = (300 - 224) // 2 = 38
    assert crop[0, 0, 0] == 16 and crop[0, 0, 1] == 38
    assert crop[-1, -1, 0] == 16 + 223 and crop[-1, -1, 1] == 38 + 223


def test_center_crop_too_small_is_a_clear_error():
    with pytest.raises(InputError, match="at least that large, found 200x300"):
        pp.center_crop(np.zeros((200, 300, 3), np.uint8), 224)


# --- the bilinear resize, by hand -------------------------------------------------------------
def test_resize_half_pixel_centres_by_hand():
    # 2 -> 4 pixels: samples at x = -0.25, 0.25, 0.75, 1.25 (half-pixel centres), the outer two
    # clamped to the edges; 0.25 * 255 = 63.75 and 0.75 * 255 = 191.25 in 11-bit fixed point
    # round to 64 and 191
    img = np.array([[[0], [255]]], np.uint8)                              # 1, 2, 1
    out = pp.resize_bilinear(img, 1, 4)
    assert out[0, :, 0].tolist() == [0, 64, 191, 255]
    out = pp.resize_bilinear(img.transpose(1, 0, 2), 4, 1)                # vertical, same rule
    assert out[:, 0, 0].tolist() == [0, 64, 191, 255]


def test_resize_exact_halving_is_the_2x2_mean_rounded_half_up():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (38, 54, 3), dtype=np.uint8)
    out = pp.resize_bilinear(img, 19, 27)
    blocks = img.astype(int).reshape(19, 2, 27, 2, 3).sum(axis=(1, 3))   # 19, 27, 3
    np.testing.assert_array_equal(out, (blocks + 2) // 4)


def test_resize_same_size_and_constant_images_are_unchanged():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (31, 17, 3), dtype=np.uint8)
    np.testing.assert_array_equal(pp.resize_bilinear(img, 31, 17), img)
    flat = np.full((13, 29, 3), 201, np.uint8)
    for h, w in [(256, 571), (5, 7), (40, 29)]:
        assert (pp.resize_bilinear(flat, h, w) == 201).all()


def test_resize_does_not_mutate_and_checks_dtype():
    img = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    before = img.copy()
    pp.resize_short(img)
    np.testing.assert_array_equal(img, before)
    with pytest.raises(InputTypeError, match="uint8"):
        pp.resize_short(img.astype(np.float32))


# --- normalisation and the whole pipeline ---------------------------------------------------
def test_normalize_values():
    img = np.array([[[0, 0, 0], [255, 255, 255], [10, 128, 250]]], np.uint8)   # 1, 3, 3
    out = pp.normalize(img, "float64")
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    expect = (img.astype(np.float64) / 255.0 - mean) / std
    np.testing.assert_allclose(out, expect, rtol=0, atol=1e-14)
    out32 = pp.normalize(img)
    assert out32.dtype == np.float32
    np.testing.assert_allclose(out32, expect, rtol=0, atol=2e-6)
    for bad in ("float16", "no such dtype"):
        with pytest.raises(InputTypeError, match=f"expected 'float32' or 'float64', found '{bad}'"):
            pp.normalize(img, bad)


@pytest.mark.parametrize("hw", [(375, 500), (500, 375), (224, 224), (233, 1001), (640, 227)])
def test_preprocess_shape_dtype_and_layout(hw):
    rng = np.random.default_rng(hw[0] * 7 + hw[1])
    img = rng.integers(0, 256, hw + (3,), dtype=np.uint8)
    x = pp.preprocess(img)
    assert x.shape == (3, 224, 224) and x.dtype == np.float32 and x.flags.c_contiguous
    # channel 0 of the output is the red channel of the crop, normalised
    crop = pp.center_crop(pp.resize_short(img))
    np.testing.assert_allclose(x[0], (crop[..., 0] / 255.0 - 0.485) / 0.229, atol=2e-6)
    assert pp.preprocess(img, "float64").dtype == np.float64


def test_preprocess_rejects_non_rgb():
    with pytest.raises(InputError, match="3 RGB channels"):
        pp.preprocess(np.zeros((300, 300, 4), np.uint8))


# --- reading files ----------------------------------------------------------------------------
def test_load_image_npy_rules(tmp_path):
    rng = np.random.default_rng(2)
    raw = rng.integers(0, 256, (300, 260, 3), dtype=np.uint8)
    np.save(tmp_path / "raw.npy", raw)
    np.testing.assert_array_equal(pp.load_image(tmp_path / "raw.npy"), pp.preprocess(raw))
    ready = rng.standard_normal((3, 224, 224))
    np.save(tmp_path / "ready.npy", ready)
    got = pp.load_image(tmp_path / "ready.npy")
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, ready)
    np.save(tmp_path / "batch1.npy", ready[None])
    np.testing.assert_array_equal(pp.load_image(tmp_path / "batch1.npy"), ready)


@pytest.mark.parametrize("array, error, match", [
    (np.zeros((10, 10), np.uint8), InputError, r"\(H, W, 3\) RGB, found shape \(10, 10\)"),
    (np.zeros((224, 224, 3), np.float32), InputError, r"float \(3, H, W\)"),
    (np.zeros((3, 8, 8), np.int32), InputTypeError, "found dtype int32"),
])
def test_load_image_npy_errors(tmp_path, array, error, match):
    np.save(tmp_path / "a.npy", array)
    with pytest.raises(error, match=match):
        pp.load_image(tmp_path / "a.npy")


def test_load_image_missing_and_directory(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        pp.load_image(tmp_path / "nope.jpg")
    with pytest.raises(InputError, match="is a directory"):
        pp.load_image(tmp_path)


def test_load_image_without_pillow_names_the_extra(tmp_path, monkeypatch):
    (tmp_path / "cat.jpg").write_bytes(b"\xff\xd8\xff")
    monkeypatch.setitem(sys.modules, "PIL", None)          # import PIL now fails,
    monkeypatch.setitem(sys.modules, "PIL.Image", None)    # and so does PIL.Image if matplotlib loaded it
    with pytest.raises(ResNeXtError, match=r"pip install 'numpy-resnext\[image\]'"):
        pp.load_image(tmp_path / "cat.jpg")


def test_pillow_decoding(tmp_path):
    Image = pytest.importorskip("PIL.Image", reason="decoding images needs Pillow")
    rng = np.random.default_rng(3)
    rgb = rng.integers(0, 256, (40, 30, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    np.testing.assert_array_equal(pp.read_image(tmp_path / "a.png"), rgb)
    grey = rgb[..., 0].copy()
    Image.fromarray(grey).save(tmp_path / "g.png")
    np.testing.assert_array_equal(pp.read_image(tmp_path / "g.png"), np.repeat(grey[..., None], 3, 2))
    rgba = np.concatenate([rgb, np.zeros((40, 30, 1), np.uint8)], axis=2)   # fully transparent
    Image.fromarray(rgba).save(tmp_path / "t.png")
    np.testing.assert_array_equal(pp.read_image(tmp_path / "t.png"), rgb)   # alpha dropped
    (tmp_path / "bad.jpg").write_bytes(b"not an image at all")
    with pytest.raises(FormatError, match="cannot decode"):
        pp.read_image(tmp_path / "bad.jpg")


# --- OpenCV lane ----------------------------------------------------------------------------------
def _odd_sizes(seed, n):
    rng = np.random.default_rng(seed)
    sizes = [(375, 500), (500, 375), (257, 1023), (1023, 257), (224, 225), (97, 131), (131, 97),
             (2, 3), (511, 512)]
    sizes += [tuple(int(v) for v in rng.integers(2, 900, 2)) for _ in range(n)]
    return sizes


def test_resize_matches_opencv_within_one_grey_level():
    cv2 = pytest.importorskip("cv2", reason="the OpenCV lane needs opencv-python(-headless)")
    rng = np.random.default_rng(4)
    worst, differ, total = 0, 0, 0
    for H, W in _odd_sizes(5, 20):
        # smooth content and pure noise: the rounding paths differ on both
        noise = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        ramp = (np.add.outer(np.arange(H), np.arange(W)) * 255 // (H + W))[..., None]
        for img in (noise, np.repeat(ramp, 3, 2).astype(np.uint8)):
            h, w = pp.short_side_size(H, W)
            ref = cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR)
            ours = pp.resize_short(img)
            assert ours.shape == ref.shape, (H, W)
            d = np.abs(ours.astype(int) - ref.astype(int))
            worst, differ, total = max(worst, int(d.max())), differ + int((d > 0).sum()), total + d.size
            if min(h, w) >= 224:
                c = pp.center_crop(ours)
                top, left = (h - 224) // 2, (w - 224) // 2          # PaddleClas's CropImage
                assert np.abs(c.astype(int) - ref[top:top + 224, left:left + 224]).max() <= 1
    print(f"opencv {cv2.__version__}: {differ} of {total} values differ, worst {worst} grey level(s)")
    assert worst <= 1


def test_opencv_and_pillow_decode_alike(tmp_path):
    cv2 = pytest.importorskip("cv2", reason="the OpenCV lane needs opencv-python(-headless)")
    Image = pytest.importorskip("PIL.Image", reason="decoding images needs Pillow")
    rng = np.random.default_rng(6)
    yy, xx = np.mgrid[0:120, 0:90]
    img = np.stack([yy * 2, xx * 2, (yy + xx) % 256], -1).astype(np.uint8)
    img = np.clip(img.astype(int) + rng.integers(-8, 9, img.shape), 0, 255).astype(np.uint8)
    for name in ("a.png", "a.jpg"):
        Image.fromarray(img).save(tmp_path / name, **({"quality": 90} if name.endswith("jpg") else {}))
        ours = pp.read_image(tmp_path / name)
        theirs = cv2.imdecode(np.fromfile(tmp_path / name, np.uint8), cv2.IMREAD_COLOR)[..., ::-1]
        assert np.abs(ours.astype(int) - theirs.astype(int)).max() <= (0 if name.endswith("png") else 1)


# --- PaddleClas lane: its own deploy operators ----------------------------------------------------
def _paddleclas_ops(monkeypatch):
    pytest.importorskip("cv2", reason="PaddleClas's preprocessing needs opencv-python")
    pytest.importorskip("paddle", reason="PaddleClas's preprocessing imports paddle")
    spec = importlib.util.find_spec("paddleclas")
    if spec is None or spec.origin is None:
        pytest.skip("paddleclas is not installed (pip install --no-deps paddleclas==2.6.0)")
    root = os.path.dirname(spec.origin)
    if not os.path.exists(os.path.join(root, "deploy", "python", "preprocess.py")):
        pytest.skip("this paddleclas install has no deploy/python/preprocess.py")
    # import the operators without running paddleclas/__init__ (it needs network packages)
    if "paddleclas" not in sys.modules:
        pkg = types.ModuleType("paddleclas")
        pkg.__path__, pkg.__spec__ = [root], spec
        monkeypatch.setitem(sys.modules, "paddleclas", pkg)
    if importlib.util.find_spec("six") is None:
        six = types.ModuleType("six")
        six.PY2 = False
        monkeypatch.setitem(sys.modules, "six", six)
    from paddleclas.deploy.python import preprocess as P
    return [P.ResizeImage(resize_short=256), P.CropImage(size=224),
            P.NormalizeImage(scale=1.0 / 255.0, mean=[0.485, 0.456, 0.406],
                             std=[0.229, 0.224, 0.225], order=""),
            P.ToCHWImage()]


@pytest.mark.paddle
def test_preprocess_equals_paddleclas_operators(monkeypatch):
    ops = _paddleclas_ops(monkeypatch)
    rng = np.random.default_rng(7)
    worst = 0.0
    for H, W in _odd_sizes(8, 6):
        if min(H, W) < 2:
            continue
        img = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        ref = img
        for op in ops:
            ref = op(ref)
        ours = pp.preprocess(img)
        assert ref.shape == ours.shape == (3, 224, 224) and ref.dtype == ours.dtype
        worst = max(worst, float(np.abs(ref - ours).max()))
    # one grey level is 1/255/std <= 0.0175 after normalisation
    print(f"max |PaddleClas - numpy-resnext| after normalisation: {worst}")
    assert worst <= 1 / 255 / 0.224 + 1e-6
