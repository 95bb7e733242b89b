"""One step of training as plain functions, to audit a framework's step against.

:func:`sgd_step` is SGD with momentum and L2 weight decay written the way
``paddle.optimizer.Momentum(learning_rate, momentum, weight_decay=wd, use_nesterov=False)``
applies it (a float weight_decay is an L2Decay added to the gradient, on every trainable
tensor, BN scale and offset included; velocities start at zero):

    v <- momentum * v + (grad + wd * param)
    param <- param - lr * v

Paddle holds the momentum coefficient as a float32 attribute (0.8999999761581421 for 0.9),
for the optimizer as for BatchNorm; pass ``momentum=PADDLE_MOMENTUM`` to reproduce its steps
to float64 precision (with 0.9 they differ by ~1e-8 relative).

:func:`train_step` = forward with training-mode BN + mean softmax cross-entropy + backward
+ :func:`sgd_step` + the BN running-statistics update. By default all inputs are left
unmodified and new dicts come back; with ``inplace=True`` the step is applied to the model
(and to the velocity dict passed in), so that a training loop reads

    velocity = {}
    for x, labels in batches:
        step = train_step(model, x, labels, velocity, lr=0.1, momentum=0.9, inplace=True)

Even then no array is written into: ``model.params`` and ``velocity`` are the same dicts,
holding new arrays under the same names (an array taken from them before the step keeps
its old values).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import NamedTuple

import numpy as np

from .ops.batchnorm import PADDLE_MOMENTUM
from .errors import InputError
from .grad import backward, forward_tape
from .ops.loss import softmax_cross_entropy, softmax_cross_entropy_backward
from .params import is_trainable


def sgd_step(params, grads, velocity, lr, momentum=0.9, weight_decay=0.0):
    """One momentum-SGD update: returns (new_params, new_velocity), inputs untouched.

    params: name -> array (non-trainable tensors such as BN running statistics are copied
    through unchanged); grads: name -> gradient for every trainable tensor; velocity:
    name -> array, or None / missing names for zero (the first step).
    """
    velocity = velocity or {}
    new_params, new_velocity = OrderedDict(), OrderedDict()
    for name, p in params.items():
        if not is_trainable(name):
            new_params[name] = p.copy()
            continue
        if name not in grads:
            raise InputError(f"sgd_step: no gradient for trainable tensor {name!r}")
        g = grads[name] + weight_decay * p                               # L2 decay enters the gradient
        v = momentum * velocity[name] + g if name in velocity else g.copy()
        new_velocity[name] = v
        new_params[name] = p - lr * v
    return new_params, new_velocity


class StepResult(NamedTuple):
    params: OrderedDict     # every tensor after the step (running statistics updated)
    velocity: OrderedDict
    loss: float             # the loss before the update
    logits: np.ndarray
    grads: OrderedDict      # the gradients the update used ("input" included)


def train_step(model, x, labels, velocity=None, lr=0.1, momentum=0.9, weight_decay=0.0,
               bn_momentum=PADDLE_MOMENTUM, inplace=False) -> StepResult:
    """Forward (BN with batch statistics), softmax cross-entropy (mean over the batch),
    backward, momentum SGD, running-statistics update.

    inplace=False (default): ``model`` and ``velocity`` are not modified; build a new model
    from ``result.params`` (``ResNeXt(model.plan, result.params, model.dtype)``) and pass
    ``result.velocity`` to take the next step.
    inplace=True: the model's parameters and running statistics become the stepped ones
    (``model.params`` is updated, same dict, new arrays) and ``velocity``, if a dict is
    given, is updated the same way; the next step just calls again with the same objects.
    The numbers are identical either way.
    """
    logits, tape = forward_tape(model, x, train=True, momentum=bn_momentum)
    loss, probs = softmax_cross_entropy(logits, labels)
    grads = backward(model, tape, softmax_cross_entropy_backward(probs, np.asarray(labels)))
    params, new_velocity = sgd_step(model.params, grads, velocity, lr, momentum, weight_decay)
    params.update(tape.running)
    if inplace:
        model.params.update(params)          # every name already there: the order is kept
        if velocity is not None:
            velocity.update(new_velocity)
        params = model.params
    return StepResult(params, new_velocity, float(loss), logits, grads)
