"""numpy_resnext.bounded: the helpers every reader shares, checked against independent
references (fnmatch, json, np.load, tarfile) on valid input and for their bounds."""

import fnmatch
import io
import json
import os
import pickle
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, strategies as st

from numpy_resnext import bounded as B
from numpy_resnext._files import save_npy
from numpy_resnext.errors import FormatError, InputError, OutputError, ResNeXtError
from numpy_resnext.io import read_paddle
from numpy_resnext.io.paddle.records import encode_record
from numpy_resnext.io.unpickle import loads as safe_loads

ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------ glob
@given(st.text("ab*?[]!-.", max_size=8), st.text("ab.-[]!", max_size=10))
def test_glob_match_agrees_with_fnmatchcase(pattern, name):
    assert B.glob_match(pattern, name) == fnmatch.fnmatchcase(name, pattern)


@pytest.mark.parametrize("pattern, name, expected", [
    ("layer*.conv?.weight", "layer1.0.conv2.weight", True),
    ("layer[1-4].*", "layer5.0", False), ("layer[!5].*", "layer4.x", True),
    ("*", "", True), ("?", "", False), ("[", "[", True), ("a[]b]c", "a]c", True),
])
def test_glob_match_examples(pattern, name, expected):
    assert B.glob_match(pattern, name) is expected
    assert fnmatch.fnmatchcase(name, pattern) is expected


def test_glob_match_never_backtracks():
    # fnmatch's regex tries every split here; the state-set walk is linear in the name
    name = "a" * 20_000
    assert B.glob_match("a*a*a*a*a*a*a*a*b", name) is False
    assert B.glob_match("*a*a*a*a*a*a*a*a", name) is True


# ------------------------------------------------------------------ JSON
@given(st.recursive(st.none() | st.booleans() | st.integers(-10**30, 10**30)
                    | st.text(max_size=5), lambda c: st.lists(c, max_size=3)
                    | st.dictionaries(st.text(max_size=3), c, max_size=3), max_leaves=20))
def test_loads_json_agrees_with_json(value):
    text = json.dumps(value)
    assert B.loads_json(text, "x") == json.loads(text)


def _depth(value):
    if isinstance(value, (list, dict)):
        items = value.values() if isinstance(value, dict) else value
        return 1 + max((_depth(v) for v in items), default=0)
    return 0


@given(st.recursive(st.none() | st.text("[]{}\\\"a", max_size=6),
                    lambda c: st.lists(c, max_size=3)
                    | st.dictionaries(st.text("[]{\\\"", max_size=3), c, max_size=3),
                    max_leaves=25))
def test_json_depth_equals_the_parsed_depth(value):
    assert B.json_depth(json.dumps(value).encode()) == _depth(value)


def test_json_depth_ignores_brackets_in_strings():
    assert B.json_depth(b'[{"a": "[[[[\\"]]"}, [1]]') == 2


@pytest.mark.parametrize("text, match", [
    ("[" * 101 + "]" * 101, "nested 101 levels deep"),
    ('{"a": ' + "9" * 41 + "}", "an integer of 41 digits"),
    ('[Infinity]', "Infinity is not a JSON number"), ("[NaN]", "NaN is not a JSON number"),
    ("[1e400]", "overflows a double"), ('{"a": 1', "not valid JSON"),
])
def test_loads_json_bounds(text, match):
    with pytest.raises(FormatError, match=match):
        B.loads_json(text, "m.json")


def test_structure_checks_name_the_json_path():
    doc = B.loads_json('{"tensors": {"x": {"shape": [1, -2]}}, "map": {"a": 1}}', "m.json")
    with pytest.raises(FormatError, match=r'm.json: tensors\["x"\].shape\[1\] should be a '
                                          r"non-negative integer, found an integer \(-2\)"):
        B.expect_shape(doc["tensors"]["x"]["shape"], 'tensors["x"].shape', "m.json")
    with pytest.raises(FormatError, match=r"map\['a'\] should be a string, found an integer"):
        B.expect_str_map(doc["map"], "map", "m.json")
    with pytest.raises(FormatError, match=r"tensors\[\"x\"\] lacks 'dtype'"):
        B.expect_keys(doc["tensors"]["x"], ("shape", "dtype"), 'tensors["x"]', "m.json")
    with pytest.raises(FormatError, match="should be an integer, found true or false"):
        B.expect(True, int, "n", "m.json")


