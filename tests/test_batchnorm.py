"""batchnorm.py (inference BatchNorm) against its loop twin, plus ReLU (activations.py), the
other elementwise op of every block: dtypes, layouts, eps, errors, no mutation.
"""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from numpy_resnext.ops import naive
from numpy_resnext.ops.activations import relu
from numpy_resnext.ops.batchnorm import batchnorm, bn_scale_shift
from numpy_resnext.errors import InputError, InputTypeError

from _arrays import assert_close, in_layout


def bn_params(rng, C, dtype=np.float64):
    weight = rng.standard_normal(C)
    bias = rng.standard_normal(C)
    mean = rng.standard_normal(C)
    var = rng.uniform(0.05, 3.0, C)
    return [p.astype(dtype) for p in (weight, bias, mean, var)]


@given(N=st.integers(1, 3), C=st.integers(1, 6), H=st.integers(1, 5), W=st.integers(1, 5),
       layout=st.sampled_from(["nchw", "channels_last", "fortran", "strided"]),
       seed=st.integers(0, 2**32 - 1))
def test_batchnorm_matches_loops_float64(N, C, H, W, layout, seed):
    rng = np.random.default_rng(seed)
    x0 = rng.standard_normal((N, C, H, W)) * 3
    params = bn_params(rng, C)
    saved = [p.copy() for p in params]
    x = in_layout(x0, layout)
    x.flags.writeable = False            # without out=, nothing may be written into x
    y = batchnorm(x, *params)
    assert y.dtype == np.float64 and y.shape == x.shape
    assert_close(y, naive.batchnorm(x0, *params))
    np.testing.assert_array_equal(x, x0)
    for p, p0 in zip(params, saved):
        np.testing.assert_array_equal(p, p0)


@given(N=st.integers(1, 3), C=st.integers(1, 6), H=st.integers(1, 4), seed=st.integers(0, 2**32 - 1))
def test_batchnorm_float32_in_float32_out(N, C, H, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((N, C, H, H)).astype(np.float32)
    params = bn_params(rng, C, np.float32)
    y = batchnorm(x, *params)
    assert y.dtype == np.float32
    expected = naive.batchnorm(x.astype(np.float64), *(p.astype(np.float64) for p in params))
    assert_close(y, expected, rtol=1e-5)


def test_batchnorm_on_features_2d(rng):
    x = rng.standard_normal((4, 3))
    params = bn_params(rng, 3)
    assert_close(batchnorm(x, *params), naive.batchnorm(x, *params))


def test_batchnorm_eps_is_1e_5():
    """Paddle and torch both use eps = 1e-5; with var 0 the output is x / sqrt(1e-5)."""
    x = np.array([[[[2.0]]]])
    one, zero = np.ones(1), np.zeros(1)
    y = batchnorm(x, one, zero, zero, zero)
    assert y[0, 0, 0, 0] == pytest.approx(2.0 / np.sqrt(1e-5), rel=1e-15)


def test_bn_scale_shift_formula(rng):
    weight, bias, mean, var = bn_params(rng, 5)
    scale, shift = bn_scale_shift(weight, bias, mean, var)
    x = rng.standard_normal(5)
    assert_close(x * scale + shift, (x - mean) / np.sqrt(var + 1e-5) * weight + bias)


def test_batchnorm_out_argument_updates_in_place(rng):
    """out=x is the documented in-place form the forward pass uses on arrays it owns."""
    x = rng.standard_normal((2, 3, 4, 4))
    params = bn_params(rng, 3)
    expected = naive.batchnorm(x, *params)
    y = batchnorm(x, *params, out=x)
    assert y is x
    assert_close(x, expected)


def test_batchnorm_keeps_channels_last_memory(rng):
    x = in_layout(rng.standard_normal((2, 8, 3, 5)), "channels_last")
    y = batchnorm(x, *bn_params(rng, 8))
    assert y.transpose(0, 2, 3, 1).flags.c_contiguous


def test_batchnorm_errors_name_expected_and_found(rng):
    x = rng.standard_normal((2, 3, 4, 4))
    w, b, m, v = bn_params(rng, 3)
    with pytest.raises(InputError, match=r"batchnorm var: expected shape \(3,\) for 3 channels, found \(4,\)"):
        batchnorm(x, w, b, m, np.ones(4))
    with pytest.raises(InputTypeError, match=r"batchnorm input has dtype float32 but batchnorm weight has dtype float64"):
        batchnorm(x.astype(np.float32), w, b, m, v)
    with pytest.raises(InputTypeError, match=r"found int64"):
        batchnorm(x.astype(np.int64), w, b, m, v)
    with pytest.raises(InputTypeError, match=r"complex"):
        batchnorm(x.astype(np.complex128), w, b, m, v)
    with pytest.raises(InputError, match=r"found 1-D"):
        batchnorm(np.zeros(3), w, b, m, v)
    with pytest.raises(InputTypeError, match=r"batchnorm mean.*found list"):
        batchnorm(x, w, b, [0.0, 0.0, 0.0], v)


# --- ReLU ------------------------------------------------------------------------------------
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=4),
       dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**32 - 1))
def test_relu_matches_loops(shape, dtype, seed):
    x = np.random.default_rng(seed).standard_normal(shape).astype(dtype)
    x0 = x.copy()
    y = relu(x)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, naive.relu(x0))
    np.testing.assert_array_equal(x, x0)


@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=4), data=st.data(),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_relu_on_views(shape, data, dtype):
    """Transposed, strided and broadcast views give the same values as the loop twin."""
    base = np.random.default_rng(len(shape)).standard_normal([2 * s for s in shape]).astype(dtype)
    view = base[tuple(slice(None, None, 2) for _ in shape)]
    perm = data.draw(st.permutations(range(len(shape))))
    view = view.transpose(perm)
    if data.draw(st.booleans()):
        view = np.broadcast_to(view[..., :1], view.shape)        # stride 0 on the last axis
    expected = naive.relu(np.array(view))
    y = relu(view)
    assert y.dtype == dtype and y.shape == view.shape
    np.testing.assert_array_equal(y, expected)


def test_relu_keeps_nan_and_layout():
    x = np.array([[[[-1.0, np.nan], [0.0, 2.0]]]])
    np.testing.assert_array_equal(relu(x), np.array([[[[0.0, np.nan], [0.0, 2.0]]]]))
    cl = in_layout(np.arange(24.0).reshape(1, 2, 3, 4) - 12, "channels_last")
    assert relu(cl).transpose(0, 2, 3, 1).flags.c_contiguous


@pytest.mark.torch
def test_batchnorm_matches_torch(torch, rng):
    x = rng.standard_normal((2, 6, 5, 3))
    w, b, m, v = bn_params(rng, 6)
    t = torch.from_numpy
    ref = torch.nn.functional.batch_norm(t(x), t(m), t(v), t(w), t(b), training=False, eps=1e-5).numpy()
    assert_close(batchnorm(x, w, b, m, v), ref)
