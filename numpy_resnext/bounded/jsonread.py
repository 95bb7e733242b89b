"""JSON with a nesting bound, finite numbers only, and checks of the expected structure.

``json.loads`` recurses once per level (100,000 nested brackets end in RecursionError),
turns ``Infinity``/``NaN`` into floats and reads integers of any length. :func:`load_json`
first measures the nesting depth without recursion (strings are blanked out with a
regular expression that cannot backtrack, then brackets are counted with NumPy), then parses with
integers limited to 40 digits and the constants refused. The :func:`expect` family checks
the parsed value against the structure a reader needs and names the JSON path that differs.
"""

from __future__ import annotations

import json

import numpy as np

from ..errors import FormatError
from .budget import charge
from .files import read_bytes
from .limits import MAX_NDIM, get_limits, short_repr

MAX_INT_DIGITS = 40
JSON_OBJECTS = 32     # parsed JSON takes up to ~30 times its text in Python objects ([{}, {}, ...])
_STEP = np.zeros(256, np.int8)                 # +1 for [ and {, -1 for ] and }
_STEP[[ord("["), ord("{")]] = 1
_STEP[[ord("]"), ord("}")]] = -1


def json_depth(data: bytes) -> int:
    """Deepest bracket nesting of JSON text ``data``, brackets inside strings ignored.

    Vectorised and linear, with no regular expression (a string pattern backtracks on
    hostile text such as a long run of ``"\\``): a character is escaped when an odd run
    of backslashes precedes it; unescaped quotes toggle "inside a string"; brackets count
    only outside. Exact for valid JSON; for invalid text the parser reports the error.
    """
    arr = np.frombuffer(data, np.uint8)
    n = arr.size
    if n == 0:
        return 0
    index = np.int32 if n < 2 ** 31 else np.int64        # halves the memory of a big file
    pos = np.arange(n, dtype=index)
    backslash = arr == 0x5C
    last_other = np.maximum.accumulate(np.where(backslash, index(-1), pos))     # n
    run_before = np.zeros(n, index)                      # backslashes just before each byte
    run_before[1:] = pos[:-1] - last_other[:-1]
    quote = (arr == 0x22) & (run_before % 2 == 0)
    outside = np.cumsum(quote, dtype=index) % 2 == 0
    return int(np.cumsum(_STEP[arr] * outside, dtype=index).max())


def _parse_int(text):
    digits = text.lstrip("-")
    if len(digits) > MAX_INT_DIGITS:
        raise ValueError(f"an integer of {len(digits)} digits (at most {MAX_INT_DIGITS})")
    return int(text)


def _parse_float(text):
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"the number {text[:30]} overflows a double")
    return value


def _refuse_constant(name):
    raise ValueError(f"{name} is not a JSON number (only finite numbers are accepted)")


def loads_json(data, source: str, max_depth: int | None = None, what: str = "JSON"):
    """Parse JSON bytes/str with the bounds above; FormatError naming ``source``."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    limit = get_limits().max_depth if max_depth is None else max_depth
    charge(JSON_OBJECTS * len(data), f"{what} parsed into Python objects", source)
    depth = json_depth(data)
    if depth > limit:
        raise FormatError(f"{source}: JSON nested {depth} levels deep; at most {limit} are "
                          "accepted")
    try:
        text = data.decode("utf-8")
        return json.loads(text, parse_int=_parse_int, parse_float=_parse_float,
                          parse_constant=_refuse_constant)
    except UnicodeDecodeError as exc:
        raise FormatError(f"{source}: not UTF-8 text (byte {exc.start}); expected {what}") from None
    except json.JSONDecodeError as exc:
        raise FormatError(f"{source}: not valid {what}: {exc.msg} at line {exc.lineno} column "
                          f"{exc.colno}") from None
    except (ValueError, RecursionError) as exc:
        raise FormatError(f"{source}: not acceptable {what}: {str(exc)[:200]}") from None


def load_json(path, what="JSON", max_depth: int | None = None):
    """Read and parse a regular JSON file (size checked against the ceiling first)."""
    return loads_json(read_bytes(path, what), str(path), max_depth, what)


# --- structure checks --------------------------------------------------------------------
_TYPES = {dict: "an object", list: "an array", str: "a string", int: "an integer",
          float: "a number", bool: "true or false", type(None): "null"}


def describe(value) -> str:
    """'an array of 3 items', 'a string', ... for messages."""
    kind = _TYPES.get(type(value), type(value).__name__)
    if isinstance(value, (list, dict)):
        return f"{kind} of {len(value)} item{'s' if len(value) != 1 else ''}"
    return f"{kind} ({short_repr(value, 30)})"


def expect(value, kinds, where: str, source: str):
    """``value`` if it is one of ``kinds`` (bool is never an int here), else FormatError
    saying what ``where`` (a JSON path like ``tensors["x"].shape``) should be."""
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)
    if not ok:
        wanted = " or ".join(_TYPES.get(k, k.__name__) for k in kinds)
        raise FormatError(f"{source}: {where} should be {wanted}, found {describe(value)}")
    return value


def expect_keys(obj, required, where: str, source: str, optional=()) -> dict:
    """``obj`` if it is an object holding every key of ``required`` (and no unknown key
    when ``optional`` is not None)."""
    expect(obj, dict, where, source)
    missing = [k for k in required if k not in obj]
    if missing:
        raise FormatError(f"{source}: {where} lacks {', '.join(map(repr, missing))} "
                          f"(found keys {short_repr(sorted(map(str, obj))[:8], 120)})")
    if optional is not None:
        extra = [k for k in obj if k not in required and k not in optional]
        if extra:
            raise FormatError(f"{source}: {where} has unknown key {short_repr(extra[0])}")
    return obj


def expect_shape(value, where: str, source: str) -> tuple:
    """A list of at most 32 non-negative integers (a tensor shape), as a tuple."""
    expect(value, list, where, source)
    if len(value) > MAX_NDIM:
        raise FormatError(f"{source}: {where} has {len(value):,} axes; a tensor has at most "
                          f"{MAX_NDIM}")
    for i, d in enumerate(value):
        if not (type(d) is int and d >= 0):
            raise FormatError(f"{source}: {where}[{i}] should be a non-negative integer, "
                              f"found {describe(d)}")
    return tuple(value)


def expect_str_map(obj, where: str, source: str) -> dict:
    """An object whose values are all strings (a name map)."""
    expect(obj, dict, where, source)
    for k, v in obj.items():
        expect(v, str, f"{where}[{short_repr(k, 40)}]", source)
    return obj
