"""Transfer learning measured offline: knowledge moved between two halves of CIFAR-10.

No model hub is reachable here, so the pretrained backbone is made the way a user
moves knowledge between their own datasets:

1. Pretrain: a transfer model (``build_transfer_model``, random initial weights)
   on the five classes airplane, automobile, bird, cat and deer, all their training
   images (4% held out to report the pretraining accuracy).
2. Transfer: the other five classes (dog, frog, horse, ship, truck) with only
   ``--per-class`` (100) training images per class, three seeds (each its own
   sample of images and initial head), the same budget (epochs, batch, optimizer)
   for every arm:

   - ``scratch``: the same architecture from random weights, every layer trained;
   - ``fine_tune``: the pretrained backbone (``weights=<pretrain model.keras>``),
     :class:`kerasimgcls.FineTune`: the head alone for ``--warmup-epochs``, then
     the whole backbone (batch norm frozen) at a tenth of the learning rate;
   - ``probe``: the pretrained backbone frozen throughout (a linear probe).

   Each is scored once, after its last epoch, on every other training image of
   those five classes (24,500 with 100 per class): no epoch is chosen on them.

    python benchmarks/transfer_offline.py --data-dir ../shared/data/cifar10-jpg \\
        --backbone cifar_body --output benchmarks/results/transfer/cifar_body.json

``cifar_body`` is the reference CNN's four convolution blocks (32-64-64-128
filters, batch norm) behind a ``Rescaling(1/255)``; ``mobilenet_v3_small`` is
keras.applications' MobileNetV3Small with ``weights=None`` at 32x32 (no resizing).
The script skips (exit 0, a message) when the data folder is absent.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_cifar10_jpg, machine_info, write_json

import kerasimgcls as kic
from kerasimgcls.data import CIFAR10_CLASSES

PRETRAIN_CLASSES = ("airplane", "automobile", "bird", "cat", "deer")
TARGET_CLASSES = ("dog", "frog", "horse", "ship", "truck")


def cifar_body() -> Any:
    """The reference CNN's convolution blocks as a backbone taking 0-255 pixels."""
    import keras

    inputs = keras.Input((32, 32, 3), name="pixels")
    x = keras.layers.Rescaling(1.0 / 255.0, name="scale")(inputs)
    common: dict[str, Any] = {"batch_norm": True, "batch_norm_momentum": 0.9}
    x = kic.conv_block(x, 32, pool_size=None, name="block1", **common)
    x = kic.conv_block(x, 64, pool_size=2, name="block2", **common)
    x = kic.conv_block(x, 64, pool_size=2, name="block3", **common)
    x = kic.conv_block(x, 128, pool_size=None, name="block4", **common)
    return keras.Model(inputs, x, name="cifar_body")


def build(backbone: str, num_classes: int, weights: str | None) -> Any:
    if backbone == "cifar_body":
        return kic.build_transfer_model(
            cifar_body(),
            input_shape=(32, 32, 3),
            num_classes=num_classes,
            weights=weights,
            name="cifar_body_transfer",
        )
    return kic.build_transfer_model(
        backbone,
        input_shape=(32, 32, 3),
        num_classes=num_classes,
        weights=weights,
        image_size=None,
    )


def subset(
    images: np.ndarray, labels: np.ndarray, classes: tuple[str, ...]
) -> tuple[np.ndarray, np.ndarray]:
    wanted = [CIFAR10_CLASSES.index(name) for name in classes]
    keep = np.isin(labels, wanted)
    remap = {old: new for new, old in enumerate(wanted)}
    return images[keep], np.array([remap[int(y)] for y in labels[keep]], np.int64)


def pretrain(args: argparse.Namespace, images: np.ndarray, labels: np.ndarray) -> dict:
    data = kic.from_arrays(
        images,
        labels,
        class_names=PRETRAIN_CLASSES,
        validation_split=0.04,
        seed=0,
        name="cifar10_first_five",
    )
    run_dir = args.work_dir / f"pretrain_{args.backbone}"
    trainer = kic.Trainer(
        lambda: build(args.backbone, 5, None),
        seed=0,
        run_dir=run_dir,
        verbose=2,
        deterministic=False,
    )
    start = time.perf_counter()
    history = trainer.fit(
        data, epochs=args.pretrain_epochs, batch_size=64, augment=_augment()
    )
    return {
        "run_dir": str(run_dir),
        "train_images": len(data.train),
        "epochs": args.pretrain_epochs,
        "seconds": round(time.perf_counter() - start, 1),
        "val_accuracy": history.rows[-1].get("val_accuracy"),
        "model": str(run_dir / "model.keras"),
    }


def _augment() -> Any:
    return kic.Augmentation(flip=True, translate=2)


