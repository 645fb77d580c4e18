"""Tampered state read back: checkpoints, run.json, the decode cache (issue 27, class 4).

Nothing the library reads back from a file it wrote earlier is trusted: every field
is checked by type and against the rest of the state, and a file that fails is
named in one line (a cache is rebuilt instead).
"""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

import kerasimgcls as kic
from kerasimgcls.cli import main

CHECKPOINT = Path("checkpoints") / "last.npz"


def _data() -> kic.ImageDataset:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (16, 8, 8, 1), np.uint8)
    return kic.from_arrays(x, np.arange(16) % 2, validation_split=0.25)


def _trainer(run: Path) -> kic.Trainer:
    model = kic.build_cifar_cnn(input_shape=(8, 8, 1), num_classes=2)
    return kic.Trainer(model, seed=0, run_dir=run, verbose=0)


@pytest.fixture(scope="module")
def stopped_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run whose checkpoint holds 2 of its 4 epochs (as if killed after epoch 2)."""
    run = tmp_path_factory.mktemp("state") / "run"
    trainer = _trainer(run)
    trainer.fit(_data(), epochs=2)
    state = _read_state(run)
    state["config"]["epochs"] = 4
    _write_state(run, state)
    info = json.loads((run / "run.json").read_text())
    info["status"] = "interrupted"
    (run / "run.json").write_text(json.dumps(info))
    (run / "model.keras").unlink()
    return run


def _read_state(run: Path) -> dict[str, Any]:
    with np.load(run / CHECKPOINT) as archive:
        state: dict[str, Any] = json.loads(bytes(archive["__state__"]).decode())
    return state


def _write_state(run: Path, state: dict[str, Any]) -> None:
    with np.load(run / CHECKPOINT) as archive:
        arrays = {key: archive[key] for key in archive.files}
    arrays["__state__"] = np.frombuffer(json.dumps(state).encode(), np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    (run / CHECKPOINT).write_bytes(buffer.getvalue())


def _tampered(
    run: Path, tmp_path: Path, edit: Callable[[dict[str, Any]], None]
) -> Path:
    copy = tmp_path / "run"
    (copy / "checkpoints").mkdir(parents=True)
    for name in ("run.json", "history.csv", "history.json", str(CHECKPOINT)):
        (copy / name).write_bytes((run / name).read_bytes())
    state = _read_state(copy)
    edit(state)
    _write_state(copy, state)
    return copy


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda s: s.update(epoch=50), r"'epoch' is 50, more than the run's 4"),
        (lambda s: s.update(epoch=3), r"'epoch' is 3 but the history has 2 rows"),
        (lambda s: s.update(stopped="no"), r"'stopped' is 'no', expected true"),
        (
            lambda s: s["history"][0].update(loss="0.1; rm -rf"),
            r"'history' is row 1 with 'loss'='0\.1; rm -rf'",
        ),
        (lambda s: s["history"][1].update(epoch=7), r"row 2 numbered epoch 7"),
        (lambda s: s.update(callbacks={"X": 1}), r"'callbacks' is \{'X': 1\}"),
    ],
)
def test_state_tampered_checkpoint_is_refused_naming_the_file(
    stopped_run: Path,
    tmp_path: Path,
    edit: Callable[[dict[str, Any]], None],
    message: str,
) -> None:
    run = _tampered(stopped_run, tmp_path, edit)
    before = (run / "history.json").read_bytes()
    with pytest.raises(ValueError, match=message) as info:
        _trainer(run).fit(_data(), epochs=4)
    assert str(run / CHECKPOINT) in str(info.value)
    assert "\n" not in str(info.value)
    assert (run / "history.json").read_bytes() == before  # nothing copied over
    assert json.loads((run / "run.json").read_text())["status"] == "interrupted"


def test_state_genuine_checkpoint_still_resumes(
    stopped_run: Path, tmp_path: Path
) -> None:
    run = _tampered(stopped_run, tmp_path, lambda state: None)
    history = _trainer(run).fit(_data(), epochs=4)
    assert [row["epoch"] for row in history.rows] == [1, 2, 3, 4]


def test_state_tampered_early_stopping_state_is_one_line(tmp_path: Path) -> None:
    import keras

    run = tmp_path / "run"
    model = kic.build_cifar_cnn(input_shape=(8, 8, 1), num_classes=2)
    stopping = keras.callbacks.EarlyStopping(patience=5)
    kic.Trainer(model, run_dir=run, verbose=0, callbacks=[stopping]).fit(
        _data(), epochs=1
    )
    state = _read_state(run)
    state["config"]["epochs"] = 3
    state["callbacks"]["EarlyStopping"]["wait"] = "forever"
    _write_state(run, state)
    (run / "model.keras").unlink()
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "status": "interrupted"}))
    model = kic.build_cifar_cnn(input_shape=(8, 8, 1), num_classes=2)
    stopping = keras.callbacks.EarlyStopping(patience=5)
    trainer = kic.Trainer(model, run_dir=run, verbose=0, callbacks=[stopping])
    with pytest.raises(ValueError, match="holds a state of EarlyStopping"):
        trainer.fit(_data(), epochs=3)


def test_state_tampered_run_json_resumes_are_refused(
    stopped_run: Path, tmp_path: Path
) -> None:
    run = _tampered(stopped_run, tmp_path, lambda state: None)
    info = json.loads((run / "run.json").read_text())
    (run / "run.json").write_text(json.dumps({**info, "resumes": "many"}))
    with pytest.raises(ValueError, match=r"run\.json' is damaged: 'started_at'"):
        _trainer(run).fit(_data(), epochs=4)


# --- the decode cache ---------------------------------------------------------------


def _folder(root: Path) -> Path:
    for label, name in enumerate(("cat", "dog")):
        (root / name).mkdir(parents=True)
        for index in range(3):
            pixels = np.full((4, 4, 3), 40 * index + 120 * label, np.uint8)
            Image.fromarray(pixels).save(root / name / f"{index}.png")
    return root


@pytest.mark.parametrize(
    "edit",
    [
        lambda labels: labels[::-1],  # swapped
        lambda labels: [float(label) for label in labels],  # floats
        lambda labels: [1] * len(labels),  # all one class
    ],
)
def test_state_edited_cache_labels_are_not_trusted(
    tmp_path: Path, edit: Callable[[list[int]], list[Any]]
) -> None:
    folder = _folder(tmp_path / "pets")
    cache = tmp_path / "cache"
    first = kic.load_image_folder(folder, cache=cache, validation_split=0.0)
    (index_file,) = (cache / "image_folders").glob("*.json")
    index = json.loads(index_file.read_text())
    index["labels"] = edit(index["labels"])
    index_file.write_text(json.dumps(index))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = kic.load_image_folder(folder, cache=cache, validation_split=0.0)
    np.testing.assert_array_equal(again.train.labels, first.train.labels)
    np.testing.assert_array_equal(again.train.images, first.train.images)
    assert json.loads(index_file.read_text())["labels"] == first.train.labels.tolist()


def test_state_edited_cache_failed_list_is_not_trusted(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "pets")
    cache = tmp_path / "cache"
    first = kic.load_image_folder(folder, cache=cache, validation_split=0.0)
    (index_file,) = (cache / "image_folders").glob("*.json")
    index = json.loads(index_file.read_text())
    index["failed"] = ["cat/0.png"]
    index["labels"] = index["labels"][1:]
    index_file.write_text(json.dumps(index))
    again = kic.load_image_folder(folder, cache=cache, validation_split=0.0)
    assert len(again.train) == len(first.train) == 6


# --- a run still running ---------------------------------------------------------------


def test_state_report_refuses_a_running_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").write_text(
        '{"format": "kerasimgcls-run/1", "status": "running"}'
    )
    code = main(["report", str(run)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "still running" in err
    assert not (run / "report.html").exists()
