"""Command-line front end: ``kerasimgcls <command> ...`` (also ``python -m kerasimgcls``).

Each command lives in a module of this package that exposes ``add_parser`` (adds its
sub-parser and sets ``handler``) and is listed in ``_COMMANDS``. The handler returns
the exit code. Errors in user input become a one-line message and exit code 2;
``--verbose`` shows the traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from types import ModuleType

from kerasimgcls._version import __version__

__all__ = ["main"]

# Exceptions that mean "bad input": reported on one line, without a traceback.
_USER_ERRORS = (
    ValueError,
    TypeError,
    FileNotFoundError,
    NotADirectoryError,
    IsADirectoryError,
    FileExistsError,
    PermissionError,
    RuntimeError,
)


def _command_modules() -> list[ModuleType]:
    from kerasimgcls.cli import (
        _doctor,
        _evaluate,
        _explain,
        _lr_find,
        _predict,
        _summary,
        _train,
    )

    return [_train, _evaluate, _predict, _explain, _lr_find, _doctor, _summary]


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the ``kerasimgcls`` command."""
    parser = argparse.ArgumentParser(
        prog="kerasimgcls",
        description="Train, evaluate and explain Keras image classifiers.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show tracebacks and debug logs"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for module in _command_modules():
        module.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (``sys.argv[1:]`` if ``None``).

    Returns:
        The exit code: 0 on success, 2 on bad input, 1 on any other failure.

    Example:
        >>> from kerasimgcls.cli import main
        >>> main(["summary", "cifar_cnn"])  # doctest: +SKIP
        0
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(message)s",
    )
    args.argv = list(sys.argv[1:] if argv is None else argv)
    try:
        code: int = args.handler(args)
    except _USER_ERRORS as err:
        if args.verbose:
            raise
        print(f"kerasimgcls {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"kerasimgcls {args.command}: interrupted", file=sys.stderr)
        return 130
    return code
