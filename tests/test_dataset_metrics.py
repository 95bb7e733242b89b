"""compare-set's measures on hand-made logits (NumPy only: these run in every lane)."""

import math

import numpy as np
import pytest

from numpy_resnext.dataset.metrics import DEFAULTS, aggregate, defaults, per_image
from numpy_resnext.errors import InputError


def _softmax(z):
    e = [math.exp(v) for v in z]
    return [v / sum(e) for v in e]


def test_each_measure_by_hand():
    r = np.array([[1.0, 2.0, 3.0, -1.0, 0.5, 0.0]])
    c = np.array([[1.0, 2.0, 3.3, -1.0, 0.5, 0.2]])
    m = per_image(r, c)
    assert m["max_rel"][0] == pytest.approx(0.3 / 3.0, rel=1e-14)
    dot, nr, nc = (float(np.dot(a, b)) for a, b in ((r[0], c[0]), (r[0], r[0]), (c[0], c[0])))
    assert m["cosine"][0] == pytest.approx(dot / math.sqrt(nr * nc), rel=1e-14)
    assert m["sqnr_db"][0] == pytest.approx(20 * math.log10(math.sqrt(nr) / math.sqrt(0.09 + 0.04)), rel=1e-12)
    p, q = _softmax(r[0]), _softmax(c[0])
    assert m["kl"][0] == pytest.approx(sum(a * math.log(a / b) for a, b in zip(p, q)), rel=1e-10)
    assert m["top1_agree"][0] and m["top5_has_ref_top1"][0] and m["top1_ref"][0] == 2


def test_top1_top5_and_non_finite_rows():
    r = np.array([[5.0, 4, 3, 2, 1, 0, -1],
                  [5.0, 4, 3, 2, 1, 0, -1],
                  [5.0, 4, 3, 2, 1, 0, -1]])
    c = np.array([[4.0, 5, 3, 2, 1, 0, -1],       # top-1 swapped, ref's top-1 in the top-5
                  [0.0, 4, 3, 2, 5, 6, 1],        # ref's class 0 is sixth of seven
                  [5.0, np.nan, 3, 2, 1, 0, -1]])
    m = per_image(r, c)
    assert list(m["top1_agree"]) == [False, False, False]
    assert list(m["top5_has_ref_top1"]) == [True, False, False]
    assert list(m["top1_cand"]) == [1, 5, -1]
    assert math.isinf(m["max_rel"][2]) and math.isinf(m["kl"][2]) and np.isnan(m["cosine"][2])
    # |r|^2 = 25+16+9+4+1+0+1 = 56, |r - c|^2 = 1 + 1
    assert m["sqnr_db"][0] == pytest.approx(20 * math.log10(math.sqrt(56) / math.sqrt(2)))


def test_identical_logits():
    r = np.random.default_rng(0).standard_normal((4, 10))
    m = per_image(r, r.copy())
    assert (m["max_rel"] == 0).all() and (m["sqnr_db"] == np.inf).all() and np.allclose(m["kl"], 0)


def test_aggregate_quantiles_accuracy_and_verdict():
    rng = np.random.default_rng(1)
    r = rng.standard_normal((4, 10)) * 3
    scale = np.abs(r).max(axis=1)
    c = r.copy()
    for k, rel in enumerate([1e-5, 2e-5, 3e-5, 4e-5]):                   # one element moved per image
        c[k, 0] += rel * scale[k]
    labels = np.array([r[0].argmax(), r[1].argmax(), (r[2].argmax() + 1) % 10, -1])
    per = per_image(r, c)
    report = aggregate(per, ["a", "b", "c", "d"], labels, rtol=1e-4, min_top1=1.0)
    q = report["max_rel"]
    assert q["p50"] == pytest.approx(3e-5) and q["max"] == pytest.approx(4e-5) and q["p99"] == pytest.approx(4e-5)
    assert [w["id"] for w in report["worst"]] == ["d", "c", "b", "a"]
    assert report["accuracy"] == {"labelled": 3, "reference": pytest.approx(2 / 3),
                                  "candidate": pytest.approx(2 / 3), "ratio": pytest.approx(1.0),
                                  "meets_99_percent": True}
    assert report["pass"]
    assert not aggregate(per, list("abcd"), labels, rtol=3.5e-5, min_top1=1.0)["pass"]
    failing = aggregate(per, list("abcd"), labels, rtol=1e-4, min_top1=1.0, min_accuracy_ratio=1.01)
    assert failing["checks"] == {"every image within rtol": True, "top-1 agreement": True,
                                 "accuracy ratio": False}


def test_defaults_follow_the_tolerance_table():
    assert DEFAULTS["float64"]["rtol"] == 1e-10 and DEFAULTS["float32"]["rtol"] == 1e-4
    assert DEFAULTS["float16"]["rtol"] == 3e-2 and DEFAULTS["bfloat16"]["rtol"] == 5e-2
    with pytest.raises(InputError, match="no default thresholds for a int8 candidate"):
        defaults("int8")
    with pytest.raises(InputError, match="logits .* do not match"):
        per_image(np.zeros((2, 3)), np.zeros((3, 3)))
