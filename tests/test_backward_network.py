"""The whole network's backward against centred finite differences, every parameter.

Tiny networks (two stages of one block each: a stride-1 and a stride-2 projection block,
cardinality 2; plain, vd and CIFAR stems) in float64 with random BN statistics, BN in inference
and in training mode. L = sum(logits * R); for every trainable tensor (and the input) a
few entries are perturbed by +-h and the centred difference is compared with the
analytic gradient, relative to that gradient's largest magnitude (<= 1e-6): the toolkit's
sparse gradient check (tests/_arrays.py).
"""

import numpy as np
import pytest

import numpy_resnext as nrx
from numpy_resnext.grad import TrainBN, backward, backward_names, forward_tape, gradients
from numpy_resnext.params import is_trainable

from _arrays import assert_grad


def tiny_model(stem, seed=0, **more):
    cfg = nrx.custom(depths=(1, 1), cardinality=2, base_width=4, stem=stem, num_classes=5,
                     stem_width=8, deep_stem_width=4, **more)
    # identity-BN seeded weights (plain He-normal convs) with the BN values set below: the
    # calibrated default scales conv channels down to 2**-9 and puts BN variances near eps,
    # where a fixed finite-difference step h is no longer small against the curvature
    model = nrx.build(cfg, dtype="float64", seed=seed, init="identity-bn")
    rng = np.random.default_rng(seed + 1)
    for name, v in model.params.items():
        if name.endswith("running_var"):
            model.params[name] = rng.uniform(0.5, 2.0, v.shape)
        elif name.endswith("running_mean"):
            model.params[name] = rng.normal(0, 0.3, v.shape)
        elif v.ndim == 1 and not name.startswith("fc."):
            model.params[name] = rng.uniform(0.5, 1.5, v.shape) if name.endswith("weight") else rng.normal(0, 0.3, v.shape)
    return model


def check_network(model, train, entries=4, h=1e-6, seed=0, size=24, atol=0.0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 3, size, size))
    R = rng.standard_normal((2, model.config.num_classes))
    g = gradients(model, x, R, train=train)

    def loss_of(arr):
        """L as a function of one tensor, written into ``arr`` in place (the model reads it)."""
        def loss(a):
            np.copyto(arr, a)
            return float(np.sum(model.forward(x, norm=TrainBN() if train else None) * R))
        return loss

    worst = {}
    for name, grad in g.grads.items():
        arr = x if name == "input" else model.params[name]
        saved = arr.copy()
        at = [tuple(int(rng.integers(0, s)) for s in arr.shape) for _ in range(entries)]
        try:
            worst[name] = assert_grad(grad, loss_of(arr), saved, f"{name} ({'train' if train else 'eval'} BN)",
                                      h=h, at=at, atol=atol)
        finally:
            np.copyto(arr, saved)
    return g, worst


@pytest.mark.parametrize("position", ["residual", "post"])
@pytest.mark.parametrize("train", [False, True], ids=["eval-bn", "train-bn"])
def test_squeeze_excitation_gradients_match_finite_differences(position, train):
    """SE-ResNeXt blocks (reduction 16, widths 16 and 32, with the legacy SENet stem max-pool:
    ceil mode, no padding), the SE layer where the libraries put it (after bn3) and on the
    sum (SE-POST, the mutation audit's "se-after-add"); Paddle's epsilon in every BN."""
    model = tiny_model("plain", se_reduction=16, stem_pool="ceil", bn_eps=nrx.archs.PADDLE_BN_EPS)
    for name, v in model.params.items():                               # gates spread over (0, 1)
        if ".se.fc" in name:
            model.params[name] = np.random.default_rng(len(name)).standard_normal(v.shape) * 0.5
    if position == "post":
        plan = model.plan._replace(blocks=tuple(b._replace(se=b.se._replace(position="post"))
                                                for b in model.plan.blocks))
        model = nrx.ResNeXt(plan, model.params, model.dtype)
    # training BN: the stem BN's shift reaches layer1 through a max-pool of mostly positive
    # values and then training BNs, which remove a constant shift, so its gradient is zero
    # (1e-16 here); its centred differences are the loss's rounding noise, ~1e-9
    g, worst = check_network(model, train, size=25, atol=1e-8 if train else 0.0)
    assert {n for n in g.grads if ".se." in n} == {n for n in model.params if ".se." in n}
    assert len([n for n in g.grads if ".se." in n]) == 8                # 2 blocks x fc1, fc2 x weight, bias


@pytest.mark.parametrize("stem", ["plain", "deep", "cifar"])
@pytest.mark.parametrize("train", [False, True], ids=["eval-bn", "train-bn"])
def test_every_parameter_gradient_matches_finite_differences(stem, train):
    model = tiny_model(stem)
    # the CIFAR stem keeps the full resolution (no stride, no max-pool): at 24x24 some of its
    # many ReLU inputs lie within h of zero and the centred difference straddles the kink,
    # so it runs at 8x8 (the digits' size), where the other stems would be too small
    g, worst = check_network(model, train, size=8 if stem == "cifar" else 24)
    trainable = [n for n in model.params if is_trainable(n)]
    assert list(g.grads) == ["input"] + trainable                      # every parameter, canonical order
    assert all(g.grads[n].shape == model.params[n].shape for n in trainable)
    if train:
        assert set(g.running) == {n for n in model.params if not is_trainable(n)}
    else:
        assert not g.running


def test_backward_reads_only_what_it_keeps():
    """The tape holds no BN outputs or sums, and in training mode no conv outputs either."""
    model = tiny_model("deep")
    for train in (False, True):
        names = backward_names(model, train)
        assert "layer1.0.bn1" not in names and "layer1.0.add" not in names and "fc" not in names
        assert ("layer1.0.conv1" in names) is (not train)
        assert {"maxpool", "layer2.0.downsample.0", "avgpool", "layer2.0"} <= set(names)


def test_backward_does_not_modify_anything():
    model = tiny_model("plain")
    before = {k: v.copy() for k, v in model.params.items()}
    x = np.random.default_rng(0).standard_normal((2, 3, 24, 24))
    x0 = x.copy()
    logits, tape = forward_tape(model, x, train=True)
    R = np.ones_like(logits)
    R0 = R.copy()
    backward(model, tape, R)
    assert np.array_equal(x, x0) and np.array_equal(R, R0)
    assert all(np.array_equal(before[k], model.params[k]) for k in before)


def test_float32_backward_stays_float32():
    cfg = nrx.custom(depths=(1,), cardinality=2, base_width=4, num_classes=3)
    model = nrx.build(cfg, dtype="float32")
    x = np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)
    g = gradients(model, x, np.ones((1, 3), np.float32))
    assert all(v.dtype == np.float32 for v in g.grads.values())


def test_wrong_dlogits_is_a_clear_error():
    model = tiny_model("plain")
    x = np.zeros((2, 3, 24, 24))
    _, tape = forward_tape(model, x)
    with pytest.raises(nrx.InputError, match=r"dlogits should be \(N, classes\) = \(2, 5\)"):
        backward(model, tape, np.zeros((2, 4)))
    with pytest.raises(nrx.InputTypeError, match=r"dlogits: expected a numpy.ndarray \(N, classes\), found list"):
        backward(model, tape, np.zeros((2, 5)).tolist())
