"""The command line: `archs`, `summary`, `forward`, `demo`, help and errors, run in-process
through cli.main; plus one real subprocess each for the console script and `python -m`.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from numpy_resnext import cli
from numpy_resnext.archs import ARCHS
from numpy_resnext.model import build

ROOT = Path(__file__).resolve().parent.parent


def run_cli(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def expect_error(capsys, command, pattern, *argv):
    code, out, err = run_cli(capsys, command, *argv)
    assert code == 2, (out, err)
    # progress lines ("[  2.1s] forward: built ...") appear when the model took over 2 s to
    # build, which depends on the machine's load (the calibrated seeded weights take ~1 s)
    err = "".join(line for line in err.splitlines(keepends=True) if not re.match(r"\[ *\d+\.\ds\] ", line))
    assert err.startswith(f"numpy-resnext {command}: error: "), err
    assert pattern in err, err
    assert "Traceback" not in err
    return err


# --- archs ---------------------------------------------------------------------------------------
def test_archs_table_lists_all_30(capsys):
    code, out, _ = run_cli(capsys, "archs")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:2] == ["architecture", "depths"]
    assert [l.split()[0] for l in lines[1:-1]] == list(ARCHS) and lines[-1].startswith("SE: ")
    row = next(l for l in lines if l.startswith("ResNeXt50_32x4d "))
    assert "3-4-6-3" in row and "25,028,904" in row and "4.23" in row
    assert "resnext101_32x8d" in next(l for l in lines if l.startswith("ResNeXt101_32x8d_wsl "))


def test_archs_json(capsys):
    code, out, _ = run_cli(capsys, "archs", "--json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)}
    assert len(rows) == 30
    assert rows["ResNeXt101_32x48d_wsl"]["params"] == 828_411_176          # docs/architectures.md
    assert rows["ResNeXt50_vd_32x4d"]["macs"] == 4_470_120_448
    assert rows["ResNeXt50_vd_32x4d"]["stem"] == "deep" and rows["ResNeXt50_vd_32x4d"]["avg_down"]
    assert rows["ResNeXt101_32x8d_wsl"]["aliases"][0] == "resnext101_32x8d"
    assert rows["ResNeXt101_32x8d_wsl"]["alias_of"]["ig_resnext101_32x8d"] == "timm < 0.9"
    assert rows["ResNet50"]["aliases"][0] == "resnet50"     # torchvision's name, even equal up to case
    assert rows["ResNeXt50_vd_32x4d"]["aliases"] == ["resnext50d_32x4d"]


# --- forward -------------------------------------------------------------------------------------
@pytest.fixture
def x_file(tmp_path):
    x = np.random.default_rng(4).standard_normal((2, 3, 19, 23)).astype(np.float32)
    path = tmp_path / "x.npy"
    np.save(path, x)
    return path, x


def test_forward_seeded_matches_the_api(capsys, tmp_path, x_file):
    path, x = x_file
    before = path.read_bytes()
    out_path = tmp_path / "logits.npy"
    code, out, err = run_cli(capsys, "forward", "ResNeXt50_32x4d", "--input", path, "--output", out_path,
                             "--seed", "3")
    assert code == 0, err
    logits = np.load(out_path)
    assert logits.shape == (2, 1000) and logits.dtype == np.float32
    np.testing.assert_array_equal(logits, build("ResNeXt50_32x4d", seed=3)(x))
    assert path.read_bytes() == before                               # input file untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["logits.npy", "x.npy"]   # no temp files
    assert "ResNeXt50_32x4d: input (2, 3, 19, 23) float32 -> logits (2, 1000) float32" in out
    assert "cast" not in err                                         # nothing was cast


def test_forward_float64_announces_the_cast(capsys, tmp_path, x_file):
    path, x = x_file
    out_path = tmp_path / "logits64.npy"
    code, out, err = run_cli(capsys, "forward", "resnext50_vd_32x4d", "--input", path, "--output", out_path,
                             "--dtype", "float64", "--seed", "1")
    assert code == 0, err
    logits = np.load(out_path)
    assert logits.dtype == np.float64
    assert "--input: float32 values cast to float64" in err
    np.testing.assert_array_equal(logits, build("ResNeXt50_vd_32x4d", seed=1, dtype="float64")(x.astype(np.float64)))


def test_forward_uses_the_weights_file(capsys, tmp_path, x_file):
    path, x = x_file
    base = build("ResNeXt50_32x4d", seed=5)
    seeded = base(x)
    weights = base.state_dict()
    weights["fc.bias"] = weights["fc.bias"] + np.float32(2.0)
    wpath = tmp_path / "weights.npz"
    np.savez(wpath, **weights)
    out_path = tmp_path / "logits.npy"
    try:
        code, _, err = run_cli(capsys, "forward", "ResNeXt50_32x4d", "--input", path, "--output", out_path,
                               "--weights", wpath, "--seed", "5")
    finally:
        wpath.unlink()                                               # 100 MB: do not keep it
    assert code == 0, err
    base.params["fc.bias"] = weights["fc.bias"]
    np.testing.assert_array_equal(np.load(out_path), base(x))
    np.testing.assert_allclose(np.load(out_path), seeded + 2.0, rtol=1e-6, atol=1e-5)


def test_forward_errors(capsys, tmp_path, x_file):
    path, x = x_file
    out_path = tmp_path / "y.npy"
    common = ["--input", path, "--output", out_path]
    expect_error(capsys, "forward", "unknown architecture 'ResNeXt50_32x4'; did you mean: ResNeXt50_32x4d",
                 "ResNeXt50_32x4", *common)
    expect_error(capsys, "forward", "name an architecture", *common)
    expect_error(capsys, "forward", f"--input: file '{tmp_path / 'nope.npy'}' does not exist",
                 "ResNet50", "--input", tmp_path / "nope.npy", "--output", out_path)
    expect_error(capsys, "forward", "does not exist", "ResNeXt50_32x4d", "--input", path,
                 "--output", tmp_path / "no_dir" / "y.npy")
    expect_error(capsys, "forward", f"output '{tmp_path}' is a directory; expected a file name",
                 "ResNeXt50_32x4d", "--input", path, "--output", tmp_path)
    ints = tmp_path / "ints.npy"
    np.save(ints, np.zeros((1, 3, 8, 8), np.uint8))
    expect_error(capsys, "forward", "expected float32 or float64 values (N, 3, H, W) or (3, H, W), "
                 "or a uint8 image (H, W, 3) RGB; found uint8 of shape (1, 3, 8, 8)",
                 "ResNeXt50_32x4d", "--input", ints, "--output", out_path)
    cplx = tmp_path / "complex.npy"
    np.save(cplx, np.zeros((1, 3, 8, 8), np.complex64))
    expect_error(capsys, "forward", "found complex64 (complex)", "ResNeXt50_32x4d", "--input", cplx,
                 "--output", out_path)
    hwc = tmp_path / "hwc.npy"
    np.save(hwc, np.zeros((1, 8, 8, 3), np.float32))
    expect_error(capsys, "forward", "found shape (1, 8, 8, 3) (channels-last? use x.transpose(0, 3, 1, 2))",
                 "ResNeXt50_32x4d", "--input", hwc,
                 "--output", out_path)
    flat = tmp_path / "flat.npy"
    np.save(flat, np.zeros((8, 8), np.float32))
    expect_error(capsys, "forward", "expected (3, H, W) or (N, 3, H, W) values with N, H and W at least 1, "
                 "found shape (8, 8)",
                 "ResNeXt50_32x4d", "--input", flat, "--output", out_path)
    for name, ext in (("o.pt", ".pt"), ("o.npz", ".npz")):              # another format's extension
        expect_error(capsys, "forward", f"this writes .npy files, not '{ext}'; name the output o.npy",
                     "ResNeXt50_32x4d", "--input", path, "--output", tmp_path / name)
    tensor = tmp_path / "x.pt"                                        # torch.save(x, "x.pt")
    shutil.copy(Path(__file__).resolve().parent.parent / "reference" / "fixtures" / "torch_io"
                / "micro_zip.pth", tensor)
    expect_error(capsys, "forward", "a torch.save file (a pickled tensor), not a NumPy array; inputs "
                 "are .npy files: numpy.save('x.npy', torch.load('x.pt').numpy())", "ResNeXt50_32x4d",
                 "--input", tensor, "--output", out_path)
    pickled = tmp_path / "obj.npy"
    np.save(pickled, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    expect_error(capsys, "forward", "is not a plain numeric dtype", "ResNeXt50_32x4d", "--input", pickled,
                 "--output", out_path)
    archive = tmp_path / "archive.npy"                                # an .npz under a .npy name
    with open(archive, "wb") as f:
        np.savez(f, x=np.zeros((1, 3, 8, 8), np.float32))
    expect_error(capsys, "forward", "expected a plain .npy array, found an .npz archive", "ResNeXt50_32x4d",
                 "--input", archive, "--output", out_path)
    expect_error(capsys, "forward", f"{tmp_path / 'missing.npz'}: cannot read", "ResNeXt50_32x4d", *common,
                 "--weights", tmp_path / "missing.npz")
    assert not out_path.exists()                                     # no partial output anywhere
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".tmp-")]


# --- demo, help, version -------------------------------------------------------------------------
def test_demo_runs_a_small_input(capsys):
    code, out, err = run_cli(capsys, "demo", "--arch", "ResNeXt50_vd_32x4d", "--size", "33", "--batch", "2",
                             "--repeat", "1", "--dtype", "float64")
    assert code == 0, err
    assert "numpy-resnext demo: ResNeXt50_vd_32x4d" in out
    assert "25,048,136 trainable" in out
    assert "input         (2, 3, 33, 33) float64" in out
    assert "logits        (2, 1000) float64" in out


def test_demo_is_deterministic(capsys):
    outs = []
    for _ in range(2):
        code, out, _ = run_cli(capsys, "demo", "--size", "16", "--repeat", "1", "--seed", "7")
        assert code == 0
        outs.append([l for l in out.splitlines() if "sha256" in l])
    assert outs[0] == outs[1] and len(outs[0]) == 2


@pytest.mark.parametrize("command", cli.COMMANDS)
def test_every_command_has_help_with_an_example(capsys, command):
    with pytest.raises(SystemExit) as info:
        cli.main([command, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert f"numpy-resnext {command}" in out and "example:" in out


def test_top_level_help_and_version(capsys):
    assert cli.main([]) == 0
    out = capsys.readouterr().out
    for command in ("archs", "summary", "forward", "demo"):
        assert command in out
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("numpy-resnext 0.")


def test_argparse_rejects_unknown_dtype_in_one_line(capsys):
    assert cli.main(["forward", "ResNet50", "--input", "x", "--output", "y", "--dtype",
                     "float16"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'float16'" in err
    assert err.startswith("numpy-resnext forward: error: argument --dtype") and err.count("\n") == 1


# --- real processes (one each) -------------------------------------------------------------------
def _env():
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_python_dash_m(tmp_path):
    done = subprocess.run([sys.executable, "-m", "numpy_resnext", "archs", "--json"], capture_output=True,
                          text=True, cwd=tmp_path, env=_env(), timeout=120)
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)) == 30


def test_console_script(tmp_path):
    # the script pip installs for this interpreter sits beside it; otherwise look on PATH
    here = os.path.dirname(sys.executable)
    script = shutil.which("numpy-resnext", path=here) or shutil.which("numpy-resnext")
    if script is None:
        pytest.skip("the numpy-resnext console script is not installed (pip install -e .)")
    done = subprocess.run([script, "summary", "ResNeXt50_32x4d", "--json"], capture_output=True, text=True,
                          cwd=tmp_path, env=_env(), timeout=120)
    assert done.returncode == 0, done.stderr
    s = json.loads(done.stdout)
    assert (s["params"], s["macs"]) == (25_028_904, 4_230_479_872)
    bad = subprocess.run([script, "summary", "ResNeXt50_32x4"], capture_output=True, text=True, cwd=tmp_path,
                         env=_env(), timeout=120)
    assert bad.returncode == 2 and "did you mean: ResNeXt50_32x4d" in bad.stderr
