"""Command-line front end: ``kerasimgcls <command> ...`` (also ``python -m kerasimgcls``).

Each command lives in a module of this package that exposes ``add_parser`` (adds its
sub-parser and sets ``handler``) and is listed in ``_COMMANDS``. The handler returns
the exit code, and an exception becomes one by whose fault it is (:data:`EXIT_CODES`):
0 on success, 1 for a failed run (such as a diverged training), 2 for a usage error
(one line in the CLI's words), 70 for an internal error (a failure inside the
library or a library it uses: one line asking for a report), 130 for Ctrl-C. With
``--verbose`` every error shows its traceback.

The command line answers at once: only the module of the command being run is
imported, and command modules import TensorFlow inside their handlers, so ``--help``
and ``--version`` never start it. TensorFlow's start-up lines (oneDNN, CUDA, CPU
features, absl) are kept off the output unless ``--verbose`` is given.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import importlib
import logging
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from kerasimgcls._version import __version__
from kerasimgcls.cli._quiet import quiet_tensorflow

__all__ = ["EXIT_CODES", "UsageError", "build_parser", "exit_code_of", "main"]

#: The exit codes of ``kerasimgcls``, by whose fault the command stopped.
EXIT_CODES: dict[int, str] = {
    0: "success",
    1: "the run failed: a training diverged, doctor or predict found bad files",
    2: "usage error: a wrong argument, a missing or unreadable file, a bad value, "
    "a missing optional extra, a full or read-only disk (one line says which)",
    70: "internal error: a failure inside kerasimgcls or a library it uses, not "
    "in the input (one line; please report it with the output of --verbose)",
    130: "interrupted (Ctrl-C)",
}
_EXIT_FAILED, _EXIT_USAGE, _EXIT_INTERNAL, _EXIT_INTERRUPTED = 1, 2, 70, 130
_PACKAGE_DIR = str(Path(__file__).resolve().parent.parent) + os.sep

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

# Exceptions that mean "bad input" when the library raised them on purpose.
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
    # doctor's advice (kerasimgcls.data._check), most specific first
    (
        r"fix or remove them, or load with on_error='skip'",
        "fix or remove them, or train with --skip-bad-images",
    ),
    (
        r"pass image_size=\(height, width\) to load_image_folder to resize them "
        r"\([^)]*\)",
        "train resizes them to one size and says which, or pass "
        "--image-size HEIGHT,WIDTH",
    ),
    (r"consider class_weight='balanced'", "consider --class-weight balanced"),
    (r"Pass image_size=\(height, width\)", "Pass --image-size HEIGHT,WIDTH"),
    (r"image_size=\(\.\.\.\)|image_size=", "--image-size "),
    (r"Pass on_error='skip'", "Pass --skip-bad-images"),
    (r"input_scaling='(raw|unit|auto)'", r"--input-scaling \1"),
    (r"overwrite=True \(--overwrite\)|overwrite=True", "--overwrite"),
    (r"Use a new run_dir", "Use a new --run-dir"),
    (r"\brun_dir\b", "--run-dir"),
    (r"^output\b", "--output"),
    (r"\bformat='(\w+)'", r"--format \1"),
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


class UsageError(Exception):
    """A command line that cannot run as written: one line for standard error.

    Raised by the parser of ``kerasimgcls`` (an unknown option, a value out of
    range, a missing argument) instead of printing the usage and exiting, so
    :func:`main` answers in one line with exit code 2.
    """

    def __init__(self, prog: str, message: str) -> None:
        super().__init__(message)
        self.prog = prog
        self.message = message

    def __str__(self) -> str:
        return f"{self.prog}: {self.message}"


class _Parser(argparse.ArgumentParser):
    """An argument parser that refuses abbreviations and reports errors in one line.

    ``--epoch 3`` is not taken as ``--epochs 3`` (``allow_abbrev=False``, on the
    sub-parsers too: they are made by this class), and an error raises
    :class:`UsageError` instead of printing the usage.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        """Raise :class:`UsageError` with ``message`` in the command line's words."""
        command = re.match(r"argument COMMAND: invalid choice: '(.*?)'", message)
        if command is not None:
            raise UsageError(self.prog, _unknown_command(command.group(1)))
        # "argument --epochs: --epochs must be ..." -> "--epochs must be ..."
        named = re.match(r"argument (\S+?)(?:/\S+)?: (.*)", message, re.DOTALL)
        if named is not None:
            flag, text = named.groups()
            message = text if text.startswith(flag) else f"{flag}: {text}"
        raise UsageError(self.prog, f"error: {_one_line(message)}")


