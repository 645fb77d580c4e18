from __future__ import annotations

import sys
from pathlib import Path

import keras
import numpy as np
import pytest

import kerasimgcls as kic


def test_exported_model_round_trips_with_class_names_in_safe_mode(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = kic.build_cifar_cnn(input_shape=(8, 8, 1), num_classes=3)
    exported = kic.export_model(model, ["a", "b", "c"])
    path = tmp_path / "model.keras"
    exported.save(path)
    loaded = kic.load_model(tmp_path)  # a directory holding model.keras works too
    assert kic.get_class_names(loaded) == ("a", "b", "c")
    images = np.random.default_rng(0).integers(0, 256, (5, 8, 8, 1), dtype=np.uint8)
    expected = kic.predict_proba(model, images)  # raw model: scaled for it
    np.testing.assert_allclose(kic.predict_proba(loaded, images), expected, atol=1e-6)


def test_export_model_rejects_wrong_number_of_class_names() -> None:
    model = kic.build_cifar_cnn(input_shape=(8, 8, 1), num_classes=3)
    with pytest.raises(ValueError, match="one name per model output"):
        kic.export_model(model, ["a", "b"])


def test_predict_proba_rejects_wrong_dtype_and_shape() -> None:
    model = kic.build_cifar_cnn(input_shape=(8, 8, 1), num_classes=3)
    with pytest.raises(TypeError, match="uint8"):
        kic.predict_proba(model, np.zeros((1, 8, 8, 1), np.float32))
    with pytest.raises(ValueError, match="input"):
        kic.predict_proba(model, np.zeros((1, 9, 8, 1), np.uint8))


def test_load_model_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FileNotFoundError, match="path"):
        kic.load_model(tmp_path / "missing.keras")
    other = tmp_path / "weights.h5"
    other.write_bytes(b"")
    with pytest.raises(ValueError, match=r"\.keras"):
        kic.load_model(other)


def test_predict_proba_flip_tta_averages_the_mirror_image() -> None:
    model = kic.build_cifar_cnn(input_shape=(8, 8, 3), num_classes=4, compile=False)
    images = np.random.default_rng(0).integers(0, 256, (5, 8, 8, 3), np.uint8)
    plain = kic.predict_proba(model, images).astype(np.float64)
    mirrored = kic.predict_proba(model, images[:, :, ::-1]).astype(np.float64)
    tta = kic.predict_proba(model, images, tta="flip", batch_size=2)
    # The softmax of the two views' mean logits (airbench's TTA).
    mean = (np.log(plain) + np.log(mirrored)) / 2
    expected = np.exp(mean) / np.exp(mean).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(tta, expected, rtol=1e-5, atol=1e-6)
    assert not np.allclose(plain, mirrored)  # the test can tell them apart
    with pytest.raises(ValueError, match="tta must be one of"):
        kic.predict_proba(model, images, tta="crop")


# ------------------------------------------------------------------ safe mode
EVIL_MODULE = """
import pathlib, keras
pathlib.Path({marker!r}).write_text("module code ran")

class EvilLayer(keras.layers.Layer):
    def call(self, inputs):
        return inputs
"""


def _hostile_model_files(tmp_path: Path, monkeypatch) -> tuple[dict[str, Path], Path]:  # type: ignore[no-untyped-def]
    """Two .keras files that run code when opened unsafely, and the marker they write.

    ``lambda``: a Lambda layer whose (pickled) function writes the marker when the
    model is rebuilt. ``custom``: a layer class from a module that writes the
    marker when imported (the module stays on sys.path, as a planted file would).
    """
    marker = tmp_path / "code_ran"
    files = {}
    inputs = keras.Input((8, 8, 1))
    # The marker's path is a constant of the function's code (no closure to save).
    function = eval(  # a lambda whose bytecode names the marker file
        f"lambda x: (__import__('pathlib').Path({str(marker)!r}).touch(), x)[1]"
    )
    lam = keras.layers.Lambda(function)
    model = keras.Model(
        inputs,
        keras.layers.Dense(3, activation="softmax")(
            keras.layers.Flatten()(lam(inputs))
        ),
    )
    files["lambda"] = tmp_path / "lambda" / "model.keras"
    files["lambda"].parent.mkdir()
    model.save(files["lambda"])
    (tmp_path / "evil_payload.py").write_text(EVIL_MODULE.format(marker=str(marker)))
    monkeypatch.syspath_prepend(str(tmp_path))
    import evil_payload  # type: ignore[import-not-found]

    layer = evil_payload.EvilLayer()
    model = keras.Model(
        inputs,
        keras.layers.Dense(3, activation="softmax")(
            keras.layers.Flatten()(layer(inputs))
        ),
    )
    files["custom"] = tmp_path / "custom" / "model.keras"
    files["custom"].parent.mkdir()
    model.save(files["custom"])
    monkeypatch.delitem(sys.modules, "evil_payload")
    marker.unlink()
    for path in files.values():
        (path.parent / "run.json").write_text('{"data": {"dataset": "digits"}}')
    return files, marker


def test_load_model_refuses_code_in_the_file(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    files, marker = _hostile_model_files(tmp_path, monkeypatch)
    with pytest.raises(ValueError, match="Lambda"):
        kic.load_model(files["lambda"])
    with pytest.raises(ValueError, match="EvilLayer"):
        kic.load_model(files["custom"].parent)
    assert not marker.exists()
    assert "evil_payload" not in sys.modules  # the planted module was never imported


@pytest.mark.parametrize("kind", ["lambda", "custom"])
@pytest.mark.parametrize("command", ["predict", "evaluate", "explain"])
def test_cli_refuses_code_in_the_model_file(
    kind: str, command: str, tmp_path: Path, monkeypatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    from PIL import Image

    from kerasimgcls.cli import main

    files, marker = _hostile_model_files(tmp_path, monkeypatch)
    image = tmp_path / "image.png"
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(image)
    argv = [command, str(files[kind].parent)]
    if command != "evaluate":
        argv.append(str(image))
    assert main(argv) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"kerasimgcls {command}: error: ")
    assert ("Lambda" if kind == "lambda" else "EvilLayer") in error
    assert not marker.exists()
    assert "evil_payload" not in sys.modules
