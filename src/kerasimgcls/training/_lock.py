"""One training per run directory: an exclusive lock, and who holds it."""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from kerasimgcls._io import (
    file_lock,
)
from kerasimgcls.training._environment import utc_now
from kerasimgcls.training._failures import recording_failures
from kerasimgcls.training._run_dir import LOCK_FILE

__all__ = ["locks_run_dir", "run_dir_lock"]


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
