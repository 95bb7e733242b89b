"""Sources and the generated data sets (NumPy only, but for the scikit-image lane)."""

import hashlib
import io
import tracemalloc
import zipfile

import numpy as np
import pytest

from numpy_resnext.dataset.candidates import read_candidate
from numpy_resnext.dataset.sources import load_item, open_source, parse_list, read_labels
from numpy_resnext.dataset.synthetic import (FAMILIES, SKIMAGE_IMAGES, generated_image, skimage_image,
                                             write_folder)
from numpy_resnext.errors import FormatError, InputError
from numpy_resnext.preprocess import get_preset

SMALL = get_preset("paddleclas:resize=40,crop=32")


def test_generated_images_are_seeded_and_varied():
    a, b = generated_image(5, seed=1), generated_image(5, seed=1)
    assert a.dtype == np.uint8 and a.ndim == 3 and a.shape[2] == 3 and 160 <= min(a.shape[:2])
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(generated_image(5, seed=2)[:50, :50], a[:50, :50])
    # eight families, each image different; a fixed size is honoured
    images = [generated_image(i, size=(40, 30)) for i in range(len(FAMILIES))]
    assert all(im.shape == (40, 30, 3) for im in images)
    assert len({hashlib.sha256(im.tobytes()).hexdigest() for im in images}) == len(FAMILIES)
    assert all(im.std() > 5 for im in images)


def test_folder_and_imagefolder(tmp_path):
    write_folder(tmp_path / "tree", 10, fmt="npy")
    s = open_source(tmp_path / "tree", SMALL)
    assert s.spec.kind == "imagefolder" and s.classes == [f"class_{k:02d}" for k in range(8)]
    assert list(s.labels) == [int(i[6:8]) for i in s.ids] and s.input_shape == (3, 32, 32)
    x = load_item(s.spec, s.ids[3], 3)
    np.testing.assert_array_equal(x, SMALL(np.load(tmp_path / "tree" / s.ids[3])))
    (tmp_path / "tree" / "class_99").mkdir()
    with pytest.raises(InputError, match=r"class folder\(s\) class_99 hold no image"):
        open_source(tmp_path / "tree", SMALL)
    write_folder(tmp_path / "flat", 4, fmt="npy", layout="flat")
    s = open_source(tmp_path / "flat", SMALL, limit=3)
    assert s.spec.kind == "folder" and len(s.ids) == 3 and (s.labels == -1).all()
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no image files found"):
        open_source(tmp_path / "empty", SMALL)


def test_list_files_and_labels(tmp_path):
    ids, labels = parse_list("# val_map\na.JPEG 65\n\nb with space.JPEG 3\nc.JPEG\nd.JPEG -1\n", "list")
    assert ids == ["a.JPEG", "b with space.JPEG", "c.JPEG", "d.JPEG"] and list(labels) == [65, 3, -1, -1]
    with pytest.raises(InputError, match=r"'a.JPEG' is listed twice \(lines 1 and 2\)"):
        parse_list("a.JPEG 1\na.JPEG 2\n", "list")
    with pytest.raises(InputError, match="label must be >= 0"):
        parse_list("a.JPEG -3\n", "list")
    (tmp_path / "labels.txt").write_text("x 1\ny 2\nz 3\n")
    assert list(read_labels(tmp_path / "labels.txt", ["z", "x"])) == [3, 1]
    np.save(tmp_path / "labels.npy", np.array([4, 5]))
    assert list(read_labels(tmp_path / "labels.npy", ["z", "x"])) == [4, 5]
    with pytest.raises(InputError, match="expected 3 integer labels"):
        read_labels(tmp_path / "labels.npy", ["a", "b", "c"])


def test_tensor_sources_refuse_what_is_not_tensors(tmp_path):
    np.save(tmp_path / "hwc.npy", np.zeros((2, 32, 32, 3), np.float32))
    with pytest.raises(InputError, match=r"expected float \(N, 3, H, W\)"):
        open_source(tmp_path / "hwc.npy", None)
    np.savez(tmp_path / "mixed.npz", a=np.zeros((3, 32, 32)), b=np.zeros((3, 16, 16)))
    with pytest.raises(InputError, match="one size"):
        open_source(tmp_path / "mixed.npz", None)
    s = open_source("generated:3:7", SMALL)
    assert s.ids == ["generated-7-000000", "generated-7-000001", "generated-7-000002"]
    assert s.list_sha256 != open_source("generated:3:8", SMALL).list_sha256
    with pytest.raises(InputError, match="generated:N or generated:N:SEED"):
        open_source("generated:many", SMALL)


_PEAK = [0]


def _peak_while(f):
    """(f(), the peak bytes Python and NumPy allocated while it ran); the peak is also left
    in _PEAK when f raises."""
    tracemalloc.start()
    try:
        out = f()
        return out, tracemalloc.get_traced_memory()[1]
    finally:
        _PEAK[0] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()


