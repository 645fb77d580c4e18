"""The run directory without a training: refusals, overwrite, locks, run.json.

Plain files in ``tmp_path``; nothing here builds or trains a model, so these are the
tests ``benchmarks/mutation.py run_dir`` runs against each mutant.
"""

from __future__ import annotations

import datetime as dt
import errno
import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kerasimgcls._io import NoSpaceLeftError, file_lock, no_space_error
from kerasimgcls.training import _environment, _failures, _lock, _run_dir
from kerasimgcls.training._environment import utc_now
from kerasimgcls.training._failures import recording_failures
from kerasimgcls.training._lock import locks_run_dir, run_dir_lock
from kerasimgcls.training._metrics import write_metrics
from kerasimgcls.training._run_dir import (
    CHECKPOINT,
    LOCK_FILE,
    RUN_FILES,
    RunDirectory,
    prepare_run_dir,
)

_UTC_SECONDS = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00")
_CHOOSE = (
    "; choose a new run_dir, or pass overwrite=True (--overwrite) to replace the "
    "run in it"
)


def names(folder: Path) -> list[str]:
    return sorted(entry.name for entry in folder.iterdir())


def assert_recent_utc(text: object) -> None:
    assert isinstance(text, str) and _UTC_SECONDS.fullmatch(text), text
    age = dt.datetime.now(dt.UTC) - dt.datetime.fromisoformat(text)
    assert dt.timedelta(seconds=-2) < age < dt.timedelta(seconds=60)


def fill_run_files(folder: Path, *, inside: str = "inside") -> None:
    """Every name of RUN_FILES, the folders with ``inside`` in them."""
    for name in RUN_FILES:
        if name in ("checkpoints", "tensorboard"):
            (folder / name).mkdir()
            (folder / name / inside).write_text("x")
        else:
            (folder / name).write_text(name)


def fill_a_run(folder: Path) -> None:
    """The files of a genuine run: RUN_FILES, each folder holding what a run writes."""
    fill_run_files(folder, inside="events.out.tfevents.1.host")
    (folder / "checkpoints" / "events.out.tfevents.1.host").unlink()
    (folder / "run.json").write_text('{"format": "kerasimgcls-run/1"}')


def test_utc_now_is_utc_with_seconds() -> None:
    assert_recent_utc(utc_now())


# --- prepare_run_dir: refusals ---------------------------------------------------


