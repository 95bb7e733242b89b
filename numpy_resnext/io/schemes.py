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
ppcls_se_param   ``conv2_1_x2_weights``, SE ``fc2_1_sqz_*``   read (jit.save, .tar)
senet            ``layer1.0.conv2.weight``, ``layer0.conv1``   both (.pth, .safetensors,
                 SE ``layer1.0.se_module.fc1``                 .npz)
torchvision      canonical + ``num_batches_tracked``          written (.pth, .safetensors)
timm             canonical + ``num_batches_tracked``          written (.pth, .safetensors)
===============  ===========================================  =========================

Canonical names *are* torchvision's for the plain and WSL networks and timm's for the vd
and SE ones (:mod:`numpy_resnext.params`): a torch file is read as ``canonical`` (its
``num_batches_tracked`` are ignored) and written as ``torchvision`` or ``timm``, which add
them. PaddleClas writes its model files' keys (``ppcls``, ``ppcls_wsl``) and ParamAttr
names (``*_param``; for the SE files ``ppcls_se_param``, whose stem names tell the vd stem,
``conv1_1..3``, from SE_ResNeXt152_64x4d's, ``conv1..3``: docs/se_resnext.md); paddle.vision
writes torchvision's layer names with Paddle's BN fields; timm's legacy SENet models have
names of their own (``senet``) and the one stem max-pool without padding. A naming states
what its library can build (``no_deep_stem``, ``no_se``, ``stem_pools``: :func:`cannot_name`)
and the BatchNorm epsilon it runs with (``bn_eps``: Paddle's float32(1e-5)). PaddleClas's
ResNet50 and custom networks are written with paddle.vision's names.

:func:`name_map` walks the layer plan (the tensors of :func:`numpy_resnext.params.param_shapes`)
and asks the scheme's layer naming for each layer's file name, so every architecture maps
the same way. Regular expressions only *recognise* a file's names before the architecture
is known (each scheme's ``pattern``, used by :mod:`.recognise`).

Paddle stores a Linear weight [in, out] (y = x @ W); canonical is torch's [out, in] (an SE
layer's [out, in, 1, 1]): :func:`in_out_names` lists what the loader transposes.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import NamedTuple

import numpy as np

from ..archs import DEPTHS, PADDLE_BN_EPS, TORCH_BN_EPS, ArchConfig, registered
from ..errors import WeightsError
from ..params import param_shapes
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
    no_se: str = ""           # why it cannot name squeeze-and-excitation layers, if it cannot
    stem_pools: tuple = ("padded",)   # the stem max-pools of the models its library builds
    bn_eps: float = TORCH_BN_EPS      # BatchNorm's epsilon in the framework that uses it
    table: str = ""           # written .pdparams: the ParamAttr scheme of its name table


class LayerNaming(NamedTuple):
    """What a layer naming puts where, for recognising a file before its architecture."""

    block: "re.Pattern"       # (stage, block) of a block tensor's name
    stage_base: int | None    # the number the names give the first stage (None: not fixed)
    deep_stem: tuple          # names only a deep (three-conv) stem has
    head: tuple               # the head's weight and bias
    block_base: int = 0       # the number the names give a stage's first block


_TV_LAYER = r"(conv1(\.\d)?|bn1|layer\d+\.\d+\.(conv[123]|bn[123]|downsample\.\d|se\.fc[12]))"
LAYER_NAMING = {
    "torch": LayerNaming(re.compile(r"^layer(\d+)\.(\d+)\."), 1, ("conv1.0.weight",),
                         ("fc.weight", "fc.bias")),
    "ppcls": LayerNaming(re.compile(r"^bb_(\d+)_(\d+)\."), 0, ("conv1_1._conv.weight",),
                         ("out.weight", "out.bias")),
    "ppcls_param": LayerNaming(re.compile(r"^(?:res|bn)(\d+)([a-z])(\d*)_branch"), 2,
                               ("conv1_1_weights",), ("fc_weights", "fc_offset")),
    "ppcls_se_param": LayerNaming(re.compile(r"^(?:conv|fc)(\d+)_(\d+)_(?:x[123]|prj|sqz|exc)_"), None,
                                  ("conv1_1_weights", "conv2_weights"), ("fc6_weights", "fc6_offset"), 1),
    "ppcls_wsl": LayerNaming(re.compile(r"^_conv(\d+)_(\d+)\."), 1, (),
                             ("_out.weight", "_out.bias")),
    "senet": LayerNaming(re.compile(r"^layer(\d+)\.(\d+)\."), 1, (),
                         ("last_linear.weight", "last_linear.bias")),
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
    se = r"|^bb_\d+_\d+\.scale\.(squeeze|excitation)\.(weight|bias)$" if layers == "ppcls" else ""
    return Scheme(name, description, layers, "in_out", PADDLE_BN, re.compile(
        rf"^({block_re})\.(_conv\.weight|{bn_module}\.({'|'.join(PADDLE_BN)}))$"
        rf"|^{head}\.(weight|bias)${se}"), bn_eps=PADDLE_BN_EPS, **more)


_TV_NO_SE = "torchvision has no model with squeeze-and-excitation; use --names timm"
_NO_SE = "{} names no model with squeeze-and-excitation"
_SE_PARAM = r"(conv1(_[123])?|conv[23]|conv\d+_\d+_(x[123]|prj))"


TABLE = OrderedDict((s.name, s) for s in [
    _torchvision_style("canonical", "torchvision/timm names, fc.weight [out, in]", "out_in",
                       TORCH_BN, written_to=(".npz",)),
    _torchvision_style("paddle_vision", "paddle.vision.models resnext*/resnet* state_dict keys",
                       "in_out", PADDLE_BN, written_to=(".pdparams",), bn_eps=PADDLE_BN_EPS,
                       no_se=_NO_SE.format("paddle.vision")),
    _paddleclas_style("ppcls", "PaddleClas resnext.py / resnext_vd.py / se_resnext*.py state_dict keys",
                      "ppcls", r"conv|conv1_[123]|bb_\d+_\d+\.(conv[012]|short)", "_batch_norm",
                      written_to=(".pdparams",), table="ppcls_param"),
    Scheme("ppcls_param", "PaddleClas resnext.py / resnext_vd.py ParamAttr names "
           "(legacy .tar files)", "ppcls_param", "in_out",
           ("scale", "offset", "mean", "variance"),
           re.compile(r"^(res_conv1|conv1_[123]|res\d+[a-z]\d*_branch(2[abc]|1))_weights$"
                      r"|^bn(_conv1|v1_[123]|\d+[a-z]\d*_branch(2[abc]|1))_(scale|offset|mean|variance)$"
                      r"|^fc_(weights|offset)$"), bn_eps=PADDLE_BN_EPS,
           no_se=_NO_SE.format("PaddleClas's resnext.py ParamAttr naming") + " (ppcls_se_param does)"),
    Scheme("ppcls_se_param", "PaddleClas se_resnext.py / se_resnext_vd.py ParamAttr names (jit.save, "
           ".tar)", "ppcls_se_param", "in_out", ("scale", "offset", "mean", "variance"),
           re.compile(rf"^{_SE_PARAM}_(weights|bn_(scale|offset|mean|variance))$"
                      r"|^fc\d+_\d+_(sqz|exc)_(weights|offset)$|^fc6_(weights|offset)$"), bn_eps=PADDLE_BN_EPS),
    _paddleclas_style("ppcls_wsl", "PaddleClas resnext101_wsl.py state_dict keys", "ppcls_wsl",
                      r"_conv_stem|_conv\d+_\d+\.(_conv[012]|_short\._conv)", "_bn",
                      written_to=(".pdparams",), table="ppcls_wsl_param",
                      no_deep_stem="the PaddleClas WSL naming has no deep (vd) stem",
                      no_se=_NO_SE.format("PaddleClas's WSL naming")),
    _torchvision_style("ppcls_wsl_param", "PaddleClas resnext101_wsl.py ParamAttr names (torch's "
                       "names, fc.weight [in, out])", "in_out", TORCH_BN, bn_eps=PADDLE_BN_EPS,
                       no_se=_NO_SE.format("PaddleClas's WSL naming")),
    Scheme("senet", "timm's legacy SENet names (senet.py: layer0, se_module, last_linear)", "senet",
           "out_in", TORCH_BN, re.compile(
               r"^layer0\.(conv1\.weight|bn1\.(weight|bias|running_mean|running_var))$"
               r"|^layer\d+\.\d+\.(conv[123]\.weight|bn[123]\.(weight|bias|running_mean|running_var)"
               r"|se_module\.fc[12]\.(weight|bias)|downsample\.[01]\.(weight|bias|running_mean|running_var))$"
               r"|^last_linear\.(weight|bias)$"),
           written_to=TORCH_FORMATS + (".npz",), counters=True, stem_pools=("ceil",),
           no_deep_stem="timm's legacy SE-ResNeXt models have a 7x7 stem"),
    _torchvision_style("torchvision", "torchvision's state_dict keys (plain stems only)", "out_in",
                       TORCH_BN, recognised=False, written_to=TORCH_FORMATS, counters=True,
                       no_deep_stem="torchvision has no model with a deep (vd) stem; use "
                                    "--names timm", no_se=_TV_NO_SE),
    _torchvision_style("timm", "timm's state_dict keys (plain, 'd' and SE models)", "out_in",
                       TORCH_BN, recognised=False, written_to=TORCH_FORMATS, counters=True),
])
# the schemes a file's names are recognised in, and those --names offers (in this order)
SCHEMES = OrderedDict((n, s) for n, s in TABLE.items() if s.pattern is not None)
WRITE_SCHEMES = ("torchvision", "timm", "senet", "ppcls", "ppcls_wsl", "paddle_vision", "canonical")

__all__ = ["Scheme", "TABLE", "SCHEMES", "WRITE_SCHEMES", "get_scheme", "name_map", "units",
           "file_state", "default_scheme", "cannot_name", "in_out_names", "param_table", "is_ignored"]


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
_SE_PARAM_ROLE = {"conv1": "x1", "conv2": "x2", "conv3": "x3", "short": "prj"}


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


def ppcls_se_block(config: ArchConfig, stage: int, block: int) -> str:
    """PaddleClas's SE ParamAttr block name, "{stage number}_{block + 1}": layer1 is 2 (the
    paper's conv2), or 4 in the 152-layer models (se_resnext.py's ``n = 3`` there)."""
    return f"{stage + (4 if config.depths == DEPTHS[152] else 2)}_{block + 1}"


def _conv_and_bn(config: ArchConfig, scheme: Scheme, u: Unit):
    """(file name of the conv weight, file prefix of its BN, separator before BN fields)."""
    if scheme.layers == "torch" or (scheme.layers == "senet" and u.role != "stem"):
        return f"{u.conv}.weight", u.bn, "."
    if scheme.layers == "senet":
        return "layer0.conv1.weight", "layer0.bn1", "."
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
    if scheme.layers == "ppcls_se_param":
        if u.role == "stem":        # the vd files number the stem conv1_1..3, SE_ResNeXt152 conv1..3
            p = "conv1" if config.stem == "plain" else (
                f"conv1_{u.index + 1}" if config.avg_down else f"conv{u.index + 1}")
        else:
            p = f"conv{ppcls_se_block(config, u.stage, u.block)}_{_SE_PARAM_ROLE[u.role]}"
        return f"{p}_weights", f"{p}_bn", "_"
    p = "_conv_stem" if u.role == "stem" else f"_conv{u.stage + 1}_{u.block}.{_WSL_ROLE[u.role]}"
    return f"{p}._conv.weight", f"{p}._bn", "."


def _se_names(config: ArchConfig, scheme: Scheme, b) -> dict:
    """{canonical name: file name} of block ``b``'s SE layer: fc1 then fc2, weight and bias."""
    names, layers = {}, scheme.layers
    for fc, paddle, se_param in ((b.se.fc1, "squeeze", "sqz"), (b.se.fc2, "excitation", "exc")):
        for key, param in (("weight", "weights"), ("bias", "offset")):
            names[f"{fc.name}.{key}"] = (
                f"bb_{b.stage}_{b.index}.scale.{paddle}.{key}" if layers == "ppcls" else
                f"fc{ppcls_se_block(config, b.stage, b.index)}_{se_param}_{param}"
                if layers == "ppcls_se_param" else
                f"{fc.name.replace('.se.', '.se_module.')}.{key}" if layers == "senet" else
                f"{fc.name}.{key}")
    return names


def fc_names(scheme) -> tuple:
    """File names of the head's weight and bias."""
    return LAYER_NAMING[get_scheme(scheme).layers].head


def cannot_name(config: ArchConfig, scheme) -> str:
    """Why ``scheme`` cannot name ``config``'s tensors, or "" when it can."""
    scheme = get_scheme(scheme)
    if scheme.no_deep_stem and config.stem == "deep":
        return f"{config.name} has a deep (vd) stem: {scheme.no_deep_stem}"
    if scheme.no_se and config.se_reduction:
        return f"{config.name} has squeeze-and-excitation layers: {scheme.no_se}"
    if config.stem != "cifar" and config.stem_pool not in scheme.stem_pools:
        legacy = config.stem_pool == "ceil"
        return (f"{config.name}'s stem max-pool is {'the legacy SENet one' if legacy else 'padded'}"
                f", which no model named this way has: use --names {'senet' if legacy else 'timm'}")
    senet = scheme.layers == "senet" and (config.avg_down or config.cardinality == 1)
    return "legacy SENet models have no vd shortcut, and their cardinality-1 blocks stride conv1" if senet else ""


def name_map(arch, scheme) -> "OrderedDict[str, str]":
    """Canonical name -> the scheme's file name, for every tensor of ``arch`` (a Plan, or
    a config). The keys are exactly those of ``param_shapes`` in the same order."""
    plan, scheme = as_plan(arch), get_scheme(scheme)
    config = plan.config
    why = cannot_name(config, scheme)
    if why:
        raise WeightsError(f"{config.name} cannot be named in scheme {scheme.name}: {why}")
    names = {}
    for u in units(plan):
        conv, bn, sep = _conv_and_bn(config, scheme, u)
        names[f"{u.conv}.weight"] = conv
        for canonical, field in zip(BN_FIELDS, scheme.bn_fields):
            names[f"{u.bn}.{canonical}"] = f"{bn}{sep}{field}"
    for b in plan.blocks:
        if b.se is not None:
            names.update(_se_names(config, scheme, b))
    names[f"{plan.head.fc}.weight"], names[f"{plan.head.fc}.bias"] = fc_names(scheme)
    return OrderedDict((c, names[c]) for c in param_shapes(plan))


def in_out_names(plan, scheme) -> tuple:
    """The canonical names ``scheme`` stores [in, out] (Paddle's Linear): the head's and SE layers' weights."""
    fcs = [f"{plan.head.fc}.weight"] + [f"{fc.name}.weight" for se in plan.se_layers() for fc in (se.fc1, se.fc2)]
    return tuple(fcs) if get_scheme(scheme).fc_layout == "in_out" else ()


# --- writing ----------------------------------------------------------------------------
def default_scheme(config: ArchConfig, ext: str):
    """(scheme, why) for writing ``config`` to a file with extension ``ext``."""
    if config.stem_pool == "ceil" and (ext in TORCH_FORMATS or ext == ".npz"):
        return "senet", ("timm's legacy SENet names (senet.py), the only models with this stem "
                         "max-pool (no padding, ceil mode)")
    if ext in TORCH_FORMATS:
        if config.stem == "deep" or config.se_reduction:
            return "timm", ("vd and SE models exist in timm (resnext50d_32x4d, seresnext50_32x4d "
                            "...), not torchvision")
        return "torchvision", "torchvision's names (timm's are the same for plain stems)"
    if ext == ".pdparams":
        base = registered(config, head=False)
        if base is not None and base.name.endswith("_wsl"):
            return "ppcls_wsl", f"PaddleClas's {base.name} (resnext101_wsl.py) keys"
        if base is not None and base.name != "ResNet50" and (
                not config.se_reduction or base.name.startswith(("SE_", "SENet"))):
            return "ppcls", f"PaddleClas's {base.name} keys"
        return "paddle_vision", ("paddle.vision names: PaddleClas has no such ResNeXt"
                                 if base is None or config.se_reduction else
                                 "paddle.vision's resnet50 (PaddleClas's ResNet50 names "
                                 "are not modelled here)")
    return "canonical", "canonical names"


def file_state(params, arch, scheme: str, buffers=None):
    """OrderedDict file name -> array for canonical ``params`` of ``arch`` (a Plan, or a
    config) in the written scheme ``scheme``: Paddle schemes store the head and the SE
    layers [in, out]; torch schemes add ``<bn>.num_batches_tracked`` after each BN's
    running_var, in torch's state_dict order: the source's counter as read (``buffers``,
    canonical name -> array: its shape, dtype and value), else torch's fresh one (int64 0,
    shape ()). Tensors ``params`` lacks are left out."""
    if scheme not in WRITE_SCHEMES:
        raise WeightsError(f"unknown naming scheme {scheme!r} for writing; known: "
                           f"{', '.join(WRITE_SCHEMES)}")
    plan, scheme = as_plan(arch), TABLE[scheme]
    counters = {f"{c.bn}.running_var": f"{c.bn}.num_batches_tracked"
                for c in plan.convs()} if scheme.counters else {}
    in_out = set(in_out_names(plan, scheme))
    out = OrderedDict()
    for canonical, fname in name_map(plan, scheme).items():
        if canonical not in params:
            continue
        value = params[canonical]
        if canonical in in_out:                          # (out, in[, 1, 1]) -> (in, out)
            value = np.ascontiguousarray(value.reshape(value.shape[:2]).T)
        out[fname] = value
        if canonical in counters:
            counter = counters[canonical]
            out[counter] = (buffers or {}).get(counter, np.zeros((), np.int64))
    return out


def param_table(arch, scheme) -> dict:
    """{file name in ``scheme``: its ParamAttr name} for a written .pdparams whose scheme has
    a ParamAttr partner (``Scheme.table``): paddle.save's StructuredToParameterName@@."""
    plan, scheme = as_plan(arch), get_scheme(scheme)
    if not scheme.table:
        return {}
    partner = "ppcls_se_param" if plan.config.se_reduction and scheme.table == "ppcls_param" else scheme.table
    if cannot_name(plan.config, partner):
        return {}
    keys, params = name_map(plan, scheme), name_map(plan, partner)
    return {keys[c]: params[c] for c in keys}


# --- recognising (more in .recognise) -----------------------------------------------------
def is_ignored(name: str) -> bool:
    """Tensors that carry no model state (torch's BN ``num_batches_tracked``)."""
    return name.endswith(IGNORED_SUFFIXES)
