"""FineTune: a frozen backbone while the head warms up, then the backbone's top."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import kerasimgcls as kic


def _build():  # type: ignore[no-untyped-def]
    """A small backbone (conv + batch norm, 0-255 input) and the transfer head."""
    import keras

    inputs = keras.Input((16, 16, 3))
    x = keras.layers.Rescaling(1.0 / 255.0, name="scale")(inputs)
    x = kic.conv_block(x, 8, batch_norm=True, name="b1")
    x = kic.conv_block(x, 8, pool_size=None, batch_norm=True, name="b2")
    x = kic.conv_block(x, 16, pool_size=None, batch_norm=True, name="b3")
    body = keras.Model(inputs, x, name="body")
    return kic.build_transfer_model(
        body, input_shape=(16, 16, 3), num_classes=3, weights=None, head_units=(8,)
    )


def _data():  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    labels = np.arange(96) % 3
    # Each class has its own brightness: a signal the model can learn.
    base = (labels * 80 + 20)[:, None, None, None]
    images = np.clip(base + rng.integers(-20, 20, (96, 16, 16, 3)), 0, 255)
    return kic.from_arrays(
        images.astype(np.uint8), labels, validation_split=0.25, seed=0
    )


class _Snapshots:
    """Backbone variables (weights and batch-norm statistics) after each epoch."""

    def __init__(self) -> None:
        import keras

        self.values: dict[int, dict[str, np.ndarray]] = {}
        outer = self

        class Record(keras.callbacks.Callback):  # type: ignore[misc]
            def on_train_begin(self, logs=None):  # type: ignore[no-untyped-def]
                outer.values[0] = outer.read(self.model)

            def on_epoch_end(self, epoch, logs=None):  # type: ignore[no-untyped-def]
                outer.values[epoch + 1] = outer.read(self.model)

        self.callback = Record()

    @staticmethod
    def read(model) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
        backbone = model.get_layer("backbone")
        return {v.path: np.array(v.numpy()) for v in backbone.variables}

    def changed(self, first: int, second: int) -> set[str]:
        before, after = self.values[first], self.values[second]
        return {
            path for path in before if not np.array_equal(before[path], after[path])
        }


@pytest.fixture(scope="module")
def two_phase_run():  # type: ignore[no-untyped-def]
    snapshots = _Snapshots()
    fine_tune = kic.FineTune(
        warmup_epochs=2, unfreeze_layers=2, learning_rate_factor=0.1
    )
    trainer = kic.Trainer(
        _build,
        seed=0,
        verbose=0,
        learning_rate=1e-2,
        callbacks=[fine_tune, snapshots.callback],
    )
    history = trainer.fit(_data(), epochs=4, batch_size=16)
    return trainer, history, snapshots, fine_tune


def test_fine_tune_phase_one_leaves_every_backbone_variable_unchanged(
    two_phase_run,
) -> None:  # type: ignore[no-untyped-def]
    _, history, snapshots, _ = two_phase_run
    # Weights and batch-norm moving statistics alike (precise batch norm ran too).
    assert snapshots.changed(0, 1) == set()
    assert snapshots.changed(0, 2) == set()
    assert len(snapshots.values[0]) > 0
    assert history.rows[1]["loss"] < history.rows[0]["loss"]  # the head learned


def test_fine_tune_phase_two_changes_only_the_unfrozen_layers(two_phase_run) -> None:  # type: ignore[no-untyped-def]
    trainer, _, snapshots, fine_tune = two_phase_run
    # The last two layers: b3_conv learns, b3_bn (batch norm) stays frozen.
    assert snapshots.changed(2, 4) == {"b3_conv/kernel", "b3_conv/bias"}
    backbone = trainer.model.get_layer("backbone")
    assert fine_tune.phase == 2
    assert [layer.name for layer in backbone.layers if layer.trainable] == ["b3_conv"]


def test_fine_tune_lowers_the_learning_rate_in_phase_two(two_phase_run) -> None:  # type: ignore[no-untyped-def]
    _, history, _, _ = two_phase_run
    rates = [row["learning_rate"] for row in history.rows]
    np.testing.assert_allclose(rates, [1e-2, 1e-2, 1e-3, 1e-3], rtol=1e-6)


def test_fine_tune_multiplies_a_schedule(two_phase_run) -> None:  # type: ignore[no-untyped-def]
    trainer = kic.Trainer(
        _build,
        seed=0,
        verbose=0,
        learning_rate=1e-2,
        schedule="cosine",
        callbacks=[kic.FineTune(warmup_epochs=1, learning_rate_factor=0.5)],
    )
    history = trainer.fit(_data(), epochs=2, batch_size=16)
    plain = kic.Trainer(
        _build, seed=0, verbose=0, learning_rate=1e-2, schedule="cosine"
    )
    reference = plain.fit(_data(), epochs=2, batch_size=16)
    first, second = (row["learning_rate"] for row in history.rows)
    assert first == pytest.approx(reference.rows[0]["learning_rate"])
    assert second == pytest.approx(0.5 * reference.rows[1]["learning_rate"])


def test_fine_tune_zero_layers_is_a_linear_probe() -> None:
    snapshots = _Snapshots()
    trainer = kic.Trainer(
        _build,
        seed=0,
        verbose=0,
        callbacks=[
            kic.FineTune(warmup_epochs=1, unfreeze_layers=0),
            snapshots.callback,
        ],
    )
    trainer.fit(_data(), epochs=2, batch_size=16)
    assert snapshots.changed(0, 2) == set()


def test_fine_tune_state_dict_round_trips_and_refuses_another_configuration() -> None:
    fine_tune = kic.FineTune(warmup_epochs=2, unfreeze_layers=5)
    state = json.loads(json.dumps(fine_tune.state_dict()))  # JSON-ready
    again = kic.FineTune(warmup_epochs=2, unfreeze_layers=5)
    again.load_state_dict(state)
    assert again.state_dict() == state
    with pytest.raises(ValueError, match="FineTune configuration"):
        kic.FineTune(warmup_epochs=3, unfreeze_layers=5).load_state_dict(state)
    assert [fine_tune.phase_of(epoch) for epoch in range(4)] == [1, 1, 2, 2]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"warmup_epochs": -1}, ValueError, "warmup_epochs"),
        ({"warmup_epochs": 1.5}, TypeError, "warmup_epochs"),
        ({"unfreeze_layers": -2}, ValueError, "unfreeze_layers"),
        ({"learning_rate_factor": 0.0}, ValueError, "learning_rate_factor"),
        ({"learning_rate_factor": 2.0}, ValueError, "learning_rate_factor"),
        ({"backbone": ""}, ValueError, "backbone"),
        ({"train_batch_norm": 1}, TypeError, "train_batch_norm"),
    ],
)
def test_fine_tune_rejects_bad_arguments(kwargs, error, match) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=match):
        kic.FineTune(**kwargs)


def test_fine_tune_names_a_missing_backbone_layer() -> None:
    trainer = kic.Trainer(
        lambda: kic.build_cifar_cnn(input_shape=(16, 16, 3), num_classes=3),
        verbose=0,
        callbacks=[kic.FineTune()],
    )
    with pytest.raises(ValueError, match="has no layer backbone='backbone'"):
        trainer.fit(_data(), epochs=1, batch_size=16)


def test_fine_tune_refuses_an_optimizer_built_without_the_backbone() -> None:
    model = _build()
    model.get_layer("backbone").trainable = False
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    model.optimizer.build(model.trainable_variables)  # the head's variables only
    data = _data()
    images = data.train.images.astype("float32")
    with pytest.raises(RuntimeError, match="optimizer was built without"):
        model.fit(
            images,
            np.eye(3)[data.train.labels],
            epochs=1,
            verbose=0,
            callbacks=[kic.FineTune()],
        )


def test_fine_tune_unfreezes_a_backbone_frozen_before_fit() -> None:
    model = _build()
    model.get_layer("backbone").trainable = False  # keras.io's way; FineTune decides
    snapshots = _Snapshots()
    trainer = kic.Trainer(
        model,
        verbose=0,
        callbacks=[
            kic.FineTune(warmup_epochs=1, unfreeze_layers=2),
            snapshots.callback,
        ],
    )
    trainer.fit(_data(), epochs=2, batch_size=16)
    assert snapshots.changed(0, 1) == set()
    assert snapshots.changed(1, 2) == {"b3_conv/kernel", "b3_conv/bias"}


def test_fine_tune_keeps_the_optimizer_variables_across_phases(two_phase_run) -> None:  # type: ignore[no-untyped-def]
    # What a checkpoint stores must fit a fresh optimizer on resume.
    trainer, _, _, _ = two_phase_run
    fresh = _build()
    fresh.compile(optimizer="adam", loss="categorical_crossentropy")
    fresh.optimizer.build(fresh.trainable_variables)
    shapes = [tuple(v.shape) for v in trainer.model.optimizer.variables]
    assert shapes == [tuple(v.shape) for v in fresh.optimizer.variables]


# ------------------------------------------------------------ exact resume
SCRIPT = textwrap.dedent(
    """
    import os, sys, time
    import keras
    import numpy as np
    import kerasimgcls as kic
    sys.path.insert(0, os.environ["TEST_DIR"])
    from test_fine_tune import _build, _data

    run_dir, out = sys.argv[1], sys.argv[2]
    pause_epoch = int(os.environ.get("PAUSE_IN_EPOCH", "0"))

    class Pause(keras.callbacks.Callback):
        # Signals the test mid-epoch, then waits to be killed.
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch + 1
        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == pause_epoch and batch == 2:
                open(out + ".paused", "w").close()
                time.sleep(120)

    callbacks = [kic.FineTune(warmup_epochs=1, unfreeze_layers=4)]
    if pause_epoch:
        callbacks.append(Pause())
    trainer = kic.Trainer(
        _build, seed=0, run_dir=run_dir, verbose=0, learning_rate=1e-2,
        schedule="cosine", callbacks=callbacks,
    )
    trainer.fit(_data(), epochs=4, batch_size=16,
                augment=kic.Augmentation(flip=True, translate=1))
    np.savez(out, *[v.numpy() for v in trainer.model.variables])
    """
)


def _start(script: Path, run_dir: Path, out: Path, **env: str):  # type: ignore[no-untyped-def]
    environment = {
        **os.environ,
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "OMP_NUM_THREADS": "1",
        "TF_NUM_INTRAOP_THREADS": "1",
        "TF_NUM_INTEROP_THREADS": "1",
        "TEST_DIR": str(Path(__file__).parent),
        **env,
    }
    return subprocess.Popen(
        [sys.executable, str(script), str(run_dir), str(out)],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )


def _finish(process) -> None:  # type: ignore[no-untyped-def]
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output[-3000:]


@pytest.mark.slow
def test_fine_tune_sigkill_in_phase_two_resumes_bit_identically(tmp_path) -> None:  # type: ignore[no-untyped-def]
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    whole, killed = tmp_path / "whole.npz", tmp_path / "killed.npz"
    uninterrupted = _start(script, tmp_path / "run_whole", whole)
    process = _start(script, tmp_path / "run_killed", killed, PAUSE_IN_EPOCH="3")
    paused = Path(str(killed) + ".paused")
    deadline = time.monotonic() + 240
    while not paused.exists():
        assert process.poll() is None, process.communicate()[0][-3000:]
        assert time.monotonic() < deadline, "the run never reached epoch 3"
        time.sleep(0.2)
    process.send_signal(signal.SIGKILL)  # in epoch 3: phase 2, after the change
    process.wait(timeout=30)
    history = json.loads((tmp_path / "run_killed" / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2]
    _finish(_start(script, tmp_path / "run_killed", killed))
    _finish(uninterrupted)
    with np.load(whole) as first, np.load(killed) as second:
        assert first.files == second.files
        for key in first.files:
            np.testing.assert_array_equal(first[key], second[key])

    def rows(name: str) -> list[dict]:
        path = tmp_path / name / "history.json"
        return [
            {k: v for k, v in row.items() if k != "epoch_time"}
            for row in json.loads(path.read_text())
        ]

    assert rows("run_killed") == rows("run_whole")
    assert len(rows("run_whole")) == 4
