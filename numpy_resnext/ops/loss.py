"""Softmax cross-entropy, the training loss: mean over the batch of -log softmax(z)[label].

Stable form: log softmax(z) = z - max(z) - log(sum(exp(z - max(z)))), so no exp overflows.
Its gradient with respect to the logits is (softmax(z) - onehot(label)) / N.
"""

from __future__ import annotations

import numpy as np

from .._checks import as_float_array, check_ndim
from ..errors import InputError


def _check_labels(logits, labels):
    logits = as_float_array(logits, "softmax_cross_entropy logits")
    check_ndim(logits, 2, "(N, classes)", "softmax_cross_entropy logits")
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu" or labels.shape != (logits.shape[0],):
        raise InputError(f"softmax_cross_entropy: labels should be {logits.shape[0]} integers, "
                         f"found shape {labels.shape} dtype {labels.dtype}")
    if labels.size and (labels.min() < 0 or labels.max() >= logits.shape[1]):
        raise InputError(f"softmax_cross_entropy: labels must lie in [0, {logits.shape[1]}), "
                         f"found {labels.min()}..{labels.max()}")
    return logits, labels


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities over the last axis, in float64; the max is subtracted first so large
    logits cannot overflow exp."""
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def softmax_cross_entropy(logits, labels):
    """Mean cross-entropy of (N, classes) logits and (N,) integer labels: (loss, probs)."""
    logits, labels = _check_labels(logits, labels)
    z = logits - logits.max(axis=1, keepdims=True)                       # N, classes
    logsum = np.log(np.exp(z).sum(axis=1, keepdims=True))                # N, 1
    logp = z - logsum
    N = logits.shape[0]
    loss = -logp[np.arange(N), labels].mean()
    return loss, np.exp(logp)


def softmax_cross_entropy_backward(probs, labels):
    """Gradient of the mean loss for the logits: (probs - onehot(labels)) / N."""
    N = probs.shape[0]
    d = probs.copy()
    d[np.arange(N), labels] -= 1
    return d / N
