"""Run attack cases in this process under a memory ceiling; write what happened as JSON.

    python tests/_attack_worker.py CASES.json RESULTS.json WORKDIR

The parent sets RLIMIT_AS (so a regression that allocates gigabytes fails with
MemoryError here instead of exhausting the machine); every entry point gets 10 s
(SIGALRM), and a hang is recorded as such. Each case runs through its Python entry points
and, when asked, through ``numpy-resnext convert`` and ``forward`` (``cli.main`` called in
this process, stdout and stderr captured). Per case: the peak resident memory (Linux's
VmHWM, reset before the case through /proc/self/clear_refs) and the seconds it took; a
case may ask that a path keep its file type (``untouched``) or an output its permission
bits (``expect_mode``).
"""

import contextlib
import io
import json
import os
import re
import resource
import signal
import stat
import sys
import time
import traceback

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                "benchmarks"))
from bench_forward import _peak_bytes as _peak, _reset_peak as _peak_reset  # noqa: E402

from numpy_resnext import build  # noqa: E402
from numpy_resnext._files import save_npy
from numpy_resnext._select import Selection
from numpy_resnext.bounded import read_array_file, read_npy
from numpy_resnext.cli import main
from numpy_resnext.commands._common import load_input, load_npy
from numpy_resnext.dataset.sources import load_item, open_source
from numpy_resnext.errors import ResNeXtError
from numpy_resnext.golden import compare, golden_dump, load_map, read_golden, write_golden
from numpy_resnext.grad import gradients
from numpy_resnext.io import load_weights, read_paddle, read_weights
from numpy_resnext.io import safetensors
from numpy_resnext.preprocess import load_image

TIMEOUT = 10


class Hang(BaseException):
    pass


def _alarm(signum, frame):
    raise Hang()


API = {
    "weights": [("load_weights", lambda p: load_weights(p)),
                ("build", lambda p: build(None, weights=p))],
    "build": [("build", lambda p: build(None, weights=p))],
    "weights-nonstrict": [("load_weights(strict=False)", lambda p: load_weights(p, strict=False)),
                          ("build(strict=False)", lambda p: build(None, weights=p, strict=False))],
    "paddle": [("read_paddle", lambda p: read_paddle(p)), ("load_weights", lambda p: load_weights(p))],
    "image": [("load_image", lambda p: load_image(p))],
    "save": [("save_npy", lambda p: save_npy(p, np.zeros(3)))],
    # phase 2: arrays given as inputs, compare's files, torch and safetensors
    "input": [("load_input", lambda p: load_input(p, "float32")),
              ("load_npy", lambda p: load_npy(p, "--dout"))],
    "reference": [("compare(reference=)", lambda p: compare(p, FILES["dump"])),
                  ("read_golden", lambda p: read_golden(p))],
    "candidate": [("compare(candidate=)", lambda p: compare(FILES["dump"], p)),
                  ("read_array_file", lambda p: read_array_file(p))],
    "map": [("load_map", lambda p: load_map(p)),
            ("compare(name_map=)", lambda p: compare(FILES["dump"], FILES["dump"], name_map=p))],
    "torch": [("read_weights", lambda p: read_weights(p)), ("load_weights", lambda p: load_weights(p))],
    "safetensors": [("safetensors.read", lambda p: safetensors.read(p)),
                    ("load_weights", lambda p: load_weights(p))],
    "glob": [("Selection.matches", lambda p: _glob_case(p))],
    # one reading budget per load, bounded work: a valid input asking for a computation
    # (tiny network), a name map against its own candidate (PATH.cand.npz)
    "compute": [("golden_dump", lambda p: golden_dump(MODEL[0], read_npy(p))),
                ("forward(keep=True)", lambda p: MODEL[0].forward(read_npy(p), keep=True)),
                ("gradients", lambda p: _gradients(read_npy(p)))],
    "map-cand": [("load_map", lambda p: load_map(p)),
                 ("compare(name_map=)", lambda p: compare(FILES["dump"], p + ".cand.npz",
                                                          name_map=p))],
    "dout": [("gradients(dout=)", lambda p: gradients(MODEL[0], read_npy(FILES["x"]),
                                                        read_npy(p)))],
    # golden-set's --images as an .npz: listed, then every item read as a worker reads it
    "images": [("open_source + load_item", lambda p: _images(p))],
    "none": [],
}
FILES = {}
MODEL = []
CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f\u2028\u2029]")


def _images(path):
    source = open_source(path, None)
    for index, item in enumerate(source.ids):
        load_item(source.spec, item, index)


def _gradients(x):
    model = MODEL[0]
    return gradients(model, x, np.ones((x.shape[0] if x.ndim == 4 else 1,
                                        model.config.num_classes), x.dtype))


def _glob_case(path):
    """A --keep / forward(keep=) pattern against a long name (both in the JSON file): must
    finish fast; the case expects the clean "no match" error raised here."""
    spec = json.load(open(path))
    if Selection(spec["pattern"]).matches(spec["name"]):
        raise AssertionError("the pathological pattern matched")
    from numpy_resnext.golden.names import parse_map
    nm = parse_map({spec["map_key"]: "x"}, "(attack map)")
    if nm.translate(spec["name"]) != spec["name"]:
        raise AssertionError("the pathological map key matched")
    raise ResNeXtError(f"{path}: no match, as expected")


