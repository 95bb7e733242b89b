"""The names each destination framework expects, for writing weights.

Canonical names *are* torchvision's for the plain and WSL networks and timm's for the
vd ones (see :mod:`numpy_resnext.params`), so for PyTorch files the mapping is the
identity plus the BatchNorm step counter ``num_batches_tracked`` that every torch
state dict carries (written as 0; readers here ignore it):

=============  ===================================================  ======================
scheme         covers                                               default for
=============  ===================================================  ======================
torchvision    plain stem only: resnet50, resnext50_32x4d,          .pth / .safetensors of
               resnext101_32x8d, resnext101_64x4d (WSL-Images too)  plain and WSL models
timm           plain and 'd' models (deep stem ``conv1.0..6``,       .pth / .safetensors of
               avg-pool shortcut ``downsample.1/.2``)                vd models
ppcls          PaddleClas resnext.py / resnext_vd.py keys            .pdparams of PaddleClas
                                                                    ResNeXt 32x4d / 64x4d
ppcls_wsl      PaddleClas resnext101_wsl.py keys                     .pdparams of the WSL
                                                                    models
paddle_vision  paddle.vision.models resnet / resnext keys           .pdparams of ResNet50
                                                                    and custom networks
canonical      this package's names                                 .npz
=============  ===================================================  ======================

PaddleClas's ResNet50 (resnet.py) uses a naming this package does not model, and
custom networks exist in no PaddleClas file, so both default to paddle.vision's names,
which paddle.vision's ``resnet50`` / ``ResNet(BottleneckBlock, depth, groups=C,
width=d)`` accept.
"""

from __future__ import annotations

from collections import OrderedDict

from ..archs import ARCHS, ArchConfig
from ..errors import WeightsError
from ..plan import layer_plan
from . import infer as I
from . import names as N

WRITE_SCHEMES = ("torchvision", "timm", "ppcls", "ppcls_wsl", "paddle_vision", "canonical")
TORCH_FORMATS = (".pth", ".pt", ".bin", ".ckpt", ".safetensors")

__all__ = ["WRITE_SCHEMES", "default_scheme", "file_state", "registry_base"]


def registry_base(config: ArchConfig):
    """The registry network with ``config``'s math, whatever its head, else None."""
    for cfg in ARCHS.values():
        if all(getattr(cfg, f) == getattr(config, f) for f in I.MATH_FIELDS
               if f != "num_classes"):
            return cfg
    return None


def default_scheme(config: ArchConfig, ext: str):
    """(scheme, why) for writing ``config`` to a file with extension ``ext``."""
    if ext in TORCH_FORMATS:
        if config.stem == "deep":
            return "timm", "vd models exist in timm (resnext50d_32x4d ...), not torchvision"
        return "torchvision", "torchvision's names (timm's are the same for plain stems)"
    if ext == ".pdparams":
        base = registry_base(config)
        if base is not None and base.name.endswith("_wsl"):
            return "ppcls_wsl", f"PaddleClas's {base.name} (resnext101_wsl.py) keys"
        if base is not None and base.name != "ResNet50":
            return "ppcls", f"PaddleClas's {base.name} keys"
        return "paddle_vision", ("paddle.vision names: PaddleClas has no such ResNeXt"
                                 if base is None else
                                 "paddle.vision's resnet50 (PaddleClas's ResNet50 names "
                                 "are not modelled here)")
    return "canonical", "canonical names"


def file_state(params, config: ArchConfig, scheme: str):
    """(OrderedDict file name -> array, fc layout) for canonical ``params`` in ``scheme``.

    torch schemes add ``<bn>.num_batches_tracked`` (int64 0) after each BN's running_var,
    in torch's state_dict order; Paddle schemes store the head [in, out].
    """
    import numpy as np
    if scheme not in WRITE_SCHEMES:
        raise WeightsError(f"unknown naming scheme {scheme!r} for writing; known: "
                           f"{', '.join(WRITE_SCHEMES)}")
    if scheme == "torchvision" and config.stem == "deep":
        raise WeightsError(f"{config.name} has a deep (vd) stem, which torchvision has no "
                           "model for; use --names timm")
    if scheme == "ppcls_wsl" and config.stem == "deep":
        raise WeightsError(f"{config.name} has a deep stem; PaddleClas's WSL names have none")
    out = OrderedDict()
    if scheme in ("torchvision", "timm", "canonical"):
        counters = {f"{bn}.running_var": f"{bn}.num_batches_tracked"
                    for bn in (c.bn for c in layer_plan(config).convs())}
        for name, value in params.items():
            out[name] = value
            if scheme != "canonical" and name in counters:
                out[counters[name]] = np.zeros((), np.int64)
        return out
    fmap = N.name_map(config, scheme)
    for canonical, fname in fmap.items():
        value = params[canonical]
        out[fname] = np.ascontiguousarray(value.T) if canonical == "fc.weight" else value
    return out
