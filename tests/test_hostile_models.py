"""Crafted model files: class names a foreign ``.keras`` may carry (issue 15).

A model file can come from anywhere, so the class names inside it are checked before
they are printed or indexed: one printable name per output.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

from kerasimgcls import (
    InputPreprocessing,
    build_cifar_cnn,
    export_model,
    get_class_names,
    predict_proba,
)
from kerasimgcls.cli import main


def _model_with_names(names: list[str], path: Path) -> Path:
    """Save a 2-output model whose preprocessing layer carries ``names`` as given."""
    core = build_cifar_cnn(input_shape=(8, 8, 3), num_classes=2)
    inputs = keras.Input((8, 8, 3), dtype="uint8")
    outputs = core(InputPreprocessing(names, name="preprocessing")(inputs))
    keras.Model(inputs, outputs, name="foreign").save(path)
    return path


def _image(tmp_path: Path) -> Path:
    file = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(file)
    return file


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["only-one"], "carries 1 class names for 2 outputs"),
        (["a", "b", "c"], "carries 3 class names for 2 outputs"),
        (["cat", "\x1b[2Jdog"], "holds control characters"),
    ],
)
def test_hostile_foreign_class_names_are_one_cli_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], names: list[str], message: str
) -> None:
    model = _model_with_names(names, tmp_path / "foreign.keras")
    code = main(["predict", str(model), str(_image(tmp_path))])
    error = capsys.readouterr().err
    assert code == 2
    assert message in error
    assert "Traceback" not in error and "\x1b" not in error
    assert len(error.strip().splitlines()) == 1


def test_hostile_get_class_names_checks_what_it_returns() -> None:
    model = build_cifar_cnn(input_shape=(8, 8, 1), num_classes=2)
    assert get_class_names(export_model(model, ["no", "yes"])) == ("no", "yes")
    inputs = keras.Input((8, 8, 1), dtype="uint8")
    wrong = keras.Model(inputs, model(InputPreprocessing(["x"])(inputs)))
    with pytest.raises(ValueError, match="carries 1 class names for 2 outputs"):
        get_class_names(wrong)


def test_hostile_predict_proba_on_zero_images_returns_zero_rows() -> None:
    model = build_cifar_cnn(input_shape=(8, 8, 1), num_classes=3)
    probabilities = predict_proba(model, np.zeros((0, 8, 8, 1), np.uint8))
    assert probabilities.shape == (0, 3) and probabilities.dtype == np.float32