def test_a_file_is_refused_by_name_and_left_alone(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    message = f"run_dir must be a directory; {str(target)!r} is a file"
    with pytest.raises(NotADirectoryError, match=f"^{re.escape(message)}$"):
        prepare_run_dir(target, overwrite=True)
    assert target.read_text() == "x"


def test_a_directory_that_cannot_be_created_is_refused_by_name(tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a parent directory should be")
    run = blocker / "run"
    message = f"cannot create run_dir {str(run)!r} (Not a directory)"
    with pytest.raises(PermissionError, match=f"^{re.escape(message)}$") as caught:
        prepare_run_dir(run, overwrite=False)
    assert isinstance(caught.value.__cause__, NotADirectoryError)


def test_a_creation_error_without_strerror_shows_the_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(self: Path, *args: object, **kwargs: object) -> None:
        raise OSError("no mkdir today")

    monkeypatch.setattr(Path, "mkdir", fail)
    run = tmp_path / "run"
    message = f"cannot create run_dir {str(run)!r} (no mkdir today)"
    with pytest.raises(PermissionError, match=f"^{re.escape(message)}$"):
        prepare_run_dir(run, overwrite=False)


def test_missing_parents_are_created_and_an_empty_directory_starts(
    tmp_path: Path,
) -> None:
    run = tmp_path / "a" / "b" / "run"
    assert prepare_run_dir(run, overwrite=False) is False
    assert run.is_dir() and names(run) == []
    assert prepare_run_dir(run, overwrite=False) is False  # exists: still fine
    assert names(run) == []


def read_only_writes(monkeypatch: pytest.MonkeyPatch, error: OSError) -> list[Path]:
    """Make ``Path.write_bytes`` fail as on a read-only mount; record its paths."""
    tried: list[Path] = []

    def read_only(self: Path, data: bytes) -> int:
        tried.append(self)
        raise error

    monkeypatch.setattr(Path, "write_bytes", read_only)
    return tried


def test_a_non_writable_directory_is_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tried = read_only_writes(monkeypatch, OSError(30, "Read-only file system"))
    message = f"run_dir is not writable: {str(tmp_path)!r} (Read-only file system)"
    with pytest.raises(PermissionError, match=f"^{re.escape(message)}$") as caught:
        prepare_run_dir(tmp_path, overwrite=True)
    assert isinstance(caught.value.__cause__, OSError)
    # The probe is a hidden file in the directory itself, and nothing was left.
    assert len(tried) == 1 and tried[0].parent == tmp_path
    assert re.fullmatch(r"\.write-test-[0-9a-f]{32}", tried[0].name)
    assert names(tmp_path) == []


def test_a_write_error_without_strerror_shows_the_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    read_only_writes(monkeypatch, OSError("quota"))
    message = f"run_dir is not writable: {str(tmp_path)!r} (quota)"
    with pytest.raises(PermissionError, match=f"^{re.escape(message)}$"):
        _run_dir._check_writable(tmp_path)


def test_the_write_probe_is_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    probes: list[Path] = []
    real_write_bytes = Path.write_bytes

    def spy(self: Path, data: bytes) -> int:
        probes.append(self)
        return real_write_bytes(self, data)

    monkeypatch.setattr(Path, "write_bytes", spy)
    _run_dir._check_writable(tmp_path)
    _run_dir._check_writable(tmp_path)
    assert len(probes) == 2 and probes[0] != probes[1]  # a fresh name each time
    assert names(tmp_path) == []


def test_a_probe_that_cannot_be_removed_is_no_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(self: Path, missing_ok: bool = False) -> None:
        raise OSError(errno.EBUSY, "busy")

    monkeypatch.setattr(Path, "unlink", fail)
    _run_dir._check_writable(tmp_path)  # no error: the folder is writable
    monkeypatch.undo()
    (probe,) = tmp_path.iterdir()  # the probe is left, and is the only file
    assert probe.name.startswith(".write-test-") and probe.read_bytes() == b""


def test_other_files_are_refused_and_named(tmp_path: Path) -> None:
    for name in ("f", "b", "e", "a", "c", "d"):
        (tmp_path / name).write_text(name)
    (tmp_path / "run.json").write_text('{"status": "running"}')
    message = (
        f"run_dir {str(tmp_path)!r} is not empty (a, b, c, d, e ...) and holds no "
        "checkpoint to resume from" + _CHOOSE
    )
    with pytest.raises(FileExistsError, match=f"^{re.escape(message)}$"):
        prepare_run_dir(tmp_path, overwrite=False)
    assert names(tmp_path) == ["a", "b", "c", "d", "e", "f", "run.json"]


def test_five_other_files_are_all_named(tmp_path: Path) -> None:
    for name in ("e", "d", "c", "b", "a"):
        (tmp_path / name).write_text(name)
    message = f"run_dir {str(tmp_path)!r} is not empty (a, b, c, d, e) and"
    with pytest.raises(FileExistsError, match=f"^{re.escape(message)} holds no"):
        prepare_run_dir(tmp_path, overwrite=False)


def test_one_other_file_is_named(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=r"is not empty \(notes.txt\) and"):
        prepare_run_dir(tmp_path, overwrite=False)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def refusal(directory: Path, reason: str) -> str:
    message = (
        f"run_dir {str(directory)!r} holds no checkpoint to resume from and "
        f"{reason}" + _CHOOSE
    )
    return f"^{re.escape(message)}$"


@pytest.mark.parametrize(
    ("files", "reason"),
    [
        (
            {"run.json": '{"status": "finished"}'},
            "it holds a finished run whose checkpoint was removed",
        ),
        (
            {"run.json": '{"status": "running"}', "model.keras": "m"},
            "it holds a finished run whose checkpoint was removed",
        ),
        ({"model.keras": "m"}, "it holds a finished run whose checkpoint was removed"),
        ({"history.csv": "epoch\n"}, "it holds run files but no readable run.json"),
        ({"run.json": "{not json"}, "it holds run files but no readable run.json"),
        (
            {"run.json": '{"status": "running"}', "history.csv": "", "curves.png": ""},
            "it holds the results of completed epochs (curves.png, history.csv)",
        ),
        (
            {"run.json": '{"status": "interrupted"}', "metrics.json": "{}"},
            "it holds the results of completed epochs (metrics.json)",
        ),
    ],
)
def test_runs_that_must_not_start_again_are_refused_untouched(
    tmp_path: Path, files: dict[str, str], reason: str
) -> None:
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    (tmp_path / ".run.abc_1.tmp.json").write_text("half")
    before = {p.name: p.read_text() for p in tmp_path.iterdir()}
    with pytest.raises(FileExistsError, match=refusal(tmp_path, reason)):
        prepare_run_dir(tmp_path, overwrite=False)
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == before


def test_checkpoints_with_other_files_are_refused_untouched(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text('{"status": "running"}')
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "mine.npz").write_text("x")
    (tmp_path / "checkpoints" / ".last.a.tmp.npz").write_text("half")
    reason = "its checkpoints/ holds other files"
    with pytest.raises(FileExistsError, match=refusal(tmp_path, reason)):
        prepare_run_dir(tmp_path, overwrite=False)
    assert names(tmp_path / "checkpoints") == [".last.a.tmp.npz", "mine.npz"]


def test_a_checkpoint_that_is_a_folder_is_not_resumed(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text('{"status": "running"}')
    (tmp_path / CHECKPOINT).mkdir(parents=True)
    reason = "its checkpoints/ holds other files"
    with pytest.raises(FileExistsError, match=refusal(tmp_path, reason)):
        prepare_run_dir(tmp_path, overwrite=False)
    assert (tmp_path / CHECKPOINT).is_dir()


def test_linked_checkpoints_are_refused_and_the_target_kept(tmp_path: Path) -> None:
    run, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    run.mkdir()
    elsewhere.mkdir()  # empty: the link alone is the reason
    (run / "run.json").write_text('{"status": "running"}')
    (run / "checkpoints").symlink_to(elsewhere)
    reason = "its checkpoints/ holds other files"
    with pytest.raises(FileExistsError, match=refusal(run, reason)):
        prepare_run_dir(run, overwrite=False)
    assert (run / "checkpoints").is_symlink() and elsewhere.is_dir()


# --- prepare_run_dir: what starts, resumes and is removed ------------------------


def test_a_run_killed_before_its_first_epoch_starts_again(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_text('{"status": "running"}')
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / ".last.abc123.tmp.npz").write_bytes(b"partial")
    (tmp_path / ".run.x9_y.tmp.json").write_text("half")
    (tmp_path / LOCK_FILE).write_text("")
    assert prepare_run_dir(tmp_path, overwrite=False) is False
    assert names(tmp_path) == [LOCK_FILE]  # the lock is never deleted


def test_only_a_lock_or_partial_writes_start_a_new_run(tmp_path: Path) -> None:
    (tmp_path / LOCK_FILE).write_text("process 1")
    assert prepare_run_dir(tmp_path, overwrite=False) is False
    assert names(tmp_path) == [LOCK_FILE]
    (tmp_path / ".history.k.tmp.csv").write_text("half")
    assert prepare_run_dir(tmp_path, overwrite=False) is False
    assert names(tmp_path) == [LOCK_FILE]


def test_a_checkpoint_is_resumed_keeping_every_file(tmp_path: Path) -> None:
    fill_run_files(tmp_path)
    (tmp_path / CHECKPOINT).write_bytes(b"npz")
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / LOCK_FILE).write_text("")
    (tmp_path / ".metrics.q.tmp.json").write_text("half")
    (tmp_path / "checkpoints" / ".last.q.tmp.npz").write_text("half")
    before = names(tmp_path)
    assert prepare_run_dir(tmp_path, overwrite=False) is True
    # Only the partial writes are gone.
    assert names(tmp_path) == [n for n in before if n != ".metrics.q.tmp.json"]
    assert names(tmp_path / "checkpoints") == ["inside", "last.npz"]
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_overwrite_removes_only_the_run_files(tmp_path: Path) -> None:
    fill_a_run(tmp_path)
    (tmp_path / CHECKPOINT).write_bytes(b"npz")
    (tmp_path / "notes.txt").write_text("mine")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.npy").write_text("x")
    (tmp_path / LOCK_FILE).write_text("")
    (tmp_path / ".model.z.tmp.keras").write_text("half")
    (tmp_path / ".notes.z.tmp.txt").write_text("not a run file's temporary name")
    assert prepare_run_dir(tmp_path, overwrite=True) is False
    assert names(tmp_path) == [
        ".kerasimgcls.lock",
        ".notes.z.tmp.txt",
        "data",
        "notes.txt",
    ]
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert (tmp_path / "data" / "x.npy").read_text() == "x"


def test_overwrite_removes_links_but_not_what_they_point_to(tmp_path: Path) -> None:
    run, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    run.mkdir()
    elsewhere.mkdir()
    (elsewhere / "last.npz").write_text("someone else's")
    (elsewhere / "model").write_text("someone else's model")
    (run / "checkpoints").symlink_to(elsewhere)
    (run / "model.keras").symlink_to(elsewhere / "model")
    (run / "history.csv").symlink_to(tmp_path / "missing")  # a dangling link
    (run / "run.json").write_text('{"format": "kerasimgcls-run/1"}')
    assert prepare_run_dir(run, overwrite=True) is False
    assert names(run) == []
    assert names(elsewhere) == ["last.npz", "model"]


def test_a_run_file_that_is_a_folder_refuses_the_removal(tmp_path: Path) -> None:
    (tmp_path / "history.csv").write_text("x")
    (tmp_path / "report.json").mkdir()
    (tmp_path / "report.json" / "x").write_text("x")
    with pytest.raises(FileExistsError, match=r"holds a folder 'report\.json'"):
        _run_dir._remove_run_files(tmp_path)
    assert names(tmp_path) == ["history.csv", "report.json"]


# --- partial writes ----------------------------------------------------------------


def test_partial_writes_are_exactly_the_atomic_names_of_run_files(
    tmp_path: Path,
) -> None:
    ours = [
        ".run.abc_12.tmp.json",
        ".history.x.tmp.csv",
        ".history.y.tmp.json",
        ".curves.z.tmp.png",
        ".model.q.tmp.keras",
        ".metrics.w.tmp.json",
    ]
    others = [
        ".notes.abc.tmp.txt",
        ".run.abc.tmp.json.bak",
        "x.run.abc.tmp.json",
        ".run.ABC.tmp.json",
        ".run..tmp.json",
        "run.json",
    ]
    for name in ours + others:
        (tmp_path / name).write_text("x")
    (tmp_path / ".last.dir.tmp.npz").mkdir()  # the right name, but a folder
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / ".last.k_2.tmp.npz").write_text("x")
    (tmp_path / "checkpoints" / "last.npz").write_text("x")
    found = _run_dir._partial_writes(tmp_path)
    expected = [tmp_path / n for n in ours] + [
        tmp_path / "checkpoints/.last.k_2.tmp.npz"
    ]
    assert sorted(found) == sorted(expected)
    _run_dir._remove_partial_writes(tmp_path)
    assert names(tmp_path) == sorted([*others, ".last.dir.tmp.npz", "checkpoints"])
    assert names(tmp_path / "checkpoints") == ["last.npz"]


def test_partial_writes_are_not_looked_for_through_a_link(tmp_path: Path) -> None:
    run, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    run.mkdir()
    elsewhere.mkdir()
    (elsewhere / ".last.a.tmp.npz").write_text("x")
    (run / "checkpoints").symlink_to(elsewhere)
    assert _run_dir._partial_writes(run) == []
    assert _run_dir._partial_writes(tmp_path / "missing") == []
    _run_dir._remove_run_files(run)
    assert names(elsewhere) == [".last.a.tmp.npz"]


def test_a_partial_write_that_cannot_be_removed_is_no_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".run.a.tmp.json").write_text("x")

    def fail(self: Path, missing_ok: bool = False) -> None:
        raise OSError(errno.EBUSY, "busy")

    monkeypatch.setattr(Path, "unlink", fail)
    _run_dir._remove_partial_writes(tmp_path)
    assert names(tmp_path) == [".run.a.tmp.json"]


