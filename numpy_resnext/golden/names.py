"""Name maps: a candidate's tensor names (torch module names, Paddle layer names) onto the
names the forward pass emits."""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from ..bounded import StarPattern, expect, load_json, short_repr
from ..errors import FormatError, InputError

MAPS_DIR = Path(__file__).resolve().parent.parent / "maps"
SHIPPED_MAPS = ("torchvision", "timm", "paddle.vision")


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

    def translate(self, name):
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

    def apply(self, tensors, what="candidate"):
        """(OrderedDict canonical -> array, {canonical: original name}, [ignored names])."""
        out, origin, ignored = OrderedDict(), {}, []
        for name, value in tensors.items():
            canonical = self.translate(name)
            if canonical is None:
                ignored.append(name)
                continue
            if canonical in origin:
                raise FormatError(f"{what}: tensors {short_repr(origin[canonical])} and "
                                  f"{short_repr(name)} both map to {short_repr(canonical)} under "
                                  f"name map {self.source}; map one of them to null")
            out[canonical], origin[canonical] = value, name
        return out, origin, ignored


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
