"""The architecture a weight file holds, read off its tensor names and shapes.

What each field is read from:

- depths:       the block indices present per stage (names only)
- stem:         "deep" when a name only the three-conv stem has is present; its widths from
                its three convs (timm's tiered stem: 24, 32, 64)
- stem_pool:    the naming's library (timm's legacy SENet names: no padding, ceil mode)
- avg_down:     the vd average-pool shortcut has no tensor of its own: a deep stem implies
                it, unless the file says otherwise (PaddleClas's ParamAttr names: ``conv1_1``
                in the vd files, ``conv1``..``conv3`` in SE_ResNeXt152_64x4d) or two
                registered networks share every tensor (SENet154_vd and SE_ResNeXt152_64x4d):
                then the file's declared architecture decides (config.json, safetensors
                metadata), or the load is refused, asking for the architecture
- cardinality:  layer1's grouped 3x3 weight is (width, width / C, 3, 3), so C = width / shape[1]
- base_width:   d = width / C (layer1 has 64 planes, so width = floor(64 * d / 64) * C)
- SE:           each stage's first SE fc1 gives r; the reduction and rounding rule are the
                first (16 first) that reproduce every stage's r (:data:`archs.SE_ROUNDINGS`)
- stem widths:  the stem convs' output channels
- num_classes:  the head's bias length

The result is a registry entry when one has exactly these fields, else a custom
:class:`ArchConfig`; a registry entry another network shares every tensor with (:data:`TWINS`)
needs the file to say which. :func:`config_differences` lists how a user's choice disagrees.
"""

from __future__ import annotations

from ..archs import (EXPANSION, MATH_FIELDS, SE_ROUNDINGS, STAGE_PLANES, TORCH_BN_EPS, ArchConfig,
                     get_arch, registered, se_width)
from ..bounded import clip_list, short_repr
from ..errors import ArchitectureError, WeightsError
from .recognise import block_positions, stem_kind
from .schemes import get_scheme, name_map

# far beyond any published ResNeXt (ResNeXt152 has 8 and 36 blocks in its longest stages);
# bounds an index like 99999999999 before any range over it is made
MAX_STAGES = 8
MAX_BLOCKS = 256
# registry entries with networks of exactly their tensors that compute something else
TWINS = {"seresnext101d_32x8d": ("seresnextaa101d_32x8d", "timm's anti-aliased variant (average "
                                 "pools in the stem and the strided blocks), not supported here")}

__all__ = ["infer_config", "infer_depths", "match_registry", "config_differences", "TWINS"]


def infer_depths(scheme, names) -> tuple:
    """Blocks per stage, from the (stage, block) indices found in ``names``."""
    seen = {}
    for stage, block in block_positions(scheme, names):
        seen.setdefault(stage, set()).add(block)
    if not seen:
        raise WeightsError(f"no bottleneck blocks found among the {len(names)} tensor names "
                           f"(scheme {scheme})")
    too_far = [(s, max(b)) for s, b in sorted(seen.items())
               if not 0 <= s < MAX_STAGES or not 0 <= min(b) <= max(b) < MAX_BLOCKS]
    if too_far:
        s, b = too_far[0]
        raise WeightsError(f"stage {s + 1}, block {b} found in the tensor names; at most "
                           f"{MAX_STAGES} stages of {MAX_BLOCKS} blocks are accepted (a "
                           "ResNeXt has 4 stages of at most 36 blocks)")
    stages = sorted(seen)
    if stages != list(range(len(stages))):
        raise WeightsError(f"stages {clip_list([s + 1 for s in stages])} found; stages must run 1, 2, ... "
                           "without gaps")
    depths = []
    for s in stages:
        blocks = sorted(seen[s])
        if blocks != list(range(len(blocks))):
            missing = sorted(set(range(blocks[-1] + 1)) - set(blocks))
            raise WeightsError(f"stage {s + 1} has blocks {blocks[0]}..{blocks[-1]} but not "
                               f"{clip_list(missing)}")
        depths.append(len(blocks))
    return tuple(depths)


