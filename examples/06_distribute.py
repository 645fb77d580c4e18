"""Distribute training with a tf.distribute strategy: same code, more devices.

What it shows
    ``Trainer(strategy=...)`` takes any ``tf.distribute.Strategy``. This script
    trains the reference network on the digits three ways and compares them:

    - ``single``: one device, no strategy;
    - ``mirrored``: ``MirroredStrategy`` over two devices of one machine. This
      machine has no GPUs, so the CPU is split into two *logical* devices; on a
      machine with GPUs, ``MirroredStrategy()`` with no arguments uses all of them
      and nothing else changes;
    - ``multi-worker`` (``--multi-worker``): ``MultiWorkerMirroredStrategy`` with two
      worker processes talking over loopback, configured through ``TF_CONFIG`` as
      they would be on two machines. Only the chief (worker 0) writes the run
      directory. (TensorFlow reports this strategy's type as
      ``CollectiveAllReduceStrategy``.)

    ``batch_size`` is the *global* batch (32 here): with two replicas each gets half
    of it per step, so the runs see the same data and end close to each other (not
    bit-identical: the gradients are summed in a different order).

How long it takes here (2 CPU cores)
    One to two minutes with the defaults (10 epochs each; both reach about 96%
    test accuracy); ``--multi-worker`` adds one to two minutes. With ``--fast``,
    30-60 seconds (one epoch; most of it TensorFlow starting and tracing). Two
    replicas on the same two cores are not faster than one: the point is that the
    same code scales out.

What it prints
    For each mode: the strategy, the number of replicas, the test accuracy, the
    training time, and where the run was written.

Run it
    python examples/06_distribute.py
    python examples/06_distribute.py --multi-worker --run-dir /tmp/dist
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from _scratch import scratch_folder

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

SEED = 0


def split_cpu(devices: int) -> None:
    """Make the CPU look like ``devices`` logical devices (before TF starts)."""
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(devices)]
    )


def train(
    mode: str, run_dir: Path | None, epochs: int, fast: bool
) -> dict[str, object]:
    import tensorflow as tf

    import kerasimgcls as kic

    if mode == "mirrored":
        strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    elif mode == "multi-worker":
        # Reads TF_CONFIG (set by the parent process below) to find its peers.
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    else:
        strategy = None

    data = kic.load_digits(validation_split=0.1, seed=SEED)
    if fast:
        train_split = data.train.subset(slice(0, 256))
        data = kic.ImageDataset(
            train_split, data.validation, data.test, data.class_names, name="digits"
        )
    start = time.perf_counter()
    trainer = kic.Trainer(
        # A factory: the Trainer builds the model inside strategy.scope(), seeded.
        # Momentum 0.9: batch norm's statistics settle on a dataset this small.
        lambda: kic.build_cifar_cnn(
            input_shape=data.input_shape, num_classes=10, batch_norm_momentum=0.9
        ),
        seed=SEED,
        strategy=strategy,
        run_dir=run_dir,
        verbose=0,
    )
    trainer.fit(data, epochs=epochs, batch_size=32)  # the global batch
    seconds = time.perf_counter() - start
    scores = trainer.evaluate(data.test)
    return {
        "mode": mode,
        "strategy": "none" if strategy is None else type(strategy).__name__,
        "replicas": 1 if strategy is None else strategy.num_replicas_in_sync,
        "test_accuracy": round(float(scores["accuracy"]), 4),
        "seconds": round(seconds, 1),
        "run_dir": None if run_dir is None else str(run_dir),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_modes(
    modes: str, base: Path, args: argparse.Namespace
) -> list[dict[str, object]]:
    """Run modes in fresh processes (logical devices and TF_CONFIG are per process)."""
    command = [sys.executable, __file__, "--child", modes, "--epochs", str(args.epochs)]
    if args.fast:
        command.append("--fast")
    multi_worker = modes == "multi-worker"
    workers = 2 if multi_worker else 1
    ports = [free_port() for _ in range(workers)]
    processes = []
    for index in range(workers):
        env = dict(os.environ)
        if multi_worker:
            cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
            task = {"type": "worker", "index": index}
            env["TF_CONFIG"] = json.dumps({"cluster": cluster, "task": task})
        # Every worker gets the same run_dir; only the chief writes to it.
        child = [*command, "--out", str(base)]
        processes.append(
            subprocess.Popen(child, env=env, stdout=subprocess.PIPE, text=True)
        )
    outputs = [process.communicate()[0] for process in processes]
    if any(process.returncode for process in processes):
        raise SystemExit(
            f"{modes}: a process failed (exit codes {[p.returncode for p in processes]})"
        )
    # The chief's (first process's) JSON lines, one per mode.
    lines = outputs[0].strip().splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fast", action="store_true", help="tiny run for tests")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument(
        "--multi-worker",
        action="store_true",
        help="also run two local workers with MultiWorkerMirroredStrategy",
    )
    parser.add_argument("--run-dir", default=None, help="parent folder of the runs")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.epochs is None:
        args.epochs = 1 if args.fast else 10

    if args.child is not None:  # a training process: one or more modes
        modes = args.child.split(",")
        if "mirrored" in modes:
            split_cpu(2)  # before TensorFlow touches the CPU
        for mode in modes:
            result = train(mode, Path(args.out) / mode, args.epochs, args.fast)
            print(json.dumps(result), flush=True)
        return 0

    base = scratch_folder(args.run_dir, prefix="kerasimgcls-dist-", fast=args.fast)
    modes = ["single", "mirrored"] + (["multi-worker"] if args.multi_worker else [])
    for mode in modes:
        if (base / mode).exists() and any((base / mode).iterdir()):
            parser.error(f"{base / mode} is not empty; choose a new --run-dir")
    print(f"{'mode':<13} {'strategy':<28} {'replicas':>8} {'test acc':>9} {'time':>7}")
    # One process for the single-device and mirrored runs, two for multi-worker.
    groups = ["single,mirrored"] + (["multi-worker"] if args.multi_worker else [])
    for group in groups:
        for result in run_modes(group, base, args):
            print(
                f"{result['mode']:<13} {result['strategy']:<28} {result['replicas']:>8} "
                f"{result['test_accuracy']:>9.4f} {result['seconds']:>6.1f}s",
                flush=True,
            )
    print(f"runs written under {base}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
