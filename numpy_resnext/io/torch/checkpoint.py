"""Finding the state dict inside the checkpoints people actually have.

A file from a training run rarely holds the bare ``model.state_dict()``:

=================================================  =========================================
``{'state_dict': sd, 'epoch': .., 'optimizer': ..}``  timm / ImageNet-example ``checkpoint.pth.tar``,
                                                   Lightning ``.ckpt`` (keys under ``model.``)
``{'model': sd, ...}``                             DeiT / detectron-style / many research repos
``{'state_dict_ema': sd}``, ``{'model_ema': sd}``  timm / DeiT exponential-moving-average copy
``module.`` prefixed keys                          saved from ``nn.DataParallel`` / DDP
``_orig_mod.`` prefixed keys                       saved from ``torch.compile``
=================================================  =========================================

:func:`select_state_dict` picks the state dict (the EMA copy when ``ema=True``; when
``ema`` is None the plain one, or the EMA copy if it is the only one), strips a prefix
every key shares, and says what it did. Entries beside the state dict (epoch, optimizer
state, hyper-parameters) are named in the notes and never read: their tensors stay
unmaterialised references.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from ...bounded import clip_list, short_repr
from ...errors import WeightsError
from ..unpickle import TensorRef
from ..weightfile import strip_prefixes

PLAIN_KEYS = ("state_dict", "model", "model_state_dict", "model_state", "net", "network",
              "weights", "params")
EMA_KEYS = ("state_dict_ema", "model_ema", "ema_state_dict", "ema", "model_ema_state_dict")

__all__ = ["select_state_dict", "is_tensor", "PLAIN_KEYS", "EMA_KEYS"]


def is_tensor(value) -> bool:
    return isinstance(value, (TensorRef, np.ndarray))


def _tensor_share(d) -> float:
    if not isinstance(d, dict) or not d:
        return 0.0
    return sum(1 for v in d.values() if is_tensor(v)) / len(d)


def _describe_keys(d, skip) -> str:
    """The keys for a message, each cut before repr, at most ten of them."""
    return clip_list([short_repr(k, 60) for k in d if k != skip]) or "(none)"


def select_state_dict(obj, ema=None, source="<checkpoint>", strip=True):
    """({name: tensor}, notes) from an unpickled checkpoint; WeightsError when none is found.

    ema: None (the plain weights; the EMA copy only when it is all there is), True (the
         EMA copy, an error without one) or False (the plain weights, never the EMA copy).
    strip: remove wrapper prefixes (``module.``, ``_orig_mod.``, ...); False for a shard, whose
         names are those of its index (the index strips once, over all its shards).
    """
    notes = []
    for _ in range(3):                       # {'model': {'state_dict': ...}} at most
        if not isinstance(obj, dict):
            raise WeightsError(f"{source}: holds a {type(obj).__name__}, expected a state "
                               "dict {name: tensor} or a checkpoint dict around one")
        if _tensor_share(obj) >= 0.5:
            if ema is True and not notes:
                raise WeightsError(f"{source}: a bare state dict, no EMA copy to load "
                                   f"(looked for {', '.join(EMA_KEYS)})")
            break
        plain = [k for k in PLAIN_KEYS if _tensor_share(obj.get(k)) > 0
                 or isinstance(obj.get(k), dict)]
        averaged = [k for k in EMA_KEYS if isinstance(obj.get(k), dict)]
        if ema is True and not averaged:
            raise WeightsError(f"{source}: no EMA copy to load (looked for "
                               f"{', '.join(EMA_KEYS)}); the file holds: {_describe_keys(obj, None)}")
        if ema is True or (ema is None and not plain and averaged):
            key = averaged[0]
            why = "asked for" if ema is True else "the only weights in the file"
            notes.append(f"weights taken from the EMA copy {key!r} ({why})")
        elif plain:
            key = plain[0]
            extra = (f"; EMA copy {averaged[0]!r} not used (ema=True chooses it)"
                     if averaged else "")
            notes.append(f"weights taken from {key!r}{extra}")
        else:
            raise WeightsError(f"{source}: no state dict found: the top-level keys are "
                               f"{_describe_keys(obj, None)[:300]}; expected tensors or one "
                               f"of {', '.join(PLAIN_KEYS + EMA_KEYS)}")
        others = _describe_keys(obj, key)
        if others != "(none)":
            notes.append(f"other entries not read: {others[:300]}")
        obj = obj[key]
    else:
        raise WeightsError(f"{source}: state dict nested too deep")
    tensors = OrderedDict((k, v) for k, v in obj.items() if is_tensor(v))
    bad_keys = [k for k in tensors if not isinstance(k, str)]
    if bad_keys:
        raise WeightsError(f"{source}: state dict keys must be strings, found {clip_list([short_repr(k, 60) for k in bad_keys], 5)}")
    rest = [k for k in obj if not is_tensor(obj[k])]
    if rest:
        notes.append(f"{len(rest)} non-tensor entr{'y' if len(rest) == 1 else 'ies'} in the "
                     f"state dict not read: {clip_list([short_repr(k, 60) for k in rest], 8)}")
    if strip:
        tensors, stripped = strip_prefixes(tensors)
        notes.extend(stripped)
    return tensors, notes