def _setup(workdir):
    """A tiny weight file, an input, a d(logits) and a reference dump made from them."""
    from numpy_resnext.archs import ArchConfig
    from numpy_resnext.io import write_weights
    from numpy_resnext.params import init_params
    cfg = ArchConfig(name="tiny", depths=(1, 1), cardinality=2, base_width=4, num_classes=3)
    FILES["w"] = f"{workdir}/tiny.npz"
    write_weights(FILES["w"], dict(init_params(cfg)), cfg)
    FILES["x"] = f"{workdir}/x.npy"
    np.save(FILES["x"], np.random.default_rng(0).standard_normal((1, 3, 32, 32), np.float32))
    FILES["dout"] = f"{workdir}/dout.npy"
    np.save(FILES["dout"], np.ones((1, 3), np.float32))
    model = build(None, weights=FILES["w"])
    FILES["dump"] = f"{workdir}/dump.npz"
    tensors, manifest = golden_dump(model, np.zeros((1, 3, 32, 32), np.float32))
    write_golden(FILES["dump"], tensors, manifest)
    FILES["work"] = workdir
    MODEL.append(model)


def run_one(func):
    signal.alarm(TIMEOUT)
    try:
        func()
        return {"kind": "no-error"}
    except ResNeXtError as exc:
        return {"kind": "clean", "type": type(exc).__name__, "msg": str(exc)[:3000]}
    except Hang:
        return {"kind": "hang"}
    except BaseException as exc:       # noqa: BLE001 - what the suite is looking for
        return {"kind": "traceback", "type": type(exc).__name__,
                "msg": "".join(traceback.format_exception(exc))[-3000:]}
    finally:
        signal.alarm(0)


def run_cli(argv):
    err, out = io.StringIO(), io.StringIO()
    signal.alarm(TIMEOUT)
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
            rc = main(argv)
        result = {"kind": "exit", "rc": rc}
    except SystemExit as exc:
        result = {"kind": "exit", "rc": exc.code}
    except Hang:
        result = {"kind": "hang"}
    except BaseException as exc:       # noqa: BLE001
        result = {"kind": "traceback", "type": type(exc).__name__,
                  "msg": "".join(traceback.format_exception(exc))[-3000:]}
    finally:
        signal.alarm(0)
    text, out = err.getvalue(), out.getvalue()
    result["stderr"] = text[:3000]
    result["stderr_chars"] = len(text)
    result["stdout"] = out[:2000] + ("" if len(out) <= 3000 else " ... ") + out[-1000:]
    result["controls"] = sorted({hex(ord(c)) for c in CONTROL.findall(text + out)})[:5]
    result["forged"] = [line[:80] for line in (text + "\n" + out).splitlines()
                        if line.startswith("FORGED")][:3]
    result["argv"] = argv
    return result


def _kind(path):
    try:
        return stat.S_IFMT(os.lstat(path).st_mode)
    except OSError:
        return None


def main_worker(cases_path, results_path, workdir):
    signal.signal(signal.SIGALRM, _alarm)
    cases = json.load(open(cases_path))
    _setup(workdir)
    x = FILES["x"]
    results = []
    for case in cases:
        path = case["path"]
        untouched = {p: _kind(p) for p in case.get("untouched", ())}
        _peak_reset()
        t0 = time.perf_counter()
        api = [dict(run_one(lambda f=f: f(path)), api=name) for name, f in API[case["api"]]]
        cli = []
        if case["cli"] is True:
            cli.append(run_cli(["convert", "--weights", path, "--output", f"{workdir}/o.npz"]))
            cli.append(run_cli(["forward", "--weights", path, "--input", x,
                                "--output", f"{workdir}/o.npy"]))
        elif case["cli"]:                  # argv templates: {path}, {x}, {w}, {dout}, {dump}, {work}
            for argv in case["cli"]:
                cli.append(run_cli([a.format(path=path, **FILES) for a in argv]))
        if case.get("leftovers") or case.get("tmp_only"):   # a failed output leaves nothing
            left = [f for d in {os.path.dirname(path), workdir} if os.path.isdir(d)
                    for f in os.listdir(d) if f.startswith(".tmp-")]
            if os.path.exists(path) and not case.get("tmp_only"):
                left.append(path)
            for r in cli:
                r["leftovers"] = left
        seconds, peak = time.perf_counter() - t0, _peak()
        after = []
        for p, kind in untouched.items():
            if _kind(p) != kind:
                after.append(f"{p} changed type ({kind} -> {_kind(p)})")
        if case.get("expect_mode") is not None:
            mode = stat.S_IMODE(os.stat(path).st_mode) if os.path.exists(path) else None
            if mode != case["expect_mode"]:
                after.append(f"{path}: mode {mode if mode is None else oct(mode)}, expected "
                             f"{oct(case['expect_mode'])}")
        results.append({"id": case["id"], "api": api, "cli": cli, "peak": peak,
                        "seconds": seconds, "after": after})
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    json.dump({"results": results, "peak_rss": peak}, open(results_path, "w"))


if __name__ == "__main__":
    main_worker(*sys.argv[1:4])
