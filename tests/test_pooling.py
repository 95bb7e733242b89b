"""pooling.py: max-pool, average pool (ceil mode, exclusive and inclusive counting) and the
global average pool against their loop twins; the ceil-mode output-size rule against a
window-by-window count; dtypes, layouts, errors, no mutation; torch and Paddle when present.
"""

import numpy as np
import pytest
from hypothesis import assume, given, strategies as st

from numpy_resnext.ops import naive
from numpy_resnext.errors import InputError, InputTypeError
from numpy_resnext.ops.pooling import avgpool2d, global_avgpool, maxpool2d, pool_output_size

from _arrays import LAYOUTS, assert_close, in_layout, pool_cases


def windows_count(size, kernel, stride, padding, ceil_mode):
    """Output length by sliding a window one step at a time (the definition, not the formula).

    Floor mode keeps windows that fit inside the padded input. Ceil mode keeps adding windows
    until one has reached the end of the padded input, but never one that starts in the
    right padding.
    """
    count, start = 0, 0                       # start in padded coordinates
    while True:
        fits = start + kernel <= size + 2 * padding
        if ceil_mode:
            prev_reached_end = count > 0 and (start - stride) + kernel >= size + 2 * padding
            if prev_reached_end or start >= size + padding:
                return count
        elif not fits:
            return count
        count += 1
        start += stride


@given(size=st.integers(1, 40), kernel=st.integers(1, 5), stride=st.integers(1, 4),
       padding=st.integers(0, 2), ceil_mode=st.booleans())
def test_pool_output_size_counts_windows(size, kernel, stride, padding, ceil_mode):
    assume(2 * padding <= kernel and size + 2 * padding >= kernel)
    assert pool_output_size(size, kernel, stride, padding, ceil_mode) == \
        windows_count(size, kernel, stride, padding, ceil_mode)


def test_pool_output_size_resnext_sizes():
    assert pool_output_size(112, 3, 2, 1) == 56                 # stem max-pool
    assert pool_output_size(7, 3, 2, 1) == 4
    assert pool_output_size(7, 2, 2, 0, ceil_mode=True) == 4    # vd shortcut on an odd size
    assert pool_output_size(7, 2, 2, 0, ceil_mode=False) == 3
    assert pool_output_size(1, 2, 2, 0, ceil_mode=True) == 1


@given(case=pool_cases(), layout=st.sampled_from(LAYOUTS), readonly=st.booleans(), ceil=st.booleans())
def test_maxpool_matches_loops(case, layout, readonly, ceil):
    """Floor and ceil mode (the legacy SENet stem: the last window may hang over the edge)."""
    x0, k, s, p, _ = case
    x = in_layout(x0, layout)
    x.flags.writeable = not readonly                  # read-only inputs are accepted too
    y = maxpool2d(x, k, s, p, ceil)
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, naive.maxpool2d(x0, k, s, p, ceil))
    np.testing.assert_array_equal(x, x0)              # a new buffer: a write would show


@given(case=pool_cases(), layout=st.sampled_from(LAYOUTS), ceil_mode=st.booleans(),
       exclusive=st.booleans(), readonly=st.booleans())
def test_avgpool_matches_loops(case, layout, ceil_mode, exclusive, readonly):
    x0, k, s, p, _ = case
    x = in_layout(x0, layout)
    x.flags.writeable = not readonly
    y = avgpool2d(x, k, s, p, ceil_mode=ceil_mode, exclusive=exclusive)
    assert y.dtype == np.float64
    assert_close(y, naive.avgpool2d(x0, k, s, p, ceil_mode=ceil_mode, exclusive=exclusive))
    np.testing.assert_array_equal(x, x0)


@given(case=pool_cases(square=False))
def test_pooling_non_square_windows_are_separable(case):
    """A kxl max/avg window equals a kx1 pass then a 1xl pass (no padding, floor mode)."""
    x, k, s, _, _ = case
    assume(x.shape[2] >= k[0] and x.shape[3] >= k[1])
    both = maxpool2d(x, k, s, 0)
    rows = maxpool2d(maxpool2d(x, (k[0], 1), (s[0], 1), 0), (1, k[1]), (1, s[1]), 0)
    np.testing.assert_array_equal(both, rows)
    avg = avgpool2d(x, k, s, 0, ceil_mode=False)
    avg_rows = avgpool2d(avgpool2d(x, (k[0], 1), (s[0], 1), 0, ceil_mode=False), (1, k[1]), (1, s[1]), 0,
                         ceil_mode=False)
    assert_close(avg, avg_rows)


def test_vd_shortcut_pool_on_odd_size():
    """2x2/2 ceil exclusive on 3x3: the last row/column windows average only their real pixels."""
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    y = avgpool2d(x, 2, 2, 0, ceil_mode=True, exclusive=True)[0, 0]
    expected = np.array([[(0 + 1 + 3 + 4) / 4, (2 + 5) / 2], [(6 + 7) / 2, 8.0]])
    np.testing.assert_array_equal(y, expected)


