"""Data benchmark: image loading, the input pipeline and peak memory.

Measures, on a folder of class sub-folders of images:

1. ``load_image_folder`` images/s: the first load (decode every file) and a load
   from the uint8 cache;
2. the input pipeline alone (``epochs_dataset``, batch 64, with and without
   augmentation) in images/s, next to the reference CNN's training images/s on
   the same batches;
3. peak memory (peak resident set: ``VmHWM`` on Linux, else ``ru_maxrss``) of
   loading the data and building the training
   pipeline, the library's way (uint8 in memory, normalise and one-hot per batch)
   versus the tutorial's way (float32 copies of the whole arrays plus one-hot
   arrays fed to ``tf.data``), each in a fresh subprocess, side by side in one run.

Usage::

    python benchmarks/bench_data.py                  # ../shared/data/cifar10-jpg/train
    python benchmarks/bench_data.py --data-dir DIR   # any class-folder dataset
    python benchmarks/bench_data.py --quick          # generated JPEGs, runs anywhere

Results go to ``benchmarks/results/bench_data.json`` (``bench_data_quick.json``
for ``--quick``) with the machine's details.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
DEFAULT_DATA = REPO.parent / "shared" / "data" / "cifar10-jpg" / "train"
RESULTS = HERE / "results"


def machine_info() -> dict[str, Any]:
    import keras
    import PIL
    import tensorflow as tf

    import kerasimgcls

    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu_model": cpu,
        "logical_cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "pillow": PIL.__version__,
        "kerasimgcls": kerasimgcls.__version__,
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def make_images(root: Path, count: int, size: int = 32) -> Path:
    """Write ``count`` random-but-smooth JPEGs in 10 class folders (like CIFAR)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for index in range(count):
        folder = root / f"class{index % 10}"
        folder.mkdir(parents=True, exist_ok=True)
        small = rng.integers(0, 256, (size // 4, size // 4, 3), np.uint8)
        image = Image.fromarray(small).resize((size, size), Image.Resampling.BILINEAR)
        image.save(folder / f"{index:05d}.jpg", quality=90)
    return root


# --- 1. loading --------------------------------------------------------------------


def bench_loading(data_dir: Path, cache: Path, repeats: int) -> dict[str, Any]:
    from kerasimgcls import load_image_folder

    first = []
    for _ in range(repeats):
        # A fresh cache folder each time: a real first load.
        fresh = Path(tempfile.mkdtemp(dir=cache))
        start = time.perf_counter()
        data = load_image_folder(data_dir, validation_split=0.1, seed=0, cache=fresh)
        first.append(time.perf_counter() - start)
    count = len(data.train) + len(data.validation or ())
    cached = []
    for _ in range(max(3, repeats)):
        start = time.perf_counter()
        again = load_image_folder(data_dir, validation_split=0.1, seed=0, cache=fresh)
        cached.append(time.perf_counter() - start)
    assert again.fingerprint == data.fingerprint
    first_s, cached_s = float(np.median(first)), float(np.median(cached))
    return {
        "images": count,
        "image_shape": list(data.input_shape),
        "first_load_s": [round(t, 3) for t in first],
        "first_load_images_per_s": round(count / first_s),
        "cached_load_s": [round(t, 3) for t in cached],
        "cached_load_images_per_s": round(count / cached_s),
        "cached_speedup": round(first_s / cached_s, 1),
        "cache_dir": str(fresh),
    }


# --- 2. pipeline vs training -------------------------------------------------------


def bench_pipeline(
    data_dir: Path, cache: Path, batch_size: int, train_steps: int
) -> dict[str, Any]:
    import keras

    from kerasimgcls import (
        Augmentation,
        build_cifar_cnn,
        epochs_dataset,
        load_image_folder,
    )

    data = load_image_folder(data_dir, validation_split=0.1, seed=0, cache=cache)
    results: dict[str, Any] = {
        "batch_size": batch_size,
        "train_images": len(data.train),
    }
    for label, augment in (
        ("pipeline_images_per_s", None),
        (
            "pipeline_augmented_images_per_s",
            Augmentation(flip=True, translate=4, cutout=8),
        ),
    ):
        dataset, _ = epochs_dataset(
            data.train,
            num_classes=data.num_classes,
            batch_size=batch_size,
            initial_epoch=0,
            epochs=1,
            seed=0,
            augment=augment,
        )
        start = time.perf_counter()
        seen = sum(int(x.shape[0]) for x, _ in dataset)
        results[label] = round(seen / (time.perf_counter() - start))
    if train_steps > 0:
        model = build_cifar_cnn(
            input_shape=data.input_shape, num_classes=data.num_classes
        )
        model.compile(
            optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"]
        )
        dataset, _ = epochs_dataset(
            data.train,
            num_classes=data.num_classes,
            batch_size=batch_size,
            initial_epoch=0,
            epochs=1,
            seed=0,
            augment=Augmentation(flip=True, translate=4),
        )
        warmup = 5
        model.fit(
            dataset.take(warmup), steps_per_epoch=warmup, verbose=0, shuffle=False
        )
        timed = dataset.skip(warmup).take(train_steps)
        start = time.perf_counter()
        model.fit(timed, steps_per_epoch=train_steps, verbose=0, shuffle=False)
        elapsed = time.perf_counter() - start
        results["train_steps_timed"] = train_steps
        results["training_images_per_s"] = round(train_steps * batch_size / elapsed)
        results["pipeline_over_training"] = round(
            results["pipeline_augmented_images_per_s"]
            / results["training_images_per_s"],
            1,
        )
        keras.backend.clear_session()
    return results


# --- 3. peak memory, one fresh process per way ------------------------------------

_CHILD = r"""
import json, os, resource, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
way, data_dir, cache, batch_size = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
import numpy as np
import tensorflow as tf
import keras
import kerasimgcls as kic

def rss_mb():
    # Peak resident memory of this process. Linux's ru_maxrss survives exec, so a
    # child would report its parent's peak: read VmHWM (reset by exec) instead.
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

base = rss_mb()
data = kic.load_image_folder(data_dir, validation_split=0.1, seed=0, cache=cache)
loaded = rss_mb()
if way == "library":
    train, steps = kic.epochs_dataset(data.train, num_classes=data.num_classes,
                                      batch_size=batch_size, initial_epoch=0, epochs=1)
    validation = kic.to_tf_dataset(data.validation, num_classes=data.num_classes,
                                   batch_size=batch_size)
else:
    # The tutorial: whole arrays as float32 in [0, 1] and one-hot labels, then
    # tf.data over them (what model.fit(x, y) builds internally).
    x_train = data.train.images.astype("float32") / 255.0
    x_val = data.validation.images.astype("float32") / 255.0
    y_train = keras.utils.to_categorical(data.train.labels, data.num_classes)
    y_val = keras.utils.to_categorical(data.validation.labels, data.num_classes)
    train = tf.data.Dataset.from_tensor_slices((x_train, y_train)).shuffle(
        len(x_train), seed=0).batch(batch_size).prefetch(tf.data.AUTOTUNE)
    validation = tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(batch_size)
for x, y in train.take(50):
    pass
for x, y in validation.take(5):
    pass
print(json.dumps({"way": way, "baseline_mb": base, "after_load_mb": loaded,
                  "peak_mb": rss_mb()}))
"""


def bench_memory(
    data_dir: Path, cache: Path, batch_size: int, rounds: int
) -> dict[str, Any]:
    runs: dict[str, list[dict[str, float]]] = {"library": [], "tutorial": []}
    for _ in range(rounds):
        for way in ("library", "tutorial"):  # alternate, so drift hits both
            output = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    _CHILD,
                    way,
                    str(data_dir),
                    str(cache),
                    str(batch_size),
                ],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            runs[way].append(json.loads(output.strip().splitlines()[-1]))
    summary: dict[str, Any] = {"rounds": rounds, "runs": runs}
    for way, measurements in runs.items():
        peak = float(np.median([m["peak_mb"] for m in measurements]))
        base = float(np.median([m["baseline_mb"] for m in measurements]))
        summary[f"{way}_peak_mb"] = round(peak, 1)
        summary[f"{way}_data_mb"] = round(peak - base, 1)
    summary["baseline_mb"] = round(
        float(np.median([m["baseline_mb"] for m in runs["library"]])), 1
    )
    summary["peak_ratio_library_over_tutorial"] = round(
        summary["library_peak_mb"] / summary["tutorial_peak_mb"], 3
    )
    # Memory above the process after importing TensorFlow: what the data costs.
    tutorial_data = summary["tutorial_data_mb"]
    summary["data_ratio_library_over_tutorial"] = (
        round(summary["library_data_mb"] / tutorial_data, 3)
        if tutorial_data > 1
        else None
    )
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--quick", action="store_true", help="generated images, small")
    parser.add_argument(
        "--images", type=int, default=2000, help="generated images for --quick"
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=None, help="first loads to time")
    parser.add_argument("--train-steps", type=int, default=None)
    parser.add_argument("--memory-rounds", type=int, default=None)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)

    from kerasimgcls._io import write_json_atomic

    with tempfile.TemporaryDirectory(prefix="bench_data_") as scratch_name:
        scratch = Path(scratch_name)
        if args.quick:
            data_dir = args.data_dir or make_images(scratch / "images", args.images)
            repeats, train_steps, rounds = 1, 3, 1
            name = "bench_data_quick.json"
        else:
            data_dir = args.data_dir or DEFAULT_DATA
            if not data_dir.is_dir():
                parser.error(f"no data at {data_dir}; pass --data-dir or --quick")
            repeats, train_steps, rounds = 3, 40, 2
            name = "bench_data.json"
        repeats = args.repeats or repeats
        train_steps = train_steps if args.train_steps is None else args.train_steps
        rounds = args.memory_rounds or rounds
        results: dict[str, Any] = {
            "benchmark": "bench_data",
            "command": "python benchmarks/bench_data.py "
            + " ".join(sys.argv[1:] if argv is None else argv),
            "data": "generated JPEGs"
            if args.quick and not args.data_dir
            else f"{data_dir.parent.name}/{data_dir.name}",
            "machine": machine_info(),
        }
        loading = bench_loading(data_dir, scratch, repeats)
        cache = Path(loading.pop("cache_dir"))
        results["loading"] = loading
        print(json.dumps({"loading": loading}, indent=2), flush=True)
        results["pipeline"] = bench_pipeline(
            data_dir, cache, args.batch_size, train_steps
        )
        print(json.dumps({"pipeline": results["pipeline"]}, indent=2), flush=True)
        results["memory"] = bench_memory(data_dir, cache, args.batch_size, rounds)
        memory = {k: v for k, v in results["memory"].items() if k != "runs"}
        print(json.dumps({"memory": memory}, indent=2), flush=True)
        results["machine"]["load_average_at_end"] = [
            round(x, 2) for x in os.getloadavg()
        ]
        results["peak_rss_of_this_process_mb"] = round(
            resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1
        )
    output = args.output or RESULTS / name
    write_json_atomic(output, results)
    print(f"results written to {output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
