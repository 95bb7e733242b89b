"""Attack classes of what reaches the terminal and the disk, and of input values: control
characters in every name a file or the user gives (and lines that would forge output),
non-regular output targets and the permission bits of an existing output, empty torch
tensors with enormous strides, inputs of the wrong rank, numeric options out of range,
messages that would grow with the input, and non-finite input values. Same conventions
as tests/_attacks.py; ``named`` is what a message must name when it is not the file.
"""

from __future__ import annotations

import json
import os
import pickle
import socket

import numpy as np

from _attacks import _case
from _attacks_io import _tensor_pickle, _torch_zip

FORGE = "\r\nFORGED wrote logits.npy"
HOSTILE = ["\x1b[2J\x1b[H", "\x1b]0;pwned\x07", FORGE, "\u202eevil\u2028x", "\x9b31m\x00"]


def _tiny():
    from numpy_resnext.archs import ArchConfig
    from numpy_resnext.params import init_params
    cfg = ArchConfig(name="tiny", depths=(1, 1), cardinality=2, base_width=4, num_classes=3)
    return cfg, dict(init_params(cfg))


def terminal_control(root):
    cases = []
    cfg, params = _tiny()
    one = np.zeros(1, np.float32)
    for i, bad in enumerate(HOSTILE):
        p = root / f"ctl_names_{i}.npz"                      # unknown names: an error
        np.savez(p, **{f"conv1.weight{bad}": one, f"fc{bad}": one})
        _case(cases, "terminal-control", f"npz-names-{i}", p, "weights",     # (a NUL ends a
              r"unrecognised|naming scheme|not an \.npy array")              # zip name)
        p = root / f"ctl_keys_{i}.pdparams"
        p.write_bytes(pickle.dumps({f"w{bad}": one, f"{bad}b": one}, 4))
        _case(cases, "terminal-control", f"pdparams-keys-{i}", p, "weights",
              r"unrecognised|naming scheme")
        p = root / f"ctl_extra_{i}.npz"                      # --non-strict: exit 0, a report
        np.savez(p, **params, **{f"extra{bad}": one})
        _case(cases, "terminal-control", f"unexpected-name-{i}", p, "weights-nonstrict",
              r"unexpected|not an \.npy array", completes=True,
              cli=[["convert", "--weights", "{path}", "--output", "{work}/o.npz", "--non-strict"],
                   ["forward", "--weights", "{path}", "--input", "{x}", "--output",
                    "{work}/o.npy", "--non-strict"]])
        p = root / f"ctl_storage_{i}.pth"                     # a storage key named in errors
        pkl = _tensor_pickle(4, (2, 2), (2, 1)).replace(
            b"X\x01\x00\x00\x000", b"X" + len(f"0{bad}".encode()).to_bytes(4, "little")
            + f"0{bad}".encode())
        _torch_zip(p, pkl)
        _case(cases, "terminal-control", f"storage-key-{i}", p, "torch", r"storage")
        d = root / f"ctl_shard_{i}"
        d.mkdir()
        (d / "model.safetensors.index.json").write_text(
            json.dumps({"weight_map": {"fc.weight": f"sh{bad}.safetensors"}}))
        _case(cases, "terminal-control", f"shard-name-{i}", d / "model.safetensors.index.json",
              "weights", r"missing|not a file name")
        p = root / f"ctl_path_{i}{bad}.npz".replace("\x00", "0")    # the path itself
        p.write_bytes(b"not a zip at all")
        _case(cases, "terminal-control", f"path-{i}", p, "weights", r"not a readable",
              named=f"ctl_path_{i}")
        p = root / f"ctl_meta_{i}.safetensors"               # convert prints the metadata
        _safetensors_with_metadata(p, cfg, params, {"note": f"x{bad}y", f"k{bad}": "v"})
        _case(cases, "terminal-control", f"metadata-{i}", p, "weights", r".", completes=True,
              cli=[["convert", "--weights", "{path}", "--output", "{work}/o.npz"]])
        cand = root / f"ctl_table_{i}.json.cand.npz"         # compare's table shows both names
        np.savez(cand, **{f"evil{bad}": np.zeros((1, 3), np.float32)})
        p = root / f"ctl_table_{i}.json"
        p.write_text(json.dumps({f"evil{bad}": "fc"}))
        _case(cases, "terminal-control", f"compare-table-{i}", p, "map-cand", r".",
              completes=True, cli=[["compare", "{dump}", str(cand), "--map", "{path}"]])
        p = root / f"ctl_reference_{i}.npz"                  # a reference of hostile names
        np.savez(p, **{f"t{bad}": np.zeros(3, np.float32)})
        _case(cases, "terminal-control", f"reference-names-{i}", p, "reference", r".",
              completes=True, cli=[["compare", "{path}", "{path}"]])
        _case(cases, "terminal-control", f"keep-{i}", root / "keep", "none", r".",
              named="--keep", cli=[["golden", "--weights", "{w}", "--dtype", "float32", "--input",
                                    "{x}", "--output", "{work}/g.npz", "--keep", f"nothing{bad}"]])
    return cases


