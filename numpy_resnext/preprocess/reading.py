"""Reading images: a file decoded to uint8 RGB (H, W, 3) with Pillow, or an .npy array.

Decoding other than .npy needs Pillow (``pip install numpy-resnext[image]``); JPEG decoders
may differ from OpenCV's by a grey level on some pixels, which this module cannot control.
Image area is bounded by ``Limits.max_image_pixels`` (default 2**26, 8192 x 8192): a PNG
header declaring 30000 x 30000 pixels is refused before decoding, as is an .npy image that
large. See docs/formats.md, "Reading limits".
"""

from __future__ import annotations

import os
import struct

import numpy as np

from .._optional import require
from ..bounded import check_regular, read_npy
from ..errors import FormatError, InputError, InputTypeError
from .paddleclas import check_pixels, preprocess


def _decode_with_pillow(path: str) -> np.ndarray:
    pil = require("PIL.Image", f"reading {path!r}",
                  "(or save the image as a uint8 (H, W, 3) RGB .npy file)")
    Image, UnidentifiedImageError = pil, pil.UnidentifiedImageError
    try:
        with Image.open(path) as im:
            # the header's size, checked before a pixel is decoded (decode bombs)
            check_pixels(im.size[1], im.size[0], f"image {path!r}")
            # like OpenCV's IMREAD_COLOR: grey is replicated, alpha is dropped (not blended)
            rgb = np.asarray(im.convert("RGB"))
    except Image.DecompressionBombError as exc:
        raise InputError(f"image {path!r} is too large to decode safely ({exc})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError, struct.error,
            IndexError, TypeError, KeyError, ZeroDivisionError, MemoryError) as exc:
        raise FormatError(f"cannot decode {path!r} as an image "
                          f"({type(exc).__name__}: {str(exc)[:200]})") from None
    return np.array(rgb, dtype=np.uint8)


def _from_npy(path: str) -> np.ndarray:
    a = read_npy(path, "image")                   # header sizes checked before allocation
    if a.ndim >= 2:
        h, w = (a.shape[-2:] if a.dtype.kind == "f" else a.shape[:2])
        check_pixels(int(h), int(w), f"image {path!r}")
    if a.dtype == np.uint8:
        if a.ndim == 3 and a.shape[2] == 3:
            return a
        raise InputError(f"{path!r}: a uint8 image must be (H, W, 3) RGB, found shape {a.shape}")
    if a.dtype.kind == "f":
        if a.ndim == 4 and a.shape[0] == 1:
            a = a[0]
        if a.ndim == 3 and a.shape[0] == 3:
            return a
        raise InputError(f"{path!r}: a preprocessed image must be a float (3, H, W) array, "
                         f"found shape {a.shape}")
    raise InputTypeError(f"{path!r}: expected uint8 (H, W, 3) RGB or float (3, H, W) "
                         f"preprocessed values, found dtype {a.dtype} with shape {a.shape}")


def read_image(path) -> np.ndarray:
    """The array stored at ``path``: uint8 (H, W, 3) RGB, or a float (3, H, W) array that is
    already preprocessed.

    The rule for .npy files is by dtype: uint8 means raw RGB pixels in (H, W, 3) order;
    float32/float64 means values already preprocessed, in (3, H, W) (or (1, 3, H, W))
    order. Any other file is decoded with Pillow and converted to RGB.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(f"image {path!r} does not exist")
    if os.path.isdir(path):
        raise InputError(f"image {path!r} is a directory, expected an image or .npy file")
    check_regular(path, "image")                  # a FIFO would block the open
    if path.lower().endswith(".npy"):
        return _from_npy(path)
    return _decode_with_pillow(path)


def load_image(path, dtype="float32", preset=None) -> np.ndarray:
    """A model-ready (3, H, W) float array: raw images are preprocessed (-> 3 x 224 x 224),
    float .npy arrays are returned as stored (their dtype is left to the caller).

    ``preset`` (a :class:`~numpy_resnext.preprocess.presets.Preset`, or None for
    PaddleClas's pipeline in ``dtype``) preprocesses raw images; a preset computes in
    float32, as the library that defines it does.
    """
    a = read_image(path)
    if a.dtype != np.uint8:
        return a
    try:
        return preprocess(a, dtype) if preset is None else preset(a)
    except InputError as exc:            # say which image (a resize may be refused)
        raise InputError(f"image {os.fspath(path)!r}: {exc}") from None


__all__ = ["load_image", "read_image"]
