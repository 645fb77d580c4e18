"""The run directory: what is in it, whether it may be used, and the run's context."""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import functools
import json
import os
import platform
import re
import shutil
import socket
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from kerasimgcls._io import (
    NoSpaceLeftError,
    file_lock,
    no_space_error,
    write_json_atomic,
)

__all__ = [
    "CHECKPOINT",
    "LOCK_FILE",
    "RUN_FILES",
    "RunDirectory",
    "describe_run",
    "environment",
    "locks_run_dir",
    "prepare_run_dir",
    "run_dir_lock",
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
# Held (flock) by the training that uses the directory; never deleted, so that two
# processes always lock the same file.
LOCK_FILE = ".kerasimgcls.lock"
# The temporary names kerasimgcls._io.atomic_path gives the run files: exactly
# ".<stem>.<random characters of mkstemp>.tmp<suffix>"; nothing else is deleted.
_PARTIAL_WRITE = re.compile(
    r"\.(run|history|curves|model|metrics|last)\.[a-z0-9_]+"
    r"\.tmp\.(json|csv|png|keras|npz)"
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
    """Delete the run files of ``directory``, after checking every one is ours.

    Nothing is deleted unless all of it may be: a ``checkpoints/`` or
    ``tensorboard/`` folder holding a file the library does not write, or a
    folder where a run file belongs, refuses the whole removal.
    """
    removals = [_removal(directory / name) for name in RUN_FILES]
    for target in removals:
        if target is None:
            continue
        if target.is_symlink() or not target.is_dir():
            target.unlink()  # a link only, never what it points to
        else:
            shutil.rmtree(target)
    _remove_partial_writes(directory)


# What a run writes inside its folders: exactly these names, nothing else.
_FOLDER_CONTENTS = {
    "checkpoints": re.compile(r"last\.npz|" + r"\.last\.[a-z0-9_]+\.tmp\.npz"),
    "tensorboard": re.compile(r"(.+/)?events\.out\.tfevents\.[^/]+|plugins/.+"),
}


def _removal(target: Path) -> Path | None:
    """``target`` if it is a run file that may be deleted, ``None`` if absent.

    Raises:
        FileExistsError: If it holds, or is, something the library did not write.
    """
    if not target.is_symlink() and not target.exists():
        return None
    if target.is_symlink():
        return target
    expected = _FOLDER_CONTENTS.get(target.name)
    if expected is None:
        if target.is_dir():
            raise FileExistsError(
                f"run_dir {str(target.parent)!r} holds a folder {target.name!r} where "
                "a run writes a file; overwrite replaces only a run's own files. "
                "Move it away, or choose a new run_dir"
            )
        return target
    if not target.is_dir():
        return target
    for entry in sorted(target.rglob("*")):
        relative = entry.relative_to(target).as_posix()
        if entry.is_dir() and not entry.is_symlink():
            continue
        if not expected.fullmatch(relative):
            raise FileExistsError(
                f"run_dir {str(target.parent)!r} holds {target.name}/{relative}, "
                "which kerasimgcls does not write; overwrite replaces only a run's "
                "own files. Move it away, or choose a new run_dir"
            )
    return target


def _holds_a_run(directory: Path) -> bool:
    """Whether ``run.json`` says ``directory`` holds a kerasimgcls run."""
    try:
        info = json.loads((directory / "run.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and str(info.get("format", "")).startswith(
        "kerasimgcls-run/"
    )


def _partial_writes(directory: Path) -> list[Path]:
    """Temporary files of atomic writes interrupted by a crash (see kerasimgcls._io).

    Only names :func:`atomic_path` gives the run files, in the run directory and in
    a real (not linked) ``checkpoints/`` folder.
    """
    found: list[Path] = []
    for folder in (directory, directory / "checkpoints"):
        if folder.is_dir() and not folder.is_symlink():
            found.extend(
                entry
                for entry in folder.iterdir()
                if _PARTIAL_WRITE.fullmatch(entry.name) and entry.is_file()
            )
    return found


def _remove_partial_writes(directory: Path) -> None:
    for partial in _partial_writes(directory):
        with contextlib.suppress(OSError):
            partial.unlink()


def _run_status(directory: Path) -> str | None:
    """The ``status`` of ``run.json``, ``None`` without one, ``"?"`` if unreadable."""
    path = directory / "run.json"
    if not path.exists():
        return None
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "?"
    status = info.get("status") if isinstance(info, dict) else None
    return status if isinstance(status, str) else "?"


def _restartable(directory: Path, entries: list[str]) -> str | None:
    """``None`` if ``directory`` holds only a run killed before its first epoch.

    Otherwise the reason it must not be started again without ``overwrite``.
    """
    if not entries:
        return None
    status = _run_status(directory)
    checkpoints = directory / "checkpoints"
    if checkpoints.is_symlink() or (
        checkpoints.is_dir()
        and any(p not in _partial_writes(directory) for p in checkpoints.iterdir())
    ):
        return "its checkpoints/ holds other files"
    if status == "finished" or "model.keras" in entries:
        return "it holds a finished run whose checkpoint was removed"
    if status in (None, "?"):
        return "it holds run files but no readable run.json"
    progress = [name for name in entries if name not in ("run.json", "checkpoints")]
    if progress:
        return f"it holds the results of completed epochs ({', '.join(progress)})"
    return None


def prepare_run_dir(run_dir: str | os.PathLike[str], *, overwrite: bool) -> bool:
    """Create or check ``run_dir``; return ``True`` if it holds a run to resume.

    Rules: a missing or empty directory starts a new run; one with
    ``checkpoints/last.npz`` is resumed; one holding only the files of a run that
    was stopped before its first epoch ended starts that run again; any other
    non-empty directory is refused so that nothing is mixed up or lost.
    ``overwrite=True`` deletes the files a run writes (and only those) and starts
    again. A finished run (``model.keras``, or ``run.json`` saying so) or one with
    completed epochs is never restarted without ``overwrite``, even if its
    checkpoint is gone. Temporary files of interrupted atomic writes (exactly the
    names :func:`kerasimgcls._io.atomic_path` gives run files) are removed, and
    only from a directory that holds a run.

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
    partial = {path.name for path in _partial_writes(directory)}
    entries = sorted(
        p.name for p in directory.iterdir() if p.name not in (LOCK_FILE, *partial)
    )
    if overwrite:
        if entries and not _holds_a_run(directory):
            shown = ", ".join(entries[:5]) + (" ..." if len(entries) > 5 else "")
            raise FileExistsError(
                f"run_dir {str(directory)!r} is not a kerasimgcls run (it has no "
                f"run.json of one) and is not empty ({shown}); overwrite replaces "
                "only a run's own files. Choose a new run_dir"
            )
        _remove_run_files(directory)
        return False
    if (directory / CHECKPOINT).is_file():
        _remove_partial_writes(directory)
        return True
    leftovers = [name for name in entries if name not in RUN_FILES]
    if leftovers:
        shown = ", ".join(leftovers[:5]) + (" ..." if len(leftovers) > 5 else "")
        raise FileExistsError(
            f"run_dir {str(directory)!r} is not empty ({shown}) and holds no "
            f"checkpoint to resume from; choose a new run_dir, or pass "
            f"overwrite=True (--overwrite) to replace the run in it"
        )
    # A run killed before its first epoch ended leaves only its own run.json:
    # start it again, so "run the same command again" works whenever it was killed.
    reason = _restartable(directory, entries)
    if reason is not None:
        raise FileExistsError(
            f"run_dir {str(directory)!r} holds no checkpoint to resume from and "
            f"{reason}; choose a new run_dir, or pass overwrite=True (--overwrite) "
            "to replace the run in it"
        )
    _remove_run_files(directory)
    return False


@contextlib.contextmanager
def run_dir_lock(run_dir: str | os.PathLike[str]) -> Iterator[None]:
    """Hold the exclusive lock of ``run_dir`` (``.kerasimgcls.lock``) while inside.

    A second training into the same directory fails at once instead of mixing its
    files with the first one's. The lock is an ``flock`` that the kernel releases
    when the process ends, so a lock left by a killed process is free again. The
    lock file is removed when the lock is released (only the file this process
    locked). If the directory cannot be created, or is a folder of other files
    (which :func:`prepare_run_dir` refuses untouched), nothing is locked; a lock
    that cannot be taken (a symbolic link or a folder named
    ``.kerasimgcls.lock``) stops the run.

    Raises:
        RuntimeError: If another process holds the lock (the message names it),
            or the lock file cannot be used.
        PermissionError: If the lock file cannot be created (a read-only
            directory).
    """
    directory = Path(run_dir)
    with contextlib.ExitStack() as stack:
        try:
            directory.mkdir(parents=True, exist_ok=True)
            may_lock = _may_hold_a_run(directory)
        except OSError:
            may_lock = False  # prepare_run_dir says why, in one line
        if may_lock:
            owner = f"process {os.getpid()} on {socket.gethostname()} since {utc_now()}"
            lock = file_lock(
                directory / LOCK_FILE, blocking=False, note=owner + "\n", remove=True
            )
            try:
                held = stack.enter_context(lock)
            except OSError as err:
                raise _lock_error(directory, err) from err
            if not held:
                raise RuntimeError(
                    f"run_dir {str(directory)!r} is in use by another training "
                    f"({_lock_owner(directory)}); wait for it to finish or choose "
                    "another run_dir"
                )
        yield


def _lock_error(directory: Path, err: OSError) -> OSError | RuntimeError:
    """The one-line error for a lock file that cannot be taken."""
    path = str(directory / LOCK_FILE)
    if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return PermissionError(
            err.errno,
            f"run_dir is not writable: {str(directory)!r} (cannot create the lock "
            f"{path!r}: {err.strerror})",
        )
    reason = {
        errno.ELOOP: "it is a symbolic link",
        errno.EISDIR: "it is a folder",
    }.get(err.errno or 0, err.strerror or str(err))
    return RuntimeError(
        f"cannot lock run_dir {str(directory)!r}: the lock file {path!r} cannot be "
        f"used ({reason}); remove it if no training is running, and run again"
    )


def _may_hold_a_run(directory: Path) -> bool:
    """Empty, or holding a run's own files: the folders a training may lock."""
    checkpoints = directory / "checkpoints"
    return (
        not any(directory.iterdir())
        or os.path.lexists(directory / LOCK_FILE)
        or (directory / "run.json").is_file()
        or (checkpoints.is_dir() and not checkpoints.is_symlink())
    )


def _lock_owner(directory: Path) -> str:
    try:
        text = (directory / LOCK_FILE).read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    return text.strip().splitlines()[0][:200] if text.strip() else "unknown process"


@contextlib.contextmanager
def recording_failures(run_dir: str | os.PathLike[str]) -> Iterator[None]:
    """Mark ``run.json`` interrupted if the training inside stops with an error.

    A run whose process raised (a full disk, Ctrl-C, any error) would otherwise
    keep ``"status": "running"``. Its last checkpoint is kept, so it resumes. A
    full disk (``ENOSPC``) becomes :class:`NoSpaceLeftError`, one line naming the
    device.
    """
    directory = Path(run_dir)
    try:
        yield
    except OSError as err:
        if err.errno not in _NO_SPACE:
            _mark_interrupted(directory, err)
            raise
        full = (
            err if isinstance(err, NoSpaceLeftError) else no_space_error(err, directory)
        )
        kept = _mark_interrupted(directory, full)
        raise NoSpaceLeftError(full.errno, f"{full.strerror}; {kept}") from err
    except BaseException as err:
        _mark_interrupted(directory, err)
        raise


_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def _mark_interrupted(directory: Path, err: BaseException) -> str:
    """Record ``err`` in a ``running`` run.json; say what survives for a resume."""
    path = directory / "run.json"
    with contextlib.suppress(OSError, ValueError):
        info = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(info, dict) and info.get("status") == "running":
            info["status"] = "interrupted"
            info["error"] = (str(err) or type(err).__name__).splitlines()[0]
            info["finished_at"] = utc_now()
            _write_small_json(path, info)
    if (directory / CHECKPOINT).is_file():
        return (
            f"run.json marks the run interrupted and {str(directory / CHECKPOINT)!r} "
            "is kept: run the same command again to resume"
        )
    return "run.json marks the run interrupted (no epoch had finished)"


def _write_small_json(path: Path, info: dict[str, Any]) -> None:
    # On a full disk the atomic write may fail; rewriting the file in place reuses
    # its blocks, which is better than leaving it at "running".
    try:
        write_json_atomic(path, info)
    except OSError:
        text = json.dumps(info, indent=2) + "\n"
        with open(path, "r+", encoding="utf-8") as handle:
            handle.write(text)
            handle.truncate()


_Method = TypeVar("_Method", bound=Callable[..., Any])


def locks_run_dir(
    run_dir_of: Callable[[Any], Path | None],
) -> Callable[[_Method], _Method]:
    """Decorate a method so that it runs holding :func:`run_dir_lock`.

    ``run_dir_of(self)`` gives the directory to lock, or ``None`` for none (no run
    directory, or a process of a cluster that does not write it). Failures inside
    are recorded in ``run.json`` (:func:`recording_failures`).
    """

    def decorate(method: _Method) -> _Method:
        @functools.wraps(method)
        def locked(self: Any, *args: Any, **kwargs: Any) -> Any:
            directory = run_dir_of(self)
            if directory is None:
                return method(self, *args, **kwargs)
            with run_dir_lock(directory), recording_failures(directory):
                return method(self, *args, **kwargs)

        return locked  # type: ignore[return-value]

    return decorate


def _cpuinfo() -> dict[str, str]:
    """The first value of each field of ``/proc/cpuinfo`` (empty where there is none)."""
    fields: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, colon, value = line.partition(":")
            if colon:
                fields.setdefault(key.strip(), value.strip())
    return fields


def load_average() -> list[float] | None:
    """The 1, 5 and 15-minute load averages (``None`` where the OS has none)."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except (AttributeError, OSError):
        return None


def environment() -> dict[str, Any]:
    """Return the versions and hardware a run executed on.

    The hardware names the CPU, whether it has AMX and AVX512-BF16 (what decides
    the speed of ``mixed_bfloat16``), and the load average when the run started, so
    a timing can be read against what the machine carried.
    """
    import keras
    import numpy as np
    import tensorflow as tf

    from kerasimgcls._version import __version__

    devices = [
        f"{device.device_type}:{device.name}"
        for device in tf.config.list_logical_devices()
    ]
    cpuinfo = _cpuinfo()
    flags = set(cpuinfo.get("flags", "").split())
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
            "cpu": cpuinfo.get("model name")
            or platform.processor()
            or platform.machine(),
            "cpu_count": os.cpu_count(),
            "amx": "amx_tile" in flags,
            "avx512_bf16": "avx512_bf16" in flags,
            "devices": devices,
            "load_average_at_start": load_average(),
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


class RunDirectory:
    """The run directory of one training: what is written into it, and when.

    It owns ``run.json`` (the run's description and its ``status``: ``running``,
    ``finished``, ``diverged``; ``interrupted`` comes from :func:`locks_run_dir`),
    the history files, ``metrics.json`` and the final outputs. Only the process
    that ``writes`` (the chief of a cluster) writes anything; without a path,
    nothing is written.

    Args:
        path: The directory, or ``None`` for a run that writes nothing.
        writes: Whether this process writes (``False`` on non-chief workers).
        overwrite: Replace the run files instead of refusing or resuming.
    """

    def __init__(self, path: Path | None, *, writes: bool, overwrite: bool) -> None:
        self.path = path
        self.writes = path is not None and writes
        self.overwrite = overwrite
        self.info: dict[str, Any] = {}

    @property
    def checkpoint(self) -> Path | None:
        """``checkpoints/last.npz``, or ``None`` without a directory."""
        return None if self.path is None else self.path / CHECKPOINT

    def prepare(self) -> bool:
        """Create or check the directory (:func:`prepare_run_dir`); ``True`` to resume."""
        if self.path is None:
            return False
        if self.writes:
            return prepare_run_dir(self.path, overwrite=self.overwrite)
        return (self.path / CHECKPOINT).is_file()

    def begin(self, info: dict[str, Any], *, resumed_at: int) -> None:
        """Write ``run.json`` with ``status: running``, keeping earlier resumes."""
        if not self.writes:
            return
        previous = self._previous()
        self.info = {
            "format": "kerasimgcls-run/1",
            "status": "running",
            **info,
            "started_at": previous.get("started_at", utc_now()),
            "resumes": list(previous.get("resumes", [])),
            "finished_at": None,
        }
        if resumed_at:
            self.info["resumes"].append({"epoch": resumed_at, "at": utc_now()})
        self._write()

    def set_status(self, status: str, *, error: str | None = None) -> None:
        """Record the run's ``status`` (and ``error``) in ``run.json``."""
        if not self.writes:
            return
        self.info["status"] = status
        if error is not None:
            self.info["error"] = error
        self.info["finished_at"] = None if status == "running" else utc_now()
        self._write()

    def write_history(self, history: Any) -> None:
        """Write ``history.csv`` and ``history.json``."""
        if self.writes:
            assert self.path is not None
            history.to_csv(self.path / "history.csv")
            history.to_json(self.path / "history.json")

    def finish(
        self,
        history: Any,
        final: dict[str, Any],
        *,
        save_model: Callable[[Path], Any],
        title: str,
    ) -> None:
        """Write the history, ``curves.png``, ``model.keras``; mark the run finished."""
        if not self.writes:
            return
        assert self.path is not None
        self.write_history(history)
        if len(history):
            history.plot(self.path / "curves.png", title=title)
        save_model(self.path / "model.keras")
        self.info["final"] = {**final, "load_average_at_end": load_average()}
        self.set_status("finished")

    def write_metrics(self, name: str, scores: dict[str, float], size: int) -> None:
        """Record the scores of split ``name`` in ``metrics.json``."""
        if self.writes:
            assert self.path is not None
            write_metrics(self.path, name, scores, size)

    def _previous(self) -> dict[str, Any]:
        assert self.path is not None
        path = self.path / "run.json"
        if not path.is_file() or self.overwrite:
            return {}
        try:
            previous = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if not isinstance(previous, dict):
            return {}
        # Carried into the new run.json: checked, as anything read back is.
        started, resumes = previous.get("started_at"), previous.get("resumes", [])
        if not (started is None or isinstance(started, str)) or not (
            isinstance(resumes, list)
            and all(
                isinstance(item, dict)
                and type(item.get("epoch")) is int
                and isinstance(item.get("at"), str)
                for item in resumes
            )
        ):
            raise ValueError(
                f"{str(path)!r} is damaged: 'started_at' must be a time and "
                "'resumes' a list of {epoch, at}; delete it (or pass overwrite=True) "
                "to start the run again"
            )
        return previous

    def _write(self) -> None:
        assert self.path is not None
        write_json_atomic(self.path / "run.json", self.info)


def describe_run(trainer: Any, data: Any, config: dict[str, Any]) -> dict[str, Any]:
    """What ``run.json`` says of a trainer's run besides its status and times."""
    model, metadata, strategy = trainer.model, trainer.metadata, trainer.strategy
    scaling = trainer.scaling
    data_section: dict[str, Any] = {
        "name": data.name,
        "fingerprint": data.fingerprint,
        "input_shape": list(data.input_shape),
        "num_classes": data.num_classes,
        "sizes": {name: len(split) for name, split in data.splits().items()},
        **dict(metadata.get("data", {})),
    }
    return {
        "config": config,
        "data": data_section,
        "class_names": list(data.class_names),
        "input_scaling": {"scaling": scaling.scaling, "reason": scaling.reason},
        "model": {
            "name": model.name,
            "parameters": int(model.count_params()),
            "trainable_parameters": _count(model.trainable_weights),
            "non_trainable_parameters": _count(model.non_trainable_weights),
        },
        **{key: value for key, value in metadata.items() if key != "data"},
        **environment(),
        "strategy": None
        if strategy is None
        else {
            "type": type(strategy).__name__,
            "replicas": int(strategy.num_replicas_in_sync),
        },
    }


def _count(weights: Any) -> int:
    total = 0
    for weight in weights:
        size = 1
        for dimension in weight.shape:
            size *= int(dimension)
        total += size
    return total
