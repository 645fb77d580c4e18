"""Resume an interrupted run: kill training mid-run, start it again, lose nothing.

What it shows
    A ``Trainer`` with a ``run_dir`` writes a checkpoint after every epoch (model
    and optimizer variables, dropout RNG state, history, early-stopping state).
    Running the *same* code again continues from the last completed epoch. This
    script proves it the hard way:

    1. it starts a training run in a child process and kills it with SIGKILL (no
       chance to clean up) right after epoch ``--kill-after``;
    2. it runs the very same command again, which resumes and finishes the run;
    3. it trains the same run uninterrupted in a second directory and compares the
       two: same history (but for the epoch times) and bit-identical final
       weights.

    The training code is ``train()`` below: nothing in it is special to resuming.

How long it takes here (2 CPU cores)
    About a minute with the defaults (10 epochs on the digits, three processes),
    and about as long with ``--fast``: most of it is TensorFlow starting three
    times.

What it prints
    What each step did (exit code of the killed process, epochs found on disk, the
    epoch the second run resumed at), both histories side by side, and
    ``identical history: True`` / ``identical weights: True``. It exits with
    status 1 if the resumed run differs from the uninterrupted one.

Run it
    python examples/05_resume.py
    python examples/05_resume.py --fast --run-dir /tmp/resume-demo
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
from _scratch import scratch_folder

SEED = 0


def train(run_dir: str, epochs: int, fast: bool, kill_after: int | None) -> None:
    """The ordinary training code; run twice with the same arguments, it resumes."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import keras

    import kerasimgcls as kic

    data = kic.load_digits(validation_split=0.1, seed=SEED)
    if fast:
        data = kic.ImageDataset(
            data.train.subset(slice(0, 256)),
            data.validation,
            data.test,
            data.class_names,
            name="digits-small",
        )

    callbacks = []
    if kill_after is not None:
        # Simulate a crash: the process dies at once, as with a power cut or an
        # out-of-memory kill, as the epoch after `kill_after` begins. The Trainer's
        # checkpoint of epoch `kill_after` was written at its end (the checkpoint
        # runs after every other callback, so it saves the state they reached).
        class KillAfter(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch: int, logs: object = None) -> None:
                if epoch == kill_after:  # 0-based: epoch kill_after + 1 begins
                    os.kill(os.getpid(), signal.SIGKILL)

        callbacks.append(KillAfter())

    trainer = kic.Trainer(
        lambda: kic.build_cifar_cnn(input_shape=data.input_shape, num_classes=10),
        seed=SEED,
        run_dir=run_dir,
        callbacks=callbacks,
        verbose=0,
    )
    trainer.fit(data, epochs=epochs, batch_size=64)


def read_history(run_dir: Path) -> list[dict[str, str]]:
    path = run_dir / "history.csv"
    if not path.is_file():
        return []
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def read_weights(run_dir: Path) -> dict[str, np.ndarray]:
    # The checkpoint is a plain .npz (no pickle): every model and optimizer
    # variable, plus a JSON state document (with epoch times) that we skip.
    with np.load(run_dir / "checkpoints" / "last.npz", allow_pickle=False) as npz:
        return {key: npz[key] for key in npz.files if key != "__state__"}


def run_child(run_dir: Path, args: argparse.Namespace, kill_after: int | None) -> int:
    command = [
        sys.executable,
        __file__,
        "--child",
        str(run_dir),
        "--epochs",
        str(args.epochs),
    ]
    if args.fast:
        command.append("--fast")
    if kill_after is not None:
        command += ["--kill-after", str(kill_after)]
    return subprocess.run(command, check=False).returncode


def without_times(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if k != "epoch_time"} for row in rows]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--fast", action="store_true", help="tiny run for tests")
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument(
        "--kill-after", type=int, default=None, help="epoch to die after"
    )
    parser.add_argument(
        "--run-dir", default=None, help="parent folder for the two runs"
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.epochs is None:
        args.epochs = 3 if args.fast else 10

    if args.child is not None:  # the training process itself
        train(args.child, args.epochs, args.fast, args.kill_after)
        return 0

    kill_after = args.kill_after or max(1, args.epochs // 2)
    if not 1 <= kill_after < args.epochs:
        parser.error(f"--kill-after must be in [1, {args.epochs}); got {kill_after}")
    base = scratch_folder(args.run_dir, prefix="kerasimgcls-resume-", fast=args.fast)
    interrupted, uninterrupted = base / "interrupted", base / "uninterrupted"
    for path in (interrupted, uninterrupted):
        if path.exists() and any(path.iterdir()):
            parser.error(f"{path} is not empty; choose a new --run-dir")

    print(
        f"1. training {args.epochs} epochs in {interrupted}, killed after epoch {kill_after}"
    )
    code = run_child(interrupted, args, kill_after)
    done = read_history(interrupted)
    print(f"   exit code {code} (-9 is SIGKILL); epochs on disk: {len(done)}")

    print("2. the same command again")
    code = run_child(interrupted, args, None)
    resumes = json.loads((interrupted / "run.json").read_text()).get("resumes", [])
    at = ", ".join(str(entry["epoch"] + 1) for entry in resumes) or "-"
    print(
        f"   exit code {code}; resumed at epoch {at}; epochs on disk: "
        f"{len(read_history(interrupted))}"
    )

    print(f"3. the same run without interruption, in {uninterrupted}")
    run_child(uninterrupted, args, None)

    resumed_rows = read_history(interrupted)
    reference_rows = read_history(uninterrupted)
    print(f"\n{'epoch':>5} {'loss (resumed)':>16} {'loss (uninterrupted)':>21}")
    for a, b in zip(resumed_rows, reference_rows, strict=False):
        print(f"{a['epoch']:>5} {float(a['loss']):>16.6f} {float(b['loss']):>21.6f}")

    same_history = without_times(resumed_rows) == without_times(reference_rows)
    first, second = read_weights(interrupted), read_weights(uninterrupted)
    same_weights = first.keys() == second.keys() and all(
        np.array_equal(first[key], second[key]) for key in first
    )
    print(f"\nidentical history: {same_history}")
    print(f"identical weights: {same_weights} ({len(first)} arrays compared)")
    return 0 if same_history and same_weights else 1


if __name__ == "__main__":
    sys.exit(main())