def test_npz_tensors_are_listed_from_headers_and_read_one_at_a_time(tmp_path):
    x = np.random.default_rng(0).standard_normal((4, 3, 768, 768)).astype(np.float32)   # 6.75 MiB each
    np.savez(tmp_path / "x.npz", **{f"i{k}": x[k] for k in range(3)}, i3=x[3:4])          # stored
    np.savez_compressed(tmp_path / "z.npz", **{f"i{k}": x[k] for k in range(4)})          # deflated
    for name in ("x.npz", "z.npz"):
        s, peak = _peak_while(lambda: open_source(tmp_path / name, None))
        assert s.ids == ["i0", "i1", "i2", "i3"] and s.input_shape == (3, 768, 768)
        # the source's sha256 reads the file 1 MiB at a time; one tensor would be 6.75 MiB
        assert peak < 4 << 20, f"listing {name} allocated {peak} bytes: it read the tensors"
        for k, item in enumerate(s.ids):
            np.testing.assert_array_equal(load_item(s.spec, item, k), x[k])
    # the worker keeps the archive open between items; a file replaced at the path is read anew
    np.savez(tmp_path / "z.npz", **{f"i{k}": x[k] + 1 for k in range(4)})      # s is z.npz's
    np.testing.assert_array_equal(load_item(s.spec, "i2", 2), x[2] + 1)


def test_npz_tensor_archives_are_checked_before_anything_is_read(tmp_path):
    bomb = tmp_path / "bomb.npz"                  # 108 MB of zeros in about 100 KB
    np.savez_compressed(bomb, img=np.zeros((3, 3000, 3000), np.float32))
    with pytest.raises(FormatError, match="bomb.npz.*decompression bomb"):
        _peak_while(lambda: open_source(bomb, None))
    assert _PEAK[0] < 8 << 20, f"{_PEAK[0]} bytes allocated before the refusal"
    declares = tmp_path / "declares.npz"          # a header promising more than the member holds
    with zipfile.ZipFile(declares, "w") as z:
        z.writestr("img.npy", _npy_bytes((3, 1000, 1000))[:2000])
    with pytest.raises(FormatError, match=r"header declares a float32 array of shape \[3, 1000, 1000\]"):
        open_source(declares, None)
    twice = tmp_path / "twice.npz"
    with zipfile.ZipFile(twice, "w") as z, pytest.warns(UserWarning, match="Duplicate name"):
        for _ in range(2):
            z.writestr("img.npy", _npy_bytes((3, 8, 8)))
    with pytest.raises(FormatError, match="members named twice: img.npy"):
        open_source(twice, None)
    np.savez(tmp_path / "u8.npz", a=np.zeros((3, 8, 8), np.uint8))
    with pytest.raises(InputError, match="member 'a' is uint8, expected float tensors"):
        open_source(tmp_path / "u8.npz", None)
    np.savez(tmp_path / "batch.npz", a=np.zeros((3, 8, 8)), b=np.zeros((2, 3, 8, 8)))
    with pytest.raises(InputError, match=r"every member must be \(3, H, W\) of one size.*\[2, 3, 8, 8\]"):
        open_source(tmp_path / "batch.npz", None)


def _npy_bytes(shape):
    """A float32 .npy of zeros of ``shape``, as np.save writes it."""
    buf = io.BytesIO()
    np.save(buf, np.zeros(shape, np.float32))
    return buf.getvalue()


def test_skimage_variants():
    pytest.importorskip("skimage.data", reason="the photographs come with scikit-image")
    pytest.importorskip("PIL.Image", reason="JPEG re-encoding needs Pillow")
    a, b = skimage_image(11, seed=0), skimage_image(11, seed=0)
    np.testing.assert_array_equal(a, b)                          # seeded crop, flip, quality
    assert a.dtype == np.uint8 and a.shape[2] == 3
    assert len({skimage_image(i).shape for i in range(len(SKIMAGE_IMAGES))}) > 5
    s = open_source("skimage:4", SMALL)
    assert load_item(s.spec, s.ids[2], 2).shape == (3, 32, 32)



class _Run:
    """What read_candidate asks of a run store: its ids and its number of classes."""

    def __init__(self, ids, classes):
        self._ids, self.manifest = ids, {"classes": classes}

    def ids(self):
        return self._ids


def test_npz_candidates_hold_as_many_ids_as_the_run(tmp_path):
    """ImageNet-val has 50,000 images: a candidate {id: logits} is not held to the weight
    readers' 10,000 members; its members come back in the run's order."""
    ids = [f"ILSVRC2012_val_{i:08d}.JPEG" for i in range(12_000)]
    logits = np.random.default_rng(1).standard_normal((len(ids), 4)).astype(np.float32)
    shuffled = np.random.default_rng(2).permutation(len(ids))
    np.savez(tmp_path / "c.npz", **{ids[k]: logits[k] for k in shuffled})
    got, dtype, store = read_candidate(tmp_path / "c.npz", _Run(ids, 4))
    assert dtype == "float32" and store is None
    np.testing.assert_array_equal(got, logits)
    np.savez(tmp_path / "wide.npz", **{i: np.zeros(5, np.float32) for i in ids})
    with pytest.raises(InputError, match=r"expected logits of shape \(4,\), found \(5,\)"):
        read_candidate(tmp_path / "wide.npz", _Run(ids, 4))
