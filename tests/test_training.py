"""Trainer, History and the run directory, in process (tiny models on digits)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import keras
import numpy as np
import pytest

import kerasimgcls as kic
from kerasimgcls.training import History, Trainer, TrainingDivergedError


def tiny_cnn(input_shape=(8, 8, 1), num_classes=10, dropout=0.1):  # type: ignore[no-untyped-def]
    """A 2-block conv net: fast, and learns the 8x8 digits in a few epochs."""
    inputs = keras.Input(input_shape)
    x = kic.conv_block(inputs, 16, pool_size=2, name="block1")
    x = kic.conv_block(x, 32, pool_size=2, dropout=dropout, name="block2")
    outputs = kic.dense_head(x, num_classes, units=(32,), name="head")
    return keras.Model(inputs, outputs, name="tiny_cnn")


def make_trainer(**kwargs):  # type: ignore[no-untyped-def]
    options = {"seed": 0, "deterministic": False, "verbose": 0}
    options.update(kwargs)
    return Trainer(tiny_cnn, **options)


def test_trainer_learns_digits_well_above_chance(digits, tmp_path: Path) -> None:
    trainer = make_trainer(learning_rate=3e-3, run_dir=tmp_path / "run")
    history = trainer.fit(digits, epochs=4, batch_size=32)
    scores = trainer.evaluate(digits.test)
    # Chance is 10%; a model that learned nothing cannot pass this.
    assert scores["accuracy"] > 0.8, scores
    assert history.rows[-1]["val_accuracy"] > 0.8
    assert history.rows[-1]["loss"] < history.rows[0]["loss"]
    probabilities = trainer.predict(digits.test.images[:5])
    assert probabilities.shape == (5, 10)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_run_dir_files_parse_and_agree(digits, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    trainer = make_trainer(run_dir=run_dir, metadata={"data": {"dataset": "digits"}})
    history = trainer.fit(digits, epochs=2, batch_size=64)
    trainer.evaluate(digits.test)
    for name in (
        "run.json",
        "history.csv",
        "history.json",
        "curves.png",
        "model.keras",
        "metrics.json",
        "checkpoints/last.npz",
    ):
        assert (run_dir / name).is_file(), name
    with open(run_dir / "history.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert float(rows[1]["val_accuracy"]) == pytest.approx(
        history.rows[1]["val_accuracy"]
    )
    assert json.loads((run_dir / "history.json").read_text()) == history.rows
    assert History.from_run(run_dir).rows == history.rows
    assert History.from_csv(run_dir / "history.csv").column("loss") == pytest.approx(
        history.column("loss")
    )
    for row in history.rows:
        assert set(row) >= {
            "epoch",
            "loss",
            "accuracy",
            "val_loss",
            "val_accuracy",
            "learning_rate",
            "epoch_time",
        }
    run = json.loads((run_dir / "run.json").read_text())
    assert run["status"] == "finished"
    assert run["class_names"] == list(digits.class_names)
    assert run["data"]["fingerprint"] == digits.fingerprint
    assert run["data"]["dataset"] == "digits"
    assert run["config"]["seed"] == 0
    assert run["model"]["parameters"] == trainer.model.count_params()
    assert {"tensorflow", "keras", "numpy", "python", "kerasimgcls"} <= set(
        run["versions"]
    )
    assert run["final"]["epochs_completed"] == 2
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test"]["num_images"] == len(digits.test)
    assert (run_dir / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # The exported model takes raw uint8 pixels and carries the class names.
    exported = kic.load_model(run_dir)
    assert kic.get_class_names(exported) == digits.class_names
    np.testing.assert_allclose(
        kic.predict_proba(exported, digits.test.images[:8]),
        trainer.predict(digits.test.images[:8]),
        atol=1e-5,
    )


def test_rerunning_a_finished_run_does_not_train_again(digits, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    first = make_trainer(run_dir=run_dir).fit(digits, epochs=2)
    again = make_trainer(run_dir=run_dir)
    second = again.fit(digits, epochs=2)
    assert second.rows == first.rows
    run = json.loads((run_dir / "run.json").read_text())
    assert run["resumes"][-1]["epoch"] == 2


def test_history_plot_and_dataframe(tmp_path: Path) -> None:
    history = History(
        [
            {"epoch": 1, "loss": 1.0, "accuracy": 0.5, "val_loss": 1.1},
            {"epoch": 2, "loss": 0.5, "accuracy": 0.8, "val_loss": 0.9},
        ]
    )
    path = history.plot(tmp_path / "curves.png", title="t")
    assert path.stat().st_size > 1000
    assert history.columns == ["epoch", "loss", "accuracy", "val_loss"]
    pandas = pytest.importorskip("pandas")
    frame = history.to_dataframe()
    assert isinstance(frame, pandas.DataFrame)
    assert list(frame.index) == [1, 2]


def test_history_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="history is empty"):
        History().plot(tmp_path / "x.png")
    with pytest.raises(KeyError, match="no column 'nope'"):
        History([{"epoch": 1}]).column("nope")
    with pytest.raises(FileNotFoundError, match=r"no history\.json or history\.csv"):
        History.from_run(tmp_path)
    (tmp_path / "bad.json").write_text('{"a": 1}')
    with pytest.raises(ValueError, match="not a JSON list"):
        History.from_json(tmp_path / "bad.json")


# --------------------------------------------------------------- bad input
def test_model_output_size_mismatch_is_refused(digits) -> None:
    trainer = Trainer(tiny_cnn(num_classes=3), verbose=0, deterministic=False)
    with pytest.raises(ValueError, match=r"outputs 3 classes .* num_classes=10"):
        trainer.fit(digits, epochs=1)


def test_input_shape_mismatch_is_refused(digits) -> None:
    trainer = Trainer(tiny_cnn(input_shape=(16, 16, 1)), verbose=0)
    with pytest.raises(ValueError, match=r"shape \(8, 8, 1\) but the model expects"):
        trainer.fit(digits, epochs=1)


def test_empty_split_is_refused(digits) -> None:
    empty = kic.Split(np.zeros((0, 8, 8, 1), np.uint8), np.zeros((0,), np.int64))
    data = kic.ImageDataset(digits.train, empty, None, digits.class_names)
    with pytest.raises(ValueError, match=r"data\.validation is empty"):
        make_trainer().fit(data, epochs=1)
    with pytest.raises(ValueError, match="split is empty"):
        make_trainer().evaluate(empty)


def test_non_empty_run_dir_without_checkpoint_is_refused(
    digits, tmp_path: Path
) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match=r"not empty \(notes.txt\)"):
        make_trainer(run_dir=tmp_path).fit(digits, epochs=1)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_resume_in_process_ignores_keras_optimizer_numbering(
    digits, tmp_path: Path
) -> None:
    # Keras names the second unnamed Adam of a process "adam_1": not a new config.
    run_dir = tmp_path / "run"
    first = make_trainer(run_dir=run_dir, optimizer=keras.optimizers.Adam())
    first.fit(digits, epochs=1)
    again = make_trainer(run_dir=run_dir, optimizer=keras.optimizers.Adam())
    assert again.fit(digits, epochs=1).rows == first.history.rows
    run = json.loads((run_dir / "run.json").read_text())
    assert run["resumes"][-1]["epoch"] == 1
    assert "name" not in run["config"]["optimizer"]["config"]


def test_run_killed_before_its_first_epoch_starts_again(digits, tmp_path: Path) -> None:
    # What a kill during epoch 1 leaves: run.json and a half-written temporary file.
    (tmp_path / "run.json").write_text('{"status": "running"}')
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / ".last.abc123.tmp.npz").write_bytes(b"partial")
    history = make_trainer(run_dir=tmp_path).fit(digits, epochs=1)
    assert len(history) == 1
    assert not list((tmp_path / "checkpoints").glob(".*.tmp*"))
    assert json.loads((tmp_path / "run.json").read_text())["status"] == "finished"


@pytest.mark.slow
def test_keyboard_interrupt_marks_the_run_resumable(digits, tmp_path: Path) -> None:
    class Interrupt(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):  # type: ignore[no-untyped-def]
            if epoch == 1:
                raise KeyboardInterrupt

    trainer = make_trainer(run_dir=tmp_path, callbacks=[Interrupt()])
    with pytest.raises(KeyboardInterrupt):
        trainer.fit(digits, epochs=3)
    assert json.loads((tmp_path / "run.json").read_text())["status"] == "interrupted"
    before = json.loads((tmp_path / "history.json").read_text())
    assert [row["epoch"] for row in before] == [1, 2]
    resumed = make_trainer(run_dir=tmp_path).fit(digits, epochs=3)
    assert [row["epoch"] for row in resumed.rows] == [1, 2, 3]
    # It continued after epoch 2 instead of starting again: the first two rows are
    # the recorded ones (a retrained epoch would not take the same time to the ns).
    assert resumed.rows[:2] == before
    run = json.loads((tmp_path / "run.json").read_text())
    assert [resume["epoch"] for resume in run["resumes"]] == [2]
    assert run["status"] == "finished"


def test_overwrite_replaces_only_run_files(digits, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    # A folder that is not a run is refused untouched, even with overwrite.
    with pytest.raises(FileExistsError, match="is not a kerasimgcls run"):
        make_trainer(run_dir=tmp_path, overwrite=True).fit(digits, epochs=1)
    (tmp_path / "notes.txt").unlink()
    make_trainer(run_dir=tmp_path).fit(digits, epochs=1)
    (tmp_path / "notes.txt").write_text("mine")
    make_trainer(run_dir=tmp_path, overwrite=True).fit(digits, epochs=1)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert (tmp_path / "run.json").is_file()


def test_non_writable_run_dir_is_refused(digits, tmp_path: Path, monkeypatch) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    if os.geteuid() == 0:
        # Root writes through any mode bits; make the write itself fail instead,
        # as a read-only mount would (EROFS).
        real_write_bytes = Path.write_bytes

        def read_only(self: Path, data: bytes) -> int:
            if self.parent == locked:
                raise OSError(30, "Read-only file system", str(self))
            return real_write_bytes(self, data)

        monkeypatch.setattr(Path, "write_bytes", read_only)
    locked.chmod(0o500)
    try:
        with pytest.raises(PermissionError, match="run_dir is not writable"):
            make_trainer(run_dir=locked).fit(digits, epochs=1)
    finally:
        locked.chmod(0o700)
    assert list(locked.iterdir()) == []  # refused before anything was written


def test_run_dir_that_cannot_be_created_is_refused(digits, tmp_path: Path) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a parent directory should be")
    with pytest.raises(PermissionError, match="cannot create run_dir"):
        make_trainer(run_dir=blocker / "run").fit(digits, epochs=1)


def test_run_dir_that_is_a_file_is_refused(digits, tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("x")
    with pytest.raises(NotADirectoryError, match="is a file"):
        make_trainer(run_dir=target).fit(digits, epochs=1)


def test_checkpoint_of_another_configuration_is_refused(digits, tmp_path: Path) -> None:
    make_trainer(run_dir=tmp_path).fit(digits, epochs=1)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(ValueError, match=r"different run; batch_size"):
        make_trainer(run_dir=tmp_path).fit(digits, epochs=1, batch_size=32)

    def wider():  # type: ignore[no-untyped-def]
        inputs = keras.Input((8, 8, 1))
        x = kic.conv_block(inputs, 24, pool_size=2, name="block1")
        return keras.Model(inputs, kic.dense_head(x, 10, units=(), name="head"))

    fewer = kic.ImageDataset(
        digits.train.subset(np.arange(600)), digits.validation, None, digits.class_names
    )
    cases = [
        (
            make_trainer(seed=1, run_dir=tmp_path),
            digits,
            {},
            ["seed: checkpoint 0, now 1"],
        ),
        (
            Trainer(wider, seed=0, deterministic=False, verbose=0, run_dir=tmp_path),
            digits,
            {},
            ["model_variables: checkpoint"],
        ),
        (
            make_trainer(run_dir=tmp_path),
            fewer,
            {},
            [
                "dataset_fingerprint: checkpoint",
                "steps_per_epoch: checkpoint 21, now 10",
            ],
        ),
        (
            make_trainer(learning_rate=0.01, label_smoothing=0.1, run_dir=tmp_path),
            digits,
            {"augment": kic.Augmentation(flip=False, translate=1)},
            [
                "learning_rate: checkpoint",
                ", now 0.01;",
                "label_smoothing: checkpoint 0.0, now 0.1",
                "augment: checkpoint None",
            ],
        ),
    ]
    for trainer, data, kwargs, differences in cases:
        with pytest.raises(
            ValueError, match="holds a checkpoint of a different run"
        ) as error:
            trainer.fit(data, epochs=1, **kwargs)
        for difference in differences:
            assert difference in str(error.value)
    # Refusing wrote nothing: the run directory is as the first run left it.
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert make_trainer(run_dir=tmp_path).fit(digits, epochs=1).rows


def test_fit_never_uses_the_test_split(digits, tmp_path: Path, monkeypatch) -> None:
    import kerasimgcls.training._loop as loop_module
    import kerasimgcls.training._trainer as trainer_module

    seen: list[object] = []
    patched = 0
    for module in (trainer_module, loop_module):
        for name in ("to_tf_dataset", "epochs_dataset"):
            real = getattr(module, name, None)
            if real is None:
                continue

            def spy(split, *args, _real=real, **kwargs):  # type: ignore[no-untyped-def]
                seen.append(split)
                return _real(split, *args, **kwargs)

            monkeypatch.setattr(module, name, spy)
            patched += 1
    assert patched >= 3  # every place the Trainer makes batches from a split
    trainer = make_trainer(run_dir=tmp_path)
    trainer.fit(digits, epochs=1)
    assert any(split is digits.train for split in seen)
    assert any(split is digits.validation for split in seen)
    assert not any(split is digits.test for split in seen)
    assert not (tmp_path / "metrics.json").exists()  # fit scores no split
    trainer.evaluate(digits.test)
    assert seen[-1] is digits.test  # the spy sees what evaluate uses


def test_augmentation_never_enters_the_saved_model(digits, tmp_path: Path) -> None:
    trainer = make_trainer(run_dir=tmp_path)
    augment = kic.Augmentation(flip=True, translate=2, cutout=3)
    trainer.fit(digits, epochs=1, augment=augment)
    saved = kic.load_model(tmp_path)

    def layer_types(model: keras.Model) -> list[str]:
        return [type(layer).__name__ for layer in model._flatten_layers()]

    added = set(layer_types(saved)) - set(layer_types(tiny_cnn()))
    assert added <= {"InputPreprocessing", "Functional"}, added
    images = digits.test.images[:32]
    # Inference is plain: the same output each call, equal to the trained model's.
    first = kic.predict_proba(saved, images)
    np.testing.assert_array_equal(first, kic.predict_proba(saved, images))
    np.testing.assert_allclose(first, trainer.predict(images), atol=1e-6)


def test_nan_loss_stops_with_epoch_and_step(digits, tmp_path: Path) -> None:
    images = digits.train.images.copy()
    data = kic.ImageDataset(
        kic.Split(images, digits.train.labels), None, None, digits.class_names
    )
    # A huge learning rate makes the loss overflow within the second epoch.
    trainer = make_trainer(learning_rate=1e12, optimizer="sgd", run_dir=tmp_path)
    with pytest.raises(
        TrainingDivergedError, match=r"NaN or infinite at epoch \d+, step \d+"
    ):
        trainer.fit(data, epochs=3, batch_size=64)
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["status"] == "diverged"


def test_divergence_keeps_the_last_good_checkpoint(digits, tmp_path: Path) -> None:
    from kerasimgcls.training._resume import load_checkpoint

    good: list[list[np.ndarray]] = []
    poisoned: list[int] = []

    class PoisonEpochTwo(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):  # type: ignore[no-untyped-def]
            good.append([np.array(v.numpy()) for v in self.model.variables])

        def on_train_batch_begin(self, batch, logs=None):  # type: ignore[no-untyped-def]
            if len(good) == 1 and not poisoned:
                poisoned.append(batch)
                kernel = self.model.trainable_variables[-1]  # the output bias
                kernel.assign(np.full(kernel.shape, np.nan, np.float32))

    trainer = make_trainer(run_dir=tmp_path, callbacks=[PoisonEpochTwo()])
    with pytest.raises(
        TrainingDivergedError, match=r"epoch 2, step 1; the last good checkpoint"
    ) as error:
        trainer.fit(digits, epochs=3, batch_size=64)
    assert "(epoch 1) is kept" in str(error.value)
    state, groups = load_checkpoint(tmp_path / "checkpoints" / "last.npz")
    assert state["epoch"] == 1
    assert [row["epoch"] for row in state["history"]] == [1]
    # The kept weights are those after epoch 1, finite, not the poisoned ones.
    for kept, expected in zip(groups["model"], good[0], strict=True):
        np.testing.assert_array_equal(kept, expected)
    assert json.loads((tmp_path / "history.json").read_text()) == state["history"]
    assert json.loads((tmp_path / "run.json").read_text())["status"] == "diverged"


def test_op_determinism_is_on_inside_a_deterministic_test() -> None:
    from tensorflow.python.framework import config

    kic.seed_everything(0, deterministic=True)
    assert config.is_op_determinism_enabled()


def test_op_determinism_does_not_leak_into_the_next_test() -> None:
    # The test above turned it on; conftest's fixture turned it off again, so a
    # deterministic=False test really runs without it.
    from tensorflow.python.framework import config

    assert not config.is_op_determinism_enabled()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"seed": -1}, ValueError, "seed must be a non-negative integer"),
        ({"seed": 1.5}, TypeError, "seed must be an integer"),
        ({"optimizer": "nope"}, ValueError, "optimizer must be a Keras optimizer name"),
        ({"optimizer": 3}, TypeError, "optimizer must be None"),
        ({"learning_rate": -1.0}, ValueError, "learning_rate must be > 0"),
        ({"learning_rate": "x"}, TypeError, "learning_rate must be a number"),
        ({"schedule": "linear"}, ValueError, "schedule must be one of"),
        ({"warmup_epochs": -1}, ValueError, "warmup_epochs must be >= 0"),
        ({"label_smoothing": 1.5}, ValueError, r"label_smoothing must be in \[0, 1\)"),
        (
            {"loss": "categorical_crossentropy", "label_smoothing": 0.1},
            ValueError,
            "label_smoothing applies to the default loss only",
        ),
        ({"early_stopping_patience": 0}, ValueError, "early_stopping_patience must"),
        ({"class_weight": "sometimes"}, ValueError, "class_weight must be None"),
        ({"class_weight": {0: -1.0}}, ValueError, r"class_weight\[0\] must be >= 0"),
        ({"callbacks": [object()]}, TypeError, "keras.callbacks.Callback"),
        ({"verbose": 3}, ValueError, "verbose must be 0, 1 or 2"),
        ({"steps_per_execution": 0}, ValueError, "steps_per_execution must be"),
    ],
)
def test_trainer_argument_checks(kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        Trainer(tiny_cnn(), **kwargs)


def test_model_argument_checks(digits) -> None:
    with pytest.raises(TypeError, match=r"model must be a keras\.Model or a callable"):
        Trainer("cifar_cnn")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"model factory must return a keras\.Model"):
        Trainer(lambda: 3, deterministic=False)  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match="data must be a kerasimgcls ImageDataset"):
        make_trainer().fit(digits.train, epochs=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="split must be a kerasimgcls Split"):
        make_trainer().evaluate(digits)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="call fit"):
        make_trainer().save("x.keras")


def test_corrupt_checkpoint_is_a_clear_error(digits, tmp_path: Path) -> None:
    make_trainer(run_dir=tmp_path).fit(digits, epochs=1)
    (tmp_path / "checkpoints" / "last.npz").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read the checkpoint"):
        make_trainer(run_dir=tmp_path).fit(digits, epochs=1)


def test_predict_and_evaluate_check_images(digits) -> None:
    trainer = make_trainer()
    with pytest.raises(TypeError, match="images must be uint8"):
        trainer.predict(digits.test.images.astype(np.float32))
    with pytest.raises(ValueError, match="to match the model's input"):
        trainer.predict(np.zeros((2, 9, 9, 1), np.uint8))
    wrong = kic.Split(np.zeros((3, 9, 9, 1), np.uint8), np.zeros(3, np.int64))
    with pytest.raises(ValueError, match=r"shape \(9, 9, 1\) but the model expects"):
        trainer.evaluate(wrong)


def test_seed_everything_checks_and_repeats() -> None:
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        kic.seed_everything(-3, deterministic=False)
    with pytest.raises(TypeError, match="seed must be an integer"):
        kic.seed_everything("0", deterministic=False)  # type: ignore[arg-type]
    kic.seed_everything(5, deterministic=False)
    first = (np.random.rand(), keras.random.uniform((2,)).numpy().tolist())
    kic.seed_everything(5, deterministic=False)
    assert (np.random.rand(), keras.random.uniform((2,)).numpy().tolist()) == first


def test_history_to_dataframe_without_pandas(monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "pandas", None)
    with pytest.raises(ImportError, match="needs pandas"):
        History([{"epoch": 1, "loss": 1.0}]).to_dataframe()
