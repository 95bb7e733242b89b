"""Check the exercises: ``python exercises/check.py [conv|batchnorm|bottleneck ...] [--solutions]``.

Every check compares your function with the package (the forward values, float64, 1e-12)
and your gradients with centred finite differences (gradcheck.py: a step relative to each
array's size, 30 sampled entries, and one random direction; 1e-6) and with an independent
backward (the package's, or numpy_resnext/paper/minimal.py's). It prints one line per check
and exits with status 0 when all pass. ``--solutions`` runs the same checks on
exercises/solutions/ instead of your files.
"""

import importlib.util
import sys
import traceback
from pathlib import Path
from types import SimpleNamespace
from typing import NamedTuple

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import gradcheck as gc  # noqa: E402  (the harness beside this file)

EXERCISES = {"conv": "ex1_grouped_conv", "batchnorm": "ex2_batchnorm", "bottleneck": "ex3_bottleneck"}
TOL, GRAD_TOL = 1e-12, 1e-6


class Result(NamedTuple):
    exercise: str
    check: str
    ok: bool
    detail: str


def _module(path):
    spec = importlib.util.spec_from_file_location(f"_exercise_{path.parent.name}_{path.stem}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def load(exercise, solutions=False):
    """The exercise's functions; with ``solutions``, those the solution file defines replace them."""
    file = EXERCISES[exercise] + ".py"
    names = vars(_module(HERE / file)).copy()
    if solutions:
        names.update(vars(_module(HERE / "solutions" / file)))
    return SimpleNamespace(**names)


def _grad_checks(label, analytic, reference, loss, x):
    """(name, error, tolerance) of one gradient against an independent backward, sampled
    finite differences and a directional derivative."""
    return [(f"{label} vs the reference backward", gc.rel_error(analytic, reference), TOL * 100),
            (f"{label} vs finite differences", gc.gradient_error(analytic, loss, x), GRAD_TOL),
            (f"{label} along a random direction", gc.directional_check(analytic, loss, x), GRAD_TOL)]


def conv_checks(m):
    import numpy_resnext as nrx
    rng = np.random.default_rng(0)
    for N, C, H, W, K, R, stride, pad, groups in [(2, 4, 7, 6, 6, 3, 2, 1, 2), (1, 3, 5, 5, 4, 1, 1, 0, 1),
                                                  (2, 8, 6, 5, 8, 3, 1, 1, 8)]:
        case = f"C={C} K={K} {R}x{R}/{stride} pad {pad} groups {groups}"
        x = rng.standard_normal((N, C, H, W))
        w = rng.standard_normal((K, C // groups, R, R))
        out, cache = m.conv_forward(x.copy(), w.copy(), stride, pad, groups)
        yield f"forward, {case}", gc.rel_error(out, nrx.conv2d(x, w, stride, pad, groups)), TOL
        dout = rng.standard_normal(out.shape)
        dx, dw = m.conv_backward(dout, cache)
        ref_dx, ref_dw = nrx.conv2d_backward(dout, x, w, stride, pad, groups)
        yield from _grad_checks(f"dx, {case}", dx, ref_dx,
                                lambda v: float((nrx.conv2d(v, w, stride, pad, groups) * dout).sum()), x)
        yield from _grad_checks(f"dw, {case}", dw, ref_dw,
                                lambda v: float((nrx.conv2d(x, v, stride, pad, groups) * dout).sum()), w)


def batchnorm_checks(m):
    import numpy_resnext as nrx
    rng = np.random.default_rng(1)
    x = rng.standard_normal((4, 3, 5, 5)) * rng.uniform(0.1, 10, (1, 3, 1, 1)) + rng.normal(0, 3, (1, 3, 1, 1))
    gamma, beta = rng.uniform(0.5, 2, 3), rng.normal(0, 1, 3)
    y, cache = m.bn_train_forward(x, gamma, beta)
    dout = rng.standard_normal(y.shape)
    dx, dgamma, dbeta = m.bn_train_backward(dout, cache)
    _, ref_cache, _, _ = nrx.batchnorm_train(x, gamma, beta, np.zeros(3), np.ones(3))
    ref_dx, ref_dgamma, ref_dbeta = nrx.batchnorm_train_backward(dout, ref_cache)

    def loss(x=x, gamma=gamma, beta=beta):
        return float((m.bn_train_forward(x, gamma, beta)[0] * dout).sum())
    yield from _grad_checks("dx", dx, ref_dx, lambda v: loss(x=v), x)
    yield from _grad_checks("dgamma", dgamma, ref_dgamma, lambda v: loss(gamma=v), gamma)
    yield from _grad_checks("dbeta", dbeta, ref_dbeta, lambda v: loss(beta=v), beta)


def bottleneck_checks(m):
    import numpy_resnext as nrx
    from numpy_resnext.paper import minimal
    from numpy_resnext.walk import ArrayOps, bottleneck
    config = nrx.custom(depths=(2, 1), cardinality=4, base_width=2, stem="cifar", stem_width=8, num_classes=3)
    model = nrx.build(config, seed=1, dtype="float64")
    rng = np.random.default_rng(2)
    for block in (model.plan.block("layer1.1"), model.plan.block("layer2.0")):
        case = f"{block.name} ({block.shortcut}, stride {block.stride})"
        x = rng.standard_normal((2, block.in_channels, 6, 6))
        args = (block.name, block.stride, block.groups, block.projection is not None)
        out, cache = m.bottleneck_forward(x.copy(), model.params, *args)
        yield f"forward, {case}", gc.rel_error(out, bottleneck(x, block, ArrayOps(model.params))), TOL
        dout = rng.standard_normal(out.shape)
        dx, grads = m.bottleneck_backward(dout, cache)
        ref_dx, ref = _minimal_block_backward(minimal, model.params, x, dout, block)
        if set(grads) != set(ref):
            yield f"gradient names, {case}", float("inf"), 0.0
            continue

        def loss(v, name=None):
            params = dict(model.params, **({name: v} if name else {}))
            return float((bottleneck(x if name else v, block, ArrayOps(params)) * dout).sum())
        yield from _grad_checks(f"dx, {case}", dx, ref_dx, loss, x)
        for name in (f"{block.name}.conv2.weight", f"{block.name}.bn1.weight", f"{block.name}.bn3.bias"):
            yield from _grad_checks(f"{name}, {case}", grads[name], ref[name],
                                    lambda v, name=name: loss(v, name), model.params[name])


def _minimal_block_backward(minimal, params, x, dout, block):
    """The same block through minimal.py's units (inference BatchNorm): (dx, grads)."""
    b, units, y = block.name, [], x
    for i, (stride, pad, groups) in enumerate([(1, 0, 1), (block.stride, 1, block.groups), (1, 0, 1)], 1):
        y, c = minimal.conv_bn(y, params, f"{b}.conv{i}", f"{b}.bn{i}", False, stride, pad, groups, relu=i < 3)
        units.append(c)
    s, cs = x, None
    if block.projection is not None:
        s, cs = minimal.conv_bn(x, params, f"{b}.downsample.0", f"{b}.downsample.1", False, block.stride, relu=False)
    _, mask = minimal.relu_forward(y + s)
    grads, d = {}, minimal.relu_backward(dout, mask)
    dx = d
    for c in reversed(units):
        dx = minimal.conv_bn_backward(dx, c, grads)
    return dx + (minimal.conv_bn_backward(d, cs, grads) if cs is not None else d), grads


CHECKS = {"conv": conv_checks, "batchnorm": batchnorm_checks, "bottleneck": bottleneck_checks}


def run(exercise, solutions=False, functions=None) -> list:
    """Every check of one exercise as a :class:`Result`; an exception fails the check it stopped.
    ``functions``: a namespace to check instead of the exercise file (the tests pass wrong ones)."""
    results = []
    checks = CHECKS[exercise](functions if functions is not None else load(exercise, solutions))
    while True:
        try:
            name, err, tol = next(checks)
        except StopIteration:
            return results
        except Exception as exc:                         # a stub, or a crash in the learner's code
            where = traceback.extract_tb(exc.__traceback__)[-1]
            results.append(Result(exercise, "running the checks", False,
                                  f"{type(exc).__name__}: {exc} ({Path(where.filename).name}, line {where.lineno})"))
            return results
        results.append(Result(exercise, name, bool(err <= tol), f"error {err:.1e}, tolerance {tol:.0e}"))


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    solutions = "--solutions" in args
    chosen = [a for a in args if a != "--solutions"] or list(EXERCISES)
    unknown = [a for a in chosen if a not in EXERCISES]
    if unknown:
        print(f"unknown exercise {', '.join(unknown)}; expected one of {', '.join(EXERCISES)}", file=sys.stderr)
        return 2
    failed = 0
    for exercise in chosen:
        for r in run(exercise, solutions):
            failed += not r.ok
            print(f"{'PASS' if r.ok else 'FAIL'}  {r.exercise}: {r.check} ({r.detail})")
    print("all checks pass" if not failed else f"{failed} check(s) fail")
    return 0 if not failed else 1


if __name__ == "__main__":
    sys.exit(main())