# --- run.json's status -------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ('{"status": "running"}', "running"),
        ('{"status": "finished", "x": 1}', "finished"),
        ('{"status": 3}', "?"),
        ('{"state": "running"}', "?"),
        ('["running"]', "?"),
        ("{broken", "?"),
        ('"running"', "?"),
    ],
)
def test_run_status(tmp_path: Path, text: str, status: str) -> None:
    (tmp_path / "run.json").write_text(text, encoding="utf-8")
    assert _run_dir._run_status(tmp_path) == status


def test_run_status_without_or_with_an_unreadable_run_json(tmp_path: Path) -> None:
    assert _run_dir._run_status(tmp_path) is None
    (tmp_path / "run.json").mkdir()
    assert _run_dir._run_status(tmp_path) == "?"


def test_restartable_reasons(tmp_path: Path) -> None:
    restartable = _run_dir._restartable
    (tmp_path / "model.keras").write_text("m")
    assert restartable(tmp_path, []) is None  # nothing listed: nothing to keep
    (tmp_path / "model.keras").unlink()
    (tmp_path / "run.json").write_text('{"status": "running"}')
    assert restartable(tmp_path, ["run.json"]) is None
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / ".last.a.tmp.npz").write_text("half")
    assert restartable(tmp_path, ["checkpoints", "run.json"]) is None
    assert restartable(tmp_path, ["checkpoints", "history.json", "run.json"]) == (
        "it holds the results of completed epochs (history.json)"
    )


