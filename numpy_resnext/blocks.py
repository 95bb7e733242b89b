"""The network's pieces as functions: the stem, the bottleneck block, the head.

Each takes the input, the parameter dict under canonical names and an ``emit`` callback,
and calls ``emit(name, array)`` after every op so a caller can keep any named
intermediate (see :class:`Capture`); the forward code exists once. Arrays created here
are owned by the forward pass, which lets BN and ReLU work in place; ``emit`` copies
whatever it keeps, and no input is ever modified.

The bottleneck, as in the paper (Fig. 3c) with the stride on the grouped 3x3:

    x -> conv1 1x1 (in -> width) -> bn1 -> relu1
      -> conv2 3x3, groups = C, stride -> bn2 -> relu2
      -> conv3 1x1 (width -> out) -> bn3 ------------------+-> add -> relu -> block output
    x -> shortcut: identity | 1x1 conv (stride) + BN       |
                 | vd: avgpool 2x2/2 ceil exclusive, 1x1 conv + BN
"""

from __future__ import annotations

import fnmatch

from .activations import relu
from .archs import ArchConfig, BlockPlan
from .batchnorm import batchnorm
from .conv import conv2d
from .linear import linear
from .params import shortcut_names, stem_layers, stem_relu_names
from .pooling import avgpool2d, global_avgpool, maxpool2d


class Capture:
    """Keeps copies of the named intermediates whose names match ``select``.

    select: None (keep nothing), True (keep all), or an iterable of names / glob
    patterns ("layer1.0.*", "fc"). ``tensors`` holds what was kept, in execution order.
    """

    def __init__(self, select=None):
        if select is None or select is False:
            self._match = None
        elif select is True:
            self._match = lambda name: True
        else:
            patterns = [select] if isinstance(select, str) else list(select)
            self._match = lambda name: any(fnmatch.fnmatchcase(name, p) for p in patterns)
        self.tensors = {}

    def __call__(self, name, value):
        if self._match is not None and self._match(name):
            self.tensors[name] = value.copy()


def _bn(x, params, name):
    """In-place inference BatchNorm on an array the forward pass owns."""
    return batchnorm(x, params[f"{name}.weight"], params[f"{name}.bias"],
                     params[f"{name}.running_mean"], params[f"{name}.running_var"], out=x)


def stem(x, params, config: ArchConfig, emit, norm=None):
    """Plain: 7x7/2 conv, BN, ReLU, max-pool. Deep (vd): three 3x3 conv+BN+ReLU, max-pool."""
    norm = norm or _bn
    for (conv, bn, _, _, _, stride, padding), relu_name in zip(stem_layers(config), stem_relu_names(config)):
        x = conv2d(x, params[f"{conv}.weight"], stride=stride, padding=padding)
        emit(conv, x)
        x = norm(x, params, bn)
        emit(bn, x)
        x = relu(x, out=x)
        emit(relu_name, x)
    x = maxpool2d(x, kernel=3, stride=2, padding=1)
    emit("maxpool", x)
    return x


def bottleneck(x, params, block: BlockPlan, config: ArchConfig, emit, norm=None):
    """One ResNeXt block (split-transform-merge as a grouped convolution).

    norm: the BatchNorm to apply, ``norm(x, params, bn_name) -> y`` (it may work in place
    on x, which the forward owns); default inference BN with the running statistics.
    Training-mode BN (batch statistics) is passed in by :mod:`numpy_resnext.grad`.
    """
    norm = norm or _bn
    b = block.name
    y = conv2d(x, params[f"{b}.conv1.weight"])                           # N, width, H, W
    emit(f"{b}.conv1", y)
    y = norm(y, params, f"{b}.bn1")
    emit(f"{b}.bn1", y)
    y = relu(y, out=y)
    emit(f"{b}.relu1", y)
    y = conv2d(y, params[f"{b}.conv2.weight"], stride=block.stride, padding=1,
               groups=block.groups)                                      # N, width, H/s, W/s
    emit(f"{b}.conv2", y)
    y = norm(y, params, f"{b}.bn2")
    emit(f"{b}.bn2", y)
    y = relu(y, out=y)
    emit(f"{b}.relu2", y)
    y = conv2d(y, params[f"{b}.conv3.weight"])                           # N, out, H/s, W/s
    emit(f"{b}.conv3", y)
    y = norm(y, params, f"{b}.bn3")
    emit(f"{b}.bn3", y)
    y += shortcut(x, params, block, config, emit, norm)
    emit(f"{b}.add", y)
    y = relu(y, out=y)
    emit(b, y)
    return y


def shortcut(x, params, block: BlockPlan, config: ArchConfig, emit, norm=None):
    """Identity, 1x1 projection + BN, or (vd) avg-pool then 1x1 projection + BN."""
    if block.shortcut == "identity":
        return x
    pool, conv, bn = shortcut_names(config, block.name)
    stride = block.stride
    if block.shortcut == "avgpool_projection":
        x = avgpool2d(x, kernel=2, stride=2, padding=0, ceil_mode=True, exclusive=True)
        emit(pool, x)
        stride = 1
    s = conv2d(x, params[f"{conv}.weight"], stride=stride)
    emit(conv, s)
    s = (norm or _bn)(s, params, bn)
    emit(bn, s)
    return s


def head(x, params, emit):
    """Global average pool, then the fully connected layer: (N, C, H, W) -> (N, classes)."""
    f = global_avgpool(x)                                                # N, C
    emit("avgpool", f)
    logits = linear(f, params["fc.weight"], params["fc.bias"])           # N, classes
    emit("fc", logits)
    return logits
