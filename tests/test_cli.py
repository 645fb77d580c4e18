"""The command line's front end: exit codes, --version, summary, python -m kerasimgcls."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

import kerasimgcls as kic
from kerasimgcls.cli import _train, main
from kerasimgcls.training import TrainingDivergedError


def _failing_train(error: BaseException):  # type: ignore[no-untyped-def]
    def run(args):  # type: ignore[no-untyped-def]
        raise error

    return run


def test_a_diverged_run_exits_with_1(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    error = TrainingDivergedError("the training loss became NaN at epoch 2, step 1")
    monkeypatch.setattr(_train, "run", _failing_train(error))
    assert main(["train", "--dataset", "digits"]) == 1
    assert "became NaN" in capsys.readouterr().err


def test_ctrl_c_exits_with_130(monkeypatch, capsys) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(_train, "run", _failing_train(KeyboardInterrupt()))
    assert main(["train", "--dataset", "digits"]) == 130
    assert capsys.readouterr().err == "kerasimgcls train: interrupted\n"


def test_version(capsys) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out == f"kerasimgcls {kic.__version__}\n"


def test_summary_prints_the_registered_models_layers(capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["summary", "cifar_cnn", "--input-shape", "8x8x1"]) == 0
    printed = capsys.readouterr().out
    model = kic.get_model("cifar_cnn", input_shape=(8, 8, 1), num_classes=10)
    assert f"Total params: {model.count_params():,}" in printed
    assert "block1_conv" in printed
    assert main(["summary", "nope"]) == 2
    assert "Unknown model 'nope'" in capsys.readouterr().err
    # A parse error is a usage error like any other: one line, exit code 2.
    assert main(["summary", "--input-shape", "8,8"]) == 2
    assert "expected HEIGHT,WIDTH,CHANNELS" in capsys.readouterr().err


@pytest.mark.slow  # two fresh interpreters importing TensorFlow
def test_python_dash_m_runs_the_same_program(tmp_path) -> None:  # type: ignore[no-untyped-def]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    version = subprocess.run(
        [sys.executable, "-m", "kerasimgcls", "--version"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert (version.returncode, version.stdout) == (
        0,
        f"kerasimgcls {kic.__version__}\n",
    )
    bad = subprocess.run(
        [sys.executable, "-m", "kerasimgcls", "evaluate", str(tmp_path / "none")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert bad.returncode == 2
    assert (
        bad.stderr.strip().splitlines()[-1].startswith("kerasimgcls evaluate: error:")
    )
    assert "Traceback" not in bad.stderr
