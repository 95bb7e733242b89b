"""Run attack cases in this process under a memory ceiling; write what happened as JSON.

    python tests/_attack_worker.py CASES.json RESULTS.json WORKDIR

The parent sets RLIMIT_AS (so a regression that allocates gigabytes fails with
MemoryError here instead of exhausting the machine); every entry point gets 10 s
(SIGALRM), and a hang is recorded as such. Each case runs through its Python entry points
and, when asked, through ``numpy-resnext convert`` and ``forward`` (``cli.main`` called in
this process, stderr captured).
"""

import contextlib
import io
import json
import resource
import signal
import sys
import traceback

import numpy as np

from numpy_resnext import build
from numpy_resnext._files import save_npy
from numpy_resnext.cli import main
from numpy_resnext.errors import ResNeXtError
from numpy_resnext.io import load_weights, read_paddle
from numpy_resnext.preprocess import load_image

TIMEOUT = 10


class Hang(BaseException):
    pass


def _alarm(signum, frame):
    raise Hang()


API = {
    "weights": [("load_weights", lambda p: load_weights(p)),
                ("build", lambda p: build(None, weights=p))],
    "weights-nonstrict": [("load_weights(strict=False)", lambda p: load_weights(p, strict=False)),
                          ("build(strict=False)", lambda p: build(None, weights=p, strict=False))],
    "paddle": [("read_paddle", lambda p: read_paddle(p)), ("load_weights", lambda p: load_weights(p))],
    "image": [("load_image", lambda p: load_image(p))],
    "save": [("save_npy", lambda p: save_npy(p, np.zeros(3)))],
}


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
    result["stderr"] = err.getvalue()[:3000]
    result["argv"] = argv
    return result


def main_worker(cases_path, results_path, workdir):
    signal.signal(signal.SIGALRM, _alarm)
    cases = json.load(open(cases_path))
    x = f"{workdir}/x.npy"
    np.save(x, np.zeros((1, 3, 32, 32), np.float32))
    results = []
    for case in cases:
        path = case["path"]
        api = [dict(run_one(lambda f=f: f(path)), api=name) for name, f in API[case["api"]]]
        cli = []
        if case["cli"]:
            cli.append(run_cli(["convert", "--weights", path, "--output", f"{workdir}/o.npz"]))
            cli.append(run_cli(["forward", "--weights", path, "--input", x,
                                "--output", f"{workdir}/o.npy"]))
        results.append({"id": case["id"], "api": api, "cli": cli})
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    json.dump({"results": results, "peak_rss": peak}, open(results_path, "w"))


if __name__ == "__main__":
    main_worker(*sys.argv[1:4])
