"""One reading budget per load: what a file makes a reader allocate, bounded for the whole
file rather than per member, per tensor or per shard.

Each bound of :mod:`.limits` holds for one item: a deflated member may expand 64 times,
a tensor may be as large as its storage. A file multiplies them: an .npz of 100 deflated
members of zeros, each within its own allowance; a torch storage viewed by 200 tensors; a
zip directory whose 300 entries all point at one member. So every reader charges what it
materialises (arrays filled from the file, decompressed bytes, copies made of the file's
data) to the budget of the load it belongs to, and one allowance covers the whole load:

    allowance = Limits.expand_bound(the bytes of the distinct files the load opened)
              = min(max_bytes, max(64 MiB, 64 x those bytes))

A file opened twice (or under two names: symlinked shards, hard links) counts once, by
device and inode. A load is one call of a reader's entry point (:func:`one_load`), with
everything it calls: ``load_weights`` of a shard index is one load over all its shards.
Beyond the allowance, and beyond the memory the process can still have
(:func:`.memory.available_memory`), a charge is refused with an error naming the file.
"""

from __future__ import annotations

import contextvars
import functools

from ..errors import BudgetError, FormatError
from .limits import get_limits, human
from .memory import ENV_MAX_MEMORY, SMALL, available_memory, memory_budget

__all__ = ["Load", "one_load", "charge", "register_file", "check_whole"]

_current = contextvars.ContextVar("numpy_resnext_load", default=None)


class Load:
    """The files one load opened and the bytes it materialised from them."""

    def __init__(self):
        self.files = {}            # (st_dev, st_ino) -> size
        self.name = "<no file>"    # the first file opened, for messages that have no other
        self.used = 0
        self._clear = 0            # charges up to this total need no further look

    @property
    def input_bytes(self) -> int:
        return sum(self.files.values())

    @property
    def allowance(self) -> int:
        return get_limits().expand_bound(self.input_bytes)

    def _why(self) -> str:
        limits = get_limits()
        return (f"the {human(self.allowance)} allowed for the whole file ({self.input_bytes} "
                f"bytes read: at most {limits.max_ratio} times that, or "
                f"{human(limits.min_expand)}, never over the {human(limits.max_bytes)} "
                "reading limit)")

    def check(self, nbytes: int, what, source) -> None:
        """Refuse unless ``nbytes`` more fit the allowance and the available memory
        (``what`` and ``source`` may be callables: formatted only for the message)."""
        total = self.used + nbytes
        if total <= self._clear:           # the common case: one comparison per tensor
            return
        allowance = self.allowance
        if total > allowance:
            what = what() if callable(what) else what
            source = source() if callable(source) else source
            raise FormatError(f"{source}: {what} would bring what the file makes us allocate "
                              f"to {human(total)} ({total} bytes), more than {self._why()}; "
                              "a file that repeats or expands its content, not a weight file")
        if total < SMALL and memory_budget() is None:
            self._clear = min(allowance, SMALL)
            return
        have, why = available_memory()
        room = None if have is None else self.used + have
        if room is not None and total > room:
            what = what() if callable(what) else what
            source = source() if callable(source) else source
            raise BudgetError(f"{source}: reading it needs at least {human(total)} of "
                              f"memory, more than the {human(max(have, 0))} available "
                              f"({why}); raise the budget with `numpy-resnext "
                              f"--max-memory` or {ENV_MAX_MEMORY} if the machine has it")
        self._clear = allowance if room is None else min(allowance, room)

    def charge(self, nbytes: int, what, source) -> None:
        self.check(nbytes, what, source)
        self.used += nbytes


def one_load(func):
    """Run ``func`` as one load (or as part of the load already under way)."""
    @functools.wraps(func)
    def run(*args, **kwargs):
        if _current.get() is not None:
            return func(*args, **kwargs)
        token = _current.set(Load())
        try:
            return func(*args, **kwargs)
        finally:
            _current.reset(token)
    return run


def register_file(st, name=None) -> None:
    """Count a file (an ``os.stat_result``; ``name`` for messages) once in the load under
    way."""
    load = _current.get()
    if load is not None:
        if not load.files and name is not None:
            load.name = name
        if (st.st_dev, st.st_ino) not in load.files:
            load.files[(st.st_dev, st.st_ino)] = st.st_size
            load._clear = 0                 # the allowance grew: look again


def charge(nbytes: int, what, source=None) -> None:
    """Charge ``nbytes`` materialised from ``source`` (default: the load's first file) to
    the load under way (nothing outside a load). ``what`` and ``source`` may be callables
    returning the text, so that nothing is formatted unless a message needs it."""
    load = _current.get()
    if load is not None:
        load.charge(int(nbytes), what, load.name if source is None else source)


def check_whole(nbytes: int, what: str, source: str) -> None:
    """Refuse now if ``nbytes`` (what a file declares it will expand to) cannot fit the
    load's allowance, before any of it is read."""
    load = _current.get()
    if load is not None:
        load.check(int(nbytes), what, source)
