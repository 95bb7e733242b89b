"""The layer plan: every layer of an architecture, once, in execution order.

:func:`layer_plan` turns an :class:`~numpy_resnext.archs.ArchConfig` into a :class:`Plan`,
once per model (:func:`numpy_resnext.model.build` makes it and hands it down), and every
consumer reads the plan instead of re-deriving layers from the config: parameter shapes and
the seeded initialisation (:mod:`.params`, :mod:`.init`), output shapes and MACs
(:mod:`.shapes`), the forward walk (:mod:`.walk`), the backward (:mod:`.grad`), the Fig. 3
branch view (:mod:`.paper.branches`), weight-file name maps (:mod:`.io.schemes`) and golden name
maps. A hyperparameter of a layer (channels, kernel, stride, padding, groups, pooling, the
squeeze-and-excitation width, BatchNorm's epsilon) is written here and nowhere else.

The network, as the plan lays it out::

    stem:    ConvBN+ReLU x 1 (plain 7x7/2; cifar 3x3/1) or x 3 (deep 3x3), then max-pool 3x3/2
             (padding 1; the legacy SENet stem: no padding, ceil mode; no max-pool in the
             cifar stem)
    blocks:  layer1.0 .. layerN.I, each a Block:
               conv1 1x1 in->width   + bn1 + relu1
               conv2 3x3 width->width, groups = cardinality, stride s   + bn2 + relu2
               conv3 1x1 width->out  + bn3
               [SE: global average pool -> fc1 1x1 out->r (+bias) -> ReLU -> fc2 1x1 r->out
                (+bias) -> sigmoid -> the branch scaled channel by channel]
               shortcut: identity | projection 1x1/s + BN | (vd) avg-pool 2x2/2 ceil, 1x1 + BN
               add, then ReLU (emitted under the block's own name)
    head:    global average pool ("avgpool"), fully connected ("fc")

Stages are numbered as the tensor names number them: ``layer1`` .. ``layer4`` (stage 1..4);
the paper calls them conv2 .. conv5 (:data:`PAPER_STAGE_NAMES`).
"""

from __future__ import annotations

from typing import NamedTuple

from .archs import ArchConfig, get_arch
from .errors import InputError
from .ops.batchnorm import EPS

BN_FIELDS = ("weight", "bias", "running_mean", "running_var")
PAPER_STAGE_NAMES = {1: "conv2", 2: "conv3", 3: "conv4", 4: "conv5"}


class Pool(NamedTuple):
    """A max or average pool over windows (global pooling is the head's)."""

    name: str                  # emitted name, e.g. "maxpool", "layer2.0.downsample.0"
    kind: str                  # "max" or "avg"
    channels: int
    kernel: int
    stride: int
    padding: int
    ceil_mode: bool = False
    exclusive: bool = True     # avg: padded positions are not counted in the mean

    @property
    def emits(self) -> tuple:
        return (self.name,)


