"""The ``numpy-resnext`` command line.

Each command lives in its own module under :mod:`numpy_resnext.commands` with two
functions: ``add_parser(subparsers)`` and ``run(args) -> exit status``. Errors this
package raises on purpose are printed as one clear line (exit 2). Anything else is a bug:
it is reported as one line saying so (exit 2; the traceback with NUMPY_RESNEXT_TRACEBACK=1),
a last line of defence only: every known kind of bad input has its own error.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from . import __version__
from .bounded import set_limits
from .errors import ResNeXtError

# commands, in the order `--help` lists them (module: the name with "-" as "_")
COMMANDS = ["demo", "archs", "summary", "forward", "convert", "classify", "golden", "compare", "audit", "explain", "grad", "export", "conformance",
            "train-demo", "golden-set", "set-status", "compare-set"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="numpy-resnext",
        description="ResNeXt (aggregated residual transformations) in pure NumPy: "
                    "architectures, forward passes, weight files, golden outputs.",
        epilog="Run `numpy-resnext COMMAND --help` for a command's options and an example.")
    parser.add_argument("--version", action="version", version=f"numpy-resnext {__version__}")
    parser.add_argument("--max-bytes", metavar="SIZE",
                        help="reading limit for one input file's content, e.g. 16G (default "
                             "8G, or $NUMPY_RESNEXT_MAX_BYTES); see docs/formats.md")
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


def main(argv=None) -> int:
    _printable_streams()
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # a command whose positionals are a list (classify's [ARCH] IMAGE...) takes those after its
    # options too, as argparse does for a list that follows a single positional
    more = getattr(args, "_more_positionals", None)
    if extra and more and not any(e.startswith("-") for e in extra):
        getattr(args, more).extend(extra)
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0
    try:
        if args.max_bytes:
            set_limits(max_bytes=args.max_bytes)
        return int(args._run(args) or 0)
    except ResNeXtError as exc:
        print(f"numpy-resnext {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"numpy-resnext {args.command}: error: file not found: {exc.filename}", file=sys.stderr)
        return 2
    except (PermissionError, IsADirectoryError, NotADirectoryError) as exc:
        print(f"numpy-resnext {args.command}: error: cannot access {exc.filename}: "
              f"{exc.strerror}", file=sys.stderr)
        return 2
    except BrokenPipeError:           # e.g. `numpy-resnext summary X | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (Exception, RecursionError, MemoryError) as exc:   # the last line of defence
        if os.environ.get("NUMPY_RESNEXT_TRACEBACK"):
            raise
        print(f"numpy-resnext {args.command}: internal error: {type(exc).__name__}: "
              f"{str(exc)[:200]}; this is a bug, please report it (set "
              "NUMPY_RESNEXT_TRACEBACK=1 for the traceback)", file=sys.stderr)
        return 2