def _safetensors_with_metadata(path, cfg, params, metadata):
    from numpy_resnext.io import safetensors
    from numpy_resnext.io.schemes import file_state
    from numpy_resnext.plan import layer_plan
    safetensors.write(path, file_state(params, layer_plan(cfg), "torchvision"), metadata)


# --- output targets --------------------------------------------------------------------------
def output_targets(root):
    cases = []
    commands = {
        "forward": ["forward", "--weights", "{w}", "--input", "{x}", "--output", "{path}"],
        "golden": ["golden", "--weights", "{w}", "--dtype", "float32", "--input", "{x}",
                   "--output", "{path}"],
        "convert": ["convert", "--weights", "{w}", "--output", "{path}"],
        "grad": ["grad", "--weights", "{w}", "--dtype", "float32", "--input", "{x}", "--dout",
                 "{dout}", "--output", "{path}"],
        "compare-json": ["compare", "{dump}", "{dump}", "--json", "{path}"],
    }
    fifo = root / "target_fifo.npz"
    os.mkfifo(fifo)
    targets = {"fifo": fifo, "directory": root / "target_dir.npz",
               "link-dev-null": root / "target_null.npz", "link-dev-full": root / "target_full.npz",
               "link-fifo": root / "target_linkfifo.npz", "socket": root / "target_socket.npz"}
    targets["directory"].mkdir()
    os.symlink("/dev/null", targets["link-dev-null"])
    os.symlink("/dev/full", targets["link-dev-full"])
    os.symlink(fifo, targets["link-fifo"])
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(targets["socket"]))
    s.close()
    for label, target in targets.items():
        _case(cases, "output-targets", label, target, "save",
              r"FIFO|a directory|character device|socket|not a regular file",
              cli=list(commands.values()), untouched=[str(target), str(fifo)], tmp_only=True)
    for mode in (0o600, 0o640, 0o755):
        p = root / f"target_mode_{mode:o}.npz"
        p.write_bytes(b"old")
        os.chmod(p, mode)
        _case(cases, "output-targets", f"mode-{mode:o}", p, "none", r".", completes=True,
              expect_mode=mode, cli=[commands["convert"], commands["golden"]])
    return cases


# --- values ------------------------------------------------------------------------------------
def torch_empty_strides(root):
    cases = []
    for label, size, stride in (("0-2e60", (0,), (2 ** 60,)), ("0x4-2e60", (0, 4), (2 ** 60, 1)),
                                ("4x0-2e62", (4, 0), (2 ** 62, 2 ** 62)),
                                ("0-2e40", (0,), (2 ** 40,)), ("2x2-2e60", (2, 2), (2 ** 60, 1))):
        p = root / f"empty_stride_{label}.pth"
        _torch_zip(p, _tensor_pickle(4, size, stride))
        _case(cases, "torch-empty-strides", label, p, "torch",      # an empty tensor may load
              r"stride|reaches element|shape|unrecognised|naming scheme|missing|expected",
              may_load=True)
    return cases


