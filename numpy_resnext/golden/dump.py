"""The dump: run a model and keep its named intermediates, with a manifest."""

from __future__ import annotations

from collections import OrderedDict

from .._select import patterns
from ..shapes import check_compute
from .manifest import INPUT_NAME, make_manifest


def golden_dump(model, x, keep=None, progress=None, allow_nonfinite=False):
    """Run ``model`` on ``x`` and keep every named intermediate.

    model:    a :class:`~numpy_resnext.model.ResNeXt`.
    x:        (N, 3, H, W) array of the model's dtype.
    keep:     None (every tensor) or names / glob patterns ("layer4.*", "fc"), as for
              ``model.forward(keep=...)``. The input is always kept, under ``"input"``, so
              a dump is self-contained.
    progress: optional ``progress(done, total, note)``, called after the stem, each block
              and the head.
    allow_nonfinite: dump NaN or infinite inputs too (refused by default).
    The memory the dump needs is estimated first
    (:func:`numpy_resnext.shapes.memory_estimate`); BudgetError when it does not fit.
    Returns ``(tensors, manifest)``: an OrderedDict name -> array in execution order
    (the input first) and the manifest dict (see :func:`make_manifest`); the manifest's
    execution order lists every name the forward emits, kept or not.
    """
    chosen = patterns(keep)
    x = model.check_input(x, allow_nonfinite)
    check_compute(model.plan, x.shape, model.dtype, "golden", chosen)
    logits, kept = model.forward(x, keep=True if chosen is None else chosen, progress=progress,
                                 allow_nonfinite=allow_nonfinite)
    tensors = OrderedDict([(INPUT_NAME, x.copy())])
    tensors.update(kept)                              # filled in execution order
    return tensors, make_manifest(model, tensors, model.plan.names(), chosen)