# ------------------------------------------------------------------ limits
def test_limits_from_api_context_and_environment(tmp_path):
    assert B.get_limits().max_bytes == 8 << 30
    with B.limits(max_bytes="1K"):
        assert B.get_limits().max_bytes == 1024
        with pytest.raises(FormatError, match=r"f: x would need 2.0 KiB \(2048 bytes\); the "
                                              r"reading limit is 1.0 KiB"):
            B.check_nbytes(2048, "x", "f")
    assert B.get_limits().max_bytes == 8 << 30
    code = "from numpy_resnext.bounded import get_limits; print(get_limits().max_bytes)"
    env = dict(os.environ, PYTHONPATH=str(ROOT), NUMPY_RESNEXT_MAX_BYTES="16G")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == str(16 << 30)
    with pytest.raises(InputError, match="cannot read 'lots' as a size"):
        B.parse_size("lots")


def test_ceiling_applies_to_readers(tmp_path):
    np.save(tmp_path / "a.npy", np.zeros(1000, np.float32))
    with B.limits(max_bytes=1000):
        with pytest.raises(FormatError, match=r"a\.npy: a float32 array of shape \[1000\] "
                                              r"would need 3.9 KiB"):
            B.read_npy(tmp_path / "a.npy")
    assert B.read_npy(tmp_path / "a.npy").shape == (1000,)


def test_check_shape_refuses_before_multiplying():
    with pytest.raises(FormatError, match=r"invalid axis <an integer of \d+ bits>"):
        B.check_shape((10 ** 5000, 0), 4, "t", "f")
    with pytest.raises(FormatError, match="would need"):
        B.check_shape((0, 2 ** 40, 2 ** 40), 4, "t", "f")          # zero bytes, yet refused
    assert B.check_shape((2, 3), 8, "t", "f") == 48


def test_short_repr_never_builds_the_whole_repr():
    x = [0]
    for _ in range(200):              # 2**200 paths through shared lists
        x = [x, x]
    assert len(B.short_repr(x)) < 200
    assert B.short_repr("k" * 10 ** 6).endswith("... (1000000 characters)")
    assert B.short_repr(2 ** 5000) == "<an integer of 5001 bits>"


# ------------------------------------------------------------------ arrays
@pytest.mark.parametrize("array", [np.arange(12, dtype=">f8").reshape(3, 4),
                                   np.asfortranarray(np.arange(6, dtype=np.int16).reshape(2, 3)),
                                   np.zeros((0, 5), np.float32), np.array(3.5, np.float32),
                                   np.array([True, False])])
def test_read_npy_equals_np_load(tmp_path, array):
    np.save(tmp_path / "a.npy", array)
    got, want = B.read_npy(tmp_path / "a.npy"), np.load(tmp_path / "a.npy")
    assert got.shape == want.shape and got.dtype.newbyteorder("=") == got.dtype
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("compressed", [False, True])
def test_read_npz_equals_np_load(tmp_path, compressed):
    arrays = {"conv1.weight": np.arange(24, dtype=np.float32).reshape(2, 3, 4),
              "fc.bias": np.ones(7, np.float64)}
    (np.savez_compressed if compressed else np.savez)(tmp_path / "w.npz", **arrays)
    got = B.read_npz(tmp_path / "w.npz")
    assert list(got) == list(arrays)
    for k in arrays:
        np.testing.assert_array_equal(got[k], arrays[k])
    assert isinstance(B.read_array_file(tmp_path / "w.npz"), dict)


def test_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "w.npy"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match=r"w\.npy: cannot read the array file: it is a FIFO"):
        B.read_npy(fifo)


