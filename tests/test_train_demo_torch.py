"""train-demo's first 20 SGD steps against torch (float64): the same losses and weights.

The NumPy side is train-demo's own loop (:func:`numpy_resnext.paper.digits.train_digits` in
float64, stopped after 20 steps), recording each step's batch (after the random shifts),
learning rate and loss. The torch side is the same network written as torch modules in
reference/torch_capture.py ("digits_cifar": a 3x3/1 stem without max-pool, three stages,
torchvision's names = our canonical names), given the same initial weights, the same
batches and learning rates, training-mode BatchNorm (momentum set to Paddle's
float32 0.9, eps 1e-5), mean cross-entropy and ``torch.optim.SGD(momentum, weight_decay)``,
whose update v = mu*v + (g + wd*p), p -= lr*v is the one numpy_resnext.train applies.

Compared: the loss of every step, and every trainable tensor and every BN running mean
after steps 1, 10 and 20, relative to the tensor's largest value, <= 1e-10. Running
variances are not compared: torch updates them with the unbiased batch variance, Paddle
(and numpy-resnext) with the biased one.
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from numpy_resnext.paper import digits
from numpy_resnext.ops.batchnorm import EPS, PADDLE_MOMENTUM
from numpy_resnext.params import is_trainable

pytest.importorskip("sklearn", reason="the digits come with scikit-learn (pip install numpy-resnext[digits])")

ROOT = Path(__file__).resolve().parent.parent
STEPS = 20
CHECKED_AFTER = (1, 10, 20)
TOL = 1e-10


def _torch_capture():
    spec = importlib.util.spec_from_file_location("torch_capture", ROOT / "reference" / "torch_capture.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rel(a, b):
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-300))


@pytest.fixture
def torch1(torch):
    """torch on one thread (two threads fighting for a busy machine's cores are ~7x slower
    on these small layers); the previous setting is restored afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield torch
    torch.set_num_threads(threads)


@pytest.mark.torch
def test_first_20_steps_match_torch_float64(torch1):
    torch = torch1
    tc = _torch_capture()
    # the NumPy run, recording what each step saw
    initial = digits.initial_model(seed=0, dtype="float64").state_dict()
    record = []

    def on_step(step, x, y, lr, res):
        params = {k: v.copy() for k, v in res.params.items()} if step in CHECKED_AFTER else None
        record.append((x.copy(), y.copy(), lr, res.loss, params))
    run = digits.train_digits(epochs=1, seed=0, dtype="float64", max_steps=STEPS, on_step=on_step)
    assert run.steps == STEPS and len(record) == STEPS

    # the torch network with the same initial weights, trained on the same batches
    net = tc.build("digits_cifar")
    assert list(tc.canonical_shapes(net)) == list(initial)             # canonical names = torch's
    tc.load_canonical(net, initial)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum, m.eps = 1.0 - PADDLE_MOMENTUM, EPS
    net.train()
    named = dict(net.named_parameters())
    opt = torch.optim.SGD(list(named.values()), lr=digits.DEFAULTS["lr"],
                          momentum=digits.DEFAULTS["momentum"],
                          weight_decay=digits.DEFAULTS["weight_decay"])
    worst_loss, worst_param = 0.0, {}
    for step, (x, y, lr, loss, params) in enumerate(record, start=1):
        for group in opt.param_groups:
            group["lr"] = lr
        opt.zero_grad()
        t_loss = torch.nn.functional.cross_entropy(net(torch.from_numpy(x)), torch.from_numpy(y))
        t_loss.backward()
        opt.step()
        worst_loss = max(worst_loss, abs(loss - t_loss.item()) / abs(t_loss.item()))
        if params is None:
            continue
        state = {k: v.detach().numpy() for k, v in net.state_dict().items()}
        compared = [n for n in params if is_trainable(n) or n.endswith("running_mean")]
        assert len([n for n in compared if is_trainable(n)]) == len(named)
        for n in compared:
            worst_param[n] = max(worst_param.get(n, 0.0), _rel(params[n], state[n]))
    print(f"worst loss difference {worst_loss:.1e}, worst tensor difference "
          f"{max(worst_param.values()):.1e} ({max(worst_param, key=worst_param.get)})")
    assert worst_loss <= TOL, worst_loss
    bad = {n: v for n, v in worst_param.items() if v > TOL}
    assert not bad, f"tensors differing by more than {TOL:g}: {bad}"
    # the run really trained: the loss fell and the weights moved far beyond the tolerance
    assert record[-1][3] < record[0][3]
    moved = _rel(record[-1][4]["layer2.0.conv2.weight"], initial["layer2.0.conv2.weight"])
    assert moved > 1e-3, moved
