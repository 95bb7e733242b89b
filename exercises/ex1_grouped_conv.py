"""Exercise 1: the grouped convolution, forward and backward.

Read first: docs/grouped_convolution.md (sections 1 and 3) and docs/backward.md (sections 0
and 1); the loops of numpy_resnext/ops/naive.py (conv2d, conv2d_backward) spell out the
same sums; numpy_resnext/paper/minimal.py (conv_forward) is one answer, read it afterwards.

Shapes: x (N, C, H, W), w (K, C/G, R, S) with G = groups, output (N, K, OH, OW),
OH = (H + 2*pad - R) // stride + 1 (OW likewise). Zero padding. Output channel k belongs to
group g = k // (K/G) and reads only that group's input channels g*C/G .. (g+1)*C/G - 1:

    out[n, k, i, j] = sum over c, r, s of w[k, c, r, s] * xpad[n, g*C/G + c, i*stride + r, j*stride + s]

The backward gets dout = dL/dout (N, K, OH, OW) and returns dL/dx and dL/dw: every product of
the sum above sends dout * w to the input pixel it read and dout * xpad to the weight, and a
pixel read by several windows adds up what each sends (docs/backward.md, section 0).

Check your work: python exercises/check.py conv
"""

import numpy as np


def conv_forward(x, w, stride=1, pad=0, groups=1):
    """Returns (out, cache); cache is whatever conv_backward needs."""
    # TODO: pad x with zeros, then compute out group by group (a loop over output pixels,
    # or over the R*S kernel taps, is fine: correctness first).
    raise NotImplementedError("exercise 1: write conv_forward")


def conv_backward(dout, cache):
    """Returns (dx, dw), shaped like x and w."""
    # TODO: mirror the forward; accumulate into a padded dx, then cut the padding off.
    raise NotImplementedError("exercise 1: write conv_backward")
