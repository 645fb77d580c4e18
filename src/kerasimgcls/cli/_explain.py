"""``kerasimgcls explain RUN_DIR IMAGE...``: Grad-CAM pictures of a run's model."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from kerasimgcls.cli._common import add_command, bounded, check_paths
from kerasimgcls.cli._predict import add_input_scaling_argument

# File-name suffix of each method: "+" does not belong in file names.
_SUFFIXES = {"gradcam": "gradcam", "gradcam++": "gradcampp"}


_HELP = "write Grad-CAM heatmaps showing where the model looks"
_DESCRIPTION = """\
Load RUN_DIR/model.keras (or a .keras file), resize each IMAGE to the model's input
and write a picture of the image, its Grad-CAM heatmap and the overlay to
RUN_DIR/explain/ (or --out), named IMAGE_gradcam.png or IMAGE_gradcampp.png by
--method.
"""


def add_parser(subparsers: Any) -> None:
    """Add the ``explain`` sub-command."""
    parser = add_command(
        subparsers, "explain", _HELP, _DESCRIPTION, run, run_dir="model", check=check
    )
    parser.add_argument("images", metavar="IMAGE", nargs="+", help="image files")
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="folder for the pictures (default: RUN_DIR/explain)",
    )
    parser.add_argument(
        "--class",
        dest="class_name",
        metavar="CLASS",
        help="explain this class (a name or an index) instead of the predicted one",
    )
    parser.add_argument(
        "--layer",
        metavar="NAME",
        help="the convolution layer to use (default: the last one)",
    )
    parser.add_argument(
        "--method",
        choices=("gradcam", "gradcam++"),
        default="gradcam",
        help="Grad-CAM or Grad-CAM++ (default: gradcam)",
    )
    parser.add_argument(
        "--alpha",
        type=bounded(float, "--alpha", min_val=0, max_val=1),
        default=0.4,
        help="opacity of the heatmap in the overlay, in [0, 1] (default: 0.4)",
    )
    add_input_scaling_argument(parser)


def check(args: argparse.Namespace) -> None:
    """The validation stage of ``explain``: every IMAGE is a file.

    Raises:
        FileNotFoundError: If an IMAGE does not exist.
        IsADirectoryError: If an IMAGE is a folder.
    """
    check_paths(args.images, "IMAGE", kind="file")


def _class_index(value: str | None, class_names: tuple[str, ...] | None) -> int | None:
    if value is None:
        return None
    if class_names is not None and value in class_names:
        return class_names.index(value)
    if value.isdigit():
        return int(value)
    raise ValueError(
        f"--class must be a class name or index; received {value!r}"
        + (f". Available: {list(class_names)}" if class_names else "")
    )


def _output_names(images: list[str], method: str = "gradcam") -> list[str]:
    """One file name per image, named by method; repeated stems get a number."""
    suffix = _SUFFIXES[method]
    names: list[str] = []
    for path in images:
        stem = Path(path).stem or "image"
        name, count = f"{stem}_{suffix}.png", 1
        while name in names:
            count += 1
            name = f"{stem}_{count}_{suffix}.png"
        names.append(name)
    return names


def run(args: argparse.Namespace) -> int:
    """Write one Grad-CAM picture per image and print what the model predicted."""
    from kerasimgcls._validation import printable
    from kerasimgcls.analysis.interpret import grad_cam
    from kerasimgcls.cli._common import load_run_model
    from kerasimgcls.cli._predict import load_image
    from kerasimgcls.models.preprocessing import get_class_names, resize_settings

    model = load_run_model(args.run_dir)
    source = Path(args.run_dir)
    out = (
        Path(args.out)
        if args.out
        else (source if source.is_dir() else source.parent) / "explain"
    )
    class_index = _class_index(args.class_name, get_class_names(model))
    height, width, channels = (int(size) for size in model.input_shape[1:])
    shape = (height, width, channels)
    resize = resize_settings(model)  # as the training images were resized
    pixels = [load_image(path, shape, resize) for path in args.images]
    for path, image, name in zip(
        args.images, pixels, _output_names(args.images, args.method), strict=True
    ):
        result = grad_cam(
            model,
            image,
            class_index,
            layer_name=args.layer,
            method=args.method,
            alpha=args.alpha,
            input_scaling=args.input_scaling,
        )
        written = result.save(out / name)
        print(
            printable(
                f"{path}: {result.class_name} (p={result.probability:.3f}), "
                f"{result.method} on {result.layer_name} -> {written}"
            )
        )
    return 0
