"""What a PyTorch user's files meet on the command line: conversion keeps torch's BatchNorm
step counters as read, every command takes the same input shapes, an output's extension
must be the command's, and checkpoints holding Python objects say how to re-save them.

No framework is needed; reference/fixtures/torch_io holds the torch-written files.
"""

import io
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

import numpy_resnext as nrx
from numpy_resnext.cli import main
from numpy_resnext.io import load_weights, safetensors
from numpy_resnext.io.torch.file import open_torch
from numpy_resnext.io.torch.save import write_torch_zip

FIX = Path(__file__).resolve().parent.parent / "reference" / "fixtures" / "torch_io"
MICRO = nrx.custom(depths=(1,), cardinality=2, base_width=2, num_classes=3, stem_width=8)


def counters_state():
    """micro_zip.pth's state dict with trained counters: 0-d int64, as torch keeps them."""
    state = OrderedDict()
    for k, v in load_weights(FIX / "micro_zip.pth").params.items():
        state[k] = v
        if k.endswith(".running_var"):
            state[k[:-len("running_var")] + "num_batches_tracked"] = np.array(1234 + len(state), np.int64)
    return state


def counters_file(tmp_path):
    state = counters_state()
    path = tmp_path / "trained.pth"
    write_torch_zip(path, state)
    return path, state


def read_back(path):
    if str(path).endswith(".safetensors"):
        entries, _, _ = safetensors.read_header(path)
        return safetensors.read_tensors(path, list(entries))[0]
    tf = open_torch(path)
    return tf.arrays(tf.obj)


@pytest.mark.parametrize("ext", [".pth", ".safetensors"])
def test_convert_keeps_num_batches_tracked_as_read(tmp_path, capsys, ext):
    """Before: every counter came back as tensor([0]), shape [1], so torch.equal failed."""
    path, state = counters_file(tmp_path)
    out = tmp_path / f"converted{ext}"
    assert main(["convert", "--weights", str(path), "--output", str(out)]) == 0
    assert "5 counters written as read (shape ()" in capsys.readouterr().out
    got = read_back(out)
    assert list(got) == list(state)
    for k, v in state.items():
        assert got[k].shape == v.shape and got[k].dtype == v.dtype, k
        np.testing.assert_array_equal(got[k], v, err_msg=k)


def test_a_source_without_counters_gets_torchs_fresh_ones(tmp_path, capsys):
    src = tmp_path / "canonical.npz"
    assert main(["convert", "--weights", str(FIX / "micro_zip.pth"), "--output", str(src)]) == 0
    out = tmp_path / "fresh.pth"
    assert main(["convert", "--weights", str(src), "--output", str(out)]) == 0
    assert "written as torch's fresh counters (0, shape ())" in capsys.readouterr().out
    got = read_back(out)
    assert got["bn1.num_batches_tracked"].shape == () and int(got["bn1.num_batches_tracked"]) == 0


@pytest.mark.parametrize("command,ext,extra", [
    ("forward", ".npy", []), ("golden", ".npz", []),
    ("grad", ".npz", ["--dout", "DOUT"]), ("convert", ".npz or .safetensors", ["--weights", "WEIGHTS"])])
def test_an_output_extension_of_another_format_is_an_error(tmp_path, capsys, command, ext, extra):
    """Before: forward --output o.pt wrote .npy bytes under a torch name, exit 0."""
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((1, 3, 32, 32)))
    np.save(tmp_path / "d.npy", np.zeros((1, 1000)))
    extra = [str(tmp_path / "d.npy") if a == "DOUT" else str(FIX / "micro_zip.pth") if a == "WEIGHTS"
             else a for a in extra]
    wrong = tmp_path / "out.txt"
    argv = [command] + (["--input", str(x)] if command != "convert" else []) + extra + ["--output", str(wrong)]
    if command != "convert":
        argv.insert(1, "ResNet50")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"this writes {ext}" in err and "not '.txt'" in err and not wrong.exists()


def test_every_command_takes_3_h_w_like_golden(tmp_path, capsys):
    """Before: forward refused a (3, H, W) input that golden accepted."""
    x = np.random.default_rng(0).standard_normal((3, 35, 33))
    np.save(tmp_path / "x3.npy", x)
    np.save(tmp_path / "x4.npy", x[None])
    np.save(tmp_path / "d.npy", np.ones(1000))
    base = ["ResNet50", "--init", "identity-bn", "--dtype", "float64"]
    outs = {}
    for shape in ("x3", "x4"):
        inp = str(tmp_path / f"{shape}.npy")
        assert main(["forward", *base, "--input", inp, "--output", str(tmp_path / f"f_{shape}.npy")]) == 0
        assert main(["golden", *base, "--input", inp, "--output", str(tmp_path / f"g_{shape}.npz"),
                     "--keep", "fc"]) == 0
        assert main(["grad", *base, "--input", inp, "--dout", str(tmp_path / "d.npy"),
                     "--output", str(tmp_path / f"d_{shape}.npz")]) == 0
        outs[shape] = (np.load(tmp_path / f"f_{shape}.npy"), np.load(tmp_path / f"g_{shape}.npz")["fc"],
                       np.load(tmp_path / f"d_{shape}.npz")["input"])
    capsys.readouterr()
    for a, b in zip(outs["x3"], outs["x4"]):
        assert a.shape == b.shape and a.shape[0] == 1
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(outs["x3"][0], outs["x3"][1])          # forward = golden's fc


def _pickle_with(global_bytes):
    """A torch.save zip whose data.pkl names a global (never executed: it is refused first)."""
    data = b"\x80\x02}q\x00X\x04\x00\x00\x00argsq\x01" + global_bytes + b")\x81q\x02s."
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("ck/data.pkl", data)
        z.writestr("ck/version", "3\n")
    return buf.getvalue()


def test_a_checkpoint_with_python_objects_says_how_to_resave(tmp_path, capsys):
    """Before: 'global argparse.Namespace is not on the allow-list', and nothing else."""
    path = tmp_path / "ck.pth"
    path.write_bytes(_pickle_with(b"cargparse\nNamespace\nq\x03"))
    assert main(["convert", "--weights", str(path), "--output", str(tmp_path / "o.pth")]) == 2
    err = capsys.readouterr().err
    assert "the training arguments, which timm's train.py and torchvision's reference scripts save" in err
    assert "torch.save(ck['model'], 'weights.pth')" in err and "nothing in it was executed" in err



def test_build_takes_a_torch_state_dict_with_its_counters():
    """build(arch, weights={...}) with a torch state_dict's arrays: num_batches_tracked is
    ignored and listed, as it is in files (before: '5 unexpected' under strict loading)."""
    state = counters_state()
    model = nrx.build(MICRO, weights=state, dtype="float64")
    assert model.load_report["ignored"] == [k for k in state if k.endswith("num_batches_tracked")]
