"""What a comparison covered: the kind of every reference tensor, what kinds the candidate
lacks, which of them a capture cannot hold, and candidates overwritten in place.

A PASS over the logits alone, or over the 127 tensors a feature extractor happened to
return, must not read like a PASS over all 175. :func:`tensor_kinds` names each reference
tensor's kind from the layer plan the reference manifest records (or, without a manifest,
from its name), so a report can say "not compared: 16 residual adds, 32 ReLUs".

A capture made with module forward hooks cannot hold two kinds at all: the residual adds
(``out += identity`` is no module) and the input (no module's output). ``--strict`` excuses
a kind in :data:`UNCAPTURABLE` when the candidate holds *none* of it, and says so; a
candidate holding some adds but not others fails as before.

A forward hook that keeps the output without copying it sees the value a later in-place
op leaves there: torchvision's and timm's ReLUs (``inplace=True``) overwrite the BN output
they read, ``out += identity`` overwrites bn3's. An FX feature extractor returns the same
overwritten tensors unless the ReLUs are made out-of-place first. :func:`overwritten_note` recognises a
failing candidate that equals a later reference tensor and says so.
"""

from __future__ import annotations

import re

from ..archs import ArchConfig
from ..errors import ArchitectureError, printable
from ..plan import SE, ConvBN, Head, Pool, layer_plan

INPUT, ADD = "input", "residual add"
UNCAPTURABLE = (ADD, INPUT)
# (pattern, kind) for references without a manifest, tried in order
_BY_NAME = ((r"^input$", INPUT), (r"^conv1\.\d$", "stem tensor"), (r"\.add$", ADD), (r"^layer\d+\.\d+$", "block output"),
            (r"\.downsample\.\d+$", "shortcut tensor"), (r"(^|\.)relu\d*$", "ReLU"),
            (r"(^|\.)bn\d*$", "BatchNorm"), (r"(^|\.)conv\d*$", "convolution"), (r"^fc$", "logits"),
            (r"^avgpool$", "global average pool"),
            (r"\.se(_module)?(\.(pool|fc\d|act|gate))?$", "squeeze-and-excitation"), (r"pool$", "pool"))
NAME_WIDTH = 120                 # characters of a name from a file in a message
LOOK_AHEAD = 8                   # later reference tensors an overwritten candidate is tried against


def plan_kinds(plan) -> dict:
    """{emitted name: kind} for every tensor a :class:`~numpy_resnext.plan.Plan` emits, and
    the input."""
    kinds = {INPUT: INPUT}
    for layer in plan.all_layers():
        if isinstance(layer, ConvBN):
            if layer.pool is not None:
                kinds[layer.pool.name] = "pool"
            kinds[layer.name], kinds[layer.bn] = "convolution", "BatchNorm"
            if layer.relu:
                kinds[layer.relu] = "ReLU"
        elif isinstance(layer, Pool):
            kinds[layer.name] = "pool"
        elif isinstance(layer, Head):
            kinds[layer.pool], kinds[layer.fc] = "global average pool", "logits"
        elif isinstance(layer, SE):
            kinds.update(dict.fromkeys(layer.emits, "squeeze-and-excitation"))
    for block in plan.blocks:
        kinds[block.add], kinds[block.name] = ADD, "block output"
    return kinds


def tensor_kinds(names, manifest=None) -> dict:
    """{name: kind} for reference tensor ``names``: from the plan of the architecture the
    manifest records, else from the names themselves ("tensor" when a name says nothing)."""
    kinds = {}
    arch = manifest.get("arch") if isinstance(manifest, dict) else None
    config = arch.get("config") if isinstance(arch, dict) else None
    depths = config.get("depths") if isinstance(config, dict) else None
    # a plan of more blocks than the reference has tensors is no plan of this reference (and
    # a file's manifest could ask for millions of blocks): the names decide then
    if isinstance(depths, list) and all(type(d) is int for d in depths) \
            and sum(depths) <= len(names):
        try:
            kinds = plan_kinds(layer_plan(ArchConfig.from_dict(config)))
        except (TypeError, ValueError, ArchitectureError):
            kinds = {}
    out = {}
    for name in names:
        kind = kinds.get(name)
        if kind is None:
            kind = next((k for pattern, k in _BY_NAME if re.search(pattern, name)), "tensor")
        out[name] = kind
    return out


def plural(kind: str, n: int) -> str:
    """'16 residual adds', '1 input', '2 logits'."""
    return f"{n} {kind}" if n == 1 or kind.endswith("s") else f"{n} {kind}s"


def by_kind(rows, kinds) -> list:
    """[(kind, [names])] of ``rows`` in order of first appearance."""
    groups = {}
    for r in rows:
        groups.setdefault(kinds.get(r.name, "tensor"), []).append(r.name)
    return list(groups.items())


def describe(groups, examples=2) -> str:
    """'16 residual adds (layer1.0.add, layer1.1.add, ...), 1 input' (names from files
    escaped and cut: :func:`numpy_resnext.errors.printable`)."""
    parts = []
    for kind, names in groups:
        shown = (", ".join(printable(n, NAME_WIDTH) for n in names[:examples])
                 + (", ..." if len(names) > examples else ""))
        parts.append(f"{plural(kind, len(names))} ({shown})")
    return ", ".join(parts)


def excused_kinds(rows, kinds, strict) -> set:
    """The kinds of :data:`UNCAPTURABLE` the candidate holds none of (excused by --strict)."""
    if not strict:
        return set()
    held = {kinds.get(r.name) for r in rows if r.status != "missing"}
    return {k for k in UNCAPTURABLE if k not in held}


def overwritten_note(position, reference, candidate, compare_tensor, rtol, atol, names=None) -> str:
    """For a failing candidate: the later reference tensor it equals, if any, as a note
    ("" when none): the sign of a hook that kept a view an in-place op then overwrote
    (``names``: ``list(reference)``, made once by a caller that asks for every row)."""
    names = list(reference) if names is None else names
    for later in names[position + 1:position + 1 + LOOK_AHEAD]:
        ref = reference[later]
        if tuple(ref.shape) != tuple(candidate.shape):
            continue
        if compare_tensor(later, ref, candidate, rtol, atol).status == "pass":
            return (f"the candidate equals the reference's later {printable(repr(later), NAME_WIDTH)}: "
                    "it was captured "
                    "without a copy and overwritten in place (in-place ReLU, out += identity); "
                    "copy at capture time (a hook: output.detach().clone(); an FX feature "
                    "extractor: set every ReLU's inplace=False first) or use numpy_resnext.torch_capture")
    return ""
