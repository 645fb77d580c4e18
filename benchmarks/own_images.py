"""Issue 10's before and after: a small folder, and a model with its own Rescaling.

Two measurements on the synthetic tasks the tests draw (``tests/test_own_images.py``
and ``tests/test_input_contract.py``, imported here so both measure the same images):

``folder``
    3 classes x 40 shapes (32x32, PNG and JPEG) trained by ``kerasimgcls train
    --data-dir`` with the old default (``--recipe reference``: no precise batch
    norm, last epoch's weights) and with today's default (the ``folder`` recipe);
    for each, the validation accuracy of every epoch, and the accuracy and the
    number of distinct answers on 120 new images drawn the same way.
``rescaling``
    A keras.io-style model whose first layer is ``Rescaling(1/255)``, trained by the
    Trainer on a circle-or-cross task with the old contract (``input_scaling="unit"``:
    every helper divided by 255) and with today's (``"auto"``, which sees the layer and
    feeds raw pixels); the accuracy on 100 new images of ``model.predict`` on raw
    pixels and of ``predict_proba`` under each contract.

Run it (about 5 minutes on 2 cores)::

    python benchmarks/own_images.py --output benchmarks/results/own_images.json
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np
from _common import machine_info, write_json

import kerasimgcls as kic
from kerasimgcls.cli import main as cli

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_input_contract import _conv_model, circle_cross_data
from test_own_images import make_folder

COMMAND = "python benchmarks/own_images.py --output {output}"


def _accuracy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(probabilities.argmax(axis=1) == labels))


def _folder_run(train: Path, new: Path, run_dir: Path, recipe: str | None) -> Any:
    extra = [] if recipe is None else ["--recipe", recipe]
    argv = ["train", "--data-dir", str(train), "--run-dir", str(run_dir), "-q"]
    if cli([*argv, *extra]) != 0:
        raise SystemExit(f"training with recipe {recipe or 'default'} failed")
    with open(run_dir / "history.csv", newline="") as handle:
        history = [float(row["val_accuracy"]) for row in csv.DictReader(handle)]
    data = kic.load_image_folder(new, validation_split=0.0)
    predicted = kic.predict_proba(kic.load_model(run_dir), data.train.images)
    return {
        "command": " ".join(["kerasimgcls train --data-dir shapes", *extra]),
        "val_accuracy_per_epoch": history,
        "new_images": int(data.train.labels.size),
        "new_images_right": int(np.sum(predicted.argmax(1) == data.train.labels)),
        "new_image_accuracy": _accuracy(predicted, data.train.labels),
        "distinct_answers": int(np.unique(predicted.argmax(1)).size),
    }


def measure_folder(root: Path) -> dict[str, Any]:
    """The old default and the folder recipe on the same small folder."""
    train = make_folder(root / "shapes", classes=3, per_class=40, size=32, seed=0)
    new = make_folder(root / "new", classes=3, per_class=40, size=32, seed=1)
    return {
        "old_default_reference": _folder_run(train, new, root / "old", "reference"),
        "folder_recipe": _folder_run(train, new, root / "new_run", None),
    }


def measure_rescaling(root: Path) -> dict[str, Any]:
    """A Rescaling model under the old input contract and under today's."""
    data = circle_cross_data()
    assert data.test is not None
    x_test, y_test = data.test.images, data.test.labels
    results: dict[str, Any] = {}
    for contract in ("unit", "auto"):
        trainer = kic.Trainer(
            lambda: _conv_model(True),
            seed=0,
            verbose=0,
            run_dir=root / contract,
            learning_rate=3e-3,
            input_scaling=contract,  # type: ignore[arg-type]
        )
        trainer.fit(data, epochs=8, batch_size=32)
        model = trainer.model
        raw = np.asarray(model.predict(x_test.astype("float32"), verbose=0))
        results[f"trained_with_{contract}"] = {
            "model_predict_on_raw_pixels": _accuracy(raw, y_test),
            "predict_proba_old_contract_unit": _accuracy(
                kic.predict_proba(model, x_test, input_scaling="unit"), y_test
            ),
            "predict_proba_auto": _accuracy(
                kic.predict_proba(model, x_test, input_scaling="auto"), y_test
            ),
        }
    results["test_images"] = int(y_test.size)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="own-images-") as scratch:
        folder = measure_folder(Path(scratch) / "folder")
        rescaling = measure_rescaling(Path(scratch) / "rescaling")
    payload = {
        "command": COMMAND.format(output=args.output),
        "machine": machine_info(),
        "folder": folder,
        "rescaling": rescaling,
    }
    write_json(args.output, payload)
    print(payload["folder"], payload["rescaling"], sep="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