def _shape(tensors, name, what, ndim=None):
    if name not in tensors:
        raise WeightsError(f"cannot infer the {what}: tensor {name!r} is missing")
    shape = tuple(getattr(tensors[name], "shape", ()))
    if ndim is not None and (len(shape) != ndim or min(shape) < 1):
        raise WeightsError(f"cannot infer the {what}: tensor {name!r} has shape {shape}, "
                           f"expected {ndim} axes of at least 1")
    return shape


def infer_config(tensors, scheme, num_classes_default=None, evidence=None, wanted=None) -> tuple:
    """(ArchConfig, notes) for a {file name: array} dict written in ``scheme``.

    ``num_classes_default`` is used when the file has no head (a bare backbone); without
    it a missing head is an error. ``evidence``: what the file says besides its tensors,
    {"table": paddle.save's structured-key -> ParamAttr-name table, "architecture": the
    name a config.json or the file's metadata declares}. ``wanted``: the architecture the
    user named, which settles what the tensors cannot tell.
    """
    scheme, evidence = get_scheme(scheme), evidence or {}
    names, notes = list(tensors), []
    depths = infer_depths(scheme.name, names)
    stem = stem_kind(scheme.name, names)
    avg_down = _avg_down_said(scheme, names, stem, evidence.get("table") or {}, notes)
    # a provisional config gives the file names of the tensors whose shapes we need
    probe = ArchConfig(name="probe", depths=depths, cardinality=2, base_width=64, stem=stem,
                       avg_down=stem == "deep" if avg_down is None else avg_down,
                       stem_pool=scheme.stem_pools[0], se_reduction=0 if scheme.no_se else 1)
    fmap = name_map(probe, scheme)
    w2 = _shape(tensors, fmap["layer1.0.conv2.weight"], "cardinality")
    if len(w2) != 4 or min(w2[:2]) < 1 or w2[0] % w2[1]:
        raise WeightsError(f"{fmap['layer1.0.conv2.weight']}: expected a grouped 3x3 weight "
                           f"(width, width/C, 3, 3), found shape {w2}")
    width0 = w2[0]
    cardinality = width0 // w2[1]      # a multiple by the check above
    if scheme.name == "senet" and cardinality == 1:
        raise WeightsError("timm's legacy SE-ResNet (senet.py, cardinality 1) strides its blocks' first 1x1 "
                           "convolution: not implemented (its SE-ResNeXts, cardinality > 1, are)")
    base_width = width0 // cardinality
    convs = ["conv1"] if stem == "plain" else ["conv1.0", "conv1.3", "conv1.6"]
    widths = [_shape(tensors, fmap[f"{c}.weight"], "stem width", 4)[0] for c in convs]
    stem_width = widths[-1]
    _check_first_block(tensors, fmap, stem_width, stem)
    first, deep = (widths[0], widths[1]) if stem == "deep" else (32, 32)
    reduction, rounding = _se_fields(tensors, fmap, scheme, len(depths))
    fields = dict(depths=depths, cardinality=cardinality, base_width=base_width, stem=stem,
                  avg_down=probe.avg_down, num_classes=_classes(tensors, fmap, scheme, num_classes_default, notes),
                  stem_width=stem_width, deep_stem_width=deep, deep_stem_first=first if first != deep else 0,
                  stem_pool=probe.stem_pool, se_reduction=reduction, se_rounding=rounding)
    if stem == "deep" and avg_down is None:
        fields["avg_down"] = _avg_down_by_registry(fields, evidence.get("architecture"), wanted, notes)
    found = match_registry(fields)
    _check_twins(found, evidence.get("architecture"), wanted)
    return found, notes


