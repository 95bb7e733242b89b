"""Which naming scheme a weight file's names are written in, and what they say before the
architecture is known: each block tensor's (stage, block), the stem's kind.

The table of schemes is :mod:`.schemes`; regular expressions that *recognise* names live
there too (each scheme's ``pattern``, each layer naming's ``block``). This module only asks
them: :func:`detect_scheme` scores the names against every scheme, :func:`block_positions`
reads off the blocks, :func:`stem_kind` the stem.
"""

from __future__ import annotations

import re
from collections import OrderedDict

from ..bounded import clip_list
from ..errors import WeightsError
from .schemes import LAYER_NAMING, SCHEMES, get_scheme, is_ignored

__all__ = ["scheme_scores", "detect_scheme", "block_index", "block_positions", "stem_kind"]


def scheme_scores(names) -> "OrderedDict[str, int]":
    """How many of ``names`` look like each scheme's names."""
    names = [n for n in names if not is_ignored(n)]
    return OrderedDict((s.name, sum(1 for n in names if s.pattern.match(n))) for s in SCHEMES.values())


_GENERATED = re.compile(r"^[a-z0-9_]+_\d+\.(w|b)_\d+$")


def detect_scheme(names, fc_weight_shape=None, fc_bias_shape=None, paddle_file=False):
    """The scheme ``names`` are written in, or a WeightsError with examples.

    torch-style names are shared by canonical files (fc.weight [out, in]) and PaddleClas's
    WSL ParamAttr names (fc.weight [in, out]); the head's shape decides, and when it is
    square (or absent) the file's origin does: a Paddle file is taken as [in, out].
    """
    names = [n for n in names if not is_ignored(n)]
    if not names:
        raise WeightsError("the weights hold no tensors")
    scores = scheme_scores(names)
    best = max(scores.values())
    if best == 0:
        sample = clip_list(names[:6], 6)
        hint = ""
        # (length-capped: the pattern's two adjacent digit runs backtrack on long names)
        if sum(1 for n in names if len(n) < 200 and _GENERATED.match(n)) > len(names) // 2:
            # paddle.vision layers get names from a per-process counter (conv2d_0.w_0)
            hint = ("; these are names Paddle generated per process, which do not say which "
                    "layer a tensor belongs to: load the .pdparams written by "
                    "paddle.save(model.state_dict()) instead")
        raise WeightsError(f"unrecognised tensor names (e.g. {sample}); expected one of the "
                           f"naming schemes {', '.join(SCHEMES)} (see numpy_resnext.io.schemes){hint}")
    winners = [s for s, v in scores.items() if v == best]
    if set(winners) == {"canonical", "ppcls_wsl_param"}:
        return _torch_style(fc_weight_shape, fc_bias_shape, paddle_file)
    if len(winners) > 1:
        # e.g. a file with no BN statistics: paddle_vision and canonical look alike
        if "paddle_vision" in winners and "canonical" in winners:
            return "paddle_vision" if paddle_file else "canonical"
        raise WeightsError(f"tensor names fit several schemes equally well ({', '.join(winners)})")
    return winners[0]


def _torch_style(w_shape, b_shape, paddle_file):
    if w_shape is not None and len(w_shape) == 2 and w_shape[0] != w_shape[1]:
        if b_shape is not None and len(b_shape) == 1:
            if w_shape[0] == b_shape[0]:
                return "canonical"
            if w_shape[1] == b_shape[0]:
                return "ppcls_wsl_param"
    return "ppcls_wsl_param" if paddle_file else "canonical"


def block_index(scheme, name, stage_base=None):
    """(stage, block) of a file tensor name, 0-based, or None outside the blocks.
    ``stage_base``: the number the names give layer1, for a naming that does not fix it
    (PaddleClas's SE ParamAttr names: 2, or 4 in its 152-layer models)."""
    scheme = get_scheme(scheme)
    naming = LAYER_NAMING[scheme.layers]
    m = naming.block.match(name)
    if not m:
        return None
    base = naming.stage_base if naming.stage_base is not None else (stage_base or 0)
    stage = _index(m.group(1)) - base
    if scheme.layers == "ppcls_param":
        letter, number = m.group(2), m.group(3)
        block = _index(number) if number else ord(letter) - 97
    else:
        block = _index(m.group(2)) - naming.block_base
    return stage, block


def block_positions(scheme, names) -> list:
    """The (stage, block) of every block tensor among ``names`` (0-based); a naming whose
    first stage has no fixed number counts from the smallest one found."""
    base = None
    if LAYER_NAMING[get_scheme(scheme).layers].stage_base is None:
        raw = [p[0] for p in (block_index(scheme, n, 0) for n in names) if p is not None]
        base = min(raw, default=0)
    return [p for p in (block_index(scheme, n, base) for n in names) if p is not None]


def _index(digits: str) -> int:
    """A stage/block number; 10 or more digits read as 10**9 (far beyond any network, and
    a 5,000-digit index would otherwise cost Python's int() its digit limit)."""
    return int(digits) if len(digits) < 10 else 10 ** 9


def stem_kind(scheme, names) -> str:
    """"deep" when the names hold one of the deep stem's marker names, else "plain"."""
    markers = LAYER_NAMING[get_scheme(scheme).layers].deep_stem
    return "deep" if set(markers) & set(names) else "plain"
