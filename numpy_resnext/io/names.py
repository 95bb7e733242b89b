"""Paddle's names for ResNeXt tensors, mapped onto the canonical ones.

A weight file names the same tensors in one of six *schemes*:

===============  ===========================================  ================================
scheme           example (layer1, block 0, grouped 3x3)       written by
===============  ===========================================  ================================
canonical        ``layer1.0.conv2.weight``                    torchvision / timm / ``convert``
paddle_vision    ``layer1.0.conv2.weight``, BN ``_mean``      paddle.vision.models resnext*
ppcls            ``bb_0_0.conv1._conv.weight``                PaddleClas resnext(_vd).py
ppcls_param      ``res2a_branch2b_weights``                   PaddleClas ParamAttr names
ppcls_wsl        ``_conv1_0._conv1._conv.weight``             PaddleClas resnext101_wsl.py
ppcls_wsl_param  ``layer1.0.conv2.weight``, BN ``running_*``  its ParamAttr names (torch's)
===============  ===========================================  ================================

The maps are data-driven: :func:`name_map` walks the same conv/BN layer list as
:func:`numpy_resnext.params.param_shapes` and asks the scheme for each layer's file name,
so every architecture (custom ones too) maps the same way. Regular expressions appear
only where a file's names must be *recognised* before the architecture is known
(:func:`detect_scheme`, :func:`block_index`).

Paddle stores a Linear weight as [in, out] (y = x @ W); canonical is torch's [out, in].
Every scheme but ``canonical`` has ``fc_layout == "in_out"``; the loader transposes.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import NamedTuple

from ..archs import ArchConfig
from ..bounded import clip_list
from ..errors import WeightsError
from ..plan import BN_FIELDS, layer_plan

# tensors a file may hold that carry no model state (torch's BN step counter)
IGNORED_SUFFIXES = (".num_batches_tracked",)


class Scheme(NamedTuple):
    name: str
    description: str
    fc_layout: str            # "out_in" (torch) or "in_out" (Paddle Linear)
    bn_fields: tuple          # file names of weight, bias, running_mean, running_var
    pattern: "re.Pattern"     # what a name of this scheme looks like


_TV_LAYER = r"(conv1(\.\d)?|bn1|layer\d+\.\d+\.(conv[123]|bn[123]|downsample\.\d))"


def _torchvision_style(name, description, fc_layout, bn_fields) -> Scheme:
    """A scheme with torchvision's layer names and its own BN field names."""
    fields = "|".join(bn_fields)
    return Scheme(name, description, fc_layout, bn_fields,
                  re.compile(rf"^{_TV_LAYER}\.({fields})$|^fc\.(weight|bias)$"))


def _paddleclas_style(name, description, layers, bn_module, head) -> Scheme:
    """A PaddleClas structured-key scheme: LAYER._conv.weight, LAYER.<bn_module>.<field>
    (Paddle's BN field names) and <head>.weight / .bias (a Paddle Linear, [in, out])."""
    fields = ("weight", "bias", "_mean", "_variance")
    return Scheme(name, description, "in_out", fields, re.compile(
        rf"^({layers})\.(_conv\.weight|{bn_module}\.({'|'.join(fields)}))$|^{head}\.(weight|bias)$"))


SCHEMES = OrderedDict((s.name, s) for s in [
    _torchvision_style("canonical", "torchvision/timm names, fc.weight [out, in]", "out_in",
                       ("weight", "bias", "running_mean", "running_var")),
    _torchvision_style("paddle_vision", "paddle.vision.models resnext*/resnet* state_dict keys",
                       "in_out", ("weight", "bias", "_mean", "_variance")),
    _paddleclas_style("ppcls", "PaddleClas resnext.py / resnext_vd.py state_dict keys",
                      r"conv|conv1_[123]|bb_\d+_\d+\.(conv[012]|short)", "_batch_norm", "out"),
    Scheme("ppcls_param", "PaddleClas resnext.py / resnext_vd.py ParamAttr names "
           "(legacy .tar files)", "in_out",
           ("scale", "offset", "mean", "variance"),
           re.compile(r"^(res_conv1|conv1_[123]|res\d+[a-z]\d*_branch(2[abc]|1))_weights$"
                      r"|^bn(_conv1|v1_[123]|\d+[a-z]\d*_branch(2[abc]|1))_(scale|offset|mean|variance)$"
                      r"|^fc_(weights|offset)$")),
    _paddleclas_style("ppcls_wsl", "PaddleClas resnext101_wsl.py state_dict keys",
                      r"_conv_stem|_conv\d+_\d+\.(_conv[012]|_short\._conv)", "_bn", "_out"),
    _torchvision_style("ppcls_wsl_param", "PaddleClas resnext101_wsl.py ParamAttr names (torch's "
                       "names, fc.weight [in, out])", "in_out",
                       ("weight", "bias", "running_mean", "running_var")),
])


def get_scheme(name) -> Scheme:
    if isinstance(name, Scheme):
        return name
    if name not in SCHEMES:
        raise WeightsError(f"unknown naming scheme {name!r}; known: {', '.join(SCHEMES)}")
    return SCHEMES[name]


