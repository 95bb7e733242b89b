"""The learner's loop twins of every backward (numpy_resnext/ops/naive.py) against the fast
backward ops, float64, 1e-12 relative, on Hypothesis-drawn shapes; plus the two forward
twins naive.py adds for training (batchnorm_train, softmax_cross_entropy).

The twins are independent of the fast code: plain loops over each definition (BN's
training backward even in the long three-path form, not the fast op's simplified one).
Both sides are also checked against finite differences elsewhere (test_backward_ops.py).
"""

import numpy as np
from hypothesis import assume, given, strategies as st

from numpy_resnext.ops import naive
from numpy_resnext.ops.activations import relu, relu_backward
from numpy_resnext.ops.batchnorm import (batchnorm_backward, batchnorm_train, batchnorm_train_backward)
from numpy_resnext.ops.conv import conv2d_backward
from numpy_resnext.ops.linear import linear_backward
from numpy_resnext.ops.loss import softmax_cross_entropy, softmax_cross_entropy_backward
from numpy_resnext.ops.se import squeeze_excite, squeeze_excite_backward
from numpy_resnext.ops.pooling import (avgpool2d_backward, global_avgpool_backward, maxpool2d,
                                   maxpool2d_backward, pool_output_size)

from _arrays import LAYOUTS, assert_close, assert_grad, conv_cases, in_layout, pool_cases

RTOL = 1e-12
seeds = st.integers(0, 2**32 - 1)


@given(case=conv_cases(), layout=st.sampled_from(LAYOUTS))
def test_conv2d_backward_matches_loops(case, layout):
    x, w, stride, padding, G, rng = case
    dout = rng.standard_normal(case.out_shape)
    dx, dw = conv2d_backward(in_layout(dout, layout), in_layout(x, layout), w, stride, padding, G)
    ndx, ndw = naive.conv2d_backward(dout, x, w, stride, padding, G)
    assert_close(dx, ndx, RTOL, "dx")
    assert_close(dw, ndw, RTOL, "dw")


def test_conv2d_backward_resnext_grouped_3x3(rng):
    """The block's grouped 3x3 shape (stride 2, pad 1) at 8 groups of 2 channels, odd size."""
    x, w = rng.standard_normal((2, 16, 5, 7)), rng.standard_normal((16, 2, 3, 3))
    dout = rng.standard_normal((2, 16, 3, 4))
    for fast, slow in zip(conv2d_backward(dout, x, w, 2, 1, 8), naive.conv2d_backward(dout, x, w, 2, 1, 8)):
        assert_close(fast, slow, RTOL)


@st.composite
def bn_cases(draw):
    N, C, H, W = (draw(st.integers(1, 3)), draw(st.integers(1, 4)), draw(st.integers(1, 4)),
                  draw(st.integers(1, 4)))
    assume(N * H * W >= 2)                         # a batch variance needs two values
    rng = np.random.default_rng(draw(seeds))
    x = rng.standard_normal((N, C, H, W)) * rng.uniform(0.5, 3) + rng.uniform(-2, 2)
    weight, bias = rng.standard_normal(C), rng.standard_normal(C)
    mean, var = rng.standard_normal(C), rng.uniform(0.2, 3, C)
    return x, weight, bias, mean, var, rng.standard_normal(x.shape)


@given(case=bn_cases())
def test_batchnorm_inference_backward_matches_loops(case):
    x, weight, _, mean, var, dout = case
    for what, fast, slow in zip(("dx", "dweight", "dbias"), batchnorm_backward(dout, x, weight, mean, var),
                                naive.batchnorm_backward(dout, x, weight, mean, var)):
        assert_close(fast, slow, RTOL, what)


@given(case=bn_cases(), momentum=st.sampled_from([0.9, 0.5]))
def test_batchnorm_train_forward_and_backward_match_loops(case, momentum):
    x, weight, bias, mean, var, dout = case
    y, cache, new_mean, new_var = batchnorm_train(x, weight, bias, mean, var, momentum=momentum)
    ny, ncache, nmean, nvar = naive.batchnorm_train(x, weight, bias, mean, var, momentum=momentum)
    assert_close(y, ny, RTOL, "y")
    assert_close(new_mean, nmean, RTOL, "running mean")
    assert_close(new_var, nvar, RTOL, "running var")
    # dx = weight*inv_std * (dout - mean(dout) - xhat*mean(dout*xhat)) cancels (to ~1e-5 when
    # M = 2): its rounding error scales with the terms, not with dx, hence the atol
    inv_std = 1 / np.sqrt(x.var(axis=(0, 2, 3)) + 1e-5)
    xhat_max = float(np.abs((x - x.mean(axis=(0, 2, 3), keepdims=True)) * inv_std[:, None, None]).max())
    terms = float(np.abs(dout).max()) * (1 + xhat_max ** 2) * float(np.abs(weight * inv_std).max())
    for what, fast, slow in zip(("dx", "dweight", "dbias"), batchnorm_train_backward(dout, cache),
                                naive.batchnorm_train_backward(dout, ncache)):
        assert_close(fast, slow, RTOL, what, atol=RTOL * terms if what == "dx" else 0.0)


