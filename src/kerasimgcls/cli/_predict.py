"""``kerasimgcls predict RUN_DIR IMAGE...``: top-k classes of image files."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

_MODES = {1: "L", 3: "RGB", 4: "RGBA"}


def add_parser(subparsers: Any) -> None:
    """Add the ``predict`` sub-command."""
    parser = subparsers.add_parser(
        "predict",
        help="print the top-k classes of image files",
        description=(
            "Classify image files with RUN_DIR/model.keras (or a .keras file): each "
            "image is decoded with Pillow, converted to the model's channels and "
            "resized to its input size, then the top-k class names and "
            "probabilities are printed."
        ),
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory or .keras")
    parser.add_argument("images", metavar="IMAGE", nargs="+", help="image files")
    parser.add_argument("-k", "--top-k", type=int, default=3, help="classes to show")
    parser.add_argument(
        "--json", action="store_true", help="print JSON instead of text"
    )
    parser.set_defaults(handler=run)


def load_image(path: str, shape: tuple[int, int, int]) -> NDArray[np.uint8]:
    """Decode ``path`` to uint8 pixels of ``shape`` (height, width, channels).

    Raises:
        FileNotFoundError: If the file does not exist.
        ValueError: If Pillow cannot decode it.
    """
    from PIL import Image, UnidentifiedImageError

    from kerasimgcls._validation import check_path_exists

    file = check_path_exists(path, "IMAGE", kind="file")
    height, width, channels = shape
    if channels not in _MODES:
        raise ValueError(f"the model takes {channels} channels; expected 1, 3 or 4")
    try:
        with Image.open(file) as image:
            converted = image.convert(_MODES[channels])
            if converted.size != (width, height):
                converted = converted.resize((width, height), Image.Resampling.BILINEAR)
            array = np.asarray(converted, dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as err:
        raise ValueError(f"cannot decode image {str(file)!r}: {err}") from err
    return array.reshape(height, width, channels)


def run(args: argparse.Namespace) -> int:
    """Print the top-k predictions of each image."""
    from kerasimgcls._export import get_class_names, load_model, predict_proba

    if args.top_k < 1:
        raise ValueError(f"--top-k must be a positive integer; received {args.top_k}")
    model = load_model(args.run_dir)
    shape = tuple(int(s) for s in model.input_shape[1:])
    images = np.stack([load_image(path, shape) for path in args.images])  # type: ignore[arg-type]
    probabilities = predict_proba(model, images)
    names = get_class_names(model) or tuple(
        str(i) for i in range(probabilities.shape[1])
    )
    k = min(args.top_k, probabilities.shape[1])
    results = []
    for path, row in zip(args.images, probabilities, strict=True):
        top = np.argsort(-row, kind="stable")[:k]
        results.append(
            {
                "image": path,
                "top_k": [
                    {"class": names[i], "probability": float(row[i])} for i in top
                ],
            }
        )
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for result in results:
            shown = ", ".join(
                f"{item['class']} {item['probability']:.3f}" for item in result["top_k"]
            )
            print(f"{Path(result['image']).name}: {shown}")
    return 0