# --- the lock ------------------------------------------------------------------------


def lock_text(directory: Path) -> str:
    return (directory / LOCK_FILE).read_text(encoding="utf-8")


def test_the_lock_is_exclusive_names_its_owner_and_goes_when_alone(
    tmp_path: Path,
) -> None:
    run = tmp_path / "a" / "run"
    with run_dir_lock(run):
        owner = lock_text(run)
        match = re.fullmatch(r"process (\d+) on (.+) since (\S+)\n", owner)
        assert match, owner
        assert int(match[1]) == os.getpid()
        assert match[2] == socket.gethostname()
        assert_recent_utc(match[3])
        message = (
            f"run_dir {str(run)!r} is in use by another training ({owner.strip()}); "
            "wait for it to finish or choose another run_dir"
        )
        # flock locks belong to the open file description: a second one conflicts.
        with (
            pytest.raises(RuntimeError, match=f"^{re.escape(message)}$"),
            run_dir_lock(run),
        ):
            pass  # pragma: no cover
        assert lock_text(run) == owner  # the refused one did not overwrite it
    # Nothing else was written: the folder is left as it was (empty).
    assert names(run) == []
    with run_dir_lock(run):  # and it is free again
        assert names(run) == [LOCK_FILE]


def test_the_lock_is_removed_when_released(tmp_path: Path) -> None:
    with run_dir_lock(tmp_path):
        (tmp_path / "run.json").write_text("{}")
        assert names(tmp_path) == [LOCK_FILE, "run.json"]
    assert names(tmp_path) == ["run.json"]
    (tmp_path / LOCK_FILE).write_text("")
    with run_dir_lock(tmp_path):  # an existing lock file is taken again
        assert lock_text(tmp_path).startswith(f"process {os.getpid()} on ")


def test_a_stale_lock_is_free_and_rewritten(tmp_path: Path) -> None:
    (tmp_path / LOCK_FILE).write_text("process 1 on gone since 2020-01-01\n")
    with run_dir_lock(tmp_path):
        assert lock_text(tmp_path).startswith(f"process {os.getpid()} on ")
    assert names(tmp_path) == []