# --- the layers every scheme names ----------------------------------------------------
class Unit(NamedTuple):
    """One conv + BN pair: its role and its canonical names."""

    role: str          # "stem", "conv1", "conv2", "conv3" or "short"
    index: int         # stem: 0..2; block roles: position of the block in the layer plan
    stage: int         # block roles: 0-based stage (stem: -1)
    block: int         # block roles: index inside the stage (stem: -1)
    conv: str          # canonical conv prefix, e.g. "layer1.0.conv2"
    bn: str            # canonical BN prefix, e.g. "layer1.0.bn2"


def units(config: ArchConfig) -> list:
    """Every conv + BN pair of ``config`` in the order of ``param_shapes``."""
    plan = layer_plan(config)
    out = [Unit("stem", k, -1, -1, layer.name, layer.bn) for k, layer in enumerate(plan.stem)]
    for pos, b in enumerate(plan.blocks):
        for layer in b.convs:
            role = "short" if layer.role == "shortcut" else layer.role
            out.append(Unit(role, pos, b.stage, b.index, layer.name, layer.bn))
    return out


# --- per-scheme layer names -------------------------------------------------------------
_PPCLS_ROLE = {"conv1": "conv0", "conv2": "conv1", "conv3": "conv2", "short": "short"}
_PARAM_BRANCH = {"conv1": "branch2a", "conv2": "branch2b", "conv3": "branch2c", "short": "branch1"}
_WSL_ROLE = {"conv1": "_conv0", "conv2": "_conv1", "conv3": "_conv2", "short": "_short._conv"}


def ppcls_block_name(config: ArchConfig, stage: int, block: int) -> str:
    """PaddleClas's ParamAttr block name: res2a, res2b, ...; res4a, res4b1 ... in 101/152.

    ``stage`` is the 0-based index of layer{stage+1}; PaddleClas calls layerN "res{N+1}".
    PaddleClas numbers layer3's blocks (res4b1..res4b22) for 101 and 152 layers, where
    letters would run out; it uses letters everywhere else. A custom depth above 6 in that
    stage is numbered too, and any stage deeper than 26 blocks, so names stay unique.
    """
    numbered = (stage == 2 and config.depths[2] > 6) or config.depths[stage] > 26
    if block == 0:
        return f"res{stage + 2}a"
    return f"res{stage + 2}b{block}" if numbered else f"res{stage + 2}{chr(97 + block)}"


def _conv_and_bn(config: ArchConfig, scheme: Scheme, u: Unit):
    """(file name of the conv weight, file prefix of its BN, separator before BN fields)."""
    s = scheme.name
    if s in ("canonical", "paddle_vision", "ppcls_wsl_param"):
        return f"{u.conv}.weight", u.bn, "."
    if s == "ppcls":
        if u.role == "stem":
            p = "conv" if config.stem == "plain" else f"conv1_{u.index + 1}"
        else:
            p = f"bb_{u.stage}_{u.block}.{_PPCLS_ROLE[u.role]}"
        return f"{p}._conv.weight", f"{p}._batch_norm", "."
    if s == "ppcls_param":
        if u.role == "stem":
            if config.stem == "plain":
                return "res_conv1_weights", "bn_conv1", "_"
            return f"conv1_{u.index + 1}_weights", f"bnv1_{u.index + 1}", "_"
        block = ppcls_block_name(config, u.stage, u.block)
        branch = _PARAM_BRANCH[u.role]
        return f"{block}_{branch}_weights", f"bn{block[3:]}_{branch}", "_"
    if s == "ppcls_wsl":
        if config.stem == "deep":
            raise WeightsError("the PaddleClas WSL naming has no deep (vd) stem; "
                               f"{config.name} cannot be named in scheme ppcls_wsl")
        p = "_conv_stem" if u.role == "stem" else f"_conv{u.stage + 1}_{u.block}.{_WSL_ROLE[u.role]}"
        return f"{p}._conv.weight", f"{p}._bn", "."
    raise WeightsError(f"unknown naming scheme {s!r}")


def fc_names(scheme) -> tuple:
    """File names of the head's weight and bias."""
    return {"ppcls": ("out.weight", "out.bias"),
            "ppcls_param": ("fc_weights", "fc_offset"),
            "ppcls_wsl": ("_out.weight", "_out.bias")}.get(get_scheme(scheme).name,
                                                          ("fc.weight", "fc.bias"))


def name_map(config: ArchConfig, scheme) -> "OrderedDict[str, str]":
    """Canonical name -> the scheme's file name, for every tensor of ``config``.

    The keys are exactly those of ``param_shapes(config)`` in the same order.
    """
    scheme = get_scheme(scheme)
    names = OrderedDict()
    for u in units(config):
        conv, bn, sep = _conv_and_bn(config, scheme, u)
        names[f"{u.conv}.weight"] = conv
        for canonical, field in zip(BN_FIELDS, scheme.bn_fields):
            names[f"{u.bn}.{canonical}"] = f"{bn}{sep}{field}"
    weight, bias = fc_names(scheme)
    names["fc.weight"], names["fc.bias"] = weight, bias
    return names


