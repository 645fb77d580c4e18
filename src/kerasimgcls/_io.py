"""File access: atomic writes, bounded reads of regular files, a clear "disk full".

A crash never leaves a half-written file at a final path; a read never blocks on a
FIFO or streams a device; a full disk is reported in one line with the device.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import stat
import sys
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
    "output_target",
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


# Paths that name a stream rather than a file (``/dev/stdout``, ``/proc/self/fd/1``):
# they are written in place, never replaced.
_STREAM_ROOTS = ("/dev/", "/proc/")


def output_target(
    path: str | os.PathLike[str], *, what: str = "output"
) -> tuple[Path, bool]:
    """Decide where, and how, an output file named ``path`` is written.

    The one rule for every file the library writes:

    - a new path or a regular file is replaced atomically (``atomic=True``);
    - a symbolic link to a regular file (or to a file yet to be made) is
      followed: the file it points to is replaced atomically and the link is
      kept;
    - a character device or a FIFO (``/dev/null``, a pipe), and anything under
      ``/dev`` or ``/proc`` (``/dev/stdout``), is written in place
      (``atomic=False``): it is never replaced by a regular file;
    - a directory, a block device or a socket is refused.

    Args:
        path: The output path the user gave.
        what: How the error messages name it (``"--json"``, ``"path"``).

    Returns:
        ``(target, atomic)``: the path to write, and whether to replace it
        atomically (``False``: write into it as it is).

    Raises:
        ValueError: If ``path`` is empty.
        IsADirectoryError: If ``path`` is a directory (or links to one).
        OSError: If ``path`` is a block device or a socket.

    Example:
        >>> output_target("/dev/null")
        (PosixPath('/dev/null'), False)
    """
    name = os.fspath(path)
    if not name:
        raise ValueError(f"{what} must name a file; received {name!r}")
    given = Path(name)
    try:
        info = os.stat(name)
    except FileNotFoundError:
        info = None
    except OSError as err:  # a link loop, a permission: say which file
        raise OSError(
            err.errno, f"cannot write {what} {name!r}: {err.strerror}"
        ) from err
    resolved = Path(os.path.realpath(name)) if given.is_symlink() else given
    if info is None:
        return resolved, True
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(
            errno.EISDIR, f"{what} {name!r} is a directory; name a file inside it"
        )
    if stat.S_ISCHR(info.st_mode) or stat.S_ISFIFO(info.st_mode):
        return given, False
    if any(hop.startswith(_STREAM_ROOTS) for hop in _link_chain(name)):
        return given, False  # /dev/stdout redirected to a file: append, not replace
    if not stat.S_ISREG(info.st_mode):
        raise OSError(
            errno.EINVAL,
            f"cannot write {what} {name!r}: it is {_kind(info.st_mode)}, not a file",
        )
    return resolved, True


def _link_chain(name: str) -> Iterator[str]:
    """``name`` and each path its symbolic links lead to, as absolute paths."""
    current = os.path.abspath(name)
    for _ in range(40):  # the kernel's own bound on links followed
        yield current
        if not os.path.islink(current):
            return
        target = os.readlink(current)
        folder = os.path.realpath(os.path.dirname(current))
        current = os.path.normpath(os.path.join(folder, target))


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike[str], *, what: str = "output"
) -> Iterator[Path]:
    """Yield a temporary path for ``path``; put its content at ``path`` on success.

    Where :func:`output_target` says so (a new file, a regular file, the file a
    link points to) the temporary file is beside the target and renamed over it,
    so a crash never leaves a half-written file. The temporary name keeps
    ``path``'s suffix, so writers that check it (Keras insists on ``.keras``)
    accept it. On error the temporary file is removed and ``path`` is left as it
    was. A device, a FIFO or ``/dev/stdout`` gets the bytes written into it
    instead, never replaced.

    Raises:
        ValueError: If ``path`` is empty.
        IsADirectoryError: If ``path`` is a directory.
        NoSpaceLeftError: If the device is full.
    """
    final, atomic = output_target(path, what=what)
    if not atomic:
        with _written_in_place(final) as tmp:
            yield tmp
        return
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{final.stem}.", suffix=f".tmp{final.suffix}", dir=final.parent
        )
    except OSError as err:
        raise _write_error(err, final, what) from err
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
        if err.filename == str(tmp) or err.filename == tmp:
            raise _write_error(err, final, what) from err
        raise
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _write_error(err: OSError, final: Path, what: str) -> OSError:
    """``err`` of a write to ``final`` (or its temporary file), naming ``final``."""
    if err.errno in _NO_SPACE:
        return no_space_error(err, final)
    reason = {errno.EROFS: "the file system is read-only"}.get(
        err.errno or 0, err.strerror or str(err)
    )
    return type(err)(err.errno, f"cannot write {what} {str(final)!r}: {reason}")


@contextlib.contextmanager
def _written_in_place(target: Path) -> Iterator[Path]:
    """Yield a private temporary file; append its bytes to ``target`` on success.

    Writers (NumPy, matplotlib, Keras) open the path they are given with
    truncation; a device or ``/dev/stdout`` must instead receive the bytes as a
    stream, after what was already written to it.
    """
    with tempfile.TemporaryDirectory(prefix="kerasimgcls-") as folder:
        tmp = Path(folder) / f"output{target.suffix}"
        yield tmp
        sys.stdout.flush()  # what was printed before comes first on /dev/stdout
        flags = os.O_WRONLY | os.O_APPEND | getattr(os, "O_NOCTTY", 0)
        with open(tmp, "rb") as source, open(os.open(target, flags), "wb") as sink:
            shutil.copyfileobj(source, sink)


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
def file_lock(
    path: str | os.PathLike[str],
    *,
    blocking: bool,
    note: str | None = None,
    remove: bool = False,
) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on the file ``path`` (created if missing).

    The kernel releases the lock when the process ends, however it ends, so a lock
    left by a killed process never blocks anyone. Yields ``True`` once the lock is
    held; with ``blocking=False`` yields ``False`` at once if another process holds
    it. Where ``fcntl`` does not exist (Windows) it yields ``True`` without locking.

    A lock that cannot be taken is an error, never "no lock": a symbolic link, a
    FIFO or a folder at ``path``, or a file that cannot be created, raises.

    Args:
        path: The lock file.
        blocking: Wait for the lock instead of yielding ``False``.
        note: Text written into the lock file once it is held (who holds it).
        remove: Delete the lock file on release, if it is still the file this
            call locked (checked by device and inode while the lock is held, so
            a waiting process that opened it sees it was removed and locks the
            new one).

    Raises:
        OSError: If the lock file cannot be opened or is not a regular file.
    """
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield True
        return
    name = os.fspath(path)
    flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
    flags |= getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    while True:
        fd = os.open(name, flags, 0o666)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise OSError(
                    errno.EINVAL, f"not a regular file ({_kind(os.fstat(fd).st_mode)})"
                )
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except BlockingIOError:
            os.close(fd)
            yield False
            return
        except BaseException:
            os.close(fd)
            raise
        if _is_file_at(fd, name):
            break
        os.close(fd)  # its holder removed it while we waited: lock the new one
    try:
        if note is not None:
            os.ftruncate(fd, 0)
            os.write(fd, note.encode("utf-8", "replace"))
        yield True
    finally:
        if remove and _is_file_at(fd, name):
            with contextlib.suppress(OSError):
                os.unlink(name)
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _is_file_at(fd: int, name: str) -> bool:
    """Whether the open file ``fd`` is still the one named ``name``."""
    try:
        here, there = os.fstat(fd), os.stat(name, follow_symlinks=False)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)
