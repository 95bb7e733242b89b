"""Real torchvision 0.28 and timm 1.0.31 models for the live lanes, in float64, with random
weights and trained-looking BatchNorm.

The weights follow tests/_se_oracle.py's recipe (:func:`_se_oracle.draw`): convolutions
He-normal with every output channel scaled by 2**k (k in -9..1, so BN variances span
decades), BN scales of both signs, running statistics calibrated layer by layer on a
separate batch and then moved, so eval mode does not re-normalise the test input exactly.
The model code is the libraries' own (``torchvision.models.resnext50_32x4d()``,
``timm.create_model(...)``); nothing of it is rewritten here.

Frameworks are imported inside functions only (tests/_torchvision.py puts the stand-in
torchvision needs with this torch build in place, and skips when they are absent).
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

import _se_oracle as oracle
from _torchvision import timm as need_timm, torchvision as need_torchvision

SHAPE = (2, 3, 67, 45)          # odd: every stride-2 layer and the vd shortcut's ceil-mode pool meet odd sizes
# model key -> (library, its name, numpy-resnext's architecture)
MODELS = OrderedDict([
    ("tv_resnet50", ("torchvision", "resnet50", "ResNet50")),
    ("tv_resnext50_32x4d", ("torchvision", "resnext50_32x4d", "ResNeXt50_32x4d")),
    ("tv_resnext101_32x8d", ("torchvision", "resnext101_32x8d", "ResNeXt101_32x8d_wsl")),
    ("tv_resnext101_64x4d", ("torchvision", "resnext101_64x4d", "ResNeXt101_64x4d")),
    ("timm_resnext50d_32x4d", ("timm", "resnext50d_32x4d", "ResNeXt50_vd_32x4d")),
    ("timm_resnext50_32x4d", ("timm", "resnext50_32x4d", "ResNeXt50_32x4d")),
    ("timm_resnext101_32x4d", ("timm", "resnext101_32x4d", "ResNeXt101_32x4d")),
    ("timm_resnet50d", ("timm", "resnet50d", "resnet50d")),      # a custom config of the same math
])
# timm's anti-aliased networks: their state dicts are those of resnet50, resnet50d and
# seresnext101d_32x8d (the pools hold no weights); numpy-resnext must refuse them
ANTI_ALIASED = ("resnetaa50", "resnetblur50", "resnetaa50d", "seresnextaa101d_32x8d")


def library(name):
    """(torch, torchvision or timm); skips with the reason when one is missing."""
    lib = need_torchvision() if name == "torchvision" else need_timm()
    import torch                                              # optional: the oracle's framework
    return torch, lib


def create(lib_name, name, **kwargs):
    """The library's model, untouched (float32, its own initialisation), in eval mode."""
    _, lib = library(lib_name)
    if lib_name == "torchvision":
        return getattr(lib.models, name)(**kwargs).eval()
    return lib.create_model(name, pretrained=False, **kwargs).eval()


def build(key, seed=0):
    """(model in float64 with the recipe's weights and calibrated BN, test input x)."""
    return randomise(create(*MODELS[key][:2]), seed)


def randomise(model, seed=0, shape=SHAPE):
    """(``model`` in float64 with the recipe's weights and calibrated BN, test input x of
    ``shape``)."""
    import torch                                              # optional: the oracle's framework
    values = oracle.draw(oracle._torch_entries(model), seed)
    model = model.double()
    missing, unexpected = model.load_state_dict({k: torch.from_numpy(v) for k, v in values.items()},
                                                strict=False)
    assert not unexpected and all(k.endswith("num_batches_tracked") for k in missing), missing[:4]
    x, calibration = oracle.inputs(shape, seed)
    oracle._calibrate_torch(model, calibration, seed)
    for m in model.modules():                                 # trained counters, kept by conversion
        if isinstance(m, torch.nn.BatchNorm2d):
            m.num_batches_tracked.fill_(100_000 + seed)
    return model.eval(), x


def state(model):
    """The state dict as NumPy arrays (float64 weights, int64 counters), in its order."""
    return OrderedDict((k, v.detach().numpy().copy()) for k, v in model.state_dict().items())


def logits(model, x):
    import torch                                              # optional: the oracle's framework
    with torch.no_grad():
        return model(torch.from_numpy(np.asarray(x))).numpy()


def out_of_place(model):
    """Every ReLU made out-of-place (an FX feature extractor returns the tensors themselves,
    which an in-place ReLU would overwrite)."""
    import torch                                              # optional: the oracle's framework
    for m in model.modules():
        if isinstance(m, torch.nn.ReLU):
            m.inplace = False
    return model


def hook_capture(model, x, clone=True):
    """What a user's forward hooks give: every leaf module and block, NAME#k for a module
    called k times, copied at hook time (or not: ``clone=False``)."""
    import torch                                              # optional: the oracle's framework
    tensors, calls, handles = OrderedDict(), {}, []

    def record(name, out):
        n = calls[name] = calls.get(name, 0) + 1
        if n == 2:
            tensors[f"{name}#1"] = tensors.pop(name)
        value = out.detach().clone() if clone else out.detach()
        tensors[name if n == 1 else f"{name}#{n}"] = value
    for name, m in model.named_modules():
        if name and (next(m.children(), None) is None or name.count(".") == 1 and name.startswith("layer")):
            handles.append(m.register_forward_hook(lambda _m, _i, out, n=name: record(n, out)))
    with torch.no_grad():
        model(torch.from_numpy(np.asarray(x)))
    for h in handles:
        h.remove()
    return OrderedDict((k, v.numpy()) for k, v in tensors.items())