# --- recognising a file's scheme --------------------------------------------------------
def is_ignored(name: str) -> bool:
    """Tensors that carry no model state (torch's BN ``num_batches_tracked``)."""
    return name.endswith(IGNORED_SUFFIXES)


def scheme_scores(names) -> "OrderedDict[str, int]":
    """How many of ``names`` look like each scheme's names."""
    names = [n for n in names if not is_ignored(n)]
    return OrderedDict((s.name, sum(1 for n in names if s.pattern.match(n))) for s in SCHEMES.values())


_GENERATED = re.compile(r"^[a-z0-9_]+_\d+\.(w|b)_\d+$")


def detect_scheme(names, fc_weight_shape=None, fc_bias_shape=None, paddle_file=False):
    """The scheme ``names`` are written in, or a WeightsError with examples.

    torch-style names are shared by canonical files (fc.weight [out, in]) and PaddleClas's
    WSL ParamAttr names (fc.weight [in, out]); the head's shape decides, and when it is
    square (or absent) the file's origin does: a Paddle file is taken as [in, out].
    """
    names = [n for n in names if not is_ignored(n)]
    if not names:
        raise WeightsError("the weights hold no tensors")
    scores = scheme_scores(names)
    best = max(scores.values())
    if best == 0:
        sample = clip_list(names[:6], 6)
        hint = ""
        # (length-capped: the pattern's two adjacent digit runs backtrack on long names)
        if sum(1 for n in names if len(n) < 200 and _GENERATED.match(n)) > len(names) // 2:
            # paddle.vision layers get names from a per-process counter (conv2d_0.w_0)
            hint = ("; these are names Paddle generated per process, which do not say which "
                    "layer a tensor belongs to: load the .pdparams written by "
                    "paddle.save(model.state_dict()) instead")
        raise WeightsError(f"unrecognised tensor names (e.g. {sample}); expected one of the "
                           f"naming schemes {', '.join(SCHEMES)} (see numpy_resnext.io.names){hint}")
    winners = [s for s, v in scores.items() if v == best]
    if set(winners) == {"canonical", "ppcls_wsl_param"}:
        return _torch_style(fc_weight_shape, fc_bias_shape, paddle_file)
    if len(winners) > 1:
        # e.g. a file with no BN statistics: paddle_vision and canonical look alike
        if "paddle_vision" in winners and "canonical" in winners:
            return "paddle_vision" if paddle_file else "canonical"
        raise WeightsError(f"tensor names fit several schemes equally well ({', '.join(winners)})")
    return winners[0]


def _torch_style(w_shape, b_shape, paddle_file):
    if w_shape is not None and len(w_shape) == 2 and w_shape[0] != w_shape[1]:
        if b_shape is not None and len(b_shape) == 1:
            if w_shape[0] == b_shape[0]:
                return "canonical"
            if w_shape[1] == b_shape[0]:
                return "ppcls_wsl_param"
    return "ppcls_wsl_param" if paddle_file else "canonical"


# --- block positions and stems, read off names before the architecture is known ----------
_BLOCK_RE = {
    "canonical": re.compile(r"^layer(\d+)\.(\d+)\."),
    "paddle_vision": re.compile(r"^layer(\d+)\.(\d+)\."),
    "ppcls_wsl_param": re.compile(r"^layer(\d+)\.(\d+)\."),
    "ppcls": re.compile(r"^bb_(\d+)_(\d+)\."),
    "ppcls_wsl": re.compile(r"^_conv(\d+)_(\d+)\."),
    "ppcls_param": re.compile(r"^(?:res|bn)(\d+)([a-z])(\d*)_branch"),
}
_STAGE_BASE = {"canonical": 1, "paddle_vision": 1, "ppcls_wsl_param": 1, "ppcls": 0,
               "ppcls_wsl": 1, "ppcls_param": 2}

_DEEP_STEM = {"canonical": "conv1.0.weight", "paddle_vision": "conv1.0.weight",
              "ppcls_wsl_param": "conv1.0.weight", "ppcls": "conv1_1._conv.weight",
              "ppcls_param": "conv1_1_weights", "ppcls_wsl": None}


def block_index(scheme, name):
    """(stage, block) of a file tensor name, 0-based, or None outside the blocks."""
    scheme = get_scheme(scheme).name
    m = _BLOCK_RE[scheme].match(name)
    if not m:
        return None
    stage = _index(m.group(1)) - _STAGE_BASE[scheme]
    if scheme == "ppcls_param":
        letter, number = m.group(2), m.group(3)
        block = _index(number) if number else ord(letter) - 97
    else:
        block = _index(m.group(2))
    return stage, block


def _index(digits: str) -> int:
    """A stage/block number; 10 or more digits read as 10**9 (far beyond any network, and
    a 5,000-digit index would otherwise cost Python's int() its digit limit)."""
    return int(digits) if len(digits) < 10 else 10 ** 9


def stem_kind(scheme, names) -> str:
    """"deep" when the names hold the vd stem's first 3x3 conv, else "plain"."""
    marker = _DEEP_STEM[get_scheme(scheme).name]
    return "deep" if marker is not None and marker in set(names) else "plain"
