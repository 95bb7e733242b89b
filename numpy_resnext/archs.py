"""Architectures as data.

A ResNeXt is fully described by an :class:`ArchConfig`: stage depths, cardinality C,
bottleneck base width d (the paper's "32x4d" is C=32, d=4), the stem kind, the shortcut
kind and, for the SE-ResNeXt family, the squeeze-and-excitation reduction and its rounding
rule. Nothing else in the package branches on an architecture's *name*; it only reads
these fields.

Stages are layer1 .. layer4 (stage N is layerN, the paper's conv(N+1); see
:data:`numpy_resnext.plan.PAPER_STAGE_NAMES`). Python's 0-based index i of a tuple such
as ``depths`` or ``STAGE_PLANES`` is the stage layer{i+1}:

    planes of layerN             = 64 * 2**(N-1)                     (64, 128, 256, 512)
    width of layerN (3x3 conv)   = floor(planes * d / 64) * C        (torchvision's rule)
    output channels of layerN    = planes * 4                        (expansion 4)

so the channels per branch are d' = width / C = d * 2**(N-1): d in layer1, doubled by
every later stage. A squeeze-and-excitation layer (Hu et al., CVPR 2018) of a block with
C_out output channels reduces them to r channels, r = C_out / se_reduction rounded by
one of two rules (:data:`SE_ROUNDINGS`, :func:`se_width`): PaddleClas truncates
(``int(C_out / 16)``, as timm's legacy ``senet.py``: ``C_out // 16``); timm's ``SEModule``
rounds to the nearest multiple of 8, at least 8. They agree on every published model
(C_out / 16 = 16, 32, 64, 128) and differ elsewhere (C_out = 320: 20 against 24).

:func:`numpy_resnext.plan.layer_plan` expands a config into every layer, once, in
execution order; parameter shapes, output shapes, the forward and the backward all read
that plan, so they can never disagree.
"""

from __future__ import annotations

import dataclasses
import difflib
from .errors import ArchitectureError

EXPANSION = 4
STAGE_PLANES = (64, 128, 256, 512)
STEMS = ("plain", "deep", "cifar")
# the stem's 3x3/2 max-pool: padding 1 (torchvision, timm resnet.py, Paddle), or no
# padding in ceil mode (the original SENet release, timm's legacy senet.py models)
STEM_POOLS = ("padded", "ceil")
DEPTHS = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
SE_ROUNDINGS = {
    "floor": "int(C / reduction): PaddleClas se_resnext.py (int(num_channels / 16)) and "
             "timm's legacy senet.py (channels // 16)",
    "timm": "make_divisible(C * (1 / reduction), 8, round_limit=0): the nearest multiple of 8, "
            "halves rounded up, at least 8 (timm's SEModule, resnet.py)",
}
TORCH_BN_EPS = 1e-5                      # torch and timm add exactly 1e-5
# Paddle keeps BatchNorm's epsilon as a float32 attribute, so even a float64 model adds
# float32(1e-5); weights read through a Paddle naming scheme are run with it
PADDLE_BN_EPS = 9.999999747378752e-06   # float(numpy.float32(1e-5))


