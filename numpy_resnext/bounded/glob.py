"""Name patterns matched in linear time, never by backtracking: one matcher, two syntaxes.

- Globs (``--keep``, ``forward(keep=...)``; :func:`glob_match`), fnmatch's meaning,
  case-sensitive: ``*`` any run of characters (``/`` and ``.`` included), ``?`` one
  character, ``[abc]`` / ``[a-z]`` one of a set, ``[!abc]`` one not in it; a ``[`` without
  its ``]`` is a literal.
- Name-map keys (:class:`StarPattern`, :mod:`numpy_resnext.golden.names`): only ``*`` is
  special and stands for one or more characters other than ``.``, the regular expression
  ``([^.]+)``; :meth:`Pattern.groups` returns what each ``*`` matched, as that regular
  expression would (each ``*`` the longest run that lets the rest match).

``fnmatch`` and ``re`` retry every split of a long name that almost matches, polynomial in
its length with the number of stars as the exponent (``a*a*a*a*b`` against 5,000 ``a``s).
Here the pattern is cut at its stars into pieces of one-character tokens, and one
backward pass per piece marks, with NumPy, every position of the name from which the rest
of the pattern matches: O(len(pattern) x len(name)) at worst. The captures are then read
forwards. The pieces before the first and after the last star are anchored, so they are
checked first, and with one star they decide alone.
"""

from __future__ import annotations

import functools

import numpy as np

from ..errors import InputError

MAX_PATTERN = 1000
STAR = ("*",)


def _glob_tokens(pattern: str) -> list:
    """The tokens of a glob: STAR, ('?',), ('lit', code), ('set', negate, ((lo, hi), ...))."""
    tokens, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            if not tokens or tokens[-1] != STAR:       # ** is *
                tokens.append(STAR)
            i += 1
        elif c == "?":
            tokens.append(("?",))
            i += 1
        elif c == "[":
            j = i + 1
            if j < n and pattern[j] == "!":
                j += 1
            if j < n and pattern[j] == "]":
                j += 1
            while j < n and pattern[j] != "]":
                j += 1
            if j >= n:                                  # no closing bracket: a literal [
                tokens.append(("lit", ord("[")))
                i += 1
                continue
            body = pattern[i + 1:j]
            negate = body.startswith("!")
            if negate:
                body = body[1:]
            items, k = [], 0
            while k < len(body):
                if k + 2 < len(body) and body[k + 1] == "-":
                    items.append((ord(body[k]), ord(body[k + 2])))
                    k += 3
                else:
                    items.append((ord(body[k]), ord(body[k])))
                    k += 1
            tokens.append(("set", negate, tuple(items)))
            i = j + 1
        else:
            tokens.append(("lit", ord(c)))
            i += 1
    return tokens


def _codes(text: str) -> np.ndarray:
    """(len(text),) code points."""
    return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), "<u4")


def _accepts_one(token, code: int) -> bool:
    """Whether ``token`` accepts the character ``code``."""
    if token[0] == "lit":
        return code == token[1]
    if token[0] == "?":
        return True
    return any(lo <= code <= hi for lo, hi in token[2]) != token[1]


def _accepts(token, c: np.ndarray) -> np.ndarray:
    """(len(c),) bool: which characters ``token`` accepts."""
    if token[0] == "lit":
        return c == token[1]
    if token[0] == "?":
        return np.ones(len(c), bool)
    hit = np.zeros(len(c), bool)
    for lo, hi in token[2]:
        hit |= (c >= lo) & (c <= hi)
    return hit != token[1]


