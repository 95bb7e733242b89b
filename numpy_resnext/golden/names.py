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

Trying every pattern key against every name is keys x names matches: 20,000 keys such as
``*q123*`` against 1,000 names would take minutes. A name is only tried against the keys
that can match it: a key's ``*`` never matches ``.``, so a key and a name that match have
as many dots; and each key is indexed by its longest literal part, which must occur in the
name (a dictionary lookup per substring of the name of that length). What remains is
checked for its literal parts in order before the full matcher runs, and the work of one
:meth:`NameMap.apply` is capped (:data:`MAX_MATCH_WORK`): past it the map is refused with
a clear error instead of running for minutes.
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
MAX_MATCH_WORK = 1_000_000     # substring lookups + literal checks (+ 20 per full match)
FULL_MATCH_COST = 20


class _Bucket:
    """The pattern keys of one dot count, indexed by their longest literal part."""

    def __init__(self):
        self.index, self.always, self.lengths = {}, [], set()

    def add(self, i, key):
        anchor = max(key.split("*"), key=len)
        if anchor:
            self.index.setdefault(anchor, []).append(i)
            self.lengths.add(len(anchor))
        else:
            self.always.append(i)

    def candidates(self, name):
        """(the keys' numbers in file order, the lookups it took)."""
        found, work = list(self.always), 0
        for n in self.lengths:
            for j in range(len(name) - n + 1):
                hit = self.index.get(name[j:j + n])
                if hit:
                    found.extend(hit)
            work += max(len(name) - n + 1, 0)
        return sorted(set(found)), work


def _literals_in_order(literals, name) -> bool:
    """Whether the literal parts of a key occur in ``name`` in order, the first at its
    start and the last at its end (a necessary condition of a match)."""
    if not (name.startswith(literals[0]) and name.endswith(literals[-1])):
        return False
    at = len(literals[0])
    for lit in literals[1:-1]:
        at = name.find(lit, at)
        if at < 0:
            return False
        at += len(lit)
    return at <= len(name) - len(literals[-1])


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

    def _buckets(self):
        if getattr(self, "_built", None) is None or self._built[0] != len(self.patterns):
            buckets = {}
            for i, (_, _, key) in enumerate(self.patterns):
                buckets.setdefault(key.count("."), _Bucket()).add(i, key)
            self._built = (len(self.patterns), buckets)
        return self._built[1]

    def translate(self, name, active=(), work=None):
        """The reference name for candidate ``name`` (None: skip it), trying the entries of
        the ``active`` dialects (their names, :meth:`active`) first. ``work``: a one-item
        list counting the matching work against :data:`MAX_MATCH_WORK` over several names."""
        work = [0] if work is None else work
        if active:
            for sub in self._active_maps(active):
                value = sub.translate(name, (), work)
                if value is not name:
                    return value
        if name in self.exact:
            return self.exact[name]
        bucket = self._buckets().get(name.count("."))
        if bucket is None:
            return name
        tried, cost = bucket.candidates(name)
        work[0] += cost + len(tried)
        self._check_work(work[0])
        for i in tried:
            pattern, value, key = self.patterns[i]
            if not _literals_in_order(key.split("*"), name):
                continue
            work[0] += FULL_MATCH_COST
            self._check_work(work[0])
            groups = pattern.match(name)
            if groups is not None:
                if value is None:
                    return None
                if "*" not in value:
                    return value
                pieces = value.split("*")              # as many pieces as groups + 1
                return "".join(p + g for p, g in zip(pieces, groups)) + pieces[-1]
        return name

    def _check_work(self, done):
        if done > MAX_MATCH_WORK:
            raise InputError(f"name map {self.source}: its {len(self.patterns)} pattern keys "
                             f"would need more than {MAX_MATCH_WORK:,} match steps against "
                             "these names; use exact names, or fewer patterns with longer "
                             "literal parts")

    def _active_maps(self, active):
        chosen = set(active)
        return [sub for _, _, sub in self.dialects if sub.source in chosen]

    def active(self, names, work=None) -> tuple:
        """The dialects whose ``#when`` pattern some candidate name matches (each try counts
        as a full match in ``work``)."""
        work = [0] if work is None else work
        found = []
        for _, when, sub in self.dialects:
            for n in names:
                work[0] += FULL_MATCH_COST
                self._check_work(work[0])
                if when.match(n) is not None:
                    found.append(sub.source)
                    break
        return tuple(found)

    def apply(self, tensors, what="candidate", reference=None):
        """(OrderedDict canonical -> array, {canonical: original name}, [ignored names]);
        ``reference``: the reference's names, for ``{last}``."""
        out, origin, ignored, work = OrderedDict(), {}, [], [0]
        active = self.active(list(tensors), work)
        last = None
        for name, value in tensors.items():
            canonical = self.translate(name, active, work)
            if canonical is None:
                ignored.append(name)
                continue
            if "{last}" in canonical:
                last = _last_blocks(reference) if last is None else last
                canonical = last.get(canonical.split("{last}")[0], canonical)
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


def _last_blocks(reference, max_digits=9) -> dict:
    """{prefix: the reference's last block under it} for ``{last}`` (``layer2.`` ->
    ``layer2.3``): every split of a name into a prefix and a number of at most
    ``max_digits`` digits, made once per map application."""
    best = {}
    for n in reference or ():
        digits = len(n) - len(n.rstrip("0123456789"))
        for k in range(len(n) - min(digits, max_digits), len(n)):
            value = int(n[k:])
            if best.get(n[:k], (-1,))[0] < value:
                best[n[:k]] = (value, n)
    return {prefix: f"{prefix}{value}" for prefix, (value, _) in best.items()}


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
