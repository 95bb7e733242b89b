"""PaddleClas's evaluation preprocessing of its ResNeXt weights, in NumPy.

PaddleClas evaluates its ResNeXt models with this pipeline (its eval / inference
configs: DecodeImage to RGB, ResizeImage resize_short 256, CropImage 224, NormalizeImage,
ToCHWImage), reproduced here step by step:

1. decode to RGB, uint8, (H, W, 3)                  :func:`numpy_resnext.preprocess.read_image`
2. resize so the short side is 256, bilinear as OpenCV's INTER_LINEAR  :func:`resize_short`
       percent = 256 / min(W, H);  W' = round(W * percent),  H' = round(H * percent)
   (Python's round: halves go to the even neighbour)
3. center crop 224 x 224 at ((W' - 224) // 2, (H' - 224) // 2)     :func:`center_crop`
4. x * (1/255), minus mean (0.485, 0.456, 0.406), over std (0.229, 0.224, 0.225),
   in float32 as PaddleClas computes it                              :func:`normalize`
   (PaddleClas's deploy inference config writes the scale as 0.00392157, which moves
   the normalised values by at most 1.2e-6)
5. (H, W, 3) -> (3, H, W)                                            :func:`to_chw`

The bilinear resize is OpenCV's for uint8 images, fixed-point rounding included, so that a
model sees the same pixels here as in PaddleClas (see :func:`resize_bilinear`).

Image area is bounded by ``Limits.max_image_pixels`` (default 2**26, 8192 x 8192): a resize
whose output would exceed it is refused before allocating (a (1, 100000, 3) image resized
to a short side of 256 would be 25.6 million pixels wide). See docs/formats.md, "Reading
limits".
"""

from __future__ import annotations

import numpy as np

from .._checks import float_dtype
from ..bounded import get_limits
from ..errors import InputError, InputTypeError

RESIZE_SHORT = 256
CROP_SIZE = 224
SCALE = 1.0 / 255.0
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)

# OpenCV's fixed-point resize: weights are integers out of 2**11, the two passes together
# carry 2**22, and the vectorised vertical pass drops 4 + 16 of those bits before rounding
COEF_BITS = 11
COEF_SCALE = 1 << COEF_BITS



# --- 2. resize --------------------------------------------------------------------------------
def short_side_size(height: int, width: int, short: int = RESIZE_SHORT):
    """(H', W') with the short side scaled to ``short``, rounded as PaddleClas rounds."""
    if height < 1 or width < 1:
        raise InputError(f"resize: image size must be at least 1x1, found {height}x{width}")
    percent = float(short) / min(width, height)
    out = int(round(height * percent)), int(round(width * percent))
    check_pixels(out[0], out[1], f"resize of a {height}x{width} image to short side {short}")
    return out


def check_pixels(height: int, width: int, what: str) -> None:
    """Refuse an image area above ``Limits.max_image_pixels`` before allocating it."""
    limit = get_limits().max_image_pixels
    if height * width > limit:
        raise InputError(f"{what}: {height}x{width} = {height * width} pixels, more than the "
                         f"{limit} pixels accepted (an image this size is no classifier "
                         "input; crop or shrink it first)")


def _taps(src: int, dst: int, clamp_weights: bool):
    """Source indices (i0, i1) and integer weights (a0, a1) of each output position.

    Half-pixel centres: output position o samples the input at f = (o + 0.5) * src/dst - 0.5,
    computed as OpenCV does (scale = 1 / (dst/src) in double, f rounded to float32, the
    weights (1 - frac) and frac each rounded to an integer out of 2048). Horizontally
    OpenCV clamps positions outside the image to the edge pixel with weight (2048, 0);
    vertically it keeps the fraction and clamps the row indices, which gives the same
    pixel value whenever the two weights sum to 2048.
    """
    scale = 1.0 / (dst / src)
    f = ((np.arange(dst, dtype=np.float64) + 0.5) * scale - 0.5).astype(np.float32)  # dst
    i0 = np.floor(f).astype(np.int64)
    frac = (f - i0.astype(np.float32)).astype(np.float32)
    if clamp_weights:
        low, high = i0 < 0, i0 >= src - 1
        frac[low | high] = 0
        i0 = np.clip(i0, 0, src - 1)
    a0 = np.rint((np.float32(1) - frac) * np.float32(COEF_SCALE)).astype(np.int64)
    a1 = np.rint(frac * np.float32(COEF_SCALE)).astype(np.int64)
    i1 = np.clip(i0 + 1, 0, src - 1)
    return np.clip(i0, 0, src - 1), i1, a0, a1


