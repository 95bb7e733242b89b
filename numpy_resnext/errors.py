"""Exceptions raised by numpy-resnext, and the one place every message passes.

Every error names what was expected and what was found, so a user can act on it
without reading the source. All of them derive from ``ResNeXtError`` and from the
matching built-in (``ValueError``/``TypeError``/``KeyError``/``OSError``/``MemoryError``),
so callers may catch either.

A message quotes what files and users give (tensor names, keys, paths, metadata), and a
hostile file can put terminal control sequences there: retitle the window, clear the
screen, move the cursor to overwrite a line, or start a new line that looks like this
package's output. So ``str()`` of every ResNeXtError is :func:`one_line`: every control
character escaped as Python would write it (``\\x1b``, ``\\r``, ``\\u202e``), line breaks
of the message itself turned into "; ", and at most :data:`MAX_MESSAGE` characters.
The command line sends everything else it prints through :func:`printable` too
(:mod:`numpy_resnext.cli`).
"""

import re

MAX_MESSAGE = 4000      # characters of one error message, after escaping
# C0 and C1 controls, DEL, the Unicode line and paragraph separators, the bidirectional
# overrides and isolates (which reorder what follows on the line), lone surrogates
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200e\u200f\u202a-\u202e"
                      "\u2066-\u2069\ud800-\udfff]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_BREAKS = re.compile(r"[ \t]*\n[ \t]*")


def _escape(match) -> str:
    c = match.group()
    code = ord(c)
    return _NAMED.get(c) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def _cut(text: str, limit: int) -> str:
    """The head and the tail of ``text`` with a count of what was left out between."""
    tail = min(300, limit // 4)
    marker = f" ... [{len(text) - limit} characters left out] ... "
    return text[:max(limit - tail - len(marker), 0)] + marker + text[len(text) - tail:]


def printable(text, limit: int | None = None, keep_lines: bool = False) -> str:
    """``text`` with every control character escaped (line breaks too, unless
    ``keep_lines``) and, with ``limit``, at most about that many characters."""
    text = text if isinstance(text, str) else str(text)
    if limit is not None and len(text) > limit:
        text = _cut(text, limit)
    if keep_lines:
        out = "\n".join(_CONTROL.sub(_escape, line) for line in text.split("\n"))
    else:
        out = _CONTROL.sub(_escape, text)
    if limit is not None and len(out) > limit + 60:       # escapes made it longer
        out = _cut(out, limit)
    return out


def one_line(text, limit: int = MAX_MESSAGE) -> str:
    """A message as one printable line: its own line breaks become "; " (": " after a
    colon), every other control character is escaped, at most ``limit`` characters."""
    text = text if isinstance(text, str) else str(text)
    text = _BREAKS.sub("\n", text[:4 * limit + 1000]).replace(":\n", ": ").replace("\n", "; ")
    return printable(text, limit)


class ResNeXtError(Exception):
    """Base class of every error this package raises on purpose."""

    def __str__(self):
        # one printable line (the KeyError and OSError bases would repr() the message or
        # format an errno; a message is shown plainly)
        if len(self.args) == 1:
            return one_line(self.args[0])
        return one_line(", ".join(map(str, self.args)))


class ArchitectureError(ResNeXtError, KeyError):
    """An unknown architecture name or an inconsistent custom configuration."""

    __str__ = ResNeXtError.__str__


class InputError(ResNeXtError, ValueError):
    """An input array of the wrong rank, channel count, size or dtype."""


class InputTypeError(ResNeXtError, TypeError):
    """An input array of an unsupported dtype (integer, complex, object)."""


class WeightsError(ResNeXtError, ValueError):
    """Weights that do not match the architecture (names, shapes, dtypes, values)."""


class FormatError(ResNeXtError, ValueError):
    """A weight or data file that cannot be read (truncated, wrong magic, unsafe)."""


class OutputError(ResNeXtError, OSError):
    """An output file that cannot be written (permission, read-only file system, name too
    long, disk full, a target that is not a regular file); nothing half-written is left
    behind."""

    __str__ = ResNeXtError.__str__


class BudgetError(ResNeXtError, MemoryError):
    """A computation or a read that would need more memory than the budget allows; the
    message names the size and how to raise the budget."""
