"""The published evaluation pipelines as presets: ``paddleclas``, ``torchvision``, ``timm``.

A preset is data (:class:`Preset`: short side, crop, interpolation, mean, std and where the
numbers come from) and a callable: uint8 RGB (H, W, 3) -> float32 (3, crop, crop), computed
as the library that defines it computes it (float32, the same integer resize).

==============  =====================================================================
``paddleclas``  PaddleClas's eval config: OpenCV bilinear resize of the short side to 256
                (no antialiasing, lengths rounded), crop 224 at the floor of the halves,
                x * (1/255), ImageNet mean/std (:mod:`.paddleclas`)
``torchvision`` torchvision's ImageNet evaluation (``Resize(256)``, ``CenterCrop(224)``,
                ``ToTensor``, ``Normalize``) on a PIL image: Pillow's antialiased bilinear
                resize, lengths truncated, crop at the rounded halves, x / 255 (:mod:`.pil`);
                ``torchvision:resize=232`` is the one of torchvision's V2 weights
``timm``        timm's ``transforms_imagenet_eval`` with the architecture's pretrained
                config: resize to floor(size / crop_pct), crop ``size``, its interpolation
                (the torchvision machinery above, with bicubic where the config says so)
==============  =====================================================================

A spec is ``NAME`` or ``NAME:key=value,...``: ``paddleclas:resize=40,crop=32``,
``torchvision:resize=232``, ``timm:crop_pct=1.0,size=288,interpolation=bicubic``.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..archs import get_arch
from ..errors import ArchitectureError, InputError
from .paddleclas import MEAN, STD, check_uint8_hwc, preprocess, to_chw
from .pil import center_crop_torchvision, normalize_torchvision, resize_short_pil

TIMM_VERSION = "1.0.31"
# architecture -> (timm model and pretrained tag, input size, crop_pct, interpolation): the
# pretrained configs of timm 1.0.31 for the weights our architectures correspond to (the WSL
# tags for the WSL models); mean and std are ImageNet's for all of them
TIMM_CONFIGS = {
    "ResNeXt50_32x4d": ("resnext50_32x4d.a1h_in1k", 224, 0.95, "bicubic"),
    "ResNeXt50_vd_32x4d": ("resnext50d_32x4d.bt_in1k", 224, 0.875, "bicubic"),
    "ResNeXt101_32x4d": ("resnext101_32x4d.fb_ssl_yfcc100m_ft_in1k", 224, 0.875, "bilinear"),
    "ResNeXt101_64x4d": ("resnext101_64x4d.c1_in1k", 224, 0.95, "bicubic"),
    "ResNeXt101_32x8d_wsl": ("resnext101_32x8d.fb_wsl_ig1b_ft_in1k", 224, 0.875, "bilinear"),
    "ResNeXt101_32x16d_wsl": ("resnext101_32x16d.fb_wsl_ig1b_ft_in1k", 224, 0.875, "bilinear"),
    "ResNeXt101_32x32d_wsl": ("resnext101_32x32d.fb_wsl_ig1b_ft_in1k", 224, 0.875, "bilinear"),
    "ResNet50": ("resnet50.a1_in1k", 224, 0.95, "bicubic"),
}
# timm's resolve_data_config({}) for a model without a pretrained config
TIMM_DEFAULTS = (224, 0.875, "bicubic")


class Preset(NamedTuple):
    """One evaluation pipeline: uint8 RGB (H, W, 3) -> float32 (3, crop, crop)."""

    name: str                 # paddleclas | torchvision | timm
    resize: int               # the short side after resizing
    crop: int                 # the side of the square centre crop
    interpolation: str        # bilinear | bicubic
    mean: tuple = MEAN
    std: tuple = STD
    origin: str = ""          # where the numbers come from

    @property
    def resampler(self) -> str:
        """'opencv' (PaddleClas: two taps, no antialiasing) or 'pillow' (antialiased)."""
        return "opencv" if self.name == "paddleclas" else "pillow"

    def __call__(self, image: np.ndarray) -> np.ndarray:
        what = f"{self.name} preprocessing input"
        if self.name == "paddleclas":
            return preprocess(image, "float32", self.resize, self.crop, what)
        check_uint8_hwc(image, what, channels=3)
        resized = resize_short_pil(image, self.resize, self.interpolation)
        return to_chw(normalize_torchvision(center_crop_torchvision(resized, self.crop),
                                            self.mean, self.std))                # 3, crop, crop

    def to_dict(self) -> dict:
        return {**self._asdict(), "mean": list(self.mean), "std": list(self.std),
                "resampler": self.resampler}

    def describe(self) -> str:
        return (f"{self.name}: resize short side {self.resize} ({self.interpolation}, "
                f"{self.resampler}), centre crop {self.crop}, /255, mean {tuple(self.mean)}, "
                f"std {tuple(self.std)}, CHW, float32" + (f"; {self.origin}" if self.origin else ""))


MAX_SIDE = 8192          # resize, crop and size of a spec (and timm's size / crop_pct), in pixels


def _timm_preset(arch, size=None, crop_pct=None, interpolation=None) -> Preset:
    name = None
    if arch is not None:
        try:
            name = get_arch(arch).name
        except ArchitectureError:
            name = str(arch)
    if name in TIMM_CONFIGS:
        model, size0, pct0, interp0 = TIMM_CONFIGS[name]
        origin = f"timm {TIMM_VERSION} pretrained config {model}"
    else:
        model, (size0, pct0, interp0) = None, TIMM_DEFAULTS
        origin = (f"timm {TIMM_VERSION} has no pretrained config for {name or 'this model'}: "
                  "its defaults")
    size, pct = int(size or size0), float(crop_pct or pct0)
    if not 0 < pct <= 1:
        raise InputError(f"--preprocess timm: crop_pct must be in (0, 1], found {pct}")
    if not size / pct < MAX_SIDE + 1:
        raise InputError(f"--preprocess timm: size / crop_pct = {size} / {pct:g} resizes the short "
                         f"side beyond {MAX_SIDE}")
    resize = math.floor(size / pct)                      # timm's scale_size
    return Preset("timm", resize, size, interpolation or interp0, origin=origin + f", crop_pct {pct}")


# preset name -> the keys its spec accepts (with the type of each value)
KEYS = {"paddleclas": {"resize": int, "crop": int},
        "torchvision": {"resize": int, "crop": int, "interpolation": str},
        "timm": {"size": int, "crop_pct": float, "interpolation": str}}
PRESETS = tuple(KEYS)


def parse_spec(spec: str):
    """(name, {key: value}) of 'NAME' or 'NAME:key=value,...', each value checked."""
    name, _, rest = str(spec).strip().partition(":")
    name = name.strip().lower()
    if name not in KEYS:
        raise InputError(f"--preprocess: unknown preset {name!r}; expected one of "
                         f"{', '.join(PRESETS)} (optionally NAME:key=value,...)")
    params = {}
    for item in filter(None, (i.strip() for i in rest.split(","))):
        key, eq, value = (t.strip() for t in item.partition("="))
        if not eq or key not in KEYS[name]:
            raise InputError(f"--preprocess {spec!r}: {item!r} is not key=value with a key of "
                             f"{name} ({', '.join(KEYS[name])})")
        try:
            params[key] = KEYS[name][key](value)
        except ValueError:
            raise InputError(f"--preprocess {spec!r}: {key} must be a {KEYS[name][key].__name__}, "
                             f"found {value!r}") from None
    for key in ("resize", "crop", "size"):
        if key in params and not 1 <= params[key] <= MAX_SIDE:
            raise InputError(f"--preprocess {spec!r}: {key} must be between 1 and {MAX_SIDE}, "
                             f"found {params[key]}")
    if "crop_pct" in params and not 0 < params["crop_pct"] <= 1:
        raise InputError(f"--preprocess {spec!r}: crop_pct must be in (0, 1], found {params['crop_pct']}")
    if params.get("interpolation", "bilinear") not in ("bilinear", "bicubic"):
        raise InputError(f"--preprocess {spec!r}: interpolation must be bilinear or bicubic, "
                         f"found {params['interpolation']!r}")
    return name, params


def get_preset(spec="paddleclas", arch=None) -> Preset:
    """The :class:`Preset` of ``spec`` ('paddleclas', 'torchvision:resize=232', 'timm', ...);
    ``arch`` picks timm's pretrained config."""
    name, p = parse_spec(spec)
    if name == "paddleclas":
        preset = Preset("paddleclas", p.get("resize", 256), p.get("crop", 224), "bilinear",
                        origin="PaddleClas eval config (ResizeImage resize_short, CropImage)")
    elif name == "torchvision":
        preset = Preset("torchvision", p.get("resize", 256), p.get("crop", 224),
                        p.get("interpolation", "bilinear"),
                        origin="torchvision ImageNet evaluation (Resize, CenterCrop, ToTensor, Normalize)")
    else:
        preset = _timm_preset(arch, p.get("size"), p.get("crop_pct"), p.get("interpolation"))
    if preset.name == "paddleclas" and preset.resize < preset.crop:
        raise InputError(f"--preprocess {spec!r}: PaddleClas crops {preset.crop} from a short side of "
                         f"{preset.resize}; resize must be at least crop")
    return preset


__all__ = ["KEYS", "PRESETS", "Preset", "TIMM_CONFIGS", "TIMM_DEFAULTS", "get_preset", "parse_spec"]
