"""Which format a weight file is, and the one entry point to read or write any of them.

:func:`read_weights` asks the format modules in turn whether a path is theirs, by its
first bytes where they can tell and by its name where they cannot:

1. :mod:`.npz` (named ``*.npz``);
2. :mod:`.hub` (a Hugging Face-style directory, a ``*.index.json`` shard index);
3. :mod:`.torch` (a torch.save zip or legacy file, whatever its name);
4. :mod:`.safetensors` (its header, or a file named ``*.safetensors``);
5. :mod:`.paddle` otherwise (every Paddle layout; its reader says why a file is none).

:func:`write_weights` picks the format from the output's extension and the naming scheme
from :mod:`.schemes`:

==============================  ===============================================================
``.npz``                        canonical names, one array per tensor (``numpy.load``)
``.safetensors``                torch names; metadata in ``__metadata__``
``.pth`` ``.pt`` ``.bin``       torch.save's zip format, readable by
                                ``torch.load(weights_only=True)``; metadata as JSON in the
                                zip archive comment (a state dict key would break
                                ``load_state_dict(strict=True)``)
``.pdparams``                   a paddle.save-style pickle {key: ndarray}, head and SE layers
                                [in, out], with paddle.save's StructuredToParameterName@@
                                table of PaddleClas's ParamAttr names (``paddle.load`` drops
                                it); no metadata (an extra key would reach ``set_state_dict``)
==============================  ===============================================================

Every file is written atomically (temporary file + rename).
"""

from __future__ import annotations

import os
from collections import OrderedDict
from pathlib import Path

import numpy as np

from ..bounded import one_load
from ..errors import WeightsError
from ..plan import as_plan
from . import hub, npz, paddle, safetensors, torch
from .schemes import TABLE, WRITE_SCHEMES, default_scheme, file_state, param_table
from .weightfile import WeightFile

__all__ = ["read_weights", "write_weights", "format_of", "READERS", "WRITERS", "FORMATS"]

READERS = (npz, hub, torch, safetensors)          # in this order; then paddle
WRITERS = {".npz": npz, ".safetensors": safetensors, ".pth": torch, ".pt": torch,
           ".bin": torch, ".pdparams": paddle}
FORMATS = tuple(WRITERS)
# what the names in each written format are, for the error when --names disagrees
_CARRY = {npz: ".npz files carry canonical names (legacy SENet models: senet): --names {names}, not {scheme}",
          safetensors: "{ext} files carry torch names: --names {names}, not {scheme}",
          torch: "{ext} files carry torch names: --names {names}, not {scheme}",
          paddle: ".pdparams carries Paddle names: --names {names}, not {scheme}"}


def format_of(path):
    """The format module that reads ``path`` (see the module docstring)."""
    return next((fmt for fmt in READERS if fmt.detect(path)), paddle)


@one_load
def read_weights(source, ema=None) -> WeightFile:
    """The tensors of ``source`` under its own names: a path of any supported format, a
    {name: array} dict or a WeightFile (passed through). ``ema`` chooses the EMA copy of
    a torch checkpoint (see :mod:`.torch.checkpoint`)."""
    if isinstance(source, WeightFile):
        return source
    if hasattr(source, "items"):
        tensors = OrderedDict()
        for k, v in source.items():
            tensors[str(k)] = v if isinstance(v, np.ndarray) else np.asarray(v)
        return WeightFile(tensors, "dict", "<dict>", [], {})
    path = os.fspath(source)
    return format_of(path).read(path, ema=ema)


def write_weights(path, params, arch, scheme=None, metadata=None, buffers=None):
    """Write canonical ``params`` of ``arch`` (a Plan; a config is accepted too) to ``path``
    (format from the extension); ``buffers`` (canonical name -> array, e.g. a torch file's
    ``num_batches_tracked`` as :class:`~.load.LoadedWeights` keeps them) go into the torch
    formats as read.

    Returns (scheme used, why that scheme, what the metadata went into).
    """
    plan = as_plan(arch)
    config = plan.config
    ext = Path(path).suffix.lower()
    if ext not in WRITERS:
        raise WeightsError(f"output {path}: unknown extension {ext or '(none)'!r}; "
                           f"expected one of {', '.join(FORMATS)}")
    fmt = WRITERS[ext]
    why = "asked for"
    if scheme is None:
        scheme, why = default_scheme(config, ext)
    fits = [n for n in WRITE_SCHEMES if ext in TABLE[n].written_to]
    if scheme not in fits:
        names = ", ".join(fits[:-1]) + " or " + fits[-1] if len(fits) > 1 else fits[0]
        raise WeightsError(_CARRY[fmt].format(ext=ext, scheme=scheme, names=names))
    state = file_state(params, plan, scheme, buffers)
    meta = dict(metadata or {}, architecture=config.name, names=scheme)
    if fmt is safetensors:
        meta["format"] = "pt"               # what the torch world's loaders look for
    if fmt is paddle:
        return scheme, why, fmt.write(path, state, meta, table=param_table(plan, scheme))
    return scheme, why, fmt.write(path, state, meta)