INPUT_CLI = [["golden", "--weights", "{w}", "--input", "{path}", "--output", "{work}/g.npz"],
             ["forward", "--weights", "{w}", "--input", "{path}", "--output", "{work}/o.npy"],
             ["grad", "--weights", "{w}", "--input", "{path}", "--dout", "{dout}", "--output",
              "{work}/g.npz"],
             ["explain", "ResNeXt50_32x4d", "--init", "identity-bn", "--block", "layer1.0",
              "--input", "{path}"]]


def input_rank(root):
    cases = []
    for label, value in (("0d", np.float32(1.5)), ("1d", np.zeros(3, np.float32)),
                         ("2d", np.zeros((3, 32), np.float32)),
                         ("5d", np.zeros((1, 1, 3, 32, 32), np.float32)),
                         ("empty-h", np.zeros((1, 3, 0, 32), np.float32)),
                         ("empty-batch", np.zeros((0, 3, 32, 32), np.float32)),
                         ("4-channels", np.zeros((1, 4, 32, 32), np.float32)),
                         ("int64", np.zeros((1, 3, 32, 32), np.int64)),
                         ("complex", np.zeros((1, 3, 32, 32), np.complex64))):
        p = root / f"rank_{label}.npy"
        np.save(p, np.asarray(value))
        _case(cases, "input-rank", label, p, "compute",
              r"expected|empty|too small|dtype", cli=INPUT_CLI, progress=True)
    return cases


def _options(cases, option, values, argvs, label=None):
    for value in values:
        cli = [[a.replace("VALUE", value) for a in argv] for argv in argvs]
        _case(cases, "numeric-options", f"{label or option.strip('-')}-{value[:12]}",
              f"/nonexistent/{option}", "none", r".", cli=cli, named=option)


def numeric_options(root):
    cases = []
    w = ["--weights", "{w}"]
    _options(cases, "--seed", ["-1", "-5", str(2 ** 70)],
             [["forward", *w, "--input", "{x}", "--output", "{work}/o.npy", "--seed", "VALUE"],
              ["golden", "ResNeXt50_32x4d", "--input", "{x}", "--output", "{work}/g.npz",
               "--seed", "VALUE"],
              ["demo", "--seed", "VALUE"], ["audit", "--seed", "VALUE"],
              ["train-demo", "--seed", "VALUE"]])
    for opt in ("--rtol", "--atol"):
        _options(cases, opt, ["nan", "inf", "-1", "1e999"],
                 [["compare", "{dump}", "{dump}", opt, "VALUE"]])
    _options(cases, "--size", ["0", "-5", str(10 ** 12)],
             [["audit", "--mutants", "--size", "VALUE", "VALUE"], ["demo", "--size", "VALUE"],
              ["export", *w, "--size", "VALUE", "VALUE", "--onnx", "{work}/m.onnx"]])
    _options(cases, "--input-size", ["0", "-5", str(10 ** 12)],
             [["summary", "ResNeXt50_32x4d", "--input-size", "VALUE", "VALUE"],
              ["explain", "ResNeXt50_32x4d", "--input-size", "VALUE", "VALUE"]])
    _options(cases, "--top", ["-1", "0"], [["classify", "ResNeXt50_32x4d", "{x}", "--top", "VALUE"]])
    _options(cases, "--top", ["-1", "-7"], [["explain", "ResNeXt50_32x4d", "--top", "VALUE"]],
             label="explain-top")
    _options(cases, "--repeat", ["0", "-3", str(10 ** 9)], [["demo", "--repeat", "VALUE"]])
    _options(cases, "--batch", ["0", "-1", str(10 ** 12)],
             [["demo", "--batch", "VALUE"],
              ["export", *w, "--batch", "VALUE", "--onnx", "{work}/m.onnx"]])
    _options(cases, "--test-data", ["-1", str(10 ** 9)],
             [["export", *w, "--test-data", "VALUE", "--onnx", "{work}/m.onnx"]])
    _options(cases, "--epochs", ["0", "-2", str(10 ** 9)], [["train-demo", "--epochs", "VALUE"]])
    _options(cases, "--lr", ["nan", "-1", "inf"], [["train-demo", "--lr", "VALUE"]])
    _options(cases, "--threads", ["-1", str(10 ** 6)], [["train-demo", "--threads", "VALUE"]])
    _options(cases, "--test-size", ["0", "-5", str(10 ** 12)],
             [["export", *w, "--size", "dynamic", "--test-data", "1", "--test-size", "VALUE",
               "VALUE", "--onnx", "{work}/m.onnx"]])
    _options(cases, "--bn-eps", ["nan", "-1", "0", "inf"],
             [["forward", *w, "--input", "{x}", "--output", "{work}/o.npy", "--bn-eps", "VALUE"],
              ["golden", "ResNeXt50_32x4d", "--input", "{x}", "--output", "{work}/g.npz",
               "--bn-eps", "VALUE"]])
    return cases


