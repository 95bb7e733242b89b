"""exercises/: every check passes on the solutions, fails on the unfilled stubs, and fails
on plausible wrong answers (so passing means something); every exercise says what to read
first, and those pages exist."""

import importlib.util
import re
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
EX = ROOT / "exercises"


@pytest.fixture(scope="module")
def check():
    spec = importlib.util.spec_from_file_location("exercises_check", EX / "check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("exercise", ["conv", "batchnorm", "bottleneck"])
def test_solutions_pass_every_check(check, exercise):
    results = check.run(exercise, solutions=True)
    assert len(results) >= 9
    failed = [r for r in results if not r.ok]
    assert not failed, failed


@pytest.mark.parametrize("exercise", ["conv", "batchnorm", "bottleneck"])
def test_unfilled_stubs_fail(check, exercise):
    results = check.run(exercise)
    assert results and not any(r.ok for r in results)
    assert "NotImplementedError" in results[0].detail


def _with(check, exercise, **functions):
    names = vars(check.load(exercise, solutions=True)).copy()
    names.update(functions)
    return SimpleNamespace(**names)


def test_wrong_answers_fail(check):
    sol = check.load("conv", solutions=True)

    def conv_backward_ignoring_padding(dout, cache):       # forgets to cut the padding's gradient off
        x, w, stride, pad, groups = cache
        dx, dw = sol.conv_backward(dout, (x, w, stride, pad, groups))
        dx = dx.copy()
        dx[:, :, :1] *= 2
        return dx, dw
    results = check.run("conv", functions=_with(check, "conv", conv_backward=conv_backward_ignoring_padding))
    assert any(not r.ok and r.check.startswith("dx") for r in results)
    assert all(r.ok for r in results if r.check.startswith(("forward", "dw")))

    bn = check.load("batchnorm", solutions=True)

    def bn_backward_without_batch_terms(dout, cache):       # the inference-mode backward
        x, xhat, v, gamma = cache
        dx, dgamma, dbeta = bn.bn_train_backward(dout, cache)
        return dout * gamma[None, :, None, None] / np.sqrt(v + 1e-5), dgamma, dbeta
    results = check.run("batchnorm", functions=_with(check, "batchnorm", bn_train_backward=bn_backward_without_batch_terms))
    assert [r.check for r in results if not r.ok] == ["dx vs the reference backward", "dx vs finite differences",
                                                      "dx along a random direction"]

    block = check.load("bottleneck", solutions=True)

    def backward_without_shortcut(dout, cache):             # drops the gradient of the identity path
        dx, grads = block.bottleneck_backward(dout, cache)
        units, sc, out = cache
        if sc is None:
            dx = dx - dout * (out > 0)
        return dx, grads
    results = check.run("bottleneck", functions=_with(check, "bottleneck", bottleneck_backward=backward_without_shortcut))
    assert any(not r.ok and r.check.startswith("dx, layer1.1") for r in results)


def test_command_line(check, capsys):
    assert check.main(["conv", "--solutions"]) == 0
    assert "all checks pass" in capsys.readouterr().out
    assert check.main(["batchnorm"]) == 1
    assert "FAIL  batchnorm" in capsys.readouterr().out
    assert check.main(["nonsense"]) == 2


@pytest.mark.parametrize("path", sorted(EX.glob("ex*.py")))
def test_each_exercise_says_what_to_read_first(path):
    doc = path.read_text(encoding="utf-8")
    m = re.search(r"Read first: (.*?)\n\n", doc, re.S)
    assert m, f"{path.name} does not say what to read first"
    for ref in re.findall(r"(docs/[\w.]+\.md|numpy_resnext/[\w/]+\.py)", m[1]):
        assert (ROOT / ref).is_file(), f"{path.name}: {ref} does not exist"
    assert (EX / "solutions" / path.name).is_file()
    readme = (EX / "README.md").read_text(encoding="utf-8")
    assert f"({path.name})" in readme
    for link in re.findall(r"\]\((\.\./[^)#]+)", readme):
        assert (EX / link).resolve().is_file(), link
