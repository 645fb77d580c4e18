"""The callback state protocol, the one configuration and the resume check.

A user callback with ``state_dict``/``load_state_dict`` and Keras' own
``EarlyStopping`` survive a SIGKILL (fresh processes); a changed model argument is
refused on resume; ``TrainingConfig`` round-trips through ``run.json`` and makes
the ``train`` flags; ``--validation-split 0`` trains without validation.
"""

from __future__ import annotations

import argparse
import dataclasses
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
from kerasimgcls.cli import main

SCRIPT = textwrap.dedent(
    """
    import json, os, sys, time
    import keras
    import numpy as np
    import kerasimgcls as kic

    run_dir, out = sys.argv[1], sys.argv[2]
    pause_epoch = int(os.environ.get("PAUSE_IN_EPOCH", "0"))

    class Counter(keras.callbacks.Callback):
        # Counts batches and sums their losses: only a restored state adds up.
        def __init__(self):
            super().__init__()
            self.batches, self.total = 0, 0.0
        def on_train_batch_end(self, batch, logs=None):
            self.batches += 1
            self.total += float(logs["loss"])
        def state_dict(self):
            return {"batches": self.batches, "total": self.total,
                    "last": np.array([self.total], np.float64)}
        def load_state_dict(self, state):
            self.batches, self.total = state["batches"], state["total"]
            assert state["last"][0] == self.total

    class Pause(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch + 1
        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == pause_epoch and batch == 3:
                open(out + ".paused", "w").close()
                time.sleep(120)

    def build():
        inputs = keras.Input((8, 8, 1))
        x = kic.conv_block(inputs, 8, pool_size=2, name="b1")
        outputs = kic.dense_head(x, 10, units=(), dropout=0.2, name="head")
        return keras.Model(inputs, outputs)

    data = kic.load_digits(seed=0)
    # Shifted validation labels: val_loss rises after epoch 1, so Keras' early
    # stopping (patience 2) stops after epoch 3, the epoch the killed run dies in.
    wrong = kic.Split(data.validation.images, (data.validation.labels + 1) % 10)
    data = kic.ImageDataset(data.train, wrong, None, data.class_names)
    counter = Counter()
    stopping = keras.callbacks.EarlyStopping(patience=2, restore_best_weights=True)
    callbacks = [counter, stopping] + ([Pause()] if pause_epoch else [])
    trainer = kic.Trainer(build, seed=0, run_dir=run_dir, verbose=0,
                          learning_rate=3e-3, precise_batch_norm=False,
                          callbacks=callbacks)
    history = trainer.fit(data, epochs=6, batch_size=64)
    np.savez(out, *[v.numpy() for v in trainer.model.variables])
    with open(out + ".json", "w") as handle:
        json.dump({"batches": counter.batches, "total": counter.total,
                   "stopped_epoch": stopping.stopped_epoch,
                   "best_epoch": stopping.best_epoch, "epochs": len(history)},
                  handle)
    """
)


