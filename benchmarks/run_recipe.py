"""Train one accuracy recipe on the CIFAR-10 JPEGs with plain Keras ``fit``.

A stand-in for ``kerasimgcls train --recipe NAME`` written before the Trainer and
the image-folder loader existed: it uses the library's model factories, its
seeded stratified split (``validation_split=0.1, seed=0``: 45,000 train / 5,000
validation) and its ``epochs_dataset`` pipeline, and writes a run directory with
``run.json``, ``history.csv`` and ``curves.png``. Only the validation split is
used for measurement; the CIFAR-10 test split is never touched.

Usage::

    python benchmarks/run_recipe.py --recipe improved \
        --data-dir ../shared/data/cifar10-jpg/train --run-dir runs/improved
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

RECIPES: dict[str, dict[str, Any]] = {
    # The tutorial: Adam at its defaults, batch 64, 25 epochs, no augmentation.
    "reference": {
        "model": "cifar_cnn",
        "epochs": 25,
        "batch_size": 64,
        "optimizer": "adam",
        "learning_rate": 1e-3,
        "schedule": "constant",
        "label_smoothing": 0.0,
        "augment": None,
        "tta_flip": False,
    },
    # Same architecture: flip + 2-pixel translate, one-cycle LR, label smoothing.
    "improved": {
        "model": "cifar_cnn",
        "epochs": 10,
        "batch_size": 64,
        "optimizer": "adam",
        "learning_rate": 2e-3,
        "schedule": "one_cycle",
        "warmup_fraction": 0.15,
        "label_smoothing": 0.1,
        "augment": {"flip": True, "translate": 2},
        "tta_flip": True,
    },
    # cifar10-airbench ideas on the airbench_cnn factory, sized for 2 CPU cores.
    "airbench": {
        "model": "airbench_cnn",
        "model_kwargs": {"widths": (32, 128, 128)},
        "epochs": 10,
        "batch_size": 256,
        "optimizer": "sgd_nesterov",
        # airbench94's lr 11.5 / weight decay 0.0153 "per 1024 examples" on a summed
        # loss, converted to Keras' mean loss and decoupled decay at batch 256.
        "learning_rate": 0.375,
        "momentum": 0.85,
        "weight_decay": 1.3e-5,
        "schedule": "triangle",
        "start_lr_fraction": 0.2,
        "warmup_fraction": 0.23,
        "final_lr_fraction": 0.07,
        "label_smoothing": 0.2,
        "augment": {"flip": True, "translate": 2},
        "tta_flip": True,
        "whiten": True,
    },
}
# The "improved" schedule with lighter regularisation (flip only, no smoothing).
RECIPES["improved_flip"] = {
    **RECIPES["improved"],
    "label_smoothing": 0.0,
    "augment": {"flip": True},
}


class OneCycle:
    """Linear warm-up from ``peak/10`` (or from 0 for ``triangle``) then linear decay."""

    def __init__(
        self, peak: float, total_steps: int, warmup: float, final: float, start: float
    ) -> None:
        import keras

        self._keras = keras
        self.peak = peak
        self.total = max(total_steps, 1)
        self.warmup_steps = max(int(warmup * total_steps), 1)
        self.final = final
        self.start = start

    def schedule(self) -> Any:
        import keras
        from keras import ops

        peak, total, warm = self.peak, self.total, self.warmup_steps
        final, start = self.final, self.start

        class _Schedule(keras.optimizers.schedules.LearningRateSchedule):  # type: ignore[misc]
            def __call__(self, step: Any) -> Any:
                step = ops.cast(step, "float32")
                up = start + (peak - start) * step / warm
                down = peak + (final - peak) * (step - warm) / max(total - warm, 1)
                return ops.where(step < warm, up, ops.maximum(down, final))

            def get_config(self) -> dict[str, Any]:
                return {"peak": peak, "total": total, "warmup": warm}

        return _Schedule()


def build_optimizer(recipe: dict[str, Any], total_steps: int) -> Any:
    import keras

    peak = recipe["learning_rate"]
    if recipe["schedule"] == "constant":
        lr: Any = peak
    elif recipe["schedule"] == "one_cycle":
        lr = OneCycle(
            peak, total_steps, recipe["warmup_fraction"], 0.0, peak / 10
        ).schedule()
    elif recipe["schedule"] == "triangle":
        lr = OneCycle(
            peak,
            total_steps,
            recipe["warmup_fraction"],
            peak * recipe["final_lr_fraction"],
            peak * recipe["start_lr_fraction"],
        ).schedule()
    else:
        raise ValueError(f"unknown schedule {recipe['schedule']!r}")
    if recipe["optimizer"] == "adam":
        return keras.optimizers.Adam(learning_rate=lr)
    if recipe["optimizer"] == "sgd_nesterov":
        return keras.optimizers.SGD(
            learning_rate=lr,
            momentum=recipe["momentum"],
            nesterov=True,
            weight_decay=recipe["weight_decay"],
        )
    raise ValueError(f"unknown optimizer {recipe['optimizer']!r}")


def augmenter(spec: dict[str, Any] | None, seed: int) -> Any:
    """Batch-level flip + reflect-padded translation as Keras preprocessing layers."""
    if not spec:
        return None
    import keras

    layers: list[Any] = []
    if spec.get("flip"):
        layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
    if spec.get("translate"):
        factor = spec["translate"] / 32.0
        layers.append(
            keras.layers.RandomTranslation(
                factor, factor, fill_mode="reflect", seed=seed + 1
            )
        )
    return keras.Sequential(layers, name="augment")


class EpochLog:
    """Keras callback writing history.csv after every epoch (learning rate, time)."""

    def __new__(cls, path: Path, optimizer: Any, evaluate_tta: Any) -> Any:
        import keras

        class _Log(keras.callbacks.Callback):  # type: ignore[misc]
            def __init__(self) -> None:
                super().__init__()
                self.rows: list[dict[str, Any]] = []
                self.start = 0.0
                self.train_start = time.perf_counter()

            def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
                self.start = time.perf_counter()

            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                row: dict[str, Any] = {"epoch": epoch + 1}
                row.update({k: float(v) for k, v in (logs or {}).items()})
                lr = optimizer.learning_rate
                row["learning_rate"] = float(np.asarray(lr))
                row["epoch_time"] = round(time.perf_counter() - self.start, 2)
                row["elapsed"] = round(time.perf_counter() - self.train_start, 2)
                if evaluate_tta is not None:
                    row["val_accuracy_tta"] = evaluate_tta(self.model)
                row["load_average"] = _common.load_average()[0]
                self.rows.append(row)
                write_history(path, self.rows)

        return _Log()


def write_history(path: Path, rows: list[dict[str, Any]]) -> None:
    fields: list[str] = []
    for row in rows:
        fields.extend(key for key in row if key not in fields)
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(path)


def plot_history(path: Path, rows: list[dict[str, Any]], title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in rows]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    for key in ("loss", "val_loss"):
        left.plot(epochs, [row.get(key) for row in rows], label=key)
    for key in ("accuracy", "val_accuracy", "val_accuracy_tta"):
        if key in rows[0]:
            right.plot(epochs, [row.get(key) for row in rows], label=key)
    left.set_xlabel("epoch")
    right.set_xlabel("epoch")
    left.legend()
    right.legend()
    right.grid(alpha=0.3)
    figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def flip_tta_accuracy(model: Any, images: np.ndarray, labels: np.ndarray) -> float:
    x = images.astype(np.float32) / 255.0
    probs = model.predict(x, batch_size=500, verbose=0)
    probs = probs + model.predict(x[:, :, ::-1], batch_size=500, verbose=0)
    return float(np.mean(probs.argmax(axis=1) == labels))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", choices=sorted(RECIPES), required=True)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--cache", default=None, help="optional .npz decode cache")
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--limit", type=int, default=None, help="train images (smoke)")
    parser.add_argument(
        "--mixed-bfloat16", action="store_true", help="Keras mixed_bfloat16 policy"
    )
    args = parser.parse_args(argv)

    _common.configure_threads(args.threads)
    import keras

    import kerasimgcls as kic
    from kerasimgcls.data import epochs_dataset
    from kerasimgcls.data._split import train_validation_split

    if args.mixed_bfloat16:
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    recipe = dict(RECIPES[args.recipe])
    if args.epochs is not None:
        recipe["epochs"] = args.epochs
    run_dir = Path(args.run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    keras.utils.set_random_seed(args.seed)

    load_start = time.perf_counter()
    images, labels = _common.load_cifar10_jpg(args.data_dir, cache=args.cache)
    train, validation = train_validation_split(
        kic.Split(images, labels), validation_split=0.1, seed=0
    )
    assert validation is not None
    if args.limit:
        # A seeded random subset: the split is sorted by class, so a prefix is not.
        pick = np.random.default_rng(args.seed).permutation(len(train))[: args.limit]
        train = train.subset(np.sort(pick))
    load_time = time.perf_counter() - load_start

    model_kwargs = dict(recipe.get("model_kwargs", {}))
    if recipe.get("whiten"):
        # A seeded random subset: the split is sorted by class, so a prefix of
        # 5,000 images would be airplanes only.
        model_kwargs["whitening_images"] = kic.models.whitening_sample(train.images)
    model = kic.get_model(
        recipe["model"], input_shape=(32, 32, 3), num_classes=10, **model_kwargs
    )
    dataset, steps = epochs_dataset(
        train,
        num_classes=10,
        batch_size=recipe["batch_size"],
        initial_epoch=0,
        epochs=recipe["epochs"],
        shuffle=True,
        seed=args.seed,
    )
    augment = augmenter(recipe["augment"], args.seed)
    if augment is not None:
        import tensorflow as tf

        dataset = dataset.map(
            lambda x, y: (augment(x, training=True), y),
            num_parallel_calls=tf.data.AUTOTUNE,
        ).prefetch(tf.data.AUTOTUNE)
    validation_data = kic.to_tf_dataset(validation, num_classes=10, batch_size=500)
    optimizer = build_optimizer(recipe, steps * recipe["epochs"])
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(
            label_smoothing=recipe["label_smoothing"]
        ),
        metrics=["accuracy"],
    )
    tta = None
    if recipe.get("tta_flip"):

        def tta(trained: Any) -> float:
            return flip_tta_accuracy(trained, validation.images, validation.labels)

    config = {k: (list(v) if isinstance(v, tuple) else v) for k, v in recipe.items()}
    config["model_kwargs"] = {
        k: (list(v) if isinstance(v, tuple) else v)
        for k, v in recipe.get("model_kwargs", {}).items()
    }
    run_info: dict[str, Any] = {
        "recipe": args.recipe,
        "config": config,
        "produced_by": (
            "benchmarks/run_recipe.py (plain keras Model.fit on the library's "
            "get_model, train_validation_split and epochs_dataset; written before "
            "kerasimgcls.Trainer and the image-folder loader existed)"
        ),
        "command": "python benchmarks/run_recipe.py " + " ".join(sys.argv[1:]),
        "seed": args.seed,
        "threads": args.threads,
        "mixed_bfloat16": args.mixed_bfloat16,
        "data": {
            "data_dir": "cifar10-jpg/train",
            "image_size": 32,
            "validation_split": 0.1,
            "split_seed": 0,
            "train_images": len(train),
            "validation_images": len(validation),
        },
        "class_names": list(_common.CIFAR10_CLASSES),
        "model_params": int(model.count_params()),
        "load_seconds": round(load_time, 1),
        "machine": _common.machine_info(),
        "status": "running",
    }
    _common.write_json(run_dir / "run.json", run_info)
    log = EpochLog(run_dir / "history.csv", optimizer, tta)
    start = time.perf_counter()
    model.fit(
        dataset,
        epochs=recipe["epochs"],
        steps_per_epoch=steps,
        validation_data=validation_data,
        callbacks=[log],
        verbose=2,
    )
    train_time = time.perf_counter() - start
    rows = log.rows
    plot_history(run_dir / "curves.png", rows, f"recipe {args.recipe}")
    run_info.update(
        {
            "status": "finished",
            "train_seconds": round(train_time, 1),
            "final": rows[-1],
            "best_val_accuracy": max(row["val_accuracy"] for row in rows),
            "peak_rss_mb": round(_common.peak_rss_mb(), 1),
        }
    )
    run_info["machine"]["load_average_end"] = _common.load_average()
    _common.write_json(run_dir / "run.json", run_info)
    print(json.dumps(run_info["final"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