# ------------------------------------------------------------------ tars
@pytest.mark.parametrize("mode", ["w", "w:gz", "w:bz2", "w:xz"])
def test_record_tar_reads_every_compression(tmp_path, mode):
    path = tmp_path / ("w.tar" + {"w": "", "w:gz": ".gz", "w:bz2": ".bz2", "w:xz": ".xz"}[mode])
    weights = {"conv1_weights": np.arange(12, dtype=np.float32).reshape(3, 4),
               "fc_offset": np.ones(5, np.float32)}
    with tarfile.open(path, mode) as tar:
        for name, array in weights.items():
            data = encode_record(array)
            info = tarfile.TarInfo(f"Model_pretrained/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    got = read_paddle(path).tensors
    assert sorted(got) == sorted(weights)
    for name in weights:
        np.testing.assert_array_equal(got[name], weights[name])


def test_decompression_bound_is_configurable(tmp_path):
    path = tmp_path / "w.tar.gz"
    data = encode_record(np.zeros(300_000, np.float32))         # 1.2 MB of zeros
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("conv1_weights")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    with B.limits(min_expand=1 << 16, max_ratio=4):
        with pytest.raises(FormatError, match=r"w\.tar\.gz(: the gzip stream expands beyond|.*allowed "
                                              r"for the whole file \(\d+ bytes read: at most 4 times)"):
            read_paddle(path)
    assert read_paddle(path).tensors["conv1_weights"].shape == (300_000,)


# ------------------------------------------------------------------ pickles
def test_shared_objects_stay_shared():
    a = np.arange(3.0)
    shared = [a, a]
    got = safe_loads(pickle.dumps({"x": shared, "y": shared}, 4))
    assert got["x"] is got["y"] and got["x"][0] is got["x"][1]
    np.testing.assert_array_equal(got["x"][0], a)


# ------------------------------------------------------------------ output
def test_output_errors_name_the_path_and_leave_nothing(tmp_path):
    long_name = tmp_path / ("x" * 300 + ".npy")
    with pytest.raises(OutputError, match=r"x{20}.*: cannot write the output: file name too "
                                          r"long; nothing was written"):
        save_npy(long_name, np.zeros(3))
    assert os.listdir(tmp_path) == []
    assert isinstance(OutputError("m"), OSError) and isinstance(OutputError("m"), ResNeXtError)


# ------------------------------------------------------------------ CLI
def _cli(*args, env=None, timeout=60):
    env = dict(os.environ, PYTHONPATH=str(ROOT), **(env or {}))
    return subprocess.run([sys.executable, "-m", "numpy_resnext", *args], env=env,
                          capture_output=True, text=True, timeout=timeout)


def test_cli_fifo_weights_is_one_line_not_a_hang(tmp_path):
    fifo = tmp_path / "w.pdparams"
    os.mkfifo(fifo)
    r = _cli("convert", "--weights", str(fifo), "--output", str(tmp_path / "o.npz"))
    assert r.returncode == 2
    assert r.stderr.splitlines() == [f"numpy-resnext convert: error: {fifo}: cannot read the "
                                     "weight file: it is a FIFO (named pipe), expected a "
                                     "regular file"]


def test_cli_max_bytes_option(tmp_path):
    np.savez(tmp_path / "w.npz", **{"conv1.weight": np.zeros((64, 3, 7, 7), np.float32)})
    r = _cli("--max-bytes", "1K", "convert", "--weights", str(tmp_path / "w.npz"),
             "--output", str(tmp_path / "o.npz"))
    assert r.returncode == 2 and "the reading limit is 1.0 KiB" in r.stderr
    assert len(r.stderr.splitlines()) == 1


def test_cli_prints_lone_surrogates_escaped(tmp_path):
    from numpy_resnext.archs import ArchConfig
    from numpy_resnext.params import init_params
    cfg = ArchConfig(name="tiny", depths=(1, 1), cardinality=2, base_width=4, num_classes=3)
    tensors = dict(init_params(cfg))
    tensors["bad\udc80name"] = np.zeros(1, np.float32)
    (tmp_path / "w.pdparams").write_bytes(pickle.dumps(tensors, 4))
    r = _cli("convert", "--weights", str(tmp_path / "w.pdparams"), "--output",
             str(tmp_path / "o.npz"), "--non-strict", env={"PYTHONIOENCODING": "utf-8"})
    assert r.returncode == 0, r.stderr
    assert "bad\\udc80name" in r.stdout


def test_cli_last_resort_handler(monkeypatch, capsys):
    from numpy_resnext import cli
    from numpy_resnext.commands import archs

    def boom(args):
        raise RuntimeError("unexpected")
    monkeypatch.setattr(archs, "run", boom)
    assert cli.main(["archs"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == ["numpy-resnext archs: internal error: RuntimeError: unexpected; "
                                "this is a bug, please report it (set NUMPY_RESNEXT_TRACEBACK=1 "
                                "for the traceback)"]

    def interrupt(args):
        raise KeyboardInterrupt
    monkeypatch.setattr(archs, "run", interrupt)
    assert cli.main(["archs"]) == 130


def test_cli_unwritable_output_is_one_line_and_leaves_nothing(tmp_path):
    from numpy_resnext.archs import ArchConfig
    from numpy_resnext.params import init_params
    cfg = ArchConfig(name="tiny", depths=(1, 1), cardinality=2, base_width=4, num_classes=3)
    (tmp_path / "w.pdparams").write_bytes(pickle.dumps(dict(init_params(cfg)), 4))
    out = tmp_path / "out"
    out.mkdir()
    target = out / ("o" * 300 + ".npz")
    r = _cli("convert", "--weights", str(tmp_path / "w.pdparams"), "--output", str(target))
    assert r.returncode == 2, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("numpy-resnext convert: error: ")
    assert lines[0].endswith("cannot write the output: file name too long; nothing was written")
    assert os.listdir(out) == []
