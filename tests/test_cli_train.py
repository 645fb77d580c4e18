"""The train, evaluate and predict commands through ``main([...])``."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kerasimgcls.cli import main

FAST = ["--dataset", "digits", "--epochs", "2", "--no-deterministic", "--quiet"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    directory = tmp_path_factory.mktemp("cli") / "run"
    argv = ["train", *FAST, "--run-dir", str(directory), "--augment", "translate=1"]
    assert main(argv) == 0
    return directory


@pytest.mark.slow
def test_train_writes_the_run_directory(run_dir: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    for name in (
        "run.json",
        "history.csv",
        "history.json",
        "curves.png",
        "model.keras",
        "metrics.json",
    ):
        assert (run_dir / name).is_file(), name
    run = json.loads((run_dir / "run.json").read_text())
    assert run["command"][:2] == ["kerasimgcls", "train"]
    assert "--run-dir" in run["command"]
    assert run["data"]["dataset"] == "digits"
    assert run["data"]["validation_split"] == 0.1
    assert run["recipe"]["name"] == "digits"  # the default recipe for the digits
    assert run["recipe"]["model_kwargs"] == {"batch_norm_momentum": 0.9}
    assert run["config"]["epochs"] == 2
    assert run["config"]["deterministic"] is False
    assert run["config"]["augment"]["translate"] == 1
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert set(metrics) >= {"validation", "test"}


@pytest.mark.slow
def test_train_again_finds_the_finished_run(run_dir: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    before = (run_dir / "history.json").read_text()
    argv = ["train", *FAST, "--run-dir", str(run_dir), "--augment", "translate=1"]
    assert main([*argv, "--no-evaluate"]) == 0
    assert (run_dir / "history.json").read_text() == before
    assert f"run directory: {run_dir}" in capsys.readouterr().out


@pytest.mark.slow
def test_evaluate_reproduces_the_training_time_metrics(run_dir: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    trained = json.loads((run_dir / "metrics.json").read_text())["test"]
    (run_dir / "metrics.json").unlink()
    assert main(["evaluate", str(run_dir)]) == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())["test"]
    assert metrics["num_images"] == trained["num_images"] == 359
    # The saved model, scored again from the run directory, gives what the Trainer
    # measured right after training (same weights, same test images).
    assert metrics["accuracy"] == pytest.approx(trained["accuracy"], abs=0.5 / 359)
    assert metrics["loss"] == pytest.approx(trained["loss"], rel=1e-4)
    assert f"accuracy {metrics['accuracy']:.4f}" in capsys.readouterr().out


@pytest.mark.slow
def test_evaluate_with_flip_tta(run_dir: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert (
        main(["evaluate", str(run_dir), "--split", "validation", "--tta", "flip"]) == 0
    )
    metrics = json.loads((run_dir / "metrics.json").read_text())
    tta = metrics["validation_tta_flip"]
    assert tta["num_images"] == 143
    assert "validation_tta_flip (143 images)" in capsys.readouterr().out
    # The scores are those of the mean of each image's and its mirror's prediction.
    from kerasimgcls import load_model, predict_proba
    from kerasimgcls.cli._common import load_run

    _, _, data = load_run(run_dir)
    model = load_model(run_dir)
    images, labels = data.validation.images, data.validation.labels
    plain = predict_proba(model, images)
    mirrored = predict_proba(model, np.ascontiguousarray(images[:, :, ::-1]))
    mean = _logit_mean(plain, mirrored)  # airbench's TTA: logits averaged
    picked = np.clip(mean[np.arange(len(labels)), labels], 1e-7, 1.0)
    assert tta["loss"] == pytest.approx(float(-np.mean(np.log(picked))), rel=1e-5)
    assert tta["accuracy"] == pytest.approx(np.mean(mean.argmax(1) == labels))
    # Digits are not mirror-symmetric: without the flip the loss would differ.
    picked = np.clip(plain[np.arange(len(labels)), labels], 1e-7, 1.0)
    assert abs(tta["loss"] - float(-np.mean(np.log(picked)))) > 1e-3


def _logit_mean(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The softmax of the mean of two softmax outputs' logits."""
    mean = (np.log(first.astype(np.float64)) + np.log(second.astype(np.float64))) / 2
    exp = np.exp(mean - mean.max(axis=1, keepdims=True))
    return exp / exp.sum(axis=1, keepdims=True)


