from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path

import pytest

from kerasimgcls import _io
from kerasimgcls._io import (
    NoSpaceLeftError,
    atomic_path,
    file_lock,
    open_regular_file,
    read_regular_file,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
)


def test_write_json_atomic_round_trips_and_leaves_no_temporary_files(
    tmp_path: Path,
) -> None:
    path = write_json_atomic(tmp_path / "sub" / "run.json", {"a": [1, 2]})
    assert json.loads(path.read_text()) == {"a": [1, 2]}
    assert sorted(p.name for p in path.parent.iterdir()) == ["run.json"]


def test_atomic_path_keeps_the_old_file_when_the_writer_fails(tmp_path: Path) -> None:
    target = write_text_atomic(tmp_path / "history.csv", "old\n")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half a fi")
        raise RuntimeError("crash while writing")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.csv"]


def test_atomic_files_get_the_usual_permissions(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        path = write_text_atomic(tmp_path / "metrics.json", "{}")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644


def test_atomic_path_keeps_the_suffix_and_hides_the_temporary_file(
    tmp_path: Path,
) -> None:
    with atomic_path(tmp_path / "model.keras") as tmp:
        # Keras refuses a path that does not end in .keras.
        assert tmp.name.startswith(".model.") and tmp.name.endswith(".tmp.keras")
        assert tmp.parent == tmp_path and tmp.exists()
        tmp.write_bytes(b"weights")
    assert (tmp_path / "model.keras").read_bytes() == b"weights"


def test_atomic_path_creates_missing_parents(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "c.txt"
    assert write_bytes_atomic(target, b"x") == target
    assert target.read_bytes() == b"x"


def test_write_json_atomic_is_indented_in_insertion_order(tmp_path: Path) -> None:
    path = write_json_atomic(tmp_path / "run.json", {"b": 1, "a": [1]})
    assert path.read_text() == '{\n  "b": 1,\n  "a": [\n    1\n  ]\n}\n'


def test_write_text_atomic_writes_utf8(tmp_path: Path) -> None:
    path = write_text_atomic(tmp_path / "names.txt", "chat\u00e9")
    assert path.read_bytes() == "chat\u00e9".encode()


def test_umask_is_read_without_changing_it() -> None:
    previous = os.umask(0o027)
    try:
        assert _io._umask() == 0o027
        assert _io._umask() == 0o027
    finally:
        os.umask(previous)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_a_full_disk_while_writing_is_one_named_error(
    tmp_path: Path, code: int
) -> None:
    target = write_text_atomic(tmp_path / "metrics.json", "old")
    with pytest.raises(NoSpaceLeftError) as info, atomic_path(target):
        raise OSError(code, "No space left on device")
    assert info.value.errno == code
    assert isinstance(info.value, RuntimeError)
    message = str(info.value)
    assert "no space left on device" in message
    assert f"while writing {str(target)!r}; free some space and run again" in message
    assert isinstance(info.value.__cause__, OSError)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json"]


def test_other_os_errors_and_a_ready_no_space_error_pass_unchanged(
    tmp_path: Path,
) -> None:
    error = OSError(errno.EACCES, "denied")
    with pytest.raises(OSError) as info, atomic_path(tmp_path / "f"):
        raise error
    assert info.value is error
    ready = NoSpaceLeftError(errno.ENOSPC, "already explained")
    with pytest.raises(NoSpaceLeftError) as info, atomic_path(tmp_path / "f"):
        raise ready
    assert info.value is ready
    assert list(tmp_path.iterdir()) == []


def test_a_writer_that_removes_its_temporary_file_fails_cleanly(
    tmp_path: Path,
) -> None:
    with pytest.raises(FileNotFoundError), atomic_path(tmp_path / "f.txt") as tmp:
        tmp.unlink()
    assert list(tmp_path.iterdir()) == []


def test_the_written_file_and_its_folder_are_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    write_text_atomic(tmp_path / "f.txt", "x")
    assert len(synced) == 2  # the file, then the folder (the rename)


def test_fsync_dir_ignores_a_folder_that_cannot_be_opened(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[object] = []
    synced: list[int] = []
    real_open, real_fsync = os.open, os.fsync
    monkeypatch.setattr(os, "open", lambda *a: opened.append(a[0]) or real_open(*a))
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    _io._fsync_dir(tmp_path / "missing")  # no error, and nothing to sync
    assert opened == [tmp_path / "missing"] and synced == []
    _io._fsync_dir(tmp_path)  # a folder that opens is synced, and closed again
    assert len(synced) == 1
    with pytest.raises(OSError):
        os.fstat(synced[0])


def test_mount_point_of_a_missing_path_is_its_nearest_existing_parents(
    tmp_path: Path,
) -> None:
    expected = _io.mount_point(tmp_path)
    assert os.path.ismount(expected)
    assert _io.mount_point(tmp_path / "no" / "such" / "file") == expected
    assert _io.mount_point("/") == "/"


def test_no_space_error_names_the_device(tmp_path: Path) -> None:
    error = _io.no_space_error(OSError(errno.ENOSPC, "full"), tmp_path / "x")
    assert error.errno == errno.ENOSPC
    assert error.strerror == (
        f"no space left on device {_io._device_of(tmp_path / 'x')} while writing "
        f"{str(tmp_path / 'x')!r}; free some space and run again"
    )


def test_device_of_reads_the_mount_table(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    point = _io.mount_point(tmp_path)
    table = tmp_path / "mounts"
    table.write_text(f"short\nother /elsewhere ext4 rw 0 0\n/dev/sdz9 {point} ext4\n")
    real_open = open

    def fake_open(file: object, *args: object, **kwargs: object) -> object:
        if file == "/proc/mounts":
            return real_open(table, *args, **kwargs)  # type: ignore[call-overload]
        return real_open(file, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr("builtins.open", fake_open)
    assert _io._device_of(tmp_path) == f"/dev/sdz9 (mounted on {point})"
    table.write_text("other /elsewhere ext4 rw 0 0\n")
    assert _io._device_of(tmp_path) == point


def test_read_regular_file_returns_the_bytes_within_the_bound(tmp_path: Path) -> None:
    path = tmp_path / "data.bin"
    path.write_bytes(b"12345")
    assert read_regular_file(path, max_bytes=5) == b"12345"
    fd, size = open_regular_file(path, max_bytes=5)
    try:
        assert size == 5 and os.get_blocking(fd)
    finally:
        os.close(fd)


def _assert_too_big(error: OSError, path: Path, message: str) -> None:
    assert error.errno == errno.EFBIG
    assert error.filename == str(path)
    assert error.strerror == message


def test_a_file_over_the_bound_is_refused_with_its_size(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * 1234)
    with pytest.raises(OSError) as info:
        read_regular_file(path, max_bytes=1233, what="image file")
    _assert_too_big(
        info.value, path, "the image file has 1,234 bytes, more than the 1,233 allowed"
    )


def test_a_file_that_grows_while_read_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "growing.bin"
    path.write_bytes(b"abc")
    real_open = _io.open_regular_file

    def open_then_grow(*args: object, **kwargs: object) -> tuple[int, int]:
        fd, size = real_open(*args, **kwargs)  # type: ignore[arg-type]
        with open(path, "ab") as handle:
            handle.write(b"defgh")
        return fd, size

    monkeypatch.setattr(_io, "open_regular_file", open_then_grow)
    with pytest.raises(OSError) as info:
        read_regular_file(path, max_bytes=3, what="archive")
    _assert_too_big(
        info.value, path, "the archive grew past the 3 bytes allowed while it was read"
    )
    # Within the bound, growth is read up to one byte past the stated size.
    path.write_bytes(b"abc")
    assert read_regular_file(path, max_bytes=100) == b"abcd"


def test_a_directory_or_fifo_is_not_a_regular_file(tmp_path: Path) -> None:
    with pytest.raises(OSError) as info:
        open_regular_file(tmp_path, max_bytes=10)
    assert info.value.errno == errno.EINVAL
    assert info.value.strerror == "not a regular file (it is a directory)"
    assert info.value.filename == str(tmp_path)
    fifo = tmp_path / "image.png"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match=r"not a regular file \(it is a FIFO\)"):
        read_regular_file(fifo, max_bytes=10)


def test_open_regular_file_closes_the_descriptor_it_refuses(tmp_path: Path) -> None:
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(5):
        with pytest.raises(OSError):
            open_regular_file(tmp_path, max_bytes=10)
    assert len(os.listdir("/proc/self/fd")) == before


@pytest.mark.parametrize(
    ("mode", "label"),
    [
        (stat.S_IFIFO, "a FIFO"),
        (stat.S_IFCHR, "a character device"),
        (stat.S_IFBLK, "a block device"),
        (stat.S_IFSOCK, "a socket"),
        (stat.S_IFDIR, "a directory"),
        (stat.S_IFREG, "not a file"),
    ],
)
def test_kind_names_every_file_type(mode: int, label: str) -> None:
    assert _io._kind(mode) == label


def test_file_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    lock = tmp_path / "run.lock"
    with file_lock(lock, blocking=False) as held:
        assert held is True
        assert stat.S_IMODE(lock.stat().st_mode) == 0o666 & ~_io._umask()
        # flock locks belong to the open file description: a second open conflicts.
        with file_lock(lock, blocking=False) as second:
            assert second is False
    with file_lock(lock, blocking=False) as again:
        assert again is True
    with file_lock(lock, blocking=True) as blocking:
        assert blocking is True


def test_file_lock_refuses_a_symbolic_link(tmp_path: Path) -> None:
    (tmp_path / "target").write_text("")
    (tmp_path / "run.lock").symlink_to(tmp_path / "target")
    with pytest.raises(OSError), file_lock(tmp_path / "run.lock", blocking=False):
        pass


def test_device_of_falls_back_to_the_mount_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    point = _io.mount_point(tmp_path)
    table = tmp_path / "mounts"
    # Two fields are enough; bytes that are not UTF-8 do not stop the search.
    table.write_bytes(b"\xff\xfe bad line\n/dev/sdq1 " + point.encode() + b"\n")
    real_open = open

    def fake_open(file: object, *args: object, **kwargs: object) -> object:
        if file == "/proc/mounts":
            if not table.exists():
                raise PermissionError(errno.EACCES, "denied", file)
            return real_open(table, *args, **kwargs)  # type: ignore[call-overload]
        return real_open(file, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr("builtins.open", fake_open)
    assert _io._device_of(tmp_path) == f"/dev/sdq1 (mounted on {point})"
    table.unlink()  # an unreadable mount table: the mount point alone
    assert _io._device_of(tmp_path) == point


def test_the_default_file_kind_in_messages(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(b"x" * 3)
    for function in (open_regular_file, read_regular_file):
        with pytest.raises(OSError) as info:
            function(path, max_bytes=2)
        assert info.value.strerror == "the file has 3 bytes, more than the 2 allowed"
