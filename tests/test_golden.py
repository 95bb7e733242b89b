"""Golden dumps: names and order, exact agreement with the forward pass, the manifest, the
file format as other languages see it (a zip of .npy members), atomic writes, the command."""

import hashlib
import io
import json
import os
import zipfile

import numpy as np
import pytest

import numpy_resnext as nrx
from numpy_resnext.cli import main
from numpy_resnext.errors import FormatError, InputError
from numpy_resnext.golden import (MANIFEST_KEY, golden_dump, params_sha256, read_golden,
                                  tensor_sha256, write_golden)

TINY = nrx.custom(depths=(1, 1), cardinality=4, base_width=2, num_classes=10, stem_width=16)
TINY_D = nrx.custom(depths=(1, 1), cardinality=4, base_width=2, num_classes=10, stem_width=16,
                    deep_stem_width=8, stem="deep")


@pytest.fixture(scope="module", params=[TINY, TINY_D], ids=["plain", "vd"])
def dumped(request):
    model = nrx.build(request.param, seed=3, dtype="float64")
    x = np.random.default_rng(7).standard_normal((2, 3, 32, 32))
    x_before = x.copy()
    tensors, manifest = golden_dump(model, x)
    assert np.array_equal(x, x_before), "golden_dump modified its input"
    return model, x, tensors, manifest


def test_names_in_execution_order_and_values_equal_the_forward(dumped):
    model, x, tensors, manifest = dumped
    names = model.intermediate_names()
    assert list(tensors) == ["input"] + names
    assert manifest["execution_order"] == ["input"] + names
    logits, acts = model.forward(x, keep=True)
    assert np.array_equal(tensors["fc"], logits)
    for name in names:
        assert np.array_equal(tensors[name], acts[name]), name
    assert np.array_equal(tensors["input"], x)


def test_dump_keeps_copies_not_views(dumped):
    _, _, tensors, _ = dumped
    # BN and ReLU run in place in the forward: stored conv outputs must still hold negatives
    assert (tensors["layer1.0.conv1"] < 0).any()
    assert (tensors["layer1.0.relu1"] >= 0).all()


def test_manifest_records_what_a_consumer_needs(dumped):
    model, x, tensors, manifest = dumped
    assert manifest["format"] == "numpy-resnext-golden"
    assert manifest["arch"]["name"] == model.config.name
    assert manifest["arch"]["config"]["depths"] == [1, 1]
    assert manifest["dtype"] == "float64"
    assert manifest["versions"]["numpy"] == np.__version__
    assert manifest["versions"]["numpy_resnext"] == nrx.__version__
    assert manifest["input"]["sha256"] == hashlib.sha256(x.astype("<f8").tobytes()).hexdigest()
    assert manifest["weights"]["params_sha256"] == params_sha256(model.params)
    assert [r["name"] for r in manifest["tensors"]] == list(tensors)
    for rec in manifest["tensors"]:
        a = tensors[rec["name"]]
        assert rec["shape"] == list(a.shape) and rec["dtype"] == "float64"
        assert rec["sha256"] == hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()
        assert rec["sum"] == pytest.approx(float(a.sum()), rel=1e-12, abs=1e-12)
    tol = manifest["suggested_tolerances"]
    assert tol["float64"]["rtol"] < tol["float32"]["rtol"] <= 1e-3


def test_manifest_is_strict_json_when_the_forward_overflows(tmp_path):
    model = nrx.build(TINY, seed=0, dtype="float32")
    x = np.full((1, 3, 32, 32), 3e38, np.float32)          # conv1 overflows to inf, BN gives NaN
    with np.errstate(all="ignore"):
        tensors, manifest = golden_dump(model, x, keep=["conv1", "fc"])
    assert not np.isfinite(tensors["conv1"]).all()
    write_golden(tmp_path / "g.npz", tensors, manifest)
    with zipfile.ZipFile(tmp_path / "g.npz") as zf:
        text = np.lib.format.read_array(io.BytesIO(zf.read(f"{MANIFEST_KEY}.npy"))).tobytes()

    def refuse(constant):
        raise AssertionError(f"{constant} is not JSON")
    records = json.loads(text, parse_constant=refuse)["tensors"]
    assert [r["sum"] for r in records if r["name"] == "conv1"] == [None]


def test_params_sha256_changes_with_one_weight():
    model = nrx.build(TINY, seed=0, dtype="float64")
    before = params_sha256(model.params)
    model.params["layer2.0.bn3.running_var"][5] += 1e-12
    assert params_sha256(model.params) != before


