"""Output paths and what may be replaced or deleted (issue 27, classes 1 and 2).

Every file the library writes goes through one rule (``output_target``): a regular
file is replaced atomically, a link is followed, a device, a FIFO or
``/dev/stdout`` is written into and never replaced, a folder is refused in one
line. ``--overwrite`` replaces only what the library wrote, and a run's lock cannot
be switched off.
"""

from __future__ import annotations

import errno
import json
import os
import stat
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import kerasimgcls as kic
from kerasimgcls._io import output_target, write_json_atomic
from kerasimgcls.cli import main


def _image_folder(root: Path) -> Path:
    for name in ("a", "b"):
        (root / name).mkdir(parents=True)
        for index in range(2):
            Image.new("RGB", (4, 4), (index, 0, 0)).save(root / name / f"{index}.png")
    return root


def _one_line(err: str) -> bool:
    return err.count("\n") == 1 and "Traceback" not in err


# --- one rule for every output path ----------------------------------------------


def test_outputs_regular_file_is_replaced_atomically(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    target.write_text("old")
    write_json_atomic(target, {"new": 1})
    assert json.loads(target.read_text()) == {"new": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]


def test_outputs_symlink_is_written_through_and_kept(tmp_path: Path) -> None:
    real = tmp_path / "real.json"
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    write_json_atomic(link, [1])
    assert link.is_symlink() and json.loads(real.read_text()) == [1]


def test_outputs_character_device_is_written_into_not_replaced(tmp_path: Path) -> None:
    # A device node of /dev/null's numbers in tmp_path (as root; the issue's
    # `lr-find --out /dev/null` replaced the device with a regular file).
    device = tmp_path / "null"
    try:
        os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except (PermissionError, OSError) as err:
        pytest.skip(f"cannot make a device node here: {err}")
    assert output_target(device) == (device, False)
    write_json_atomic(device, {"x": 1})
    assert stat.S_ISCHR(device.lstat().st_mode)
    assert output_target("/dev/null") == (Path("/dev/null"), False)


def test_outputs_fifo_receives_the_bytes(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    received: list[bytes] = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
    reader.start()
    write_json_atomic(fifo, {"through": "the pipe"})
    reader.join(10)
    assert json.loads(received[0]) == {"through": "the pipe"}
    assert stat.S_ISFIFO(fifo.lstat().st_mode)


def test_outputs_dev_stdout_through_a_link_prints_the_json(
    tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    # `doctor DIR --json /dev/stdout` turned the link into a file, printed nothing.
    assert output_target("/dev/stdout")[1] is False
    link = tmp_path / "stdout"
    link.symlink_to("/dev/stdout")
    folder = _image_folder(tmp_path / "images")
    code = main(["doctor", str(folder), "--json", str(link)])
    out = capfd.readouterr().out
    assert code == 0 and link.is_symlink()
    assert '"num_images": 4' in out and out.index("Image folder") < out.index("{")


def test_outputs_directory_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _image_folder(tmp_path / "images")
    target = tmp_path / "taken"
    target.mkdir()
    with pytest.raises(IsADirectoryError, match="is a directory; name a file"):
        write_json_atomic(target, {})
    code = main(["doctor", str(folder), "--json", str(target)])
    err = capsys.readouterr().err
    assert code == 2 and _one_line(err) and str(target) in err
    assert target.is_dir() and not any(target.iterdir())


def test_outputs_empty_path_is_refused() -> None:
    with pytest.raises(ValueError, match="must name a file; received ''"):
        write_json_atomic("", {})


def test_outputs_read_only_folder_is_one_line_naming_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Root writes anywhere, so the read-only file system is simulated where the
    # library creates its temporary file.
    folder = _image_folder(tmp_path / "images")

    def read_only(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.EROFS, "Read-only file system", kwargs.get("dir"))

    monkeypatch.setattr("kerasimgcls._io.tempfile.mkstemp", read_only)
    code = main(["doctor", str(folder), "--json", str(tmp_path / "r.json")])
    err = capsys.readouterr().err
    assert code == 2 and _one_line(err)
    assert f"cannot write output {str(tmp_path / 'r.json')!r}" in err
    assert "read-only" in err and ".tmp" not in err


# --- overwrite: only what the library wrote ------------------------------------------


def test_outputs_overwrite_refuses_a_folder_that_is_not_a_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # checkpoints/, tensorboard/, report.html and model.keras, but no run.
    folder = tmp_path / "d"
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "checkpoints" / "my.pt").write_bytes(b"mine")
    (folder / "tensorboard").mkdir()
    (folder / "tensorboard" / "events.out.tfevents.1").write_bytes(b"mine")
    (folder / "report.html").write_text("mine")
    (folder / "model.keras").write_bytes(b"mine")
    before = sorted(p.relative_to(folder) for p in folder.rglob("*"))
    code = main(["train", "--epochs", "1", "--run-dir", str(folder), "--overwrite"])
    err = capsys.readouterr().err
    assert code == 2 and _one_line(err) and "is not a kerasimgcls run" in err
    assert sorted(p.relative_to(folder) for p in folder.rglob("*")) == before
    assert (folder / "checkpoints" / "my.pt").read_bytes() == b"mine"


def test_outputs_overwrite_of_a_run_keeps_foreign_files_in_its_folders(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "run"
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "run.json").write_text('{"format": "kerasimgcls-run/1"}')
    (folder / "checkpoints" / "last.npz").write_bytes(b"ours")
    (folder / "checkpoints" / "my.pt").write_bytes(b"mine")
    with pytest.raises(FileExistsError, match=r"checkpoints/my\.pt"):
        kic.Trainer(
            kic.build_cifar_cnn(input_shape=(8, 8, 1), num_classes=2),
            run_dir=folder,
            overwrite=True,
            verbose=0,
        ).fit(_arrays(), epochs=1)
    assert (folder / "checkpoints" / "last.npz").read_bytes() == b"ours"
    assert (folder / "run.json").exists()


def _arrays() -> kic.ImageDataset:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (8, 8, 8, 1), np.uint8)
    return kic.from_arrays(x, np.arange(8) % 2, validation_split=0.25)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import keras

    core = kic.build_cifar_cnn(input_shape=(8, 8, 3), num_classes=2)
    path = tmp_path_factory.mktemp("model") / "m.keras"
    keras.Model.save(kic.export_model(core, ["a", "b"]), path)
    return path


def test_outputs_export_overwrite_keeps_files_its_manifest_did_not_write(
    tmp_path: Path, model_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A manifest beside the user's files, even one that lists them, wipes none.
    folder = tmp_path / "d"
    folder.mkdir()
    (folder / "notes.txt").write_text("mine")
    manifest = {"files": ["notes.txt", "kerasimgcls-export.json"]}
    (folder / "kerasimgcls-export.json").write_text(json.dumps(manifest))
    args = ["export", str(model_file), "--format", "saved_model"]
    code = main([*args, "--output", str(folder), "--overwrite"])
    err = capsys.readouterr().err
    assert code == 2 and _one_line(err) and "notes.txt" in err
    assert (folder / "notes.txt").read_text() == "mine"


def test_outputs_export_to_a_link_or_an_empty_path_is_one_line(
    tmp_path: Path, model_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    real = tmp_path / "real"
    real.mkdir()
    link = tmp_path / "link"
    link.symlink_to(real)
    args = ["export", str(model_file), "--format", "saved_model", "--output"]
    assert main([*args, str(link)]) == 2
    err = capsys.readouterr().err
    assert _one_line(err) and "is a symbolic link" in err
    assert link.is_symlink()
    assert main([*args, ""]) == 2
    err = capsys.readouterr().err
    assert _one_line(err) and "must name a file or folder; received ''" in err
    assert "PosixPath" not in err


# --- the lock ------------------------------------------------------------------------


def test_outputs_symlinked_lock_stops_the_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / ".kerasimgcls.lock").symlink_to(tmp_path / "elsewhere")
    code = main(["train", "--epochs", "1", "--run-dir", str(run)])
    err = capsys.readouterr().err
    assert code == 2 and _one_line(err) and "it is a symbolic link" in err
    assert sorted(p.name for p in run.iterdir()) == [".kerasimgcls.lock"]
    assert not (tmp_path / "elsewhere").exists()


def test_outputs_lock_is_removed_after_a_finished_run(tmp_path: Path) -> None:
    run = tmp_path / "run"
    kic.Trainer(
        kic.build_cifar_cnn(input_shape=(8, 8, 1), num_classes=2),
        run_dir=run,
        verbose=0,
    ).fit(_arrays(), epochs=1)
    assert (run / "model.keras").is_file()
    assert not (run / ".kerasimgcls.lock").exists()


def test_outputs_lock_release_removes_only_the_file_it_locked(tmp_path: Path) -> None:
    from kerasimgcls._io import file_lock

    lock = tmp_path / "x.lock"
    with file_lock(lock, blocking=False, remove=True) as held:
        assert held
        lock.unlink()
        lock.write_text("someone else's")  # replaced while held
    assert lock.read_text() == "someone else's"
