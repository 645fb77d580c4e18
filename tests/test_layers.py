"""Speed options: the fused batch norm, mixed bfloat16, and their Trainer/CLI flags."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf

import kerasimgcls as kic
from kerasimgcls.cli import main
from kerasimgcls.models.layers import (
    FusedBatchNormalization,
    fuse_batch_norm,
    precision_scope,
)


def _pair(**config):  # type: ignore[no-untyped-def]
    plain = keras.layers.BatchNormalization(**config)
    fused = FusedBatchNormalization(**config)
    return plain, fused


@pytest.mark.parametrize(
    "config",
    [{"momentum": 0.9}, {"momentum": 0.6, "scale": False}, {"center": False}],
)
def test_fused_matches_keras_batch_norm_in_training(config) -> None:  # type: ignore[no-untyped-def]
    x = np.random.default_rng(0).normal(2.0, 3.0, size=(16, 6, 6, 5)).astype("float32")
    plain, fused = _pair(**config)
    plain.build(x.shape)
    fused.build(x.shape)
    inputs = tf.constant(x)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(inputs)
        y_plain = plain(inputs, training=True)
        y_fused = fused(inputs, training=True)
        loss_plain = tf.reduce_sum(y_plain**3)
        loss_fused = tf.reduce_sum(y_fused**3)
    np.testing.assert_allclose(y_fused, y_plain, atol=1e-5)
    # The moving statistics track the biased variance, as Keras does.
    np.testing.assert_allclose(fused.moving_mean, plain.moving_mean, atol=1e-5)
    np.testing.assert_allclose(fused.moving_variance, plain.moving_variance, rtol=1e-5)
    for ours, theirs in zip(
        tape.gradient(loss_fused, [inputs, *fused.trainable_weights]),
        tape.gradient(loss_plain, [inputs, *plain.trainable_weights]),
        strict=True,
    ):
        np.testing.assert_allclose(ours, theirs, rtol=1e-4, atol=1e-3)
    # Inference is Keras' own code path.
    np.testing.assert_allclose(
        fused(inputs, training=False), plain(inputs, training=False), atol=1e-5
    )


def test_fuse_batch_norm_keeps_weights_and_function() -> None:
    model = kic.build_cifar_cnn(input_shape=(8, 8, 3), compile=False)
    fused = fuse_batch_norm(model)
    kinds = {type(layer).__name__ for layer in fused.layers}
    assert "FusedBatchNormalization" in kinds and "BatchNormalization" not in kinds
    assert fused.count_params() == model.count_params()
    assert [w.shape for w in fused.weights] == [w.shape for w in model.weights]
    x = np.random.default_rng(1).random((4, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(fused(x, training=False), model(x, training=False))

    # A subclass of Keras' batch norm keeps its own class (and behaviour).
    class Custom(keras.layers.BatchNormalization):  # type: ignore[misc]
        pass

    inputs = keras.Input((4, 4, 2))
    mixed = keras.Model(
        inputs, Custom(name="custom")(keras.layers.BatchNormalization()(inputs))
    )
    swapped = fuse_batch_norm(mixed)
    assert type(swapped.get_layer("custom")) is Custom
    assert isinstance(swapped.layers[1], FusedBatchNormalization)
    # Nothing to fuse: the model itself comes back.
    plain = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    assert fuse_batch_norm(plain) is plain


def test_fuse_batch_norm_refuses_bad_input() -> None:
    with pytest.raises(TypeError, match=r"model must be a keras\.Model"):
        fuse_batch_norm("cifar_cnn")  # type: ignore[arg-type]

    class Subclassed(keras.Model):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__()
            self.norm = keras.layers.BatchNormalization()

        def call(self, inputs):  # type: ignore[no-untyped-def]
            return self.norm(inputs)

    subclassed = Subclassed()
    subclassed(np.zeros((1, 4, 4, 2), "float32"))
    with pytest.raises(ValueError, match="functional or sequential"):
        fuse_batch_norm(subclassed)


def test_precision_scope_builds_bfloat16_and_restores_the_policy() -> None:
    before = keras.mixed_precision.global_policy().name
    with precision_scope("mixed_bfloat16"):
        model = kic.build_cifar_cnn(input_shape=(8, 8, 3), compile=False)
        airbench = kic.build_airbench_cnn(input_shape=(16, 16, 3), widths=(8, 8, 8))
    assert keras.mixed_precision.global_policy().name == before
    assert model.get_layer("block1_conv").compute_dtype == "bfloat16"
    assert model.get_layer("block1_conv").variable_dtype == "float32"
    assert model.output.dtype == "float32"  # the softmax stays float32
    assert airbench.output.dtype == "float32"
    with (
        pytest.raises(ValueError, match="precision must be one of"),
        precision_scope("float16"),
    ):
        pass
    assert keras.mixed_precision.global_policy().name == before


@pytest.mark.slow
def test_trainer_precision_and_fused_batch_norm(tmp_path: Path) -> None:
    data = kic.load_digits(seed=0)

    def build() -> keras.Model:
        return kic.build_cifar_cnn(
            input_shape=(8, 8, 1), batch_norm_momentum=0.9, compile=False
        )

    trainer = kic.Trainer(
        build,
        seed=0,
        verbose=0,
        precision="mixed_bfloat16",
        fused_batch_norm=True,
        run_dir=tmp_path / "run",
    )
    assert trainer.model.get_layer("block2_conv").compute_dtype == "bfloat16"
    assert isinstance(trainer.model.get_layer("block2_bn"), FusedBatchNormalization)
    history = trainer.fit(data, epochs=3, batch_size=64)
    # The speed options cost little accuracy: compare with float32 at the same seed
    # (measured: 0.895 against 0.937 on 143 validation images).
    reference = kic.Trainer(build, seed=0, verbose=0, deterministic=False)
    float32 = reference.fit(data, epochs=3, batch_size=64).rows[-1]["val_accuracy"]
    assert float32 > 0.85
    assert history.rows[-1]["val_accuracy"] > float32 - 0.1
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run["config"]["precision"] == "mixed_bfloat16"
    assert run["config"]["fused_batch_norm"] is True
    # The exported model reloads in safe mode and predicts like the trained one.
    exported = kic.load_model(tmp_path / "run" / "model.keras")
    images = data.test.images[:16]
    # The same bfloat16 layers compute the same numbers (measured: identical).
    np.testing.assert_allclose(
        kic.predict_proba(exported, images),
        kic.predict_proba(trainer.model, images),
        atol=1e-5,
    )


@pytest.mark.slow
def test_fused_training_is_reproducible() -> None:
    data = kic.load_digits(seed=0)

    def fit() -> list[float]:
        trainer = kic.Trainer(
            lambda: kic.build_cifar_cnn(input_shape=(8, 8, 1), compile=False),
            seed=3,
            verbose=0,
            fused_batch_norm=True,
        )
        trainer.fit(data, epochs=1, batch_size=128)
        return [float(np.sum(w)) for w in trainer.model.get_weights()]

    assert fit() == fit()


def test_trainer_refuses_bad_precision_and_a_mismatched_ready_model() -> None:
    model = kic.build_cifar_cnn(input_shape=(8, 8, 1), compile=False)
    with pytest.raises(ValueError, match="precision must be one of"):
        kic.Trainer(model, precision="bfloat16")
    with pytest.raises(ValueError, match="pass a model factory"):
        kic.Trainer(model, precision="mixed_bfloat16")
    with pytest.raises(TypeError, match="fused_batch_norm must be True or False"):
        kic.Trainer(model, fused_batch_norm="yes")  # type: ignore[arg-type]


def test_cli_speed_flags_and_model_args(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    run_dir = tmp_path / "run"
    argv = [
        "train",
        "--dataset",
        "digits",
        "--epochs",
        "1",
        "--quiet",
        "--precision",
        "mixed_bfloat16",
        "--fused-batch-norm",
        "--model-arg",
        "dropout=0.1",
        "--model-arg",
        "head_dropout=[0, 0.2]",
        "--run-dir",
        str(run_dir),
    ]
    assert main(argv) == 0
    run = json.loads((run_dir / "run.json").read_text())
    assert run["config"]["precision"] == "mixed_bfloat16"
    assert run["config"]["fused_batch_norm"] is True
    assert run["model_args"] == {"dropout": 0.1, "head_dropout": [0, 0.2]}
    model = kic.load_model(run_dir / "model.keras")
    rates = {
        layer.name: layer.rate
        for layer in model.layers[-1].layers
        if isinstance(layer, keras.layers.Dropout)
    } or {
        layer.name: layer.rate
        for layer in model.layers
        if isinstance(layer, keras.layers.Dropout)
    }
    assert rates.get("block1_dropout") == pytest.approx(0.1)
    assert rates.get("head_dense1_dropout") == pytest.approx(0.2)
    capsys.readouterr()
    # Bad model arguments fail before any data is loaded, naming the option.
    assert main(["train", "--model-arg", "width=3", "--run-dir", str(tmp_path)]) == 2
    assert "--model-arg: cifar_cnn takes no argument width" in capsys.readouterr().err
    assert main(["train", "--model-arg", "novalue", "--run-dir", str(tmp_path)]) == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err