def test_select_keeps_matching_names_and_the_input():
    model = nrx.build(TINY, seed=0, dtype="float32")
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    tensors, manifest = golden_dump(model, x, keep=["layer2.0.*", "fc"])
    kept = [n for n in model.intermediate_names() if n.startswith("layer2.0.") or n == "fc"]
    assert list(tensors) == ["input"] + kept
    assert len(manifest["execution_order"]) == len(model.intermediate_names()) + 1
    assert manifest["select"] == ["layer2.0.*", "fc"]
    assert all(a.dtype == np.float32 for a in tensors.values())


def test_progress_is_reported_per_block():
    model = nrx.build(TINY, seed=0, dtype="float64")
    seen = []
    golden_dump(model, np.zeros((1, 3, 32, 32)), keep=["fc"],
                progress=lambda done, total, note: seen.append((done, total, note)))
    assert [s[2] for s in seen] == ["stem", "layer1.0", "layer2.0", "head"]
    assert seen[-1][0] == seen[-1][1] == 4


def test_write_read_round_trip_preserves_order_and_verifies(tmp_path, dumped):
    _, _, tensors, manifest = dumped
    path = tmp_path / "g.npz"
    size = write_golden(path, tensors, manifest)
    assert size == path.stat().st_size
    back, m = read_golden(path)
    assert list(back) == list(tensors) and m == json.loads(json.dumps(manifest))
    for name in tensors:
        assert np.array_equal(back[name], tensors[name]) and back[name].dtype == tensors[name].dtype


def test_file_is_a_plain_zip_of_npy_members_in_order(tmp_path, dumped):
    """What a C++/Rust/JS reader sees: stored (uncompressed) NAME.npy members in execution
    order, and the manifest as uint8 JSON bytes."""
    _, _, tensors, manifest = dumped
    path = tmp_path / "g.npz"
    write_golden(path, tensors, manifest)
    with zipfile.ZipFile(path) as zf:
        infos = zf.infolist()
        assert [i.filename for i in infos] == [f"{n}.npy" for n in tensors] + [f"{MANIFEST_KEY}.npy"]
        assert all(i.compress_type == zipfile.ZIP_STORED for i in infos)
        raw = zf.read("layer1.0.conv2.npy")
        blob = np.lib.format.read_array(io.BytesIO(zf.read(f"{MANIFEST_KEY}.npy")))
    assert raw.startswith(b"\x93NUMPY")
    header_len = int.from_bytes(raw[8:10], "little")
    header = raw[10:10 + header_len].decode("latin1")
    assert "'descr': '<f8'" in header and "'fortran_order': False" in header
    data = np.frombuffer(raw[10 + header_len:], dtype="<f8")
    assert np.array_equal(data, tensors["layer1.0.conv2"].ravel())
    assert blob.dtype == np.uint8 and json.loads(blob.tobytes())["tensors"][0]["name"] == "input"


def test_write_is_atomic(tmp_path):
    path = tmp_path / "g.npz"
    bad = {"input": np.zeros(3), "broken": np.array([object()], dtype=object)}
    with pytest.raises(ValueError):
        write_golden(path, bad)                      # object arrays are refused mid-write
    assert os.listdir(tmp_path) == []
    write_golden(path, {"input": np.ones(2)})
    with pytest.raises(ValueError):
        write_golden(path, bad)
    back, _ = read_golden(path)                      # the previous file is untouched
    assert list(back) == ["input"] and np.array_equal(back["input"], np.ones(2))
    assert os.listdir(tmp_path) == ["g.npz"]


def test_bad_tensor_names_are_refused(tmp_path):
    for name in (MANIFEST_KEY, "a/b", ""):
        with pytest.raises(InputError, match="not allowed") as err:
            write_golden(tmp_path / "g.npz", {name: np.zeros(1)})
        assert "expected a non-empty name without '/'" in str(err.value)


def test_read_detects_a_tampered_tensor(tmp_path, dumped):
    _, _, tensors, manifest = dumped
    changed = dict(tensors)
    changed["layer2.0.bn2"] = tensors["layer2.0.bn2"].copy()
    changed["layer2.0.bn2"][0, 0, 0, 0] += 1e-15 * max(1.0, abs(changed["layer2.0.bn2"][0, 0, 0, 0]))
    path = tmp_path / "g.npz"
    write_golden(path, changed, manifest)
    with pytest.raises(FormatError, match=r"layer2\.0\.bn2: sha256 differs"):
        read_golden(path)
    back, _ = read_golden(path, verify=False)
    assert np.array_equal(back["layer2.0.bn2"], changed["layer2.0.bn2"])


