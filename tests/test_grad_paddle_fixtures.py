"""The backward pass against a committed recording of Paddle 3.3.1's autograd (float64).

reference/fixtures/grads/tiny.npz (made by reference/paddle_grads.py tiny): paddle.vision's
ResNet classes cut to one stage of two ResNeXt blocks (cardinality 2, width 4), random BN
statistics, input 2x3x16x16. Gradients for the input and all 27 trainable tensors in BN
inference and training mode, running statistics, and two momentum-SGD steps with weight
decay (the second step is where the momentum coefficient enters).
"""

import numpy as np
import pytest

import numpy_resnext as nrx
from _grad_oracle import compare, load, rel_err
from numpy_resnext.grad import gradients
from numpy_resnext.train import train_step

TINY = nrx.custom(depths=(2,), cardinality=2, base_width=4, num_classes=5)


@pytest.fixture(scope="module")
def tiny(fixtures_dir):
    path = fixtures_dir / "grads" / "tiny.npz"
    if not path.exists():
        pytest.fail(f"{path} is missing: run `python reference/paddle_grads.py tiny --out {path}`")
    return load(path)


def test_recording_is_what_it_claims(tiny):
    rec, meta, params = tiny
    assert meta["paddle"] == "3.3.1" and meta["model"] == "tiny" and meta["steps"] == 2
    assert all(v.dtype == np.float64 for k, v in rec.items() if k != "labels")
    assert set(params) == set(nrx.param_shapes(TINY))


def test_gradients_running_stats_and_sgd_match_paddle(tiny):
    report = compare(*tiny, TINY, tol=1e-10, sgd_tol=1e-10)
    assert set(report) == {"eval/logits", "eval/grads", "train/logits", "train/grads",
                           "train/running", "sgd/params"}


def test_the_tolerance_can_fail(tiny):
    """Paddle's float32 momentum is visible: the nominal 0.9 misses the running stats."""
    rec, meta, params = tiny
    model = nrx.build(TINY, weights=params, dtype="float64")
    g = gradients(model, rec["x"], rec["dlogits"], train=True, momentum=0.9)
    errs = [rel_err(g.running[n], rec[f"train/running/{n}"]) for n in g.running]
    assert max(errs) > 1e-8
    # and a gradient that is wrong by a sign in one tensor is caught
    g = gradients(model, rec["x"], rec["dlogits"], train=False)
    assert rel_err(-g.grads["layer1.1.conv2.weight"], rec["eval/grad/layer1.1.conv2.weight"]) > 1


def test_train_step_leaves_the_model_alone(tiny):
    rec, meta, params = tiny
    model = nrx.build(TINY, weights=params, dtype="float64")
    before = {k: v.copy() for k, v in model.params.items()}
    x = rec["x"].copy()
    train_step(model, x, rec["labels"], lr=0.1, weight_decay=1e-3)
    assert all(np.array_equal(before[k], model.params[k]) for k in before)
    assert np.array_equal(x, rec["x"])
