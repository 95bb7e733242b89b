"""Parameter counts and MACs of the SE-ResNeXt family, from the frameworks' own models.

:func:`counts` builds a model of tests/_se_oracle.py (timm in this process, PaddleClas in a
fresh one through tests/_se_paddle.py) and runs one float32 forward on 1x3x224x224 with a
hook on every Conv2d / Linear. MACs of a layer = its output values x its fan-in (C/G x R x
S for a convolution, in_features for a Linear); the SE reduce and expand are layers like any
other; elementwise work (BN, ReLU, pooling, the sigmoid, the SE's channel-wise scale) is not
counted. Trainable parameters exclude the BN running statistics, which are counted apart.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path

import numpy as np

from _se_oracle import MODELS, REFERENCE_MODELS, run_worker, timm_module


def _timm_counts(source: str) -> dict:
    """Like tests/_se_paddle.py's ``counts``, for a timm model (float32, 1x3x224x224)."""
    import torch                                              # optional: the oracle's framework
    timm = timm_module()
    model = timm.create_model(source, pretrained=False).eval()
    rows, handles = [], []
    for name, m in model.named_modules():
        if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
            def hook(layer, inputs, output, name=name):
                w = tuple(layer.weight.shape)                 # K, C/G, R, S or out, in
                per_output = int(np.prod(w[1:]))             # multiply-accumulates per output value
                macs = int(np.prod(output.shape[1:])) * per_output
                params = int(np.prod(w)) + (layer.bias.numel() if layer.bias is not None else 0)
                rows.append(dict(name=name, kind=type(layer).__name__, params=int(params), macs=macs,
                                 out=list(output.shape[1:])))
            handles.append(m.register_forward_hook(hook))
    with torch.no_grad():
        model(torch.zeros(1, 3, 224, 224))
    for h in handles:
        h.remove()
    sd = model.state_dict()
    trainable = {k for k, _ in model.named_parameters()}
    return dict(framework=f"timm {timm.__version__}, torch {torch.__version__}", notes=[], ran=True,
                trainable=int(sum(v.numel() for k, v in sd.items() if k in trainable)),
                statistics=int(sum(v.numel() for k, v in sd.items()
                                   if k not in trainable and not k.endswith("num_batches_tracked"))),
                names=[[k, k, list(v.shape)] for k, v in sd.items() if not k.endswith("num_batches_tracked")],
                rows=rows)


def counts(name: str) -> dict:
    """{framework, notes, ran, trainable, statistics, names [[key, ParamAttr name, shape]],
    rows [{name, kind, params, macs, out}]} of a key of MODELS or REFERENCE_MODELS. MACs of
    each Conv2d / Linear at 1x3x224x224 = output values x (C/G x R x S) or x in_features; the
    SE reduce and expand are counted like any other layer; elementwise work (BN, ReLU, pooling,
    the sigmoid and the SE's channel-wise scale) is not counted."""
    framework, source = {**MODELS, **REFERENCE_MODELS}[name]
    if framework == "timm":
        return _timm_counts(source)
    kind, fn = source
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "counts.json"
        run_worker("counts", kind, fn, out)
        return json.loads(out.read_text())


def stage_of(layer: str) -> str:
    """"stem", "layer1".."layer4" or "head" for a module name of any of the three namings."""
    if m := re.match(r"^layer([1-9])\.", layer):
        return f"layer{m.group(1)}"
    if m := re.match(r"^bb_(\d+)_", layer):
        return f"layer{int(m.group(1)) + 1}"
    return "head" if layer in ("fc", "out", "last_linear") else "stem"


def is_se(layer: str) -> bool:
    return any(part in f".{layer}." for part in (".se.", ".se_module.", ".scale."))


def paddle_declared_counts(name: str) -> dict:
    """counts() of a PaddleClas model exactly as the library declares it (no repair)."""
    kind, fn = MODELS[name][1]
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "counts.json"
        run_worker("counts", kind, fn, out, "declared")
        return json.loads(out.read_text())
