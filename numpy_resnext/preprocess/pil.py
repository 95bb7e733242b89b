"""torchvision's and timm's evaluation resize and crop on PIL images, in NumPy.

torchvision's ``transforms.Resize`` and ``CenterCrop`` (which timm's eval transform also
uses) hand a PIL image to Pillow, whose resize always antialiases: every output pixel is a
weighted sum over a window that widens with the downscale factor. This module computes the
same integers as Pillow's ``Image.resize`` for uint8 RGB images (its ``Resample.c``):

1. per output position o of an axis of ``src`` pixels resized to ``dst``::

       scale   = src / dst;   fscale = max(scale, 1)     (the filter widens only when shrinking)
       support = filter support * fscale                 (1 bilinear, 2 bicubic)
       centre  = (o + 0.5) * scale
       taps    i = trunc(centre - support + 0.5) ... trunc(centre + support + 0.5) - 1,
                 clipped to [0, src)
       weight  w_i = filter((i - centre + 0.5) / fscale), divided by their sum (summed in
                 tap order, in double precision)

   filters: bilinear 1 - |x| on |x| < 1; bicubic (a = -0.5) ((a+2)|x| - (a+3)) x^2 + 1 on
   |x| < 1 and a(|x|^3 - 5x^2 + 8|x| - 4) on 1 <= |x| < 2;
2. the weights in fixed point: round-half-away-from-zero of w * 2**22;
3. two passes, each sum started at 2**21 and shifted right by 22, clipped to 0..255 (a uint8
   image in between): the horizontal pass first, except that Pillow 13 (pull request 9549)
   runs the vertical pass first when the height shrinks and loses more than twice as many
   rows as the width loses columns, H - h > 2 (W - w) (:func:`vertical_first`). Earlier
   Pillow always ran the horizontal pass first; for an aspect-preserving resize the two
   differ only on images more than twice as tall as wide, by a few grey levels.

The size rule is torchvision's ``_compute_resized_output_size``: the short side becomes
``size`` and the long side ``int(size * long / short)`` (truncated, where PaddleClas rounds).
The centre crop starts at ``int(round((H - crop) / 2))`` (Python's round, halves to even,
where PaddleClas floors) and pads with zeros, as torchvision does, when the image is smaller
than the crop.
"""

from __future__ import annotations

import math

import numpy as np

from ..errors import InputError
from .paddleclas import check_pixels, check_uint8_hwc

PRECISION_BITS = 32 - 8 - 2          # Pillow's fixed point for 8-bit images
BICUBIC_A = -0.5


def _bilinear(x):
    x = np.abs(x)
    return np.where(x < 1.0, 1.0 - x, 0.0)


def _bicubic(x):
    a = BICUBIC_A
    x = np.abs(x)
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    far = (((x - 5) * x + 8) * x - 4) * a
    return np.where(x < 1.0, near, np.where(x < 2.0, far, 0.0))


# name -> (support, filter), as Pillow's Resample.c defines them
FILTERS = {"bilinear": (1.0, _bilinear), "bicubic": (2.0, _bicubic)}


def coefficients(src: int, dst: int, interpolation: str):
    """(first tap (dst,), integer weights (dst, taps)) of one axis, as Pillow computes them.

    Weights past a position's last tap are 0; the tap indices first + k are clipped to the
    image (their weight is 0 there).
    """
    if interpolation not in FILTERS:
        raise InputError(f"interpolation: expected one of {', '.join(FILTERS)}, found {interpolation!r}")
    support, filt = FILTERS[interpolation]
    scale = src / dst
    fscale = max(scale, 1.0)
    support = support * fscale
    taps = int(math.ceil(support)) * 2 + 1
    centre = (np.arange(dst, dtype=np.float64) + 0.5) * scale                  # dst
    first = np.maximum(np.trunc(centre - support + 0.5), 0).astype(np.int64)    # dst
    last = np.minimum(np.trunc(centre + support + 0.5), src).astype(np.int64)   # dst
    k = np.arange(taps)                                                         # taps
    w = filt((k[None, :] + first[:, None] - centre[:, None] + 0.5) * (1.0 / fscale))  # dst, taps
    w = np.where(k[None, :] < (last - first)[:, None], w, 0.0)
    total = np.zeros(dst)
    for j in range(taps):                     # summed in tap order, as Pillow's loop does
        total = total + w[:, j]
    w = np.where(total[:, None] != 0.0, w / np.where(total == 0.0, 1.0, total)[:, None], w)
    fixed = np.where(w < 0, np.trunc(-0.5 + w * (1 << PRECISION_BITS)),
                     np.trunc(0.5 + w * (1 << PRECISION_BITS))).astype(np.int64)  # dst, taps
    return first, fixed


