from __future__ import annotations

import numpy as np
import pytest

import kerasimgcls as kic
from kerasimgcls.models.transfer import BACKBONES

# The reference CIFAR-10 CNN, row for row: (layer type, output shape, parameters).
REFERENCE = [
    ("Conv2D", (32, 32, 32), 896),
    ("Dropout", (32, 32, 32), 0),
    ("BatchNormalization", (32, 32, 32), 128),
    ("Conv2D", (32, 32, 64), 18_496),
    ("MaxPooling2D", (16, 16, 64), 0),
    ("Dropout", (16, 16, 64), 0),
    ("BatchNormalization", (16, 16, 64), 256),
    ("Conv2D", (16, 16, 64), 36_928),
    ("MaxPooling2D", (8, 8, 64), 0),
    ("Dropout", (8, 8, 64), 0),
    ("BatchNormalization", (8, 8, 64), 256),
    ("Conv2D", (8, 8, 128), 73_856),
    ("Dropout", (8, 8, 128), 0),
    ("BatchNormalization", (8, 8, 128), 512),
    ("Flatten", (8192,), 0),
    ("Dropout", (8192,), 0),
    ("Dense", (32,), 262_176),
    ("Dropout", (32,), 0),
    ("BatchNormalization", (32,), 128),
    ("Dense", (10,), 330),
]


def _rows(model):  # type: ignore[no-untyped-def]
    return [
        (type(layer).__name__, tuple(layer.output.shape[1:]), layer.count_params())
        for layer in model.layers
        if type(layer).__name__ != "InputLayer"
    ]


def test_build_cifar_cnn_matches_reference_row_for_row() -> None:
    model = kic.build_cifar_cnn()
    assert _rows(model) == REFERENCE
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    non_trainable = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    assert (model.count_params(), trainable, non_trainable) == (393_962, 393_322, 640)


def test_build_cifar_cnn_summary_text_has_totals(
    capsys: pytest.CaptureFixture[str],
) -> None:
    kic.build_cifar_cnn().summary(line_length=120)
    out = capsys.readouterr().out
    assert "Total params: 393,962" in out
    assert "Trainable params: 393,322" in out
    assert "Non-trainable params: 640" in out


def test_build_cifar_cnn_compiles_like_reference() -> None:
    model = kic.build_cifar_cnn()
    assert type(model.optimizer).__name__ == "Adam"
    assert model.loss == "categorical_crossentropy"
    assert not kic.build_cifar_cnn(compile=False).compiled


def test_build_cifar_cnn_other_shapes() -> None:
    model = kic.build_cifar_cnn(input_shape=(28, 28, 1), num_classes=5)
    assert tuple(model.output_shape) == (None, 5)
    assert model.get_layer("block1_conv").count_params() == 3 * 3 * 1 * 32 + 32


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"input_shape": (32, 32)}, "input_shape"),
        ({"input_shape": (2, 2, 3)}, "input_shape"),
        ({"input_shape": (32, 0, 3)}, "input_shape"),
        ({"num_classes": 0}, "num_classes"),
    ],
)
def test_build_cifar_cnn_rejects_bad_arguments(
    kwargs: dict[str, object], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        kic.build_cifar_cnn(**kwargs)  # type: ignore[arg-type]


def test_build_cifar_cnn_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        kic.build_cifar_cnn((32, 32, 3), 10)  # type: ignore[misc]


def test_registry_lists_and_builds() -> None:
    assert "cifar_cnn" in kic.list_models()
    assert kic.get_model("cifar_cnn").count_params() == 393_962


def test_get_model_unknown_name_lists_available() -> None:
    with pytest.raises(ValueError, match=r"Unknown model 'resnet'. Available: \["):
        kic.get_model("resnet")


def test_register_model_rejects_duplicates_and_empty_names() -> None:
    with pytest.raises(ValueError, match="already registered"):
        kic.register_model("cifar_cnn")(kic.build_cifar_cnn)
    with pytest.raises(ValueError, match="name"):
        kic.register_model("")


# The transfer backbones are built (weights=None) in tests/test_transfer.py.
@pytest.mark.parametrize(
    "name", [name for name in kic.list_models() if name not in BACKBONES]
)
def test_every_registered_model_runs_forward(name: str) -> None:
    model = kic.get_model(name, input_shape=(32, 32, 3), num_classes=4)
    images = np.random.default_rng(0).random((2, 32, 32, 3), dtype=np.float32)
    probabilities = np.asarray(model(images, training=False))
    assert probabilities.shape == (2, 4)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)


def test_saved_model_reloads_in_safe_mode_with_identical_predictions(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import keras

    model = kic.build_cifar_cnn(input_shape=(16, 16, 3), num_classes=3)
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    images = np.random.default_rng(1).random((4, 16, 16, 3), dtype=np.float32)
    np.testing.assert_array_equal(
        np.asarray(model.predict(images, verbose=0)),
        np.asarray(loaded.predict(images, verbose=0)),
    )


def test_build_cifar_cnn_batch_norm_momentum_defaults_to_keras() -> None:
    from keras.layers import BatchNormalization

    def momenta(model):  # type: ignore[no-untyped-def]
        return {
            layer.momentum
            for layer in model.layers
            if isinstance(layer, BatchNormalization)
        }

    assert momenta(kic.build_cifar_cnn()) == {0.99}
    assert momenta(kic.build_cifar_cnn(batch_norm_momentum=0.9)) == {0.9}
