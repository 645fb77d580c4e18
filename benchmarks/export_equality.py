"""How far the serving exports' probabilities are from Keras' on the same images.

Trains the one-epoch digits run the tests share (``kerasimgcls train --dataset
digits --epochs 1 --no-deterministic``), exports it as SavedModel, ONNX and LiteRT
(:func:`kerasimgcls.export_for_serving`), runs each export with its own runtime
(TensorFlow, onnxruntime, the LiteRT interpreter) on the digits test images, and
records the largest absolute difference from :func:`kerasimgcls.predict_proba` on
the run's ``model.keras``. ``tests/test_serving.py`` holds each export to a
tolerance set from these figures; ``docs/guide/serving.md`` quotes them.

Run it (about a minute on 2 cores)::

    python benchmarks/export_equality.py --output benchmarks/results/export_equality.json
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
from _common import machine_info, write_json

import kerasimgcls as kic
from kerasimgcls.cli import main as cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_serving import _LOADERS, OUTPUT, class_names_file

COMMAND = "python benchmarks/export_equality.py --output {output}"
FORMATS = ("saved_model", "onnx", "litert")
_NEEDS = {"saved_model": [], "onnx": ["tf2onnx", "onnx", "onnxruntime"], "litert": []}


def _serve(format: str, path: Path, images: np.ndarray) -> np.ndarray:
    """The probabilities of one export, computed by its own runtime.

    Runs the loader ``tests/test_serving.py`` runs (there in a process that
    refuses ``import kerasimgcls``), so both measure the same code.
    """
    names = class_names_file(format, path).read_text(encoding="utf-8").splitlines()
    namespace = {"path": str(path), "images": images, "class_names": names}
    exec(textwrap.dedent("import json\n" + _LOADERS[format]), namespace)
    return np.asarray(namespace["probabilities"], dtype=np.float32)


def measure(root: Path) -> dict[str, Any]:
    """Train, export each format and compare it with ``predict_proba``."""
    run_dir = root / "run"
    argv = ["train", "--dataset", "digits", "--epochs", "1", "--no-deterministic"]
    if cli([*argv, "--quiet", "--no-evaluate", "--run-dir", str(run_dir)]) != 0:
        raise SystemExit("the digits training failed")
    images = kic.load_digits(seed=0).test.images
    expected = kic.predict_proba(kic.load_model(run_dir), images)
    results: dict[str, Any] = {}
    for format in FORMATS:
        missing = [
            name for name in _NEEDS[format] if not importlib.util.find_spec(name)
        ]
        if missing:
            results[format] = {"skipped": f"needs {missing}"}
            continue
        written = kic.export_for_serving(run_dir, root / OUTPUT[format], format=format)
        served = _serve(format, written, images)
        difference = np.abs(served - expected)
        results[format] = {
            "max_abs_difference": float(difference.max()),
            "max_abs_difference_first_12": float(difference[:12].max()),
            "same_top_class": int(np.sum(served.argmax(1) == expected.argmax(1))),
        }
    return {"num_images": int(images.shape[0]), "formats": results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="export-equality-") as scratch:
        measured = measure(Path(scratch))
    payload = {
        "command": COMMAND.format(output=args.output),
        "machine": machine_info(),
        **measured,
    }
    write_json(args.output, payload)
    for format, entry in measured["formats"].items():
        print(f"{format}: {entry}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
