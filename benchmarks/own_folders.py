"""Own folders as they come: the default recipe against its peers, side by side.

On every folder of ``benchmarks/_folders.py`` (seeded, drawn by code, each with its
own held-out images; two CIFAR-10 subsets when ``../shared/data`` is present), three
ways of training an image classifier, each in a fresh interpreter as a user runs it:

``default``
    ``kerasimgcls train --data-dir DIR/train`` with no other flag.
``keras_io``
    The keras.io example "Image classification from scratch": its small
    Xception-like network, ``image_dataset_from_directory`` (20% validation
    split), flips and rotations of 0.1, Adam 3e-4, the last epoch's weights; at the
    image size and for the number of epochs the default chose on the same folder.
    Written here from the example's description; no code of it is copied.
``reference``
    ``kerasimgcls train --data-dir DIR/train --recipe reference`` (the tutorial).

Each is scored once on the folder's held-out images; the wall time is the training
command's, from the start of its interpreter to its exit. The methods alternate
their order from folder to folder. ``_folders.KEPT_OUT`` is left out of every run
but the final one (``--final``), so that no tuning decision has seen it.

Run it (the whole benchmark, about an hour on two cores)::

    python benchmarks/own_folders.py --final --output benchmarks/results/own_folders.json

or a part while tuning (never the kept-out folder)::

    python benchmarks/own_folders.py --only textures,colour --methods default
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import _folders
from _common import machine_info, write_json

METHODS = ("default", "keras_io", "reference")
HERE = Path(__file__).resolve()


def _run(argv: list[str], log: Path) -> float:
    """Run ``argv`` in a fresh interpreter; return its wall time in seconds."""
    start = time.perf_counter()
    with open(log, "w") as out:
        done = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, check=False)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}); see {log}")
    return seconds


def _kerasimgcls(*args: str) -> list[str]:
    return [sys.executable, "-m", "kerasimgcls", *args]


def train_library(
    folder: Path, run: Path, recipe: str | None, log: Path
) -> dict[str, Any]:
    """``kerasimgcls train`` on ``folder/train``; scored on ``folder/heldout``."""
    extra = [] if recipe is None else ["--recipe", recipe]
    seconds = _run(
        _kerasimgcls("train", "--data-dir", str(folder / "train"), "--run-dir", str(run),
                     "-q", *extra),
        log,
    )  # fmt: skip
    info = json.loads((run / "run.json").read_text())
    score = run / "heldout.json"
    _run([sys.executable, str(HERE), "--score", str(run), str(folder / "heldout"),
          str(score)], log.with_suffix(".score.log"))  # fmt: skip
    return {
        "command": " ".join(["kerasimgcls train --data-dir DIR/train", *extra]),
        "wall_seconds": round(seconds, 1),
        "epochs": info["config"]["epochs"],
        "input_shape": info["data"]["input_shape"],
        "train_images": info["data"]["sizes"].get("train"),
        **json.loads(score.read_text()),
    }


def score_run(run: Path, heldout: Path, output: Path) -> None:
    """Predict every held-out image with the run, as ``kerasimgcls predict`` does."""
    import kerasimgcls as kic

    predictions = kic.predict(run, heldout)
    names = list(predictions.class_names)
    truth = [Path(path).parent.name for path in predictions.paths]
    guessed = [names[i] for i in predictions.probabilities.argmax(axis=1)]
    right = sum(a == b for a, b in zip(truth, guessed, strict=True))
    output.write_text(json.dumps({"heldout_images": len(truth),
                                  "heldout_accuracy": right / len(truth)}))  # fmt: skip


def train_keras_io(
    folder: Path, size: tuple[int, int], epochs: int, output: Path
) -> None:
    """The keras.io example, in this interpreter (called by the parent in a fresh one)."""
    import keras
    import numpy as np
    from keras import layers

    keras.utils.set_random_seed(1337)
    train_ds, val_ds = keras.utils.image_dataset_from_directory(
        folder / "train", validation_split=0.2, subset="both", seed=1337,
        image_size=size, batch_size=128,
    )  # fmt: skip
    num_classes = len(train_ds.class_names)
    augmentation = [layers.RandomFlip("horizontal"), layers.RandomRotation(0.1)]

    def augment(images: Any) -> Any:
        for layer in augmentation:
            images = layer(images)
        return images

    train_ds = train_ds.map(lambda x, y: (augment(x), y)).prefetch(2)
    model = _keras_io_model((*size, 3), num_classes)
    binary = num_classes == 2
    model.compile(
        optimizer=keras.optimizers.Adam(3e-4),
        loss=keras.losses.BinaryCrossentropy(from_logits=True)
        if binary
        else keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy" if not binary else keras.metrics.BinaryAccuracy()],
    )
    model.fit(train_ds, epochs=epochs, validation_data=val_ds.prefetch(2), verbose=2)
    heldout = keras.utils.image_dataset_from_directory(
        folder / "heldout", image_size=size, batch_size=128, shuffle=False
    )
    logits = model.predict(heldout, verbose=0)
    labels = np.concatenate([y for _, y in heldout])
    guessed = (logits[:, 0] > 0).astype(int) if binary else logits.argmax(axis=1)
    output.write_text(json.dumps({
        "heldout_images": int(labels.size),
        "heldout_accuracy": float(np.mean(guessed == labels)),
        "parameters": int(model.count_params()),
    }))  # fmt: skip


def _keras_io_model(input_shape: tuple[int, ...], num_classes: int) -> Any:
    """The example's small Xception-like network (entry conv, three residual stages)."""
    import keras
    from keras import layers

    inputs = keras.Input(shape=input_shape)
    x = layers.Rescaling(1.0 / 255)(inputs)
    x = layers.Conv2D(128, 3, strides=2, padding="same")(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    shortcut = x
    for width in (256, 512, 728):
        for _ in range(2):
            x = layers.Activation("relu")(x)
            x = layers.SeparableConv2D(width, 3, padding="same")(x)
            x = layers.BatchNormalization()(x)
        x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
        x = layers.add(
            [x, layers.Conv2D(width, 1, strides=2, padding="same")(shortcut)]
        )
        shortcut = x
    x = layers.SeparableConv2D(1024, 3, padding="same")(x)
    x = layers.BatchNormalization()(x)
    x = layers.Activation("relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = layers.Dropout(0.25)(x)
    outputs = layers.Dense(1 if num_classes == 2 else num_classes)(x)
    return keras.Model(inputs, outputs)


def measure(
    spec: _folders.Folder, root: Path, methods: list[str], turn: int
) -> dict[str, Any]:
    folder = spec.write(root / "folders")
    work = root / "runs" / spec.name
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {}
    # The default runs first: the peer takes its image size and epochs.
    order = ["default"] + [m for m in METHODS[1:] if m in methods]
    if turn % 2:
        order = ["default", *reversed(order[1:])]
    for method in order:
        if method == "default":
            results[method] = train_library(folder, work / "default", None,
                                            work / "default.log")  # fmt: skip
        elif method == "reference":
            results[method] = train_library(folder, work / "reference", "reference",
                                            work / "reference.log")  # fmt: skip
        else:
            height, width = results["default"]["input_shape"][:2]
            epochs = results["default"]["epochs"]
            output = work / "keras_io.json"
            seconds = _run([sys.executable, str(HERE), "--keras-io", str(folder),
                            f"{height},{width}", str(epochs), str(output)],
                           work / "keras_io.log")  # fmt: skip
            results[method] = {
                "command": "keras.io 'image classification from scratch', "
                f"{height}x{width}, {epochs} epochs",
                "wall_seconds": round(seconds, 1),
                "epochs": epochs,
                **json.loads(output.read_text()),
            }
        print(f"{spec.name:14s} {method:10s} "
              f"{results[method]['heldout_accuracy']:.3f} "
              f"{results[method]['wall_seconds']:7.1f} s", flush=True)  # fmt: skip
    return {"description": spec.description, "classes": len(spec.classes),
            "train_per_class": spec.train_per_class,
            "heldout_per_class": spec.heldout_per_class,
            "kept_out": spec.name == _folders.KEPT_OUT, **results}  # fmt: skip


def summarise(table: dict[str, Any], methods: list[str]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for method in methods:
        accuracy = [row[method]["heldout_accuracy"] for row in table.values()]
        seconds = [row[method]["wall_seconds"] for row in table.values()]
        summary[method] = {"mean_heldout_accuracy": round(statistics.mean(accuracy), 4),
                           "total_wall_seconds": round(sum(seconds), 1)}  # fmt: skip
    return summary


def markdown(table: dict[str, Any], methods: list[str]) -> str:
    head = "| folder | " + " | ".join(f"{m} acc | {m} s" for m in methods) + " |"
    lines = [head, "|" + "---|" * (1 + 2 * len(methods))]
    for name, row in table.items():
        mark = f"{name} (kept out)" if row["kept_out"] else name
        cells = [f"{row[m]['heldout_accuracy']:.3f} | {row[m]['wall_seconds']:.0f}"
                 for m in methods]  # fmt: skip
        lines.append(f"| {mark} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated folder names")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument(
        "--final",
        action="store_true",
        help=f"also measure the kept-out folder ({_folders.KEPT_OUT})",
    )
    parser.add_argument("--root", type=Path, help="where folders and runs go")
    parser.add_argument("--output", type=Path)
    parser.add_argument("--score", nargs=3, help=argparse.SUPPRESS)
    parser.add_argument("--keras-io", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()  # fmt: skip
    if args.score:
        score_run(Path(args.score[0]), Path(args.score[1]), Path(args.score[2]))
        return
    if args.keras_io:
        folder, size, epochs, output = args.keras_io
        height, width = (int(v) for v in size.split(","))
        train_keras_io(Path(folder), (height, width), int(epochs), Path(output))
        return
    methods = [m for m in METHODS if m in args.methods.split(",")]
    specs = list(_folders.folders(with_cifar=_folders.SHARED_CIFAR.is_dir()))
    if args.only:
        wanted = set(args.only.split(","))
        specs = [spec for spec in specs if spec.name in wanted]
    if not args.final:
        specs = [spec for spec in specs if spec.name != _folders.KEPT_OUT]
    root = args.root or Path(tempfile.mkdtemp(prefix="own_folders-"))
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    machine = machine_info()
    table = {spec.name: measure(spec, root, methods, turn)
             for turn, spec in enumerate(specs)}  # fmt: skip
    result = {
        "command": "python " + " ".join(["benchmarks/own_folders.py", *sys.argv[1:]]),
        "started_utc": started,
        "machine": machine,
        "load_average_at_end": list(os.getloadavg()),
        "folders": table,
        "summary": summarise(table, methods),
    }
    print(markdown(table, methods))
    print(json.dumps(result["summary"], indent=1))
    if args.output:
        write_json(args.output, result)


if __name__ == "__main__":
    main()
