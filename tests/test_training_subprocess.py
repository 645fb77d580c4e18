"""Reproducibility and exact resume, in fresh processes (op determinism is global).

One script trains a tiny conv net (with dropout and batch normalisation, a cosine
schedule, augmentation, early-stopping state, the best epoch's weights kept and
precise batch norm before every validation, so every kind of state matters) on the
digits and saves its final weights. Runs of it are compared bit for bit.
"""

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

pytestmark = pytest.mark.slow

SCRIPT = textwrap.dedent(
    """
    import json, os, sys, time
    import keras
    import numpy as np
    import kerasimgcls as kic

    run_dir, seed, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    pause_epoch = int(os.environ.get("PAUSE_IN_EPOCH", "0"))

    def build():
        inputs = keras.Input((8, 8, 1))
        x = kic.conv_block(inputs, 8, pool_size=2, batch_norm=True, name="b1")
        x = kic.conv_block(x, 16, pool_size=2, dropout=0.2, name="b2")
        outputs = kic.dense_head(x, 10, units=(16,), dropout=0.3, name="head")
        return keras.Model(inputs, outputs)

    class Pause(keras.callbacks.Callback):
        # Signals the test mid-epoch, then waits to be killed.
        def on_train_batch_end(self, batch, logs=None):
            if self.epoch == pause_epoch and batch == 3:
                open(out + ".paused", "w").close()
                time.sleep(120)
        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch + 1

    data = kic.load_digits(seed=0)
    # Shifted validation labels: val_loss rises after epoch 1, so early stopping
    # (patience 2) stops after epoch 3, the epoch the killed run dies in, and
    # restores epoch 1's weights: both need its state to survive the kill.
    wrong = kic.Split(data.validation.images, (data.validation.labels + 1) % 10)
    data = kic.ImageDataset(data.train, wrong, data.test, data.class_names)
    trainer = kic.Trainer(
        build, seed=seed, run_dir=run_dir, verbose=0, schedule="cosine",
        learning_rate=3e-3, warmup_epochs=1, early_stopping_patience=2,
        restore_best_weights=True, precise_batch_norm=True,
        callbacks=[Pause()] if pause_epoch else [],
    )
    augment = kic.Augmentation(flip=False, translate=1, cutout=2)
    history = trainer.fit(data, epochs=4, batch_size=64, augment=augment)
    np.savez(out, *[v.numpy() for v in trainer.model.variables])
    rows = [{k: v for k, v in r.items() if k != "epoch_time"} for r in history.rows]
    with open(out + ".json", "w") as handle:
        json.dump(rows, handle)
    """
)


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "TF_CPP_MIN_LOG_LEVEL": "3",
            "OMP_NUM_THREADS": "1",
            "TF_NUM_INTRAOP_THREADS": "1",
            "TF_NUM_INTEROP_THREADS": "1",
            "CUDA_VISIBLE_DEVICES": "",
        }
    )
    env.update(extra)
    return env


def _start(script: Path, run_dir: Path, seed: int, out: Path, **env: str):  # type: ignore[no-untyped-def]
    return subprocess.Popen(
        [sys.executable, str(script), str(run_dir), str(seed), str(out)],
        env=_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _finish(process, timeout: float = 240) -> None:  # type: ignore[no-untyped-def]
    output, _ = process.communicate(timeout=timeout)
    assert process.returncode == 0, output[-3000:]


def _weights(path: Path) -> list[np.ndarray]:
    with np.load(path) as archive:
        return [archive[f"arr_{i}"] for i in range(len(archive.files))]


def _rows(out: Path) -> list[dict]:
    return json.loads(Path(str(out) + ".json").read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory):  # type: ignore[no-untyped-def]
    """Run, concurrently: seed 0, seed 0 again, seed 1, and seed 0 killed mid-epoch 3."""
    root = tmp_path_factory.mktemp("subprocess_runs")
    script = root / "train.py"
    script.write_text(SCRIPT)
    outs = {name: root / f"{name}.npz" for name in ("a", "b", "c", "killed")}
    processes = {
        "a": _start(script, root / "run_a", 0, outs["a"]),
        "b": _start(script, root / "run_b", 0, outs["b"]),
        "c": _start(script, root / "run_c", 1, outs["c"]),
        "killed": _start(
            script, root / "run_killed", 0, outs["killed"], PAUSE_IN_EPOCH="3"
        ),
    }
    paused = Path(str(outs["killed"]) + ".paused")
    deadline = time.monotonic() + 240
    while not paused.exists():
        assert processes["killed"].poll() is None, processes["killed"].communicate()[0]
        assert time.monotonic() < deadline, "the run never reached epoch 3"
        time.sleep(0.2)
    processes["killed"].send_signal(signal.SIGKILL)
    processes["killed"].wait(timeout=30)
    for name in ("a", "b", "c"):
        _finish(processes[name])
    killed_dir = root / "run_killed"
    state = {
        "history_after_kill": json.loads((killed_dir / "history.json").read_text()),
        "run_json_after_kill": json.loads((killed_dir / "run.json").read_text()),
    }
    # Restart the same command: it must continue after epoch 2.
    _finish(_start(script, killed_dir, 0, outs["killed"]))
    return outs, root, state


def test_same_seed_gives_identical_history_and_weights(runs) -> None:  # type: ignore[no-untyped-def]
    outs, _, _ = runs
    assert _rows(outs["a"]) == _rows(outs["b"])
    for first, second in zip(_weights(outs["a"]), _weights(outs["b"]), strict=True):
        np.testing.assert_array_equal(first, second)


def test_different_seed_gives_a_different_run(runs) -> None:  # type: ignore[no-untyped-def]
    outs, _, _ = runs
    assert _rows(outs["a"]) != _rows(outs["c"])
    differs = [
        not np.array_equal(first, second)
        for first, second in zip(_weights(outs["a"]), _weights(outs["c"]), strict=True)
    ]
    assert any(differs)


def test_sigkilled_run_resumes_to_the_identical_result(runs) -> None:  # type: ignore[no-untyped-def]
    outs, root, state = runs
    # Killed during epoch 3: exactly two epochs were recorded.
    assert [row["epoch"] for row in state["history_after_kill"]] == [1, 2]
    assert state["run_json_after_kill"]["status"] == "running"
    assert _rows(outs["killed"]) == _rows(outs["a"])
    for first, second in zip(
        _weights(outs["a"]), _weights(outs["killed"]), strict=True
    ):
        np.testing.assert_array_equal(first, second)
    run = json.loads((root / "run_killed" / "run.json").read_text())
    assert run["status"] == "finished"
    assert [resume["epoch"] for resume in run["resumes"]] == [2]
    history = json.loads((root / "run_killed" / "history.json").read_text())
    # Early stopping fired after the resume (the kill lands in epoch 3), at the
    # same epoch as in the uninterrupted run, with the same bits as run a's.
    uninterrupted = json.loads((root / "run_a" / "run.json").read_text())["final"]
    stopped = uninterrupted["stopped_early_at_epoch"]
    assert stopped is not None and stopped >= 3
    assert run["final"]["stopped_early_at_epoch"] == stopped
    assert [row["epoch"] for row in history] == list(range(1, stopped + 1))
    assert run["final"]["weights_sha256"] == uninterrupted["weights_sha256"]
    # Precise batch norm ran in both (the statistics are part of the weights
    # compared above), and both kept the same epoch.
    assert run["final"]["precise_batch_norm"]["layers"]
    assert run["final"]["precise_batch_norm"] == uninterrupted["precise_batch_norm"]
    assert run["final"]["kept_epoch"] == uninterrupted["kept_epoch"]
