"""Command-line front end: ``kerasimgcls <command> ...`` (also ``python -m kerasimgcls``).

Each command lives in a module of this package that exposes ``add_parser`` (adds its
sub-parser and sets ``handler``) and is listed in ``_COMMANDS``. The handler returns
the exit code: 0 on success, 2 for bad input (one line in the CLI's words, the
traceback with ``--verbose``), 1 for a failed run (such as a diverged training), 130
for Ctrl-C.

The command line answers at once: only the module of the command being run is
imported, and command modules import TensorFlow inside their handlers, so ``--help``
and ``--version`` never start it. TensorFlow's start-up lines (oneDNN, CUDA, CPU
features, absl) are kept off the output unless ``--verbose`` is given.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import logging
import re
import sys
from collections.abc import Sequence

from kerasimgcls._version import __version__
from kerasimgcls.cli._quiet import quiet_tensorflow

__all__ = ["build_parser", "main"]

# Command name -> (module, one-line help). The help is repeated here so the
# top-level --help imports no command module.
_COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("_train", "train a model and write a run directory"),
    "evaluate": (
        "_evaluate",
        "score a run's model: metrics.json, report.json, pictures",
    ),
    "predict": ("_predict", "print the top-k classes of image files"),
    "explain": ("_explain", "write Grad-CAM heatmaps showing where the model looks"),
    "report": ("_report", "write report.html: a run at a glance, for a browser"),
    "export": ("_export", "export a run's model for serving: SavedModel, ONNX, LiteRT"),
    "lr-find": ("_lr_find", "suggest a learning rate with a range test"),
    "doctor": ("_doctor", "check a folder of images: broken files, empty classes"),
    "summary": ("_summary", "print a model's layers, output shapes and parameters"),
}

# Exceptions that mean "bad input": reported on one line, without a traceback.
_USER_ERRORS = (
    ValueError,
    TypeError,
    FileNotFoundError,
    NotADirectoryError,
    IsADirectoryError,
    FileExistsError,
    PermissionError,
    ModuleNotFoundError,  # an optional extra is not installed; the message names it
    RuntimeError,
)

# The library's messages name Python arguments; the command line has flags. Each
# pattern is the library's wording, replaced by the CLI's.
_CLI_WORDS: tuple[tuple[str, str], ...] = (
    (r"Pass image_size=\(height, width\)", "Pass --image-size HEIGHT,WIDTH"),
    (r"image_size=\(\.\.\.\)|image_size=", "--image-size "),
    (r"Pass on_error='skip'", "Pass --skip-bad-images"),
    (r"overwrite=True \(--overwrite\)|overwrite=True", "--overwrite"),
    (r"Use a new run_dir", "Use a new --run-dir"),
    (r"\brun_dir\b", "--run-dir"),
    (r"^output\b", "--output"),
)
# kerasimgcls.load_model(path) speaks of "path"; these commands call it RUN_DIR.
_RUN_DIR_COMMANDS = ("evaluate", "predict", "explain", "report", "export")
_RUN_DIR_WORDS: tuple[tuple[str, str], ...] = (
    (r"^path does not exist", "RUN_DIR does not exist"),
    (r"^path must be a \.keras file", "RUN_DIR must be a run directory or .keras file"),
)


def in_cli_words(message: str, command: str | None = None) -> str:
    """Return a library error message with Python argument names replaced by flags.

    Example:
        >>> in_cli_words("images differ in size. Pass image_size=(height, width).")
        'images differ in size. Pass --image-size HEIGHT,WIDTH.'
        >>> in_cli_words("path does not exist: 'runs/x'", "predict")
        "RUN_DIR does not exist: 'runs/x'"
    """
    rules = _CLI_WORDS + (_RUN_DIR_WORDS if command in _RUN_DIR_COMMANDS else ())
    for pattern, replacement in rules:
        message = re.sub(pattern, replacement, message)
    return message


def _command_module(name: str) -> object:
    return importlib.import_module(f"kerasimgcls.cli.{_COMMANDS[name][0]}")


def build_parser(commands: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """Return the argument parser of the ``kerasimgcls`` command.

    Args:
        commands: The commands whose sub-parsers are built in full (``None`` for
            all); the others are listed with their one-line help only, so building
            the parser imports just the modules that are needed.

    Example:
        >>> from kerasimgcls.cli import build_parser
        >>> build_parser(["summary"]).parse_args(["summary", "cifar_cnn"]).model
        'cifar_cnn'
    """
    parser = argparse.ArgumentParser(
        prog="kerasimgcls",
        description="Train, evaluate, explain, report on and export Keras image "
        "classifiers.",
    )
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {__version__}"
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show tracebacks, debug logs and TensorFlow's start-up messages",
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_module, summary) in _COMMANDS.items():
        if commands is None or name in commands:
            module = _command_module(name)
            module.add_parser(subparsers)  # type: ignore[attr-defined]
        else:
            subparsers.add_parser(name, help=summary, add_help=False)
    return parser


def _requested_command(argv: Sequence[str]) -> list[str]:
    """The command named in ``argv`` (the first word that is one), if any."""
    return [word for word in argv if word in _COMMANDS][:1]


def _is_failed_run(err: BaseException) -> bool:
    """Whether ``err`` means the run itself failed (exit code 1), not the input."""
    # Only a process that trained can raise it; looking it up in sys.modules
    # keeps TensorFlow out of every other command.
    divergence = sys.modules.get("kerasimgcls.training._divergence")
    return divergence is not None and isinstance(err, divergence.TrainingDivergedError)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with ``argv`` (``sys.argv[1:]`` if ``None``).

    Returns:
        The exit code: 0 on success, 2 on bad input, 1 on a failed run (such as a
        diverged training) or any other failure, 130 when interrupted.

    Example:
        >>> from kerasimgcls.cli import main
        >>> main(["summary", "cifar_cnn"])  # doctest: +SKIP
        0
    """
    words = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(_requested_command(words))
    args = parser.parse_args(words)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(message)s",
    )
    args.argv = words
    with contextlib.nullcontext() if args.verbose else quiet_tensorflow():
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    try:
        code: int = args.handler(args)
    except _USER_ERRORS as err:
        if args.verbose:
            raise
        message = in_cli_words(str(err), args.command)
        print(f"kerasimgcls {args.command}: error: {message}", file=sys.stderr)
        return 1 if _is_failed_run(err) else 2
    except KeyboardInterrupt:
        print(f"kerasimgcls {args.command}: interrupted", file=sys.stderr)
        return 130
    return code
