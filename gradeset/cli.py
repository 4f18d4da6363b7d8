"""The ``gradeset`` command: a thin layer that parses flags and calls library functions.

Each command module in ``gradeset.commands`` has ``register(subparsers)`` which adds its
parser(s) with ``set_defaults(func=...)``. Modules must import only light things at
module level (heavy libraries inside the function), so ``gradeset --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from gradeset import __version__
from gradeset.errors import GradesetError

# Order is the order of ``gradeset --help``.
COMMAND_MODULES = [
    "inspect", "convert", "synth", "extract", "prompts_from_docs", "load", "prepare", "augment",
    "generate", "verify", "audit", "build", "balance", "split", "dedup", "decontaminate", "batch", "export",
    "check", "eval", "traces", "train", "run", "serve", "push",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gradeset",
        description="Build graded post-training datasets: sample, grade, shape, check.",
    )
    parser.add_argument("--version", action="version", version=f"gradeset {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            mod = importlib.import_module(f"gradeset.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"gradeset.commands.{name}":
                continue  # command not built yet
            raise
        mod.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    from gradeset.io.preflight import CURRENT_COMMAND, check_outputs, os_error_message

    token = CURRENT_COMMAND.set(args.command)
    try:
        check_outputs(args, args.command)  # an unwritable output fails now, not after the work
        code = args.func(args)
    except GradesetError as exc:
        print(f"gradeset: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:  # the net under check_outputs: a full disk, a folder removed mid-run ...
        if isinstance(exc, BrokenPipeError):
            return 0
        print(f"gradeset: error: {os_error_message(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("gradeset: interrupted; finished work is kept and a re-run resumes", file=sys.stderr)
        return 130
    finally:
        CURRENT_COMMAND.reset(token)
    return int(code or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
