"""The reading ceiling, and messages that never print more than a few dozen characters.

Every size a file declares (an array shape, a zip member, a tar member, a split tensor's
OriginShape) is checked before anything is allocated, against two things: the bytes the
file really holds, and a stated ceiling, :attr:`Limits.max_bytes`.

Default ceiling: 8 GiB for one file's content. The largest published ResNeXt,
ResNeXt101_32x48d_wsl, holds 828,411,176 parameters, 3.3 GB in float32 (6.6 GB in float64);
8 GiB leaves room for that with its batch-norm statistics. People who really read bigger
files raise it with ``NUMPY_RESNEXT_MAX_BYTES=16G``, ``numpy-resnext --max-bytes 16G``,
:func:`set_limits` or the :func:`limits` context manager.

Compressed content (tar.gz / .bz2 / .xz, deflated .npz members) may expand to at most
``max_ratio`` times its compressed size (default 64; real weights compress about 1.1:1),
or ``min_expand`` bytes (64 MiB) whichever is larger, and never beyond the ceiling.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re

from ..errors import FormatError, InputError

ENV_MAX_BYTES = "NUMPY_RESNEXT_MAX_BYTES"
ENV_MAX_RATIO = "NUMPY_RESNEXT_MAX_RATIO"
MAX_NDIM = 32          # NumPy's own limit is 64; no weight or image comes near either
MAX_DIM = 2 ** 40      # one axis; keeps products of a few axes far below Python's int costs


@dataclasses.dataclass(frozen=True)
class Limits:
    """max_bytes: ceiling on one file's decoded content; max_ratio / min_expand: how far
    compressed data may expand, and how much one load may materialise for the bytes it
    reads (:mod:`.budget`); max_depth: nesting of pickles and JSON; max_objects: objects in
    one pickle; max_dir_depth: directory levels walked; max_image_pixels: decoded or
    resized image area."""

    max_bytes: int = 8 << 30
    max_ratio: int = 64
    min_expand: int = 64 << 20
    max_depth: int = 100
    max_objects: int = 1_000_000
    max_dir_depth: int = 32
    max_image_pixels: int = 1 << 26          # 8192 x 8192

    def expand_bound(self, compressed: int) -> int:
        """The most bytes ``compressed`` bytes may decompress to."""
        return min(self.max_bytes, max(self.min_expand, self.max_ratio * compressed))


_SIZE = re.compile(r"^(\d{1,20}) ?([kmgt]?)(i?b?)$", re.IGNORECASE)   # no adjacent repeats


def parse_size(text, what="size") -> int:
    """'8G', '512M', '1024', '2GiB' -> bytes (powers of 1024)."""
    if isinstance(text, int):
        value = text
    else:
        m = _SIZE.match(str(text).strip()[:40])
        if not m:
            raise InputError(f"{what}: cannot read {short_repr(text)} as a size; expected a "
                             "number of bytes with an optional K, M, G or T suffix, e.g. 16G")
        value = int(m.group(1)) << (10 * " kmgt".index(m.group(2).lower() or " "))
    if value < 1:
        raise InputError(f"{what}: the size must be positive, found {value}")
    return value


def _from_env() -> Limits:
    base = Limits()
    kw = {}
    if os.environ.get(ENV_MAX_BYTES):
        kw["max_bytes"] = parse_size(os.environ[ENV_MAX_BYTES], ENV_MAX_BYTES)
    if os.environ.get(ENV_MAX_RATIO):
        kw["max_ratio"] = parse_size(os.environ[ENV_MAX_RATIO], ENV_MAX_RATIO)
    return dataclasses.replace(base, **kw)


_current = [None]


def get_limits() -> Limits:
    """The limits in force (the environment is read on first use)."""
    if _current[0] is None:
        _current[0] = _from_env()
    return _current[0]


def set_limits(**changes) -> Limits:
    """Change limits for the rest of the process, e.g. ``set_limits(max_bytes="16G")``;
    returns the previous limits."""
    old = get_limits()
    if "max_bytes" in changes:
        changes["max_bytes"] = parse_size(changes["max_bytes"], "max_bytes")
    _current[0] = dataclasses.replace(old, **changes)
    return old


@contextlib.contextmanager
def limits(**changes):
    """``with limits(max_bytes="16G"): read_paddle(...)``: the change lasts for the block."""
    old = set_limits(**changes)
    try:
        yield get_limits()
    finally:
        _current[0] = old


def human(n: int) -> str:
    """1536 -> '1.5 KiB'; exact bytes are in the messages beside it when they matter."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if n < 1024 or unit == "PiB":
            return f"{n} bytes" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)  # pragma: no cover


