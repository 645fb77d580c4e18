"""Transfer models: keras.applications backbones, their weights, and the rest of the library."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import kerasimgcls as kic
from kerasimgcls.models.transfer import BACKBONES


def _pixels(count: int = 4, size: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(
        0, 256, (count, size, size, 3), np.uint8
    )


def _small(name: str = "mobilenet_v3_small", **kwargs):  # type: ignore[no-untyped-def]
    options = {"weights": None, "image_size": None, **kwargs}
    return kic.build_transfer_model(
        name, input_shape=(32, 32, 3), num_classes=3, **options
    )


@pytest.mark.parametrize("name", BACKBONES)
def test_every_registered_backbone_builds_and_takes_raw_pixels(name: str) -> None:
    assert name in kic.list_models()
    model = kic.get_model(
        name, input_shape=(32, 32, 3), num_classes=3, weights=None, image_size=None
    )
    assert model.inputs[0].dtype == "float32"
    assert tuple(model.input_shape) == (None, 32, 32, 3)
    assert tuple(model.output_shape) == (None, 3)
    assert model.get_layer("backbone").count_params() > 0
    decision = kic.resolve_input_scaling(model)
    assert decision.scaling == "raw", decision.reason
    probabilities = np.asarray(model(_pixels().astype("float32"), training=False))
    assert probabilities.shape == (4, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_build_transfer_model_resizes_small_images_up_only() -> None:
    auto = kic.build_transfer_model(
        "mobilenet_v3_small", input_shape=(32, 32, 3), num_classes=2, weights=None
    )
    resize = auto.get_layer("resize")
    assert (resize.height, resize.width) == (224, 224)
    assert tuple(auto.get_layer("backbone").input_shape) == (None, 224, 224, 3)
    chosen = _small(image_size=(48, 64))
    assert (chosen.get_layer("resize").height, chosen.get_layer("resize").width) == (
        48,
        64,
    )
    large = kic.build_transfer_model(
        "mobilenet_v3_small",
        input_shape=(96, 96, 3),
        num_classes=2,
        weights=None,
        image_size=64,
    )
    assert "resize" not in [layer.name for layer in large.layers]


def test_build_transfer_model_names_its_layers() -> None:
    model = _small(head_units=(16,))
    names = [layer.name for layer in model.layers]
    assert names[:2] == ["images", "backbone"]
    assert "head_avgpool" in names and names[-1] == "head_predictions"
    assert model.name == "mobilenet_v3_small"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"backbone": "resnet"}, ValueError, "Unknown backbone 'resnet'. Available"),
        ({"backbone": 3}, TypeError, "backbone must be"),
        ({"input_shape": (32, 32, 1)}, ValueError, "3 \\(RGB\\) channels"),
        ({"input_shape": (32, 32)}, ValueError, "input_shape must be"),
        (
            {"input_shape": (16, 16, 3), "image_size": None},
            ValueError,
            "at least 32x32",
        ),
        ({"image_size": "big"}, ValueError, "image_size must be"),
        ({"num_classes": 0}, ValueError, "num_classes"),
        ({"dropout": 1.5}, ValueError, "dropout"),
        ({"weights": "nowhere.weights.h5"}, FileNotFoundError, "weights does not"),
        ({"weights": 3}, TypeError, "weights must be"),
    ],
)
def test_build_transfer_model_rejects_bad_arguments(kwargs, error, match) -> None:  # type: ignore[no-untyped-def]
    options = {
        "backbone": "mobilenet_v3_small",
        "input_shape": (32, 32, 3),
        "num_classes": 3,
        "weights": None,
        **kwargs,
    }
    backbone = options.pop("backbone")
    with pytest.raises(error, match=match):
        kic.build_transfer_model(backbone, **options)


def test_build_transfer_model_rejects_a_weights_file_of_another_kind(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "weights.npz"
    path.write_bytes(b"not weights")
    with pytest.raises(ValueError, match=r"file ending in \.weights\.h5"):
        _small(weights=path)


def _backbone_weights(model) -> list[np.ndarray]:  # type: ignore[no-untyped-def]
    return [np.asarray(weight) for weight in model.get_layer("backbone").get_weights()]


def _assert_same(first: list[np.ndarray], second: list[np.ndarray]) -> None:
    assert len(first) == len(second)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("suffix", [".weights.h5", ".h5"])
def test_weights_from_a_local_backbone_file_are_loaded(tmp_path, suffix) -> None:  # type: ignore[no-untyped-def]
    import keras

    keras.utils.set_random_seed(1)
    source = _small()
    path = tmp_path / f"backbone{suffix}"
    if suffix == ".h5":  # the legacy format keras.applications' files are in
        import h5py
        from keras.src.legacy.saving import legacy_h5_format

        with h5py.File(path, "w") as handle:
            legacy_h5_format.save_weights_to_hdf5_group(
                handle, source.get_layer("backbone")
            )
    else:
        source.get_layer("backbone").save_weights(path)
    keras.utils.set_random_seed(2)
    fresh = _small()
    # Different seeds: the random weights differ before loading.
    assert not np.array_equal(_backbone_weights(fresh)[0], _backbone_weights(source)[0])
    loaded = _small(weights=path)
    _assert_same(_backbone_weights(loaded), _backbone_weights(source))


def test_weights_from_a_trained_models_keras_file_are_loaded(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import keras

    keras.utils.set_random_seed(3)
    source = _small()
    exported = kic.export_model(source, class_names=["a", "b", "c"])
    path = tmp_path / "model.keras"
    exported.save(path)
    keras.utils.set_random_seed(4)
    loaded = kic.build_transfer_model(
        "mobilenet_v3_small",
        input_shape=(32, 32, 3),
        num_classes=7,  # a new head: only the backbone comes from the file
        weights=path,
        image_size=None,
    )
    _assert_same(_backbone_weights(loaded), _backbone_weights(source))
    assert tuple(loaded.output_shape) == (None, 7)


def test_weights_from_a_keras_file_without_the_backbone_are_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    other = kic.build_cifar_cnn(input_shape=(32, 32, 3), num_classes=3)
    path = tmp_path / "other.keras"
    other.save(path)
    with pytest.raises(ValueError, match="holds no model with the weights"):
        _small(weights=path)


def test_a_keras_model_backbone_is_used_and_renamed() -> None:
    import keras

    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = kic.conv_block(x, 8, batch_norm=True, name="b1")
    body = keras.Model(inputs, x, name="mine")
    model = kic.build_transfer_model(
        body, input_shape=(16, 16, 3), num_classes=2, weights=None
    )
    assert model.get_layer("backbone") is body
    assert model.name == "mine"
    assert model.get_layer("resize").height == 32  # the backbone's own input size
    assert kic.resolve_input_scaling(model).scaling == "raw"


# ------------------------------------------------------------- ImageNet weights
def _offline(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    import socket

    def refuse(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError("network unreachable (test)")

    monkeypatch.setattr(socket, "create_connection", refuse)


def _keras_wants(name: str) -> str:
    """The weights file keras.applications asks get_file for (the call is stopped)."""
    import keras
    from keras.src.utils import file_utils

    asked: list[str] = []

    def record(fname, *args, **kwargs):  # type: ignore[no-untyped-def]
        asked.append(fname)
        raise RuntimeError("stop")

    original = file_utils.get_file
    file_utils.get_file = record
    try:
        application = getattr(
            keras.applications,
            {
                "mobilenet_v3_small": "MobileNetV3Small",
                "mobilenet_v3_large": "MobileNetV3Large",
                "efficientnet_b0": "EfficientNetB0",
                "efficientnet_v2_b0": "EfficientNetV2B0",
                "resnet50": "ResNet50",
                "convnext_tiny": "ConvNeXtTiny",
            }[name],
        )
        with pytest.raises(RuntimeError, match="stop"):
            application(include_top=False, weights="imagenet", input_shape=(32, 32, 3))
    finally:
        file_utils.get_file = original
    return asked[0]


@pytest.mark.parametrize("name", BACKBONES)
def test_check_backbone_weights_offline_names_the_file_keras_wants(
    name: str, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    _offline(monkeypatch)
    wanted = _keras_wants(name)
    folder = Path(os.environ["KERAS_HOME"]) / "models"
    with pytest.raises(FileNotFoundError) as caught:
        kic.check_backbone_weights(name, "imagenet")
    message = str(caught.value)
    assert f"{wanted!r}" in message and str(folder) in message
    assert "\n" not in message


def test_check_backbone_weights_finds_the_cached_file(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    _offline(monkeypatch)
    folder = Path(os.environ["KERAS_HOME"]) / "models"
    folder.mkdir(parents=True, exist_ok=True)
    cached = folder / _keras_wants("resnet50")
    cached.write_bytes(b"")
    try:
        assert kic.check_backbone_weights("resnet50", "imagenet") == cached
    finally:
        cached.unlink()
    assert kic.check_backbone_weights("resnet50", None) is None


OFFLINE_SCRIPT = textwrap.dedent(
    """
    import socket, sys, time
    def refuse(*args, **kwargs):
        raise OSError("network unreachable (test)")
    socket.create_connection = refuse
    from kerasimgcls import build_transfer_model  # imports Keras: not timed
    start = time.monotonic()
    try:
        build_transfer_model(
            "efficientnet_b0", input_shape=(64, 64, 3), num_classes=2
        )
    except FileNotFoundError as err:
        print(f"{time.monotonic() - start:.3f}")
        print(err)
        sys.exit(3)
    """
)


def test_imagenet_weights_offline_without_cache_fail_fast(tmp_path) -> None:  # type: ignore[no-untyped-def]
    script = tmp_path / "offline.py"
    script.write_text(OFFLINE_SCRIPT)
    env = {
        **os.environ,
        "KERAS_HOME": str(tmp_path / "home"),
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    result = subprocess.run(
        [sys.executable, str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 3, result.stdout + result.stderr
    seconds, message = result.stdout.strip().split("\n", 1)
    assert float(seconds) < 1.0  # the check, not a download attempt
    assert "'efficientnetb0_notop.h5'" in message
    assert str(tmp_path / "home" / "models") in message
    assert "\n" not in message


# ------------------------------------------------------ the rest of the library
def test_grad_cam_uses_the_backbones_last_convolution() -> None:
    model = _small("efficientnet_b0")
    result = kic.grad_cam(model, _pixels(1)[0])
    backbone = [layer.name for layer in model.get_layer("backbone").layers]
    assert result.layer_name == "top_conv" and result.layer_name in backbone
    assert result.heatmap.shape == (32, 32)


def test_embeddings_are_the_pooled_backbone_features() -> None:
    import keras

    model = _small()
    images = _pixels(5)
    features = kic.embeddings(model, images)
    backbone = model.get_layer("backbone")
    maps = np.asarray(backbone(images.astype("float32"), training=False))
    np.testing.assert_allclose(features, maps.mean(axis=(1, 2)), rtol=1e-5, atol=1e-6)
    assert features.shape == (5, int(keras.ops.shape(maps)[-1]))


@pytest.mark.parametrize("name", ["mobilenet_v3_small", "resnet50"])
def test_export_and_predict_take_raw_pixels(name: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = _small(name)
    images = _pixels(3)
    expected = np.asarray(model(images.astype("float32"), training=False))
    path = tmp_path / "model.keras"
    kic.export_model(model, class_names=["a", "b", "c"]).save(path)
    loaded = kic.load_model(path)  # safe mode: no custom code needed
    np.testing.assert_allclose(np.asarray(loaded(images)), expected, atol=1e-5)
    np.testing.assert_allclose(kic.predict_proba(model, images), expected, atol=1e-5)
    from PIL import Image

    files = []
    for index, image in enumerate(images):
        files.append(tmp_path / f"{index}.png")
        Image.fromarray(image).save(files[-1])
    predictions = kic.predict(path, files)
    np.testing.assert_allclose(predictions.probabilities, expected, atol=1e-5)


def test_importing_the_package_does_not_import_transfer() -> None:
    code = (
        "import sys, kerasimgcls; print('kerasimgcls.models.transfer' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.stdout.split() == ["False"], result.stderr[-2000:]


# ------------------------------------------------------------ the command line
def test_cli_refuses_missing_imagenet_weights_before_reading_data(
    tmp_path: Path, monkeypatch, capsys
) -> None:  # type: ignore[no-untyped-def]
    from kerasimgcls.cli import main

    _offline(monkeypatch)
    # The classes hold no image: had the data been read first, that would fail.
    for name in ("cat", "dog"):
        (tmp_path / "empty" / name).mkdir(parents=True)
        (tmp_path / "empty" / name / "notes.txt").write_text("not an image")
    argv = ["train", "--data-dir", str(tmp_path / "empty"), "--recipe", "transfer"]
    assert main([*argv, "--run-dir", str(tmp_path / "run")]) == 2
    error = capsys.readouterr().err.strip()
    assert "--model mobilenet_v3_small" in error
    assert "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5" in error
    assert "--model-arg weights=null" in error and "empty" not in error
    assert len(error.splitlines()) == 1 and not (tmp_path / "run").exists()


@pytest.mark.slow
def test_cli_trains_the_transfer_recipe_on_a_folder(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    import json

    from kerasimgcls.cli import main
    from test_own_images import make_folder

    folder = make_folder(tmp_path / "shapes", classes=2, per_class=12, size=32, seed=0)
    run_dir = tmp_path / "run"
    argv = [
        "train",
        "--data-dir",
        str(folder),
        "--recipe",
        "transfer",
        "--model-arg",
        "weights=null",
        "--model-arg",
        "image_size=null",
        "--epochs",
        "2",
        "--fine-tune",
        "warmup_epochs=1,unfreeze_layers=5",
        "--quiet",
        "--no-evaluate",
        "--run-dir",
        str(run_dir),
    ]
    assert main(argv) == 0, capsys.readouterr().err
    run = json.loads((run_dir / "run.json").read_text())
    assert run["config"]["model"] == "mobilenet_v3_small"
    assert run["config"]["fine_tune"]["warmup_epochs"] == 1
    assert run["config"]["fine_tune"]["unfreeze_layers"] == 5
    assert run["status"] == "finished" and (run_dir / "model.keras").is_file()
