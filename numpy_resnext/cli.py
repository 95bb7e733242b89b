"""The ``numpy-resnext`` command line.

Each command lives in its own module under :mod:`numpy_resnext.commands` with two
functions: ``add_parser(subparsers)`` and ``run(args) -> exit status``. Errors this
package raises on purpose are printed as one clear line (exit 2); anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import ResNeXtError

# command modules, in the order `--help` lists them
COMMANDS = ["demo", "archs", "summary", "forward", "convert", "classify", "golden", "compare", "audit", "explain", "grad", "export", "conformance"]


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    parser = argparse.ArgumentParser(
        prog="numpy-resnext",
        description="ResNeXt (aggregated residual transformations) in pure NumPy: "
                    "architectures, forward passes, weight files, golden outputs.",
        epilog="Run `numpy-resnext COMMAND --help` for a command's options and an example.")
    parser.add_argument("--version", action="version", version=f"numpy-resnext {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        module = importlib.import_module(f".commands.{name}", __package__)
        p = module.add_parser(sub)
        p.set_defaults(_run=module.run)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 0
    try:
        return int(args._run(args) or 0)
    except ResNeXtError as exc:
        print(f"numpy-resnext {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"numpy-resnext {args.command}: error: file not found: {exc.filename}", file=sys.stderr)
        return 2
    except BrokenPipeError:           # e.g. `numpy-resnext summary X | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
