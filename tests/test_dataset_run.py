"""golden-set in this process (--workers 0) and set-status: the store, resuming, a stale
partial shard, fingerprints, per-image failures. Needs zarr and threadpoolctl (skips without)."""

import hashlib
import json

import numpy as np
import pytest

import numpy_resnext as nrx
from numpy_resnext.dataset.synthetic import generated_image
from numpy_resnext.preprocess import get_preset

from _dataset import SMALL, TINY, cli, image_folder, logits_bytes, need_store, tiny_weights


@pytest.fixture
def run(tmp_path):
    """(weights, images, a function running golden-set serially with extra options)."""
    need_store()
    weights = tiny_weights(tmp_path / "tiny.npz")
    images = image_folder(tmp_path / "images", n=10)

    def go(output, *extra):
        return cli("golden-set", "--weights", weights, "--images", images, "--output", output,
                   "--workers", 0, "--threads", 1, "--preprocess", SMALL, "--shard", 3, *extra)
    return weights, images, go


def test_store_holds_what_an_independent_forward_gives(run, tmp_path):
    zarr = need_store()
    weights, images, go = run
    code, out, err = go(tmp_path / "r.zarr", "--keep", "layer1.0,layer4.0", "--sample", 2, "--save-inputs")
    assert code == 0, err
    root = zarr.open_group(str(tmp_path / "r.zarr"), mode="r")
    ids = [str(i) for i in root["ids"][:]]
    assert ids == sorted(ids) and len(ids) == 10 and ids[0].startswith("class_00/")
    # ImageFolder labels: the sorted class folders are 0, 1, ...; generated image i is family i % 8
    np.testing.assert_array_equal(root["labels"][:], [int(i[6:8]) for i in ids])
    model = nrx.build(None, weights=str(weights), dtype="float64")
    preset = get_preset(SMALL)
    for k, name in enumerate(ids):
        index = int(name.split("_")[-1].split(".")[0])
        x = preset(generated_image(index)).astype(np.float64)                  # 3, 32, 32
        logits, kept = model.forward(x[None], keep=["layer1.0", "layer4.0"])
        np.testing.assert_array_equal(root["logits"][k], logits[0])
        np.testing.assert_array_equal(root["inputs"][k], x)
        assert bytes(root["input_sha256"][k]) == hashlib.sha256(x.tobytes()).digest()
        t = kept["layer4.0"][0].astype(np.float64)
        np.testing.assert_allclose(root["stats/layer4.0"][k], [t.mean(), t.std(), t.min(), t.max(),
                                                               np.abs(t).max(), np.linalg.norm(t)], rtol=1e-12)
        if k < 2:
            np.testing.assert_array_equal(root["sample/layer1.0"][k], kept["layer1.0"][0])
    assert root["sample/layer1.0"].shape[0] == 2
    assert root["done"][:].all() and list(root["attempts"][:]) == [1, 1, 1, 1]
    m = dict(root.attrs)["numpy_resnext_golden_set"]
    assert m["images"] == 10 and m["shard_size"] == 3 and m["keep"] == ["layer1.0", "layer4.0"]
    assert m["weights"]["file_sha256"] == hashlib.sha256((tmp_path / "tiny.npz").read_bytes()).hexdigest()
    assert m["preprocessing"]["crop"] == 32 and m["runs"][-1]["computed"] == [0, 1, 2, 3]


def test_resume_computes_nothing_and_a_stale_partial_shard_is_recomputed(run, tmp_path):
    zarr = need_store()
    _, _, go = run
    out = tmp_path / "r.zarr"
    assert go(out)[0] == 0
    reference = logits_bytes(out)
    code, _, err = go(out)
    assert code == 0 and "3 of 4 shards done" not in err and "4 of 4 shards done in earlier runs" in err
    root = zarr.open_group(str(out), mode="r+")
    assert root.attrs["numpy_resnext_golden_set"]["runs"][-1]["computed"] == []
    # shard 2 half-written by a task that died: garbage logits, no done flag
    root["logits"][6:9] = np.full((3, 10), 7.0)
    root["done"][2] = False
    code, _, err = go(out)
    assert code == 0, err
    runs = zarr.open_group(str(out), mode="r").attrs["numpy_resnext_golden_set"]["runs"]
    assert len(runs) == 3 and runs[-1]["computed"] == [2]
    assert logits_bytes(out) == reference


