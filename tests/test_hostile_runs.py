"""Crafted run directories, checkpoints, run.json and model files (issue 15).

Nothing outside what the library created is deleted, two trainings never share a
run directory, a full disk is one line and a resumable run, and damaged files are
named in one line.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import kerasimgcls as kic
from kerasimgcls.cli import main

SRC = Path(__file__).resolve().parents[1] / "src"


def _data() -> kic.ImageDataset:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (24, 8, 8, 1), np.uint8)
    return kic.from_arrays(x, np.arange(24) % 2, validation_split=0.25)


def _trainer(run_dir: Path, **options: Any) -> kic.Trainer:
    model = kic.build_cifar_cnn(input_shape=(8, 8, 1), num_classes=2)
    return kic.Trainer(model, seed=0, run_dir=run_dir, verbose=0, **options)


def _files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` and its bytes, but the lock (it names its holder)."""
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not path.is_symlink() and path.name != ".kerasimgcls.lock"
    }


# --- 4. nothing deleted ----------------------------------------------------------------


def test_hostile_refused_folder_is_left_untouched(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / ".last.abcdefgh.tmp.npz").write_bytes(b"theirs")
    (victim / ".notes.tmp").write_bytes(b"theirs")
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "photo.jpg").write_bytes(b"mine")
    (folder / ".draft.tmp.txt").write_bytes(b"mine")
    (folder / ".run.abcdefgh.tmp.json").write_bytes(b"looks like ours")
    (folder / "checkpoints").symlink_to(victim)
    before = _files(tmp_path)
    with pytest.raises(FileExistsError, match=r"photo\.jpg"):
        _trainer(folder).fit(_data(), epochs=1)
    assert _files(tmp_path) == before
    assert not (folder / ".kerasimgcls.lock").exists()


def test_hostile_finished_run_without_checkpoint_is_not_replaced(
    tmp_path: Path,
) -> None:
    run = tmp_path / "run"
    _trainer(run).fit(_data(), epochs=1)
    for partial in (run / "checkpoints").iterdir():
        partial.unlink()
    (run / "checkpoints").rmdir()
    before = _files(run)
    with pytest.raises(FileExistsError, match="finished run whose checkpoint"):
        _trainer(run).fit(_data(), epochs=1)
    assert _files(run) == before
    (run / "notes.txt").write_text("mine")
    history = _trainer(run, overwrite=True).fit(_data(), epochs=1)
    assert len(history) == 1 and (run / "notes.txt").read_text() == "mine"


# --- 4. nothing mixed: the run-directory lock -----------------------------------------


def _hold_lock(run: Path) -> subprocess.Popen[str]:
    """Another process holding the run's lock, as a training does (no TensorFlow)."""
    run.mkdir(parents=True, exist_ok=True)
    code = (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(run / '.kerasimgcls.lock')!r}, os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "os.write(fd, b'process %d on a test host' % os.getpid())\n"
        "print('locked', flush=True)\n"
        "time.sleep(120)\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
    return holder


