"""A PyTorch model's tensors under numpy-resnext's names, for ``compare`` with no map.

::

    import numpy_resnext as nrx
    nrx.torch_capture(model, x, "capture.npz")      # torchvision's or timm's ResNet / ResNeXt
    # numpy-resnext compare golden.npz capture.npz --strict

torch is an optional dependency: it is imported when :func:`torch_capture` is called
(``pip install 'numpy-resnext[torch]'``). What a hand-written forward hook gets wrong, this
does once:

- **copies at hook time**: torchvision's and timm's ReLUs work in place and
  ``out += identity`` overwrites bn3's output, so a hook that keeps the output object sees
  the BN output replaced by the ReLU's (and ``compare`` reports a BN bug that is not there);
- **reused modules**: torchvision's Bottleneck calls one ``relu`` three times; each call is
  recorded (``NAME#1`` .. ``NAME#3``) and renamed (relu1, relu2, the block output);
- **the residual adds**, which are no module: the input of each block's last ReLU call,
  recorded by a pre-hook, is the block's ``add``;
- **canonical names**, in the reference's order, through the shipped name map of the
  model's family (:mod:`numpy_resnext.maps`), so the file compares with no ``--map``.

The architecture is read off the model's state dict (names and shapes, as a weight file's
are); a model numpy-resnext does not implement is refused: a state dict it cannot read as a
ResNeXt, attention modules, anti-aliasing (timm's ``aa`` layers, blur pools) or dilated
convolutions. Squeeze-and-excitation (timm's ``se``, legacy SENet's ``se_module``) is
captured, the squeeze as the input of its ``fc1`` (a mean inside the SE forward, no module);
legacy SENet models are named through the ``senet`` map.
"""

from __future__ import annotations

import os
from collections import OrderedDict

import numpy as np

from .._checks import check_finite
from .._files import check_output_path, save_npz
from .._optional import require
from ..errors import InputError
from ..io import load_weights
from ..shapes import check_compute, describe_run
from .names import load_map

__all__ = ["torch_capture"]


def _not_activations(torch):
    """Module types inside a block that are not its activations."""
    nn = torch.nn
    return (nn.Conv2d, nn.BatchNorm2d, nn.Identity, nn.Dropout, nn.MaxPool2d, nn.AvgPool2d)


def _plan_of(model, torch):
    """The layer plan of ``model``'s state dict, read from names and shapes alone."""
    zero = np.zeros((), np.float32)
    shapes = OrderedDict((k, np.broadcast_to(zero, tuple(v.shape))) for k, v in model.state_dict().items()
                         if torch.is_floating_point(v))
    return load_weights(shapes, strict=False).plan          # names and shapes are all it needs


def _refuse_what_we_lack(model, torch):
    """Modules numpy-resnext does not implement (they hold no weights, or extra ones)."""
    nn, found = torch.nn, {}
    for name, m in model.named_modules():
        leaf = name.rsplit(".", 1)[-1]
        if leaf == "attn" and not isinstance(m, nn.Identity):       # SE ("se", "se_module") is implemented
            found.setdefault("attention", []).append(name)
        elif (leaf == "aa" and not isinstance(m, nn.Identity)) or "blur" in type(m).__name__.lower():
            found.setdefault("anti-aliased downsampling", []).append(name)
        elif isinstance(m, nn.Conv2d) and tuple(m.dilation) != (1, 1):
            found.setdefault("dilation", []).append(name)
    if found:
        raise InputError("torch_capture: the model has layers numpy-resnext does not implement: "
                         + "; ".join(f"{what} ({', '.join(names[:2])}{', ...' if len(names) > 2 else ''})"
                                     for what, names in found.items()))