def _avg_down_said(scheme, names, stem, table, notes):
    """True / False when the file's names say whether a deep stem comes with the vd shortcut
    (PaddleClas's ParamAttr names: se_resnext_vd.py's stem is conv1_1..3, se_resnext.py's
    152-layer stem conv1..3), else None."""
    if stem != "deep":
        return False
    said = None
    if scheme.name == "ppcls_se_param":
        said = "conv1_1_weights" in set(names)
    elif scheme.name == "ppcls" and table.get("conv1_1._conv.weight") in ("conv1_1_weights", "conv1_weights"):
        said = table["conv1_1._conv.weight"] == "conv1_1_weights"
    if said is not None:
        notes.append("the vd average-pool shortcut " + ("follows from" if said else "is absent by")
                     + " the stem's ParamAttr names (conv1_1..3: se_resnext_vd.py; conv1..3: "
                     "se_resnext.py's SE_ResNeXt152_64x4d)")
    return said


def _avg_down_by_registry(fields, declared, wanted, notes) -> bool:
    """A deep stem's shortcut when the names do not say: the vd one, unless a registered
    network with the plain one has the same tensors too; then the file's declared
    architecture or the one the user named decides, or the load is refused."""
    twins = [registered(_config(dict(fields, avg_down=a)), head=False) for a in (True, False)]
    if twins[1] is None:
        notes.append("deep (vd) stem found: the vd average-pool shortcut is assumed "
                     "(it has no tensors of its own)")
        return True
    if twins[0] is None:
        notes.append(f"deep stem with 1x1/s projections, as {twins[1].name} has")
        return False
    named = wanted or _declared(declared)
    if wanted is not None or (named is not None and registered(
            named.replace(num_classes=fields["num_classes"]), head=False) in twins):
        notes.append(f"{named.name}'s shortcut, as {'named' if wanted else 'the file declares'} "
                     "(the tensors are those of " + " and ".join(t.name for t in twins) + " alike)")
        return named.avg_down
    raise WeightsError(f"the tensors are those of {twins[0].name} and of {twins[1].name} alike (they "
                       "differ only in the shortcut's average pool, which has no tensor) and the file "
                       "does not say which: name the architecture")


def _check_twins(found, declared, wanted):
    """Refuse a registry entry another network shares every tensor with, unless the user or
    the file names it (:data:`TWINS`)."""
    base = registered(found, head=False)
    if base is None or base.name not in TWINS or wanted is not None:
        return
    twin, what = TWINS[base.name]
    if declared is not None and str(declared).split(".")[0].lower() == twin:
        raise WeightsError(f"the file declares {short_repr(declared)}: {what}")
    if _declared(declared) is None or registered(_declared(declared), head=False) != base:
        raise WeightsError(f"the tensors are those of {base.name} and of {twin} ({what}) alike, and "
                           f"the file does not say which: name the architecture ({base.name})")


def _declared(name):
    """The registered architecture a file's declared name (timm's "model.tag" too) is, or None."""
    try:
        return get_arch(str(name).split(".")[0]) if isinstance(name, str) else None
    except ArchitectureError:
        return None


def _config(fields) -> ArchConfig:
    return ArchConfig(name="found", description="inferred from a weight file", **fields)


def _check_first_block(tensors, fmap, stem_width, stem):
    """layer1.0's 1x1 convolutions must take the stem's channels (PaddleClas 2.6.0 declares
    SE_ResNeXt152_64x4d's with 64 after a 128-channel stem: a network that cannot run)."""
    name = fmap["layer1.0.conv1.weight"]
    w1 = tuple(getattr(tensors.get(name), "shape", ()))      # absent or malformed: validate says so
    if len(w1) == 4 and w1[1] != stem_width:
        bug = (" (PaddleClas 2.6.0 declares SE_ResNeXt152_64x4d this way, and its own forward "
               "fails too; a file saved from it holds no runnable network)"
               if stem == "deep" and (w1[1], stem_width) == (64, 128) else "")
        raise WeightsError(f"{name} takes {w1[1]} input channels but the stem gives {stem_width}{bug}")


