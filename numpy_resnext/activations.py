"""Rectified linear unit: y = max(x, 0), elementwise, same shape, dtype and memory order."""

import numpy as np


def relu(x, out=None):
    """max(x, 0) elementwise; NaN stays NaN (so bad weights are never hidden).

    ``out`` may be ``x`` itself for an in-place update of an array the caller owns.
    """
    return np.maximum(x, _zero_row(x), out=out)


def _zero_row(x):
    """A zero broadcasting along ``x``'s fastest-varying memory axis (else the scalar 0).

    Why: NumPy's maximum against a scalar runs a slower loop than against an array; a row
    of zeros that matches the contiguous axis gives the same values 2-3x faster.
    """
    if not isinstance(x, np.ndarray) or x.ndim == 0 or x.size == 0:
        return 0
    axis = min(range(x.ndim), key=lambda a: (x.shape[a] == 1, abs(x.strides[a])))
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]
    return np.zeros(shape, dtype=x.dtype)


def relu_backward(dout, y):
    """Gradient of :func:`relu` given its output ``y`` (or input: same sign pattern).

    The gradient flows where the output is positive; at exactly 0 it is 0 (as in Paddle
    and torch). Returns a new array.
    """
    return np.where(y > 0, dout, np.zeros((), dtype=dout.dtype))
