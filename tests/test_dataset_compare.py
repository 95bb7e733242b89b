"""compare-set on a real run store: candidates as .npy, .npz, another store and --onnx; bad
candidates (ids repeated, missing or extra, wrong shapes, integers) are exit 2."""

import json
import zipfile

import numpy as np
import pytest

from _dataset import SMALL, cli, need_store, serial_set
from _scratch import scratch


@pytest.fixture(scope="module")
def ref(tmp_path_factory):
    """A complete float64 run over 10 generated images (tiny network), inputs saved."""
    need_store()
    import zarr
    with scratch(tmp_path_factory, "compare") as root:
        weights, images, out = serial_set(root, 10, "--shard", 4, "--keep", "layer3.0,layer4.0", "--sample", 3,
                                          "--save-inputs")
        group = zarr.open_group(str(out), mode="r")
        yield {"root": root, "weights": weights, "images": images, "store": out,
               "ids": [str(i) for i in group["ids"][:]], "logits": np.asarray(group["logits"][:])}


def _compare(ref, candidate, *extra):
    return cli("compare-set", ref["store"], candidate, *extra)


def test_exact_and_float32_candidates(ref, tmp_path):
    np.save(tmp_path / "same.npy", ref["logits"])
    code, out, _ = _compare(ref, tmp_path / "same.npy", "--json", tmp_path / "r.json")
    assert code == 0 and "PASS (rtol 1e-10" in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert {"images", "top1_agreement", "max_rel", "pass"} <= set(report)
    assert report["images"] == 10 and report["top1_agreement"] == 1.0 and report["max_rel"]["max"] == 0.0
    # float32 rounding: passes at float32's defaults, fails when judged as float64
    np.save(tmp_path / "f32.npy", ref["logits"].astype(np.float32))
    code, out, _ = _compare(ref, tmp_path / "f32.npy")
    assert code == 0 and "(float32)" in out and "PASS (rtol 0.0001" in out
    code, out, _ = _compare(ref, tmp_path / "f32.npy", "--candidate-dtype", "float64")
    assert code == 1 and "every image within rtol FAILED" in out


def test_a_swapped_top1_fails_the_agreement(ref, tmp_path):
    c = ref["logits"].copy()
    top = c[3].argmax()
    c[3, top] = c[3].min() - 1                                 # image 3 now votes for another class
    np.save(tmp_path / "c.npy", c)
    code, out, _ = _compare(ref, tmp_path / "c.npy", "--rtol", 10)
    assert code == 1 and "top-1 agreement 90.0000%" in out and "top-1 agreement FAILED" in out
    code, out, _ = _compare(ref, tmp_path / "c.npy", "--rtol", 10, "--min-top1-agreement", 0.9)
    assert code == 0
    assert f"worst images: {ref['ids'][3]}" in out


def test_npz_candidate_in_any_order(ref, tmp_path):
    order = list(reversed(range(10)))
    np.savez(tmp_path / "c.npz", **{ref["ids"][k].replace("/", "|"): ref["logits"][k] for k in order})
    code, _, err = _compare(ref, tmp_path / "c.npz")
    assert code == 2 and "10 missing" in err and "10 not in the run" in err     # ids must be the run's
    with zipfile.ZipFile(tmp_path / "ok.npz", "w") as z:                       # keys with "/" as written
        for k in order:
            with z.open(f"{ref['ids'][k]}.npy", "w") as f:
                np.lib.format.write_array(f, ref["logits"][k][None])          # (1, classes) accepted
    code, out, err = _compare(ref, tmp_path / "ok.npz")
    assert code == 0, err


