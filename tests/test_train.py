"""train.py: the momentum-SGD update (against its formula and torch.optim.SGD), purity, and
a few training steps on a tiny network. train_step against Paddle's optimizer is in
test_grad_paddle_fixtures.py (two steps) and test_grad_paddle_live.py (full size)."""

from collections import OrderedDict

import numpy as np
import pytest

import numpy_resnext as nrx
from numpy_resnext.ops.batchnorm import PADDLE_MOMENTUM
from numpy_resnext.errors import InputError
from numpy_resnext.model import ResNeXt
from numpy_resnext.train import sgd_step, train_step


def small_state(rng):
    params = OrderedDict([("conv1.weight", rng.standard_normal((2, 3, 1, 1))),
                          ("bn1.weight", rng.standard_normal(2)),
                          ("bn1.running_mean", rng.standard_normal(2)),
                          ("bn1.running_var", rng.uniform(0.5, 2, 2))])
    grads = {n: rng.standard_normal(v.shape) for n, v in params.items() if "running" not in n}
    return params, grads


def test_sgd_step_follows_the_momentum_formula(rng):
    params, grads = small_state(rng)
    lr, mu, wd = 0.1, 0.9, 1e-2
    p1, v1 = sgd_step(params, grads, None, lr, mu, wd)
    for n, g in grads.items():                           # first step: v = g + wd * p
        assert np.allclose(v1[n], g + wd * params[n], rtol=1e-15, atol=0)
        assert np.allclose(p1[n], params[n] - lr * (g + wd * params[n]), rtol=1e-15, atol=1e-17)
    grads2 = {n: rng.standard_normal(g.shape) for n, g in grads.items()}
    p2, v2 = sgd_step(p1, grads2, v1, lr, mu, wd)
    for n, g in grads2.items():
        v = mu * v1[n] + g + wd * p1[n]
        assert np.allclose(v2[n], v, rtol=1e-15, atol=1e-17)
        assert np.allclose(p2[n], p1[n] - lr * v, rtol=1e-15, atol=1e-17)
    for n in ("bn1.running_mean", "bn1.running_var"):    # statistics are not optimised
        assert np.array_equal(p2[n], params[n]) and n not in v2


def test_sgd_step_is_pure(rng):
    params, grads = small_state(rng)
    copies = [{k: v.copy() for k, v in d.items()} for d in (params, grads)]
    _, v = sgd_step(params, grads, None, 0.1, 0.9, 1e-3)
    vcopy = {k: a.copy() for k, a in v.items()}
    new, _ = sgd_step(params, grads, v, 0.1, 0.9, 1e-3)
    for d, c in zip((params, grads, v), copies + [vcopy]):
        assert all(np.array_equal(d[k], c[k]) for k in c)
    assert all(new[k] is not params[k] for k in params)


def test_sgd_step_needs_every_gradient(rng):
    params, grads = small_state(rng)
    del grads["bn1.weight"]
    with pytest.raises(InputError, match="bn1.weight"):
        sgd_step(params, grads, None, 0.1)


def test_sgd_step_matches_torch(torch, rng):
    """torch.optim.SGD(momentum, weight_decay, dampening 0) is the same update as Paddle's."""
    params, _ = small_state(rng)
    names = [n for n in params if "running" not in n]
    tp = [torch.tensor(params[n], requires_grad=True) for n in names]
    opt = torch.optim.SGD(tp, lr=0.05, momentum=0.9, weight_decay=1e-3)
    ours, v = params, None
    for _ in range(3):
        grads = {n: rng.standard_normal(params[n].shape) for n in names}
        for t, n in zip(tp, names):
            t.grad = torch.tensor(grads[n])
        opt.step()
        ours, v = sgd_step(ours, grads, v, 0.05, 0.9, 1e-3)
    for t, n in zip(tp, names):
        assert np.allclose(ours[n], t.detach().numpy(), rtol=1e-14, atol=1e-16)


def test_a_few_steps_learn_a_tiny_batch():
    cfg = nrx.custom(depths=(1,), cardinality=2, base_width=4, num_classes=3)
    model = nrx.build(cfg, dtype="float64", seed=0)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3, 16, 16))
    labels = np.array([0, 1, 2, 1])
    params0 = {k: v.copy() for k, v in model.params.items()}
    losses, v = [], None
    for _ in range(8):
        r = train_step(model, x, labels, v, lr=0.05, momentum=PADDLE_MOMENTUM, weight_decay=1e-4)
        losses.append(r.loss)
        v, model = r.velocity, ResNeXt(model.plan, r.params, model.dtype)
    assert losses[-1] < 0.5 * losses[0], losses
    assert not np.array_equal(model.params["bn1.running_mean"], params0["bn1.running_mean"])
    assert list(r.params) == list(params0)


def test_inplace_train_step_equals_the_functional_path():
    """Three steps with inplace=True on one model and one velocity dict give exactly the
    weights, running statistics, velocities and losses of the rebuild-every-step path; the
    arrays held before a step are not written into."""
    cfg = nrx.custom(depths=(1, 1), cardinality=2, base_width=2, num_classes=3)
    rng = np.random.default_rng(3)
    batches = [(rng.standard_normal((3, 3, 16, 16)), rng.integers(0, 3, 3)) for _ in range(3)]
    kw = dict(lr=0.05, momentum=0.9, weight_decay=1e-3)
    functional, v_fun, losses_fun = nrx.build(cfg, dtype="float64", seed=2), None, []
    for x, y in batches:
        r = train_step(functional, x, y, v_fun, **kw)
        functional, v_fun = ResNeXt(functional.plan, r.params, functional.dtype), r.velocity
        losses_fun.append(r.loss)
    model, velocity = nrx.build(cfg, dtype="float64", seed=2), {}
    params_dict = model.params
    before = {k: v.copy() for k, v in model.params.items()}
    held = dict(model.params)                                    # the arrays themselves
    losses = [train_step(model, x, y, velocity, inplace=True, **kw).loss for x, y in batches]
    assert losses == losses_fun
    assert model.params is params_dict and list(model.params) == list(functional.params)
    for name in functional.params:
        np.testing.assert_array_equal(model.params[name], functional.params[name], err_msg=name)
        np.testing.assert_array_equal(held[name], before[name], err_msg=name)   # not written into
    assert sorted(velocity) == sorted(v_fun)
    for name in v_fun:
        np.testing.assert_array_equal(velocity[name], v_fun[name], err_msg=name)
    assert not np.array_equal(model.params["bn1.running_var"], before["bn1.running_var"])
    assert not np.array_equal(model.params["layer1.0.conv2.weight"], before["layer1.0.conv2.weight"])
