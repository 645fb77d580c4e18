"""The run directory: what is in it, whether it may be used, and the run's context."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kerasimgcls._io import (
    write_json_atomic,
)
from kerasimgcls.training._environment import load_average, utc_now
from kerasimgcls.training._metrics import write_metrics

__all__ = [
    "CHECKPOINT",
    "LOCK_FILE",
    "RUN_FILES",
    "RunDirectory",
    "prepare_run_dir",
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
