"""The gradient-check harness of the exercises: compare an analytic gradient with centred
finite differences, and one array with another, by one error measure.

    err = max |a - b| / max |b|          (the worst entry against the reference's largest)

The finite-difference step is relative, h = h_rel x the root mean square of the array being
perturbed: a fixed step is too large for small weights and too small for large ones
(docs/backward.md, section 11, says why). A centred difference costs two evaluations of the
loss per entry, so large arrays are checked at a sample of entries, and all at once along a
random direction (:func:`directional_check`).
"""

import numpy as np


def rel_error(actual, expected):
    """max |actual - expected| / max |expected| (0 when both are all zeros)."""
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    if actual.shape != expected.shape:
        raise AssertionError(f"shape {actual.shape}, expected {expected.shape}")
    scale = np.abs(expected).max(initial=0.0)
    diff = np.abs(actual - expected).max(initial=0.0)
    return float(diff / scale) if scale > 0 else float(diff)


def step(x, h_rel=1e-6):
    """The finite-difference step for array x: h_rel times its root mean square."""
    rms = float(np.sqrt(np.mean(np.square(x)))) if x.size else 0.0
    return h_rel * (rms if rms > 0 else 1.0)


def numeric_gradient(loss, x, h_rel=1e-6, samples=None, seed=0):
    """d loss / dx by centred differences (x itself is never written).

    loss: a function of an array shaped like x, returning a float. samples: check only that
    many entries, drawn at random (seeded); returns (indices, values) then, else the full
    gradient array."""
    x = np.array(x, dtype=np.float64)
    h = step(x, h_rel)
    indices = list(np.ndindex(x.shape))
    if samples is not None and samples < len(indices):
        pick = np.random.default_rng(seed).choice(len(indices), samples, replace=False)
        indices = [indices[i] for i in pick]
    values = []
    for i in indices:
        nudge = np.zeros_like(x)
        nudge[i] = h                                            # one entry moved, x itself kept
        values.append((loss(x + nudge) - loss(x - nudge)) / (2 * h))
    if samples is None:
        return np.array(values).reshape(x.shape)
    return indices, np.array(values)


def gradient_error(analytic, loss, x, samples=30, h_rel=1e-6, seed=0):
    """The error of ``analytic`` (d loss / dx, shaped like x) at sampled entries, measured
    against the largest analytic entry (the sampled numeric ones may all be small)."""
    analytic = np.asarray(analytic, np.float64)
    if analytic.shape != np.shape(x):
        raise AssertionError(f"gradient shape {analytic.shape}, expected {np.shape(x)}")
    indices, numeric = numeric_gradient(loss, x, h_rel, samples, seed)
    sampled = np.array([analytic[i] for i in indices])
    scale = max(float(np.abs(analytic).max(initial=0.0)), float(np.abs(numeric).max(initial=0.0)))
    return float(np.abs(sampled - numeric).max(initial=0.0)) / (scale or 1.0)


def directional_check(analytic, loss, x, t=1e-6, seed=0):
    """Error of the analytic gradient along one random direction v = x * r (r standard
    normal): (loss(x + t v) - loss(x - t v)) / 2t against the sum of analytic * v."""
    x = np.asarray(x, np.float64)
    v = x * np.random.default_rng(seed).standard_normal(x.shape)
    numeric = (loss(x + t * v) - loss(x - t * v)) / (2 * t)
    exact = float(np.sum(np.asarray(analytic, np.float64) * v))
    return abs(numeric - exact) / max(abs(exact), 1e-300)