def test_hostile_second_training_fails_at_once_and_a_killed_lock_is_free(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    holder = _hold_lock(run)
    try:
        (run / "run.json").write_text('{"status": "running"}')
        before = _files(run)
        start = time.perf_counter()
        with pytest.raises(
            RuntimeError, match=f"in use by another training .process {holder.pid}"
        ):
            _trainer(run).fit(_data(), epochs=1)
        assert time.perf_counter() - start < 5
        code = main(["train", "--epochs", "1", "--run-dir", str(run)])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and "in use" in err
        assert _files(run) == before
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    (run / "run.json").unlink()
    # The killed holder's lock file is still there; the kernel released the lock.
    assert (run / ".kerasimgcls.lock").exists()
    assert len(_trainer(run).fit(_data(), epochs=1)) == 1


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_hostile_two_cli_trainings_into_one_run_dir(tmp_path: Path) -> None:
    run = tmp_path / "run"
    command = [sys.executable, "-m", "kerasimgcls", "train", "--epochs", "500"]
    env = {**os.environ, "PYTHONPATH": str(SRC), "TF_CPP_MIN_LOG_LEVEL": "3"}
    # The first run writes to a file: a pipe nobody reads until the end fills up
    # and stalls the training that writes to it.
    log = (tmp_path / "first.log").open("w")
    first = subprocess.Popen(
        [*command, "--run-dir", str(run)],
        env=env,
        stdout=log,
        stderr=log,
        text=True,
        # Ctrl-C must reach it even when the tests run as a background job, whose
        # children start with SIGINT ignored.
        preexec_fn=_default_sigint,
    )
    try:
        while not (run / "checkpoints" / "last.npz").exists():
            assert first.poll() is None, "the first training ended early"
            time.sleep(0.1)
        second = subprocess.run(
            [*command, "--seed", "1", "--run-dir", str(run)],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert first.poll() is None, "the first training ended before the second"
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=300)
    assert second.returncode == 2
    assert "is in use by another training" in second.stderr
    assert "Traceback" not in second.stderr
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "interrupted" and info["config"]["seed"] == 0


# --- 4. a full disk ----------------------------------------------------------------------


def _fill_disk_after(monkeypatch: pytest.MonkeyPatch, writes: int) -> None:
    """Make every checkpoint write after the first ``writes`` fail with ENOSPC."""
    real = np.savez
    calls = []

    def savez(*args: Any, **kwargs: Any) -> None:
        calls.append(1)
        if len(calls) > writes:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real(*args, **kwargs)

    monkeypatch.setattr(np, "savez", savez)


def test_hostile_disk_full_is_one_line_and_resumable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = tmp_path / "run"
    _fill_disk_after(monkeypatch, writes=1)
    with pytest.raises(OSError, match="no space left on device") as caught:
        _trainer(run).fit(_data(), epochs=3)
    message = str(caught.value)
    assert "\n" not in message and "last.npz" in message and "resume" in message
    assert caught.value.errno == errno.ENOSPC
    info = json.loads((run / "run.json").read_text())
    assert info["status"] == "interrupted" and "no space left" in info["error"]
    assert not [p for p in run.rglob(".*.tmp*")]
    monkeypatch.undo()
    history = _trainer(run).fit(_data(), epochs=3)
    assert [row["epoch"] for row in history.rows] == [1, 2, 3]


def test_hostile_disk_full_through_the_cli(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _fill_disk_after(monkeypatch, writes=0)
    run = tmp_path / "run"
    code = main(["train", "--epochs", "2", "--run-dir", str(run)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "no space left on device" in err
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"


# --- 6. damaged checkpoints, run.json and model files ----------------------------------


def test_hostile_damaged_checkpoints_are_named(tmp_path: Path) -> None:
    from kerasimgcls.training._resume import load_checkpoint, save_checkpoint

    run = tmp_path / "run"
    _trainer(run).fit(_data(), epochs=1)
    checkpoint = run / "checkpoints" / "last.npz"
    good = checkpoint.read_bytes()
    checkpoint.write_bytes(good[: len(good) // 2])
    with pytest.raises(ValueError, match=r"cannot read the checkpoint .*truncated"):
        _trainer(run).fit(_data(), epochs=2)
    forged = tmp_path / "forged.npz"
    state = {"epoch": 1.5, "history": [], "early_stopping": {}, "config": {}}
    save_checkpoint(forged, state=state, groups={})
    with pytest.raises(ValueError, match=r"'epoch' is 1\.5, expected a non-negative"):
        load_checkpoint(forged)
    bomb = tmp_path / "bomb.npz"
    np.savez_compressed(bomb, __state__=np.frombuffer(b"{}", np.uint8))
    with pytest.raises(ValueError, match="is compressed"):
        load_checkpoint(bomb)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("[1, 2]", "found list"),
        ('"run"', "found str"),
        ('{"data": []}', "found list"),
        ('{"data": "x"}', "found str"),
    ],
)
def test_hostile_run_json_of_the_wrong_shape_is_one_line(
    tmp_path: Path, content: str, match: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "run.json").write_text(content)
    assert main(["evaluate", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "run.json" in err and match in err


def test_hostile_run_json_values_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = kic.export_model(
        kic.build_cifar_cnn(input_shape=(8, 8, 1), num_classes=10), list("0123456789")
    )
    model.save(tmp_path / "model.keras")
    spec = {"dataset": "digits", "validation_split": "abc"}
    (tmp_path / "run.json").write_text(json.dumps({"data": spec}))
    assert main(["evaluate", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "validation_split" in err and "'abc'" in err


def test_hostile_split_seed_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["train", "--split-seed", "-1", "--run-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "--split-seed" in err


@pytest.mark.parametrize("content", [b"", b"garbage", b"PK\x03\x04truncated"])
def test_hostile_damaged_keras_files_are_named(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "model.keras"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=r"not a readable \.keras model"):
        kic.load_model(path)


def test_hostile_model_arguments_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(TypeError, match="received head_dropout=5"):
        kic.build_cifar_cnn(head_dropout=5)  # type: ignore[arg-type]
    run = str(tmp_path / "run")
    code = main(["train", "--model-arg", "head_dropout=5", "--run-dir", run])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "head_dropout=5" in err