def _start(script: Path, run_dir: Path, out: Path, **env: str):  # type: ignore[no-untyped-def]
    single_thread = {
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "OMP_NUM_THREADS": "1",
        "TF_NUM_INTRAOP_THREADS": "1",
        "TF_NUM_INTEROP_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",
    }
    return subprocess.Popen(
        [sys.executable, str(script), str(run_dir), str(out)],
        env={**os.environ, **single_thread, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(process) -> None:  # type: ignore[no-untyped-def]
    output, _ = process.communicate(timeout=240)
    assert process.returncode == 0, output[-3000:]


@pytest.mark.slow
def test_stateful_user_callbacks_survive_sigkill(tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    whole, killed = tmp_path / "whole.npz", tmp_path / "killed.npz"
    uninterrupted = _start(script, tmp_path / "run_whole", whole)
    victim = _start(script, tmp_path / "run_killed", killed, PAUSE_IN_EPOCH="3")
    paused = Path(str(killed) + ".paused")
    deadline = time.monotonic() + 240
    while not paused.exists():
        assert victim.poll() is None, victim.communicate()[0]
        assert time.monotonic() < deadline, "the run never reached epoch 3"
        time.sleep(0.2)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)
    _finish(uninterrupted)
    history = json.loads((tmp_path / "run_killed" / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2]
    _finish(_start(script, tmp_path / "run_killed", killed))
    expected = json.loads(Path(str(whole) + ".json").read_text())
    resumed = json.loads(Path(str(killed) + ".json").read_text())
    # The counter went on from the checkpoint: the same batches and the same sum
    # of losses (bit for bit) as the uninterrupted run's.
    assert resumed == expected
    assert expected["batches"] == expected["epochs"] * 21
    # Keras' EarlyStopping kept its patience count through the kill: it stopped
    # at the same epoch and restored the same best weights.
    assert expected["stopped_epoch"] >= 2 and expected["epochs"] < 6
    with np.load(whole) as first, np.load(killed) as second:
        for key in first.files:
            np.testing.assert_array_equal(first[key], second[key])


def test_keras_early_stopping_state_round_trips() -> None:
    import keras

    from kerasimgcls.training._state import get_state, pack, set_state, unpack

    stopping = keras.callbacks.EarlyStopping(patience=3, restore_best_weights=True)
    stopping.on_train_begin()
    stopping.wait, stopping.best, stopping.best_epoch = 2, 0.5, 4
    stopping.best_weights = [np.arange(3.0), np.ones((2, 2), np.float32)]
    arrays: list[np.ndarray] = []
    document = json.loads(json.dumps(pack(get_state(stopping), arrays)))
    fresh = keras.callbacks.EarlyStopping(patience=3, restore_best_weights=True)
    fresh.on_train_begin()
    set_state(fresh, unpack(document, arrays))
    assert (fresh.wait, fresh.best, fresh.best_epoch) == (2, 0.5, 4)
    for kept, expected in zip(fresh.best_weights, stopping.best_weights, strict=True):
        np.testing.assert_array_equal(kept, expected)


FAST = ["--dataset", "digits", "--epochs", "1", "--no-deterministic", "--quiet"]


def test_resume_with_a_changed_model_argument_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = str(tmp_path / "run")
    argv = ["train", *FAST, "--no-evaluate", "--run-dir", run_dir]
    assert main([*argv, "--model-arg", "dropout=0.1"]) == 0
    before = (tmp_path / "run" / "checkpoints" / "last.npz").read_bytes()
    capsys.readouterr()
    assert main([*argv, "--model-arg", "dropout=0.9"]) == 2
    error = capsys.readouterr().err
    assert "holds a checkpoint of a different run; model_kwargs" in error
    assert "'dropout': 0.1" in error and "'dropout': 0.9" in error
    assert (tmp_path / "run" / "checkpoints" / "last.npz").read_bytes() == before


def test_config_round_trips_through_run_json(digits, tmp_path: Path) -> None:
    config = dataclasses.replace(
        kic.TrainingConfig(),
        epochs=1,
        seed=3,
        learning_rate=0.002,
        class_weight={0: 2.0},
        augment={"flip": True, "translate": 1},
        deterministic=False,
    )
    trainer = kic.Trainer(
        lambda: kic.build_cifar_cnn(input_shape=(8, 8, 1), num_classes=10),
        config=config,
        run_dir=tmp_path,
        verbose=0,
    )
    trainer.fit(digits)
    recorded = json.loads((tmp_path / "run.json").read_text())["config"]
    assert kic.TrainingConfig.from_dict(recorded) == config == trainer.config
    assert recorded["class_weight"] == {"0": 2.0}
    # Keyword arguments override the config's fields.
    again = kic.Trainer(
        lambda: kic.build_cifar_cnn(input_shape=(8, 8, 1), num_classes=10),
        config=config,
        seed=4,
        verbose=0,
    )
    assert again.config == dataclasses.replace(config, seed=4)
    with pytest.raises(TypeError, match="unknown settings \\['sead'\\]"):
        kic.Trainer(kic.build_cifar_cnn(input_shape=(8, 8, 1)), sead=1)


def test_train_flags_are_the_config_fields() -> None:
    from kerasimgcls.cli._train import add_config_arguments, config_overrides

    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    dests = {action.dest for action in parser._actions}
    helped = {
        field.name
        for field in dataclasses.fields(kic.TrainingConfig)
        if "help" in field.metadata
    }
    assert helped <= dests and {"learning_rate", "seed", "deterministic"} <= helped
    args = parser.parse_args(
        ["--learning-rate", "0.01", "--no-precise-batch-norm", "--early-stopping", "3"]
    )
    assert config_overrides(args) == {
        "learning_rate": 0.01,
        "precise_batch_norm": False,
        "early_stopping_patience": 3,
    }
    recipe = kic.get_recipe("digits")
    merged = dataclasses.replace(recipe, **config_overrides(args))
    assert (merged.learning_rate, merged.epochs) == (0.01, recipe.epochs)


def test_validation_split_zero_trains_without_validation(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    argv = ["train", *FAST, "--validation-split", "0", "--run-dir", str(run_dir)]
    assert main([*argv, "--early-stopping", "2"]) == 2
    error = capsys.readouterr().err
    assert "--early-stopping choose" in error and "no validation split" in error
    assert main([*argv, "--recipe", "folder"]) == 0
    out = capsys.readouterr().out
    assert "no validation split: the recipe's early stopping" in out
    run = json.loads((run_dir / "run.json").read_text())
    assert run["data"]["validation_split"] == 0
    assert run["data"]["sizes"].get("validation", 0) == 0
    assert run["config"]["restore_best_weights"] is False
    assert "val_loss" not in json.loads((run_dir / "history.json").read_text())[0]
