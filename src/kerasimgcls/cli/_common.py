"""Helpers shared by the commands: data options, loading data, loading a run.

Also the checks of the validation stage: each command's ``check(args)`` runs on
the parsed arguments before its handler, with the standard library alone (no
TensorFlow, no Keras), so a missing path or a run directory that is not one is
answered at once, in one line.
"""

from __future__ import annotations

import argparse
import difflib
import importlib.util
import json
import os
import sys
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from kerasimgcls._validation import (
    check_image_size,
    check_path_exists,
    check_rate,
    check_scalar,
    check_seed,
    short_repr,
)

if TYPE_CHECKING:
    from kerasimgcls.data import ImageDataset

__all__ = [
    "DATASETS",
    "MODEL_HELP",
    "MODEL_NAMES",
    "add_command",
    "add_data_arguments",
    "add_run_dir_argument",
    "add_split_argument",
    "bounded",
    "check_data_arguments",
    "check_extra",
    "check_model_name",
    "check_model_path",
    "check_paths",
    "check_run",
    "checked_number",
    "data_spec_from_args",
    "load_data",
    "load_data_from_args",
    "load_run",
    "load_run_model",
    "read_run_json",
]

# Listing the registered models imports Keras, which --help must not wait for.
MODEL_HELP = "`kerasimgcls summary --list` lists them"

# The registered models, kerasimgcls.list_models(), spelled out so that --model
# and `summary --list` need no Keras; tests/test_cli_instant.py checks they agree.
MODEL_NAMES = (
    "airbench_cnn",
    "cifar_cnn",
    "convnext_tiny",
    "efficientnet_b0",
    "efficientnet_v2_b0",
    "mobilenet_v3_large",
    "mobilenet_v3_small",
    "resnet50",
)

# Dataset names of --dataset; each maps to kerasimgcls.data.load_<name>.
DATASETS = ("digits", "cifar10", "cifar100", "mnist", "fashion_mnist")