class Pattern:
    """A pattern cut at its stars; ``star_min`` and ``star_dots`` say what a star matches
    (at least that many characters; ``.`` among them or not)."""

    def __init__(self, tokens, text, star_min=0, star_dots=True):
        self.text, self.star_min, self.star_dots = text, star_min, star_dots
        self.pieces = [[]]                    # the one-character tokens between the stars
        for t in tokens:
            if t == STAR:
                self.pieces.append([])
            else:
                self.pieces[-1].append(t)

    def _piece_at(self, i, c, n) -> np.ndarray:
        """(n + 1,) bool: positions j where piece i matches name[j:j + len(piece)]."""
        piece, out = self.pieces[i], np.zeros(n + 1, bool)
        m = len(piece)
        if m <= n:
            good = np.ones(n - m + 1, bool)
            for q, token in enumerate(piece):
                good &= _accepts(token, c[q:q + n - m + 1])
            out[:n - m + 1] = good
        return out

    def _piece_here(self, i, name, j) -> bool:
        """Whether piece i matches name[j:j + len(piece)] (which is inside the name)."""
        return all(_accepts_one(t, ord(name[j + q])) for q, t in enumerate(self.pieces[i]))

    def groups(self, name: str):
        """The tuple of what each ``*`` matched, or None if ``name`` does not match."""
        k, n = len(self.pieces) - 1, len(name)
        lens = [len(p) for p in self.pieces]
        if n < sum(lens) + k * self.star_min or not self._piece_here(0, name, 0):
            return None
        if k == 0:
            return () if n == lens[0] else None
        if not self._piece_here(k, name, n - lens[k]):
            return None
        if k == 1:                        # one star: it takes what the two ends leave
            middle = name[lens[0]:n - lens[1]]
            return (middle,) if self.star_dots or "." not in middle else None
        c = _codes(name)                                        # (n,) code points
        if self.star_dots:
            reach = np.full(n + 1, n, np.int64)                 # a star may run to the end
        else:
            marks = np.full(n + 1, n, np.int64)
            dots = np.flatnonzero(c == 46)
            marks[dots] = dots
            reach = np.minimum.accumulate(marks[::-1])[::-1]    # (n + 1,) first '.' at or after t
        least = np.minimum(np.arange(n + 1) + self.star_min, n + 1)    # (n + 1,)
        # starts[i][j]: name[j:] matches piece i * piece i+1 ... * piece k
        starts = [None] * (k + 1)
        starts[k] = np.zeros(n + 1, bool)
        starts[k][n - lens[k]] = self._piece_at(k, c, n)[n - lens[k]]
        for i in range(k, 0, -1):
            if not starts[i].any():
                return None
            # star[t]: some u in [least[t], reach[t]] starts the rest
            count = np.concatenate(([0], np.cumsum(starts[i])))          # (n + 2,)
            star = count[reach + 1] - count[least] > 0                  # (n + 1,)
            m = lens[i - 1]
            here = self._piece_at(i - 1, c, n)
            here[:n + 1 - m] &= star[m:]
            starts[i - 1] = here
        if not starts[0][0]:
            return None
        out, p = [], lens[0]
        for i in range(1, k + 1):
            lo = p + self.star_min
            u = int(np.flatnonzero(starts[i][lo:reach[p] + 1])[-1]) + lo
            out.append(name[p:u])
            p = u + lens[i]
        return tuple(out)

    def matches(self, name: str) -> bool:
        return self.groups(name) is not None


class StarPattern(Pattern):
    """A name-map key: ``*`` is one or more characters other than ``.``, nothing else is
    special; :meth:`match` returns what each ``*`` matched (or None)."""

    def __init__(self, key: str):
        super().__init__([STAR if ch == "*" else ("lit", ord(ch)) for ch in key], key,
                         star_min=1, star_dots=False)
        self.key = key

    match = Pattern.groups


@functools.lru_cache(maxsize=256)
def _glob(pattern: str) -> Pattern:
    """A compiled glob; cached, since a selection matches the same few patterns against
    every name of a forward."""
    return Pattern(_glob_tokens(pattern), pattern)


def glob_match(pattern: str, name: str) -> bool:
    """True if ``name`` matches the whole ``pattern`` (fnmatch.fnmatchcase semantics)."""
    if not isinstance(pattern, str) or not isinstance(name, str):
        raise InputError(f"glob_match: pattern and name must be strings, found "
                         f"{type(pattern).__name__} and {type(name).__name__}")
    if len(pattern) > MAX_PATTERN:
        raise InputError(f"pattern of {len(pattern)} characters; at most {MAX_PATTERN}")
    return _glob(pattern).matches(name)