def test_a_lock_held_by_another_process_is_named_and_freed_when_it_dies(
    tmp_path: Path,
) -> None:
    holder = (
        "import fcntl, os, sys, time\n"
        "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "os.write(fd, b'process elsewhere\\nsecond line\\n')\n"
        "print('held', flush=True)\n"
        "time.sleep(60)\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", holder, str(tmp_path / LOCK_FILE)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stdout.readline() == "held\n"
        with (
            pytest.raises(RuntimeError, match=r"training \(process elsewhere\); wait"),
            run_dir_lock(tmp_path),
        ):
            pass  # pragma: no cover
    finally:
        process.kill()
        process.wait()
    with run_dir_lock(tmp_path):  # killed: the kernel released its lock
        pass
    assert names(tmp_path) == []


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("", "unknown process"),
        ("  \n\n", "unknown process"),
        ("\n  process 7 on h\nmore\n", "process 7 on h"),
        ("p" * 300 + "\n", "p" * 200),
    ],
)
def test_the_owner_shown_is_the_lock_files_first_line(
    tmp_path: Path, text: str, shown: str
) -> None:
    (tmp_path / LOCK_FILE).write_text(text, encoding="utf-8")
    with file_lock(tmp_path / LOCK_FILE, blocking=False) as held:
        assert held is True
        with (
            pytest.raises(RuntimeError, match=rf"training \({shown}\); wait"),
            run_dir_lock(tmp_path),
        ):
            pass  # pragma: no cover
    assert _lock._lock_owner(tmp_path) == shown


def test_the_owner_of_a_missing_or_undecodable_lock(tmp_path: Path) -> None:
    assert _lock._lock_owner(tmp_path) == "unknown process"  # no lock file
    (tmp_path / LOCK_FILE).write_bytes(b"\xffprocess 9\n")
    assert _lock._lock_owner(tmp_path) == "\ufffdprocess 9"


def test_a_folder_of_other_files_is_not_locked(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with run_dir_lock(tmp_path), run_dir_lock(tmp_path):
        assert names(tmp_path) == ["notes.txt"]
    assert names(tmp_path) == ["notes.txt"]


def test_a_directory_that_cannot_be_created_is_not_locked(tmp_path: Path) -> None:
    (tmp_path / "blocker").write_text("x")
    with run_dir_lock(tmp_path / "blocker" / "run"):
        pass
    assert names(tmp_path) == ["blocker"]


@pytest.mark.parametrize(
    ("make", "may"),
    [
        ({}, True),
        ({LOCK_FILE: "", "notes.txt": ""}, True),
        ({"run.json": "", "notes.txt": ""}, True),
        ({"checkpoints/": "", "notes.txt": ""}, True),
        ({"notes.txt": ""}, False),
        ({"run.json/": ""}, False),
        ({"checkpoints": ""}, False),  # a file named checkpoints
    ],
)
def test_the_folders_a_training_may_lock(
    tmp_path: Path, make: dict[str, str], may: bool
) -> None:
    for name in make:
        if name.endswith("/"):
            (tmp_path / name).mkdir()
        else:
            (tmp_path / name).write_text("")
    assert _lock._may_hold_a_run(tmp_path) is may


def test_linked_checkpoints_are_no_run_to_lock(tmp_path: Path) -> None:
    run, elsewhere = tmp_path / "run", tmp_path / "elsewhere"
    run.mkdir()
    elsewhere.mkdir()
    (run / "checkpoints").symlink_to(elsewhere)
    assert _lock._may_hold_a_run(run) is False


# --- recording failures in run.json ---------------------------------------------------


def write_run(directory: Path, status: str = "running") -> dict[str, Any]:
    info = {"format": "kerasimgcls-run/1", "status": status, "config": {"seed": 3}}
    (directory / "run.json").write_text(json.dumps(info), encoding="utf-8")
    return info


def read_run(directory: Path) -> dict[str, Any]:
    return json.loads((directory / "run.json").read_text(encoding="utf-8"))


def test_an_error_marks_a_running_run_interrupted(tmp_path: Path) -> None:
    info = write_run(tmp_path)
    error = ValueError("first line\nsecond line")
    with pytest.raises(ValueError) as caught, recording_failures(tmp_path):
        raise error
    assert caught.value is error
    run = read_run(tmp_path)
    assert_recent_utc(run.pop("finished_at"))
    assert run == {**info, "status": "interrupted", "error": "first line"}
    text = (tmp_path / "run.json").read_text(encoding="utf-8")
    assert text == json.dumps(read_run(tmp_path), indent=2) + "\n"
    assert names(tmp_path) == ["run.json"]


def test_an_error_without_a_message_is_named_by_its_type(tmp_path: Path) -> None:
    write_run(tmp_path)
    with pytest.raises(KeyboardInterrupt), recording_failures(tmp_path):
        raise KeyboardInterrupt
    assert read_run(tmp_path)["error"] == "KeyboardInterrupt"


def test_an_os_error_marks_the_run_and_is_raised_unchanged(tmp_path: Path) -> None:
    write_run(tmp_path)
    error = PermissionError(errno.EACCES, "Permission denied")
    with pytest.raises(PermissionError) as caught, recording_failures(tmp_path):
        raise error
    assert caught.value is error
    assert read_run(tmp_path)["status"] == "interrupted"
    assert read_run(tmp_path)["error"] == "[Errno 13] Permission denied"


def test_without_an_error_nothing_changes(tmp_path: Path) -> None:
    write_run(tmp_path)
    before = (tmp_path / "run.json").read_text()
    with recording_failures(tmp_path):
        pass
    assert (tmp_path / "run.json").read_text() == before


@pytest.mark.parametrize("text", ['{"status": "finished"}', "{broken", '["running"]'])
def test_only_a_running_run_json_is_changed(tmp_path: Path, text: str) -> None:
    (tmp_path / "run.json").write_text(text)
    with pytest.raises(RuntimeError), recording_failures(tmp_path):
        raise RuntimeError("boom")
    assert (tmp_path / "run.json").read_text() == text


def test_no_run_json_is_created(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), recording_failures(tmp_path):
        raise RuntimeError("boom")
    assert names(tmp_path) == []


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EDQUOT])
def test_a_full_disk_is_one_line_saying_nothing_is_kept(
    tmp_path: Path, code: int
) -> None:
    write_run(tmp_path)
    error = OSError(code, os.strerror(code))
    with pytest.raises(NoSpaceLeftError) as caught, recording_failures(tmp_path):
        raise error
    full = no_space_error(error, tmp_path)
    assert caught.value.errno == code
    assert caught.value.strerror == (
        f"{full.strerror}; run.json marks the run interrupted (no epoch had finished)"
    )
    assert caught.value.__cause__ is error
    run = read_run(tmp_path)
    assert run["status"] == "interrupted"
    assert run["error"] == f"[Errno {code}] {full.strerror}"