def test_fingerprint_mismatch_is_exit_2_naming_what_differs(run, tmp_path):
    need_store()
    _, _, go = run
    out = tmp_path / "r.zarr"
    assert go(out)[0] == 0
    code, _, err = go(out, "--dtype", "float32")
    assert code == 2
    assert "different fingerprint" in err and "dtype: stored \"float64\", this run \"float32\"" in err
    code, _, err = go(out, "--limit", 5)
    assert code == 2 and "images: stored 10, this run 5" in err and "list_sha256" in err
    code, _, err = cli("golden-set", "--weights", tiny_weights(tmp_path / "other.npz", seed=1),
                       "--images", tmp_path / "images", "--output", out, "--workers", 0,
                       "--preprocess", SMALL)
    assert code == 2 and "weights_params_sha256" in err


def test_unreadable_images_are_recorded_and_the_run_goes_on(run, tmp_path):
    zarr = need_store()
    weights, images, _ = run
    (images / "class_01" / "broken.npy").write_bytes(b"\x93NUMPY garbage")
    np.save(images / "class_02" / "ints.npy", np.zeros((5, 5), np.int32))
    out = tmp_path / "r.zarr"
    code, stdout, err = cli("golden-set", "--weights", weights, "--images", images, "--output", out,
                            "--workers", 0, "--preprocess", SMALL)
    assert code == 0, err
    assert "2 image(s) failed" in stdout
    root = zarr.open_group(str(out), mode="r")
    ids = [str(i) for i in root["ids"][:]]
    bad = [ids.index("class_01/broken.npy"), ids.index("class_02/ints.npy")]
    assert np.isnan(root["logits"][bad]).all() and not np.isnan(np.delete(root["logits"][:], bad, 0)).any()
    errors = root["errors"][:]
    assert "broken.npy" in str(errors[bad[0]]) and "int32" in str(errors[bad[1]])
    code, text, _ = cli("set-status", out, "--json")
    s = json.loads(text)
    assert code == 0 and s["failed"] == 2 and s["images"] == 12 and s["done"] == s["shards"]
    assert {f["id"] for f in s["failures"]} == {"class_01/broken.npy", "class_02/ints.npy"}


def test_set_status_of_an_incomplete_store(run, tmp_path):
    zarr = need_store()
    _, _, go = run
    out = tmp_path / "r.zarr"
    assert go(out)[0] == 0
    zarr.open_group(str(out), mode="r+")["done"][1:3] = False
    code, text, _ = cli("set-status", out)
    assert code == 1 and "shards: 2 of 4 done" in text and "missing: 1-2" in text
    code, text, _ = cli("set-status", out, "--json")
    s = json.loads(text)
    assert {k: s[k] for k in ("shards", "done", "missing", "images", "failed")} == \
        {"shards": 4, "done": 2, "missing": [1, 2], "images": 10, "failed": 0}
    assert cli("set-status", tmp_path)[0] == 2


