"""Ablate the airbench94 pieces one at a time on the ``airbench_cnn`` port.

Trains ``build_airbench_cnn`` with plain ``keras.Model.fit`` (not the Trainer) on a
seeded subset of the CIFAR-10 JPEGs (the library's stratified 45,000 / 5,000
split, ``validation_split=0.1, seed=0``; only the validation split is scored),
switching one airbench94 item on at a time from the port's current recipe:

- ``batch``: batch 1,024 with the last partial batch dropped (learning rate and
  weight decay scaled with the batch, as the recipe's conversion does);
- ``bn_matched``: batch-norm momentum 0.6 per 1,024 images at the run's batch;
- ``lookahead``: :class:`kerasimgcls.WeightAveraging` every 5 steps, decay
  ``0.95 ** 5 * (t / T) ** 3``, final net := average;
- ``alt_flip``: ``Augmentation(flip_mode="alternating")``;
- ``whiten_std``: whitening from standardised images (eps 5e-4) kept in float32;
- ``final_lr0``: the learning rate decays to 0 instead of 0.07 of its peak.

Every run is scored with three TTAs (:func:`kerasimgcls.predict_tta`): none,
mirror, and airbench's six views in logit space, so TTA needs no runs of its own.
Each configuration writes ``<name>_seed<seed>.json`` (settings, per-epoch
history, accuracies, time, CPU model and load average) under ``--out``.

Usage::

    python benchmarks/airbench_ablate.py --data-dir ../shared/data/cifar10-jpg/train \
        --cache cache/cifar10_jpg_train.npz --train-images 20000 --widths 32 128 128 \
        --epochs 10 --configs port batch batch+lookahead
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

#: Item -> what it changes; a configuration is "port" or items joined by "+".
ITEMS = ("batch", "bn_matched", "lookahead", "alt_flip", "whiten_std", "final_lr0")

#: The port's recipe (``recipes.py`` "airbench") at batch 256.
BASE: dict[str, Any] = {
    "batch_size": 256,
    "learning_rate_per_1024": 1.5,  # Keras mean-loss lr at batch 1,024
    "weight_decay": 0.0102,  # Keras decoupled decay (multiplied by the lr)
    "momentum": 0.85,
    "label_smoothing": 0.2,
    "warmup_fraction": 0.23,
    "initial_fraction": 0.2,
    "final_fraction": 0.07,
    "batch_norm_momentum": 0.6,
    "batch_norm_batch_size": None,
    "drop_remainder": False,
    "flip_mode": "random",
    "translate": 2,
    "whitening_standardize": False,
    "whitening_dtype": None,
    "lookahead": False,
}


def settings_for(config: str) -> dict[str, Any]:
    """The settings of ``config`` (``"port"`` or items joined by ``"+"``)."""
    settings = dict(BASE)
    items = [] if config == "port" else config.split("+")
    unknown = sorted(set(items) - set(ITEMS))
    if unknown:
        raise SystemExit(f"unknown item(s) {unknown}; items: {list(ITEMS)} or 'port'")
    for item in items:
        if item == "batch":
            settings.update(batch_size=1024, drop_remainder=True)
        elif item == "bn_matched":
            settings["batch_norm_batch_size"] = "batch_size"
        elif item == "lookahead":
            settings["lookahead"] = True
        elif item == "alt_flip":
            settings["flip_mode"] = "alternating"
        elif item == "whiten_std":
            settings.update(whitening_standardize=True, whitening_dtype="float32")
        elif item == "final_lr0":
            settings["final_fraction"] = 0.0
    if settings["batch_norm_batch_size"] == "batch_size":
        settings["batch_norm_batch_size"] = settings["batch_size"]
    return settings


class _EpochLog:
    """Per-epoch history with wall time and load average (a Keras callback)."""

    def __new__(cls) -> Any:
        import keras

        class Log(keras.callbacks.Callback):  # type: ignore[misc]
            def __init__(self) -> None:
                super().__init__()
                self.rows: list[dict[str, Any]] = []
                self.start = time.perf_counter()

            def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
                row: dict[str, Any] = {"epoch": epoch + 1}
                row.update({k: round(float(v), 5) for k, v in (logs or {}).items()})
                row["elapsed"] = round(time.perf_counter() - self.start, 1)
                row["load_average"] = _common.load_average()[0]
                self.rows.append(row)
                print(json.dumps(row), flush=True)

        return Log()


def run_one(
    config: str,
    args: argparse.Namespace,
    train: Any,
    validation: Any,
) -> dict[str, Any]:
    import keras

    import kerasimgcls as kic

    settings = settings_for(config)
    batch = settings["batch_size"]
    keras.utils.set_random_seed(args.seed)
    # The split is sorted by class: a seeded sample, as the CLI takes, not a prefix.
    sample = np.random.default_rng(0).permutation(len(train))[:5000]
    with kic.precision_scope(args.precision):
        model = kic.build_airbench_cnn(
            widths=tuple(args.widths),
            whitening_images=train.images[np.sort(sample)],
            batch_norm_momentum=settings["batch_norm_momentum"],
            batch_norm_batch_size=settings["batch_norm_batch_size"],
            whitening_standardize=settings["whitening_standardize"],
            whitening_dtype=settings["whitening_dtype"],
        )
        if args.fused_batch_norm:
            model = kic.fuse_batch_norm(model)
    augment = kic.Augmentation(
        flip=True, translate=settings["translate"], flip_mode=settings["flip_mode"]
    )
    dataset, steps = kic.epochs_dataset(
        train,
        num_classes=10,
        batch_size=batch,
        initial_epoch=0,
        epochs=args.epochs,
        seed=args.seed,
        drop_remainder=settings["drop_remainder"],
        augment=augment,
    )
    from kerasimgcls.training import WarmupSchedule

    total = steps * args.epochs
    schedule = WarmupSchedule(
        "triangle",
        settings["learning_rate_per_1024"] * batch / 1024,
        total_steps=total,
        warmup_steps=round(settings["warmup_fraction"] * total),
        initial_fraction=settings["initial_fraction"],
        final_fraction=settings["final_fraction"],
    )
    optimizer = keras.optimizers.SGD(
        learning_rate=schedule,
        momentum=settings["momentum"],
        nesterov=True,
        weight_decay=settings["weight_decay"],
    )
    model.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(
            label_smoothing=settings["label_smoothing"]
        ),
        metrics=["accuracy"],
    )
    log = _EpochLog()
    callbacks: list[Any] = [log]
    if settings["lookahead"]:
        callbacks.insert(
            0,
            kic.WeightAveraging(
                0.95,
                every=5,
                lookahead=True,
                ramp_power=3.0,
                validate_with_average=False,
            ),
        )
    validation_data = kic.to_tf_dataset(validation, num_classes=10, batch_size=500)
    load_begin = _common.load_average()
    start = time.perf_counter()
    model.fit(
        dataset,
        epochs=args.epochs,
        steps_per_epoch=steps,
        validation_data=validation_data,
        validation_freq=args.epochs if args.validate_last_only else 1,
        callbacks=callbacks,
        verbose=0,
    )
    train_seconds = time.perf_counter() - start
    accuracies = {}
    tta_start = time.perf_counter()
    for views in ("none", "flip", "flip_translate"):
        probabilities = kic.predict_tta(
            model, validation.images, views=views, batch_size=500
        )
        accuracies[views] = float(
            np.mean(probabilities.argmax(axis=1) == validation.labels)
        )
    # The port's TTA: the mean of the two views' probabilities.
    plain = kic.predict_proba(model, validation.images, batch_size=500, tta="flip")
    accuracies["flip_probability_mean"] = float(
        np.mean(plain.argmax(axis=1) == validation.labels)
    )
    return {
        "config": config,
        "settings": settings,
        "seed": args.seed,
        "epochs": args.epochs,
        "steps_per_epoch": steps,
        "widths": list(args.widths),
        "train_images": len(train),
        "validation_images": len(validation),
        "precision": args.precision,
        "fused_batch_norm": args.fused_batch_norm,
        "val_accuracy": accuracies,
        "train_seconds": round(train_seconds, 1),
        "tta_seconds": round(time.perf_counter() - tta_start, 1),
        "history": log.rows,
        "cpu_model": _common.cpu_model(),
        "load_average_begin": load_begin,
        "load_average_end": _common.load_average(),
        "machine": _common.machine_info(),
        "command": "python benchmarks/airbench_ablate.py " + " ".join(sys.argv[1:]),
    }


def write_summary(out: Path) -> Path:
    """Write ``summary.md``: one table row per result file in ``out``."""
    rows = []
    for path in sorted(out.glob("*_seed*.json")):
        result = json.loads(path.read_text())
        accuracy = result["val_accuracy"]
        begin, end = result["load_average_begin"][0], result["load_average_end"][0]
        rows.append(
            f"| {result['config']} | {result['seed']} | {result['epochs']} | "
            f"{result['settings']['batch_size']} | {100 * accuracy['none']:.2f} | "
            f"{100 * accuracy['flip_probability_mean']:.2f} | "
            f"{100 * accuracy['flip']:.2f} | {100 * accuracy['flip_translate']:.2f} | "
            f"{result['train_seconds']:.0f} | {begin:.1f}-{end:.1f} |"
        )
    if not rows:
        raise SystemExit(f"no result files in {out}")
    first = json.loads(sorted(out.glob("*_seed*.json"))[0].read_text())
    lines = [
        "# airbench ablation",
        "",
        f"Written by `python benchmarks/airbench_ablate.py --summary --out {out.as_posix()}`"
        " from the JSON files here; each file holds its own command.",
        f"Widths {first['widths']}, {first['train_images']} training and "
        f"{first['validation_images']} validation images (validation split of the "
        f"CIFAR-10 JPEGs), {first['precision']}, CPU {first['cpu_model']}.",
        "Validation accuracy (%) with no TTA, the port's flip TTA (mean of "
        "probabilities), flip TTA in logit space and airbench's six views; "
        "train time in seconds; 1-minute load average at the start and end.",
        "",
        "| configuration | seed | epochs | batch | no TTA | flip (prob.) | flip (logit)"
        " | 6 views | train s | load |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
        *rows,
        "",
    ]
    path = out / "summary.md"
    path.write_text("\n".join(lines))
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="the CIFAR-10 JPEG train folder")
    parser.add_argument("--cache", default=None, help="optional .npz decode cache")
    parser.add_argument("--out", default="benchmarks/results/airbench_ablation")
    parser.add_argument("--train-images", type=int, default=None, help="subset size")
    parser.add_argument("--widths", type=int, nargs=3, default=[32, 128, 128])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--precision", choices=["float32", "mixed_bfloat16"], default="mixed_bfloat16"
    )
    parser.add_argument("--fused-batch-norm", action="store_true")
    parser.add_argument(
        "--validate-last-only", action="store_true", help="validate only at the end"
    )
    parser.add_argument("--configs", nargs="+", default=["port"])
    parser.add_argument(
        "--summary", action="store_true", help="only write summary.md from --out"
    )
    parser.add_argument(
        "--dump-split",
        type=Path,
        default=None,
        help="only write the 45,000 / 5,000 split as .npz (for airbench_torch.py)",
    )
    args = parser.parse_args(argv)
    if args.summary:
        print(write_summary(Path(args.out)))
        return 0
    if args.data_dir is None:
        parser.error("--data-dir is required unless --summary")
    for config in args.configs:
        settings_for(config)  # refuse a typo before loading anything

    _common.configure_threads(args.threads)
    import kerasimgcls as kic
    from kerasimgcls.data._split import train_validation_split

    images, labels = _common.load_cifar10_jpg(args.data_dir, cache=args.cache)
    train, validation = train_validation_split(
        kic.Split(images, labels), validation_split=0.1, seed=0
    )
    if validation is None:
        raise SystemExit("the split gave no validation images")
    if args.dump_split is not None:
        np.savez(
            args.dump_split,
            xtr=train.images,
            ytr=train.labels,
            xva=validation.images,
            yva=validation.labels,
        )
        print(args.dump_split)
        return 0
    if args.train_images:
        # A seeded random subset: the split is sorted by class, so a prefix is not.
        pick = np.random.default_rng(0).permutation(len(train))[: args.train_images]
        train = train.subset(np.sort(pick))
    out = Path(args.out)
    for config in args.configs:
        result = run_one(config, args, train, validation)
        path = out / f"{config}_seed{args.seed}.json"
        _common.write_json(path, result)
        print(
            config,
            json.dumps(result["val_accuracy"]),
            result["train_seconds"],
            flush=True,
        )
    write_summary(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
