"""Where a small folder's training time goes, against the Trainer's steady state.

Three measurements in one run, on one folder of ``benchmarks/_folders.py``
(``colour`` by default: 320 images of 32x32, 8 classes; never the kept-out one):

``steady_state``
    The Trainer's throughput once warm: the folder recipe's model and settings on
    3,200 random images of the folder's size, no validation, no precise batch
    norm; images per second over epochs 2 and 3 (``epoch_time`` in the history).
``whole_run``
    ``kerasimgcls train --data-dir DIR`` from the start of its interpreter to its
    exit, per image-epoch (training images times epochs), and its ratio to the
    steady state's time per image.
``breakdown``
    The same command under ``cProfile``: seconds in each part (start-up and data,
    train steps, validation, precise batch norm, checkpoints, the end of the run).
    Profiling slows Python, so its parts are shares, not a second timing.

Run it::

    python benchmarks/small_folder_speed.py --output benchmarks/results/small_folder_speed.json
"""

from __future__ import annotations

import argparse
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import _folders
from _common import machine_info, write_json

# Functions whose cumulative time is one part of the run (by file and name).
PARTS = {
    "fit (all epochs)": ("training/_trainer.py", "_train"),
    "validation": ("keras/src/backend/tensorflow/trainer.py", "evaluate"),
    "precise batch norm": ("training/_precise_bn.py", "precise_batch_norm"),
    "checkpoints": ("training/_checkpoint.py", "save"),
    "end of run (scores, model.keras, curves)": ("training/_trainer.py", "_finish"),
    "whole command": ("cli/__init__.py", "main"),
}


def steady_state(
    input_shape: list[int], classes: int, train_size: int
) -> dict[str, Any]:
    """Images per second of the Trainer's train steps, warm, at the folder's settings."""
    import numpy as np

    import kerasimgcls as kic

    recipe = kic.get_recipe("folder").for_data(train_size, tuple(input_shape))
    count = 3200
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (count, *input_shape), np.uint8)
    labels = np.arange(count) % classes
    data = kic.from_arrays(images, labels, validation_split=0.0)
    trainer = kic.Trainer(
        lambda: kic.get_model("cifar_cnn", input_shape=tuple(input_shape),
                              num_classes=classes, **recipe.model_kwargs),
        config=recipe, epochs=3, precise_batch_norm=False,
        restore_best_weights=False, run_dir=None,
    )  # fmt: skip
    history = trainer.fit(data)
    times = [row["epoch_time"] for row in history.rows[1:]]
    return {
        "images": count,
        "batch_size": recipe.batch_size,
        "epoch_times": [row["epoch_time"] for row in history.rows],
        "images_per_second": round(count * len(times) / sum(times), 1),
    }


def whole_run(folder: Path, run: Path) -> dict[str, Any]:
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "kerasimgcls", "train", "--data-dir", str(folder),
         "--run-dir", str(run), "-q"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(done.stderr[-2000:])
    info = json.loads((run / "run.json").read_text())
    history = json.loads((run / "history.json").read_text())
    rows = history if isinstance(history, list) else history.get("rows", [])
    epochs = len(rows)
    train = int(info["data"]["sizes"]["train"])
    return {
        "command": "kerasimgcls train --data-dir DIR",
        "wall_seconds": round(seconds, 2),
        "train_images": train,
        "epochs": epochs,
        "input_shape": info["data"]["input_shape"],
        "classes": info["data"]["num_classes"],
        "epoch_time_sum": round(sum(float(row["epoch_time"]) for row in rows), 2),
        "seconds_per_image_epoch": seconds / (train * epochs),
    }


def breakdown(folder: Path, run: Path) -> dict[str, float]:
    profile = run.with_suffix(".prof")
    subprocess.run(
        [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "kerasimgcls",
         "train", "--data-dir", str(folder), "--run-dir", str(run), "-q"],
        capture_output=True, check=True,
    )  # fmt: skip
    stats = pstats.Stats(str(profile)).stats  # type: ignore[attr-defined]
    parts: dict[str, float] = {}
    for part, (file, name) in PARTS.items():
        seconds = [
            cumulative
            for (path, _, function), (_, _, _, cumulative, _) in stats.items()
            if function == name and path.endswith(file)
        ]
        parts[part] = round(max(seconds, default=0.0), 2)
    parts["start-up, data and model (before fit)"] = round(
        parts["whole command"] - parts["fit (all epochs)"]
        - parts["end of run (scores, model.keras, curves)"], 2,
    )  # fmt: skip
    parts["train steps and callbacks (the rest of fit)"] = round(
        parts["fit (all epochs)"] - parts["validation"] - parts["checkpoints"], 2
    )
    return parts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folder", default="colour")
    parser.add_argument("--output", type=Path)
    parser.add_argument("--root", type=Path)
    args = parser.parse_args()
    if args.folder == _folders.KEPT_OUT:
        raise SystemExit(f"{args.folder} is kept out of every tuning run")
    spec = next(s for s in _folders.folders(with_cifar=False) if s.name == args.folder)
    root = args.root or Path(tempfile.mkdtemp(prefix="small_folder-"))
    folder = spec.write(root / "folders") / "train"
    machine = machine_info()
    run = whole_run(folder, root / "run")
    steady = steady_state(run["input_shape"], run["classes"], run["train_images"])
    ratio = run["seconds_per_image_epoch"] * steady["images_per_second"]
    parts = breakdown(folder, root / "profiled")
    result = {
        "command": "python " + " ".join(["benchmarks/small_folder_speed.py", *sys.argv[1:]]),
        "machine": machine,
        "folder": args.folder,
        "whole_run": run,
        "steady_state": steady,
        "whole_run_over_steady_state": round(ratio, 2),
        "breakdown_seconds_under_cprofile": parts,
        "load_average_at_end": list(os.getloadavg()),
    }  # fmt: skip
    print(json.dumps(result, indent=1, default=str))
    if args.output:
        write_json(args.output, result)


if __name__ == "__main__":
    main()
