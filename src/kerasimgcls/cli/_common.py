"""Helpers shared by the commands: data options, loading data, loading a run."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from kerasimgcls._validation import (
    check_image_size,
    check_path_exists,
    check_rate,
    check_seed,
    short_repr,
)

if TYPE_CHECKING:
    from kerasimgcls.data import ImageDataset

__all__ = [
    "DATASETS",
    "MODEL_HELP",
    "add_command",
    "add_data_arguments",
    "add_run_dir_argument",
    "add_split_argument",
    "data_spec_from_args",
    "load_data",
    "load_data_from_args",
    "load_run",
    "load_run_model",
    "read_run_json",
]

# Listing the registered models imports Keras, which --help must not wait for.
MODEL_HELP = "`kerasimgcls summary --list` lists them"

# Dataset names of --dataset; each maps to kerasimgcls.data.load_<name>.
DATASETS = ("digits", "cifar10", "cifar100", "mnist", "fashion_mnist")


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a fraction in [0, 1); received {text!r}"
        ) from None
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(
            f"expected a fraction in [0, 1); received {text!r}"
        )
    return value


def _image_size(text: str) -> list[int]:
    try:
        parts = [int(p) for p in text.lower().replace("x", ",").split(",")]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) < 1:
        raise argparse.ArgumentTypeError(
            f"expected SIZE or HEIGHT,WIDTH such as 32 or 64,48; received {text!r}"
        )
    return parts


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--dataset``/``--data-dir`` and the data options to ``parser``."""
    group = parser.add_argument_group("data")
    group.add_argument(
        "--dataset",
        choices=DATASETS,
        help="a named dataset (default: digits, which ships with scikit-learn); "
        "with --data-dir, read from DIR instead of the Keras cache",
    )
    group.add_argument(
        "--data-dir",
        metavar="DIR",
        help="a folder of images, one sub-folder per class (or train/ and test/); "
        "with --dataset, where that dataset's files are",
    )
    group.add_argument(
        "--image-size",
        type=_image_size,
        metavar="SIZE",
        help="resize folder images to SIZE or HEIGHT,WIDTH (default: keep)",
    )
    group.add_argument(
        "--color-mode",
        choices=("rgb", "grayscale", "rgba"),
        default="rgb",
        help="channels of folder images (default: rgb)",
    )
    group.add_argument(
        "--skip-bad-images",
        action="store_true",
        help="leave out folder images that cannot be decoded (they are named in a "
        "warning) instead of stopping at the first one",
    )
    group.add_argument(
        "--validation-split",
        type=_fraction,
        default=0.1,
        metavar="FRACTION",
        help="fraction of the training images held out for validation (default: 0.1)",
    )
    group.add_argument(
        "--split-seed",
        type=int,
        default=0,
        metavar="N",
        help="seed of the validation split, kept apart from --seed so runs with "
        "different seeds validate on the same images (default: 0)",
    )


def data_spec_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Return the JSON description of the data options (recorded in ``run.json``)."""
    spec: dict[str, Any] = {
        "validation_split": args.validation_split,
        "split_seed": args.split_seed,
    }
    if getattr(args, "image_size", None) is not None and (
        args.dataset is not None or args.data_dir is None
    ):
        raise ValueError(
            f"--image-size resizes the images of a --data-dir folder; --dataset "
            f"{args.dataset or 'digits'} has images of one fixed size. Leave "
            "--image-size out, or pass --data-dir with a folder of images"
        )
    if args.data_dir is not None and args.dataset is not None:
        spec.update(
            {"dataset": args.dataset, "data_dir": str(Path(args.data_dir).resolve())}
        )
    elif args.data_dir is not None:
        spec.update(
            {
                "data_dir": str(Path(args.data_dir).resolve()),
                "image_size": args.image_size,
                "color_mode": args.color_mode,
            }
        )
        if getattr(args, "skip_bad_images", False):
            spec["on_error"] = "skip"
    else:
        spec["dataset"] = args.dataset or "digits"
    return spec


def load_data(spec: dict[str, Any]) -> ImageDataset:
    """Load the dataset a data spec (see :func:`data_spec_from_args`) describes.

    Raises:
        ValueError: If the spec names no known dataset or the loader is missing.
        FileNotFoundError: If ``data_dir`` does not exist.
    """
    from kerasimgcls import data as data_module

    if not isinstance(spec, dict):
        raise ValueError(
            f"the data section of run.json must be a JSON object; found {short_repr(spec, 60)}"
        )
    validation_split = check_rate(
        spec.get("validation_split", 0.1), "validation_split (--validation-split)"
    )
    seed = check_seed(spec.get("split_seed", 0), "split_seed (--split-seed)")
    if spec.get("data_dir") and not spec.get("dataset"):
        path = check_path_exists(spec["data_dir"], "--data-dir", kind="dir")
        loader = getattr(data_module, "load_image_folder", None)
        if loader is None:
            raise ValueError("--data-dir needs kerasimgcls.load_image_folder")
        size = spec.get("image_size")
        extra = {"on_error": spec["on_error"]} if "on_error" in spec else {}
        dataset: ImageDataset = loader(
            path,
            image_size=check_image_size(size, "image_size (--image-size)")
            if size
            else None,
            color_mode=spec.get("color_mode", "rgb"),
            validation_split=validation_split,
            seed=seed,
            **extra,
        )
        return dataset
    name = spec.get("dataset", "digits")
    if name not in DATASETS:
        raise ValueError(f"Unknown dataset {name!r}. Available: {list(DATASETS)}")
    loader = getattr(data_module, f"load_{name}", None)
    if loader is None:
        raise ValueError(
            f"--dataset {name} needs kerasimgcls.load_{name}, which this version "
            "does not have; use --data-dir with the images instead"
        )
    options: dict[str, Any] = {"validation_split": validation_split, "seed": seed}
    if spec.get("data_dir"):
        options["data_dir"] = check_path_exists(spec["data_dir"], "--data-dir")
    dataset = loader(**options)
    return dataset


def load_data_from_args(args: argparse.Namespace) -> ImageDataset:
    """Load the dataset the command-line data options describe."""
    return load_data(data_spec_from_args(args))


def add_command(
    subparsers: Any,
    name: str,
    summary: str,
    description: str,
    handler: Callable[[argparse.Namespace], int],
    run_dir: Literal["model", "run", "finished"] | None = None,
) -> argparse.ArgumentParser:
    """Add the sub-command ``name`` that runs ``handler``; return its parser.

    ``summary`` is the one-line help; the line breaks of ``description`` become
    spaces. ``run_dir`` adds the positional ``RUN_DIR`` (see
    :func:`add_run_dir_argument`): ``"model"`` also accepts a ``.keras`` file,
    ``"finished"`` wants a finished run.
    """
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name, help=summary, description=" ".join(description.split())
    )
    if run_dir is not None:
        add_run_dir_argument(
            parser, model_file=run_dir == "model", finished=run_dir == "finished"
        )
    parser.set_defaults(handler=handler)
    return parser


def add_split_argument(parser: argparse.ArgumentParser, what: str) -> None:
    """Add ``--split``, the split of a run's dataset that ``what`` (the help) uses."""
    splits = ("test", "validation", "train")
    parser.add_argument("--split", choices=splits, default="test", help=what)


