"""Shell-style name patterns matched in linear time, never by backtracking.

``fnmatch`` translates a pattern to a regular expression; with several ``*`` a long name
that almost matches makes the regex engine try every split (``a*a*a*a*b`` against 5,000
``a``s). :func:`glob_match` walks the name once per pattern position with a set of
reachable states (a Thompson-style simulation), O(len(pattern) * len(name)) at worst.

Syntax, as fnmatch (case-sensitive): ``*`` any run of characters (``/`` and ``.``
included), ``?`` one character, ``[abc]`` / ``[a-z]`` one of a set, ``[!abc]`` one not in
it; a ``[`` without its ``]`` is a literal.
"""

from __future__ import annotations

import functools

from ..errors import InputError

MAX_PATTERN = 1000


@functools.lru_cache(maxsize=256)
def _compile(pattern: str) -> tuple:
    """The tokens of ``pattern``: ('*',), ('?',), ('lit', c), ('set', negate, items); cached,
    since a selection matches the same few patterns against every name of a forward."""
    tokens, i, n = [], 0, len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            if not tokens or tokens[-1] != ("*",):     # ** is *
                tokens.append(("*",))
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
                tokens.append(("lit", "["))
                i += 1
                continue
            body = pattern[i + 1:j]
            negate = body.startswith("!")
            if negate:
                body = body[1:]
            items, k = [], 0
            while k < len(body):
                if k + 2 < len(body) and body[k + 1] == "-":
                    items.append((body[k], body[k + 2]))
                    k += 3
                else:
                    items.append((body[k], body[k]))
                    k += 1
            tokens.append(("set", negate, tuple(items)))
            i = j + 1
        else:
            tokens.append(("lit", c))
            i += 1
    return tuple(tokens)


def _accepts(token, ch) -> bool:
    kind = token[0]
    if kind == "?":
        return True
    if kind == "lit":
        return token[1] == ch
    hit = any(lo <= ch <= hi for lo, hi in token[2])
    return hit != token[1]


def glob_match(pattern: str, name: str) -> bool:
    """True if ``name`` matches the whole ``pattern`` (fnmatch.fnmatchcase semantics)."""
    if not isinstance(pattern, str) or not isinstance(name, str):
        raise InputError(f"glob_match: pattern and name must be strings, found "
                         f"{type(pattern).__name__} and {type(name).__name__}")
    if len(pattern) > MAX_PATTERN:
        raise InputError(f"pattern of {len(pattern)} characters; at most {MAX_PATTERN}")
    tokens = _compile(pattern)
    n = len(tokens)

    def close(states):
        # a '*' may match nothing: the state after it is reachable too
        out = set(states)
        for s in sorted(states):
            while s < n and tokens[s] == ("*",):
                s += 1
                out.add(s)
        return out

    states = close({0})
    for ch in name:
        nxt = set()
        for s in states:
            if s < n:
                tok = tokens[s]
                if tok == ("*",):
                    nxt.add(s)                          # * eats ch and stays
                elif _accepts(tok, ch):
                    nxt.add(s + 1)
        if not nxt:
            return False
        states = close(nxt)
    return n in states


def glob_filter(pattern: str, names) -> list:
    """The names that match ``pattern``, in their order."""
    return [n for n in names if glob_match(pattern, n)]
