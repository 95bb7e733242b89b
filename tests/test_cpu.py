"""cpu.py: cache sizes, and the elementwise passes walked in runs of rows (cpu.rows).

BatchNorm, ReLU and the residual addition go through cpu.rows, which cuts a channels-last
array into runs of (N*H, W*C) rows and tiles per-channel vectors along a row. The values
must be exactly those of one whole-array NumPy expression, whatever the run length (forced
down to one row by a tiny "L2 cache"), layout, and in place or not.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

import numpy_resnext.ops.cpu as cpu
from numpy_resnext.ops.activations import relu
from numpy_resnext.ops.batchnorm import batchnorm, bn_scale_shift
from numpy_resnext.plan import layer_plan
from numpy_resnext.archs import get_arch
from numpy_resnext.walk import ArrayOps

from _arrays import in_layout


@pytest.fixture(params=[None, 1], ids=["runs-from-L2", "one-row-runs"])
def run_bytes(request, monkeypatch):
    if request.param is not None:       # every run one row long: the most cuts
        monkeypatch.setattr(cpu, "l2_bytes", lambda: request.param)
    return request.param


def _case(seed, dtype, layout):
    rng = np.random.default_rng(seed)
    N, C, H, W = rng.integers(1, 4), rng.integers(1, 9), rng.integers(1, 7), rng.integers(1, 7)
    x = in_layout((rng.standard_normal((N, C, H, W)) * 3).astype(dtype), layout)
    params = [rng.standard_normal(C).astype(dtype) for _ in range(3)] + [rng.uniform(0.1, 2, C).astype(dtype)]
    return x, params


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), dtype=st.sampled_from([np.float32, np.float64]),
       layout=st.sampled_from(["channels_last", "nchw", "strided"]), in_place=st.booleans())
def test_batchnorm_in_runs_equals_one_expression(run_bytes, seed, dtype, layout, in_place):
    x, (w, b, m, v) = _case(seed, dtype, layout)
    scale, shift = bn_scale_shift(w, b, m, v)
    expected = x * scale.reshape(1, -1, 1, 1) + shift.reshape(1, -1, 1, 1)
    x0 = x.copy()
    y = batchnorm(x, w, b, m, v, out=x if in_place else None)
    np.testing.assert_array_equal(y, expected)
    assert y.dtype == x.dtype and (y is x) == in_place
    if not in_place:
        np.testing.assert_array_equal(x, x0)
    if layout == "channels_last":       # the result keeps the input's memory order
        assert y.transpose(0, 2, 3, 1).flags.c_contiguous


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), dtype=st.sampled_from([np.float32, np.float64]),
       layout=st.sampled_from(["channels_last", "nchw", "strided"]), in_place=st.booleans())
def test_relu_in_runs_equals_one_expression(run_bytes, seed, dtype, layout, in_place):
    x, _ = _case(seed, dtype, layout)
    x[(0,) * 4] = np.nan                                                 # NaN stays NaN
    expected = np.maximum(x, 0)
    y = relu(x, out=x if in_place else None)
    np.testing.assert_array_equal(y, expected)
    assert np.isnan(y[(0,) * 4])


@pytest.mark.parametrize("layouts", [("channels_last", "channels_last"), ("channels_last", "nchw"),
                                     ("nchw", "channels_last")])
def test_residual_add_in_runs(run_bytes, layouts):
    rng = np.random.default_rng(3)
    y = in_layout(rng.standard_normal((2, 5, 4, 3)), layouts[0])
    s = in_layout(rng.standard_normal((2, 5, 4, 3)), layouts[1])
    expected, s0 = y + s, s.copy()
    block = layer_plan(get_arch("ResNeXt50_32x4d")).blocks[0]
    out = ArrayOps({}).add(y, s, block)
    assert out is y                                                      # in place, as the walk expects
    np.testing.assert_array_equal(out, expected)
    np.testing.assert_array_equal(s, s0)


def test_rows_visits_every_row_once_in_runs_within_half_the_cache(monkeypatch):
    monkeypatch.setattr(cpu, "l2_bytes", lambda: 2 * 3 * 4 * 8 * 2)    # half: 2 rows of W*C = 4*3 float64
    x = np.zeros((2, 5, 4, 3)).transpose(0, 3, 1, 2)                   # (2, 3, 5, 4) stored channels-last
    seen = []

    def visit(xs, v):
        seen.append(xs.shape)
        xs += 1
        assert v.shape == (4 * 3,)                                       # the vector tiled W times
    cpu.rows(visit, x, vectors=(np.arange(3.0),))
    assert seen == [(2, 12)] * 5                                         # 10 rows of W*C, 2 at a time
    np.testing.assert_array_equal(x, 1.0)


def test_cache_size_reads_sysfs_or_falls_back(monkeypatch, tmp_path):
    for i, (level, kind, size) in enumerate([(1, "Data", "48K"), (1, "Instruction", "32K"), (2, "Unified", "2048K")]):
        d = tmp_path / f"index{i}"
        d.mkdir()
        (d / "level").write_text(f"{level}\n")
        (d / "type").write_text(f"{kind}\n")
        (d / "size").write_text(f"{size}\n")
    monkeypatch.setattr(cpu.glob, "glob", lambda pattern: sorted(str(p) for p in tmp_path.iterdir()))
    cpu.cache_size.cache_clear()
    try:
        assert cpu.cache_size(2, 0) == 2 << 20
        assert cpu.cache_size(1, 0) == 48 << 10
        assert cpu.cache_size(3, 12345) == 12345                         # not reported: the default
    finally:
        cpu.cache_size.cache_clear()
