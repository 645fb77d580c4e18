"""``kerasimgcls summary``: print the layer table of a registered model or a run's."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from kerasimgcls.cli._common import MODEL_HELP

# The width of a classic terminal: the table's columns all fit in it.
_LINE_LENGTH = 80


def _parse_shape(text: str) -> tuple[int, int, int]:
    try:
        parts = tuple(int(p) for p in text.lower().replace("x", ",").split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected HEIGHT,WIDTH,CHANNELS such as 32,32,3; received {text!r}"
        ) from None
    if len(parts) != 3:
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
        "--num-classes", type=int, default=10, help="number of classes (default: 10)"
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print the summary of ``args.model`` (or the model names with ``--list``)."""
    if not args.list and _is_saved(args.model):
        from kerasimgcls.cli._common import load_run_model

        load_run_model(args.model).summary(line_length=_LINE_LENGTH)
        return 0
    from kerasimgcls.models import get_model, list_models
    from kerasimgcls.transfer import BACKBONES

    if args.list:
        print("\n".join(list_models()))
        return 0
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
