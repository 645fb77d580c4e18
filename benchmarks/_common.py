"""Helpers shared by the benchmark scripts: machine details, data, JSON output.

Not part of the library: the scripts in this folder import it as a sibling module.
"""

from __future__ import annotations

import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from kerasimgcls.data import CIFAR10_CLASSES

RESULTS_DIR = Path(__file__).resolve().parent / "results"

#: Cost of one training image of the reference CNN (forward + backward), FLOP.
REFERENCE_TRAIN_FLOP_PER_IMAGE = 205e6
#: Float32 FLOP/s of this kind of machine's two cores, measured with an FMA loop.
PEAK_FLOPS = 230e9


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def cpu_flags() -> list[str]:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                flags = line.split(":", 1)[1].split()
                wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "fma")
                return [flag for flag in flags if flag in wanted]
    except OSError:
        pass
    return []


def load_average() -> list[float]:
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return []


def machine_info() -> dict[str, Any]:
    """Describe the machine and the software versions, for every results file."""
    info: dict[str, Any] = {
        "cpu_model": cpu_model(),
        "cpu_flags": cpu_flags(),
        "logical_cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "load_average": load_average(),
        "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    try:
        import keras
        import tensorflow as tf

        info["tensorflow"] = tf.__version__
        info["keras"] = keras.__version__
    except ImportError:  # pragma: no cover - the library needs both
        pass
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=False,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
        info["git_commit"] = commit or None
    except OSError:
        info["git_commit"] = None
    return info


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def write_json(path: Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` atomically with the library's helper."""
    from kerasimgcls._io import write_json_atomic

    path.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(path, payload)
    return path


def synthetic_cifar(
    num_images: int, *, seed: int = 0, image_size: int = 32
) -> tuple[np.ndarray, np.ndarray]:
    """Random uint8 CIFAR-shaped images and labels: enough for throughput."""
    rng = np.random.default_rng(seed)
    images = rng.integers(
        0, 256, size=(num_images, image_size, image_size, 3), dtype=np.uint8
    )
    labels = rng.integers(0, 10, size=num_images).astype(np.int64)
    return images, labels


def load_cifar10_jpg(
    data_dir: str | os.PathLike[str], *, cache: str | os.PathLike[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Decode ``data_dir/<class>/*.jpg`` (CIFAR-10 class order) into uint8 arrays.

    Files are read in sorted order, so the arrays (and any seeded split of them)
    are the same on every machine. ``cache`` is an optional ``.npz`` path reused
    when present.
    """
    from PIL import Image

    if cache is not None and Path(cache).is_file():
        with np.load(cache) as saved:
            return saved["images"], saved["labels"]
    root = Path(data_dir)
    images: list[np.ndarray] = []
    labels: list[int] = []
    for label, name in enumerate(CIFAR10_CLASSES):
        folder = root / name
        if not folder.is_dir():
            raise FileNotFoundError(f"missing class folder {folder}")
        for file in sorted(folder.glob("*.jpg")):
            with Image.open(file) as image:
                images.append(np.asarray(image.convert("RGB"), dtype=np.uint8))
            labels.append(label)
    stacked = np.stack(images)
    label_array = np.asarray(labels, dtype=np.int64)
    if cache is not None:
        Path(cache).parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, images=stacked, labels=label_array)
    return stacked, label_array


def configure_threads(threads: int | None) -> None:
    """Pin TensorFlow's intra- and inter-op pools (call before any TF op runs)."""
    if not threads:
        return
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
