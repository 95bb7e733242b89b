"""Name maps: a candidate's tensor names (torch module names, Paddle layer names) onto the
names the forward pass emits."""

from __future__ import annotations

import json
import os
import re
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import FormatError, InputError

MAPS_DIR = Path(__file__).resolve().parent.parent / "maps"
SHIPPED_MAPS = ("torchvision", "timm", "paddle.vision")


@dataclass
class NameMap:
    """Candidate name -> canonical name (or None: ignore the tensor).

    Keys are exact names or patterns in which ``*`` stands for one or more characters other
    than ``.``; each ``*`` of the value is replaced, in order, by what the key's ``*``
    matched. Exact keys win over patterns; patterns are tried in file order; a name that
    matches nothing is kept unchanged. Keys starting with ``#`` are comments.
    """

    exact: dict = field(default_factory=dict)
    patterns: list = field(default_factory=list)     # (regex, value, key)
    source: str = "identity"

    def translate(self, name):
        if name in self.exact:
            return self.exact[name]
        for regex, value, _ in self.patterns:
            m = regex.fullmatch(name)
            if m:
                if value is None:
                    return None
                parts = iter(m.groups())
                return re.sub(r"\*", lambda _: next(parts), value)
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
                raise FormatError(f"{what}: tensors {origin[canonical]!r} and {name!r} both map to "
                                  f"{canonical!r} under name map {self.source}; map one of them to null")
            out[canonical], origin[canonical] = value, name
        return out, origin, ignored


def parse_map(data, source="map") -> NameMap:
    """A :class:`NameMap` from the JSON object {candidate name or pattern: canonical or null}."""
    if not isinstance(data, dict):
        raise FormatError(f"name map {source}: expected a JSON object {{candidate: canonical}}, "
                          f"found {type(data).__name__}")
    nm = NameMap(source=source)
    for key, value in data.items():
        if key.startswith("#"):
            continue
        if value is not None and not isinstance(value, str):
            raise FormatError(f"name map {source}: value of {key!r} must be a name or null, found {value!r}")
        if "*" not in key:
            nm.exact[key] = value
            continue
        stars = key.count("*")
        if value is not None and value.count("*") not in (0, stars):
            raise FormatError(f"name map {source}: {key!r} has {stars} '*' but its value {value!r} "
                              f"has {value.count('*')}; use as many or none")
        regex = re.compile("".join("([^.]+)" if part == "*" else re.escape(part)
                                   for part in re.split(r"(\*)", key)))
        nm.patterns.append((regex, value, key))
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
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise FormatError(f"name map {str(path)!r} is not valid JSON ({exc})") from None
    return parse_map(data, spec if spec in SHIPPED_MAPS else str(path))
