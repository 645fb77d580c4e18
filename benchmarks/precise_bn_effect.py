"""Measure precise batch norm on trained CIFAR-10 runs: validation accuracy of the
run's model.keras as trained, then after re-estimating every batch norm's statistics
from training images at inference (kerasimgcls.precise_batch_norm).

    python benchmarks/precise_bn_effect.py RUN_DIR [RUN_DIR ...] --output FILE.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

import kerasimgcls as kic


def accuracy(model, split) -> float:  # type: ignore[no-untyped-def]
    probabilities = kic.predict_proba(model, split.images, batch_size=500)
    return float(np.mean(probabilities.argmax(axis=1) == split.labels))


def _recipe_name(recipe: object) -> object:
    return recipe.get("name") if isinstance(recipe, dict) else recipe


def measure(run_dir: Path, num_images: int) -> dict[str, object]:
    run = json.loads((run_dir / "run.json").read_text())
    spec = run["data"]
    data = kic.load_cifar10(
        data_dir=spec["data_dir"],
        validation_split=spec["validation_split"],
        seed=spec["split_seed"],
    )
    assert data.validation is not None
    model = kic.load_model(run_dir / "model.keras")
    before = accuracy(model, data.validation)
    start = time.perf_counter()
    info = kic.precise_batch_norm(model, data.train.images, num_images=num_images)
    seconds = time.perf_counter() - start
    after = accuracy(model, data.validation)
    return {
        "run": run_dir.name,
        "recipe": _recipe_name(run.get("recipe")),
        "command": run["command"],
        "validation_images": int(data.validation.images.shape[0]),
        "accuracy_as_trained": before,
        "accuracy_precise_bn": after,
        "precise_bn_images": info["num_images"],
        "precise_bn_layers": len(info["layers"]),
        "precise_bn_seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--num-images", type=int, default=4096)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args()
    results = [measure(run, args.num_images) for run in args.runs]
    for row in results:
        print(json.dumps(row))
    report = {
        "cpu": platform.processor() or platform.machine(),
        "load_average": os.getloadavg(),
        "kerasimgcls": kic.__version__,
        "results": results,
    }
    args.output.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
