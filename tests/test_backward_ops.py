"""Every op's backward against centred finite differences in float64.

For an op y = f(x, ...) and a fixed random R, the scalar L = sum(f(...) * R) has
dL/dy = R, so each backward called with dout = R must return dL/d(input) and
dL/d(parameter); the centred difference (L(x + h) - L(x - h)) / 2h checks every entry.
Agreement is the toolkit's one measure (tests/_arrays.py), max |analytic - numeric| /
max |numeric|, and must be <= 1e-6. Inputs are drawn away from ReLU's kink and from max-pool ties so that the
function is smooth within +-h.
"""

import numpy as np
import pytest
from hypothesis import given

from numpy_resnext.ops.activations import relu, relu_backward
from numpy_resnext.ops.batchnorm import (batchnorm, batchnorm_backward, batchnorm_train,
                                     batchnorm_train_backward)
from numpy_resnext.ops.conv import conv2d, conv2d_backward
from numpy_resnext.ops.linear import linear, linear_backward
from numpy_resnext.ops.loss import softmax_cross_entropy, softmax_cross_entropy_backward
from numpy_resnext.ops.pooling import (avgpool2d, avgpool2d_backward, global_avgpool,
                                   global_avgpool_backward, maxpool2d, maxpool2d_backward)

from _arrays import assert_grad, conv_cases


def away_from_zero(rng, shape, gap=0.05):
    """Normal values pushed at least ``gap`` away from 0 (ReLU's kink)."""
    x = rng.standard_normal(shape)
    return np.where(x >= 0, x + gap, x - gap)


def distinct(rng, shape, gap=1e-3):
    """Values whose pairwise gaps exceed ``gap`` (no max-pool ties within +-h)."""
    n = int(np.prod(shape))
    return (rng.permutation(n) * gap + rng.uniform(-gap / 10, gap / 10, n)).reshape(shape) * 100 / n


# --- convolution --------------------------------------------------------------------------
CONV_CASES = [  # N, C, H, W, K, G, R, S, stride, padding
    (2, 4, 6, 5, 6, 2, 3, 3, (2, 1), (1, 0)),     # grouped, strided, padded
    (1, 6, 5, 5, 6, 6, 3, 3, 1, 1),               # depthwise
    (2, 3, 7, 7, 4, 1, 7, 7, 2, 3),               # the stem's 7x7/2
    (2, 5, 4, 6, 3, 1, 1, 1, 1, 0),               # 1x1 (the fast path)
    (2, 5, 5, 6, 3, 1, 1, 1, 2, 0),               # 1x1 strided projection
    (1, 8, 5, 4, 8, 4, 3, 3, 2, 1),               # ResNeXt's grouped 3x3/2
]


