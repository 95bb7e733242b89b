"""The architecture a weight file holds, read off its tensor names and shapes.

What each field is read from:

- depths:       the block indices present per stage (names only)
- stem:         "deep" when the vd stem's first 3x3 conv is present; a deep stem implies
                the vd average-pool shortcut (``avg_down``), which has no tensor of its own
- cardinality:  layer1's grouped 3x3 weight is (width, width / C, 3, 3), so C = width / shape[1]
- base_width:   d = width / C (layer1 has 64 planes, so width = floor(64 * d / 64) * C)
- stem widths:  the stem convs' output channels
- num_classes:  the head's bias length

The result is a registry entry when one has exactly these fields, else a custom
:class:`ArchConfig`. :func:`config_differences` lists how a user's choice disagrees.
"""

from __future__ import annotations

from ..archs import MATH_FIELDS, ArchConfig, registered
from ..bounded import clip_list
from ..errors import WeightsError
from .schemes import block_index, get_scheme, name_map, stem_kind

# far beyond any published ResNeXt (ResNeXt152 has 8 and 36 blocks in its longest stages);
# bounds an index like 99999999999 before any range over it is made
MAX_STAGES = 8
MAX_BLOCKS = 256

__all__ = ["infer_config", "infer_depths", "match_registry", "config_differences"]


def infer_depths(scheme, names) -> tuple:
    """Blocks per stage, from the (stage, block) indices found in ``names``."""
    seen = {}
    for n in names:
        pos = block_index(scheme, n)
        if pos is not None:
            seen.setdefault(pos[0], set()).add(pos[1])
    if not seen:
        raise WeightsError(f"no bottleneck blocks found among the {len(names)} tensor names "
                           f"(scheme {scheme})")
    too_far = [(s, max(b)) for s, b in sorted(seen.items())
               if not 0 <= s < MAX_STAGES or max(b) >= MAX_BLOCKS]
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


def infer_config(tensors, scheme, num_classes_default=None) -> tuple:
    """(ArchConfig, notes) for a {file name: array} dict written in ``scheme``.

    ``num_classes_default`` is used when the file has no head (a bare backbone); without
    it a missing head is an error.
    """
    scheme = get_scheme(scheme)
    names = list(tensors)
    notes = []
    depths = infer_depths(scheme.name, names)
    stem = stem_kind(scheme.name, names)
    # a provisional config gives the file names of the tensors whose shapes we need
    probe = ArchConfig(name="probe", depths=depths, cardinality=1, base_width=64, stem=stem,
                       avg_down=stem == "deep")
    fmap = name_map(probe, scheme)
    w2 = _shape(tensors, fmap["layer1.0.conv2.weight"], "cardinality")
    if len(w2) != 4 or min(w2[:2]) < 1 or w2[0] % w2[1]:
        raise WeightsError(f"{fmap['layer1.0.conv2.weight']}: expected a grouped 3x3 weight "
                           f"(width, width/C, 3, 3), found shape {w2}")
    width0 = w2[0]
    cardinality = width0 // w2[1]      # a multiple by the check above
    base_width = width0 // cardinality
    stem_names = [fmap[f"{conv}.weight"] for conv in
                  (["conv1"] if stem == "plain" else ["conv1.0", "conv1.6"])]
    stem_width = _shape(tensors, stem_names[-1], "stem width", 4)[0]
    deep_stem_width = _shape(tensors, stem_names[0], "stem width", 4)[0] if stem == "deep" else 32
    fc_w, fc_b = fmap["fc.weight"], fmap["fc.bias"]
    if fc_b in tensors:
        num_classes = _shape(tensors, fc_b, "number of classes", 1)[0]
    elif fc_w in tensors:
        shape = _shape(tensors, fc_w, "number of classes", 2)
        num_classes = shape[1] if scheme.fc_layout == "in_out" else shape[0]
    elif num_classes_default is not None:
        num_classes = num_classes_default
        notes.append(f"no head ({fc_w}, {fc_b}) in the file; {num_classes} classes assumed")
    else:
        raise WeightsError(f"cannot infer the number of classes: neither {fc_w} nor {fc_b} "
                           "is in the file; name the architecture")
    if stem == "deep":
        notes.append("deep (vd) stem found: the vd average-pool shortcut is assumed "
                     "(it has no tensors of its own)")
    fields = dict(depths=depths, cardinality=cardinality, base_width=base_width, stem=stem,
                  avg_down=stem == "deep", num_classes=num_classes, stem_width=stem_width,
                  deep_stem_width=deep_stem_width)
    return match_registry(fields), notes


def match_registry(fields) -> ArchConfig:
    """The registry entry computing exactly ``fields``, else a custom config named by them."""
    cfg = registered(fields)
    if cfg is not None:
        return cfg
    # the same network with another head (fine-tuned): say which one it is
    cfg = registered(fields, head=False)
    if cfg is not None:
        return cfg.replace(name=f"{cfg.name}_{fields['num_classes']}classes",
                           num_classes=fields["num_classes"],
                           description=f"{cfg.description}, {fields['num_classes']}-class head")
    d = fields["depths"]
    name = (f"custom_{'-'.join(map(str, d))}_{fields['cardinality']}x{fields['base_width']}d"
            + ("_vd" if fields["stem"] == "deep" else ""))
    return ArchConfig(name=name, description="inferred from a weight file", **fields)


def config_differences(wanted: ArchConfig, found: ArchConfig, skip=()) -> list:
    """["field: named X, file has Y", ...] for every math field that differs."""
    if wanted.stem == found.stem == "plain":
        skip = tuple(skip) + ("deep_stem_width",)      # unused without a deep stem
    return [f"{f}: {wanted.name} has {getattr(wanted, f)!r}, the file has {getattr(found, f)!r}"
            for f in MATH_FIELDS if f not in skip and getattr(wanted, f) != getattr(found, f)]
