"""train-demo on scikit-learn's digits, without torch: the split, the augmentation, a short
run that learns (well above the 10 % of chance), and the command's JSON and errors; what is
reproducible where (bit for bit on one machine; the documented run inside the stated band);
the equal-budget cardinality experiment; explain's shares on trained weights.
(The torch lane, tests/test_train_demo_torch.py, checks the steps themselves.)"""

import importlib.util
import json
import re
from pathlib import Path

import numpy as np
import pytest

from numpy_resnext import build
from numpy_resnext.errors import InputError
from numpy_resnext.paper import digits, sweep
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
    (["--epochs", "0"], "argument --epochs: expected an integer from 1 to 10,000, found 0"),
    (["--batch-size", "1"], "argument --batch-size: expected an integer from 2 to"),
    (["--png", "curves.jpg"], "ending in .png"),
    (["--json", "/nonexistent-dir/r.json"], "--json"),
])
def test_command_errors_exit_2(args, message, capsys):
    assert main(["train-demo"] + args) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


# --- what is reproducible where (docs/digits.md) -------------------------------------------------
def _steps(split, **kwargs):
    """Twelve SGD steps on 128 digits (three epochs of four batches); (model, every step's loss)."""
    losses = []
    r = digits.train_digits(epochs=3, seed=0, batch_size=32, split=small(split, 128), max_steps=12,
                            on_step=lambda step, x, y, rate, res: losses.append(res.loss), **kwargs)
    return r.model, losses


def _weight_gap(a, b):
    """The largest relative difference between two sets of conv / fc weights."""
    return max(float(np.abs(a[n] - b[n]).max() / np.abs(a[n]).max()) for n in a
               if n.endswith(".weight") and a[n].ndim > 1)


def test_a_run_repeats_bit_for_bit_on_one_machine(split):
    a, la = _steps(split)
    b, lb = _steps(split)
    assert la == lb and len(la) == 12
    assert all(np.array_equal(a.params[n], b.params[n]) for n in a.params)


def test_a_last_bit_changes_the_run(split):
    """What another CPU does: float32 sums rounded differently in the last bit. The first
    losses agree to float32 precision; within twelve steps the losses part and the weights'
    difference has grown a hundredfold over the nudge that started it."""
    a, la = _steps(split)
    b, lb = _steps(split, nudge=0)
    start = digits.initial_model()
    nudge = _weight_gap(start.params, digits.nudge_last_bit(start.params, 0))
    assert abs(la[0] - lb[0]) <= 1e-5 * la[0]
    assert la[-1] != lb[-1]
    assert _weight_gap(a.params, b.params) > 100 * nudge


def test_nudge_last_bit_moves_weights_by_one_ulp():
    model = digits.initial_model()
    before = {n: v.copy() for n, v in model.params.items()}
    nudged = digits.nudge_last_bit(model.params, seed=0)
    assert all(np.array_equal(before[n], model.params[n]) for n in before)    # input untouched
    assert set(nudged) == {n for n, v in before.items() if n.endswith(".weight") and v.ndim > 1}
    for n, v in nudged.items():
        w = before[n]
        assert v.dtype == w.dtype and np.all(np.abs(v - w) <= np.spacing(np.abs(w)))
        assert 0.5 < np.mean(v != w) < 0.8                       # about two thirds move


DIGITS_MD = (Path(__file__).resolve().parent.parent / "docs" / "digits.md").read_text(encoding="utf-8")


@pytest.mark.slow
def test_the_documented_command_lands_in_the_stated_band(tmp_path):
    """docs/digits.md states the band any machine's `train-demo --seed 0` ends in; run it."""
    text = " ".join(DIGITS_MD.split())
    m = re.search(r"`numpy-resnext train-demo --seed 0` ends between ([\d.]+) % and ([\d.]+) % held out", text)
    assert m, "docs/digits.md no longer states the band"
    out = tmp_path / "r.json"
    assert main(["train-demo", "--seed", "0", "--json", str(out)]) == 0
    acc = 100 * json.loads(out.read_text())["test_accuracy"]
    assert float(m[1]) <= acc <= float(m[2]), acc


