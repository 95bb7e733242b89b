"""torchvision and timm for the oracle lanes, importable beside the torch 2.13.0 CPU build.

torchvision 0.28's compiled operators do not load with this torch build ("operator
torchvision::nms does not exist", raised while importing torchvision/_meta_registrations.py);
the transforms and model code need none of them. A stand-in module at
``sys.modules['torchvision._meta_registrations']``, put there before the first import,
lets ``import torchvision`` (and timm, which imports it) succeed. Install with
``pip install --no-deps torchvision==0.28.0 timm==1.0.31`` (plus pyyaml, huggingface_hub).
"""

import sys
import types

from _onnx_lane import optional as _optional

def torchvision():
    """The real torchvision (skips with the reason when it or torch is missing)."""
    _optional("torch", "the torchvision lane needs pip install torch==2.13.0 (CPU build)")
    sys.modules.setdefault("torchvision._meta_registrations",
                           types.ModuleType("torchvision._meta_registrations"))
    return _optional("torchvision", "pip install --no-deps torchvision==0.28.0")


def timm():
    """The real timm (skips with the reason when it, torch or torchvision is missing)."""
    torchvision()
    return _optional("timm", "pip install --no-deps timm==1.0.31 (plus pyyaml, huggingface_hub)")
