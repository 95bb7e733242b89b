"""Exercise 2, solved: BatchNorm's training backward, the compact formula."""

import numpy as np

EPS = 1e-5


def bn_train_backward(dout, cache):
    x, xhat, v, gamma = cache
    axes = (0, 2, 3)
    dbeta = dout.sum(axis=axes)
    dgamma = (dout * xhat).sum(axis=axes)
    g = dout * gamma[None, :, None, None]                       # dL/dxhat
    # the mean of g is the path through m, the mean of g * xhat the path through v
    dx = (g - g.mean(axis=axes, keepdims=True) - xhat * (g * xhat).mean(axis=axes, keepdims=True)) \
        / np.sqrt(v + EPS)
    return dx, dgamma, dbeta