@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4), st.integers(1, 4)),
       seed=seeds)
def test_relu_backward_matches_loops(shape, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape)
    x[rng.random(shape) < 0.2] = 0.0               # exact zeros: the gradient there is 0
    dout = rng.standard_normal(shape)
    y = relu(x)
    np.testing.assert_array_equal(relu_backward(dout, y), naive.relu_backward(dout, y))
    np.testing.assert_array_equal(naive.relu_backward(dout, x), naive.relu_backward(dout, y))


@given(case=pool_cases(max_hw=7), ceil=st.booleans())
def test_maxpool_backward_matches_loops(case, ceil):
    x, k, s, p, rng = case
    dout = rng.standard_normal(maxpool2d(x, k, s, p, ceil).shape)
    assert_close(maxpool2d_backward(dout, x, k, s, p, ceil), naive.maxpool2d_backward(dout, x, k, s, p, ceil),
                 RTOL)


@given(case=pool_cases(max_hw=7, ties=True))
def test_maxpool_backward_ties_go_to_the_first_maximum(case):
    """Integer inputs from {-2..2}: most windows have tied maxima; both sides route each
    window's gradient to the first maximum row by row (so the totals cannot hide it)."""
    x, k, s, p, rng = case
    dout = rng.standard_normal(maxpool2d(x, k, s, p).shape)
    assert_close(maxpool2d_backward(dout, x, k, s, p), naive.maxpool2d_backward(dout, x, k, s, p), RTOL)


def test_maxpool_backward_tie_rule_by_hand():
    """A 2x2 window of equal values: only the top-left pixel receives the gradient."""
    x = np.ones((1, 1, 2, 2))
    expected = np.array([[[[5.0, 0.0], [0.0, 0.0]]]])
    np.testing.assert_array_equal(naive.maxpool2d_backward(np.full((1, 1, 1, 1), 5.0), x, 2, 2, 0), expected)
    np.testing.assert_array_equal(maxpool2d_backward(np.full((1, 1, 1, 1), 5.0), x, 2, 2, 0), expected)


@given(case=pool_cases(max_hw=7), ceil_mode=st.booleans(), exclusive=st.booleans())
def test_avgpool_backward_matches_loops(case, ceil_mode, exclusive):
    x, k, s, p, rng = case
    OH = pool_output_size(x.shape[2], k, s, p, ceil_mode)
    OW = pool_output_size(x.shape[3], k, s, p, ceil_mode)
    assume(OH >= 1 and OW >= 1)
    dout = rng.standard_normal((x.shape[0], x.shape[1], OH, OW))
    fast = avgpool2d_backward(dout, x.shape, k, s, p, ceil_mode=ceil_mode, exclusive=exclusive)
    slow = naive.avgpool2d_backward(dout, x.shape, k, s, p, ceil_mode=ceil_mode, exclusive=exclusive)
    assert_close(fast, slow, RTOL)


def test_avgpool_backward_vd_shortcut_by_hand():
    """2x2/2 ceil, exclusive, on 3x3: the corner window holds one pixel and passes all of dout."""
    dout = np.array([[[[4.0, 2.0], [2.0, 1.0]]]])
    expected = np.array([[[[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]]])
    np.testing.assert_array_equal(naive.avgpool2d_backward(dout, (1, 1, 3, 3)), expected)
    np.testing.assert_array_equal(avgpool2d_backward(dout, (1, 1, 3, 3)), expected)


@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 5), st.integers(1, 5)),
       seed=seeds)
def test_global_avgpool_backward_matches_loops(shape, seed):
    dout = np.random.default_rng(seed).standard_normal(shape[:2])
    assert_close(global_avgpool_backward(dout, shape), naive.global_avgpool_backward(dout, shape), RTOL)


@given(N=st.integers(1, 4), I=st.integers(1, 6), O=st.integers(1, 5), seed=seeds)
def test_linear_backward_matches_loops(N, I, O, seed):
    rng = np.random.default_rng(seed)
    x, w, dout = rng.standard_normal((N, I)), rng.standard_normal((O, I)), rng.standard_normal((N, O))
    for what, fast, slow in zip(("dx", "dweight", "dbias"), linear_backward(dout, x, w),
                                naive.linear_backward(dout, x, w)):
        assert_close(fast, slow, RTOL, what)


@given(N=st.integers(1, 4), K=st.integers(2, 7), scale=st.sampled_from([1.0, 30.0, 800.0]), seed=seeds)
def test_softmax_cross_entropy_and_backward_match_loops(N, K, scale, seed):
    """scale 800: exp(800) overflows, so both sides must subtract the row maximum."""
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((N, K)) * scale
    labels = rng.integers(0, K, N)
    loss, probs = softmax_cross_entropy(z, labels)
    nloss, nprobs = naive.softmax_cross_entropy(z, labels)
    assert np.isfinite(loss) and abs(loss - nloss) <= RTOL * max(abs(nloss), 1.0)
    assert_close(probs, nprobs, RTOL, "probs")
    # dlogits = (probs - onehot) / N cancels where a probability is near 1: the terms are <= 1/N
    assert_close(softmax_cross_entropy_backward(probs, labels),
                 naive.softmax_cross_entropy_backward(nprobs, labels), RTOL, "dlogits", atol=RTOL / N)


