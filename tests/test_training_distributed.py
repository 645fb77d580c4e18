"""``strategy=``: MirroredStrategy on two logical CPUs, MultiWorkerMirroredStrategy
with two local worker processes on loopback. Each in fresh subprocesses (device
configuration and ``TF_CONFIG`` are read once per process), with short timeouts.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

COMMON = textwrap.dedent(
    """
    import hashlib, json, os, sys
    import tensorflow as tf

    mode, run_dir, out = sys.argv[1], sys.argv[2], sys.argv[3]
    EPOCHS = 10
    if mode == "mirrored":
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2
        )
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    elif mode == "multiworker":
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    else:
        strategy = None

    import keras
    import kerasimgcls as kic

    def build():
        inputs = keras.Input((8, 8, 1))
        x = kic.conv_block(inputs, 8, pool_size=2, name="b1")
        x = kic.conv_block(x, 16, pool_size=2, dropout=0.1, name="b2")
        return keras.Model(inputs, kic.dense_head(x, 10, units=(), name="head"))

    def digest(model):
        return hashlib.sha256(b"".join(w.tobytes() for w in model.get_weights())).hexdigest()

    digests = {}

    class InterruptAfterEpoch4(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            if epoch == 3:
                digests["interrupted"] = digest(self.model)
                raise KeyboardInterrupt

    class RecordStart(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            digests["resumed"] = digest(self.model)

    data = kic.load_digits(seed=0)
    model = build() if mode == "mirrored" else build   # a ready model is cloned
    options = dict(seed=0, strategy=strategy, run_dir=run_dir, learning_rate=3e-3,
                   verbose=0)
    interrupted = None
    if mode == "mirrored":
        # Ctrl-C after epoch 4, then the same run again: it resumes under the strategy.
        trainer = kic.Trainer(model, callbacks=[InterruptAfterEpoch4()], **options)
        try:
            trainer.fit(data, epochs=EPOCHS, batch_size=64)
        except KeyboardInterrupt:
            with open(os.path.join(run_dir, "history.json")) as handle:
                interrupted = json.load(handle)
        model = build()
        options["callbacks"] = [RecordStart()]
    trainer = kic.Trainer(model, **options)
    history = trainer.fit(data, epochs=EPOCHS, batch_size=64)
    scores = trainer.evaluate(data.test)
    replicas = 1 if strategy is None else strategy.num_replicas_in_sync
    iterations = int(trainer.model.optimizer.iterations.numpy())
    with open(out, "w") as handle:
        json.dump({"rows": history.rows, "test": scores, "replicas": replicas,
                   "iterations": iterations, "interrupted": interrupted,
                   "digests": digests}, handle)
    """
)


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update({"TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": ""})
    env.pop("TF_CONFIG", None)
    env.update(extra)
    return env


def _spawn(script: Path, mode: str, run_dir: Path, out: Path, **env: str):  # type: ignore[no-untyped-def]
    return subprocess.Popen(
        [sys.executable, str(script), mode, str(run_dir), str(out)],
        env=_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _wait(process, timeout: float = 240) -> None:  # type: ignore[no-untyped-def]
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        pytest.fail(f"timed out:\n{output[-3000:]}")
    assert process.returncode == 0, output[-3000:]


def _without_time(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "epoch_time"} for row in rows]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def results(tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    """Run single-device, mirrored and two multi-worker processes, all at once."""
    root = tmp_path_factory.mktemp("distributed")
    script = root / "train.py"
    script.write_text(COMMON)
    ports = [_free_port(), _free_port()]
    cluster = {"worker": [f"localhost:{port}" for port in ports]}
    processes = [
        _spawn(script, "single", root / "run_single", root / "single.json"),
        _spawn(script, "mirrored", root / "run_mirrored", root / "mirrored.json"),
    ]
    for index in range(2):
        config = {"cluster": cluster, "task": {"type": "worker", "index": index}}
        processes.append(
            _spawn(
                script,
                "multiworker",
                root / f"run_worker{index}",
                root / f"worker{index}.json",
                TF_CONFIG=json.dumps(config),
            )
        )
    for process in processes:
        _wait(process, timeout=300)
    return root


def _load(root: Path, name: str) -> dict:  # type: ignore[type-arg]
    return json.loads((root / f"{name}.json").read_text())


def test_mirrored_strategy_on_two_logical_cpus(results: Path) -> None:
    single, mirrored = _load(results, "single"), _load(results, "mirrored")
    assert mirrored["replicas"] == 2
    assert [row["epoch"] for row in mirrored["rows"]] == list(range(1, 11))
    # Same global batch, same data order, trained to convergence: close to the
    # single-device run. (Not equal: replicas draw their own dropout masks and
    # the cross-replica sum is not bit-for-bit deterministic, so after only a
    # few epochs the two can sit ten points apart.)
    assert mirrored["test"]["accuracy"] > 0.85
    assert abs(mirrored["test"]["accuracy"] - single["test"]["accuracy"]) < 0.1
    run = json.loads((results / "run_mirrored" / "run.json").read_text())
    assert run["strategy"] == {"type": "MirroredStrategy", "replicas": 2}
    assert (results / "run_mirrored" / "model.keras").is_file()
    # batch_size is the global batch: two replicas take as many optimizer steps
    # (ceil(1295 / 64) = 21 per epoch) as one device, not twice as many or half.
    assert mirrored["iterations"] == single["iterations"] == 10 * 21


def test_resume_under_a_strategy(results: Path) -> None:
    mirrored = _load(results, "mirrored")
    # Interrupted after epoch 4, then resumed from its checkpoint under the same
    # MirroredStrategy: the recorded epochs are kept as they were.
    assert [row["epoch"] for row in mirrored["interrupted"]] == [1, 2, 3, 4]
    assert mirrored["rows"][:4] == mirrored["interrupted"]
    # ... and training went on from epoch 4's weights, bit for bit.
    digests = mirrored["digests"]
    assert digests["resumed"] == digests["interrupted"]
    run = json.loads((results / "run_mirrored" / "run.json").read_text())
    assert [resume["epoch"] for resume in run["resumes"]] == [4]
    assert run["status"] == "finished"


def test_multi_worker_two_local_processes(results: Path) -> None:
    single = _load(results, "single")
    chief, other = _load(results, "worker0"), _load(results, "worker1")
    assert chief["replicas"] == 2
    # One model, trained together: both workers log the same numbers.
    assert _without_time(chief["rows"]) == _without_time(other["rows"])
    assert abs(chief["test"]["accuracy"] - single["test"]["accuracy"]) < 0.1
    # Only the chief (worker 0) writes its run directory.
    assert (results / "run_worker0" / "run.json").is_file()
    assert (results / "run_worker0" / "checkpoints" / "last.npz").is_file()
    assert not (results / "run_worker1").exists()
