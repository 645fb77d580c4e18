"""A run that fails says so: ``run.json`` marks it interrupted, with the reason."""

from __future__ import annotations

import contextlib
import errno
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kerasimgcls._io import (
    NoSpaceLeftError,
    no_space_error,
    write_json_atomic,
)
from kerasimgcls.training._environment import utc_now
from kerasimgcls.training._run_dir import CHECKPOINT

__all__ = ["recording_failures"]


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