def _hint() -> str:
    return (f"the reading limit is {human(get_limits().max_bytes)}; raise it with "
            f"{ENV_MAX_BYTES}=16G, `numpy-resnext --max-bytes 16G` or "
            "numpy_resnext.bounded.set_limits(max_bytes=...) if the file is genuine")


def _at(source) -> str:
    return f"{source}: " if source else ""


def check_nbytes(nbytes: int, what: str, source: str) -> int:
    """``nbytes`` if within the ceiling, else FormatError naming ``source`` and ``what``."""
    if nbytes > get_limits().max_bytes:
        raise FormatError(f"{_at(source)}{what} would need {human(nbytes)} ({nbytes} bytes); "
                          + _hint())
    return nbytes


def check_shape(shape, itemsize: int, what: str, source: str) -> int:
    """Bytes of an array of ``shape``; refuses bad axes before multiplying anything.

    Each axis must be an int in [0, 2**40] and at most 32 axes; the product of the nonzero
    axes times ``itemsize`` must be within the ceiling (a (0, 2**40, 2**40) array holds no
    bytes but NumPy refuses to create it, and it is no weight either).
    """
    if not isinstance(shape, (tuple, list)) or len(shape) > MAX_NDIM:
        raise FormatError(f"{_at(source)}{what}: shape {short_repr(shape)} (expected at most "
                          f"{MAX_NDIM} axes)")
    bad = [d for d in shape if type(d) is not int or not 0 <= d <= MAX_DIM]
    if bad:
        raise FormatError(f"{_at(source)}{what}: invalid axis {short_repr(bad[0])} in shape "
                          f"{short_repr(shape)} (axes must be integers from 0 to 2**40)")
    nonzero = 1
    for d in shape:
        nonzero *= max(d, 1)
    check_nbytes(nonzero * itemsize, f"{what} of shape {short_repr(list(shape))}", source)
    total = 1
    for d in shape:
        total *= d
    return total * itemsize


def short_repr(value, n: int = 60) -> str:
    """repr() of ``value`` cut to about ``n`` characters, computed without ever building
    the whole repr (a 1 MB key, a list nested a million deep, a shared-reference DAG)."""
    kind = type(value)
    if kind in (str, bytes, bytearray):
        text = repr(value[:n])
        return text if len(value) <= n else f"{text}... ({len(value)} {'characters' if kind is str else 'bytes'})"
    if kind is int:
        if value.bit_length() > 200:
            return f"<an integer of {value.bit_length()} bits>"
        text = repr(value)
    elif kind in (float, bool, type(None)):
        text = repr(value)
    elif kind in (tuple, list):
        parts, used = [], 0
        for item in value[:8]:
            part = short_repr(item, max(8, n // 4)) if used < n else "..."
            parts.append(part)
            used += len(part)
        more = ", ..." if len(value) > 8 else ""
        text = ("(" if kind is tuple else "[") + ", ".join(parts) + more + \
               ("," if kind is tuple and len(value) == 1 else "") + (")" if kind is tuple else "]")
    elif hasattr(value, "shape") and hasattr(value, "dtype"):
        return f"<{type(value).__name__} {getattr(value, 'dtype', '')} {list(value.shape)[:8]}>"
    else:
        size = f" of {len(value)} items" if hasattr(value, "__len__") and kind in (dict, set, frozenset) else ""
        return f"<a {kind.__name__}{size}>"
    return text if len(text) <= n + 20 else text[:n] + "..."


def clip_list(items, n: int = 10, sep: str = ", ") -> str:
    """The first ``n`` items joined, then '... and K more' (messages stay a few lines)."""
    items = list(items) if not isinstance(items, list) else items
    head = sep.join(str(i) if isinstance(i, str) and len(i) <= 200 else short_repr(i, 200)
                    for i in items[:n])
    return head + (f"{sep}... and {len(items) - n} more" if len(items) > n else "")
