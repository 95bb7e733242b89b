"""numpy_resnext/paper/minimal.py, the one-file ResNeXt, against the engine: the same logits
and the same gradient for the input and every parameter, in float64, on tiny networks with
both stems it supports, in inference and in training mode; and it stays one short file
that imports NumPy only."""

import ast
from pathlib import Path

import numpy as np
import pytest

import numpy_resnext as nrx
from numpy_resnext.grad import gradients
from numpy_resnext.paper import minimal

from _arrays import assert_close

SOURCE = Path(minimal.__file__)
TINY = {"plain": nrx.custom(depths=(2, 1), cardinality=4, base_width=2, stem_width=8, num_classes=5),
        "cifar": nrx.custom(depths=(1, 2, 1), cardinality=2, base_width=3, stem="cifar", stem_width=8,
                            num_classes=4)}


@pytest.mark.parametrize("stem", sorted(TINY))
@pytest.mark.parametrize("train", [False, True])
def test_minimal_equals_the_engine(stem, train):
    config = TINY[stem]
    model = nrx.build(config, seed=3, dtype="float64")
    rng = np.random.default_rng(7)
    x = rng.standard_normal((3, 3, 19, 17))                      # odd sizes: every stride rounds
    labels = rng.integers(0, config.num_classes, 3)
    logits, caches = minimal.forward(model.params, x, config, train=train)
    loss, dlogits = minimal.softmax_cross_entropy(logits, labels)
    mine = minimal.backward(dlogits, caches)
    engine = gradients(model, x, dlogits, train=train)
    assert_close(logits, engine.logits, rtol=1e-12, what="logits")
    assert set(mine) == set(engine.grads)                        # "input" and every trainable tensor
    for name, g in engine.grads.items():
        assert_close(mine[name], g, rtol=1e-12, what=name)     # measured: at most 1e-14
    ref, _ = nrx.softmax_cross_entropy(engine.logits, labels)
    assert abs(loss - ref) <= 1e-12 * abs(ref)


def test_a_wrong_op_is_caught():
    """The comparison can fail: a BN backward without the batch-mean terms differs."""
    config = TINY["cifar"]
    model = nrx.build(config, seed=3, dtype="float64")
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8))
    dlogits = np.random.default_rng(2).standard_normal((2, config.num_classes))
    logits, caches = minimal.forward(model.params, x, config, train=True)
    broken = [(k, c) for k, c in caches]
    kind, (conv, c1, (xhat, inv_std, w, name, train), mask) = broken[0]
    broken[0] = (kind, (conv, c1, (xhat, inv_std, w, name, False), mask))    # inference backward
    wrong = minimal.backward(dlogits, broken)
    right = gradients(model, x, dlogits, train=True).grads
    with pytest.raises(AssertionError):
        assert_close(wrong["conv1.weight"], right["conv1.weight"], rtol=1e-6)


def test_unsupported_stem_says_so():
    config = nrx.custom(depths=(1,), stem="deep", num_classes=3)
    model = nrx.build(config, seed=0, dtype="float64")
    with pytest.raises(ValueError, match="plain and cifar stems"):
        minimal.forward(model.params, np.zeros((1, 3, 16, 16)), config)


def test_one_short_file_numpy_only():
    text = SOURCE.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    imports = {a.name for node in ast.walk(ast.parse(text)) if isinstance(node, ast.Import) for a in node.names}
    froms = [node for node in ast.walk(ast.parse(text)) if isinstance(node, ast.ImportFrom)]
    assert imports == {"numpy"} and not froms
    for banned in ("channels_last", "rows(", "out=", "as_strided"):         # no speed tricks
        assert banned not in text, banned