def test_read_errors_name_the_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_golden(tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 definitely not a zip")
    with pytest.raises(FormatError, match="junk.npz"):
        read_golden(tmp_path / "junk.npz")
    np.savez(tmp_path / "foreign.npz", **{MANIFEST_KEY: np.frombuffer(b'{"a": 1}', np.uint8)})
    with pytest.raises(FormatError, match="not a numpy-resnext-golden manifest"):
        read_golden(tmp_path / "foreign.npz")
    np.save(tmp_path / "obj.npy", np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(FormatError, match="obj.npy"):
        read_golden(tmp_path / "obj.npy")             # never unpickled


def test_tensor_sha256_is_byte_order_independent():
    a = np.arange(6, dtype="<f4").reshape(2, 3)
    assert tensor_sha256(a) == tensor_sha256(a.astype(">f4")) == tensor_sha256(np.asfortranarray(a))


# --- the command ---------------------------------------------------------------------------
def test_golden_command_end_to_end(tmp_path, capsys):
    x = np.random.default_rng(1).standard_normal((1, 3, 40, 40))
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "g.npz"
    rc = main(["golden", "ResNeXt50_32x4d", "--input", str(tmp_path / "x.npy"), "--output", str(out),
               "--keep", "layer4.*", "--keep", "avgpool,fc"])
    assert rc == 0
    assert "written to" in capsys.readouterr().out
    tensors, manifest = read_golden(out)
    model = nrx.build("ResNeXt50_32x4d", seed=0, dtype="float64")
    assert np.array_equal(tensors["fc"], model(x))
    assert list(tensors)[:2] == ["input", "layer4.0.conv1"] and list(tensors)[-2:] == ["avgpool", "fc"]
    assert manifest["weights"]["source"] == "seeded" and manifest["weights"]["seed"] == 0
    assert manifest["input"]["file_sha256"] == hashlib.sha256((tmp_path / "x.npy").read_bytes()).hexdigest()
    assert manifest["select"] == ["layer4.*", "avgpool", "fc"]


def test_golden_command_float32_and_3d_input(tmp_path):
    np.save(tmp_path / "x.npy", np.random.default_rng(1).standard_normal((3, 40, 40)).astype(np.float32))
    assert main(["golden", "ResNeXt50_32x4d", "--input", str(tmp_path / "x.npy"), "--output",
                 str(tmp_path / "g.npz"), "--dtype", "float32", "--keep", "fc"]) == 0
    tensors, manifest = read_golden(tmp_path / "g.npz")
    assert tensors["input"].shape == (1, 3, 40, 40) and tensors["fc"].dtype == np.float32
    assert manifest["dtype"] == "float32"


def test_golden_command_preprocesses_uint8_pixels_in_float32(tmp_path):
    from numpy_resnext.preprocess import preprocess
    raw = np.random.default_rng(2).integers(0, 256, (230, 250, 3), dtype=np.uint8)
    np.save(tmp_path / "raw.npy", raw)
    assert main(["golden", "ResNeXt50_32x4d", "--input", str(tmp_path / "raw.npy"), "--output",
                 str(tmp_path / "g.npz"), "--keep", "fc"]) == 0
    tensors, manifest = read_golden(tmp_path / "g.npz")
    # PaddleClas's float32 numbers, then cast to the float64 of the dump
    assert np.array_equal(tensors["input"], preprocess(raw, "float32")[None].astype(np.float64))
    assert "center crop 224" in manifest["input"]["preprocessing"]


@pytest.mark.parametrize("args, message", [
    (["--input", "{d}/nope.npy"], "does not exist"),
    (["--input", "{d}/x.npy", "--keep", "layer9.*"], "matches no tensor name"),
    (["--input", "{d}/ints.npy"], "expected float32 or float64"),
    (["--input", "{d}/x.npy", "--output", "{d}/no/such/dir/g.npz"], "does not exist"),
    (["--input", "{d}/hwc.npy"], "channels-last"),
    (["--input", "{d}/x.npy", "--weights", "{d}/nope.pdparams"], "nope.pdparams"),
])
def test_golden_command_errors_are_clear(tmp_path, capsys, args, message):
    np.save(tmp_path / "x.npy", np.zeros((1, 3, 40, 40)))
    np.save(tmp_path / "ints.npy", np.zeros((1, 3, 40, 40), dtype=np.int64))
    np.save(tmp_path / "hwc.npy", np.zeros((1, 40, 40, 3)))
    argv = ["golden", "ResNeXt50_32x4d", "--output", str(tmp_path / "g.npz")]
    argv += [a.format(d=tmp_path) for a in args]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "g.npz").exists()


def test_golden_help_has_an_example(capsys):
    with pytest.raises(SystemExit):
        main(["golden", "--help"])
    out = capsys.readouterr().out
    assert "example:" in out and "numpy-resnext golden ResNeXt50_32x4d" in out and "--keep" in out
