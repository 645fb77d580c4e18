"""The run directory: what is in it, whether it may be used, and the run's context."""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import platform
import shutil
import sys
import uuid
from pathlib import Path
from typing import Any

__all__ = [
    "CHECKPOINT",
    "RUN_FILES",
    "environment",
    "prepare_run_dir",
    "utc_now",
    "write_metrics",
]

CHECKPOINT = Path("checkpoints") / "last.npz"
# Everything a run writes; overwrite=True removes exactly these and nothing else.
RUN_FILES = (
    "run.json",
    "history.csv",
    "history.json",
    "curves.png",
    "model.keras",
    "metrics.json",
    "checkpoints",
    # written into the run directory by the commands that read a run
    "tensorboard",
    "report.json",
    "confusion_matrix.png",
    "top_losses.png",
    "report.html",
)


def utc_now() -> str:
    """Return the current UTC time in ISO 8601 with seconds."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def _check_writable(directory: Path) -> None:
    probe = directory / f".write-test-{uuid.uuid4().hex}"
    try:
        probe.write_bytes(b"")
    except OSError as err:
        raise PermissionError(
            f"run_dir is not writable: {str(directory)!r} ({err.strerror or err})"
        ) from err
    with contextlib.suppress(OSError):
        probe.unlink()


def _remove_run_files(directory: Path) -> None:
    for name in RUN_FILES:
        target = directory / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()


def _remove_partial_writes(directory: Path) -> None:
    # Temporary files of atomic writes interrupted by a crash (see kerasimgcls._io).
    for folder in (directory, directory / "checkpoints"):
        if folder.is_dir():
            for partial in folder.glob(".*.tmp*"):
                with contextlib.suppress(OSError):
                    partial.unlink()


def prepare_run_dir(run_dir: str | os.PathLike[str], *, overwrite: bool) -> bool:
    """Create or check ``run_dir``; return ``True`` if it holds a run to resume.

    Rules: a missing or empty directory starts a new run; one with
    ``checkpoints/last.npz`` is resumed; one holding only the files of a run that
    was stopped before its first epoch ended starts that run again; any other
    non-empty directory is refused so that nothing is mixed up or lost.
    ``overwrite=True`` deletes the files a run writes (and only those) and starts
    again. Temporary files of interrupted atomic writes are removed.

    Raises:
        NotADirectoryError: If ``run_dir`` is an existing file.
        PermissionError: If the directory cannot be created or written.
        FileExistsError: If it is not empty and holds no checkpoint.
    """
    directory = Path(run_dir)
    if directory.exists() and not directory.is_dir():
        raise NotADirectoryError(
            f"run_dir must be a directory; {str(directory)!r} is a file"
        )
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PermissionError(
            f"cannot create run_dir {str(directory)!r} ({err.strerror or err})"
        ) from err
    _check_writable(directory)
    if overwrite:
        _remove_run_files(directory)
        return False
    _remove_partial_writes(directory)
    if (directory / CHECKPOINT).is_file():
        return True
    # A run killed before its first epoch ended leaves only its own files: start
    # it again, so "run the same command again" works whenever it was killed.
    leftovers = sorted(p.name for p in directory.iterdir() if p.name not in RUN_FILES)
    if not leftovers:
        _remove_run_files(directory)
    if leftovers:
        shown = ", ".join(leftovers[:5]) + (" ..." if len(leftovers) > 5 else "")
        raise FileExistsError(
            f"run_dir {str(directory)!r} is not empty ({shown}) and holds no "
            f"checkpoint to resume from; choose a new run_dir, or pass "
            f"overwrite=True (--overwrite) to replace the run in it"
        )
    return False


def _cpu_name() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def environment() -> dict[str, Any]:
    """Return the versions and hardware a run executed on."""
    import keras
    import numpy as np
    import tensorflow as tf

    from kerasimgcls._version import __version__

    devices = [
        f"{device.device_type}:{device.name}"
        for device in tf.config.list_logical_devices()
    ]
    return {
        "versions": {
            "kerasimgcls": __version__,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "numpy": np.__version__,
            "python": platform.python_version(),
        },
        "hardware": {
            "platform": platform.platform(),
            "machine": platform.machine(),
            "cpu": _cpu_name(),
            "cpu_count": os.cpu_count(),
            "devices": devices,
        },
        "python_executable": Path(sys.executable).name,
    }


def write_metrics(
    run_dir: str | os.PathLike[str],
    name: str,
    scores: dict[str, float],
    num_images: int,
) -> Path:
    """Record the ``scores`` of split ``name`` in ``run_dir/metrics.json``.

    The file maps each evaluated split's name to its scores, so evaluating the
    validation and the test split keeps both; an entry is replaced, not appended.
    """
    import json

    from kerasimgcls._io import write_json_atomic

    path = Path(run_dir) / "metrics.json"
    metrics: dict[str, Any] = {}
    if path.is_file():
        with contextlib.suppress(OSError, ValueError):
            loaded = json.loads(path.read_text(encoding="utf-8"))
            metrics = loaded if isinstance(loaded, dict) else {}
    metrics[name] = {**scores, "num_images": int(num_images), "evaluated_at": utc_now()}
    return write_json_atomic(path, metrics)