def checked_number(
    kind: type[int] | type[float], flag: str, check: Callable[[Any, str], Any]
) -> Callable[[str], Any]:
    """Return the argparse ``type`` of a numeric flag: parse ``kind``, then ``check``.

    ``check(value, flag)`` is the library's own check of the setting (a
    ``check_*`` helper, or :func:`~kerasimgcls.training._config.check_field`), so
    the flag's range is the setting's and a bad value is refused while the
    command line is parsed, before anything is imported or read.

    Example:
        >>> from kerasimgcls._validation import check_positive_int
        >>> checked_number(int, "--top-k", check_positive_int)("3")
        3
    """

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            what = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(
                f"{flag} must be {what}; received {text!r}"
            ) from None
        try:
            return check(value, flag)
        except (TypeError, ValueError) as err:
            raise argparse.ArgumentTypeError(str(err)) from None

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def bounded(
    kind: type[int] | type[float], flag: str, **bounds: Any
) -> Callable[[str], Any]:
    """Return the argparse ``type`` of a numeric flag in a range (``check_scalar``'s).

    Example:
        >>> bounded(float, "--alpha", min_val=0, max_val=1)("0.5")
        0.5
    """

    def check(value: Any, name: str) -> Any:
        return check_scalar(value, name, kind=kind, **bounds)

    return checked_number(kind, flag, check)


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
    try:
        check_image_size(parts, "--image-size")
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
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
        help="resize folder images to SIZE or HEIGHT,WIDTH (default: chosen from "
        "the folder: the images' size if they share one, else their median size, "
        "rounded to a multiple of 8 and capped for the model, e.g. at 64 for "
        "cifar_cnn; the output says which)",
    )
    group.add_argument(
        "--aspect",
        choices=("stretch", "crop", "pad"),
        default="stretch",
        help="how folder images of another aspect ratio are resized: stretch them, "
        "crop the largest centred window of the size's ratio, or pad with black "
        "to it (default: stretch); predict and explain resize the same way",
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
        type=checked_number(int, "--split-seed", check_seed),
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
                "interpolation": "bilinear",
                "aspect": getattr(args, "aspect", "stretch"),
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
        extra = {
            key: spec[key]
            for key in ("on_error", "interpolation", "aspect")
            if key in spec
        }
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


def load_data_from_args(
    args: argparse.Namespace, model_name: str | None = None
) -> ImageDataset:
    """Load the dataset the command-line data options describe.

    A folder without ``--image-size`` is resized to the size
    :func:`choose_folder_size` chooses for ``model_name`` (and says so).
    """
    spec = data_spec_from_args(args)
    if model_name is not None:
        spec = choose_folder_size(spec, model_name)
    return load_data(spec)


def choose_folder_size(spec: dict[str, Any], model_name: str) -> dict[str, Any]:
    """Return the data spec of a folder with its image size chosen, if not given.

    The rule is :func:`kerasimgcls.choose_image_size`'s, capped by
    :func:`kerasimgcls.get_max_image_size` of ``model_name``. When the images are
    resized, one line says to which size and why; ``run.json`` records the size
    (``image_size``) and the choice (``image_size_choice``: the median, the cap,
    the sizes found and the reason).
    """
    if spec.get("dataset") or not spec.get("data_dir") or spec.get("image_size"):
        return spec
    from kerasimgcls.data import choose_image_size
    from kerasimgcls.models import get_max_image_size

    choice = choose_image_size(
        spec["data_dir"], max_size=get_max_image_size(model_name)
    )
    line = choice.describe(cap_of=model_name)
    if choice.resizes:
        print(f"{line}; pass --image-size to choose")
    return {
        **spec,
        "image_size": list(choice.image_size),
        "image_size_choice": {**choice.to_dict(), "why": line},
    }


def add_command(
    subparsers: Any,
    name: str,
    summary: str,
    description: str,
    handler: Callable[[argparse.Namespace], int],
    run_dir: Literal["model", "run", "finished"] | None = None,
    check: Callable[[argparse.Namespace], None] | None = None,
) -> argparse.ArgumentParser:
    """Add the sub-command ``name`` that runs ``handler``; return its parser.

    ``summary`` is the one-line help; the line breaks of ``description`` become
    spaces. ``run_dir`` adds the positional ``RUN_DIR`` (see
    :func:`add_run_dir_argument`): ``"model"`` also accepts a ``.keras`` file,
    ``"finished"`` wants a finished run. ``check(args)`` is the command's
    validation stage (after the check of ``RUN_DIR``), run before ``handler``
    with the standard library alone.
    """
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name, help=summary, description=" ".join(description.split())
    )
    if run_dir is not None:
        add_run_dir_argument(
            parser, model_file=run_dir == "model", finished=run_dir == "finished"
        )
    parser.set_defaults(handler=handler, check=_run_dir_check(run_dir, check))
    return parser


def _run_dir_check(
    run_dir: str | None, check: Callable[[argparse.Namespace], None] | None
) -> Callable[[argparse.Namespace], None] | None:
    if run_dir is None:
        return check

    def checked(args: argparse.Namespace) -> None:
        if run_dir == "model":
            check_model_path(args.run_dir)
        else:
            check_run(args.run_dir)
        if check is not None:
            check(args)

    return checked


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
    from kerasimgcls.inference._load import load_model

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


# --- the validation stage: standard-library checks before any handler runs -------


