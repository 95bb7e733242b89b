"""classify: ImageNet labels, softmax/top-k, and the command end to end (in process)."""

import importlib.util
import json
import os

import numpy as np
import pytest

from numpy_resnext import build
from numpy_resnext.cli import main
from numpy_resnext.errors import InputError
from numpy_resnext.labels import imagenet_labels, label_names, short_name, softmax, top_k
from numpy_resnext.preprocess import preprocess
from _scratch import scratch

ARCH = "ResNeXt50_32x4d"


# --- labels -------------------------------------------------------------------------------------
def test_imagenet_labels_in_index_order():
    labels = imagenet_labels()
    assert len(labels) == 1000
    # well-known ImageNet-1k indices
    assert labels[0] == "tench, Tinca tinca"
    assert short_name(labels[1]) == "goldfish"
    assert short_name(labels[281]) == "tabby"
    assert short_name(labels[999]) == "toilet tissue"
    assert not any(label[:1].isdigit() for label in labels)
    assert label_names(10) == tuple(f"class {i}" for i in range(10))


def test_labels_match_paddleclas_list_when_installed():
    try:
        spec = importlib.util.find_spec("paddleclas")
    except ValueError:          # a stand-in module without a spec
        spec = None
    if spec is None or spec.origin is None:
        pytest.skip("paddleclas is not installed: its label list cannot be compared")
    path = os.path.join(os.path.dirname(spec.origin), "ppcls", "utils", "imagenet1k_label_list.txt")
    with open(path, encoding="utf-8") as f:
        theirs = [line.rstrip("\n") for line in f if line.strip()]
    assert [f"{i} {name}" for i, name in enumerate(imagenet_labels())] == theirs


# --- softmax and top-k -----------------------------------------------------------------------------
def test_softmax_and_top_k_by_hand():
    logits = np.array([0.0, np.log(3.0), -np.inf, np.log(3.0)], dtype=np.float32)
    np.testing.assert_allclose(softmax(logits), [1 / 7, 3 / 7, 0, 3 / 7], atol=1e-7)
    # ties keep the lower index first
    assert [i for i, _ in top_k(logits, 3)] == [1, 3, 0]
    big = np.array([1000.0, 999.0])                         # no overflow
    np.testing.assert_allclose(softmax(big), [1 / (1 + np.exp(-1)), 1 / (1 + np.e)], rtol=1e-12)
    with pytest.raises(InputError, match="one logit vector"):
        top_k(np.zeros((2, 3)), 1)


# --- the command ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def image_files(tmp_path_factory):
    with scratch(tmp_path_factory, "images") as d:
        rng = np.random.default_rng(0)
        raw = rng.integers(0, 256, (300, 380, 3), dtype=np.uint8)
        np.save(d / "raw.npy", raw)
        np.save(d / "ready.npy", preprocess(raw))
        yield d


def _run(argv, capsys):
    status = main(argv)
    out, err = capsys.readouterr()
    return status, out, err


def test_classify_seeded_says_meaningless_and_ranks(image_files, capsys):
    status, out, _ = _run(["classify", ARCH, str(image_files / "raw.npy"), "--top", "3"], capsys)
    assert status == 0
    assert "meaningless" in out
    ranked = [line for line in out.splitlines() if line.strip()[:2] in ("1.", "2.", "3.")]
    assert len(ranked) == 3
    probs = [float(line.split("%")[0].split()[-1]) for line in ranked]
    assert probs == sorted(probs, reverse=True)


def test_classify_raw_and_preprocessed_npy_agree_with_the_api(image_files, capsys):
    status, out, _ = _run(["classify", ARCH, str(image_files / "raw.npy"),
                           str(image_files / "ready.npy"), "--json"], capsys)
    assert status == 0
    a, b = [json.loads(line) for line in out.splitlines()]
    assert [t["index"] for t in a["top"]] == [t["index"] for t in b["top"]]
    logits = build(ARCH, seed=0)(preprocess(np.load(image_files / "raw.npy"))[None])[0]
    assert [t["index"] for t in a["top"]] == list(np.argsort(-logits, kind="stable")[:5])


def test_classify_uses_the_weights_file(image_files, tmp_path, capsys):
    # seeded weights with the head pushed hard towards class 281: the file must be what runs
    from numpy_resnext.params import init_params
    from numpy_resnext.archs import get_arch
    params = init_params(get_arch(ARCH), seed=3)
    params["fc.bias"][281] += 1e4
    np.savez(tmp_path / "w.npz", **params)
    status, out, _ = _run(["classify", ARCH, str(image_files / "raw.npy"), "--weights",
                           str(tmp_path / "w.npz"), "--json", "--top", "2"], capsys)
    assert status == 0
    top = json.loads(out)["top"]
    assert top[0]["index"] == 281 and top[0]["label"].startswith("tabby")
    assert top[0]["probability"] == pytest.approx(1.0)


@pytest.mark.parametrize("argv, message", [
    (["classify", ARCH, "{d}/missing.jpg"], "not found: '{d}/missing.jpg'"),
    (["classify", ARCH, "{d}/raw.npy", "--weights", "{d}/nope.pdparams"], "--weights: '{d}/nope.pdparams' does not exist"),
    (["classify", ARCH, "{d}/raw.npy", "--top", "0"], "--top: expected an integer from 1 to"),
    (["classify", ARCH, "{d}/four.npy"], "float (3, H, W) array, found shape (4, 9, 9)"),
    (["classify", ARCH, "{d}/gray.npy"], r"(H, W, 3) RGB, found shape (20, 20)"),
    (["classify", "ResNeXt51_32x4d", "{d}/raw.npy"], "unknown architecture"),
])
def test_classify_errors_are_clear(image_files, capsys, argv, message):
    np.save(image_files / "four.npy", np.zeros((4, 9, 9), np.float32))
    np.save(image_files / "gray.npy", np.zeros((20, 20), np.uint8))
    d = str(image_files)
    status, _, err = _run([a.format(d=d) for a in argv], capsys)
    assert status == 2
    assert message.format(d=d) in err


def test_classify_help_has_an_example(capsys):
    with pytest.raises(SystemExit):
        main(["classify", "--help"])
    out = capsys.readouterr().out
    assert "example:" in out and "numpy-resnext classify" in out and "numpy-resnext[image]" in out