def test_naive_backward_leaves_inputs_alone(rng):
    x, w, dout = rng.standard_normal((1, 4, 5, 5)), rng.standard_normal((4, 2, 3, 3)), rng.standard_normal((1, 4, 3, 3))
    for a in (x, w, dout):
        a.flags.writeable = False                 # any write raises
    naive.conv2d_backward(dout, x, w, 2, 1, 2)
    naive.batchnorm_train_backward(x, naive.BNTrainCache(x, w[:, 0, 0, 0], 1e-5))
    naive.maxpool2d_backward(dout[:, :, :2, :2], x, 3, 2, 0)


def test_backward_functions_are_exported_at_the_top_level():
    import importlib

    import numpy_resnext as nrx
    # nrx.batchnorm, nrx.linear are the functions; the modules come by their full names
    activations, batchnorm, conv, grad, linear, loss, pooling = (
        importlib.import_module(f"numpy_resnext.{m}")
        for m in ("ops.activations", "ops.batchnorm", "ops.conv", "grad", "ops.linear", "ops.loss",
                  "ops.pooling"))
    for mod, names in ((conv, ["conv2d_backward"]),
                       (batchnorm, ["batchnorm_backward", "batchnorm_train", "batchnorm_train_backward"]),
                       (activations, ["relu_backward"]),
                       (pooling, ["maxpool2d_backward", "avgpool2d_backward", "global_avgpool_backward"]),
                       (linear, ["linear_backward"]),
                       (loss, ["softmax_cross_entropy", "softmax_cross_entropy_backward"]),
                       (grad, ["gradients"])):
        for name in names:
            assert name in nrx.__all__, name
            assert getattr(nrx, name) is getattr(mod, name), name


def test_every_loop_twin_takes_the_fast_ops_arguments():
    """A twin shares its fast op's name only with its signature: calling either with the same
    arguments means the same thing (softmax_cross_entropy_backward takes the probabilities
    in both, relu_backward the output, batchnorm_train_backward the cache its forward made)."""
    import inspect

    import numpy_resnext as nrx
    twins = [name for name, f in vars(naive).items()
             if inspect.isfunction(f) and not name.startswith("_") and f.__module__ == naive.__name__]
    assert len(twins) >= 18
    for name in twins:
        fast = getattr(nrx, name)
        assert (list(inspect.signature(fast).parameters)
                == list(inspect.signature(getattr(naive, name)).parameters)), name


@given(N=st.integers(1, 3), K=st.integers(2, 5), seed=seeds)
def test_twins_agree_when_called_alike(N, K, seed):
    """The calls a user would write for the fast op, made on the twin: same results."""
    rng = np.random.default_rng(seed)
    z, labels = rng.standard_normal((N, K)), rng.integers(0, K, N)
    for module in (nrx_module(), naive):
        loss, probs = module.softmax_cross_entropy(z, labels)
        d = module.softmax_cross_entropy_backward(probs, labels)
        assert_close(d, (probs - np.eye(K)[labels]) / N, RTOL, module.__name__, atol=RTOL / N)


def nrx_module():
    import numpy_resnext
    return numpy_resnext


@given(N=st.integers(1, 2), C=st.sampled_from([4, 8]), r=st.integers(1, 3), H=st.integers(1, 4),
       W=st.integers(1, 4), seed=seeds)
def test_squeeze_excite_and_backward_match_loops(N, C, r, H, W, seed):
    """The SE layer (ops/se.py) against its loop twin, forward and backward, and the backward
    against centred finite differences of sum(y * dout)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, W))
    w1, b1 = rng.standard_normal((r, C, 1, 1)), rng.standard_normal(r)
    w2, b2 = rng.standard_normal((C, r, 1, 1)), rng.standard_normal(C)
    dout = rng.standard_normal(x.shape)
    assert_close(squeeze_excite(x, w1, b1, w2, b2), naive.squeeze_excite(x, w1, b1, w2, b2), RTOL)
    fast = squeeze_excite_backward(dout, x, w1, b1, w2, b2)
    loops = naive.squeeze_excite_backward(dout, x, w1, b1, w2, b2)
    for a, b in zip(fast, loops):
        assert a.shape == b.shape
        assert_close(a, b, RTOL)
    for i, arr in enumerate((x, w1, b1, w2, b2)):
        def loss(v, i=i):
            args = [x, w1, b1, w2, b2]
            args[i] = v
            return float(np.sum(squeeze_excite(*args) * dout))
        assert_grad(fast[i], loss, arr.copy(), f"squeeze_excite argument {i}")
