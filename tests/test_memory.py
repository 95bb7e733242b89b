"""The memory estimate before a computation: an upper bound of what the computation
really allocates (NumPy reports its allocations to tracemalloc), and a clean refusal, naming
the size and the option, when the budget cannot hold it."""

import os
import resource
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from numpy_resnext import build, cli, custom
from numpy_resnext.bounded import available_memory, set_memory_budget
from numpy_resnext.errors import BudgetError, InputError
from numpy_resnext.golden import golden_dump
from numpy_resnext.grad import gradients
from numpy_resnext.shapes import check_compute, memory_estimate

ROOT = Path(__file__).resolve().parent.parent
TINY = custom(depths=(1, 1), cardinality=2, base_width=4, num_classes=3, name="tiny_memory")
TINY_SE = custom(depths=(1, 1), cardinality=2, base_width=4, num_classes=3, se_reduction=4,
                 name="tiny_se_memory")


def _peak(call):
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        call()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("arch, shape, dtype", [
    ("ResNeXt50_32x4d", (1, 3, 64, 64), "float32"),
    ("ResNeXt50_vd_32x4d", (2, 3, 33, 47), "float64"),
    ("ResNeXt50_32x4d", (1, 3, 1, 600), "float32"),
    (TINY, (3, 3, 40, 24), "float64"),
    # squeeze-and-excitation: a pooled vector, two 1x1 convolutions and a scale per block
    ("SE_ResNeXt50_vd_32x4d", (1, 3, 64, 64), "float32"),
    ("legacy_seresnext26_32x4d", (2, 3, 33, 47), "float64"),     # the ceil-mode max-pool stem
    (TINY_SE, (3, 3, 40, 24), "float64"),
])
def test_the_estimate_bounds_what_the_computation_allocates(arch, shape, dtype):
    model = build(arch, dtype=dtype, init="identity-bn")
    x = np.random.default_rng(0).standard_normal(shape).astype(dtype)
    dout = np.ones((shape[0], model.config.num_classes), dtype)
    runs = {"forward": lambda: model(x), "golden": lambda: golden_dump(model, x),
            "gradients": lambda: gradients(model, x, dout)}
    for kind, call in runs.items():
        peak, estimate = _peak(call), memory_estimate(model.plan, shape, dtype, kind)
        assert peak <= estimate, (kind, peak, estimate)
        if kind != "forward":                    # tight where the kept tensors dominate
            assert estimate < 3 * peak + (64 << 20), (kind, peak, estimate)


def test_the_se_layers_are_counted():
    """What the SE layers add to a golden dump (their tensors, as the dump returns them) is
    in the estimate: an SE model's estimate exceeds its twin without SE by at least that."""
    shape, dtype = (2, 3, 40, 24), "float64"
    model = build(TINY_SE, dtype=dtype, init="identity-bn")
    twin = TINY_SE.replace(se_reduction=0, name="tiny_no_se")
    tensors, _ = golden_dump(model, np.random.default_rng(1).standard_normal(shape))
    se_bytes = sum(v.nbytes for k, v in tensors.items() if ".se" in k)
    assert se_bytes > 0 and [k for k in tensors if k.endswith(".se.gate")]
    extra = (memory_estimate(model.plan, shape, dtype, "golden")
             - memory_estimate(twin, shape, dtype, "golden"))
    assert extra >= se_bytes, (extra, se_bytes)
    assert (memory_estimate(model.plan, shape, dtype, "gradients")
            - memory_estimate(twin, shape, dtype, "gradients")) >= se_bytes


def test_a_selection_costs_what_it_keeps():
    plan = build(TINY, init="identity-bn").plan
    whole = memory_estimate(plan, (1, 3, 64, 64), "float32", "golden")
    some = memory_estimate(plan, (1, 3, 64, 64), "float32", "golden", keep=["fc"])
    assert some < whole < memory_estimate(plan, (1, 3, 64, 64), "float64", "golden")
    with pytest.raises(InputError, match="kind 'train'"):
        memory_estimate(plan, (1, 3, 8, 8), "float32", "train")


def test_over_the_budget_is_a_clean_error_naming_size_and_option():
    model = build(TINY, init="identity-bn")
    from numpy_resnext.bounded.memory import _status
    old = set_memory_budget(_status().get("VmRSS", 0) + (300 << 20))      # 300 MiB more
    try:
        x = np.zeros((1, 3, 1, 873813), np.float32)
        for call in (lambda: golden_dump(model, x), lambda: model.forward(x, keep=True),
                     lambda: gradients(model, x, np.ones((1, 3), np.float32))):
            with pytest.raises(BudgetError, match=r"tiny_memory on a \(1, 3, 1, 873813\) float32 "
                                                  r"input needs about \d.* GiB of memory, more than "
                                                  r"the .* available \(the memory budget of .* "
                                                  r"less the .* in use\).*--max-memory \d+G"):
                call()
        assert model(np.zeros((1, 3, 8, 8), np.float32)).shape == (1, 3)
        with pytest.raises(BudgetError, match="seeded weights of ResNeXt101_32x48d_wsl"):
            build("ResNeXt101_32x48d_wsl")
    finally:
        set_memory_budget(old)
    assert isinstance(MemoryError(), Exception) and issubclass(BudgetError, MemoryError)


def test_the_budget_follows_the_process_limits():
    have, why = available_memory()
    assert have is None or have > 0, why
    code = ("import resource; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30)); "
            "from numpy_resnext.bounded import available_memory; print(*available_memory(), sep='|')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       env=dict(os.environ, PYTHONPATH=str(ROOT)))
    left, why = r.stdout.strip().split("|")
    assert 0 < int(left) < 1 << 30 and "RLIMIT_AS" in why


def test_a_small_input_asking_for_gigabytes_is_refused_under_a_memory_cap(tmp_path):
    """The issue's case: a valid 10 MB (1, 3, 1, 873813) input to golden, under the attack
    suite's 1.2 GiB address-space cap: one clean line, in a moment, not MemoryError."""
    x = tmp_path / "x.npy"
    np.save(x, np.zeros((1, 3, 1, 873813), np.float32))
    limit = int(1.2 * 2 ** 30)
    r = subprocess.run([sys.executable, "-m", "numpy_resnext", "golden", "ResNeXt50_32x4d",
                        "--init", "identity-bn", "--input", str(x), "--output", str(tmp_path / "g.npz")],
                       capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, PYTHONPATH=str(ROOT), OPENBLAS_NUM_THREADS="1"),
                       preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit)))
    last = r.stderr.splitlines()[-1]
    assert r.returncode == 2 and last.startswith("numpy-resnext golden: error: golden of "
                                                 "ResNeXt50_32x4d on a (1, 3, 1, 873813)"), r.stderr
    assert "GiB of memory" in last and "--max-memory" in last and "RLIMIT_AS" in last
    assert not (tmp_path / "g.npz").exists()


def test_the_cli_option_sets_the_budget(tmp_path, capsys):
    assert cli.main(["--max-memory", "1M", "demo", "--size", "32", "--repeat", "1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("numpy-resnext demo: error: a forward pass of ResNeXt50_32x4d on a "
                          "(1, 3, 32, 32) float32 input needs about")
    set_memory_budget(None)
    assert check_compute(TINY, (1, 3, 8, 8)) > 0
