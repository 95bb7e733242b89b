"""The memory budget: how much memory a computation or a read may still take.

Reading has its own bound per file (:mod:`.budget`); a computation the user asks for (a
forward pass, a golden dump, gradients, the mutation audit, an export) is estimated from
the layer plan and the input's shape before it starts (:mod:`numpy_resnext.shapes`'s
``*_bytes`` functions) and refused by :func:`check_memory` when the estimate exceeds what
is available, with a message naming the size and how to raise the budget. Without that,
a 10 MB input of shape (1, 3, 1, 873813) makes a golden dump allocate gigabytes and end
in MemoryError half way.

What is available: with a budget set (``NUMPY_RESNEXT_MAX_MEMORY=32G``, ``numpy-resnext
--max-memory 32G``, :func:`set_memory_budget`), that budget less the process's resident
memory; otherwise the least of what the machine and the process's limits leave:

- physical memory less the process's resident memory;
- a cgroup v2 or v1 memory limit less the cgroup's anonymous memory (containers);
- the address-space limit (``RLIMIT_AS``, ``ulimit -v``) less the process's virtual size;
- the data-segment limit (``RLIMIT_DATA``) less its data segment.

A budget set by hand replaces the limits the machine reports (it is how a user says "the
estimate is too cautious here").
"""

from __future__ import annotations

import functools
import os

try:
    import resource
except ImportError:                     # not on Windows: no process limits to read there
    resource = None

from ..errors import BudgetError
from .limits import human, parse_size

ENV_MAX_MEMORY = "NUMPY_RESNEXT_MAX_MEMORY"
SMALL = 64 << 20          # below this (and with no budget set) nothing is worth reading limits for
_budget = [None]          # bytes set by hand (None: the environment, then the machine)

__all__ = ["ENV_MAX_MEMORY", "available_memory", "check_memory", "memory_budget",
           "set_memory_budget"]


def set_memory_budget(size) -> int | None:
    """Set the budget (``"32G"``, bytes, or None for the machine's limits); returns the
    previous one."""
    old = _budget[0]
    _budget[0] = None if size is None else parse_size(size, "memory budget")
    return old


def memory_budget() -> int | None:
    """The budget set by hand or in NUMPY_RESNEXT_MAX_MEMORY, or None."""
    if _budget[0] is not None:
        return _budget[0]
    text = os.environ.get(ENV_MAX_MEMORY)
    return parse_size(text, ENV_MAX_MEMORY) if text else None


def _status() -> dict:
    """VmSize, VmRSS and VmData of this process in bytes (Linux), else {}."""
    out = {}
    try:
        with open("/proc/self/status") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key in ("VmSize", "VmRSS", "VmData"):
                    out[key] = int(value.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return out


@functools.lru_cache(maxsize=1)
def _physical() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _read_int(path) -> int | None:
    try:
        with open(path) as f:
            text = f.read().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _cgroup_left() -> int | None:
    """The cgroup's memory limit less its anonymous memory (v2, else v1), or None."""
    for limit, stat in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.stat"),
                        ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                         "/sys/fs/cgroup/memory/memory.stat")):
        cap = _read_int(limit)
        if cap is None or cap >= 1 << 60:           # "max", or v1's "no limit"
            continue
        anon = 0
        try:
            with open(stat) as f:
                for line in f:
                    key, _, value = line.partition(" ")
                    if key in ("anon", "rss"):
                        anon = int(value)
                        break
        except (OSError, ValueError):
            pass
        return cap - anon
    return None


def _rlimit_left(which, used) -> int | None:
    if resource is None:
        return None
    soft, _ = resource.getrlimit(which(resource))
    if soft == resource.RLIM_INFINITY or used is None:
        return None
    return soft - used


def available_memory() -> tuple[int | None, str]:
    """(bytes a computation may still allocate, what sets that figure); None when no
    figure is known (then nothing is refused)."""
    status = _status()
    rss = status.get("VmRSS", 0)
    budget = memory_budget()
    if budget is not None:
        return budget - rss, f"the memory budget of {human(budget)} less the {human(rss)} in use"
    found = []
    physical = _physical()
    if physical:
        found.append((physical - rss, f"the machine's {human(physical)} of memory less the "
                                      f"{human(rss)} in use"))
    cgroup = _cgroup_left()
    if cgroup is not None:
        found.append((cgroup, "the cgroup's memory limit"))
    for which, key, label in ((lambda r: r.RLIMIT_AS, "VmSize", "address-space limit "
                               "(RLIMIT_AS, ulimit -v)"),
                              (lambda r: r.RLIMIT_DATA, "VmData", "data-segment limit "
                               "(RLIMIT_DATA, ulimit -d)")):
        left = _rlimit_left(which, status.get(key))
        if left is not None:
            found.append((left, f"the process's {label} less what it uses"))
    if not found:
        return None, "no memory limit known"
    return min(found, key=lambda f: f[0])


def check_memory(nbytes: int, what: str) -> int:
    """``nbytes`` if ``what`` (e.g. "golden ResNeXt50_32x4d on a (1, 3, 1, 873813) float64
    input") may allocate that much now; else BudgetError naming the size and the option."""
    if nbytes < SMALL and memory_budget() is None:
        return nbytes
    have, why = available_memory()
    if have is None or nbytes <= have:
        return nbytes
    suggest = f"{-(-nbytes * 5 // 4 >> 20) // 1024 + 1}G"      # 25 % more, whole GiB
    raise BudgetError(f"{what} needs about {human(nbytes)} of memory, more than the "
                      f"{human(max(have, 0))} available ({why}); ask for less (a smaller "
                      f"input or batch, fewer kept tensors) or, if the machine has the "
                      f"memory, raise the budget with `numpy-resnext --max-memory {suggest}` "
                      f"or {ENV_MAX_MEMORY}={suggest}")
