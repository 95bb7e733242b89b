"""train-demo on scikit-learn's digits, without torch: the split, the augmentation, a short
run that learns (well above the 10 % of chance), and the command's JSON and errors.
(The torch lane, tests/test_train_demo_torch.py, checks the steps themselves.)"""

import json

import numpy as np
import pytest

from numpy_resnext.paper import digits
from numpy_resnext.cli import main
from numpy_resnext.plan import layer_plan

sklearn = pytest.importorskip("sklearn", reason="the digits come with scikit-learn (pip install numpy-resnext[digits])")


@pytest.fixture(scope="module")
def split():
    return digits.make_split(seed=0)


def small(split, n=400):
    return digits.Split(split.x_train[:n], split.y_train[:n], split.x_test, split.y_test,
                        split.mean, split.std)


def test_digits_config_is_the_papers_cifar_form():
    plan = layer_plan(digits.DIGITS_CONFIG)
    (stem,) = plan.stem
    assert (stem.kernel, stem.stride, stem.padding) == (3, 1, 1) and plan.stem_pool is None
    assert [b.name for b in plan.blocks] == ["layer1.0", "layer2.0", "layer3.0"]
    assert [b.out_channels for b in plan.blocks] == [256, 512, 1024]     # as the paper's CIFAR nets
    assert [b.stride for b in plan.blocks] == [1, 2, 2]
    assert all(b.groups == 4 and b.group_width == 4 * 2 ** b.stage for b in plan.blocks)


def test_split_is_stratified_seeded_and_disjoint(split):
    x, y = digits.load_digits_images()
    assert x.shape == (1797, 8, 8) and x.min() == 0 and x.max() == 1
    train, test = digits.stratified_split(y, 0.2, seed=0)
    assert len(np.intersect1d(train, test)) == 0 and len(train) + len(test) == 1797
    for c in range(10):                                  # every class keeps its share
        n = (y == c).sum()
        assert (y[test] == c).sum() == round(n * 0.2)
    again, _ = digits.stratified_split(y, 0.2, seed=0)
    other, _ = digits.stratified_split(y, 0.2, seed=1)
    assert np.array_equal(train, again) and not np.array_equal(train, other)
    assert split.x_train.shape == (len(train), 3, 8, 8) and split.x_train.dtype == np.float32
    assert abs(float(split.x_train.mean())) < 1e-5 and abs(float(split.x_train.std()) - 1) < 1e-5
    assert np.array_equal(split.y_test, y[test])


def test_shift_augment_moves_whole_pixels_and_fills_background():
    x = np.zeros((50, 3, 8, 8))
    x[:, :, 3, 4] = 5.0                                  # one bright pixel
    out = digits.shift_augment(x, np.random.default_rng(0), background=-1.0)
    assert x[:, :, 3, 4].min() == 5.0 and (x != 0).sum() == 150       # input untouched
    shifts = set()
    for img in out:
        (r, c), = np.argwhere(img[0] == 5.0)
        shifts.add((r - 3, c - 4))
        assert np.isin(img, (0.0, 5.0, -1.0)).all()
        assert np.array_equal(img[0], img[1])            # the same shift on every channel
    assert shifts <= {(a, b) for a in (-1, 0, 1) for b in (-1, 0, 1)} and len(shifts) > 4


def test_batches_cover_the_epoch_without_a_single_image_batch():
    rng = np.random.default_rng(0)
    for n, b in [(1437, 64), (65, 64), (10, 3)]:
        parts = digits.epoch_batches(n, b, rng)
        assert sorted(np.concatenate(parts).tolist()) == list(range(n))
        assert min(len(p) for p in parts) >= 2


def test_lr_schedule():
    assert digits.lr_at(0, 100, 0.05) == 0.05
    assert digits.lr_at(50, 100, 0.05) == pytest.approx(0.025)
    assert digits.lr_at(100, 100, 0.05) == pytest.approx(0.0, abs=1e-18)


def test_a_short_run_learns(split):
    """Two epochs on 400 training digits: far above chance (10 %) on all 359 held out."""
    r = digits.train_digits(epochs=2, seed=0, batch_size=32, split=small(split))
    assert r.steps == 2 * len(digits.epoch_batches(400, 32, np.random.default_rng(0)))
    assert len(r.history["train_loss"]) == 2 and r.history["train_loss"][1] < r.history["train_loss"][0]
    assert r.test_accuracy > 0.3, r.history
    assert np.isfinite(r.model.params["fc.weight"]).all()


def test_command_writes_json_and_png(tmp_path, split, monkeypatch, capsys):
    pytest.importorskip("matplotlib", reason="the curves need matplotlib")
    monkeypatch.setattr(digits, "make_split", lambda *a, **k: small(split, 256))
    out_json, out_png = tmp_path / "r.json", tmp_path / "c.png"
    assert main(["train-demo", "--epochs", "1", "--batch-size", "32", "--json", str(out_json),
                 "--png", str(out_png)]) == 0
    cap = capsys.readouterr()
    assert "epoch 1/1" in cap.err and "held-out accuracy" in cap.out
    report = json.loads(out_json.read_text())
    assert len(report["train_loss"]) == 1 and 0 <= report["test_accuracy"] <= 1
    assert report["seconds"] > 0 and report["steps"] == 8
    assert report["data"] == {"train": 256, "test": len(split.y_test), "split": "stratified, seeded",
                              "input": "8x8 grey repeated on 3 channels"}
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("args, message", [
    (["--epochs", "0"], "--epochs must be at least 1"),
    (["--batch-size", "1"], "--batch-size must be at least 2"),
    (["--png", "curves.jpg"], "ending in .png"),
    (["--json", "/nonexistent-dir/r.json"], "--json"),
])
def test_command_errors_exit_2(args, message, capsys):
    assert main(["train-demo"] + args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