def test_a_full_disk_names_the_checkpoint_kept(tmp_path: Path) -> None:
    write_run(tmp_path)
    (tmp_path / CHECKPOINT).parent.mkdir()
    (tmp_path / CHECKPOINT).write_bytes(b"npz")
    error = NoSpaceLeftError(errno.ENOSPC, "no space left on device /dev/x")
    with pytest.raises(NoSpaceLeftError) as caught, recording_failures(tmp_path):
        raise error
    assert caught.value.strerror == (
        "no space left on device /dev/x; run.json marks the run interrupted and "
        f"{str(tmp_path / CHECKPOINT)!r} is kept: run the same command again to resume"
    )
    assert caught.value.__cause__ is error
    assert read_run(tmp_path)["error"] == "[Errno 28] no space left on device /dev/x"


def test_run_json_is_rewritten_in_place_when_the_atomic_write_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(path: object, payload: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(_failures, "write_json_atomic", full)
    path = tmp_path / "run.json"
    # Written wider than the rewrite: the rest of the old text must go.
    path.write_text(json.dumps({"status": "running", "pad": "x" * 500}, indent=8))
    info = {"status": "interrupted", "pad": "x" * 500}
    _failures._write_small_json(path, info)
    assert path.read_text(encoding="utf-8") == json.dumps(info, indent=2) + "\n"


def test_small_json_is_written_atomically(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    path.write_text("old")
    info = {"status": "ü", "n": [1, 2]}
    _failures._write_small_json(path, info)
    assert path.read_text(encoding="utf-8") == json.dumps(info, indent=2) + "\n"
    assert names(tmp_path) == ["run.json"]


class Worker:
    """A stand-in for the Trainer: a method that runs holding the run directory."""

    def __init__(self, run_dir: Path | None) -> None:
        self.run_dir = run_dir

    @locks_run_dir(lambda self: self.run_dir)
    def work(self, value: int, *, fail: bool = False) -> tuple[int, bool]:
        """Work in the run directory."""
        if fail:
            raise RuntimeError("stopped\nmore")
        assert self.run_dir is not None
        with (
            pytest.raises(RuntimeError, match="in use by another training"),
            run_dir_lock(self.run_dir),
        ):
            pass  # pragma: no cover
        return value, (self.run_dir / LOCK_FILE).is_file()


def test_locks_run_dir_holds_the_lock_and_records_failures(tmp_path: Path) -> None:
    assert Worker.work.__name__ == "work"
    assert Worker.work.__doc__ == "Work in the run directory."
    assert Worker(tmp_path / "run").work(4) == (4, True)
    assert names(tmp_path / "run") == []
    write_run(tmp_path)
    with pytest.raises(RuntimeError, match="stopped"):
        Worker(tmp_path).work(1, fail=True)
    assert read_run(tmp_path)["error"] == "stopped"


def test_locks_run_dir_without_a_directory_only_calls(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match=r"^stopped\nmore$"):
        Worker(None).work(1, fail=True)
    assert names(tmp_path) == []


# --- metrics.json ---------------------------------------------------------------------


def test_metrics_of_each_split_are_kept_and_replaced(tmp_path: Path) -> None:
    path = write_metrics(tmp_path, "validation", {"accuracy": 0.5}, np.int64(10))
    assert path == tmp_path / "metrics.json"
    write_metrics(tmp_path, "test", {"accuracy": 0.25, "loss": 2.0}, 4)
    write_metrics(tmp_path, "validation", {"accuracy": 0.75}, 12.0)  # type: ignore[arg-type]
    metrics = json.loads(path.read_text(encoding="utf-8"))
    assert list(metrics) == ["validation", "test"]
    for entry in metrics.values():
        assert_recent_utc(entry.pop("evaluated_at"))
    assert metrics == {
        "validation": {"accuracy": 0.75, "num_images": 12},
        "test": {"accuracy": 0.25, "loss": 2.0, "num_images": 4},
    }
    assert isinstance(metrics["validation"]["num_images"], int)
    assert names(tmp_path) == ["metrics.json"]


@pytest.mark.parametrize("text", ["{broken", '["validation"]', "3"])
def test_unreadable_metrics_are_replaced(tmp_path: Path, text: str) -> None:
    (tmp_path / "metrics.json").write_text(text)
    write_metrics(tmp_path, "test", {"accuracy": 1.0}, 2)
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert list(metrics) == ["test"]
    assert metrics["test"]["num_images"] == 2


# --- RunDirectory ---------------------------------------------------------------------


class History:
    """The parts of a training history that RunDirectory uses."""

    def __init__(self, rows: int) -> None:
        self.rows = rows
        self.plotted: list[tuple[Path, str]] = []

    def __len__(self) -> int:
        return self.rows

    def to_csv(self, path: Path) -> None:
        path.write_text("csv")

    def to_json(self, path: Path) -> None:
        path.write_text("json")

    def plot(self, path: Path, *, title: str) -> None:
        self.plotted.append((path, title))
        path.write_text("png")


def test_run_directory_without_a_path_writes_nothing(tmp_path: Path) -> None:
    run = RunDirectory(None, writes=True, overwrite=False)
    assert run.path is None and run.writes is False and run.overwrite is False
    assert run.checkpoint is None
    assert run.prepare() is False
    run.begin({"config": {}}, resumed_at=2)
    run.set_status("finished")
    run.finish(History(1), {}, save_model=pytest.fail, title="t")
    run.write_metrics("test", {"accuracy": 1.0}, 1)
    assert run.info == {}


def test_a_process_that_does_not_write_writes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    run = RunDirectory(folder, writes=False, overwrite=True)
    assert run.writes is False and run.overwrite is True
    assert run.checkpoint == folder / "checkpoints" / "last.npz"
    assert run.prepare() is False
    assert not folder.exists()  # not even created
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")  # not refused: not its to check
    assert run.prepare() is False
    (folder / CHECKPOINT).parent.mkdir()
    (folder / CHECKPOINT).write_bytes(b"npz")
    assert run.prepare() is True
    history = History(2)
    run.begin({"config": {}}, resumed_at=1)
    run.set_status("diverged", error="nan")
    run.write_history(history)
    run.finish(history, {"loss": 1.0}, save_model=pytest.fail, title="t")
    run.write_metrics("test", {"accuracy": 1.0}, 1)
    assert run.info == {} and history.plotted == []
    assert names(folder) == ["checkpoints", "notes.txt"]


def test_run_directory_prepares_with_its_overwrite(tmp_path: Path) -> None:
    (tmp_path / "history.csv").write_text("old")
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        RunDirectory(tmp_path, writes=True, overwrite=False).prepare()
    (tmp_path / "notes.txt").unlink()
    with pytest.raises(FileExistsError, match=r"no readable run\.json"):
        RunDirectory(tmp_path, writes=True, overwrite=False).prepare()
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="is not a kerasimgcls run"):
        RunDirectory(tmp_path, writes=True, overwrite=True).prepare()
    (tmp_path / "run.json").write_text('{"format": "kerasimgcls-run/1"}')
    assert RunDirectory(tmp_path, writes=True, overwrite=True).prepare() is False
    assert names(tmp_path) == ["notes.txt"]
    (tmp_path / CHECKPOINT).parent.mkdir()
    (tmp_path / CHECKPOINT).write_bytes(b"npz")
    assert RunDirectory(tmp_path, writes=True, overwrite=False).prepare() is True


def test_begin_writes_a_running_run_json(tmp_path: Path) -> None:
    run = RunDirectory(tmp_path, writes=True, overwrite=False)
    assert run.writes is True
    run.begin({"config": {"seed": 1}, "model": "m"}, resumed_at=0)
    info = read_run(tmp_path)
    assert info == run.info
    assert list(info) == [
        "format",
        "status",
        "config",
        "model",
        "started_at",
        "resumes",
        "finished_at",
    ]
    assert info["format"] == "kerasimgcls-run/1" and info["status"] == "running"
    assert info["config"] == {"seed": 1} and info["model"] == "m"
    assert_recent_utc(info["started_at"])
    assert info["resumes"] == [] and info["finished_at"] is None
    assert names(tmp_path) == ["run.json"]


def test_a_resume_keeps_the_start_and_the_earlier_resumes(tmp_path: Path) -> None:
    earlier = [{"epoch": 1, "at": "2020-01-01T00:00:00+00:00"}]
    (tmp_path / "run.json").write_text(
        json.dumps(
            {"status": "interrupted", "started_at": "2020-01-01", "resumes": earlier}
        )
    )
    run = RunDirectory(tmp_path, writes=True, overwrite=False)
    run.begin({"config": {}}, resumed_at=3)
    info = read_run(tmp_path)
    assert info["started_at"] == "2020-01-01" and info["status"] == "running"
    assert info["resumes"][:1] == earlier and len(info["resumes"]) == 2
    assert info["resumes"][1]["epoch"] == 3
    assert_recent_utc(info["resumes"][1]["at"])


@pytest.mark.parametrize("text", ["{broken", '["started_at"]', None])
def test_an_unreadable_or_overwritten_run_json_starts_afresh(
    tmp_path: Path, text: str | None
) -> None:
    old = {"started_at": "2020-01-01", "resumes": [{"epoch": 1, "at": "x"}]}
    (tmp_path / "run.json").write_text(json.dumps(old) if text is None else text)
    run = RunDirectory(tmp_path, writes=True, overwrite=text is None)
    run.begin({"config": {}}, resumed_at=0)
    info = read_run(tmp_path)
    assert info["resumes"] == []
    assert_recent_utc(info["started_at"])


def test_a_run_json_that_cannot_be_read_starts_afresh(tmp_path: Path) -> None:
    (tmp_path / "run.json").write_bytes(b"\xff\xfe not text")
    run = RunDirectory(tmp_path, writes=True, overwrite=False)
    run.begin({}, resumed_at=0)
    assert read_run(tmp_path)["resumes"] == []


def test_set_status_records_the_end_and_the_error(tmp_path: Path) -> None:
    run = RunDirectory(tmp_path, writes=True, overwrite=False)
    run.begin({}, resumed_at=0)
    run.set_status("diverged", error="loss is nan")
    info = read_run(tmp_path)
    assert info["status"] == "diverged" and info["error"] == "loss is nan"
    assert_recent_utc(info["finished_at"])
    run.set_status("running")
    info = read_run(tmp_path)
    assert info["status"] == "running" and info["finished_at"] is None
    assert info["error"] == "loss is nan"  # no error given: the old one is kept
    run.set_status("finished")
    assert read_run(tmp_path) == run.info


def test_finish_writes_the_outputs_and_marks_the_run_finished(tmp_path: Path) -> None:
    run = RunDirectory(tmp_path, writes=True, overwrite=False)
    run.begin({}, resumed_at=0)
    saved: list[Path] = []
    history = History(2)
    run.finish(history, {"accuracy": 0.5}, save_model=saved.append, title="digits")
    assert saved == [tmp_path / "model.keras"]
    assert history.plotted == [(tmp_path / "curves.png", "digits")]
    assert (tmp_path / "history.csv").read_text() == "csv"
    assert (tmp_path / "history.json").read_text() == "json"
    info = read_run(tmp_path)
    assert info["status"] == "finished"
    final = dict(info["final"])
    load = final.pop("load_average_at_end")
    assert final == {"accuracy": 0.5}
    if hasattr(os, "getloadavg"):
        assert len(load) == 3 and all(value >= 0 for value in load)
    assert_recent_utc(info["finished_at"])


def test_environment_records_the_cpu_its_bf16_units_and_the_load(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "getloadavg", lambda: (1.234, 0.5, 0.25))
    monkeypatch.setattr(_environment, "_cpuinfo", lambda: {"flags": "avx512_bf16 sse2"})
    hardware = _environment.environment()["hardware"]
    assert hardware["load_average_at_start"] == [1.23, 0.5, 0.25]
    assert hardware["avx512_bf16"] is True and hardware["amx"] is False
    monkeypatch.setattr(
        _environment, "_cpuinfo", lambda: {"flags": "amx_tile amx_bf16"}
    )
    assert _environment.environment()["hardware"]["amx"] is True


def test_load_average_is_none_where_the_os_has_none(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delattr(os, "getloadavg")
    assert _environment.load_average() is None


def test_finish_without_epochs_plots_nothing(tmp_path: Path) -> None:
    run = RunDirectory(tmp_path, writes=True, overwrite=False)
    run.begin({}, resumed_at=0)
    history = History(0)
    run.finish(history, {}, save_model=lambda path: None, title="t")
    assert history.plotted == []
    assert names(tmp_path) == ["history.csv", "history.json", "run.json"]


def test_run_directory_writes_metrics(tmp_path: Path) -> None:
    RunDirectory(tmp_path, writes=True, overwrite=False).write_metrics(
        "test", {"accuracy": 0.5}, 8
    )
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] == 0.5 and metrics["test"]["num_images"] == 8


def test_metrics_that_cannot_be_read_are_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "metrics.json"
    path.write_text('{"validation": {"accuracy": 0.5}}')
    real_read_text = Path.read_text

    def unreadable(self: Path, *args: Any, **kwargs: Any) -> str:
        if self == path:
            raise OSError(errno.EIO, "Input/output error")
        return real_read_text(self, *args, **kwargs)

    monkeypatch.setattr(Path, "read_text", unreadable)
    write_metrics(tmp_path, "test", {"accuracy": 1.0}, 2)
    monkeypatch.undo()
    assert list(json.loads(path.read_text())) == ["test"]