def _unknown_command(word: str) -> str:
    close = difflib.get_close_matches(word, list(_COMMANDS), n=1)
    hint = f"did you mean {close[0]}?" if close else "see kerasimgcls --help"
    return f"unknown command {word!r}; {hint}"


def _flags_of(parser: argparse.ArgumentParser) -> list[str]:
    """The option strings ``parser`` accepts, read from its help.

    Each option's line of the help starts, indented by two spaces, with every
    spelling of it (``-k TOP_K, --top-k TOP_K``); the usage line shows only one.
    """
    flags: set[str] = set()
    for line in parser.format_help().splitlines():
        invocation = re.match(r"  (-\S.*?)(?:\s{2,}|$)", line)
        if invocation is not None:
            flags.update(re.findall(r"(?<![\w-])(--?[A-Za-z][\w-]*)", invocation[1]))
    return sorted(flags)


def _unknown_arguments(
    extras: Sequence[str], parser: argparse.ArgumentParser, prog: str
) -> UsageError:
    """The error for words no option took, with the nearest option of ``parser``."""
    flags = [word for word in extras if word.startswith("-") and word != "-"]
    if not flags:
        return UsageError(prog, f"error: unrecognized arguments: {' '.join(extras)}")
    flag = flags[0].split("=", 1)[0]
    if flag in ("-v", "--verbose"):
        return UsageError(
            prog,
            f"{flag} goes before the command: kerasimgcls {flag} "
            f"{prog.removeprefix('kerasimgcls ')} ...",
        )
    close = difflib.get_close_matches(flag, _flags_of(parser), n=1)
    hint = f"did you mean {close[0]}?" if close else f"see {prog} --help"
    return UsageError(prog, f"unknown option {flag}; {hint}")


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
    parser = _Parser(
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
    parser.commands = subparsers.choices  # type: ignore[attr-defined]
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
        The exit code, one of :data:`EXIT_CODES`: 0 on success, 1 on a failed run
        (such as a diverged training), 2 on a usage error, 70 on an internal error,
        130 when interrupted.

    Example:
        >>> from kerasimgcls.cli import main
        >>> main(["summary", "cifar_cnn"])  # doctest: +SKIP
        0
    """
    words = list(sys.argv[1:] if argv is None else argv)
    try:
        args = _parse(words)
    except UsageError as err:
        print(err, file=sys.stderr)
        return _EXIT_USAGE
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(message)s",
    )
    args.argv = words
    words_filter = _InCliWords(args.command)
    handlers = logging.getLogger().handlers
    for handler in handlers:
        handler.addFilter(words_filter)
    try:
        with contextlib.nullcontext() if args.verbose else quiet_tensorflow():
            return _run(args)
    finally:
        for handler in handlers:
            handler.removeFilter(words_filter)


def _parse(words: list[str]) -> argparse.Namespace:
    """Parse ``words``; an unknown option raises :class:`UsageError` naming the nearest."""
    requested = _requested_command(words)
    parser = build_parser(requested)
    args, extras = parser.parse_known_args(words)
    if extras:
        command_parsers = _command_parsers(parser)
        command = command_parsers.get(args.command)
        prog = f"kerasimgcls {args.command}" if command else "kerasimgcls"
        raise _unknown_arguments(extras, command or parser, prog)
    return args


def _command_parsers(
    parser: argparse.ArgumentParser,
) -> dict[str, argparse.ArgumentParser]:
    """The sub-parser of each command of ``parser`` (built by :func:`build_parser`)."""
    subparsers: dict[str, argparse.ArgumentParser] = getattr(parser, "commands", {})
    return subparsers


class _InCliWords(logging.Filter):
    """Say the library's log messages with the command line's flags."""

    def __init__(self, command: str) -> None:
        super().__init__()
        self.command = command

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cli_message = in_cli_words(message, self.command)
        if cli_message != message:
            record.msg, record.args = cli_message, None
        return True


def _raised_by_library(err: BaseException) -> bool:
    """Whether kerasimgcls' own code raised ``err`` (not Keras, TensorFlow, ...)."""
    traceback = err.__traceback__
    if traceback is None:
        return True
    while traceback.tb_next is not None:
        traceback = traceback.tb_next
    filename = os.path.abspath(traceback.tb_frame.f_code.co_filename)
    return filename.startswith(_PACKAGE_DIR)


def exit_code_of(err: BaseException) -> int:
    """Return the exit code of a command that stopped with ``err``.

    A usage error (2) is one the library raised on purpose about its input, or
    any operating-system error (a missing, unreadable or full file), or a missing
    optional module. A failed run (1) is a training that diverged. Anything else,
    such as an error raised deep inside Keras, is an internal error (70): it is not
    the user's fault, and must not look as if it were.

    Example:
        >>> from kerasimgcls._validation import check_positive_int
        >>> from kerasimgcls.cli import exit_code_of
        >>> try:
        ...     check_positive_int(-1, "epochs")
        ... except ValueError as err:
        ...     exit_code_of(err)
        2
        >>> exit_code_of(KeyError("a bug"))
        70
    """
    if _is_failed_run(err):
        return _EXIT_FAILED
    if isinstance(err, (OSError, ModuleNotFoundError)):
        return _EXIT_USAGE
    if isinstance(err, _USER_ERRORS) and _raised_by_library(err):
        return _EXIT_USAGE
    return _EXIT_INTERNAL


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split("\n")[0].split()) if text else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _user_message(err: BaseException, limit: int = 600) -> str:
    """The one line a usage error prints: all of its message, control chars escaped.

    Messages of Keras or NumPy may span many lines (a layer table, a stack of
    reasons); their lines are joined, so the line still says what went wrong.
    """
    from kerasimgcls._validation import printable

    if isinstance(err, OSError) and err.strerror and err.filename is None:
        text = err.strerror  # the library's own OSError(errno, message)
    else:
        text = str(err) or type(err).__name__
    line = printable(" ".join(text.split()))
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _run(args: argparse.Namespace) -> int:
    try:
        # The validation stage: standard-library checks of the arguments (paths,
        # run directories, names), before the handler imports TensorFlow.
        check = getattr(args, "check", None)
        if check is not None:
            check(args)
        code: int = args.handler(args)
    except KeyboardInterrupt:
        print(f"kerasimgcls {args.command}: interrupted", file=sys.stderr)
        return _EXIT_INTERRUPTED
    except Exception as err:
        if args.verbose:
            raise
        exit_code = exit_code_of(err)
        if exit_code == _EXIT_INTERNAL:
            detail = _user_message(Exception(_one_line(f"{type(err).__name__}: {err}")))
            print(
                f"kerasimgcls {args.command}: internal error: {detail} (this is a "
                "bug in kerasimgcls or a library it uses, not in your input; please "
                "report it with the output of the same command run with --verbose)",
                file=sys.stderr,
            )
        else:
            message = in_cli_words(_user_message(err), args.command)
            print(f"kerasimgcls {args.command}: error: {message}", file=sys.stderr)
        return exit_code
    return code
