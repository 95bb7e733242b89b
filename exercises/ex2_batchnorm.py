"""Exercise 2: BatchNorm's backward in training mode.

Read first: docs/batchnorm.md (section 2: the batch statistics and the backward derived step
by step); numpy_resnext/ops/naive.py batchnorm_train_backward writes it the long way, through
the batch mean and the batch variance separately.

The forward is given: per channel c, the M = N*H*W values of x[:, c] are normalised by their
own mean m and biased variance v, xhat = (x - m) / sqrt(v + eps), then y = xhat * gamma + beta.
Because m and v are computed from x, a change of one x moves every xhat of its channel: the
backward has a term through xhat directly, one through m and one through v.

Check your work: python exercises/check.py batchnorm
"""

import numpy as np

EPS = 1e-5


def bn_train_forward(x, gamma, beta):
    """Returns (y, cache). x (N, C, H, W); gamma, beta (C,)."""
    m = x.mean(axis=(0, 2, 3), keepdims=True)                  # 1, C, 1, 1
    v = x.var(axis=(0, 2, 3), keepdims=True)                   # biased: divided by M
    xhat = (x - m) / np.sqrt(v + EPS)
    y = xhat * gamma[None, :, None, None] + beta[None, :, None, None]
    return y, (x, xhat, v, gamma)


def bn_train_backward(dout, cache):
    """Returns (dx, dgamma, dbeta) for dout = dL/dy (N, C, H, W)."""
    x, xhat, v, gamma = cache
    # TODO: dbeta and dgamma are sums over every axis but the channel's; dx needs the three
    # paths (direct, through m, through v), or the compact formula of docs/batchnorm.md.
    raise NotImplementedError("exercise 2: write bn_train_backward")
