"""Exceptions raised by numpy-resnext.

Every error names what was expected and what was found, so a user can act on it
without reading the source. All of them derive from ``ResNeXtError`` and from the
matching built-in (``ValueError``/``TypeError``/``KeyError``), so callers may catch
either.
"""


class ResNeXtError(Exception):
    """Base class of every error this package raises on purpose."""


class ArchitectureError(ResNeXtError, KeyError):
    """An unknown architecture name or an inconsistent custom configuration."""

    def __str__(self):  # KeyError would repr() the message; show it plainly
        return str(self.args[0]) if self.args else ""


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
    long, disk full); nothing half-written is left behind."""

    def __str__(self):  # OSError would format (errno, strerror); show the message plainly
        return str(self.args[0]) if self.args else ""