@pytest.mark.slow
def test_trainer_evaluate_with_tta_matches_predictions(digits, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import kerasimgcls as kic

    trainer = kic.Trainer(
        lambda: kic.build_cifar_cnn(input_shape=(8, 8, 1), compile=False),
        seed=0,
        verbose=0,
        run_dir=tmp_path,
    )
    trainer.fit(digits, epochs=1)
    scores = trainer.evaluate(digits.test, tta="flip")
    probabilities = trainer.model.predict(
        np.concatenate([digits.test.images, digits.test.images[:, :, ::-1]]) / 255.0,
        verbose=0,
    )
    n = len(digits.test)
    mean = _logit_mean(probabilities[:n], probabilities[n:])
    expected = float(np.mean(mean.argmax(axis=1) == digits.test.labels))
    assert scores["accuracy"] == pytest.approx(expected, abs=1 / n)
    assert set(scores) == {"accuracy", "loss"}
    assert "test_tta_flip" in json.loads((tmp_path / "metrics.json").read_text())


@pytest.mark.slow
def test_predict_prints_top_k(run_dir: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from kerasimgcls import load_digits

    digits = load_digits(seed=0)
    paths = []
    for index in range(2):
        path = tmp_path / f"digit{index}.png"
        # A larger RGB image: predict converts channels and resizes to 8x8.
        pixels = np.repeat(digits.test.images[index], 3, axis=2)
        Image.fromarray(pixels).resize((32, 32)).save(path)
        paths.append(str(path))
    capsys.readouterr()
    assert main(["predict", str(run_dir), *paths, "--top-k", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2
    assert lines[0].startswith(f"{paths[0]}: ")
    assert len(lines[0].split(", ")) == 2
    assert main(["predict", str(run_dir), paths[0], "--json", "-k", "20"]) == 0
    result = json.loads(capsys.readouterr().out)
    probabilities = [item["probability"] for item in result[0]["top_k"]]
    assert len(probabilities) == 10  # k is capped at the number of classes
    assert probabilities == sorted(probabilities, reverse=True)
    assert sum(probabilities) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["evaluate", "no/such/run"], "RUN_DIR does not exist"),
        (["predict", "no/such/run", "x.png"], "RUN_DIR does not exist"),
        (["train", "--recipe", "nope"], "Unknown recipe 'nope'"),
        (["train", "--model", "nope", "--epochs", "1"], "Unknown model 'nope'"),
        (["train", "--augment", "=3"], "--augment: cannot parse"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(
    argv, message, capsys, tmp_path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert message in error
    assert error.count("\n") == 1 and "Traceback" not in error


@pytest.mark.slow
def test_non_empty_run_dir_and_bad_image(run_dir: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("x")
    assert main(["train", *FAST, "--run-dir", str(occupied)]) == 2
    assert "holds no checkpoint" in capsys.readouterr().err
    text = tmp_path / "fake.png"
    text.write_text("not an image")
    # An undecodable file is named, and the exit code says something failed.
    assert main(["predict", str(run_dir), str(text)]) == 1
    assert f"cannot read {text}: " in capsys.readouterr().err
    assert main(["predict", str(run_dir), str(text), "--top-k", "0"]) == 2
    assert "--top-k must be a positive integer" in capsys.readouterr().err
    assert main(["predict", str(run_dir), str(text), "--output", "p.txt"]) == 2
    assert "--output must end in .csv or .json" in capsys.readouterr().err


def test_evaluate_needs_a_run(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "has no run.json" in capsys.readouterr().err
    (tmp_path / "run.json").write_text('{"data": {"dataset": "digits"}}')
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "has no model.keras" in capsys.readouterr().err
    (tmp_path / "run.json").write_text("{broken")
    assert main(["evaluate", str(tmp_path)]) == 2
    assert "is not valid JSON" in capsys.readouterr().err


@pytest.mark.slow
def test_load_run_refuses_changed_data(run_dir: Path, tmp_path: Path) -> None:
    import shutil

    from kerasimgcls.cli._common import load_run

    model, config, data = load_run(run_dir)
    assert data.fingerprint == config["data"]["fingerprint"]
    assert model.input_shape[1:] == (8, 8, 1)
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    config["data"]["split_seed"] = 99  # another split: other data than trained on
    (copy / "run.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="fingerprint mismatch"):
        load_run(copy)


def test_help_of_each_command(capsys) -> None:  # type: ignore[no-untyped-def]
    for command in ("train", "evaluate", "predict"):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        assert f"kerasimgcls {command}" in capsys.readouterr().out


def test_train_computes_the_whitening_layer_from_training_images() -> None:
    import numpy as np

    from kerasimgcls import from_arrays
    from kerasimgcls.cli._train import _data_dependent_kwargs

    rng = np.random.default_rng(0)
    data = from_arrays(
        rng.integers(0, 256, (40, 16, 16, 3), np.uint8), np.arange(40) % 2
    )
    extra = _data_dependent_kwargs("airbench_cnn", data)
    assert extra["whitening_images"].shape == (len(data.train), 16, 16, 3)
    assert np.isin(
        extra["whitening_images"][:, 0, 0, 0], data.train.images[:, 0, 0, 0]
    ).all()
    assert _data_dependent_kwargs("cifar_cnn", data) == {}
