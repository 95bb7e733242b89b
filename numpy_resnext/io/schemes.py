"""The naming schemes of ResNeXt weight files, for reading and writing, in one table.

A weight file names the same tensors in one of these *schemes*:

===============  ===========================================  =========================
scheme           example (layer1, block 0, grouped 3x3)       read / written
===============  ===========================================  =========================
canonical        ``layer1.0.conv2.weight``                    both (.npz)
paddle_vision    ``layer1.0.conv2.weight``, BN ``_mean``      both (.pdparams)
ppcls            ``bb_0_0.conv1._conv.weight``                both (.pdparams)
ppcls_param      ``res2a_branch2b_weights``                   read (legacy .tar files)
ppcls_wsl        ``_conv1_0._conv1._conv.weight``             both (.pdparams)
ppcls_wsl_param  ``layer1.0.conv2.weight``, BN ``running_*``  read
torchvision      canonical + ``num_batches_tracked``          written (.pth, .safetensors)
timm             canonical + ``num_batches_tracked``          written (.pth, .safetensors)
===============  ===========================================  =========================

Canonical names *are* torchvision's for the plain and WSL networks and timm's for the vd
ones (see :mod:`numpy_resnext.params`): a torch file is read as ``canonical`` (its BN step
counters ``num_batches_tracked`` are ignored) and written as ``torchvision`` or ``timm``,
which add them (as 0). PaddleClas writes resnext.py / resnext_vd.py (``ppcls``) and
resnext101_wsl.py (``ppcls_wsl``) keys and their ParamAttr names (``*_param``);
paddle.vision writes torchvision's layer names with Paddle's BN fields. PaddleClas's
ResNet50 (resnet.py) uses a naming not modelled here, and custom networks exist in no
PaddleClas file: both are written with paddle.vision's names, which its ``resnet50`` /
``ResNet(BottleneckBlock, depth, groups=C, width=d)`` accept.

The maps are data-driven: :func:`name_map` walks the layer plan (the same conv/BN list as
:func:`numpy_resnext.params.param_shapes`) and asks the scheme's layer naming for each
layer's file name, so every architecture (custom ones too) maps the same way. Regular
expressions appear only where a file's names must be *recognised* before the architecture
is known (:func:`detect_scheme`, :func:`block_index`).

Paddle stores a Linear weight as [in, out] (y = x @ W); canonical is torch's [out, in].
Every Paddle scheme has ``fc_layout == "in_out"``; the loader transposes.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import NamedTuple

import numpy as np

from ..archs import ArchConfig, registered
from ..bounded import clip_list
from ..errors import WeightsError
from ..plan import BN_FIELDS, as_plan

# tensors a file may hold that carry no model state (torch's BN step counter)
IGNORED_SUFFIXES = (".num_batches_tracked",)
TORCH_FORMATS = (".pth", ".pt", ".bin", ".ckpt", ".safetensors")
TORCH_BN = ("weight", "bias", "running_mean", "running_var")
PADDLE_BN = ("weight", "bias", "_mean", "_variance")


class Scheme(NamedTuple):
    name: str
    description: str
    layers: str               # how layers are named: a key of LAYER_NAMING
    fc_layout: str            # "out_in" (torch) or "in_out" (Paddle Linear)
    bn_fields: tuple          # file names of weight, bias, running_mean, running_var
    pattern: "re.Pattern | None"   # what a name looks like; None: written, read as canonical
    written_to: tuple = ()    # the extensions it is written to (none: read only)
    counters: bool = False    # num_batches_tracked (int64 0) after each BN's running_var
    no_deep_stem: str = ""    # why it cannot name a deep (vd) stem, if it cannot


class LayerNaming(NamedTuple):
    """What a layer naming puts where, for recognising a file before its architecture."""

    block: "re.Pattern"       # (stage, block) of a block tensor's name
    stage_base: int           # the number the names give the first stage
    deep_stem: str | None     # the name of the vd stem's first 3x3 conv weight
    head: tuple               # the head's weight and bias


_TV_LAYER = r"(conv1(\.\d)?|bn1|layer\d+\.\d+\.(conv[123]|bn[123]|downsample\.\d))"
LAYER_NAMING = {
    "torch": LayerNaming(re.compile(r"^layer(\d+)\.(\d+)\."), 1, "conv1.0.weight",
                         ("fc.weight", "fc.bias")),
    "ppcls": LayerNaming(re.compile(r"^bb_(\d+)_(\d+)\."), 0, "conv1_1._conv.weight",
                         ("out.weight", "out.bias")),
    "ppcls_param": LayerNaming(re.compile(r"^(?:res|bn)(\d+)([a-z])(\d*)_branch"), 2,
                               "conv1_1_weights", ("fc_weights", "fc_offset")),
    "ppcls_wsl": LayerNaming(re.compile(r"^_conv(\d+)_(\d+)\."), 1, None,
                             ("_out.weight", "_out.bias")),
}


def _torchvision_style(name, description, fc_layout, bn_fields, recognised=True,
                       **more) -> Scheme:
    """A scheme with torchvision's layer names and its own BN field names."""
    fields = "|".join(bn_fields)
    pattern = re.compile(rf"^{_TV_LAYER}\.({fields})$|^fc\.(weight|bias)$") if recognised else None
    return Scheme(name, description, "torch", fc_layout, bn_fields, pattern, **more)


