"""Exercise 3: a ResNeXt bottleneck block, forward and backward, from the package's ops.

Read first: docs/bottleneck.md (sections 1 and 4), docs/story.md (section 2), and the
block in numpy_resnext/walk.py (bottleneck) with its backward in numpy_resnext/grad.py
(_Backward.bottleneck); numpy_resnext/paper/minimal.py shows a whole network in one file.

Use the package's fast ops (inference BatchNorm, with the running statistics):
nrx.conv2d, nrx.batchnorm, nrx.relu and their backward nrx.conv2d_backward,
nrx.batchnorm_backward, nrx.relu_backward. The block named ``name`` (e.g. "layer2.0") reads
its tensors from ``params`` under the package's names: {name}.conv1.weight, {name}.bn1.weight,
.bias, .running_mean, .running_var, ... conv3 / bn3, and, when ``project`` is true, the
shortcut {name}.downsample.0.weight with its BN {name}.downsample.1.*:

    conv1 1x1 -> bn1 -> relu -> conv2 3x3 (stride, pad 1, groups) -> bn2 -> relu -> conv3 1x1 -> bn3
    shortcut: x itself, or 1x1 conv (stride) -> BN
    out = relu(residual + shortcut)

Check your work: python exercises/check.py bottleneck
"""

import numpy_resnext as nrx  # noqa: F401  (the ops to use)


def bottleneck_forward(x, params, name, stride=1, groups=1, project=False):
    """Returns (out, cache)."""
    raise NotImplementedError("exercise 3: write bottleneck_forward")


def bottleneck_backward(dout, cache):
    """Returns (dx, grads): grads maps every conv weight and BN weight / bias name of the block
    to its gradient (the running statistics get none)."""
    raise NotImplementedError("exercise 3: write bottleneck_backward")
