"""What reaches the terminal and the disk, and what input values are accepted: the one
message path (control characters escaped, one line, bounded), the command line's stdout
and stderr, output targets that are not regular files, the permission bits of an
existing output, full disks and I/O errors (by fault injection), non-finite inputs and
numeric options."""

import errno
import os
import resource
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from numpy_resnext import build, cli, custom
from numpy_resnext._files import atomic_write, save_npy
from numpy_resnext.bounded import files as bfiles
from numpy_resnext.errors import (ArchitectureError, FormatError, InputError, OutputError,
                                  WeightsError, one_line, printable)
from numpy_resnext.golden import golden_dump
from numpy_resnext.grad import gradients
from numpy_resnext.io import load_weights, write_weights
from numpy_resnext.params import init_params

ROOT = Path(__file__).resolve().parent.parent
RAW = ("\x1b", "\r", "\x07", "\x9b", "\u202e", "\u2028")
CFG = custom(depths=(1, 1), cardinality=2, base_width=4, num_classes=3, name="tiny_terminal")


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture()
def tiny(tmp_path):
    w = tmp_path / "w.npz"
    write_weights(w, init_params(CFG), CFG)
    x = tmp_path / "x.npy"
    np.save(x, np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32))
    return w, x


# --- the message path ------------------------------------------------------------------------
def test_printable_escapes_every_control_character():
    text = "a\x1b[2Jb\rc\x07d\x9be\u202ef\u2028g\udcff\th\nFORGED"
    shown = printable(text)
    assert shown == "a\\x1b[2Jb\\rc\\x07d\\x9be\\u202ef\\u2028g\\udcff\\th\\nFORGED"
    assert printable("x\ny", keep_lines=True) == "x\ny"
    assert len(printable("z" * 10_000, 500)) < 600 and "characters left out" in printable("z" * 10_000, 500)


def test_every_error_is_one_printable_bounded_line():
    for kind in (FormatError, InputError, WeightsError, ArchitectureError, OutputError):
        text = str(kind("w.npz: tensors:\n  a\x1b]0;pwned\x07\n  b\r\nFORGED wrote logits.npy" + "x" * 9000))
        assert "\n" not in text and not any(c in text for c in RAW), kind
        assert text.startswith("w.npz: tensors: a\\x1b]0;pwned\\x07; b\\r; FORGED") and len(text) <= 4100
    assert one_line("one\ntwo") == "one; two"


def test_terminal_escapes_what_commands_print(tmp_path, capsys, tiny):
    w, x = tiny
    st = tmp_path / "meta.safetensors"
    from numpy_resnext.io import safetensors
    from numpy_resnext.io.schemes import file_state
    from numpy_resnext.plan import layer_plan
    safetensors.write(st, file_state(init_params(CFG), layer_plan(CFG), "torchvision"),
                      {"note": "x\x1b]0;pwned\x07\r\nFORGED wrote logits.npy"})
    code, out, err = run(capsys, "convert", "--weights", st, "--output", tmp_path / "o.npz")
    assert code == 0 and "metadata" in out
    assert not any(c in out + err for c in RAW)
    assert not any(line.startswith("FORGED") for line in (out + err).splitlines())


def test_compare_table_shows_hostile_names_on_one_line(tmp_path, capsys):
    ref = tmp_path / "ref.npz"
    np.savez(ref, **{"t\x1b[31m\nFORGED": np.zeros(3, np.float32), "u": np.ones(2)})
    code, out, err = run(capsys, "compare", ref, ref)
    assert code == 0 and not any(c in out for c in RAW)
    assert sum(line.startswith("t\\x1b[31m\\nFORGED") for line in out.splitlines()) == 1


def test_a_python_warning_is_one_line(capsys, monkeypatch):
    from numpy_resnext.commands import archs
    monkeypatch.setattr(archs, "run", lambda args: warnings.warn("bad\nthing\x1b[2J") or 0)
    assert cli.main(["archs"]) == 0
    err = capsys.readouterr().err
    assert err == "numpy-resnext archs: warning: bad; thing\\x1b[2J\n"


