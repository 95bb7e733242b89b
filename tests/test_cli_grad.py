"""``numpy-resnext grad``: the written gradients against the committed Paddle recording
(reference/fixtures/grads/tiny.npz), both BN modes, names, and clear errors."""

import numpy as np
import pytest

import numpy_resnext as nrx
from _grad_oracle import load, rel_err
from numpy_resnext.cli import main
from numpy_resnext.params import is_trainable
from _scratch import scratch

TINY = nrx.custom(depths=(2,), cardinality=2, base_width=4, num_classes=5)


@pytest.fixture(scope="module")
def recording(fixtures_dir, tmp_path_factory):
    rec, meta, params = load(fixtures_dir / "grads" / "tiny.npz")
    with scratch(tmp_path_factory, "grad_cli") as d:
        np.savez(d / "w.npz", **params)
        np.save(d / "x.npy", rec["x"])
        np.save(d / "d.npy", rec["dlogits"])
        yield rec, d


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_grad_command_writes_paddles_gradients(recording, mode, capsys):
    rec, d = recording
    out = d / f"g_{mode}.npz"
    # no architecture name: it is inferred from the canonical .npz (a custom tiny network)
    argv = ["grad", "--weights", str(d / "w.npz"), "--input", str(d / "x.npy"),
            "--dout", str(d / "d.npy"), "--output", str(out)] + (["--train"] if mode == "train" else [])
    assert main(argv) == 0
    assert "26 parameter gradients + input gradient" in capsys.readouterr().out
    g = np.load(out)
    expected = ["input"] + [n for n in nrx.param_shapes(TINY) if is_trainable(n)]
    assert list(g.files) == expected
    worst = max(rel_err(g[n], rec[f"{mode}/grad/{n}"]) for n in expected)
    assert worst <= 1e-10, worst


def test_grad_command_runs_a_registered_architecture(tmp_path, capsys):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.standard_normal((1, 3, 32, 32)).astype(np.float32))
    np.save(tmp_path / "d.npy", rng.standard_normal((1, 1000)))
    out = tmp_path / "g.npz"
    assert main(["grad", "ResNeXt50_vd_32x4d", "--input", str(tmp_path / "x.npy"), "--dout",
                 str(tmp_path / "d.npy"), "--output", str(out)]) == 0
    g = np.load(out)
    assert g["input"].shape == (1, 3, 32, 32) and g["input"].dtype == np.float64
    assert g["conv1.0.weight"].shape == (32, 3, 3, 3) and "layer2.0.downsample.1.weight" in g.files


def test_grad_command_rejects_a_wrong_dout(tmp_path, capsys):
    np.save(tmp_path / "x.npy", np.zeros((2, 3, 32, 32)))
    np.save(tmp_path / "d.npy", np.zeros((2, 10)))
    out = tmp_path / "g.npz"
    assert main(["grad", "ResNeXt50_32x4d", "--input", str(tmp_path / "x.npy"), "--dout",
                 str(tmp_path / "d.npy"), "--output", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--dout" in err and "(2, 1000)" in err and "(2, 10)" in err
    assert not out.exists()


def test_grad_train_writes_paddles_running_statistics(recording, capsys):
    """--train --running R.npz: the updated running statistics under canonical names, equal
    to what Paddle 3.3.1 recorded after the same training-mode forward."""
    rec, d = recording
    run = d / "running.npz"
    argv = ["grad", "--weights", str(d / "w.npz"), "--input", str(d / "x.npy"), "--dout", str(d / "d.npy"),
            "--output", str(d / "g_run.npz"), "--train", "--running", str(run)]
    assert main(argv) == 0
    assert "16 updated running statistics written to" in capsys.readouterr().out
    r = np.load(run)
    expected = [n for n in nrx.param_shapes(TINY) if "running_" in n]
    assert sorted(r.files) == sorted(expected)
    worst = max(rel_err(r[n], rec[f"train/running/{n}"]) for n in expected)
    assert worst <= 1e-10, worst
    params = np.load(d / "w.npz")
    assert max(rel_err(r[n], params[n]) for n in expected) > 1e-3      # they did move


def test_grad_running_needs_train(recording, capsys):
    rec, d = recording
    run = d / "running_eval.npz"
    assert main(["grad", "--weights", str(d / "w.npz"), "--input", str(d / "x.npy"), "--dout",
                 str(d / "d.npy"), "--output", str(d / "g_x.npz"), "--running", str(run)]) == 2
    err = capsys.readouterr().err
    assert "--running" in err and "--train" in err and not run.exists()