@pytest.mark.parametrize("case", CONV_CASES)
def test_conv2d_backward(rng, case):
    N, C, H, W, K, G, R, S, stride, padding = case
    x = rng.standard_normal((N, C, H, W))
    w = rng.standard_normal((K, C // G, R, S))
    dout = rng.standard_normal(conv2d(x, w, stride, padding, G).shape)
    dx, dw = conv2d_backward(dout, x, w, stride, padding, G)
    assert_grad(dx, lambda a: np.sum(conv2d(a, w, stride, padding, G) * dout), x, "conv dx")
    assert_grad(dw, lambda a: np.sum(conv2d(x, a, stride, padding, G) * dout), w, "conv dw")


@given(case=conv_cases(batch=(2, 2)))
def test_conv2d_backward_drawn(case):
    x, w, stride, padding, G, rng = case
    dout = rng.standard_normal(case.out_shape)
    dx, dw = conv2d_backward(dout, x, w, stride, padding, G)
    f = lambda a, b: np.sum(conv2d(a, b, stride, padding, G) * dout)
    assert_grad(dx, lambda a: f(a, w), x, "conv dx")
    assert_grad(dw, lambda b: f(x, b), w, "conv dw")


# --- BatchNorm --------------------------------------------------------------------------
def bn_params(rng, C):
    return (rng.uniform(0.5, 1.5, C), rng.normal(0, 0.3, C), rng.normal(0, 0.3, C), rng.uniform(0.5, 2, C))


def test_batchnorm_inference_backward(rng):
    w, b, mean, var = bn_params(rng, 3)
    x = rng.standard_normal((2, 3, 4, 3))
    dout = rng.standard_normal(x.shape)
    dx, dw, db = batchnorm_backward(dout, x, w, mean, var)
    f = lambda x_, w_, b_: np.sum(batchnorm(x_, w_, b_, mean, var) * dout)
    assert_grad(dx, lambda a: f(a, w, b), x, "bn dx")
    assert_grad(dw, lambda a: f(x, a, b), w, "bn dweight")
    assert_grad(db, lambda a: f(x, w, a), b, "bn dbias")


@pytest.mark.parametrize("shape", [(2, 3, 4, 3), (4, 2, 1, 1), (2, 5, 3, 1)])
def test_batchnorm_training_backward(rng, shape):
    """Through the batch mean and variance too (M = 4 values per channel at the smallest)."""
    w, b, mean, var = bn_params(rng, shape[1])
    x = rng.standard_normal(shape) * 2 + 0.5
    dout = rng.standard_normal(shape)
    _, cache, _, _ = batchnorm_train(x, w, b, mean, var)
    dx, dw, db = batchnorm_train_backward(dout, cache)
    f = lambda x_, w_, b_: np.sum(batchnorm_train(x_, w_, b_, mean, var)[0] * dout)
    assert_grad(dx, lambda a: f(a, w, b), x, "train bn dx")
    assert_grad(dw, lambda a: f(x, a, b), w, "train bn dweight")
    assert_grad(db, lambda a: f(x, w, a), b, "train bn dbias")


def test_batchnorm_training_statistics(rng):
    """Batch mean, biased variance, running = momentum * running + (1 - momentum) * batch."""
    w, b, mean, var = bn_params(rng, 3)
    x = rng.standard_normal((3, 3, 2, 5)) * 3 + 1
    y, _, new_mean, new_var = batchnorm_train(x, w, b, mean, var, momentum=0.9)
    for c in range(3):
        v = x[:, c].ravel()
        mu, s2 = sum(v) / v.size, sum((t - sum(v) / v.size) ** 2 for t in v) / v.size
        assert np.allclose(y[:, c], (x[:, c] - mu) / np.sqrt(s2 + 1e-5) * w[c] + b[c], rtol=1e-13, atol=1e-13)
        assert np.isclose(new_mean[c], 0.9 * mean[c] + 0.1 * mu, rtol=1e-14)
        assert np.isclose(new_var[c], 0.9 * var[c] + 0.1 * s2, rtol=1e-14)


# --- activations, pooling, head -----------------------------------------------------------
def test_relu_backward(rng):
    x = away_from_zero(rng, (2, 3, 4, 4))
    dout = rng.standard_normal(x.shape)
    assert_grad(relu_backward(dout, relu(x)), lambda a: np.sum(relu(a) * dout), x, "relu")
    assert_grad(relu_backward(dout, x), lambda a: np.sum(relu(a) * dout), x, "relu (input mask)")


@pytest.mark.parametrize("size, k, s, p", [((7, 6), 3, 2, 1), ((5, 5), 2, 2, 0), ((6, 4), 3, 1, 1)])
def test_maxpool2d_backward(rng, size, k, s, p):
    x = distinct(rng, (2, 2) + size)
    dout = rng.standard_normal(maxpool2d(x, k, s, p).shape)
    dx = maxpool2d_backward(dout, x, k, s, p)
    assert_grad(dx, lambda a: np.sum(maxpool2d(a, k, s, p) * dout), x, "maxpool", h=1e-7)


def test_maxpool2d_tie_goes_to_the_first_maximum():
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 0, 1] = x[0, 0, 1, 0] = x[0, 0, 2, 2] = 1.0           # three equal maxima
    dx = maxpool2d_backward(np.ones((1, 1, 1, 1)), x, kernel=3, stride=1, padding=0)
    expected = np.zeros_like(x)
    expected[0, 0, 0, 1] = 1.0                                    # row by row: (0, 1) comes first
    assert np.array_equal(dx, expected)


@pytest.mark.parametrize("size, k, s, p, ceil, excl", [
    ((7, 5), 2, 2, 0, True, True),      # the vd shortcut, odd sizes: edge windows hold 1-2 pixels
    ((4, 6), 2, 2, 0, True, True),
    ((6, 5), 3, 2, 1, False, True),
    ((5, 5), 3, 2, 1, True, False),     # inclusive counting, ceil mode
])
def test_avgpool2d_backward(rng, size, k, s, p, ceil, excl):
    x = rng.standard_normal((2, 3) + size)
    dout = rng.standard_normal(avgpool2d(x, k, s, p, ceil, excl).shape)
    dx = avgpool2d_backward(dout, x.shape, k, s, p, ceil, excl)
    assert_grad(dx, lambda a: np.sum(avgpool2d(a, k, s, p, ceil, excl) * dout), x, "avgpool")


def test_global_avgpool_backward(rng):
    x = rng.standard_normal((2, 3, 4, 5))
    dout = rng.standard_normal((2, 3))
    assert_grad(global_avgpool_backward(dout, x.shape), lambda a: np.sum(global_avgpool(a) * dout), x,
                "global avgpool")


def test_linear_backward(rng):
    x, w, b = rng.standard_normal((3, 4)), rng.standard_normal((5, 4)), rng.standard_normal(5)
    dout = rng.standard_normal((3, 5))
    dx, dw, db = linear_backward(dout, x, w)
    f = lambda x_, w_, b_: np.sum(linear(x_, w_, b_) * dout)
    assert_grad(dx, lambda a: f(a, w, b), x, "fc dx")
    assert_grad(dw, lambda a: f(x, a, b), w, "fc dweight")
    assert_grad(db, lambda a: f(x, w, a), b, "fc dbias")


def test_softmax_cross_entropy_backward(rng):
    z = rng.standard_normal((4, 6)) * 3
    labels = np.array([0, 5, 2, 2])
    loss, probs = softmax_cross_entropy(z, labels)
    ref = -np.mean([z[i, labels[i]] - np.log(np.sum(np.exp(z[i]))) for i in range(4)])
    assert abs(loss - ref) <= 1e-14 * abs(ref)
    assert_grad(softmax_cross_entropy_backward(probs, labels), lambda a: softmax_cross_entropy(a, labels)[0], z,
                "cross-entropy")


def test_softmax_cross_entropy_is_stable():
    loss, probs = softmax_cross_entropy(np.array([[1000.0, 0.0], [-1000.0, 0.0]]), np.array([0, 0]))
    assert np.isfinite(loss) and np.isclose(loss, 500.0) and np.isfinite(probs).all()


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_outputs_have_the_input_shapes(rng, dtype):
    """Every backward returns each gradient in its input's shape and dtype, on odd sizes
    where the windows do not tile the input (7x5 under 3x3/2 pad 1 and 2x2/2 ceil mode)."""
    x = rng.standard_normal((2, 4, 7, 5)).astype(dtype)
    w = rng.standard_normal((6, 2, 3, 3)).astype(dtype)
    bw, bb, mean, var = (a.astype(dtype) for a in bn_params(rng, 4))
    like = lambda y: rng.standard_normal(y.shape).astype(dtype)
    grads = {
        "conv": (conv2d_backward(like(conv2d(x, w, 2, 1, 2)), x, w, 2, 1, 2), (x, w)),
        "bn": (batchnorm_backward(like(x), x, bw, mean, var), (x, bw, bb)),
        "bn train": (batchnorm_train_backward(like(x), batchnorm_train(x, bw, bb, mean, var)[1]), (x, bw, bb)),
        "relu": ((relu_backward(like(x), x),), (x,)),
        "maxpool": ((maxpool2d_backward(like(maxpool2d(x, 3, 2, 1)), x, 3, 2, 1),), (x,)),
        "avgpool": ((avgpool2d_backward(like(avgpool2d(x, 2, 2, 0, True, True)), x.shape, 2, 2, 0, True, True),),
                    (x,)),
        "global avgpool": ((global_avgpool_backward(like(global_avgpool(x)), x.shape),), (x,)),
    }
    f, fw = global_avgpool(x), rng.standard_normal((3, 4)).astype(dtype)
    grads["fc"] = (linear_backward(like(linear(f, fw)), f, fw), (f, fw, fw[:, 0]))
    for op, (gs, inputs) in grads.items():
        assert len(gs) == len(inputs), op
        for g, a in zip(gs, inputs):
            assert g.shape == a.shape and g.dtype == a.dtype, (op, g.shape, g.dtype, a.shape, a.dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_backward_is_np_where_bit_for_bit(dtype):
    """The bitwise-AND form gives np.where(y > 0, dout, 0) exactly: inf and NaN in dout stay
    where the gradient flows and become +0.0 elsewhere; -0.0, NaN and 0 in y stop it."""
    rng = np.random.default_rng(7)
    y = np.maximum(rng.standard_normal((2, 3, 5, 4)), 0).astype(dtype)
    y.flat[:4] = [0.0, -0.0, np.nan, 1.0]
    dout = rng.standard_normal(y.shape).astype(dtype)
    dout.flat[:8] = [np.inf, -np.inf, np.nan, -0.0, np.inf, np.nan, -1.0, -0.0]
    for d, yy in ((dout, y), (dout.transpose(0, 2, 3, 1).copy().transpose(0, 3, 1, 2), y)):
        got = relu_backward(d, yy)
        want = np.where(yy > 0, d, np.zeros((), dtype))
        bits = np.dtype(f"u{np.dtype(dtype).itemsize}")
        np.testing.assert_array_equal(got.view(bits), want.view(bits))
        assert got.dtype == dtype and not np.shares_memory(got, d)