def _paddleclas_style(name, description, layers, block_re, bn_module, **more) -> Scheme:
    """A PaddleClas structured-key scheme: LAYER._conv.weight, LAYER.<bn_module>.<field>
    (Paddle's BN field names) and its head's weight / bias (a Paddle Linear, [in, out])."""
    head = LAYER_NAMING[layers].head[0].rsplit(".", 1)[0]
    return Scheme(name, description, layers, "in_out", PADDLE_BN, re.compile(
        rf"^({block_re})\.(_conv\.weight|{bn_module}\.({'|'.join(PADDLE_BN)}))$"
        rf"|^{head}\.(weight|bias)$"), **more)


TABLE = OrderedDict((s.name, s) for s in [
    _torchvision_style("canonical", "torchvision/timm names, fc.weight [out, in]", "out_in",
                       TORCH_BN, written_to=(".npz",)),
    _torchvision_style("paddle_vision", "paddle.vision.models resnext*/resnet* state_dict keys",
                       "in_out", PADDLE_BN, written_to=(".pdparams",)),
    _paddleclas_style("ppcls", "PaddleClas resnext.py / resnext_vd.py state_dict keys", "ppcls",
                      r"conv|conv1_[123]|bb_\d+_\d+\.(conv[012]|short)", "_batch_norm",
                      written_to=(".pdparams",)),
    Scheme("ppcls_param", "PaddleClas resnext.py / resnext_vd.py ParamAttr names "
           "(legacy .tar files)", "ppcls_param", "in_out",
           ("scale", "offset", "mean", "variance"),
           re.compile(r"^(res_conv1|conv1_[123]|res\d+[a-z]\d*_branch(2[abc]|1))_weights$"
                      r"|^bn(_conv1|v1_[123]|\d+[a-z]\d*_branch(2[abc]|1))_(scale|offset|mean|variance)$"
                      r"|^fc_(weights|offset)$")),
    _paddleclas_style("ppcls_wsl", "PaddleClas resnext101_wsl.py state_dict keys", "ppcls_wsl",
                      r"_conv_stem|_conv\d+_\d+\.(_conv[012]|_short\._conv)", "_bn",
                      written_to=(".pdparams",),
                      no_deep_stem="the PaddleClas WSL naming has no deep (vd) stem"),
    _torchvision_style("ppcls_wsl_param", "PaddleClas resnext101_wsl.py ParamAttr names (torch's "
                       "names, fc.weight [in, out])", "in_out", TORCH_BN),
    _torchvision_style("torchvision", "torchvision's state_dict keys (plain stems only)", "out_in",
                       TORCH_BN, recognised=False, written_to=TORCH_FORMATS, counters=True,
                       no_deep_stem="torchvision has no model with a deep (vd) stem; use "
                                    "--names timm"),
    _torchvision_style("timm", "timm's state_dict keys (plain and 'd' models)", "out_in",
                       TORCH_BN, recognised=False, written_to=TORCH_FORMATS, counters=True),
])
# the schemes a file's names are recognised in, and those --names offers (in this order)
SCHEMES = OrderedDict((n, s) for n, s in TABLE.items() if s.pattern is not None)
WRITE_SCHEMES = ("torchvision", "timm", "ppcls", "ppcls_wsl", "paddle_vision", "canonical")

__all__ = ["Scheme", "TABLE", "SCHEMES", "WRITE_SCHEMES", "get_scheme", "name_map", "units",
           "file_state", "default_scheme", "detect_scheme", "block_index", "stem_kind",
           "is_ignored"]


def get_scheme(name) -> Scheme:
    if isinstance(name, Scheme):
        return name
    if name not in TABLE:
        raise WeightsError(f"unknown naming scheme {name!r}; known: {', '.join(TABLE)}")
    return TABLE[name]


# --- the layers every scheme names ----------------------------------------------------
class Unit(NamedTuple):
    """One conv + BN pair: its role and its canonical names."""

    role: str          # "stem", "conv1", "conv2", "conv3" or "short"
    index: int         # stem: 0..2; block roles: position of the block in the layer plan
    stage: int         # block roles: 0-based stage (stem: -1)
    block: int         # block roles: index inside the stage (stem: -1)
    conv: str          # canonical conv prefix, e.g. "layer1.0.conv2"
    bn: str            # canonical BN prefix, e.g. "layer1.0.bn2"