def torch_capture(model, x, path=None, *, map_name=None, allow_nonfinite=False):
    """Run ``model`` (an ``nn.Module`` with torchvision's or timm's ResNet names) once on
    ``x`` in eval mode without gradients and return OrderedDict canonical name -> NumPy
    array: ``input``, every tensor numpy-resnext's golden dump holds (convolutions, BNs,
    ReLUs, pools, residual adds, block outputs, ``avgpool``, ``fc``), in execution order.

    x:        an (N, 3, H, W) NumPy array or torch tensor, of the model's dtype.
    path:     also write them to this .npz (atomically), for ``numpy-resnext compare``.
    map_name: "torchvision", "timm" or "senet" (default: senet with a ``layer0`` stem, timm
              when the blocks have ``act1`` modules).
    allow_nonfinite: run an ``x`` holding NaN or infinite values (refused by default, as
              ``forward`` and ``golden_dump`` refuse them).

    What the copies take is estimated first, as for a golden dump of the same plan
    (:func:`numpy_resnext.shapes.check_compute`): over the memory budget, nothing runs.
    """
    torch = require("torch", "torch_capture (a torch model's tensors)")
    _refuse_what_we_lack(model, torch)
    plan = _plan_of(model, torch)
    blocks = {b.name for b in plan.blocks}
    modules = dict(model.named_modules())
    if map_name is None:
        map_name = ("senet" if "layer0" in modules else
                    "timm" if f"{plan.blocks[0].name}.act1" in modules else "torchvision")
    x_t = torch.as_tensor(x)
    shape = tuple(x_t.shape)
    if len(shape) != 4 or shape[1] != 3 or not x_t.is_floating_point():
        raise InputError(f"torch_capture: x must be an (N, 3, H, W) batch of floats, found "
                         f"{x_t.dtype} of shape {shape}")
    if path is not None:
        check_output_path(path, "torch_capture: path", (".npz",))
    dtype = {2: "float16", 4: "float32"}.get(x_t.element_size(), "float64")
    check_compute(plan, shape, dtype, "golden", what=f"torch_capture of {describe_run(plan, shape, dtype)}")
    tensors, calls, adds, handles = OrderedDict(), {}, {}, []

    def copy(value):
        return value.detach().to("cpu", copy=True).numpy()

    tensors["x"] = copy(x_t)                      # FX's name of the input; the map renames it
    if not allow_nonfinite:
        check_finite(tensors["x"], "torch_capture: x", "pass allow_nonfinite=True")

    def record(name, value):
        n = calls[name] = calls.get(name, 0) + 1
        if n == 2:                                                   # called again: number every call
            tensors[f"{name}#1"] = tensors.pop(name)
        tensors[name if n == 1 else f"{name}#{n}"] = copy(value)

    def last_input(block, value):                                   # the add is the last ReLU's input
        adds[block] = copy(value)

    for name, m in modules.items():
        if not name or isinstance(m, torch.nn.Identity):
            continue
        se = name.endswith((".se", ".se_module"))                  # its output: the scaled branch
        if next(m.children(), None) is None or name in blocks or se:
            handles.append(m.register_forward_hook(lambda _m, _i, out, n=name: record(n, out)))
        if name.endswith((".se.fc1", ".se_module.fc1")):           # the SE squeeze: fc1's input
            handles.append(m.register_forward_pre_hook(lambda _m, args, n=name: record(f"{n}:input", args[0])))
        block = name.rsplit(".", 1)[0]
        leaf = next(m.children(), None) is None
        if block in blocks and leaf and not isinstance(m, _not_activations(torch)):
            # an activation of the block (torchvision's relu, timm's act1..act3): the last
            # one called receives the residual add
            handles.append(m.register_forward_pre_hook(lambda _m, args, b=block: last_input(b, args[0])))
    try:
        with torch.no_grad():
            was_training = model.training
            model.eval()
            model(x_t)
            model.train(was_training)
    finally:
        for h in handles:
            h.remove()
    for block, value in adds.items():
        tensors[f"{block}.add"] = value
    name_map = load_map(map_name)
    mapped, _, _ = name_map.apply(tensors, "torch_capture", reference=plan.names())
    order = [name_map.translate("x")] + plan.names()
    absent = [n for n in order if n not in mapped]
    if absent:
        raise InputError(f"torch_capture: {len(absent)} of {len(order)} tensors were not captured "
                         f"({', '.join(absent[:4])}{' ...' if len(absent) > 4 else ''}): the model's "
                         f"modules are not named as {map_name}'s ResNets (map_name=...?)")
    out = OrderedDict((n, mapped[n]) for n in order)
    if path is not None:
        save_npz(os.fspath(path), out)
    return out
