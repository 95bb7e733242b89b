"""The SE-ResNeXt oracles (tests/_se_oracle.py) capture what their names say.

For a timm model, a legacy SENet model and a PaddleClas model, every SE block's captured
tensors are recomputed in NumPy from the ones before them and the state_dict: the squeeze is
the mean of the SE input, the reduce and expand are the FCs with their biases, the gate is
the sigmoid of the expand, the scaled branch is the input times the gate, the block output
is the ReLU of the add. A hook on the wrong module, a tensor overwritten in place after it
was captured, or a weight read in the wrong layout fails here. Then the PaddleClas and timm
SE-ResNeXt-50, given the same drawn weights and Paddle's BatchNorm epsilon, must agree.

Skips when timm (with torch) or Paddle with the PaddleClas model files is not installed.
"""

import numpy as np
import pytest

import _se_oracle as so
from _arrays import rel_err

SMALL = (2, 3, 37, 35)                      # odd, small: a few seconds per model
PADDLE_EPS = float(np.float32(1e-5))


_need = so.need


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@pytest.mark.parametrize("name", ["seresnext26t_32x4d", "legacy_seresnext26_32x4d", "SE_ResNeXt50_vd_32x4d"])
def test_every_se_tensor_is_what_its_role_says(name):
    _need(so.MODELS[name][0])
    o = so.oracle(name, SMALL)
    assert np.isfinite(o.logits).all() and o.logits.shape == (2, 1000)
    assert o.se and all(tuple(r) == so.SE_ROLES for r in o.se.values())
    for block, roles in o.se.items():
        t = {role: o.tensors[key] for role, key in roles.items()}
        n, c = t["input"].shape[:2]
        w1, b1 = so.fc_matrix(o, roles["reduce"]), o.params[f"{roles['reduce']}.bias"]
        w2, b2 = so.fc_matrix(o, roles["expand"]), o.params[f"{roles['expand']}.bias"]
        pool = t["input"].mean(axis=(2, 3))                                   # N, C
        reduce = pool @ w1.T + b1                                             # N, r
        expand = t["relu"].reshape(n, -1) @ w2.T + b2                         # N, C
        checks = {
            "pool": (t["pool"].reshape(n, c), pool, 1e-13),
            "reduce": (t["reduce"].reshape(n, -1), reduce, 1e-12),
            "relu": (t["relu"].reshape(n, -1), np.maximum(t["reduce"].reshape(n, -1), 0), 0.0),
            "expand": (t["expand"].reshape(n, c), expand, 1e-12),
            "gate": (t["gate"].reshape(n, c), _sigmoid(t["expand"].reshape(n, c)), 1e-15),
            "scale": (t["scale"], t["input"] * t["gate"].reshape(n, c, 1, 1), 1e-15),
            "out": (t["out"], np.maximum(t["add"], 0), 0.0),
        }
        for role, (got, want, tol) in checks.items():
            assert rel_err(got, want) <= tol, (name, block, role, rel_err(got, want))
        assert rel_err(t["add"], t["scale"]) > 0.01, (block, "the add equals the scaled branch")
        gate = t["gate"]
        assert ((gate > 0.05) & (gate < 0.95)).mean() > 0.25, (block, "gates saturated")


def test_paddleclas_and_timm_se_resnext50_agree_given_the_same_weights():
    _need("timm")
    _need("paddle")
    p = so.oracle("SE_ResNeXt50_32x4d", SMALL)
    t = so.oracle("seresnext50_32x4d", SMALL, bn_eps=PADDLE_EPS)
    assert rel_err(p.logits, t.logits) <= 1e-12
    errors = so.twin_errors(p, t)
    assert len(errors) == 16 * len(so.SE_ROLES)
    worst = max(errors, key=errors.get)
    assert errors[worst] <= 1e-12, (worst, errors[worst])
    # with each framework's own epsilon they differ, by far more than the float64 tolerance
    t_own = so.oracle("seresnext50_32x4d", SMALL)
    assert rel_err(p.logits, t_own.logits) > 1e-10
