"""Live lane: the backward of an SE-ResNeXt against torch autograd (timm 1.0.31, torch 2.13.0).

timm's seresnext26d_32x4d in float64 with the oracle's weights (tests/_se_oracle.py: random,
trained-looking BatchNorm, gates spread over (0, 1)); loss = sum(logits * D) for a drawn D.
The gradient of the input and of every parameter (the SE layers' fc1 / fc2 weights and biases
included) must agree with torch autograd to 1e-9 (max difference over max magnitude, per
tensor), with inference BatchNorm at 2x3x67x45 and with training BatchNorm (batch statistics)
at 4x3x64x64, where layer4 still normalises over 16 values per channel (fewer amplify the
rounding of the batch variance, as the Paddle gradient lane explains). Skips without timm.
"""

import numpy as np
import pytest

import _se_oracle as so
from _arrays import rel_err
from numpy_resnext import build, gradients

NAME = "seresnext26d_32x4d"
TOL = 1e-9


def torch_grads(o, x, dlogits, train):
    import torch                                              # optional: the oracle's framework
    model = so.timm_module().create_model(NAME, pretrained=False).double()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in o.params.items()}, strict=False)
    model.train(train)
    xt = torch.from_numpy(x).requires_grad_(True)
    logits = model(xt)
    (logits * torch.from_numpy(dlogits)).sum().backward()
    grads = {"input": xt.grad.numpy()}
    grads.update({k: p.grad.numpy() for k, p in model.named_parameters()})
    return logits.detach().numpy(), grads


@pytest.mark.parametrize("train, shape", [(False, (2, 3, 67, 45)), (True, (4, 3, 64, 64))],
                         ids=["inference-bn", "training-bn"])
def test_se_resnext_gradients_match_torch_autograd(train, shape):
    so.need("timm")
    o = so.oracle(NAME, shape)
    dlogits = np.random.default_rng(5).standard_normal(o.logits.shape)
    theirs_logits, theirs = torch_grads(o, o.x, dlogits, train)
    model = build(NAME, weights={k: v for k, v in o.params.items()}, dtype="float64")
    ours = gradients(model, o.x, dlogits, train=train)
    assert set(ours.grads) == set(theirs), sorted(set(ours.grads) ^ set(theirs))[:5]
    assert any(".se.fc1." in n for n in ours.grads)
    errors = {n: rel_err(ours.grads[n], theirs[n]) for n in theirs}
    errors["logits"] = rel_err(ours.logits, theirs_logits)
    worst = max(errors, key=errors.get)
    se = max(e for n, e in errors.items() if ".se." in n)
    print(f"{NAME} {'training' if train else 'inference'} BN: {len(errors)} tensors, input "
          f"{errors['input']:.1e}, SE parameters worst {se:.1e}, worst {worst} {errors[worst]:.1e}")
    assert errors[worst] <= TOL, (worst, errors[worst])
