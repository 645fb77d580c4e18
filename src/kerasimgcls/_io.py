"""File access: atomic writes, bounded reads of regular files, a clear "disk full".

A crash never leaves a half-written file at a final path; a read never blocks on a
FIFO or streams a device; a full disk is reported in one line with the device.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "NoSpaceLeftError",
    "atomic_path",
    "default_mode",
    "file_lock",
    "mount_point",
    "no_space_error",
    "open_regular_file",
    "read_regular_file",
    "write_bytes_atomic",
    "write_json_atomic",
    "write_text_atomic",
]


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def default_mode(*, directory: bool = False) -> int:
    """The permissions ``open`` (``0o666``) or ``mkdir`` (``0o777``) give, less the umask.

    Example:
        >>> oct(default_mode()) in ("0o644", "0o664", "0o666", "0o600")
        True
    """
    return (0o777 if directory else 0o666) & ~_umask()


def _fsync_dir(directory: Path) -> None:
    # Make the rename itself durable; not every platform can open a directory.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class NoSpaceLeftError(OSError, RuntimeError):
    """A write failed because the device is full (``ENOSPC``) or over quota.

    The message names the file and the device; it is an :class:`OSError` (with
    ``errno``) and a :class:`RuntimeError`, which the command line reports on one
    line.
    """


_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def mount_point(path: str | os.PathLike[str]) -> str:
    """Return the mount point of the file system holding ``path`` (or its parent)."""
    current = os.path.abspath(os.fspath(path))
    while not os.path.exists(current):
        current = os.path.dirname(current)
    while not os.path.ismount(current):
        current = os.path.dirname(current)
    return current


def _device_of(path: Path) -> str:
    point = mount_point(path)
    with (
        contextlib.suppress(OSError),
        open("/proc/mounts", encoding="utf-8", errors="replace") as mounts,
    ):
        for line in mounts:
            fields = line.split()
            if len(fields) > 1 and fields[1] == point:
                return f"{fields[0]} (mounted on {point})"
    return point


def no_space_error(err: OSError, path: Path) -> NoSpaceLeftError:
    """Return the one-line :class:`NoSpaceLeftError` for ``err`` writing ``path``."""
    return NoSpaceLeftError(
        err.errno,
        f"no space left on device {_device_of(path)} while writing {str(path)!r}; "
        "free some space and run again",
    )


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` on success.

    The temporary name keeps ``path``'s suffix, so writers that check it (Keras
    insists on ``.keras``) accept it. On error the temporary file is removed and
    ``path`` is left as it was.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(
        prefix=f".{final.stem}.", suffix=f".tmp{final.suffix}", dir=final.parent
    )
    os.close(fd)
    tmp = Path(tmp_name)
    # mkstemp creates the file owner-only (0600); give it the permissions a plain
    # open() would, so run files are as readable as any other file the user writes.
    os.chmod(tmp, default_mode())
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, final)
        _fsync_dir(final.parent)
    except OSError as err:
        if err.errno in _NO_SPACE and not isinstance(err, NoSpaceLeftError):
            raise no_space_error(err, final) from err
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def write_bytes_atomic(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike[str], payload: Any) -> Path:
    """Write ``payload`` as indented JSON to ``path`` atomically."""
    return write_text_atomic(
        path, json.dumps(payload, indent=2, sort_keys=False) + "\n"
    )


def open_regular_file(
    path: str | os.PathLike[str], *, max_bytes: int, what: str = "file"
) -> tuple[int, int]:
    """Open ``path`` for reading if it is a regular file of at most ``max_bytes``.

    The file is opened without blocking (a FIFO named ``image.png`` would otherwise
    wait forever for a writer) and checked with ``fstat`` on the open descriptor,
    so a symbolic link to ``/dev/zero`` or a device is refused, as is a file that
    is replaced between the check and the read.

    Returns:
        ``(descriptor, size)``; the caller closes the descriptor.

    Raises:
        OSError: If the file cannot be opened (missing, a symbolic link loop,
            permissions), is not a regular file, or is larger than ``max_bytes``;
            the message names it.
    """
    name = os.fspath(path)
    fd = os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            kind = _kind(info.st_mode)
            raise OSError(errno.EINVAL, f"not a regular file (it is {kind})", name)
        if info.st_size > max_bytes:
            raise OSError(
                errno.EFBIG,
                f"the {what} has {info.st_size:,} bytes, more than the "
                f"{max_bytes:,} allowed",
                name,
            )
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd, int(info.st_size)


def read_regular_file(
    path: str | os.PathLike[str], *, max_bytes: int, what: str = "file"
) -> bytes:
    """Return the bytes of a regular file of at most ``max_bytes`` (see above).

    At most the file's size plus one byte is read, so a file that grows past the
    bound while it is read is refused too.

    Raises:
        OSError: As :func:`open_regular_file`, or if the file grows past the bound.
    """
    fd, size = open_regular_file(path, max_bytes=max_bytes, what=what)
    with os.fdopen(fd, "rb") as handle:
        # Ask for the stated size (plus one byte to see growth), never for the
        # bound: read(n) allocates n bytes up front.
        data = handle.read(size + 1)
    if len(data) > max_bytes:
        raise OSError(
            errno.EFBIG,
            f"the {what} grew past the {max_bytes:,} bytes allowed while it was read",
            os.fspath(path),
        )
    return data


def _kind(mode: int) -> str:
    kinds = (
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISDIR, "a directory"),
    )
    return next((label for test, label in kinds if test(mode)), "not a file")


@contextlib.contextmanager
def file_lock(path: str | os.PathLike[str], *, blocking: bool) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on the file ``path`` (created if missing).

    The kernel releases the lock when the process ends, however it ends, so a lock
    left by a killed process never blocks anyone. Yields ``True`` once the lock is
    held; with ``blocking=False`` yields ``False`` at once if another process holds
    it. Where ``fcntl`` does not exist (Windows) it yields ``True`` without locking.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield True
        return
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(os.fspath(path), flags, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
