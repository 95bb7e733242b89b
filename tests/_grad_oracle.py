"""Comparing numpy-resnext's backward with a recording of Paddle's autograd
(reference/paddle_grads.py): the same model, input and dloss/dlogits, gradients for the
input and every parameter in BN inference and training mode, running statistics, and
momentum-SGD steps. Shared by the fixture lane and the live lane.
"""

import json

import numpy as np

import numpy_resnext as nrx
from numpy_resnext.archs import PADDLE_BN_EPS
from numpy_resnext.ops.batchnorm import PADDLE_MOMENTUM
from numpy_resnext.grad import gradients
from numpy_resnext.model import ResNeXt
from numpy_resnext.train import train_step

from _arrays import rel_err


def check_all(pairs, tol, what):
    """pairs: name -> (ours, theirs). Asserts every rel_err <= tol; returns the worst."""
    errs = {n: rel_err(a, b) for n, (a, b) in pairs.items()}
    bad = {n: e for n, e in errs.items() if e > tol}
    if bad:
        n = max(bad, key=bad.get)
        a, b = pairs[n]
        raise AssertionError(
            f"{what}: {len(bad)} of {len(errs)} tensors off by more than {tol:g} relative; worst {n}: "
            f"{bad[n]:.3e}\n  ours  {a.ravel()[:5]}\n  paddle {b.ravel()[:5]}")
    worst = max(errs, key=errs.get)
    return worst, errs[worst]


def load(path):
    with np.load(path, allow_pickle=False) as d:
        rec = {k: d[k] for k in d.files}
    meta = json.loads(str(rec.pop("meta")))
    params = {k[len("params/"):]: v for k, v in rec.items() if k.startswith("params/")}
    return rec, meta, params


def compare(rec, meta, params, config, modes=("eval", "train"), tol=1e-9, sgd_tol=1e-9,
            bn_eps=PADDLE_BN_EPS):
    """Every comparison a recording allows; returns {lane: (worst name, worst rel err)}. The
    recordings are Paddle's, whose BatchNorm adds float32(1e-5) (``bn_eps``)."""
    model = nrx.build(config, weights=params, dtype="float64", bn_eps=bn_eps)
    x, dlogits = rec["x"], rec["dlogits"]
    report = {}
    for mode in modes:
        g = gradients(model, x, dlogits, train=(mode == "train"))
        expected = {k[len(f"{mode}/grad/"):]: v for k, v in rec.items() if k.startswith(f"{mode}/grad/")}
        assert set(expected) == set(g.grads), sorted(set(expected) ^ set(g.grads))
        report[f"{mode}/logits"] = check_all({"logits": (g.logits, rec[f"{mode}/logits"])}, tol, f"{mode} logits")
        report[f"{mode}/grads"] = check_all({n: (g.grads[n], expected[n]) for n in expected}, tol,
                                            f"{mode}-mode gradients")
        if mode == "train":
            running = {k[len("train/running/"):]: v for k, v in rec.items() if k.startswith("train/running/")}
            assert set(running) == set(g.running)
            report["train/running"] = check_all({n: (g.running[n], running[n]) for n in running}, tol,
                                                "running statistics after one training forward")
    velocity, m = None, model
    for step in range(meta["steps"]):
        r = train_step(m, x, rec["labels"], velocity, lr=meta["lr"], momentum=PADDLE_MOMENTUM,
                       weight_decay=meta["weight_decay"])
        assert abs(r.loss - rec["sgd/loss"][step]) <= tol * abs(rec["sgd/loss"][step])
        velocity, m = r.velocity, ResNeXt(model.plan, r.params, model.dtype)
    after = {k[len("sgd/params/"):]: v for k, v in rec.items() if k.startswith("sgd/params/")}
    assert set(after) == set(m.params)
    report["sgd/params"] = check_all({n: (m.params[n], after[n]) for n in after}, sgd_tol,
                                     f"parameters after {meta['steps']} momentum-SGD steps")
    return report
