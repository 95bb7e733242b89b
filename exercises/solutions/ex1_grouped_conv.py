"""Exercise 1, solved: the grouped convolution, one output pixel at a time."""

import numpy as np


def _window(xp, i, j, R, S, stride):
    """The R x S input window of output pixel (i, j): (N, C, R, S)."""
    return xp[:, :, i * stride:i * stride + R, j * stride:j * stride + S]


def conv_forward(x, w, stride=1, pad=0, groups=1):
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))         # N, C, H + 2 pad, W + 2 pad
    K, Cg, R, S = w.shape
    OH, OW = ((size - k) // stride + 1 for size, k in zip(xp.shape[2:], (R, S)))
    out = np.zeros((x.shape[0], K, OH, OW), dtype=x.dtype)
    Kg = K // groups
    for g in range(groups):
        k, c = slice(g * Kg, (g + 1) * Kg), slice(g * Cg, (g + 1) * Cg)
        for i in range(OH):
            for j in range(OW):
                window = _window(xp[:, c], i, j, R, S, stride)                    # N, Cg, R, S
                out[:, k, i, j] = np.tensordot(window, w[k], axes=([1, 2, 3], [1, 2, 3]))  # N, Kg
    return out, (x, w, stride, pad, groups)


def conv_backward(dout, cache):
    x, w, stride, pad, groups = cache
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dxp, dw = np.zeros_like(xp), np.zeros_like(w)
    K, Cg, R, S = w.shape
    Kg = K // groups
    for g in range(groups):
        k, c = slice(g * Kg, (g + 1) * Kg), slice(g * Cg, (g + 1) * Cg)
        for i, j in np.ndindex(*dout.shape[2:]):                       # every output pixel
            d = dout[:, k, i, j]                                           # N, Kg
            dw[k] += np.tensordot(d, _window(xp[:, c], i, j, R, S, stride), axes=([0], [0]))
            dxp[:, c, i * stride:i * stride + R, j * stride:j * stride + S] += \
                np.tensordot(d, w[k], axes=([1], [0]))                     # N, Cg, R, S
    return dxp[:, :, pad:pad + x.shape[2], pad:pad + x.shape[3]], dw