def se_width(channels: int, reduction: int, rounding: str) -> int:
    """The reduced width r of a squeeze-and-excitation layer on ``channels`` channels
    (:data:`SE_ROUNDINGS`). timm multiplies by the ratio 1 / reduction in floating point
    before rounding, and so does this function, so that the two agree at every boundary."""
    if rounding == "floor":
        return channels // reduction
    v = channels * (1.0 / reduction)                                     # timm's channels * rd_ratio
    return max(8, int(v + 4) // 8 * 8)                                   # divisor 8, min 8, round_limit 0


@dataclasses.dataclass(frozen=True)
class ArchConfig:
    """One ResNeXt (or ResNet) architecture.

    depths:      bottleneck blocks of layer1, layer2, ..., e.g. (3, 4, 6, 3) for a 50-layer net.
    cardinality: C, the number of groups of the 3x3 convolution (1 = ResNet).
    base_width:  d, channels per group in layer1 (the paper's conv2; the "4d" of "32x4d");
                 layerN has d' = d * 2**(N-1) channels per group.
    stem:        "plain" (7x7/2 conv, then max-pool), "deep" (three 3x3 convs, the vd
                 stem, then max-pool) or "cifar" (one 3x3/1 conv and no max-pool: the
                 paper's CIFAR networks, Sec. 5.3, for small images).
    avg_down:    vd shortcut: 2x2/2 average pool before the 1x1 projection.
    num_classes: outputs of the fully connected head.
    stem_width:  channels of the stem output (64 in every published model; 128 in
                 PaddleClas's SE models with a three-conv stem).
    deep_stem_width: channels of the first two convs of the deep stem (32; 64 in
                 PaddleClas's SE models).
    deep_stem_first: channels of the deep stem's first conv when they differ from
                 ``deep_stem_width`` (timm's tiered stem: 3 * (32 // 4) = 24); 0 otherwise.
    stem_pool:   the stem max-pool (3x3/2): "padded" (padding 1) or "ceil" (no padding,
                 ceil mode: timm's legacy SENet models).
    se_reduction: squeeze-and-excitation after every block's bn3 with r = C_out /
                 se_reduction channels in between (16 in every published model); 0: none.
    se_rounding: how r is rounded, a key of :data:`SE_ROUNDINGS` ("floor" or "timm").
    bn_eps:      BatchNorm's epsilon, a property of the weights' source rather than of
                 the architecture: 1e-5 (torch, timm) or :data:`PADDLE_BN_EPS` (Paddle,
                 set by a load through a Paddle naming scheme). Not one of
                 :data:`MATH_FIELDS`: it names no architecture and no tensor shows it.
    """

    name: str
    depths: tuple = (3, 4, 6, 3)
    cardinality: int = 32
    base_width: int = 4
    stem: str = "plain"
    avg_down: bool = False
    num_classes: int = 1000
    stem_width: int = 64
    deep_stem_width: int = 32
    deep_stem_first: int = 0
    stem_pool: str = "padded"
    se_reduction: int = 0
    se_rounding: str = "floor"
    bn_eps: float = TORCH_BN_EPS
    description: str = ""

    def __post_init__(self):
        object.__setattr__(self, "depths", tuple(int(d) for d in self.depths))
        problems = []
        if len(self.depths) < 1 or any(d < 1 for d in self.depths):
            problems.append(f"depths must be positive block counts, found {self.depths}")
        if len(self.depths) > len(STAGE_PLANES):
            problems.append(f"at most {len(STAGE_PLANES)} stages, found {len(self.depths)}")
        if self.cardinality < 1:
            problems.append(f"cardinality must be >= 1, found {self.cardinality}")
        if self.base_width < 1:
            problems.append(f"base_width must be >= 1, found {self.base_width}")
        if self.stem not in STEMS:
            problems.append(f"stem must be one of {', '.join(map(repr, STEMS))}, found {self.stem!r}")
        if self.num_classes < 1:
            problems.append(f"num_classes must be >= 1, found {self.num_classes}")
        if self.stem_width < 1 or self.deep_stem_width < 1 or self.deep_stem_first < 0:
            problems.append(f"stem widths must be >= 1, found stem_width={self.stem_width}, "
                            f"deep_stem_width={self.deep_stem_width}, "
                            f"deep_stem_first={self.deep_stem_first}")
        if self.stem_pool not in STEM_POOLS:
            problems.append(f"stem_pool must be one of {', '.join(map(repr, STEM_POOLS))}, "
                            f"found {self.stem_pool!r}")
        if self.se_reduction < 0 or self.se_rounding not in SE_ROUNDINGS:
            problems.append(f"se_reduction must be >= 0 (0: no SE) and se_rounding one of "
                            f"{', '.join(map(repr, SE_ROUNDINGS))}, found {self.se_reduction}, "
                            f"{self.se_rounding!r}")
        if not 0 < self.bn_eps < 1:
            problems.append(f"bn_eps must be a small positive number, found {self.bn_eps!r}")
        if problems:
            raise ArchitectureError(f"invalid architecture {self.name!r}: " + "; ".join(problems))
        for s in range(len(self.depths)):
            if self.stage_width(s) < self.cardinality:
                raise ArchitectureError(
                    f"invalid architecture {self.name!r}: layer{s + 1} width "
                    f"{self.stage_width(s)} is smaller than cardinality {self.cardinality}")
        if self.se_reduction and min(self.se_widths) < 1:
            raise ArchitectureError(
                f"invalid architecture {self.name!r}: se_reduction {self.se_reduction} leaves "
                f"no channel in a squeeze-and-excitation layer (widths {self.se_widths})")

    # --- derived quantities -------------------------------------------------------
    def stage_width(self, stage: int) -> int:
        """Channels of the grouped 3x3 convolution of layer{stage+1}: ``stage`` is the
        0-based index i of layer{i+1} (0 for layer1), as in ``depths[i]``."""
        planes = STAGE_PLANES[stage]
        return (planes * self.base_width // 64) * self.cardinality

    def stage_out(self, stage: int) -> int:
        """Output channels of every block of layer{stage+1} (``stage``: index i of layer{i+1})."""
        return STAGE_PLANES[stage] * EXPANSION

    @property
    def num_features(self) -> int:
        """Channels entering the fully connected head."""
        return self.stage_out(len(self.depths) - 1)

    @property
    def se_widths(self) -> tuple:
        """The reduced width r of each stage's squeeze-and-excitation layers (layer1
        first); () without SE. Two configs with equal widths compute the same function,
        whatever rule gave them (:data:`MATH_FIELDS` holds this, not the rule)."""
        if not self.se_reduction:
            return ()
        return tuple(se_width(self.stage_out(s), self.se_reduction, self.se_rounding)
                     for s in range(len(self.depths)))

    @property
    def deep_stem_widths(self) -> tuple:
        """Output channels of the deep stem's three convolutions."""
        return (self.deep_stem_first or self.deep_stem_width, self.deep_stem_width, self.stem_width)

    @property
    def naming(self) -> str:
        """Canonical parameter naming of the projection shortcut: timm's for the models
        with the vd average-pool shortcut (``downsample.1`` conv, ``.2`` BN), torchvision's
        otherwise."""
        return "timm" if self.avg_down else "torchvision"

    def replace(self, **changes) -> "ArchConfig":
        """A copy with some fields changed (a custom architecture)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ArchConfig":
        """The config :meth:`to_dict` gave, back from its JSON form (``depths`` a list there)."""
        return cls(**{**d, "depths": tuple(d["depths"])})


# --- the registry -------------------------------------------------------------------
def _resnext(depth, card, width, vd=False, wsl=False):
    suffix = "_vd" if vd else ""
    name = f"ResNeXt{depth}{suffix}_{card}x{width}d" + ("_wsl" if wsl else "")
    what = f"ResNeXt-{depth} {card}x{width}d"
    if vd:
        what += ", vd (deep stem, avg-pool shortcut)"
    if wsl:
        what += ", Instagram WSL pretraining"
    return ArchConfig(name=name, depths=DEPTHS[depth], cardinality=card, base_width=width,
                      stem="deep" if vd else "plain", avg_down=vd, description=what)


# The SE-ResNeXt family: PaddleClas's models under their PaddleClas names, timm's under
# timm's (timm's twins of PaddleClas models are ALIASES): name -> (where it comes from, the
# fields besides the SE reduction 16). PaddleClas's three-conv stems are 64, 64, 128 wide;
# timm's deep ('d') stems 32, 32, 64 with the 'd' shortcut.
_PADDLE_DEEP = dict(stem="deep", deep_stem_width=64, stem_width=128)
_TIMM_D = dict(stem="deep", avg_down=True, se_rounding="timm")
_LEGACY = "timm senet.py (the original SENet release): stem max-pool without padding, ceil mode"
SE_MODELS = {
    "SE_ResNeXt50_32x4d": ("PaddleClas se_resnext.py (= timm seresnext50_32x4d)", dict(depths=DEPTHS[50])),
    "SE_ResNeXt101_32x4d": ("PaddleClas se_resnext.py (= timm seresnext101_32x4d)", dict(depths=DEPTHS[101])),
    "SE_ResNeXt152_64x4d": ("PaddleClas se_resnext.py: three-conv stem, 1x1/s projections",
                            dict(depths=DEPTHS[152], cardinality=64, **_PADDLE_DEEP)),
    "SE_ResNeXt50_vd_32x4d": ("PaddleClas se_resnext_vd.py: three-conv stem, vd shortcut",
                              dict(depths=DEPTHS[50], avg_down=True, **_PADDLE_DEEP)),
    "SENet154_vd": ("PaddleClas se_resnext_vd.py: an SE-ResNeXt-152 64x4d, vd",
                    dict(depths=DEPTHS[152], cardinality=64, avg_down=True, **_PADDLE_DEEP)),
    "seresnext26d_32x4d": ("timm resnet.py: deep stem, 'd' shortcut", dict(depths=(2, 2, 2, 2), **_TIMM_D)),
    "seresnext26t_32x4d": ("timm resnet.py: tiered deep stem (24, 32, 64), 'd' shortcut",
                           dict(depths=(2, 2, 2, 2), deep_stem_first=24, **_TIMM_D)),
    "seresnext101_32x8d": ("timm resnet.py", dict(depths=DEPTHS[101], base_width=8, se_rounding="timm")),
    "seresnext101_64x4d": ("timm resnet.py", dict(depths=DEPTHS[101], cardinality=64, se_rounding="timm")),
    "seresnext101d_32x8d": ("timm resnet.py: deep stem, 'd' shortcut",
                            dict(depths=DEPTHS[101], base_width=8, **_TIMM_D)),
    "legacy_seresnext26_32x4d": (_LEGACY, dict(depths=(2, 2, 2, 2), stem_pool="ceil")),
    "legacy_seresnext50_32x4d": (_LEGACY, dict(depths=DEPTHS[50], stem_pool="ceil")),
    "legacy_seresnext101_32x4d": (_LEGACY, dict(depths=DEPTHS[101], stem_pool="ceil")),
}


def _registry():
    archs = {}
    for vd in (False, True):
        for depth in (50, 101, 152):
            for card in (32, 64):
                cfg = _resnext(depth, card, 4, vd=vd)
                archs[cfg.name] = cfg
    for width in (8, 16, 32, 48):
        cfg = _resnext(101, 32, width, wsl=True)
        archs[cfg.name] = cfg
    archs["ResNet50"] = ArchConfig(name="ResNet50", depths=DEPTHS[50], cardinality=1,
                                   base_width=64, description="ResNet-50, the paper's baseline")
    for name, (what, fields) in SE_MODELS.items():
        cfg = ArchConfig(name=name, se_reduction=16, **fields)
        archs[name] = cfg.replace(description=f"SE-ResNeXt-{sum(cfg.depths) * 3 + 2} "
                                              f"{cfg.cardinality}x{cfg.base_width}d, {what}")
    return archs


ARCHS = _registry()

# other libraries' names for the registry's networks, as data: (name, registry name, whose
# name). Each computes exactly the registry network (same layers, same tensors); timm's
# pretrained tags ("resnext50_32x4d.a1h_in1k") are accepted after the name. Names of
# networks numpy-resnext does not implement (anti-aliased, SE-ResNets, ...) are in
# numpy_resnext/io/declared.py, which refuses them.
ALIAS_TABLE = (
    ("resnet50", "ResNet50", "torchvision, timm, paddle.vision"),
    ("resnext50_32x4d", "ResNeXt50_32x4d", "torchvision, timm, paddle.vision"),
    ("resnext101_32x8d", "ResNeXt101_32x8d_wsl", "torchvision, timm"),
    ("resnext101_64x4d", "ResNeXt101_64x4d", "torchvision, timm, paddle.vision"),
    ("resnext50d_32x4d", "ResNeXt50_vd_32x4d", "timm"),
    ("resnext101_32x4d", "ResNeXt101_32x4d", "timm, paddle.vision"),
    ("resnext101_32x16d", "ResNeXt101_32x16d_wsl", "timm"),
    ("resnext101_32x32d", "ResNeXt101_32x32d_wsl", "timm"),
    ("resnext50_64x4d", "ResNeXt50_64x4d", "paddle.vision"),
    ("resnext152_32x4d", "ResNeXt152_32x4d", "paddle.vision"),
    ("resnext152_64x4d", "ResNeXt152_64x4d", "paddle.vision"),
    # timm's names for PaddleClas's SE-ResNeXts (timm's other SE models are registered
    # under their timm names)
    ("seresnext50_32x4d", "SE_ResNeXt50_32x4d", "timm"),
    ("seresnext101_32x4d", "SE_ResNeXt101_32x4d", "timm"),
    # timm's names before 0.9 (now pretrained tags of the names above); file names still use them
    ("tv_resnet50", "ResNet50", "timm < 0.9"),
    ("tv_resnext50_32x4d", "ResNeXt50_32x4d", "timm < 0.9"),
    ("gluon_resnext50_32x4d", "ResNeXt50_32x4d", "timm < 0.9"),
    ("gluon_resnext101_32x4d", "ResNeXt101_32x4d", "timm < 0.9"),
    ("gluon_resnext101_64x4d", "ResNeXt101_64x4d", "timm < 0.9"),
    ("ssl_resnext50_32x4d", "ResNeXt50_32x4d", "timm < 0.9"),
    ("swsl_resnext50_32x4d", "ResNeXt50_32x4d", "timm < 0.9"),
    ("ssl_resnext101_32x4d", "ResNeXt101_32x4d", "timm < 0.9"),
    ("swsl_resnext101_32x4d", "ResNeXt101_32x4d", "timm < 0.9"),
    ("ssl_resnext101_32x8d", "ResNeXt101_32x8d_wsl", "timm < 0.9"),
    ("swsl_resnext101_32x8d", "ResNeXt101_32x8d_wsl", "timm < 0.9"),
    ("ssl_resnext101_32x16d", "ResNeXt101_32x16d_wsl", "timm < 0.9"),
    ("swsl_resnext101_32x16d", "ResNeXt101_32x16d_wsl", "timm < 0.9"),
    ("ig_resnext101_32x8d", "ResNeXt101_32x8d_wsl", "timm < 0.9"),
    ("ig_resnext101_32x16d", "ResNeXt101_32x16d_wsl", "timm < 0.9"),
    ("ig_resnext101_32x32d", "ResNeXt101_32x32d_wsl", "timm < 0.9"),
    ("ig_resnext101_32x48d", "ResNeXt101_32x48d_wsl", "timm < 0.9"),
)
ALIASES = {name: target for name, target, _ in ALIAS_TABLE}


def list_archs() -> list:
    """Names of every built-in architecture, in table order."""
    return list(ARCHS)


def get_arch(name) -> ArchConfig:
    """Look up an architecture by name (case-insensitive) or pass a config through."""
    if isinstance(name, ArchConfig):
        return name
    if not isinstance(name, str):
        raise ArchitectureError(f"architecture must be a name or an ArchConfig, found {type(name).__name__}")
    lower = {n.lower(): n for n in ARCHS}
    lower.update({a.lower(): t for a, t in ALIASES.items()})
    key = name.strip().lower()
    base, dot, tag = key.partition(".")            # timm's "name.pretrained_tag"
    if key in lower or (dot and tag and base in lower):
        return ARCHS[lower[key if key in lower else base]]
    close = difflib.get_close_matches(key, list(lower), n=3, cutoff=0.5)
    hint = ", ".join(lower[c] if lower[c].lower() == c else f"{c} (= {lower[c]})" for c in close)
    msg = f"unknown architecture {name!r}"
    msg += f"; did you mean: {hint}?" if hint else "."
    msg += " Run `numpy-resnext archs` for the full list."
    raise ArchitectureError(msg)


def custom(depths=(1, 1, 1, 1), cardinality=4, base_width=4, stem="plain", avg_down=None,
           num_classes=10, stem_width=64, deep_stem_width=32, name="custom", **more) -> ArchConfig:
    """A custom (usually tiny) architecture; ``avg_down`` defaults to ``stem == 'deep'``.
    ``more``: any other :class:`ArchConfig` field (``se_reduction=16``, ``stem_pool="ceil"``,
    ``deep_stem_first``, ``se_rounding``, ``bn_eps``)."""
    if avg_down is None:
        avg_down = stem == "deep"
    return ArchConfig(name=name, depths=tuple(depths), cardinality=cardinality,
                      base_width=base_width, stem=stem, avg_down=avg_down,
                      num_classes=num_classes, stem_width=stem_width,
                      deep_stem_width=deep_stem_width, description="custom", **more)


# the fields that make two architectures compute the same function (se_widths, not the
# reduction and rounding rule that gave them)
MATH_FIELDS = ("depths", "cardinality", "base_width", "stem", "avg_down", "num_classes",
               "stem_width", "deep_stem_width", "deep_stem_first", "stem_pool", "se_widths")


def registered(arch, head=True):
    """The registry entry computing what ``arch`` (an ArchConfig, or a dict of
    :data:`MATH_FIELDS`) computes; with ``head=False`` whatever its number of classes.
    None when the registry has no such network."""
    value = arch.get if isinstance(arch, dict) else (lambda f: getattr(arch, f))
    fields = [f for f in MATH_FIELDS if head or f != "num_classes"]
    for cfg in ARCHS.values():
        if all(getattr(cfg, f) == value(f) for f in fields):
            return cfg
    return None