def test_maxpool_padding_never_wins():
    x = -np.ones((1, 1, 3, 3)) * 5                    # all negative: -inf padding, not 0
    assert (maxpool2d(x, 3, 2, 1) == -5).all()


@given(N=st.integers(1, 3), C=st.integers(1, 5), H=st.integers(1, 6), W=st.integers(1, 6),
       layout=st.sampled_from(LAYOUTS), seed=st.integers(0, 2**32 - 1))
def test_global_avgpool_matches_loops(N, C, H, W, layout, seed):
    x0 = np.random.default_rng(seed).standard_normal((N, C, H, W))
    x = in_layout(x0, layout)
    y = global_avgpool(x)
    assert y.shape == (N, C) and y.dtype == np.float64
    assert_close(y, naive.global_avgpool(x0))
    np.testing.assert_array_equal(x, x0)


@pytest.mark.parametrize("op", [maxpool2d, avgpool2d, global_avgpool])
def test_float32_stays_float32(op, rng):
    x = rng.standard_normal((1, 2, 5, 5)).astype(np.float32)
    assert op(x).dtype == np.float32


def test_pool_errors_name_expected_and_found():
    with pytest.raises(InputError, match=r"padding \(2, 2\) must be at most half the kernel \(3, 3\)"):
        maxpool2d(np.zeros((1, 1, 5, 5)), 3, 2, 2)
    with pytest.raises(InputError, match=r"maxpool2d: input 1x1 is smaller than the 3x3 window"):
        maxpool2d(np.zeros((1, 1, 1, 1)), 3, 2, 0)
    with pytest.raises(InputError, match=r"avgpool2d: input 1x2 is smaller than the 3x3 window"):
        avgpool2d(np.zeros((1, 1, 1, 2)), 3, 1, 0, ceil_mode=False)
    with pytest.raises(InputError, match=r"4-D.*found 3-D"):
        avgpool2d(np.zeros((1, 5, 5)))
    with pytest.raises(InputError, match=r"4-D.*found 2-D"):
        global_avgpool(np.zeros((5, 5)))
    with pytest.raises(InputTypeError, match=r"found int64"):
        maxpool2d(np.zeros((1, 1, 5, 5), dtype=np.int64))
    with pytest.raises(InputTypeError, match=r"complex"):
        global_avgpool(np.zeros((1, 1, 5, 5), dtype=np.complex64))


# --- real frameworks, when installed ---------------------------------------------------------
POOL_CASES = [((2, 3, 7, 9), 3, 2, 1, False), ((1, 2, 5, 7), 2, 2, 0, True),
              ((1, 2, 6, 7), 3, 2, 1, True), ((2, 1, 1, 3), 2, 2, 0, True),
              ((2, 3, 8, 7), 3, 2, 0, True)]                # the legacy SENet stem's max-pool


@pytest.mark.torch
@pytest.mark.parametrize("shape,k,s,p,ceil", POOL_CASES)
def test_pooling_matches_torch(torch, shape, k, s, p, ceil, rng):
    x = rng.standard_normal(shape)
    t = torch.from_numpy(x)
    F = torch.nn.functional
    if min(shape[2:]) + 2 * p >= k:            # max-pool runs in floor and in ceil mode
        np.testing.assert_array_equal(maxpool2d(x, k, s, p), F.max_pool2d(t, k, s, p).numpy())
        np.testing.assert_array_equal(maxpool2d(x, k, s, p, ceil_mode=ceil),
                                      F.max_pool2d(t, k, s, p, ceil_mode=ceil).numpy())
    for exclusive in (True, False):
        ref = F.avg_pool2d(t, k, s, p, ceil_mode=ceil, count_include_pad=not exclusive).numpy()
        assert_close(avgpool2d(x, k, s, p, ceil_mode=ceil, exclusive=exclusive), ref)
    assert_close(global_avgpool(x), F.adaptive_avg_pool2d(t, 1).numpy()[:, :, 0, 0])


@pytest.mark.paddle
@pytest.mark.parametrize("shape,k,s,p,ceil", POOL_CASES)
def test_avgpool_matches_paddle(paddle, shape, k, s, p, ceil, rng):
    """Paddle's avg_pool2d is what the vd shortcut was trained with (exclusive, ceil_mode)."""
    x = rng.standard_normal(shape)
    for exclusive in (True, False):
        ref = paddle.nn.functional.avg_pool2d(paddle.to_tensor(x), k, s, p, ceil_mode=ceil,
                                              exclusive=exclusive).numpy()
        assert_close(avgpool2d(x, k, s, p, ceil_mode=ceil, exclusive=exclusive), ref)