def resize_bilinear(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of a uint8 (H, W, C) image to (height, width, C), as cv2.resize with
    INTER_LINEAR computes it (no antialiasing when shrinking: two taps per axis).

    Horizontal pass: rows[h, x, c] = a0[x] * img[h, i0[x], c] + a1[x] * img[h, i1[x], c],
    integers scaled by 2048. Vertical pass, per output row y between source rows r0, r1
    with weights b0, b1, as OpenCV's vectorised code computes it:

        out = (((rows[r0] >> 4) * b0 >> 16) + ((rows[r1] >> 4) * b1 >> 16) + 2) >> 2

    This matched opencv-python-headless 5.0.0 and 4.10.0 (x86-64) bit for bit on every
    pixel tried (80 million values, random sizes 1..700 both ways, 1, 2 and 3 pixel edge
    cases). A build that rounded some elements with OpenCV's scalar formula,
    (rows[r0] * b0 + rows[r1] * b1 + 2**21) >> 22, could differ by one grey level there.
    """
    check_uint8_hwc(image, "resize input")
    H, W, C = image.shape
    if height < 1 or width < 1:
        raise InputError(f"resize: output size must be at least 1x1, found {height}x{width}")
    check_pixels(height, width, "resize output")
    x0, x1, a0, a1 = _taps(W, width, clamp_weights=True)
    y0, y1, b0, b1 = _taps(H, height, clamp_weights=False)
    img = image.astype(np.int64)
    rows = img[:, x0, :] * a0[None, :, None] + img[:, x1, :] * a1[None, :, None]   # H, width, C
    rows = rows.reshape(H, width * C)                                               # H, width*C
    r0, r1 = rows[y0], rows[y1]                                                     # height, width*C
    B0, B1 = b0[:, None], b1[:, None]                                              # height, 1
    out = ((((r0 >> 4) * B0) >> 16) + (((r1 >> 4) * B1) >> 16) + 2) >> 2           # height, width*C
    return np.clip(out, 0, 255).astype(np.uint8).reshape(height, width, C)


def resize_short(image: np.ndarray, short: int = RESIZE_SHORT) -> np.ndarray:
    """Resize a uint8 (H, W, C) image so that its short side is ``short`` pixels."""
    check_uint8_hwc(image, "resize input")
    h, w = short_side_size(image.shape[0], image.shape[1], short)
    if (h, w) == image.shape[:2]:
        return image.copy()
    return resize_bilinear(image, h, w)


def check_uint8_hwc(image, what, channels=None):
    """A uint8 (H, W, C) ndarray, with ``channels`` channels when given; else a clear error."""
    if not isinstance(image, np.ndarray):
        raise InputTypeError(f"{what}: expected a numpy.ndarray, found {type(image).__name__}")
    if image.dtype != np.uint8:
        raise InputTypeError(f"{what}: expected a uint8 image (grey levels 0..255), found {image.dtype}")
    if image.ndim != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise InputError(f"{what}: expected an (H, W, C) image, found shape {image.shape}")
    if channels is not None and image.shape[2] != channels:
        raise InputError(f"{what}: expected {channels} RGB channels, found shape {image.shape}")



# --- 3..5 --------------------------------------------------------------------------------------
def center_crop(image: np.ndarray, size: int = CROP_SIZE) -> np.ndarray:
    """The central size x size window of an (H, W, C) image, top-left at
    ((W - size) // 2, (H - size) // 2); a copy."""
    if image.ndim != 3:
        raise InputError(f"center_crop: expected an (H, W, C) image, found shape {image.shape}")
    H, W = image.shape[:2]
    if H < size or W < size:
        raise InputError(f"center_crop: a {size}x{size} crop needs an image at least that large, "
                         f"found {H}x{W}")
    top, left = (H - size) // 2, (W - size) // 2
    return image[top:top + size, left:left + size].copy()


def normalize(image: np.ndarray, dtype="float32") -> np.ndarray:
    """(x * (1/255) - mean) / std per RGB channel of an (H, W, 3) image.

    In float32 the constants are float32 and the operations run in PaddleClas's order, so
    the result is the same float32 numbers; ``dtype="float64"`` is the golden mode.
    """
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"normalize: expected an (H, W, 3) RGB image, found shape {image.shape}")
    dt = float_dtype(dtype, "normalize: dtype")
    scale = dt.type(SCALE)
    mean = np.asarray(MEAN, dtype=dt)                                    # 3
    std = np.asarray(STD, dtype=dt)                                      # 3
    return (image.astype(dt) * scale - mean) / std                      # H, W, 3


def to_chw(image: np.ndarray) -> np.ndarray:
    """(H, W, C) -> (C, H, W), contiguous."""
    if image.ndim != 3:
        raise InputError(f"to_chw: expected an (H, W, C) array, found shape {image.shape}")
    return np.ascontiguousarray(image.transpose(2, 0, 1))               # C, H, W


def preprocess(image: np.ndarray, dtype="float32", resize: int = RESIZE_SHORT, crop: int = CROP_SIZE,
               what: str = "preprocess input") -> np.ndarray:
    """uint8 RGB (H, W, 3) -> the (3, crop, crop) array the published weights were evaluated
    on (short side 256, crop 224 unless told)."""
    check_uint8_hwc(image, what, channels=3)
    return to_chw(normalize(center_crop(resize_short(image, resize), crop), dtype))


def describe() -> str:
    """One line naming the pipeline, for command output."""
    return (f"resize short side {RESIZE_SHORT} (bilinear, OpenCV rounding), center crop "
            f"{CROP_SIZE}, /255, mean {MEAN}, std {STD}, CHW")


__all__ = ["CROP_SIZE", "MEAN", "RESIZE_SHORT", "SCALE", "STD", "center_crop", "check_pixels",
           "check_uint8_hwc", "describe", "normalize", "preprocess", "resize_bilinear",
           "resize_short", "short_side_size", "to_chw"]

