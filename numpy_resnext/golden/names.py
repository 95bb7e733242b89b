"""Name maps: a candidate's tensor names (torch module names, FX node names, Paddle layer
names) onto the names the forward pass emits.

A map is a JSON object {candidate name or pattern: reference name, or null to skip}. Beyond
plain entries (see :class:`NameMap`):

- ``"@DIALECT": {"#when": PATTERN, ...entries}``: entries used, before the others, when any
  candidate name matches PATTERN. torchvision's FX node names need one: there
  ``layer1.0.relu`` is the first ReLU, while a hook capture's ``layer1.0.relu`` (one value
  kept per module) is any of the three calls; ``layer1.0.relu_1`` is FX's mark.
- ``{last}`` in a reference name: the last block of that stage in the reference
  (``"layer*": "layer*.{last}"`` maps timm's stage outputs ``layer1`` ... to ``layer1.2``
  ...; the map needs no depths).
- Two candidate tensors mapped to one reference name are fine when they hold the same values
  (a stage output and its last block, a pooled tensor and its flattened copy): the second is
  listed as a duplicate. Different values are an error.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..bounded import StarPattern, expect, load_json, short_repr
from ..errors import FormatError, InputError

MAPS_DIR = Path(__file__).resolve().parent.parent / "maps"
SHIPPED_MAPS = ("torchvision", "timm", "senet", "paddle.vision")


@dataclass
class NameMap:
    """Candidate name -> canonical name (or None: ignore the tensor).

    Keys are exact names or patterns in which ``*`` stands for one or more characters other
    than ``.`` (:class:`numpy_resnext.bounded.StarPattern`, matched without backtracking);
    each ``*`` of the value is replaced, in order, by what the key's ``*`` matched. Exact
    keys win over patterns; patterns are tried in file order; a name that matches nothing
    is kept unchanged. Keys starting with ``#`` are comments.
    """

    exact: dict = field(default_factory=dict)
    patterns: list = field(default_factory=list)     # (StarPattern, value, key)
    source: str = "identity"
    dialects: list = field(default_factory=list)     # (name, StarPattern of #when, NameMap)

    def translate(self, name, active=()):
        """The reference name for candidate ``name`` (None: skip it), trying the entries of
        the ``active`` dialects first."""
        for _, _, sub in self.dialects:
            if sub.source in active:
                value = sub.translate(name)
                if value is not name:
                    return value
        if name in self.exact:
            return self.exact[name]
        for pattern, value, _ in self.patterns:
            groups = pattern.match(name)
            if groups is not None:
                if value is None:
                    return None
                if "*" not in value:
                    return value
                pieces = value.split("*")              # as many pieces as groups + 1
                return "".join(p + g for p, g in zip(pieces, groups)) + pieces[-1]
        return name

    def active(self, names) -> tuple:
        """The dialects whose ``#when`` pattern some candidate name matches."""
        return tuple(sub.source for _, when, sub in self.dialects
                     if any(when.match(n) is not None for n in names))

    def apply(self, tensors, what="candidate", reference=None):
        """(OrderedDict canonical -> array, {canonical: original name}, [ignored names]);
        ``reference``: the reference's names, for ``{last}``."""
        out, origin, ignored = OrderedDict(), {}, []
        active = self.active(list(tensors))
        for name, value in tensors.items():
            canonical = self.translate(name, active)
            if canonical is None:
                ignored.append(name)
                continue
            if "{last}" in canonical:
                canonical = _last_block(canonical, reference)
            if canonical in origin:
                if _same_values(out[canonical], value):
                    ignored.append(f"{name} (= {origin[canonical]})")
                    continue
                raise FormatError(f"{what}: tensors {short_repr(origin[canonical])} and "
                                  f"{short_repr(name)} both map to {short_repr(canonical)} under "
                                  f"name map {self.source} and hold different values; map one "
                                  "of them to null")
            out[canonical], origin[canonical] = value, name
        return out, origin, ignored


def _last_block(canonical, reference):
    """``layer2.{last}`` -> the reference's last block of that stage (``layer2.3``)."""
    prefix = canonical.split("{last}")[0]
    indices = [int(n[len(prefix):]) for n in reference or ()
               if n.startswith(prefix) and n[len(prefix):].isdigit()]
    return f"{prefix}{max(indices)}" if indices else canonical


def _same_values(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.size != b.size or tuple(d for d in a.shape if d != 1) != tuple(d for d in b.shape if d != 1):
        return False
    return bool(np.array_equal(a.reshape(-1), b.reshape(-1)))


def parse_map(data, source="map") -> NameMap:
    """A :class:`NameMap` from the JSON object {candidate name or pattern: canonical or null}."""
    if not isinstance(data, dict):
        raise FormatError(f"name map {source}: expected a JSON object {{candidate: canonical}}, "
                          f"found {type(data).__name__}")
    nm = NameMap(source=source)
    for key, value in data.items():
        if not isinstance(key, str):
            raise FormatError(f"name map {source}: key {short_repr(key)} must be a string")
        if key.startswith("#"):
            continue
        if key.startswith("@"):
            nm.dialects.append(_dialect(key, value, source))
            continue
        if value is not None and not isinstance(value, str):
            raise FormatError(f"name map {source}: value of {short_repr(key)} must be a name or "
                              f"null, found {short_repr(value)}")
        if "*" not in key:
            nm.exact[key] = value
            continue
        stars = key.count("*")
        if value is not None and value.count("*") not in (0, stars):
            raise FormatError(f"name map {source}: {short_repr(key)} has {stars} '*' but its value "
                              f"{short_repr(value)} has {value.count('*')}; use as many or none")
        nm.patterns.append((StarPattern(key), value, key))
    return nm


def _dialect(key, value, source):
    """(name, #when pattern, NameMap of its entries) of an ``"@NAME": {...}`` section."""
    if not isinstance(value, dict) or not isinstance(value.get("#when"), str) or not value["#when"]:
        raise FormatError(f"name map {source}: section {short_repr(key)} must be an object with "
                          "a \"#when\" pattern (a candidate name whose presence selects it)")
    if any(k.startswith("@") for k in value if isinstance(k, str)):
        raise FormatError(f"name map {source}: section {short_repr(key)} holds another section")
    sub = parse_map(value, key)
    return key, StarPattern(value["#when"]), sub


def load_map(spec) -> NameMap:
    """A shipped map by short name (torchvision, timm, paddle.vision), a JSON file, or a dict."""
    if spec is None:
        return NameMap()
    if isinstance(spec, NameMap):
        return spec
    if isinstance(spec, dict):
        return parse_map(spec, "(dict)")
    spec = os.fspath(spec)
    path = MAPS_DIR / f"{spec}.json" if spec in SHIPPED_MAPS else Path(spec)
    if not path.exists():
        raise InputError(f"--map: {spec!r} is neither a shipped map ({', '.join(SHIPPED_MAPS)}) "
                         f"nor an existing JSON file")
    source = spec if spec in SHIPPED_MAPS else str(path)
    data = load_json(path, "name map (JSON)")         # depth-bounded, regular files only
    expect(data, dict, "the top level", f"name map {source}")
    return parse_map(data, source)
