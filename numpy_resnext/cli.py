"""The ``numpy-resnext`` command line.

Each command lives in its own module under :mod:`numpy_resnext.commands` with two
functions: ``add_parser(subparsers)`` and ``run(args) -> exit status``. Errors this
package raises on purpose are printed as one clear line (exit 2), and so are the
parser's own (a bad option value names the option). An error of the operating system
(an input that fails to read, an output device that fails) is one line naming the file.
Anything else is a bug: it is reported as one line saying so (exit 2; the traceback with
NUMPY_RESNEXT_TRACEBACK=1), a last line of defence only: every known kind of bad input
has its own error.

What a command prints goes through one place, :class:`Terminal`, around stdout and
stderr: every control character but the line break is escaped there
(:func:`numpy_resnext.errors.printable`), so a name from a file cannot retitle the window,
clear the screen or overwrite a line; a report that shows such a name escapes its line
breaks too, and a Python warning becomes one line.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
import warnings

from . import __version__
from .bounded import set_limits, set_memory_budget
from .errors import ResNeXtError, one_line, printable


class Terminal:
    """A text stream that writes ``printable(text, keep_lines=True)`` to ``stream``."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text):
        return self.stream.write(printable(text, keep_lines=True))

    def __getattr__(self, name):            # flush, isatty, encoding ... as the stream has them
        return getattr(self.stream, name)


class ParseError(Exception):
    """A command line the parser refused (printed as one line by :func:`main`, exit 2)."""


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (the option and what is wrong; --help for usage),
    returned by :func:`main` as exit status 2 like every other error."""

    def error(self, message):
        raise ParseError(f"{self.prog}: error: {one_line(message)} (see `{self.prog} --help`)")

# commands, in the order `--help` lists them (module: the name with "-" as "_")
COMMANDS = ["demo", "archs", "summary", "forward", "convert", "classify", "golden", "compare", "audit", "explain", "grad", "export", "conformance",
            "train-demo", "golden-set", "set-status", "compare-set"]


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="numpy-resnext",
        description="ResNeXt (aggregated residual transformations) in pure NumPy: "
                    "architectures, forward passes, weight files, golden outputs.",
        epilog="Run `numpy-resnext COMMAND --help` for a command's options and an example.")
    parser.add_argument("--version", action="version", version=f"numpy-resnext {__version__}")
    parser.add_argument("--max-bytes", metavar="SIZE",
                        help="reading limit for one input file's content, e.g. 16G (default "
                             "8G, or $NUMPY_RESNEXT_MAX_BYTES); see docs/formats.md")
    parser.add_argument("--max-memory", metavar="SIZE",
                        help="memory budget of a computation, e.g. 32G (default: what the "
                             "machine and the process's limits allow, or "
                             "$NUMPY_RESNEXT_MAX_MEMORY); see docs/formats.md")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f".commands.{name.replace('-', '_')}", __package__)
        p = module.add_parser(sub)
        p.set_defaults(_run=module.run)
    return parser


def _printable_streams():
    """Names from files may hold lone surrogates (undecodable bytes): print them escaped
    instead of failing with UnicodeEncodeError."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(errors="backslashreplace")
        except (AttributeError, ValueError, OSError):
            pass


def _warning(command):
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"numpy-resnext {command}: warning: {one_line(message, 300)}", file=sys.stderr)
    return show


def main(argv=None) -> int:
    _printable_streams()
    with contextlib.ExitStack() as stack:
        stack.enter_context(contextlib.redirect_stdout(Terminal(sys.stdout)))
        stack.enter_context(contextlib.redirect_stderr(Terminal(sys.stderr)))
        stack.enter_context(warnings.catch_warnings())
        return _main(argv)


def _main(argv) -> int:
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(argv)
        # a command whose positionals are a list (classify's [ARCH] IMAGE...) takes those after
        # its options too, as argparse does for a list that follows a single positional
        more = getattr(args, "_more_positionals", None)
        if extra and more and not any(e.startswith("-") for e in extra):
            getattr(args, more).extend(extra)
        elif extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    except ParseError as exc:
        print(exc, file=sys.stderr)
        return 2
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0
    warnings.showwarning = _warning(args.command)
    where = f"numpy-resnext {args.command}: error:"
    try:
        if args.max_bytes:
            set_limits(max_bytes=args.max_bytes)
        if args.max_memory:
            set_memory_budget(args.max_memory)
        return int(args._run(args) or 0)
    except ResNeXtError as exc:
        print(f"{where} {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:           # e.g. `numpy-resnext summary X | head`
        sys.stderr.close()
        return 0
    except OSError as exc:            # the system refused a file: say which and why
        name = exc.filename if exc.filename is not None else "a file"
        why = exc.strerror or type(exc).__name__
        print(f"{where} {one_line(f'cannot access {name}: {why}', 1000)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (Exception, RecursionError, MemoryError) as exc:   # the last line of defence
        if os.environ.get("NUMPY_RESNEXT_TRACEBACK"):
            raise
        print(f"numpy-resnext {args.command}: internal error: {type(exc).__name__}: "
              f"{one_line(str(exc), 200)}; this is a bug, please report it (set "
              "NUMPY_RESNEXT_TRACEBACK=1 for the traceback)", file=sys.stderr)
        return 2
