"""Paddle weight formats, live lane: fresh files from the installed Paddle, read without it.

Skipped (with the reason) when Paddle is not installed. The committed fixtures are checked
without Paddle in test_io_formats.py; here the same layouts are written anew by
reference/make_format_fixtures.py in a temporary directory, and the tensor-record codec
and pickle reader are checked against Paddle on drawn shapes and dtypes.
"""

import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from numpy_resnext.io import read_paddle
from numpy_resnext.io.paddle.records import encode_record
from _scratch import scratch

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "reference" / "make_format_fixtures.py"

FILE_LAYOUTS = [
    ("tiny_p4.pdparams", "tiny_pdparams"), ("tiny_p2.pdparams", "tiny_pdparams"),
    ("split_p2.pdparams", "tiny_pdparams"), ("pir/tiny", "tiny_by_param"),
    ("legacy/tiny", "legacy_by_param"), ("static_dir", "static"),
    ("static_dir.tar", "static"), ("static_combined/__params__", "static"),
    ("single.record", "single"), ("single.pdtensor", "single_pdtensor"),
    ("tiny.pdopt", "tiny_pdopt"),
]
DTYPES = ["float16", "float32", "float64", "int64", "int32", "uint8", "int8", "bool"]


@pytest.fixture(scope="module")
def fresh(paddle, tmp_path_factory):
    """Every layout written just now by the installed Paddle (PIR and legacy modes)."""
    with scratch(tmp_path_factory, "formats") as out:
        subprocess.run([sys.executable, str(SCRIPT), "--out", str(out), "--no-manifest"],
                       check=True, capture_output=True, timeout=300)
        yield out


@pytest.mark.parametrize("rel,stem", FILE_LAYOUTS, ids=[r for r, _ in FILE_LAYOUTS])
def test_fresh_paddle_files_read_exactly(fresh, rel, stem):
    with np.load(fresh / f"{stem}.expected.npz") as npz:
        want = {k: npz[k] for k in npz.files}
    got = read_paddle(fresh / rel).tensors
    assert sorted(got) == sorted(want)
    for name, value in want.items():
        assert got[name].dtype == value.dtype and got[name].shape == value.shape, name
        assert np.array_equal(got[name], value), name


def _array(draw, dtype, min_dim=0):
    shape = tuple(draw(st.lists(st.integers(min_dim, 4), min_size=0, max_size=4)))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if dtype == "bool":
        return rng.integers(0, 2, shape).astype(bool)
    if dtype.startswith(("int", "uint")):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    return np.asarray(rng.standard_normal(shape) * 100, dtype=dtype)  # 0-d stays an array


arrays = st.sampled_from(DTYPES).flatmap(lambda dt: st.composite(
    lambda draw: _array(draw, dt))())
# paddle.load turns an empty record into an empty float64 array whatever its data type, so
# the direction "Paddle reads our bytes" is checked on non-empty tensors (weights are).
nonempty_arrays = st.sampled_from(DTYPES).flatmap(lambda dt: st.composite(
    lambda draw: _array(draw, dt, min_dim=1))())


@settings(max_examples=15)
@given(array=arrays)
def test_paddle_binary_record_reads_back(paddle, tmp_path_factory, array):
    path = tmp_path_factory.mktemp("rec") / "t.record"
    paddle.save(paddle.to_tensor(array), str(path), use_binary_format=True)
    got = read_paddle(path).tensors["t.record"]
    assert got.dtype == array.dtype and got.shape == array.shape
    assert np.array_equal(got, array)


@settings(max_examples=15)
@given(array=nonempty_arrays)
def test_paddle_reads_our_records(paddle, tmp_path_factory, array):
    """The documented codec, checked in the other direction: Paddle decodes our bytes."""
    path = tmp_path_factory.mktemp("enc") / "t.record"
    path.write_bytes(encode_record(array))
    back = paddle.load(str(path), return_numpy=True)
    assert back.dtype == array.dtype and back.shape == array.shape
    assert np.array_equal(back, array)


@settings(max_examples=10)
@given(items=st.lists(arrays, min_size=1, max_size=4), protocol=st.sampled_from([2, 3, 4]))
def test_pdparams_of_drawn_tensors_matches_paddle_load(paddle, tmp_path_factory, items,
                                                        protocol):
    path = tmp_path_factory.mktemp("pd") / "d.pdparams"
    state = {f"t{i}.w": paddle.to_tensor(a) for i, a in enumerate(items)}
    paddle.save(state, str(path), protocol=protocol)
    want = paddle.load(str(path), return_numpy=True)
    got = read_paddle(path)
    assert list(got.tensors) == list(state)
    assert got.structured_to_param == {k: v.name for k, v in state.items()}
    for key in state:
        assert got.tensors[key].dtype == want[key].dtype
        assert np.array_equal(got.tensors[key], want[key])


@pytest.mark.parametrize("protocol", [2, 4])
def test_split_layout_agrees_with_paddle_load(paddle, tmp_path, rng, protocol):
    """A dict in the UnpackBigParamInfor@@ layout: Paddle and we reassemble the same array.

    Paddle splits only arrays over 2**30 - 1 bytes, with the threshold computed inline (no
    setting to lower); the fixture script exercises Paddle's own splitting code on small
    arrays by shadowing ``int`` in its module. Here the other direction: a hand-built
    split file that Paddle's loader must agree with.
    """
    big = rng.standard_normal((4, 3, 5)).astype(np.float32)
    flat = big.ravel()
    obj = {"head.w": np.arange(4, dtype=np.int64), "big@@.0": flat[:32], "big@@.1": flat[32:],
           "UnpackBigParamInfor@@": {"big": {"OriginShape": big.shape,
                                             "slices": ["big@@.0", "big@@.1"]}}}
    path = tmp_path / "split.pdparams"
    path.write_bytes(pickle.dumps(obj, protocol=protocol))
    want = paddle.load(str(path), return_numpy=True)
    got = read_paddle(path).tensors
    assert sorted(got) == sorted(want) == ["big", "head.w"]
    assert np.array_equal(got["big"], want["big"]) and np.array_equal(got["big"], big)
