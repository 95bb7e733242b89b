"""Rectified linear unit: y = max(x, 0), elementwise, same shape, dtype and memory order."""

import numpy as np


def relu(x, out=None):
    """max(x, 0) elementwise; NaN stays NaN (so bad weights are never hidden).

    ``out`` may be ``x`` itself for an in-place update of an array the caller owns.
    """
    return np.maximum(x, 0, out=out)


def relu_backward(dout, y):
    """Gradient of :func:`relu` given its output ``y`` (or input: same sign pattern).

    The gradient flows where the output is positive; at exactly 0 it is 0 (as in Paddle
    and torch). Returns a new array.
    """
    return np.where(y > 0, dout, np.zeros((), dtype=dout.dtype))