@pytest.mark.parametrize("kind", ["npy", "npz", "list", "generated"])
def test_sources(kind, tmp_path):
    zarr = need_store()
    weights = tiny_weights(tmp_path / "tiny.npz")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 3, 32, 32))
    if kind == "npy":
        np.save(tmp_path / "x.npy", x)
        src, ids = tmp_path / "x.npy", [str(i) for i in range(5)]
    elif kind == "npz":
        np.savez(tmp_path / "x.npz", **{f"img{i}": x[i] for i in (3, 1, 4, 0, 2)})
        src, ids = tmp_path / "x.npz", ["img3", "img1", "img4", "img0", "img2"]
        x = x[[3, 1, 4, 0, 2]]
    elif kind == "list":
        image_folder(tmp_path / "imgs", n=5, layout="flat")
        (tmp_path / "imgs" / "val_list.txt").write_text("generated_00003.npy 7\ngenerated_00001.npy 2\n")
        src, ids = tmp_path / "imgs" / "val_list.txt", ["generated_00003.npy", "generated_00001.npy"]
    else:
        src, ids = "generated:4:5", [f"generated-5-{i:06d}" for i in range(4)]
    code, _, err = cli("golden-set", "--weights", weights, "--images", src, "--output", tmp_path / "r.zarr",
                       "--workers", 0, "--preprocess", SMALL)
    assert code == 0, err
    root = zarr.open_group(str(tmp_path / "r.zarr"), mode="r")
    assert [str(i) for i in root["ids"][:]] == ids
    if kind in ("npy", "npz"):
        model = nrx.build(None, weights=str(weights), dtype="float64")
        for i in range(len(x)):            # batch 1, as the run computes: the same bits
            np.testing.assert_array_equal(root["logits"][i], model(x[i:i + 1])[0])
    if kind == "list":
        assert list(root["labels"][:]) == [7, 2]
    if kind == "generated":
        assert list(root["labels"][:]) == [-1, -1, -1, -1]


def test_bad_options_are_exit_2(run, tmp_path):
    need_store()
    weights, images, go = run
    assert "matches no tensor" in go(tmp_path / "a.zarr", "--keep", "nothing*")[2]
    assert "unknown preset" in cli("golden-set", "--weights", weights, "--images", images, "--output",
                                   tmp_path / "b.zarr", "--preprocess", "caffe")[2]
    code, _, err = cli("golden-set", "--weights", weights, "--images", tmp_path / "nowhere",
                       "--output", tmp_path / "c.zarr", "--workers", 0)
    assert code == 2 and "does not exist" in err
    (tmp_path / "labels.txt").write_text("class_00/generated_00000.npy 3\n")
    code, _, err = go(tmp_path / "d.zarr", "--labels", tmp_path / "labels.txt")
    assert code == 2 and "no label for 9 of the 10 images" in err
    (tmp_path / "file").write_text("x")
    code, _, err = go(tmp_path / "file")
    assert code == 2 and "not a run store" in err


def test_custom_architecture_through_the_api(tmp_path):
    need_store()
    from numpy_resnext.dataset import Options, run_golden_set
    o = Options(images="generated:3", output=str(tmp_path / "r.zarr"), arch=nrx.custom(**TINY),
                workers=0, threads=1, preprocess=SMALL, seed=4)
    assert run_golden_set(o) == 0
    model = nrx.build(nrx.custom(**TINY), seed=4, dtype="float64")
    x = get_preset(SMALL)(generated_image(1)).astype(np.float64)
    import zarr
    np.testing.assert_array_equal(zarr.open_group(str(tmp_path / "r.zarr"))["logits"][1], model(x[None])[0])


@pytest.mark.filterwarnings("ignore:Numcodecs codecs are not in the Zarr version 3")
@pytest.mark.parametrize("codec, message", [
    ({"name": "numcodecs.zlib", "configuration": {"level": 1}}, "codecs ['numcodecs.zlib']"),
    ({"name": "numcodecs.pickle", "configuration": {}}, "unreadable Zarr metadata"),
])
def test_a_store_with_other_codecs_is_refused(run, tmp_path, codec, message):
    need_store()
    _, _, go = run
    out = tmp_path / "r.zarr"
    assert go(out)[0] == 0
    meta_path = out / "errors" / "zarr.json"
    meta = json.loads(meta_path.read_text())
    meta["codecs"] = [meta["codecs"][0], codec]
    meta_path.write_text(json.dumps(meta))
    np.save(tmp_path / "c.npy", np.zeros((10, 10)))
    for argv in (("set-status", out), ("compare-set", out, tmp_path / "c.npy"), ("golden-set", "--images",
                                                                                   "generated:2", "--output", out)):
        code, _, err = cli(*argv)
        assert code == 2 and message in err, (argv, err)