def transfer_split(
    images: np.ndarray, labels: np.ndarray, per_class: int, seed: int
) -> tuple[Any, Any]:
    rng = np.random.default_rng(seed)
    chosen = np.concatenate(
        [
            rng.choice(np.flatnonzero(labels == label), per_class, replace=False)
            for label in range(len(TARGET_CLASSES))
        ]
    )
    rest = np.setdiff1d(np.arange(len(labels)), chosen)
    train = kic.from_arrays(
        images[chosen],
        labels[chosen],
        class_names=TARGET_CLASSES,
        validation_split=0.0,
        seed=seed,
        name=f"cifar10_last_five_{per_class}_per_class_seed{seed}",
    )
    return train, kic.Split(images[rest], labels[rest])


def run_arm(
    args: argparse.Namespace, arm: str, seed: int, train: Any, scored: Any, model: str
) -> dict:
    callbacks: list[Any] = []
    weights = None if arm == "scratch" else model
    if arm == "fine_tune":
        callbacks = [
            kic.FineTune(warmup_epochs=args.warmup_epochs, unfreeze_layers=None)
        ]
    elif arm == "probe":
        callbacks = [kic.FineTune(warmup_epochs=args.epochs, unfreeze_layers=0)]
    trainer = kic.Trainer(
        lambda: build(args.backbone, len(TARGET_CLASSES), weights),
        seed=seed,
        verbose=0,
        deterministic=False,
        callbacks=callbacks,
    )
    start = time.perf_counter()
    history = trainer.fit(train, epochs=args.epochs, batch_size=32, augment=_augment())
    seconds = time.perf_counter() - start
    scores = trainer.evaluate(scored)
    row = {
        "arm": arm,
        "seed": seed,
        "accuracy": round(float(scores["accuracy"]), 4),
        "loss": round(float(scores["loss"]), 4),
        "train_accuracy_last_epoch": round(float(history.rows[-1]["accuracy"]), 4),
        "train_seconds": round(seconds, 1),
    }
    print(row, flush=True)
    return row


def summarize(rows: list[dict]) -> dict[str, dict]:
    summary = {}
    for arm in sorted({row["arm"] for row in rows}):
        values = np.array([row["accuracy"] for row in rows if row["arm"] == arm])
        summary[arm] = {
            "mean_accuracy": round(float(values.mean()), 4),
            "std_accuracy": round(float(values.std(ddof=1)), 4)
            if len(values) > 1
            else None,
            "accuracies": values.tolist(),
        }
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument(
        "--backbone", choices=("cifar_body", "mobilenet_v3_small"), default="cifar_body"
    )
    parser.add_argument("--pretrain-epochs", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--warmup-epochs", type=int, default=5)
    parser.add_argument("--per-class", type=int, default=100)
    parser.add_argument(
        "--pretrain-images", type=int, default=None, help="a sample, for a smoke run"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--arms", nargs="+", default=["scratch", "fine_tune", "probe"])
    parser.add_argument("--work-dir", type=Path, default=Path("/tmp/transfer_offline"))
    parser.add_argument("--cache", type=Path, default=None)
    parser.add_argument("--output", type=Path, required=True)
    args = parser.parse_args(argv)
    train_dir = args.data_dir / "train"
    if not train_dir.is_dir():
        print(f"skipped: no CIFAR-10 folder at {train_dir}")
        return 0
    started = machine_info()
    images, labels = load_cifar10_jpg(train_dir, cache=args.cache)
    first = subset(images, labels, PRETRAIN_CLASSES)
    if args.pretrain_images:
        keep = np.random.default_rng(0).permutation(len(first[1]))[
            : args.pretrain_images
        ]
        first = (first[0][np.sort(keep)], first[1][np.sort(keep)])
    last = subset(images, labels, TARGET_CLASSES)
    result: dict[str, Any] = {
        "command": "python benchmarks/transfer_offline.py " + " ".join(sys.argv[1:]),
        "backbone": args.backbone,
        "machine_at_start": started,
    }
    result["pretrain"] = pretrain(args, *first)
    print(result["pretrain"], flush=True)
    rows = []
    for seed in args.seeds:
        train, scored = transfer_split(*last, args.per_class, seed)
        for arm in args.arms:
            rows.append(
                run_arm(args, arm, seed, train, scored, result["pretrain"]["model"])
            )
            result.update(runs=rows, summary=summarize(rows))
            write_json(args.output, result)
    result["scored_images"] = len(scored.labels)
    result["budget"] = {
        "epochs": args.epochs,
        "batch_size": 32,
        "optimizer": "adam, learning rate 1e-3 (fine_tune: x0.1 after warmup)",
        "augment": "flip, translate 2",
        "warmup_epochs": args.warmup_epochs,
        "per_class": args.per_class,
    }
    result["machine_at_end"] = machine_info()
    write_json(args.output, result)
    print(result["summary"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
