"""Shape arithmetic over a whole network, without running it.

:func:`output_shapes` walks the same block plan as the forward pass and lists, for each
name the forward pass emits, the op, the per-sample output shape, groups, trainable
parameters and multiply-accumulates (MACs; conv and fc only, per sample). The summary
command prints it; the tests check it against the shapes the real forward produces.
"""

from __future__ import annotations

from .archs import ArchConfig, block_plan
from .conv import conv_output_size
from .params import shortcut_names, stem_layers, stem_relu_names
from .pooling import pool_output_size


def output_shapes(config: ArchConfig, height: int, width: int) -> list:
    """Rows {name, op, shape, groups, params, macs} in execution order for one sample."""
    rows = []
    H, W = height, width

    def conv(name, cin, cout, k, s, p, g=1):
        nonlocal H, W
        H, W = conv_output_size(H, k, s, p), conv_output_size(W, k, s, p)
        params = cout * (cin // g) * k * k
        rows.append(dict(name=name, op=f"conv {k}x{k}/{s}", shape=(cout, H, W), groups=g,
                         params=params, macs=params * max(H, 0) * max(W, 0)))

    def simple(name, op, c, params=0):
        rows.append(dict(name=name, op=op, shape=(c, H, W), groups=1, params=params, macs=0))

    for (cname, bname, cin, cout, k, s, p), rname in zip(stem_layers(config), stem_relu_names(config)):
        conv(cname, cin, cout, k, s, p)
        simple(bname, "batchnorm", cout, 2 * cout)
        simple(rname, "relu", cout)
    H, W = pool_output_size(H, 3, 2, 1), pool_output_size(W, 3, 2, 1)
    simple("maxpool", "maxpool 3x3/2", config.stem_width)
    for b in block_plan(config):
        H0, W0 = H, W
        n = b.name
        conv(f"{n}.conv1", b.in_channels, b.width, 1, 1, 0)
        simple(f"{n}.bn1", "batchnorm", b.width, 2 * b.width)
        simple(f"{n}.relu1", "relu", b.width)
        conv(f"{n}.conv2", b.width, b.width, 3, b.stride, 1, b.groups)
        simple(f"{n}.bn2", "batchnorm", b.width, 2 * b.width)
        simple(f"{n}.relu2", "relu", b.width)
        conv(f"{n}.conv3", b.width, b.out_channels, 1, 1, 0)
        simple(f"{n}.bn3", "batchnorm", b.out_channels, 2 * b.out_channels)
        H1, W1 = H, W
        if b.shortcut != "identity":
            pool, cname, bname = shortcut_names(config, b.name)
            H, W = H0, W0
            stride = b.stride
            if b.shortcut == "avgpool_projection":
                H, W = pool_output_size(H, 2, 2, 0, True), pool_output_size(W, 2, 2, 0, True)
                simple(pool, "avgpool 2x2/2 ceil", b.in_channels)
                stride = 1
            conv(cname, b.in_channels, b.out_channels, 1, stride, 0)
            simple(bname, "batchnorm", b.out_channels, 2 * b.out_channels)
            if (H, W) != (H1, W1):
                H, W = -1, -1   # shortcut and branch disagree: the input is too small
        simple(f"{n}.add", "add", b.out_channels)
        simple(n, "relu (block output)", b.out_channels)
    rows.append(dict(name="avgpool", op="global avgpool", shape=(config.num_features,), groups=1,
                     params=0, macs=0))
    fc_params = config.num_features * config.num_classes + config.num_classes
    rows.append(dict(name="fc", op="fully connected", shape=(config.num_classes,), groups=1,
                     params=fc_params, macs=config.num_features * config.num_classes))
    return rows


def valid_size(config: ArchConfig, height: int, width: int) -> bool:
    """True when every layer of ``config`` has at least a 1x1 output."""
    return all(len(r["shape"]) == 1 or (r["shape"][1] >= 1 and r["shape"][2] >= 1)
               for r in output_shapes(config, height, width))


def min_input_size(config: ArchConfig):
    """The smallest (H, W) the network accepts, each side searched with the other one large."""
    big = 4096
    h = next((s for s in range(1, big) if valid_size(config, s, big)), big)
    w = next((s for s in range(1, big) if valid_size(config, big, s)), big)
    return h, w


def totals(config: ArchConfig, height: int = 224, width: int = 224):
    """(trainable parameters, MACs per sample) at the given input size."""
    rows = output_shapes(config, height, width)
    return sum(r["params"] for r in rows), sum(r["macs"] for r in rows)