# --- messages that would grow with the input ---------------------------------------------------
def _dump_with(path, tensors, manifest_tensors):
    text = json.dumps({"format": "numpy-resnext-golden", "format_version": 1,
                       "tensors": manifest_tensors}).encode()
    np.savez(path, **tensors, __manifest__=np.frombuffer(text, np.uint8))


def long_messages(root):
    cases = []
    fc = np.zeros((1, 3), np.float32)
    for n in (500, 50_000):
        p = root / f"manifest_absent_{n}.npz"
        _dump_with(p, {"fc": fc}, [{"name": f"absent{i}", "shape": [1], "dtype": "float32",
                                    "sha256": "0"} for i in range(n)])
        _case(cases, "long-messages", f"absent-{n}", p, "reference", r"disagree",
              cli=[["compare", "{path}", "{dump}"]])
    for n in (40, 1000, 1_000_000):
        p = root / f"manifest_axes_{n}.npz"
        _dump_with(p, {"fc": fc}, [{"name": "fc", "shape": [1] * n, "dtype": "float32",
                                    "sha256": "0"}])
        _case(cases, "long-messages", f"axes-{n}", p, "reference", r"shape|disagree|axes",
              cli=[["compare", "{path}", "{dump}"]])
    for n in (50, 5000):
        keep = ",".join(f"nothing{i}" for i in range(n))
        _case(cases, "long-messages", f"keep-{n}", root / "keep", "none", r".", named="--keep",
              cli=[["golden", "--weights", "{w}", "--dtype", "float32", "--input", "{x}",
                    "--output", "{work}/g.npz", "--keep", keep]])
    return cases


def nonfinite_inputs(root):
    cases = []
    base = np.random.default_rng(0).standard_normal((1, 3, 32, 32)).astype(np.float32)
    for label, at, value, dtype in (("nan", (0, 1, 5, 7), np.nan, np.float32),
                                    ("inf", (0, 2, 31, 31), np.inf, np.float32),
                                    ("ninf", (0, 0, 0, 0), -np.inf, np.float32),
                                    ("all-nan", None, np.nan, np.float32),
                                    ("nan-f64", (0, 1, 2, 3), np.nan, np.float64)):
        x = base.astype(dtype)
        if at is None:
            x[...] = value
        else:
            x[at] = value
        p = root / f"nonfinite_{label}.npy"
        np.save(p, x)
        _case(cases, "nonfinite-inputs", label, p, "compute",    # the API model is float32
              r"NaN or infinite.*index|has dtype float64 but the model is float32",
              cli=INPUT_CLI, progress=True)
        _case(cases, "nonfinite-inputs", f"{label}-dout", p.with_name(f"dout_{label}.npy"),
              "dout", r"NaN or infinite.*index",
              cli=[["grad", "--weights", "{w}", "--dtype", "float32", "--input", "{x}",
                    "--dout", "{path}", "--output", "{work}/g.npz"]])
        np.save(p.with_name(f"dout_{label}.npy"), np.full((1, 3), value, dtype))
        _case(cases, "nonfinite-inputs", f"{label}-allowed", p, "none", r".", completes=True,
              cli=[[*argv, "--allow-non-finite"] for argv in INPUT_CLI[:2]])
    return cases


GENERATORS = [terminal_control, output_targets, torch_empty_strides, input_rank,
              numeric_options, long_messages, nonfinite_inputs]