def test_tools_md_and_digits_md_state_the_same_measurement():
    readme = " ".join((Path(__file__).resolve().parent.parent / "docs" / "tools.md").read_text(encoding="utf-8").split())
    text = " ".join(DIGITS_MD.split())
    m = re.search(r"(\d+) runs \(seeds 0–2, each as it is and with five last-bit nudges\) on an ([\w ]+?) ended "
                  r"between ([\d.]+) % and ([\d.]+) % held out", text)
    assert m, "docs/digits.md no longer states its measured spread"
    assert f"{m[3]}–{m[4]} % over {m[1]} runs" in readme
    assert "98.6 % (seed 0), 97.2 % (seed 1) and 98.9 % (seed 2)" not in readme


# --- the cardinality experiment ------------------------------------------------------------------

def _count(config):
    """Trainable parameters by building the model and adding up its arrays."""
    model = build(config, seed=0, init="identity-bn")
    return sum(v.size for n, v in model.params.items() if "running" not in n)


def test_equal_budget_widths():
    budget = _count(sweep.digits_config(*sweep.BUDGET_REFERENCE))
    assert budget == sweep.budget() == 1_212_250
    widths = {}
    for c in sweep.budget_table():
        assert c.params == _count(sweep.digits_config(c.cardinality, c.width))
        assert abs(c.params / budget - 1) <= sweep.TOLERANCE
        for other in (c.width - 1, c.width + 1):                  # the neighbours are farther off
            if other >= 1:
                assert abs(_count(sweep.digits_config(c.cardinality, other)) - budget) >= abs(c.params - budget)
        widths[c.cardinality] = c.width
    assert widths == {1: 36, 2: 22, 4: 13, 8: 7, 16: 4, 32: 2}
    with pytest.raises(InputError, match="give --width explicitly"):
        sweep.width_for(128)


def test_a_reduced_sweep(tmp_path, split):
    runs = sweep.run_sweep(cardinalities=(1, 32), seeds=(0, 1), split_for=lambda s: small(split, 96),
                           epochs=1, max_steps=3, batch_size=32)
    assert [(r["cardinality"], r["width"], r["seed"]) for r in runs] == [(1, 36, 0), (1, 36, 1), (32, 2, 0), (32, 2, 1)]
    rows = sweep.summarize(runs)
    assert [r["cardinality"] for r in rows] == [1, 32] and all(len(r["errors"]) == 2 for r in rows)
    assert all(r["low"] <= r["mean"] <= r["high"] for r in rows)
    text = sweep.format_summary(rows, sweep.budget())
    assert "1,212,250 parameters" in text and "1,209,562" in text
    if importlib.util.find_spec("matplotlib"):
        sweep.plot_sweep(runs, tmp_path / "s.png")
        assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_command_cardinality_picks_the_budget_width(tmp_path, split, monkeypatch, capsys):
    monkeypatch.setattr(digits, "make_split", lambda *a, **k: small(split, 96))
    out = tmp_path / "r.json"
    assert main(["train-demo", "--cardinality", "8", "--epochs", "1", "--batch-size", "32",
                 "--json", str(out), "--weights", str(tmp_path / "w.npz")]) == 0
    err = capsys.readouterr().err
    assert "DigitsResNeXt_8x7d" in err and "d = 7 keeps the equal budget of 1,212,250 parameters (-1.15%)" in err
    report = json.loads(out.read_text())
    assert (report["architecture"]["cardinality"], report["architecture"]["base_width"]) == (8, 7)
    assert report["parameters"] == 1_198_306
    from numpy_resnext.paper import trained
    model = trained.load_trained(tmp_path / "w.npz")
    assert model.config.name == "DigitsResNeXt_8x7d"


