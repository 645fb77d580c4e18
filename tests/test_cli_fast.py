"""The command line answers at once and quietly, in its own words.

``--help``/``--version`` import no TensorFlow, no TensorFlow start-up line reaches the
output, runs are named by their settings, finished runs are reused, ``--init-from``
and ``--tensorboard`` work, and errors name flags.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import kerasimgcls
from kerasimgcls.cli import _COMMANDS, UsageError, build_parser, in_cli_words, main
from kerasimgcls.cli._quiet import is_tensorflow_noise

REPO_ROOT = Path(__file__).resolve().parents[1]
FAST = ["--dataset", "digits", "--epochs", "1", "--no-deterministic", "--quiet"]
# What TensorFlow prints at start-up, spelled independently of the CLI's filter.
STARTUP_WORDS = ("oneDNN", "cuda", "cpu_feature_guard", "absl", "cuInit", "XNNPACK")


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src"), **env}
    environment.pop("TF_CPP_MIN_LOG_LEVEL", None)  # the CLI must quieten by itself
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=600,
    )


def test_help_and_version_of_every_command_import_no_tensorflow() -> None:
    completed = _python(
        f"""
        import sys
        from kerasimgcls.cli import main
        for argv in [["--help"], ["--version"]] + [[c, "--help"] for c in {list(_COMMANDS)}]:
            try:
                main(argv)
            except SystemExit as exit:
                assert exit.code == 0, (argv, exit.code)
        import kerasimgcls
        kerasimgcls.__version__, kerasimgcls.__all__
        heavy = sorted(m for m in ("tensorflow", "keras", "matplotlib") if m in sys.modules)
        print("heavy:", heavy)
        """
    )
    assert completed.returncode == 0, completed.stderr
    assert "heavy: []" in completed.stdout
    for command in _COMMANDS:
        assert f"kerasimgcls {command}" in completed.stdout, command


def test_lazy_package_attributes_import_on_use() -> None:
    assert set(dir(kerasimgcls)) >= set(kerasimgcls.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        kerasimgcls.nope  # noqa: B018


def test_cli_lists_agree_with_the_library() -> None:
    from kerasimgcls.cli import _export, _train
    from kerasimgcls.serving._export import SERVING_FORMATS
    from kerasimgcls.training import SCHEDULES

    assert _train._SCHEDULES == SCHEDULES
    assert _export._FORMATS == SERVING_FORMATS
    # And the parser takes exactly those: each library name, and nothing else.
    parser = build_parser(["train"])
    for schedule in SCHEDULES:
        assert parser.parse_args(["train", "--schedule", schedule]).schedule == schedule
    with pytest.raises((SystemExit, UsageError)):
        parser.parse_args(["train", "--schedule", "step"])


def test_tensorflow_noise_is_recognised_and_nothing_else() -> None:
    noise = [
        "WARNING: All log messages before absl::InitializeLog() is called are "
        "written to STDERR",
        "I0000 00:00:1796161068.042730    6903 port.cc:153] oneDNN custom operations",
        "E0000 00:00:1796161082.262966    6903 cuda_platform.cc:52] failed call to "
        "cuInit: INTERNAL",
        "To enable the following instructions: AVX2 FMA, in other operations, "
        "rebuild TensorFlow with the appropriate compiler flags.",
        "2024-05-01 10:00:00.123456: I tensorflow/core/util/port.cc:113] oneDNN",
    ]
    kept = [
        "kerasimgcls train: error: --epochs must be a positive integer",
        "Epoch 1/15",
        "data: digits: 10 classes, images (8, 8, 1), train=1295",
    ]
    assert all(is_tensorflow_noise(line) for line in noise)
    assert not any(is_tensorflow_noise(line) for line in kept)


@pytest.mark.slow
def test_a_training_command_prints_no_tensorflow_startup_line(tmp_path: Path) -> None:
    completed = _python(
        f"""
        import sys
        from kerasimgcls.cli import main
        sys.exit(main({["train", *FAST, "--no-evaluate", "--run-dir", str(tmp_path / "run")]}))
        """
    )
    assert completed.returncode == 0, completed.stderr
    output = completed.stdout + completed.stderr
    noisy = [
        line for line in output.splitlines() if any(w in line for w in STARTUP_WORDS)
    ]
    assert not noisy, noisy
    lines = completed.stdout.splitlines()
    assert lines[0].startswith("data: digits: 10 classes")  # before training starts
    assert lines[1].startswith("model cifar_cnn; recipe digits; training a new run")
    assert any(line.startswith("epoch 1:") for line in lines)


def test_default_run_dirs_tell_settings_apart_and_finished_runs_are_reused(
    tmp_path: Path, monkeypatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    # --tensorboard needs the [tensorboard] extra, which [test] does not install.
    pytest.importorskip("tensorboard", reason="needs kerasimgcls[tensorboard]")
    monkeypatch.chdir(tmp_path)
    first = Path("runs/digits-cifar_cnn-seed0-epochs1-nondet")
    assert main(["train", *FAST, "--no-evaluate", "--tensorboard"]) == 0
    out = capsys.readouterr().out
    assert f"training a new run in {first}" in out
    assert f"run directory: {first}" in out
    events = {path.parent.name for path in (first / "tensorboard").rglob("*tfevents*")}
    assert events == {"train", "validation"}
    assert "epoch_learning_rate" in _tensorboard_tags(first / "tensorboard" / "train")

    assert main(["train", *FAST, "--no-evaluate"]) == 0
    assert f"{first} already finished, reusing it" in capsys.readouterr().out

    argv = ["train", *FAST, "--no-evaluate", "--learning-rate", "0.0005"]
    assert main([*argv, "--init-from", str(first)]) == 0
    out = capsys.readouterr().out
    second = Path(
        "runs/digits-cifar_cnn-seed0-epochs1-lr0.0005-nondet-from" + first.name
    )
    assert f"training a new run in {second}" in out
    assert "initialised from" in out and "head_predictions" in out
    run = json.loads((second / "run.json").read_text())
    assert run["init_from"]["layers"][-1] == "head_predictions"
    history = json.loads((first / "history.json").read_text())
    history_b = json.loads((second / "history.json").read_text())
    # Starting from trained weights, the first epoch already does better.
    assert history_b[0]["val_loss"] < history[0]["val_loss"]


def _tensorboard_tags(folder: Path) -> set[str]:
    import tensorflow as tf
    from tensorflow.core.util import event_pb2

    tags = set()
    for path in folder.glob("*tfevents*"):
        for record in tf.data.TFRecordDataset(str(path)):
            event = event_pb2.Event.FromString(record.numpy())
            tags.update(value.tag for value in event.summary.value)
    return tags


def test_init_from_refuses_a_missing_run_and_a_diverged_run_exits_1(
    tmp_path: Path, monkeypatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    assert main(["train", *FAST, "--init-from", "no/such/run"]) == 2
    assert "--init-from" in capsys.readouterr().err

    from kerasimgcls.training import Trainer, TrainingDivergedError

    def diverge(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        raise TrainingDivergedError("the training loss became NaN at epoch 1")

    monkeypatch.setattr(Trainer, "fit", diverge)
    assert main(["train", *FAST]) == 1
    assert "became NaN" in capsys.readouterr().err


def test_errors_name_flags_not_python_arguments(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    folder = tmp_path / "pets"
    for label, size in (("cat", 8), ("dog", 12)):
        (folder / label).mkdir(parents=True)
        for index in range(2):
            pixels = np.full((size, size, 3), 40 * index, np.uint8)
            Image.fromarray(pixels).save(folder / label / f"{index}.png")
    # The loader's advice on mixed sizes (train itself chooses a size for them).
    message = "images differ in size. Pass image_size=(height, width) to resize"
    assert in_cli_words(message) == (
        "images differ in size. Pass --image-size HEIGHT,WIDTH to resize"
    )
    (folder / "cat" / "broken.png").write_bytes(b"not a png")
    argv = ["train", "--data-dir", str(folder), "--image-size", "8", "--epochs", "1"]
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert "--skip-bad-images" in error and "on_error" not in error
    assert in_cli_words(
        "choose a new run_dir, or pass overwrite=True (--overwrite)"
    ) == ("choose a new --run-dir, or pass --overwrite")


def test_summary_fits_80_columns(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["summary", "cifar_cnn"]) == 0
    out = capsys.readouterr().out
    assert "Param #" in out and "393,962" in out
    assert max(len(line) for line in out.splitlines()) <= 80
    assert main(["summary", "--list"]) == 0
    assert "cifar_cnn" in capsys.readouterr().out.split()
