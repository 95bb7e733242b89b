"""linear.py: the fully connected head, y = x @ W^T + b with W stored [out, in], against its
loop twin; dtypes, errors, no mutation; torch when present.
"""

import numpy as np
import pytest
from hypothesis import given, strategies as st

from numpy_resnext.ops import naive
from numpy_resnext.errors import InputError, InputTypeError
from numpy_resnext.ops.linear import linear

from _arrays import assert_close


@given(N=st.integers(1, 4), I=st.integers(1, 9), O=st.integers(1, 7), with_bias=st.booleans(),
       fortran=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_linear_matches_loops_float64(N, I, O, with_bias, fortran, seed):
    rng = np.random.default_rng(seed)
    x, w, b = rng.standard_normal((N, I)), rng.standard_normal((O, I)), rng.standard_normal(O)
    if fortran:
        x, w = np.asfortranarray(x), np.asfortranarray(w)
    saved = [a.copy() for a in (x, w, b)]
    for a in (x, w, b):
        a.flags.writeable = False
    y = linear(x, w, b if with_bias else None)
    assert y.dtype == np.float64 and y.shape == (N, O)
    assert_close(y, naive.linear(x, w, b if with_bias else None))
    for a, a0 in zip((x, w, b), saved):
        np.testing.assert_array_equal(a, a0)


def test_linear_float32_in_float32_out(rng):
    x = rng.standard_normal((3, 8)).astype(np.float32)
    w = rng.standard_normal((5, 8)).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    y = linear(x, w, b)
    assert y.dtype == np.float32
    assert_close(y, naive.linear(x.astype(float), w.astype(float), b.astype(float)), rtol=1e-5)


def test_linear_weight_is_out_by_in(rng):
    """W[o, i] multiplies feature i into output o (torch's layout; Paddle's is transposed)."""
    x = np.array([[1.0, 10.0, 100.0]])
    w = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    np.testing.assert_array_equal(linear(x, w, np.array([0.5, -0.5])), [[1.5, 99.5]])


def test_linear_errors_name_expected_and_found(rng):
    x, w, b = rng.standard_normal((2, 5)), rng.standard_normal((3, 5)), rng.standard_normal(3)
    with pytest.raises(InputError, match=r"weight \(3, 4\) expects \[out, 5\] for input \(2, 5\)"):
        linear(x, w[:, :4], b)
    with pytest.raises(InputError, match=r"bias shape \(4,\) should be \(3,\)"):
        linear(x, w, np.zeros(4))
    with pytest.raises(InputError, match=r"2-D.*found 4-D"):
        linear(x.reshape(2, 5, 1, 1), w, b)
    with pytest.raises(InputTypeError, match=r"found int64"):
        linear(x.astype(np.int64), w, b)
    with pytest.raises(InputTypeError, match=r"float32.*float64"):
        linear(x.astype(np.float32), w, b)
    with pytest.raises(InputTypeError, match=r"linear weight: expected a numpy.ndarray, found list"):
        linear(x, w.tolist(), b)


def test_linear_refuses_a_bias_of_another_precision(rng):
    """A float64 bias on a float32 layer would be rounded silently by ``+=``."""
    x, w = rng.standard_normal((2, 5)).astype(np.float32), rng.standard_normal((3, 5)).astype(np.float32)
    with pytest.raises(InputTypeError, match=r"bias"):
        linear(x, w, np.zeros(3))


@pytest.mark.torch
def test_linear_matches_torch(torch, rng):
    x, w, b = rng.standard_normal((2, 16)), rng.standard_normal((10, 16)), rng.standard_normal(10)
    ref = torch.nn.functional.linear(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b)).numpy()
    assert_close(linear(x, w, b), ref)
