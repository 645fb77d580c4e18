"""``kerasimgcls lr-find``: the learning-rate range test for a model and a dataset."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from kerasimgcls._validation import check_seed

_HELP = "suggest a learning rate with a range test"
_DESCRIPTION = """\
Train a fresh model for a short run while the learning rate grows exponentially,
plot the loss against the rate and print the rate where the loss falls fastest.
"""


def add_parser(subparsers: Any) -> None:
    """Add the ``lr-find`` sub-command."""
    from kerasimgcls.cli._common import (
        MODEL_HELP,
        add_command,
        add_data_arguments,
        bounded,
        checked_number,
    )

    parser = add_command(subparsers, "lr-find", _HELP, _DESCRIPTION, run, check=check)
    add_data_arguments(parser)
    parser.add_argument(
        "--model",
        default="cifar_cnn",
        help=f"registered model name (default: cifar_cnn); {MODEL_HELP}",
    )
    parser.add_argument(
        "--optimizer", default="adam", help="Keras optimizer name (default: adam)"
    )
    parser.add_argument(
        "--min-lr",
        type=bounded(float, "--min-lr", min_val=0, include_min=False),
        default=1e-6,
        help="first rate (default: 1e-6)",
    )
    parser.add_argument(
        "--max-lr",
        type=bounded(float, "--max-lr", min_val=0, include_min=False),
        default=1.0,
        help="last rate (default: 1.0)",
    )
    parser.add_argument(
        "--num-steps",
        type=bounded(int, "--num-steps", min_val=1),
        default=100,
        help="training steps (default: 100)",
    )
    parser.add_argument(
        "--batch-size",
        type=bounded(int, "--batch-size", min_val=1),
        default=64,
        help="images per step (default: 64)",
    )
    parser.add_argument(
        "--seed",
        type=checked_number(int, "--seed", check_seed),
        default=0,
        help="seed of weights and batches (default: 0)",
    )
    parser.add_argument(
        "--out",
        metavar="PNG",
        default="lr_find.png",
        help="where to write the plot (default: lr_find.png)",
    )


def check(args: argparse.Namespace) -> None:
    """The validation stage of ``lr-find``: the data, the model, the rates.

    Raises:
        FileNotFoundError: If ``--data-dir`` does not exist.
        ValueError: If the model is unknown or ``--min-lr`` is not below
            ``--max-lr``.
    """
    from kerasimgcls.cli._common import check_data_arguments, check_model_name

    check_data_arguments(args)
    check_model_name(args.model)
    if args.min_lr >= args.max_lr:
        raise ValueError(
            f"--min-lr must be below --max-lr; received --min-lr {args.min_lr:g} "
            f"and --max-lr {args.max_lr:g}"
        )


def run(args: argparse.Namespace) -> int:
    """Run the range test, write the plot and print the suggested rate."""
    import keras

    from kerasimgcls.analysis.lr_finder import find_learning_rate
    from kerasimgcls.cli._common import load_data_from_args
    from kerasimgcls.models import get_model

    data = load_data_from_args(args, args.model)
    keras.utils.set_random_seed(args.seed)
    model = get_model(
        args.model, input_shape=data.input_shape, num_classes=data.num_classes
    )
    flags = ("min_lr", "max_lr", "num_steps", "batch_size", "optimizer", "seed")
    result = find_learning_rate(
        model, data, **{flag: getattr(args, flag) for flag in flags}
    )
    path = result.plot(Path(args.out))
    stopped = " (stopped early: the loss diverged)" if result.stopped_early else ""
    print(
        f"tested {len(result.learning_rates)} rates from "
        f"{result.learning_rates[0]:.2e} to {result.learning_rates[-1]:.2e}{stopped}"
    )
    print(f"lowest loss at learning rate {result.min_loss_learning_rate:.2e}")
    print(f"suggested learning rate: {result.suggestion:.2e}")
    print(f"wrote {path}")
    return 0
