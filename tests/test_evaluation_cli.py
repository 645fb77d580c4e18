"""The evaluate (report and pictures), explain and lr-find commands."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
from PIL import Image

import kerasimgcls as kic
from kerasimgcls.cli import main


def _assert_picture(path) -> None:
    assert path.is_file(), path
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.width > 200 and image.height > 150
        assert np.asarray(image.convert("L")).std() > 5


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    """A folder holding an exported digits model as model.keras."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1))
    x = kic.conv_block(inputs, 8, pool_size=None, name="block1")
    outputs = kic.dense_head(x, 10, units=(), pooling="avg", name="head")
    model = keras.Model(inputs, outputs)
    folder = tmp_path_factory.mktemp("run")
    names = [f"digit{i}" for i in range(10)]
    kic.export_model(model, names).save(folder / "model.keras")
    return folder


@pytest.fixture
def digit_files(tmp_path, digits):
    paths = []
    for index in range(2):
        path = tmp_path / f"digit_{index}.png"
        Image.fromarray(digits.test.images[index][..., 0]).resize((32, 32)).save(path)
        paths.append(path)
    return paths


def test_explain_writes_one_picture_per_image(model_dir, digit_files, capsys) -> None:
    code = main(["explain", str(model_dir), *map(str, digit_files)])
    assert code == 0
    for path in digit_files:
        _assert_picture(model_dir / "explain" / f"{path.stem}_gradcam.png")
    printed = capsys.readouterr().out
    assert printed.count("gradcam on block1_conv") == 2
    assert "digit" in printed


def test_explain_options(model_dir, digit_files, tmp_path, capsys) -> None:
    out = tmp_path / "cams"
    args = ["explain", str(model_dir / "model.keras"), str(digit_files[0])]
    options = ["--out", str(out), "--class", "digit3", "--method", "gradcam++"]
    assert main([*args, str(digit_files[0]), *options]) == 0
    assert sorted(p.name for p in out.iterdir()) == [
        "digit_0_2_gradcampp.png",
        "digit_0_gradcampp.png",
    ]
    assert "digit3 (p=" in capsys.readouterr().out
    assert main([*args, "--out", str(out), "--class", "7"]) == 0
    assert "digit7 (p=" in capsys.readouterr().out
    # Plain Grad-CAM writes its own file beside the Grad-CAM++ ones.
    assert (out / "digit_0_gradcam.png").is_file()


def test_explain_reports_bad_input(model_dir, digit_files, tmp_path, capsys) -> None:
    image = str(digit_files[0])
    assert main(["explain", str(model_dir), image, "--class", "cat"]) == 2
    assert "--class must be a class name or index" in capsys.readouterr().err
    assert main(["explain", str(model_dir), str(tmp_path / "missing.png")]) == 2
    assert "IMAGE does not exist" in capsys.readouterr().err
    assert main(["explain", str(tmp_path / "nowhere"), image]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["explain", str(model_dir), image, "--layer", "nope"]) == 2
    assert "layer_name 'nope' is not a layer" in capsys.readouterr().err


def test_lr_find_prints_and_plots_a_suggestion(tmp_path, capsys, monkeypatch) -> None:
    import kerasimgcls.analysis.lr_finder

    calls = []
    real = kerasimgcls.analysis.lr_finder.find_learning_rate

    def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append((kwargs, real(*args, **kwargs)))
        return calls[-1][1]

    monkeypatch.setattr(kerasimgcls.analysis.lr_finder, "find_learning_rate", spy)
    out = tmp_path / "lr.png"
    args = ["lr-find", "--dataset", "digits", "--num-steps", "12", "--out", str(out)]
    assert main([*args, "--batch-size", "32", "--max-lr", "0.1"]) == 0
    printed = capsys.readouterr().out
    # The flags reach the range test, and what it suggests is what is printed.
    (kwargs, result), *_ = calls
    assert (kwargs["num_steps"], kwargs["batch_size"]) == (12, 32)
    assert (kwargs["min_lr"], kwargs["max_lr"]) == (1e-6, 0.1)
    assert f"suggested learning rate: {result.suggestion:.2e}" in printed
    assert (
        f"lowest loss at learning rate {result.min_loss_learning_rate:.2e}" in printed
    )
    _assert_picture(out)
    assert main(["lr-find", "--min-lr", "1", "--max-lr", "0.1"]) == 2
    assert "--min-lr must be below --max-lr" in capsys.readouterr().err


@pytest.mark.slow
def test_evaluate_writes_the_report_and_pictures(tmp_path, capsys) -> None:
    run_dir = tmp_path / "digits_run"
    train = ["train", "--dataset", "digits", "--epochs", "1", "--quiet"]
    assert main([*train, "--run-dir", str(run_dir)]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run_dir)]) == 0
    printed = capsys.readouterr().out
    assert "precision" in printed and "top-5 accuracy" in printed
    report = json.loads((run_dir / "report.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert report["split"] == "test"
    assert report["num_samples"] == metrics["test"]["num_images"]
    assert report["accuracy"] == pytest.approx(metrics["test"]["accuracy"])
    assert report["class_names"] == [str(i) for i in range(10)]
    assert np.sum(report["confusion_matrix"]) == report["num_samples"]
    _assert_picture(run_dir / "confusion_matrix.png")
    _assert_picture(run_dir / "top_losses.png")
