"""Selecting intermediates by name: one definition of the names / glob patterns that
``model.forward(keep=...)``, ``golden_dump(keep=...)`` and ``--keep`` accept.

A selection is None or False (nothing), True (everything), one pattern or an iterable of
patterns; a pattern is an exact name or a shell-style glob (``*`` any run of characters,
``?`` one character, ``[...]`` a character class), matched against the whole name, as
``fnmatch.fnmatchcase`` would, but in linear time (:mod:`numpy_resnext.bounded.glob`:
fnmatch's regular expression backtracks on a long name and a pattern with several ``*``).
"""

from __future__ import annotations

from .bounded import glob_match as _bounded_match

_GLOB_CHARS = set("*?[")


def patterns(keep):
    """The list of patterns ``keep`` stands for, or None for "everything" (True or None)."""
    if keep is None or keep is True:
        return None
    if keep is False:
        return []
    return [keep] if isinstance(keep, str) else list(keep)


def glob_match(name: str, pattern: str) -> bool:
    """Whether ``name`` matches the shell-style ``pattern`` as a whole."""
    return _bounded_match(pattern, name)


class Selection:
    """A compiled selection (see the module docstring)."""

    def __init__(self, keep=None):
        self.all = keep is True
        listed = patterns(keep) or []                                  # None, True, False: none
        # exact names (no *, ? or [) are looked up in a set: the backward keeps ~150 of
        # them, and trying each as a glob against each of the ~170 names a forward emits
        # cost a tenth of a second per forward
        self.exact = {p for p in listed if isinstance(p, str) and not _GLOB_CHARS & set(p)}
        self.globs = [p for p in listed if not (isinstance(p, str) and p in self.exact)]

    def matches(self, name: str) -> bool:
        return self.all or name in self.exact or any(glob_match(name, p) for p in self.globs)
