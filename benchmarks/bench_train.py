"""Training throughput and peak memory: the tutorial's way versus the library's way.

Every measurement runs in its own subprocess (fresh TensorFlow, its own peak
memory), and the variants alternate (A, B, A, B, ...) so that the load other
processes put on the machine hits all of them alike; the summary reports medians.

Modes (same model, ``build_cifar_cnn``; same batch size; same synthetic uint8
CIFAR-shaped data, which is all throughput needs):

* ``tutorial``: the tutorial's script: float32 copies of the whole arrays
  (``x / 255``, ``to_categorical``) passed to ``model.fit``.
* ``library``: uint8 images in a :class:`kerasimgcls.Split`, batches from
  ``kerasimgcls.data.epochs_dataset`` (gather, scale and one-hot on the fly).
* ``trainer``: ``kerasimgcls.Trainer.fit`` (when the Trainer is installed).
* ``pipeline``: the library's input pipeline alone, no training.

Levers (applied to the library mode): ``spe16`` (``steps_per_execution=16``),
``xla`` (``jit_compile=True``), ``bf16`` (``mixed_bfloat16`` policy),
``fused_bn`` (batch normalisation through TensorFlow's fused kernel),
``bf16_fused_bn`` (both),
``nondeterministic`` (Trainer with ``deterministic=False``).

Usage::

    python benchmarks/bench_train.py                 # the full matrix (~30 min)
    python benchmarks/bench_train.py --quick         # seconds; what CI runs
    python benchmarks/bench_train.py --batch-sizes 64 --threads 2 --levers spe16 xla

Throughput counts only steps after a warm-up (tracing, first allocations); the
fraction of peak uses 205 MFLOP per training image of the reference model and
230 GFLOP/s for this machine's two cores (float32 FMA loop).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common

MODES = ("tutorial", "library", "trainer", "pipeline")
LEVERS = (
    "none",
    "spe16",
    "xla",
    "bf16",
    "fused_bn",
    "bf16_fused_bn",
    "nondeterministic",
)


# --------------------------------------------------------------------------- worker


def _build_model(lever: str, image_size: int) -> Any:
    import kerasimgcls as kic

    model = kic.build_cifar_cnn(input_shape=(image_size, image_size, 3), compile=False)
    if lever not in ("fused_bn", "bf16_fused_bn"):
        return model
    # The library's FusedBatchNormalization (Trainer(fused_batch_norm=True)).
    return kic.fuse_batch_norm(model)


class _Timer:
    """Keras callback recording when each step (or execution) ends; stops early."""

    def __new__(cls, stop_after: int) -> Any:
        import keras

        class _StepTimer(keras.callbacks.Callback):  # type: ignore[misc]
            def __init__(self) -> None:
                super().__init__()
                self.marks: list[tuple[int, float]] = []
                self.count = 0

            def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
                self.count = batch + 1
                self.marks.append((batch + 1, time.perf_counter()))
                if self.count >= stop_after:
                    self.model.stop_training = True

        return _StepTimer()


def _throughput(marks: list[tuple[int, float]], warmup: int, batch_size: int) -> float:
    after = [mark for mark in marks if mark[0] >= warmup]
    if len(after) < 2:
        raise RuntimeError(f"too few timed steps after warm-up: {marks}")
    (first_step, first_time), (last_step, last_time) = after[0], after[-1]
    return (last_step - first_step) * batch_size / (last_time - first_time)


def run_worker(args: argparse.Namespace) -> dict[str, Any]:
    _common.configure_threads(args.threads)
    import keras
    import numpy as np

    import kerasimgcls as kic

    keras.utils.set_random_seed(0)
    if args.lever in ("bf16", "bf16_fused_bn"):
        keras.mixed_precision.set_global_policy("mixed_bfloat16")
    images, labels = _common.synthetic_cifar(args.images, image_size=args.image_size)
    spe = 16 if args.lever == "spe16" else 1
    warmup = max(3, spe)
    total = warmup + args.steps
    result: dict[str, Any] = {
        "mode": args.mode,
        "lever": args.lever,
        "batch_size": args.batch_size,
        "threads": args.threads,
        "images_in_memory": args.images,
        "timed_steps": args.steps,
    }
    start = time.perf_counter()
    if args.mode == "pipeline":
        dataset, _ = kic.data.epochs_dataset(
            kic.Split(images, labels),
            num_classes=10,
            batch_size=args.batch_size,
            initial_epoch=0,
            epochs=1000,
        )
        marks = []
        for step, _batch in enumerate(dataset.take(total), start=1):
            marks.append((step, time.perf_counter()))
        result["images_per_second"] = _throughput(marks, warmup, args.batch_size)
        result["peak_rss_mb"] = round(_common.peak_rss_mb(), 1)
        return result

    model = _build_model(args.lever, args.image_size)
    timer = _Timer(total)
    compile_kwargs: dict[str, Any] = {
        "jit_compile": args.lever == "xla",
        "steps_per_execution": spe,
    }
    if args.mode == "tutorial":
        # The tutorial's way, verbatim: float32 copies of the whole arrays.
        x = images.astype("float32") / 255.0
        y = keras.utils.to_categorical(labels, 10)
        model.compile(
            optimizer=keras.optimizers.Adam(),
            loss="categorical_crossentropy",
            metrics=["accuracy"],
            **compile_kwargs,
        )
        model.fit(
            x, y, batch_size=args.batch_size, epochs=1, verbose=0, callbacks=[timer]
        )
    elif args.mode == "library":
        dataset, steps = kic.data.epochs_dataset(
            kic.Split(images, labels),
            num_classes=10,
            batch_size=args.batch_size,
            initial_epoch=0,
            epochs=1,
        )
        model.compile(
            optimizer=keras.optimizers.Adam(),
            loss="categorical_crossentropy",
            metrics=["accuracy"],
            **compile_kwargs,
        )
        model.fit(
            dataset, epochs=1, steps_per_epoch=steps, verbose=0, callbacks=[timer]
        )
    elif args.mode == "trainer":
        data = kic.from_arrays(images, labels, validation_split=0.0)
        trainer = kic.Trainer(  # type: ignore[attr-defined]
            model,
            callbacks=[timer],
            verbose=0,
            steps_per_execution=spe,
            deterministic=args.lever != "nondeterministic",
            precision=(
                "mixed_bfloat16"
                if args.lever in ("bf16", "bf16_fused_bn")
                else "float32"
            ),
        )
        trainer.fit(data, epochs=1, batch_size=args.batch_size)
    else:
        raise ValueError(f"unknown mode {args.mode!r}")
    result["images_per_second"] = _throughput(timer.marks, warmup, args.batch_size)
    result["wall_seconds"] = round(time.perf_counter() - start, 2)
    result["peak_rss_mb"] = round(_common.peak_rss_mb(), 1)
    result["mean_loss_finite"] = bool(np.isfinite(model.get_weights()[0]).all())
    return result


# --------------------------------------------------------------------------- driver


def _variants(args: argparse.Namespace, has_trainer: bool) -> list[dict[str, Any]]:
    modes = [m for m in args.modes if m != "trainer" or has_trainer]
    variants = [
        {"mode": mode, "lever": "none", "batch_size": batch, "threads": threads}
        for batch, threads, mode in itertools.product(
            args.batch_sizes, args.threads, modes
        )
    ]
    lever_mode = "trainer" if has_trainer and "trainer" in args.modes else "library"
    speed_mode = (
        args.lever_mode if has_trainer or args.lever_mode != "trainer" else "library"
    )
    for lever in args.levers:
        if lever == "none":
            continue
        mode = lever_mode if lever == "nondeterministic" else speed_mode
        if lever == "nondeterministic" and not has_trainer:
            continue
        variants.append(
            {
                "mode": mode,
                "lever": lever,
                "batch_size": args.lever_batch_size,
                "threads": max(args.threads),
            }
        )
    return variants


def _run_one(variant: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    steps = max(2, args.images_per_run // variant["batch_size"])
    if variant["lever"] == "spe16":
        steps = max(16, steps - steps % 16)
    if variant["lever"] == "xla":
        steps = max(2, steps // 8)  # about ten times slower: keep it short
    command = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--worker",
        "--mode",
        variant["mode"],
        "--lever",
        variant["lever"],
        "--batch-size",
        str(variant["batch_size"]),
        "--worker-threads",
        str(variant["threads"]),
        "--steps",
        str(steps),
        "--images",
        str(args.images),
        "--image-size",
        str(args.image_size),
    ]
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    load = _common.load_average()
    completed = subprocess.run(
        command, capture_output=True, text=True, env=env, check=False
    )
    lines = [line for line in completed.stdout.splitlines() if line.startswith("{")]
    if completed.returncode != 0 or not lines:
        return {
            **variant,
            "error": completed.stderr.strip().splitlines()[-3:],
            "load_before": load,
        }
    result: dict[str, Any] = json.loads(lines[-1])
    result["load_before"] = load
    return result


def _summarise(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for run in runs:
        if "error" in run:
            continue
        key = (run["mode"], run["lever"], run["batch_size"], run["threads"])
        groups.setdefault(key, []).append(run)
    rows = []
    for (mode, lever, batch, threads), members in sorted(groups.items()):
        speeds = [member["images_per_second"] for member in members]
        median = statistics.median(speeds)
        rows.append(
            {
                "mode": mode,
                "lever": lever,
                "batch_size": batch,
                "threads": threads,
                "runs": len(members),
                "images_per_second_median": round(median, 1),
                "images_per_second_min": round(min(speeds), 1),
                "images_per_second_max": round(max(speeds), 1),
                "fraction_of_peak": None
                if mode == "pipeline"
                else round(
                    median
                    * _common.REFERENCE_TRAIN_FLOP_PER_IMAGE
                    / _common.PEAK_FLOPS,
                    3,
                ),
                "peak_rss_mb_median": round(
                    statistics.median(member["peak_rss_mb"] for member in members), 1
                ),
            }
        )
    baseline = {
        (row["batch_size"], row["threads"]): row["images_per_second_median"]
        for row in rows
        if row["mode"] == "tutorial" and row["lever"] == "none"
    }
    for row in rows:
        base = baseline.get((row["batch_size"], row["threads"]))
        row["ratio_to_tutorial"] = (
            round(row["images_per_second_median"] / base, 3) if base else None
        )
    return rows


def _format_table(rows: list[dict[str, Any]]) -> str:
    header = "| mode | lever | batch | threads | runs | images/s (median) | min-max | x tutorial | of peak | peak RSS MiB |"
    lines = [header, "|" + "---|" * 10]
    for row in rows:
        peak = row["fraction_of_peak"]
        ratio = row["ratio_to_tutorial"]
        lines.append(
            f"| {row['mode']} | {row['lever']} | {row['batch_size']} | {row['threads']} "
            f"| {row['runs']} | {row['images_per_second_median']:.0f} "
            f"| {row['images_per_second_min']:.0f}-{row['images_per_second_max']:.0f} "
            f"| {'' if ratio is None else f'{ratio:.2f}'} "
            f"| {'' if peak is None else f'{peak:.0%}'} "
            f"| {row['peak_rss_mb_median']:.0f} |"
        )
    return "\n".join(lines)


def run_driver(args: argparse.Namespace) -> dict[str, Any]:
    import importlib.util

    has_trainer = False
    if importlib.util.find_spec("kerasimgcls") is not None:
        import kerasimgcls

        has_trainer = hasattr(kerasimgcls, "Trainer")
    variants = _variants(args, has_trainer)
    load_start = _common.load_average()
    runs: list[dict[str, Any]] = []
    started = time.perf_counter()
    for repeat in range(args.repeats):
        # Alternate: every variant once per round, the order reversed every other
        # round so no variant always runs right after the same neighbour.
        order = variants if repeat % 2 == 0 else list(reversed(variants))
        for variant in order:
            result = _run_one(variant, args)
            result["repeat"] = repeat
            runs.append(result)
            if not args.quiet:
                speed = result.get("images_per_second")
                shown = f"{speed:.0f} images/s" if speed else result.get("error")
                print(
                    f"[{repeat}] {variant['mode']:9s} {variant['lever']:16s} "
                    f"b={variant['batch_size']:<4d} t={variant['threads']} {shown}",
                    flush=True,
                )
    rows = _summarise(runs)
    return {
        "benchmark": "bench_train",
        "command": "python benchmarks/bench_train.py " + " ".join(sys.argv[1:]),
        "quick": args.quick,
        "settings": {
            "images_in_memory": args.images,
            "images_per_run": args.images_per_run,
            "image_size": args.image_size,
            "repeats": args.repeats,
            "flop_per_training_image": _common.REFERENCE_TRAIN_FLOP_PER_IMAGE,
            "peak_flops": _common.PEAK_FLOPS,
            "trainer_available": has_trainer,
        },
        "machine": _common.machine_info(),
        "load_average_start": load_start,
        "load_average_end": _common.load_average(),
        "wall_seconds": round(time.perf_counter() - started, 1),
        "summary": rows,
        "table_markdown": _format_table(rows),
        "runs": runs,
    }


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny run for CI")
    parser.add_argument("--modes", nargs="+", choices=MODES, default=list(MODES))
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[64, 128, 256])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--levers", nargs="+", choices=LEVERS, default=list(LEVERS))
    parser.add_argument("--lever-batch-size", type=int, default=64)
    parser.add_argument(
        "--lever-mode",
        choices=("library", "trainer", "tutorial"),
        default="library",
        help="the way the levers other than nondeterministic train (default: library)",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--images", type=int, default=50_000, help="held in memory")
    parser.add_argument("--images-per-run", type=int, default=2560, help="timed")
    parser.add_argument("--image-size", type=int, default=32)
    parser.add_argument("--output", default=None, help="results JSON path")
    parser.add_argument("--quiet", action="store_true")
    # Internal: one measurement in this process.
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument(
        "--lever", choices=LEVERS, default="none", help=argparse.SUPPRESS
    )
    parser.add_argument("--batch-size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--worker-threads", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.quick:
        args.batch_sizes = [16]
        args.threads = [1]
        args.levers = ["none"]
        args.repeats = 1
        args.images = 256
        args.images_per_run = 64
        args.image_size = 16
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker:
        args.threads = args.worker_threads
        print(json.dumps(run_worker(args)), flush=True)
        return 0
    payload = run_driver(args)
    name = "bench_train_quick.json" if args.quick else "bench_train.json"
    output = Path(args.output) if args.output else _common.RESULTS_DIR / name
    _common.write_json(output, payload)
    if not args.quiet:
        print(payload["table_markdown"])
        print(f"wrote {output}")
    failed = [run for run in payload["runs"] if "error" in run]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