def test_command_sweep(tmp_path, split, monkeypatch, capsys):
    from numpy_resnext.commands import train_demo
    real = sweep.run_sweep
    monkeypatch.setattr(train_demo, "run_sweep", lambda **kw: real(
        cardinalities=(2, 16), split_for=lambda s: small(split, 96), max_steps=2,
        **{k: v for k, v in kw.items() if k != "epochs"}, epochs=1))
    out = tmp_path / "s.json"
    assert main(["train-demo", "--sweep", "--seeds", "3", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["budget"] == 1_212_250 and [r["cardinality"] for r in report["summary"]] == [2, 16]
    assert [r["seed"] for r in report["runs"]] == [3, 3]
    assert "equal budget: 1,212,250 parameters" in capsys.readouterr().out


@pytest.mark.parametrize("args, message", [
    (["--sweep", "--cardinality", "4"], "--sweep chooses every cardinality"),
    (["--weights", "w.txt"], "ending in .npz"),
    (["--width", "0"], "argument --width: expected an integer from 1 to 1,024, found 0"),
    (["--cardinality", "128", "--epochs", "1"], "no bottleneck width keeps the network within 2%"),
])
def test_new_options_errors_exit_2(args, message, capsys):
    assert main(["train-demo"] + args) == 2
    assert message in capsys.readouterr().err


# --- explain's shares on trained weights (docs/digits.md section 4) --------------------------------
def test_trained_shares_command(tmp_path, split, monkeypatch, capsys):
    from numpy_resnext.paper import trained
    r = digits.train_digits(epochs=1, seed=0, batch_size=32, split=small(split, 96), max_steps=2,
                            config=sweep.digits_config(4, 2))
    np.savez(tmp_path / "w.npz", **r.model.params)
    assert trained.main([str(tmp_path / "w.npz"), "--block", "layer2.0"]) == 0
    out = capsys.readouterr().out
    assert "DigitsResNeXt_4x2d, held-out accuracy" in out and "the shares sum to 1.000000" in out
    np.savez(tmp_path / "bad.npz", x=np.zeros(3))
    assert trained.main([str(tmp_path / "bad.npz")]) == 2
    assert "layer1.0.conv2.weight" in capsys.readouterr().err


def test_digits_md_untrained_shares_are_recomputed():
    """The untrained side of docs/digits.md's comparison (the trained side is one machine's run)."""
    from numpy_resnext.paper import trained
    from numpy_resnext.paper.explain import branch_contributions
    text = " ".join(DIGITS_MD.split())
    m = re.search(r"`initial_model\(digits_config\(32, 2\), seed=0\)`: .*?\), on the same (\d+) digits gives shares "
                  r"from (−?[\d.]+) % to ([\d.]+) %, its four largest carrying (\d+) %", text)
    assert m, "docs/digits.md no longer states the untrained shares"
    x, _, _ = trained.held_out(0)
    start = digits.initial_model(sweep.digits_config(32, 2), seed=0)
    shares = 100 * branch_contributions(start, x, "layer1.0").shares
    assert len(x) == int(m[1])
    assert f"{shares.min():.1f}" == m[2].replace("−", "-") and f"{shares.max():.1f}" == m[3]
    assert round(np.sort(shares)[-4:].sum()) == int(m[4])


def test_digits_md_spread_is_the_committed_runs():
    """docs/digits.md section 1: the count, range, mean, spread and band are those of the runs
    in docs/figures/train_demo_spread.json (measured once on one machine, committed)."""
    data = json.loads((Path(__file__).resolve().parent.parent / "docs" / "figures" /
                       "train_demo_spread.json").read_text())
    acc = np.array([100 * r["test_accuracy"] for r in data["runs"]])
    text = " ".join(DIGITS_MD.split())
    m = re.search(r"(\d+) runs .*? ended between ([\d.]+) % and ([\d.]+) % held out \((\d+) to (\d+) of the "
                  r"(\d+) held-out digits\), mean ([\d.]+) %, standard deviation ([\d.]+) points", text)
    assert m
    assert int(m[1]) == len(acc) == 18
    assert {(r["seed"], r["nudge"]) for r in data["runs"]} == {(s, k) for s in (0, 1, 2) for k in (None, 0, 1, 2, 3, 4)}
    assert (f"{acc.min():.2f}", f"{acc.max():.2f}") == (m[2], m[3])
    assert (round(acc.min() * int(m[6]) / 100), round(acc.max() * int(m[6]) / 100)) == (int(m[4]), int(m[5]))
    assert (f"{acc.mean():.2f}", f"{acc.std():.2f}") == (m[7], m[8])
    band = re.search(r"ends between ([\d.]+) % and ([\d.]+) % held out \(the mean ± 2.5 standard deviations\)", text)
    assert band and (float(band[1]), float(band[2])) == (round(2 * (acc.mean() - 2.5 * acc.std())) / 2,
                                                         round(2 * (acc.mean() + 2.5 * acc.std())) / 2)