def _se_fields(tensors, fmap, scheme, stages) -> tuple:
    """(se_reduction, se_rounding): (0, "floor") without SE layers; else the first reduction
    (16 first) and rule (the naming's library's first) giving every stage's width r."""
    if scheme.no_se or fmap["layer1.0.se.fc1.weight"] not in tensors:
        return 0, "floor"
    outs = [STAGE_PLANES[s] * EXPANSION for s in range(stages)]
    widths = []
    for s in range(stages):
        name = fmap[f"layer{s + 1}.0.se.fc1.weight"]
        shape = _shape(tensors, name, "squeeze-and-excitation width")
        paddle = scheme.fc_layout == "in_out"                      # [in, out] / [out, in, 1, 1]
        if len(shape) < 2 or shape[0 if paddle else 1] != outs[s]:
            raise WeightsError(f"{name}: expected the squeeze-and-excitation reduce of layer{s + 1}'s "
                               f"{outs[s]} channels, {'(C, r)' if paddle else '(r, C, 1, 1)'}, found shape {shape}")
        widths.append(shape[1] if paddle else shape[0])
    rules = ("timm", "floor") if scheme.bn_eps == TORCH_BN_EPS and scheme.name != "senet" else ("floor", "timm")
    for reduction in [16] + list(range(1, outs[0] + 1)):
        for rule in rules:
            if [se_width(c, reduction, rule) for c in outs] == widths:
                return reduction, rule
    raise WeightsError(f"squeeze-and-excitation widths {widths} for {outs} channels follow no "
                       f"rounding of C / reduction known here ({', '.join(SE_ROUNDINGS)})")


def _classes(tensors, fmap, scheme, default, notes) -> int:
    fc_w, fc_b = fmap["fc.weight"], fmap["fc.bias"]
    if fc_b in tensors:
        return _shape(tensors, fc_b, "number of classes", 1)[0]
    if fc_w in tensors:
        shape = _shape(tensors, fc_w, "number of classes", 2)
        return shape[1] if scheme.fc_layout == "in_out" else shape[0]
    if default is not None:
        notes.append(f"no head ({fc_w}, {fc_b}) in the file; {default} classes assumed")
        return default
    raise WeightsError(f"cannot infer the number of classes: neither {fc_w} nor {fc_b} "
                       "is in the file; name the architecture")


def match_registry(fields) -> ArchConfig:
    """The registry entry computing exactly ``fields`` (ArchConfig fields), else a custom
    config named by them."""
    found = _config(fields)
    cfg = registered(found)
    if cfg is not None:
        return cfg
    # the same network with another head (fine-tuned): say which one it is
    cfg = registered(found, head=False)
    if cfg is not None:
        return cfg.replace(name=f"{cfg.name}_{fields['num_classes']}classes",
                           num_classes=fields["num_classes"],
                           description=f"{cfg.description}, {fields['num_classes']}-class head")
    d = fields["depths"]
    name = (("custom_se_" if fields.get("se_reduction") else "custom_") + "-".join(map(str, d))
            + f"_{fields['cardinality']}x{fields['base_width']}d"
            + ("_vd" if fields["stem"] == "deep" else ""))
    return found.replace(name=name)


def config_differences(wanted: ArchConfig, found: ArchConfig, skip=()) -> list:
    """["field: named X, file has Y", ...] for every math field that differs (squeeze-and-
    excitation said in words: what a file with SE tensors and a plain model lack)."""
    if wanted.stem == found.stem == "plain":
        skip = tuple(skip) + ("deep_stem_width", "deep_stem_first")   # unused without a deep stem
    out = []
    for f in MATH_FIELDS:
        a, b = getattr(wanted, f), getattr(found, f)
        if f in skip or a == b:
            continue
        if f == "se_widths" and not (a and b):
            out.append(f"squeeze-and-excitation: {wanted.name} has {_se_said(a)}, the file has {_se_said(b)}")
        else:
            out.append(f"{f}: {wanted.name} has {a!r}, the file has {b!r}")
    return out


def _se_said(widths) -> str:
    return (f"squeeze-and-excitation layers (reduced widths {', '.join(map(str, widths))})" if widths
            else "none")
