"""Name maps: a candidate's tensor names (torch module names, Paddle layer names) onto the
names the forward pass emits."""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..bounded import expect, load_json, short_repr
from ..errors import FormatError, InputError

MAPS_DIR = Path(__file__).resolve().parent.parent / "maps"
SHIPPED_MAPS = ("torchvision", "timm", "paddle.vision")


def _codes(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), "<u4")


class StarPattern:
    """A map key with ``*`` (one or more characters other than ``.``), matched without
    backtracking. A regular expression such as ``([^.]+)([^.]+)...x`` retries every split
    of a long name that almost matches (polynomial in the name's length, the number of
    stars as the exponent). Here one backward pass per piece of the key marks, with NumPy,
    every position from which the rest of the key matches; the captures are then read
    forwards, each ``*`` taking the longest run that lets the rest match, which is what
    the regular expression returns. O(len(key) x len(name))."""

    def __init__(self, key: str):
        self.key = key
        self.pieces = key.split("*")                 # the literals around the stars
        self.codes = [_codes(p) for p in self.pieces]

    def match(self, name: str):
        """The tuple of what each ``*`` matched, or None."""
        pieces, codes, k, n = self.pieces, self.codes, len(self.pieces) - 1, len(name)
        if k == 0:
            return () if name == pieces[0] else None
        if n < sum(map(len, pieces)) + k or not (name.startswith(pieces[0])
                                                 and name.endswith(pieces[k])):
            return None
        c = _codes(name)                                     # (n,) code points
        marks = np.full(n + 1, n, np.int64)
        dots = np.flatnonzero(c == 46)
        marks[dots] = dots
        first_dot = np.minimum.accumulate(marks[::-1])[::-1]   # (n + 1,) first '.' at or after j
        upto = np.minimum(np.arange(n + 1) + 1, n + 1)
        # starts[i][j]: name[j:] matches pieces[i] * pieces[i + 1] ... * pieces[k]
        starts = [None] * (k + 1)
        starts[k] = np.zeros(n + 1, bool)
        starts[k][n - len(pieces[k])] = True                 # the suffix was checked above
        for i in range(k, 0, -1):
            # star[t]: name[t:] matches * pieces[i] ...: some u in (t, first_dot[t]] starts it
            count = np.concatenate(([0], np.cumsum(starts[i])))       # (n + 2,)
            star = count[first_dot + 1] - count[upto] > 0              # (n + 1,)
            lit, m = codes[i - 1], len(pieces[i - 1])
            here = np.zeros(n + 1, bool)
            good = star[m:].copy()                                      # (n + 1 - m,)
            for q in range(m):
                good &= np.concatenate((c[q:q + n - m + 1], [0]))[:n - m + 1] == lit[q]
            here[:n - m + 1] = good
            starts[i - 1] = here
        if not starts[0][0]:
            return None
        groups, p = [], len(pieces[0])
        for i in range(1, k + 1):
            u = int(np.flatnonzero(starts[i][p + 1:first_dot[p] + 1])[-1]) + p + 1
            groups.append(name[p:u])
            p = u + len(pieces[i])
        return tuple(groups)


@dataclass
class NameMap:
    """Candidate name -> canonical name (or None: ignore the tensor).

    Keys are exact names or patterns in which ``*`` stands for one or more characters other
    than ``.``; each ``*`` of the value is replaced, in order, by what the key's ``*``
    matched. Exact keys win over patterns; patterns are tried in file order; a name that
    matches nothing is kept unchanged. Keys starting with ``#`` are comments.
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