def test_an_os_error_is_one_line(capsys, monkeypatch):
    from numpy_resnext.commands import archs

    def fail(args):
        raise OSError(errno.EIO, "Input/output error", "/dev/sdz")
    monkeypatch.setattr(archs, "run", fail)
    assert cli.main(["archs"]) == 2
    assert capsys.readouterr().err == ("numpy-resnext archs: error: cannot access /dev/sdz: "
                                       "Input/output error\n")


# --- outputs ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["fifo", "directory", "link-dev-null", "socket"])
def test_a_target_that_is_not_a_regular_file_is_refused(tmp_path, capsys, tiny, kind):
    w, x = tiny
    target = tmp_path / "target.npy"
    if kind == "fifo":
        os.mkfifo(target)
    elif kind == "directory":
        target.mkdir()
    elif kind == "link-dev-null":
        os.symlink("/dev/null", target)
    else:
        import socket
        s = socket.socket(socket.AF_UNIX)
        s.bind(str(target))
        s.close()
    before = os.lstat(target).st_mode
    with pytest.raises((OutputError, InputError), match="FIFO|directory|character device|socket"):
        save_npy(target, np.zeros(3))
    code, _, err = run(capsys, "forward", "--weights", w, "--input", x, "--output", target)
    assert code == 2 and err.count("\n") == 1 and "target.npy" in err
    assert os.lstat(target).st_mode == before
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".tmp-")]
    if kind == "link-dev-null":
        assert os.path.exists("/dev/null") and not os.path.isfile("/dev/null")


@pytest.mark.parametrize("mode", [0o600, 0o640, 0o755])
def test_an_existing_output_keeps_its_mode(tmp_path, capsys, tiny, mode):
    w, x = tiny
    out = tmp_path / "o.npy"
    out.write_bytes(b"old")
    os.chmod(out, mode)
    code, _, err = run(capsys, "forward", "--weights", w, "--input", x, "--output", out)
    assert code == 0, err
    assert oct(os.stat(out).st_mode & 0o777) == oct(mode) and np.load(out).shape == (1, 3)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this system")
def test_a_full_disk_is_a_clean_error(tmp_path, monkeypatch, capsys, tiny):
    """Fault injection: the temporary file is a symlink to /dev/full, whose writes fail
    with ENOSPC as a full disk's do."""
    import tempfile

    from numpy_resnext import _files
    real = tempfile.mkstemp

    def full(prefix, suffix, dir):
        fd, tmp = real(prefix=prefix, suffix=suffix, dir=dir)
        os.close(fd)
        os.unlink(tmp)
        os.symlink("/dev/full", tmp)
        return os.open(os.devnull, os.O_RDONLY), tmp
    monkeypatch.setattr(_files.tempfile, "mkstemp", full)
    target = tmp_path / "o.npy"
    with pytest.raises(OutputError, match=r"o\.npy: cannot write the output: no space left on "
                                          "the device; nothing was written"):
        save_npy(target, np.zeros(1000))
    assert not target.exists() and not [f for f in os.listdir(tmp_path) if f.startswith(".tmp-")]
    w, x = tiny
    code, _, err = run(capsys, "forward", "--weights", w, "--input", x, "--output", target)
    assert code == 2 and "no space left on the device" in err and err.count("\n") == 1


def test_an_io_error_while_writing_is_a_clean_error(tmp_path):
    def write(tmp):
        raise OSError(errno.EIO, "Input/output error")
    with pytest.raises(OutputError, match=r"o\.bin: cannot write the output: input/output error"):
        atomic_write(tmp_path / "o.bin", write)
    assert os.listdir(tmp_path) == []


def test_a_file_size_limit_is_a_clean_error(tmp_path, tiny):
    """Fault injection by the kernel: RLIMIT_FSIZE makes the write fail with EFBIG."""
    w, _ = tiny
    r = subprocess.run([sys.executable, "-m", "numpy_resnext", "convert", "--weights", str(w),
                        "--output", str(tmp_path / "o.npz")], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=tmp_path,
                       preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, 20_000)))
    assert r.returncode == 2 and r.stderr.count("\n") == 1, r.stderr
    assert "cannot write the output: file too large" in r.stderr
    assert sorted(os.listdir(tmp_path)) == ["w.npz", "x.npy"]


