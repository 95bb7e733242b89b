"""Image preprocessing in NumPy: decoding, and the published evaluation pipelines as presets.

- :mod:`.reading`: decode a file to uint8 RGB (Pillow) or read an .npy image;
- :mod:`.paddleclas`: PaddleClas's pipeline (OpenCV's bilinear resize of the short side to
  256, crop 224, normalise), the default of every command;
- :mod:`.pil`: Pillow's antialiased resampling and torchvision's size and crop rules, which
  torchvision's and timm's evaluation transforms apply;
- :mod:`.presets`: the presets ``paddleclas``, ``torchvision`` and ``timm`` as data
  (:func:`get_preset`), each a callable uint8 image -> float32 (3, H, W).
"""

from .paddleclas import (CROP_SIZE, MEAN, RESIZE_SHORT, SCALE, STD, center_crop, check_pixels,
                         check_uint8_hwc, describe, normalize, preprocess, resize_bilinear,
                         resize_short, short_side_size, to_chw)
from .reading import load_image, read_image
from .presets import PRESETS, Preset, get_preset

__all__ = ["CROP_SIZE", "MEAN", "PRESETS", "Preset", "RESIZE_SHORT", "SCALE", "STD",
           "center_crop", "check_pixels", "check_uint8_hwc", "describe", "get_preset",
           "load_image", "normalize", "preprocess", "read_image", "resize_bilinear",
           "resize_short", "short_side_size", "to_chw"]