def add_run_dir_argument(
    parser: argparse.ArgumentParser, *, model_file: bool, finished: bool = False
) -> None:
    """Add the positional ``RUN_DIR`` of the commands that read a run.

    ``model_file`` says whether a ``.keras`` file is accepted instead (the commands
    that only need the model); ``finished`` whether the run must have finished.
    """
    what = "a finished run directory" if finished else "a run directory"
    parser.add_argument(
        "run_dir",
        metavar="RUN_DIR",
        help=f"{what} or a .keras model file" if model_file else what,
    )


def load_run_model(run_dir: str | os.PathLike[str]) -> Any:
    """Return the model of ``RUN_DIR``: a run directory's ``model.keras`` or a file.

    Loaded by :func:`kerasimgcls.load_model` (safe mode on); the command line
    words its errors with ``RUN_DIR``.

    Raises:
        FileNotFoundError: If nothing exists at ``run_dir`` or it holds no model.
        ValueError: If the file is not a ``.keras`` model or is damaged.
    """
    from kerasimgcls._export import load_model

    return load_model(run_dir)


def read_run_json(run_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """Return the ``run.json`` of ``run_dir``.

    Raises:
        FileNotFoundError: If ``run_dir`` or its ``run.json`` does not exist.
        ValueError: If ``run.json`` is not valid JSON.
    """
    directory = check_path_exists(run_dir, "RUN_DIR", kind="dir")
    path = directory / "run.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"RUN_DIR has no run.json: {str(directory)!r} is not a kerasimgcls run "
            "(run `kerasimgcls train --run-dir DIR` first)"
        )
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise ValueError(f"{str(path)!r} is not valid JSON: {err}") from err
    if not isinstance(config, dict) or not isinstance(config.get("data", {}), dict):
        what = config if not isinstance(config, dict) else config.get("data")
        raise ValueError(
            f"{str(path)!r} is not a kerasimgcls run.json: it must be a JSON object "
            f"whose 'data' is an object; found {type(what).__name__} {short_repr(what, 60)}"
        )
    return config


def load_run(
    run_dir: str | os.PathLike[str],
) -> tuple[Any, dict[str, Any], ImageDataset]:
    """Return ``(model, run_config, data)`` of a finished run.

    ``model`` is the run's ``model.keras`` (exported: uint8 input, class names
    inside, loaded with safe mode on), ``run_config`` the parsed ``run.json``, and
    ``data`` the dataset rebuilt from the run's ``"data"`` section (the same
    splits: the loaders are seeded).

    Raises:
        FileNotFoundError: If the run directory, ``run.json`` or ``model.keras`` is
            missing.
        ValueError: If the rebuilt data is not the data the run was trained on.
    """
    config = read_run_json(run_dir)
    model_path = Path(run_dir) / "model.keras"
    if not model_path.is_file():
        raise FileNotFoundError(
            f"RUN_DIR has no model.keras: {str(run_dir)!r} (did the run finish?)"
        )
    model = load_run_model(model_path)
    data = load_data(dict(config.get("data", {})))
    expected = config.get("data", {}).get("fingerprint")
    if expected and data.fingerprint != expected:
        raise ValueError(
            f"the data loaded for {str(run_dir)!r} differs from the data the run "
            "was trained on (fingerprint mismatch); were the files changed?"
        )
    return model, config, data