def test_a_read_error_after_the_open_names_the_file(tmp_path, monkeypatch, capsys, tiny):
    w, x = tiny

    class Failing:
        def __init__(self, f):
            self.f = f

        def read(self, *a):
            raise OSError(errno.EIO, "Input/output error")
        readinto = readline = peek = read

        def __getattr__(self, name):
            return getattr(self.f, name)
    real = os.fdopen
    monkeypatch.setattr(bfiles.os, "fdopen", lambda fd, mode: Failing(real(fd, mode)))
    with pytest.raises(InputError, match=r"w\.npz: cannot read the weight file \(Input/output "
                                         r"error; the read failed after the file was opened\)"):
        load_weights(w)
    code, _, err = run(capsys, "convert", "--weights", w, "--output", tmp_path / "o.npz")
    assert code == 2 and "Input/output error" in err and err.count("\n") == 1


# --- input values -----------------------------------------------------------------------------
def test_non_finite_inputs_are_refused_unless_asked_for(tmp_path, capsys, tiny):
    model = build(CFG, seed=0, init="identity-bn")
    x = np.zeros((1, 3, 16, 16), np.float32)
    x[0, 2, 3, 4] = np.nan
    x[0, 2, 5, 6] = np.inf
    for call in (lambda: model(x), lambda: golden_dump(model, x),
                 lambda: gradients(model, x, np.ones((1, 3), np.float32))):
        with pytest.raises(InputError, match=r"2 of 768 values are NaN or infinite \(NaN and "
                                             r"infinite\), the first at index \(0, 2, 3, 4\)"):
            call()
    assert np.isnan(model(x, allow_nonfinite=True)).all()
    with pytest.raises(InputError, match=r"dlogits: 1 of 3 values"):
        gradients(model, np.zeros_like(x), np.array([[1, np.nan, 0]], np.float32))
    w, _ = tiny
    np.save(tmp_path / "nan.npy", np.full((1, 3, 8, 8), np.nan, np.float32))
    code, _, err = run(capsys, "forward", "--weights", w, "--input", tmp_path / "nan.npy",
                       "--output", tmp_path / "o.npy")
    assert code == 2 and "nan.npy" in err and "--allow-non-finite" in err
    code, _, err = run(capsys, "forward", "--weights", w, "--input", tmp_path / "nan.npy",
                       "--output", tmp_path / "o.npy", "--allow-non-finite")
    assert code == 0 and "Warning:" not in err and np.isnan(np.load(tmp_path / "o.npy")).all()


@pytest.mark.parametrize("argv, option", [
    (["demo", "--seed", "-1"], "--seed"),
    (["demo", "--size", "0"], "--size"),
    (["demo", "--repeat", "0"], "--repeat"),
    (["demo", "--batch", str(10 ** 9)], "--batch"),
    (["compare", "a", "b", "--rtol", "nan"], "--rtol"),
    (["compare", "a", "b", "--atol", "-1"], "--atol"),
    (["summary", "ResNet50", "--input-size", "5", str(10 ** 12)], "--input-size"),
    (["audit", "--mutants", "--size", "-3", "4"], "--size"),
    (["train-demo", "--lr", "inf"], "--lr"),
    (["train-demo", "--epochs", "0"], "--epochs"),
    (["export", "--test-data", "-1", "--onnx", "m.onnx"], "--test-data"),
])
def test_numeric_options_are_checked_when_parsed(capsys, argv, option):
    code, _, err = run(capsys, *argv)
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"numpy-resnext {argv[0]}: error: argument {option}")


def test_the_compare_api_refuses_nan_tolerances(tmp_path):
    from numpy_resnext.golden import compare
    a = {"fc": np.zeros(3)}
    with pytest.raises(InputError, match="finite numbers >= 0"):
        compare(a, a, rtol=float("nan"))