def _pass(image, axis, dst, interpolation):
    """One resampling pass of a uint8 (H, W, C) image along ``axis`` (1: width, 0: height)."""
    src = image.shape[axis]
    first, weights = coefficients(src, dst, interpolation)
    acc = np.full(image.shape[:axis] + (dst,) + image.shape[axis + 1:], 1 << (PRECISION_BITS - 1),
                  dtype=np.int64)                                               # .., dst, .., C
    wshape = (dst, 1) if axis == 1 else (dst, 1, 1)
    for j in range(weights.shape[1]):
        index = np.minimum(first + j, src - 1)                                  # dst
        acc += np.take(image, index, axis=axis).astype(np.int64) * weights[:, j].reshape(wshape)
    return np.clip(acc >> PRECISION_BITS, 0, 255).astype(np.uint8)


def vertical_first(H: int, W: int, height: int, width: int) -> bool:
    """Whether Pillow 13 resamples (H, W) -> (height, width) vertically first: when the
    height shrinks by more than twice as many pixels as the width."""
    return height < H and H - height > 2 * (W - width)


def resize_pil(image: np.ndarray, height: int, width: int, interpolation="bilinear") -> np.ndarray:
    """A uint8 (H, W, 3) image resized to (height, width) as Pillow 13's ``Image.resize``
    with BILINEAR or BICUBIC resamples it (antialiased; two passes, see the module docstring)."""
    check_uint8_hwc(image, "resize input")
    if height < 1 or width < 1:
        raise InputError(f"resize: output size must be at least 1x1, found {height}x{width}")
    check_pixels(height, width, "resize output")
    H, W = image.shape[:2]
    out = image
    for axis in ((0, 1) if vertical_first(H, W, height, width) else (1, 0)):
        size = width if axis == 1 else height
        if size != image.shape[axis]:
            out = _pass(out, axis, size, interpolation)                         # one axis resized
    return out.copy() if out is image else out


def torchvision_size(height: int, width: int, short: int):
    """(H', W') of torchvision's Resize(short): the short side ``short``, the long side
    ``int(short * long / short_side)``."""
    if height < 1 or width < 1:
        raise InputError(f"resize: image size must be at least 1x1, found {height}x{width}")
    lo, hi = min(height, width), max(height, width)
    new_hi = int(short * hi / lo)
    out = (short, new_hi) if height <= width else (new_hi, short)
    check_pixels(out[0], out[1], f"resize of a {height}x{width} image to short side {short}")
    return out


def resize_short_pil(image: np.ndarray, short: int, interpolation="bilinear") -> np.ndarray:
    """torchvision's ``Resize(short, interpolation)`` of a PIL image (unchanged when the
    size already matches, as torchvision returns the image itself then)."""
    check_uint8_hwc(image, "resize input")
    h, w = torchvision_size(image.shape[0], image.shape[1], short)
    if (h, w) == image.shape[:2]:
        return image.copy()
    return resize_pil(image, h, w, interpolation)


def center_crop_torchvision(image: np.ndarray, size: int) -> np.ndarray:
    """torchvision's ``CenterCrop(size)``: zero padding to at least size x size (the odd
    pixel after), then the window at (int(round((H - size) / 2)), int(round((W - size) / 2)))."""
    if image.ndim != 3:
        raise InputError(f"center_crop: expected an (H, W, C) image, found shape {image.shape}")
    H, W = image.shape[:2]
    if H < size or W < size:
        top, left = max(size - H, 0) // 2, max(size - W, 0) // 2
        padded = np.zeros((max(H, size), max(W, size), image.shape[2]), image.dtype)
        padded[top:top + H, left:left + W] = image
        image, (H, W) = padded, padded.shape[:2]
    top, left = int(round((H - size) / 2.0)), int(round((W - size) / 2.0))
    return image[top:top + size, left:left + size].copy()


def normalize_torchvision(image: np.ndarray, mean, std) -> np.ndarray:
    """``ToTensor`` then ``Normalize(mean, std)`` of an (H, W, 3) uint8 image, in float32 as
    torch computes it: x / 255 (a division), minus mean, over std. Returns (H, W, 3)."""
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"normalize: expected an (H, W, 3) RGB image, found shape {image.shape}")
    m = np.asarray(mean, dtype=np.float32)                                      # 3
    s = np.asarray(std, dtype=np.float32)                                       # 3
    return (image.astype(np.float32) / np.float32(255) - m) / s                 # H, W, 3


__all__ = ["FILTERS", "PRECISION_BITS", "center_crop_torchvision", "coefficients",
           "normalize_torchvision", "resize_pil", "resize_short_pil", "torchvision_size",
           "vertical_first"]
