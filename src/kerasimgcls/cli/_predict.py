"""``kerasimgcls predict RUN_DIR PATH...``: top-k classes of image files and folders."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # NumPy loads with the handler: the checks must not wait for it
    import numpy as np
    from numpy.typing import NDArray

from kerasimgcls._validation import check_positive_int
from kerasimgcls.cli._common import add_command, check_paths, checked_number
from kerasimgcls.inference._scaling import INPUT_SCALINGS
from kerasimgcls.training._config import TTA_NAMES

_COLOR_MODES = {1: "grayscale", 3: "rgb", 4: "rgba"}


def add_input_scaling_argument(parser: argparse.ArgumentParser) -> None:
    """Add ``--input-scaling`` (the input contract's override) to ``parser``."""
    parser.add_argument(
        "--input-scaling",
        choices=INPUT_SCALINGS,
        default="auto",
        help="how the uint8 pixels are fed to the model: auto decides from the "
        "model (a run's model.keras takes raw pixels), unit divides by 255, raw "
        "feeds 0-255 (default: auto)",
    )


_HELP = "print or save the top-k classes of image files and folders"
_DESCRIPTION = """\
Classify image files with RUN_DIR/model.keras (or a .keras file). Folders are
searched recursively for images. Each image is decoded, converted to the model's
channels and resized to its input size. A file that cannot be decoded is named on
stderr and the others are still predicted; the exit code is then 1.
"""


def add_parser(subparsers: Any) -> None:
    """Add the ``predict`` sub-command."""
    parser = add_command(
        subparsers, "predict", _HELP, _DESCRIPTION, run, run_dir="model", check=check
    )
    parser.add_argument(
        "images", metavar="PATH", nargs="+", help="image files or folders of images"
    )
    parser.add_argument(
        "-k",
        "--top-k",
        type=checked_number(int, "--top-k", check_positive_int),
        default=3,
        help="classes to show",
    )
    parser.add_argument(
        "--json", action="store_true", help="print JSON instead of text"
    )
    parser.add_argument(
        "--output",
        metavar="FILE",
        help="also write the predictions to FILE: .csv (one row per image, a "
        "column per class) or .json",
    )
    parser.add_argument(
        "--tta",
        choices=TTA_NAMES,
        help="test-time augmentation (flip: each image and its mirror image; "
        "flip_translate: airbench's six views), averaged in logit space",
    )
    add_input_scaling_argument(parser)


def load_image(
    path: str,
    shape: tuple[int, int, int],
    resize: tuple[str, str] = ("bilinear", "stretch"),
) -> NDArray[np.uint8]:
    """Decode ``path`` to uint8 pixels of ``shape`` (height, width, channels).

    ``resize`` is ``(interpolation, aspect)``, as the model's training images
    were resized (``kerasimgcls.models.preprocessing.resize_settings``).

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If it cannot be decoded.
    """
    from kerasimgcls._validation import check_path_exists
    from kerasimgcls.data._files import decode_file

    file = check_path_exists(path, "IMAGE", kind="file")
    height, width, channels = shape
    if channels not in _COLOR_MODES:
        raise ValueError(f"the model takes {channels} channels; expected 1, 3 or 4")
    result = decode_file(
        file,
        color_mode=_COLOR_MODES[channels],
        image_size=(height, width),
        interpolation=resize[0],
        aspect=resize[1],
    )
    if result.image is None:
        raise ValueError(f"cannot decode image {str(file)!r}: {result.error}")
    return result.image.reshape(height, width, channels)


def check(args: argparse.Namespace) -> None:
    """The validation stage of ``predict``: every PATH exists, ``--output`` is known.

    Raises:
        FileNotFoundError: If a PATH does not exist.
        ValueError: If ``--output`` ends in neither ``.csv`` nor ``.json``.
    """
    check_paths(args.images, "PATH")
    if args.output is not None and Path(args.output).suffix.lower() not in (
        ".csv",
        ".json",
    ):
        raise ValueError(
            f"--output must end in .csv or .json; received {args.output!r}"
        )


def run(args: argparse.Namespace) -> int:
    """Print the top-k predictions of each image; name the files that failed."""
    from kerasimgcls._validation import printable
    from kerasimgcls.cli._common import load_run_model
    from kerasimgcls.inference._predict import predict

    model = load_run_model(args.run_dir)
    result = predict(
        model,
        args.images,
        top_k=args.top_k,
        tta=args.tta,
        input_scaling=args.input_scaling,
    )
    rows = result.rows()
    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        for row in rows:
            shown = ", ".join(
                f"{item['class']} {item['probability']:.3f}" for item in row["top_k"]
            )
            print(printable(f"{row['image']}: {shown}"))
    if args.output is not None:
        images = "image" if len(rows) == 1 else "images"
        print(f"wrote {result.save(args.output)} ({len(rows)} {images})")
    if result.skipped:
        print(
            f"skipped {len(result.skipped)} files that are not images by their "
            "extension",
            file=sys.stderr,
        )
    for path, reason in result.failed:
        print(
            printable(f"kerasimgcls predict: cannot read {path}: {reason}"),
            file=sys.stderr,
        )
    if result.failed:
        print(
            f"kerasimgcls predict: {len(result.failed)} of "
            f"{len(result.failed) + len(rows)} files failed",
            file=sys.stderr,
        )
        return 1
    return 0
