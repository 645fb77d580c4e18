"""``kerasimgcls export RUN_DIR --format FORMAT --output PATH``: a model for serving."""

from __future__ import annotations

import argparse
from typing import Any

from kerasimgcls.cli._common import add_command
from kerasimgcls.serving._paths import SERVING_FORMATS, check_output, require

_FORMATS = SERVING_FORMATS

_LOAD_HINT = {
    "saved_model": "tf.saved_model.load({out!r}).serve(uint8_images)",
    "onnx": "onnxruntime.InferenceSession({out!r})",
    "litert": "ai_edge_litert.interpreter.Interpreter({out!r})",
}


_HELP = "export a run's model for serving: SavedModel, ONNX, LiteRT"
_DESCRIPTION = """\
Write RUN_DIR/model.keras (or a .keras file) in a format that serves without
kerasimgcls: it takes raw uint8 images (batch, height, width, channels) and returns
class probabilities. As keras' model.export writes them, saved_model is the folder
--output (class names in --output/class_names.txt), onnx and litert the file
--output itself, ending in .onnx or .tflite (class names beside it in
--output.class_names.txt, and in the ONNX metadata). ONNX needs the export extra: pip
install 'kerasimgcls[export]'.
"""


def add_parser(subparsers: Any) -> None:
    """Add the ``export`` sub-command."""
    parser = add_command(
        subparsers, "export", _HELP, _DESCRIPTION, run, run_dir="model", check=check
    )
    parser.add_argument(
        "--format", required=True, choices=_FORMATS, help="the format to write"
    )
    parser.add_argument(
        "--output",
        required=True,
        metavar="PATH",
        help="the folder of a saved_model; the .onnx or .tflite file of the others",
    )
    parser.add_argument(
        "--input-scaling",
        choices=("auto", "raw", "unit"),
        default="auto",
        help="how the model expects pixels: auto decides from the model, raw "
        "means 0-255, unit means [0, 1] (default: auto)",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace an earlier export at --output (only the files its manifest "
        "lists)",
    )


def check(args: argparse.Namespace) -> None:
    """The validation stage of ``export``: where it writes, and what it needs.

    Raises:
        ValueError: If ``--output`` has the wrong suffix for ``--format``.
        FileExistsError: If ``--output`` exists (and is not an earlier export,
            with ``--overwrite``).
        ModuleNotFoundError: If the format needs the ``export`` extra.
    """
    check_output(args.output, args.format, overwrite=args.overwrite)
    require(args.format)


def run(args: argparse.Namespace) -> int:
    """Export the run's model and say how to load it."""
    from kerasimgcls.cli._common import load_run_model
    from kerasimgcls.serving._export import CLASS_NAMES_FILE, export_for_serving

    written = export_for_serving(
        load_run_model(args.run_dir),
        args.output,
        format=args.format,
        input_scaling=args.input_scaling,
        overwrite=args.overwrite,
    )
    names = (
        written / CLASS_NAMES_FILE
        if args.format == "saved_model"
        else written.with_name(f"{written.name}.{CLASS_NAMES_FILE}")
    )
    print(f"wrote {args.format} to {written} (class names in {names})")
    print("load it with: " + _LOAD_HINT[args.format].format(out=str(written)))
    return 0
