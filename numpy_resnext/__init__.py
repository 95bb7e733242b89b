"""numpy-resnext: the ResNeXt family (Xie et al., CVPR 2017) written out in NumPy.

Quick use::

    import numpy as np, numpy_resnext as nrx
    model = nrx.build("ResNeXt50_32x4d", seed=0)             # or weights="file.pdparams"
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    logits = model(x)                                        # (1, 1000)
    logits, acts = model.forward(x, keep=["layer1.0.*"])     # named intermediates
    model.plan.block("layer2.0").conv2                       # a layer and its hyperparameters

The ops are plain functions (``nrx.conv2d``, ``nrx.batchnorm``, ``nrx.relu``,
``nrx.maxpool2d``, ``nrx.avgpool2d``, ``nrx.global_avgpool``, ``nrx.linear``, and the
squeeze-and-excitation layer ``nrx.squeeze_excite`` with ``nrx.sigmoid``), each with
its backward beside it (``nrx.conv2d_backward``, ...; ``nrx.softmax_cross_entropy`` and
its backward for the loss; ``nrx.gradients`` for a whole network); their loop twins,
forward and backward, live in :mod:`numpy_resnext.ops.naive`. Weight files: ``nrx.load_weights(path)`` (any
Paddle format, mapped onto canonical names) and ``nrx.read_paddle(path)`` (the file's own
names), neither of which imports Paddle. ``nrx.torch_capture(model, x, "capture.npz")``
records a torchvision or timm model's tensors under these names for ``numpy-resnext
compare`` (torch is imported when it is called).
"""

__version__ = "0.1.0"          # first, so that modules importing it find it during start-up

from .ops.activations import relu, relu_backward, sigmoid, sigmoid_backward
from .archs import ALIASES, ARCHS, ArchConfig, custom, get_arch, list_archs
from .plan import Block, ConvBN, Plan, Pool, layer_plan
from .ops.batchnorm import (batchnorm, batchnorm_backward, batchnorm_train, batchnorm_train_backward,
                        bn_scale_shift)
from .ops.conv import conv2d, conv2d_backward
from .ops.im2col import col2im, conv_output_size, im2col, weight_matrix
from .errors import (ArchitectureError, FormatError, InputError, InputTypeError, ResNeXtError,
                     WeightsError)
from .io import load_weights, read_paddle
from .golden.capture import torch_capture
from .grad import gradients
from .ops.linear import linear, linear_backward
from .ops.loss import softmax_cross_entropy, softmax_cross_entropy_backward
from .model import ResNeXt, build
from .params import check_params, count_params, init_params, param_shapes
from .ops.pooling import (avgpool2d, avgpool2d_backward, global_avgpool, global_avgpool_backward, maxpool2d,
                      maxpool2d_backward, pool_output_size)
from .ops.se import squeeze_excite, squeeze_excite_backward
from .summary import summarize


__all__ = ["Block", "ConvBN", "Plan", "Pool", "layer_plan",
    "ALIASES", "ARCHS", "ArchConfig", "ArchitectureError", "FormatError", "InputError",
    "InputTypeError", "ResNeXt", "ResNeXtError", "WeightsError", "avgpool2d", "batchnorm",
    "bn_scale_shift", "build", "check_params", "col2im", "conv2d",
    "conv_output_size", "count_params", "custom", "get_arch", "global_avgpool", "im2col",
    "init_params", "linear", "list_archs", "load_weights", "maxpool2d", "param_shapes",
    "pool_output_size", "read_paddle", "relu", "sigmoid", "squeeze_excite", "summarize",
    "torch_capture", "weight_matrix", "__version__",
    # backward of every op, and of the whole network
    "avgpool2d_backward", "batchnorm_backward", "batchnorm_train", "batchnorm_train_backward",
    "conv2d_backward", "global_avgpool_backward", "gradients", "linear_backward",
    "maxpool2d_backward", "relu_backward", "sigmoid_backward", "softmax_cross_entropy",
    "softmax_cross_entropy_backward", "squeeze_excite_backward",
]