class ConvBN(NamedTuple):
    """A convolution, the BatchNorm that always follows it, and the ReLU after that (if
    any); ``pool`` is a pool that runs on the input first (the vd shortcut's average pool)."""

    name: str                  # the conv's name, also its weight's prefix: "layer1.0.conv2"
    role: str                  # "stem", "conv1", "conv2", "conv3" or "shortcut"
    block: str | None          # the block it belongs to ("layer1.0"), None in the stem
    in_channels: int
    out_channels: int
    kernel: int
    stride: int
    padding: int
    groups: int
    bn: str                    # the BN's name and parameter prefix: "layer1.0.bn2"
    relu: str | None           # the following ReLU's emitted name, None when there is none
    pool: Pool | None = None
    eps: float = EPS           # the BN's epsilon (ArchConfig.bn_eps: the weights' source's)

    @property
    def weight_shape(self) -> tuple:
        """(K, C/G, R, S)."""
        return (self.out_channels, self.in_channels // self.groups, self.kernel, self.kernel)

    @property
    def emits(self) -> tuple:
        """The intermediate names this layer emits, in order."""
        return (((self.pool.name,) if self.pool else ()) + (self.name, self.bn)
                + ((self.relu,) if self.relu else ()))


class SEFc(NamedTuple):
    """One fully connected layer of a squeeze-and-excitation layer, stored as a 1x1
    convolution with a bias (timm's layout): weight (out, in, 1, 1), bias (out,)."""

    name: str                  # emitted name and parameter prefix: "layer1.0.se.fc1"
    in_features: int
    out_features: int

    @property
    def weight_shape(self) -> tuple:
        return (self.out_features, self.in_features, 1, 1)


class SE(NamedTuple):
    """Squeeze-and-excitation (Hu et al., CVPR 2018) on a block's residual branch:
    pool -> fc1 (channels -> reduced) -> ReLU -> fc2 (reduced -> channels) -> sigmoid ->
    the branch multiplied by the gate, channel by channel. Emits, in this order, ``pool``
    (N, C), ``fc1`` (N, r), ``relu`` (N, r), ``fc2`` (N, C), ``gate`` (N, C) and the
    scaled branch (N, C, H, W) under its own name."""

    name: str                  # "layer1.0.se"; the scaled branch is emitted under it
    block: str
    channels: int              # C, the block's output channels
    reduced: int               # r (ArchConfig.se_widths: the library's rounding of C / reduction)
    fc1: SEFc
    fc2: SEFc
    position: str = "residual"  # after bn3, before the add; "post": after the add (Hu et al.'s SE-POST)

    @property
    def pool(self) -> str:
        return f"{self.name}.pool"

    @property
    def relu(self) -> str:
        return f"{self.name}.act"

    @property
    def gate(self) -> str:
        return f"{self.name}.gate"

    @property
    def emits(self) -> tuple:
        return (self.pool, self.fc1.name, self.relu, self.fc2.name, self.gate, self.name)


class Block(NamedTuple):
    """One bottleneck block: its three convolutions, its squeeze-and-excitation layer (if
    any), its shortcut, the add and final ReLU."""

    name: str                  # "layer2.0"; the block output (after the final ReLU) is emitted under it
    layer: int                 # the N of layerN (1-based): the one stage numbering
    index: int                 # position inside the stage (0-based, as in the names)
    in_channels: int
    width: int                 # channels of the grouped 3x3 convolution (C * d')
    out_channels: int
    stride: int                # the block's stride (sits on conv2 and on the projection)
    groups: int                # cardinality C
    shortcut: str              # "identity", "projection" or "avgpool_projection"
    conv1: ConvBN
    conv2: ConvBN
    conv3: ConvBN
    projection: ConvBN | None  # None for the identity shortcut
    add: str                   # "layer2.0.add": residual branch + shortcut, before the ReLU
    se: SE | None = None       # squeeze-and-excitation on the branch (SE-ResNeXt), or None

    @property
    def stage(self) -> int:
        """0-based stage index (``layer - 1``): the index of the stage in ``depths``."""
        return self.layer - 1

    @property
    def relu(self) -> str:
        """The final ReLU's emitted name: the block's own (its output)."""
        return self.name

    @property
    def group_width(self) -> int:
        """Channels per group of conv2 (the paper's d in stage 1; d' = width / C in general)."""
        return self.width // self.groups

    @property
    def convs(self) -> tuple:
        return (self.conv1, self.conv2, self.conv3) + ((self.projection,) if self.projection else ())

    @property
    def parts(self) -> tuple:
        """Its layers with parameters, in the order of their parameters (and of the
        frameworks' state dicts): conv1, conv2, conv3, SE, projection."""
        return (self.conv1, self.conv2, self.conv3) + ((self.se,) if self.se else ()) + (
            (self.projection,) if self.projection else ())

    @property
    def emits(self) -> tuple:
        se = self.se.emits if self.se else ()
        post = self.se is not None and self.se.position == "post"
        names = self.conv1.emits + self.conv2.emits + self.conv3.emits + (() if post else se)
        if self.projection:
            names += self.projection.emits
        return names + (self.add,) + (se if post else ()) + (self.name,)


class Head(NamedTuple):
    pool: str                  # "avgpool": global average pool, (N, C, H, W) -> (N, C)
    fc: str                    # "fc": (N, C) -> (N, classes); parameters fc.weight, fc.bias
    in_features: int
    num_classes: int

    @property
    def emits(self) -> tuple:
        return (self.pool, self.fc)


class Plan(NamedTuple):
    """An architecture's layers in execution order (see the module docstring)."""

    config: ArchConfig
    stem: tuple                # ConvBN layers
    stem_pool: Pool | None     # the max-pool after the stem (None: cifar stem)
    blocks: tuple              # Block
    head: Head

    def layers(self):
        """Every layer once, in execution order: ConvBN, Pool, Block (its own convs are
        inside it, see :meth:`all_layers`) and Head."""
        yield from self.stem
        if self.stem_pool:
            yield self.stem_pool
        yield from self.blocks
        yield self.head

    def all_layers(self):
        """Like :meth:`layers`, but each block's layers (:attr:`Block.parts`: its
        convolutions and its SE layer) in place of the block."""
        for layer in self.layers():
            if isinstance(layer, Block):
                yield from layer.parts
            else:
                yield layer

    def convs(self) -> list:
        """Every ConvBN in execution order (the order of the parameters)."""
        return [layer for layer in self.all_layers() if isinstance(layer, ConvBN)]

    def se_layers(self) -> list:
        """Every SE layer, in execution order (empty without squeeze-and-excitation)."""
        return [b.se for b in self.blocks if b.se is not None]

    def names(self) -> list:
        """Every intermediate the forward emits, in execution order."""
        return [n for layer in self.layers() for n in layer.emits]

    @property
    def stem_output(self) -> str:
        """The name of the tensor the first block receives."""
        return self.stem_pool.name if self.stem_pool else self.stem[-1].relu

    def block(self, name) -> Block:
        """The block called ``name`` ("layer1.0"); a Block passes through."""
        if isinstance(name, Block):
            return name
        for b in self.blocks:
            if b.name == name:
                return b
        raise InputError(f"{self.config.name} has no block {name!r}; blocks are "
                         f"{self.blocks[0].name} .. {self.blocks[-1].name}")

    def block_input(self, block) -> str:
        """The name of the tensor block ``block`` receives."""
        i = self.blocks.index(self.block(block))
        return self.blocks[i - 1].name if i else self.stem_output


# --- building the plan ------------------------------------------------------------------------
def _stem(config: ArchConfig):
    """(ConvBN layers, max-pool) of the stem. The ReLU names follow torchvision/timm: the last
    is "relu"; the deep stem's inner ones are its sequential indices conv1.2 and conv1.5."""
    out, eps = config.stem_width, config.bn_eps
    if config.stem_pool == "ceil":                   # the original SENet: no padding, ceil mode
        maxpool = Pool("maxpool", "max", out, kernel=3, stride=2, padding=0, ceil_mode=True)
    else:
        maxpool = Pool("maxpool", "max", out, kernel=3, stride=2, padding=1)
    if config.stem == "plain":
        return (ConvBN("conv1", "stem", None, 3, out, 7, 2, 3, 1, "bn1", "relu", eps=eps),), maxpool
    if config.stem == "cifar":
        return (ConvBN("conv1", "stem", None, 3, out, 3, 1, 1, 1, "bn1", "relu", eps=eps),), None
    w1, w2, _ = config.deep_stem_widths                  # timm's tiered stem: 24, 32, 64
    return (ConvBN("conv1.0", "stem", None, 3, w1, 3, 2, 1, 1, "conv1.1", "conv1.2", eps=eps),
            ConvBN("conv1.3", "stem", None, w1, w2, 3, 1, 1, 1, "conv1.4", "conv1.5", eps=eps),
            ConvBN("conv1.6", "stem", None, w2, out, 3, 1, 1, 1, "bn1", "relu", eps=eps)), maxpool


def make_se(block: str, channels: int, reduced: int) -> SE:
    """The :class:`SE` layer of block ``block`` on ``channels`` channels, reduced to ``reduced``."""
    se = f"{block}.se"
    return SE(se, block, channels, reduced, SEFc(f"{se}.fc1", channels, reduced),
              SEFc(f"{se}.fc2", reduced, channels))


def make_block(name: str, layer: int, index: int, in_channels: int, width: int, out_channels: int,
               stride: int, groups: int, shortcut: str, naming: str = "torchvision",
               se_reduced: int = 0, eps: float = EPS) -> Block:
    """One bottleneck :class:`Block` from its hyperparameters (every block of a plan is made
    here; tests make odd-sized ones). ``shortcut`` is "identity", "projection" or
    "avgpool_projection"; ``naming`` "timm" names the projection as timm's vd models do
    (``downsample.0`` is the pool, even where there is none); ``se_reduced`` > 0 adds a
    squeeze-and-excitation layer of that width; ``eps`` is every BN's epsilon."""
    b, C = name, groups
    projection = None
    if shortcut != "identity":
        d = f"{b}.downsample"
        conv, bn = (f"{d}.1", f"{d}.2") if naming == "timm" else (f"{d}.0", f"{d}.1")
        if shortcut == "avgpool_projection":
            pool = Pool(f"{d}.0", "avg", in_channels, kernel=2, stride=2, padding=0, ceil_mode=True,
                        exclusive=True)
            projection = ConvBN(conv, "shortcut", b, in_channels, out_channels, 1, 1, 0, 1, bn, None,
                                pool, eps)
        else:
            projection = ConvBN(conv, "shortcut", b, in_channels, out_channels, 1, stride, 0, 1, bn, None,
                                eps=eps)
    return Block(
        b, layer, index, in_channels, width, out_channels, stride, C, shortcut,
        conv1=ConvBN(f"{b}.conv1", "conv1", b, in_channels, width, 1, 1, 0, 1, f"{b}.bn1", f"{b}.relu1",
                     eps=eps),
        conv2=ConvBN(f"{b}.conv2", "conv2", b, width, width, 3, stride, 1, C, f"{b}.bn2", f"{b}.relu2",
                     eps=eps),
        conv3=ConvBN(f"{b}.conv3", "conv3", b, width, out_channels, 1, 1, 0, 1, f"{b}.bn3", None, eps=eps),
        projection=projection, add=f"{b}.add",
        se=make_se(b, out_channels, se_reduced) if se_reduced else None)


def _block(config: ArchConfig, stage: int, index: int, cin: int) -> Block:
    stride = 2 if (index == 0 and stage > 0) else 1
    if index > 0:
        kind = "identity"
    else:
        # stage 1's first block needs a projection too (64 -> 256 channels); the vd models
        # pool only where the block strides
        kind = "avgpool_projection" if (config.avg_down and stride > 1) else "projection"
    se = config.se_widths[stage] if config.se_reduction else 0
    return make_block(f"layer{stage + 1}.{index}", stage + 1, index, cin, config.stage_width(stage),
                      config.stage_out(stage), stride, config.cardinality, kind, config.naming,
                      se, config.bn_eps)


def layer_plan(arch) -> Plan:
    """The :class:`Plan` of an architecture (a name or an :class:`ArchConfig`). A model makes
    its plan once (``model.plan``); pass that plan on rather than calling this again."""
    config = get_arch(arch)
    stem, pool = _stem(config)
    blocks, cin = [], config.stem_width
    for stage, depth in enumerate(config.depths):
        for index in range(depth):
            blocks.append(_block(config, stage, index, cin))
            cin = blocks[-1].out_channels
    return Plan(config, stem, pool, tuple(blocks),
                Head("avgpool", "fc", config.num_features, config.num_classes))


def as_plan(arch) -> Plan:
    """``arch`` itself when it is a :class:`Plan`, else its plan (a name or a config): for the
    public functions that accept any of the three. Inside the package, plans are passed."""
    return arch if isinstance(arch, Plan) else layer_plan(arch)