def check_model_name(name: str) -> str:
    """Return ``name`` if it is a registered model; else say which are.

    Raises:
        ValueError: If no model of that name is registered; the message lists
            the names and the nearest one.
    """
    registry = sys.modules.get("kerasimgcls.models")
    if name in MODEL_NAMES or (registry is not None and registry.is_model(name)):
        return name
    close = difflib.get_close_matches(name, MODEL_NAMES, n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    raise ValueError(f"Unknown model {name!r}. Available: {list(MODEL_NAMES)}{hint}")


def check_paths(paths: Sequence[str], name: str, kind: str = "any") -> None:
    """Raise for the first of ``paths`` that does not exist (as ``kind``).

    Raises:
        FileNotFoundError: If a path does not exist.
        IsADirectoryError: If ``kind`` is ``"file"`` and a path is a folder.
    """
    for path in paths:
        check_path_exists(path, name, kind=kind)  # type: ignore[arg-type]


def check_model_path(path: str, name: str = "RUN_DIR") -> Path:
    """Return the ``.keras`` file of ``path``: a run directory's or the file itself.

    Raises:
        FileNotFoundError: If nothing exists at ``path`` or it holds no model.
        ValueError: If the file is not a ``.keras`` archive.
    """
    model = check_path_exists(path, name)
    if model.is_dir():
        model = model / "model.keras"
        if not model.is_file():
            raise FileNotFoundError(
                f"{name} has no model.keras: {str(path)!r} is not a finished run "
                "(did it finish? `kerasimgcls train --run-dir DIR` writes one)"
            )
    elif model.suffix != ".keras":
        raise ValueError(
            f"{name} must be a run directory or a .keras file; received {path!r}"
        )
    if not zipfile.is_zipfile(model):
        raise ValueError(
            f"{str(model)!r} is not a readable .keras model (truncated, damaged or "
            "another kind of file); save or download it again"
        )
    return model


def check_run(path: str) -> dict[str, Any]:
    """Return the ``run.json`` of a finished run directory, checked without Keras.

    The run's data must still be where ``run.json`` says (commands that read a
    run rebuild its dataset).

    Raises:
        FileNotFoundError: If ``path``, its ``run.json``, its ``model.keras`` or
            the run's data folder is missing.
        ValueError: If ``run.json`` is not a run's, or the model file is damaged.
    """
    config = read_run_json(path)
    model = Path(path) / "model.keras"
    if not model.is_file():
        if config.get("status") == "running":
            raise ValueError(
                f"RUN_DIR {str(path)!r} holds a run that is still running (run.json "
                "says status 'running'); use it when it has finished (if no "
                "training is running, run the same train command again to finish it)"
            )
        raise FileNotFoundError(
            f"RUN_DIR has no model.keras: {str(path)!r} (did the run finish?)"
        )
    check_model_path(str(model))
    data_dir = config.get("data", {}).get("data_dir")
    if isinstance(data_dir, str) and data_dir and not Path(data_dir).exists():
        raise FileNotFoundError(
            f"the run's data are gone: {data_dir!r} does not exist any more (it is "
            f"where run.json of {str(path)!r} says the run's images are)"
        )
    return config


def check_data_arguments(args: argparse.Namespace) -> None:
    """Check ``--data-dir`` and ``--dataset`` before any data loads.

    Raises:
        FileNotFoundError: If ``--data-dir`` does not exist.
        NotADirectoryError: If a folder of images is not a folder.
        ValueError: If the folder has no class sub-folder.
    """
    if args.data_dir is None:
        return
    if args.dataset is not None:  # the dataset's own files: an archive or a folder
        check_path_exists(args.data_dir, "--data-dir")
        return
    root = check_path_exists(args.data_dir, "--data-dir", kind="dir")
    with os.scandir(root) as entries:
        folders = [e.name for e in entries if e.is_dir() and not e.name.startswith(".")]
    if not folders:
        raise ValueError(
            f"--data-dir has no class sub-folders: {str(root)!r}; expected a layout "
            "such as DIR/cat/001.jpg, DIR/dog/002.png (or DIR/train/cat/...)"
        )


def check_extra(module: str, flag: str, package: str) -> None:
    """Raise if ``flag`` needs ``module``, which is not installed.

    Raises:
        ModuleNotFoundError: If it is missing; the message says what to install.
    """
    if importlib.util.find_spec(module) is None:
        raise ModuleNotFoundError(
            f"{flag} needs the {module} package, which is not installed: "
            f"pip install {package}"
        )
