"""``kerasimgcls summary``: print the layer table of a registered model or a run's."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from kerasimgcls.cli._common import (
    MODEL_HELP,
    MODEL_NAMES,
    bounded,
    check_model_name,
    check_model_path,
)

# The width of a classic terminal: the table's columns all fit in it.
_LINE_LENGTH = 80


def _parse_shape(text: str) -> tuple[int, int, int]:
    try:
        parts = tuple(int(p) for p in text.lower().replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected HEIGHT,WIDTH,CHANNELS such as 32,32,3; received {text!r}"
        ) from None
    if len(parts) != 3 or min(parts) < 1:
        raise argparse.ArgumentTypeError(
            f"expected HEIGHT,WIDTH,CHANNELS such as 32,32,3; received {text!r}"
        )
    return (parts[0], parts[1], parts[2])


def add_parser(subparsers: Any) -> None:
    """Add the ``summary`` sub-command."""
    parser = subparsers.add_parser(
        "summary",
        help="print a model's layers, output shapes and parameter counts",
        description="Build a registered model, or load a run's model (a run "
        "directory or .keras file), and print its Keras summary "
        f"({_LINE_LENGTH} columns wide).",
    )
    parser.add_argument(
        "model",
        nargs="?",
        default="cifar_cnn",
        help="registered model name, or a run directory or .keras file "
        f"(default: cifar_cnn); {MODEL_HELP}",
    )
    parser.add_argument(
        "--list", action="store_true", help="list the registered model names and exit"
    )
    parser.add_argument(
        "--input-shape",
        type=_parse_shape,
        default=(32, 32, 3),
        help="HEIGHT,WIDTH,CHANNELS of the input (default: 32,32,3)",
    )
    parser.add_argument(
        "--num-classes",
        type=bounded(int, "--num-classes", min_val=1),
        default=10,
        help="number of classes (default: 10)",
    )
    parser.set_defaults(handler=run, check=check)


def check(args: argparse.Namespace) -> None:
    """The validation stage of ``summary``: a known model name or a saved model.

    Raises:
        ValueError: If ``MODEL`` is neither a registered name nor a saved model.
        FileNotFoundError: If ``MODEL`` looks like a path that does not exist.
    """
    if args.list:
        return
    if _is_saved(args.model) or Path(args.model).is_dir():
        check_model_path(args.model, "MODEL")
    elif os.sep in args.model or "/" in args.model:
        check_model_path(args.model, "MODEL")  # a path: say it does not exist
    else:
        check_model_name(args.model)


def run(args: argparse.Namespace) -> int:
    """Print the summary of ``args.model`` (or the model names with ``--list``)."""
    if args.list:  # the names as the registry has them, without Keras
        print("\n".join(MODEL_NAMES))
        return 0
    if _is_saved(args.model) or Path(args.model).is_dir():
        from kerasimgcls.cli._common import load_run_model

        load_run_model(args.model).summary(line_length=_LINE_LENGTH)
        return 0
    from kerasimgcls.models import get_model
    from kerasimgcls.models.transfer import BACKBONES

    # The layers and counts do not depend on the weights: none are downloaded.
    extra = {"weights": None} if args.model in BACKBONES else {}
    model = get_model(
        args.model, input_shape=args.input_shape, num_classes=args.num_classes, **extra
    )
    model.summary(line_length=_LINE_LENGTH)
    return 0


def _is_saved(name: str) -> bool:
    """Whether ``name`` is a run directory or a ``.keras`` file, not a model name."""
    path = Path(name)
    return path.suffix == ".keras" or (path.is_dir() and (path / "run.json").exists())