def units(arch) -> list:
    """Every conv + BN pair of ``arch`` (a Plan, or a config) in the order of
    ``param_shapes``."""
    plan = as_plan(arch)
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
    if scheme.layers == "torch":
        return f"{u.conv}.weight", u.bn, "."
    if scheme.layers == "ppcls":
        if u.role == "stem":
            p = "conv" if config.stem == "plain" else f"conv1_{u.index + 1}"
        else:
            p = f"bb_{u.stage}_{u.block}.{_PPCLS_ROLE[u.role]}"
        return f"{p}._conv.weight", f"{p}._batch_norm", "."
    if scheme.layers == "ppcls_param":
        if u.role == "stem":
            if config.stem == "plain":
                return "res_conv1_weights", "bn_conv1", "_"
            return f"conv1_{u.index + 1}_weights", f"bnv1_{u.index + 1}", "_"
        block = ppcls_block_name(config, u.stage, u.block)
        branch = _PARAM_BRANCH[u.role]
        return f"{block}_{branch}_weights", f"bn{block[3:]}_{branch}", "_"
    p = "_conv_stem" if u.role == "stem" else f"_conv{u.stage + 1}_{u.block}.{_WSL_ROLE[u.role]}"
    return f"{p}._conv.weight", f"{p}._bn", "."


def fc_names(scheme) -> tuple:
    """File names of the head's weight and bias."""
    return LAYER_NAMING[get_scheme(scheme).layers].head


def name_map(arch, scheme) -> "OrderedDict[str, str]":
    """Canonical name -> the scheme's file name, for every tensor of ``arch`` (a Plan, or
    a config). The keys are exactly those of ``param_shapes`` in the same order."""
    plan, scheme = as_plan(arch), get_scheme(scheme)
    config = plan.config
    if scheme.no_deep_stem and config.stem == "deep":
        raise WeightsError(f"{config.name} has a deep (vd) stem and cannot be named in "
                           f"scheme {scheme.name}: {scheme.no_deep_stem}")
    names = OrderedDict()
    for u in units(plan):
        conv, bn, sep = _conv_and_bn(config, scheme, u)
        names[f"{u.conv}.weight"] = conv
        for canonical, field in zip(BN_FIELDS, scheme.bn_fields):
            names[f"{u.bn}.{canonical}"] = f"{bn}{sep}{field}"
    weight, bias = fc_names(scheme)
    names[f"{plan.head.fc}.weight"], names[f"{plan.head.fc}.bias"] = weight, bias
    return names


# --- writing ----------------------------------------------------------------------------
def default_scheme(config: ArchConfig, ext: str):
    """(scheme, why) for writing ``config`` to a file with extension ``ext``."""
    if ext in TORCH_FORMATS:
        if config.stem == "deep":
            return "timm", "vd models exist in timm (resnext50d_32x4d ...), not torchvision"
        return "torchvision", "torchvision's names (timm's are the same for plain stems)"
    if ext == ".pdparams":
        base = registered(config, head=False)
        if base is not None and base.name.endswith("_wsl"):
            return "ppcls_wsl", f"PaddleClas's {base.name} (resnext101_wsl.py) keys"
        if base is not None and base.name != "ResNet50":
            return "ppcls", f"PaddleClas's {base.name} keys"
        return "paddle_vision", ("paddle.vision names: PaddleClas has no such ResNeXt"
                                 if base is None else
                                 "paddle.vision's resnet50 (PaddleClas's ResNet50 names "
                                 "are not modelled here)")
    return "canonical", "canonical names"


def file_state(params, arch, scheme: str, buffers=None):
    """OrderedDict file name -> array for canonical ``params`` of ``arch`` (a Plan, or a
    config) in the written scheme ``scheme``: Paddle schemes store the head [in, out];
    torch schemes add ``<bn>.num_batches_tracked`` after each BN's running_var, in torch's
    state_dict order: the source's counter as read (``buffers``, canonical name -> array:
    its shape, dtype and value), else torch's fresh one (int64 0, shape ()). Tensors
    ``params`` lacks are left out."""
    if scheme not in WRITE_SCHEMES:
        raise WeightsError(f"unknown naming scheme {scheme!r} for writing; known: "
                           f"{', '.join(WRITE_SCHEMES)}")
    plan, scheme = as_plan(arch), TABLE[scheme]
    counters = {f"{c.bn}.running_var": f"{c.bn}.num_batches_tracked"
                for c in plan.convs()} if scheme.counters else {}
    head = f"{plan.head.fc}.weight"
    out = OrderedDict()
    for canonical, fname in name_map(plan, scheme).items():
        if canonical not in params:
            continue
        value = params[canonical]
        transpose = canonical == head and scheme.fc_layout == "in_out"
        out[fname] = np.ascontiguousarray(value.T) if transpose else value
        if canonical in counters:
            counter = counters[canonical]
            out[counter] = (buffers or {}).get(counter, np.zeros((), np.int64))
    return out


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
                           f"naming schemes {', '.join(SCHEMES)} (see numpy_resnext.io.schemes){hint}")
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
def block_index(scheme, name):
    """(stage, block) of a file tensor name, 0-based, or None outside the blocks."""
    scheme = get_scheme(scheme)
    naming = LAYER_NAMING[scheme.layers]
    m = naming.block.match(name)
    if not m:
        return None
    stage = _index(m.group(1)) - naming.stage_base
    if scheme.layers == "ppcls_param":
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
    marker = LAYER_NAMING[get_scheme(scheme).layers].deep_stem
    return "deep" if marker is not None and marker in set(names) else "plain"