def _npz(path, members):
    with zipfile.ZipFile(path, "w") as z:
        for name, array in members:
            with z.open(f"{name}.npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, array)
    return path


@pytest.mark.filterwarnings("ignore:Duplicate name")       # the duplicated member, on purpose
@pytest.mark.parametrize("case, message", [
    ("duplicated", "named twice"),
    ("missing", "1 missing"),
    ("extra", "1 not in the run"),
    ("shape", "expected logits of shape (10,)"),
    ("integers", "logits must be floats"),
    ("npy-shape", "expected logits of shape (10, 10) in the run's id order, found (9, 10)"),
])
def test_bad_candidates_are_exit_2(ref, tmp_path, case, message):
    members = [(i, ref["logits"][k]) for k, i in enumerate(ref["ids"])]
    if case == "npy-shape":
        np.save(tmp_path / "c.npy", ref["logits"][:9])
        path = tmp_path / "c.npy"
    else:
        if case == "duplicated":
            members.append(members[0])
        elif case == "missing":
            members = members[1:]
        elif case == "extra":
            members.append(("not-an-image", ref["logits"][0]))
        elif case == "shape":
            members[2] = (members[2][0], ref["logits"][2][:5])
        elif case == "integers":
            members[2] = (members[2][0], ref["logits"][2].astype(np.int64))
        path = _npz(tmp_path / "c.npz", members)
    code, _, err = _compare(ref, path)
    assert code == 2 and message in err, err


def test_another_store_as_candidate_locates_the_first_divergence(ref, tmp_path):
    cand = tmp_path / "f32.zarr"
    code, _, err = cli("golden-set", "--weights", ref["weights"], "--images", ref["images"], "--output", cand,
                       "--dtype", "float32", "--workers", 0, "--threads", 1, "--preprocess", SMALL,
                       "--keep", "layer3.0,layer4.0", "--sample", 3)
    assert code == 0, err
    code, out, _ = _compare(ref, cand, "--json", tmp_path / "r.json")
    assert code == 0 and out.count("all 2 tensors pass") == 3
    code, out, _ = _compare(ref, cand, "--rtol", 1e-12)        # float32 seen at a float64 tolerance
    assert code == 1 and "first divergence layer3.0" in out
    report = json.loads((tmp_path / "r.json").read_text())
    assert [d["id"] for d in report["first_divergence"]] == ref["ids"][:3]


def test_incomplete_reference_is_exit_2(ref, tmp_path):
    import shutil
    import zarr
    shutil.copytree(ref["store"], tmp_path / "r.zarr")
    zarr.open_group(str(tmp_path / "r.zarr"), mode="r+")["done"][1] = False
    np.save(tmp_path / "c.npy", ref["logits"])
    code, _, err = cli("compare-set", tmp_path / "r.zarr", tmp_path / "c.npy")
    assert code == 2 and "1 of 3 shards are not done" in err
    code, _, err = cli("compare-set", ref["store"])
    assert code == 2 and "give a CANDIDATE" in err


@pytest.mark.onnx
def test_onnx_candidate_with_saved_inputs_and_read_again(ref, tmp_path):
    pytest.importorskip("onnxruntime", reason="compare-set --onnx needs pip install 'numpy-resnext[onnx]'")
    import numpy_resnext as nrx
    from numpy_resnext.onnx_export import export_onnx
    model = nrx.build(None, weights=str(ref["weights"]), dtype="float64")
    export_onnx(model, tmp_path / "m.onnx", size=(32, 32), intermediates=["layer3.0", "layer4.0"], progress=False)
    code, out, err = cli("compare-set", ref["store"], "--onnx", tmp_path / "m.onnx")
    assert code == 0, err
    assert "(float32)" in out and out.count("all 2 tensors pass") == 3
    # the same inputs read again from the images (the store's inputs removed)
    import shutil
    import zarr
    shutil.copytree(ref["store"], tmp_path / "r.zarr")
    group = zarr.open_group(str(tmp_path / "r.zarr"), mode="r+")
    del group["inputs"]
    code, out, err = cli("compare-set", tmp_path / "r.zarr", "--onnx", tmp_path / "m.onnx")
    assert code == 0, err
    # an image changed since the run: its sha256 no longer matches
    first = ref["ids"][0]
    a = np.load(ref["images"] / first)
    np.save(tmp_path / "changed.npy", 255 - a)
    shutil.copytree(ref["images"], tmp_path / "moved")
    np.save(tmp_path / "moved" / first, 255 - a)
    code, _, err = cli("compare-set", tmp_path / "r.zarr", "--onnx", tmp_path / "m.onnx", "--images", tmp_path / "moved")
    assert code == 2 and f"image {first!r} read again is not the input the run used" in err


@pytest.mark.onnx
def test_onnx_float64_model_is_a_clear_error(ref, tmp_path):
    pytest.importorskip("onnxruntime", reason="compare-set --onnx needs pip install 'numpy-resnext[onnx]'")
    import numpy_resnext as nrx
    from numpy_resnext.onnx_export import export_onnx
    model = nrx.build(None, weights=str(ref["weights"]), dtype="float64")
    export_onnx(model, tmp_path / "m64.onnx", dtype="float64", size=(32, 32), progress=False)
    code, _, err = cli("compare-set", ref["store"], "--onnx", tmp_path / "m64.onnx")
    assert code == 2 and "no float64 convolution" in err, err
    (tmp_path / "junk.onnx").write_bytes(b"not a model")
    code, _, err = cli("compare-set", ref["store"], "--onnx", tmp_path / "junk.onnx")
    assert code == 2 and "onnxruntime cannot load it" in err
