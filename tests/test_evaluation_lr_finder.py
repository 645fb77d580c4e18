"""The learning-rate range test (kerasimgcls.find_learning_rate)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from PIL import Image

import kerasimgcls as kic


def _small_model(*, batch_norm: bool = True) -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1))
    x = kic.conv_block(inputs, 8, pool_size=2, dropout=0.1, batch_norm=batch_norm)
    outputs = kic.dense_head(x, 10, units=(16,), dropout=0.2, name="head")
    return keras.Model(inputs, outputs)


def _values(variables) -> list[np.ndarray]:
    return [np.array(variable.numpy(), copy=True) for variable in variables]


def test_weights_and_compiled_optimizer_are_restored_exactly(digits) -> None:
    model = _small_model()
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9), loss="mse")
    model.fit(
        digits.train.images[:64] / 255.0,
        np.eye(10)[digits.train.labels[:64]],
        epochs=1,
        verbose=0,
    )
    before = _values(model.variables)
    optimizer_before = _values(model.optimizer.variables)
    result = kic.find_learning_rate(model, digits, num_steps=12, batch_size=32)
    after = _values(model.variables)
    assert len(after) == len(before)
    for old, new in zip(before, after, strict=True):
        np.testing.assert_array_equal(old, new)
    for old, new in zip(
        optimizer_before, _values(model.optimizer.variables), strict=True
    ):
        np.testing.assert_array_equal(old, new)
    assert len(result.losses) == 12
    # The test really trained: the loss moved.
    assert np.ptp(result.losses) > 0


def test_rates_grow_exponentially_and_the_suggestion_is_inside(digits) -> None:
    result = kic.find_learning_rate(
        _small_model(),
        digits.train,
        min_lr=1e-4,
        max_lr=1.0,
        num_steps=40,
        batch_size=32,
        stop_factor=None,
    )
    rates = result.learning_rates
    assert len(rates) == 40 and not result.stopped_early
    assert rates[0] == pytest.approx(1e-4) and rates[-1] == pytest.approx(1.0)
    np.testing.assert_allclose(np.diff(np.log(rates)), np.log(1e4) / 39)
    assert rates[0] <= result.suggestion <= rates[-1]
    assert result.suggestion in rates
    assert result.min_loss_learning_rate in rates
    assert result.smoothed_losses.shape == result.losses.shape
    # Bias-corrected smoothing starts at the first loss.
    assert result.smoothed_losses[0] == pytest.approx(result.losses[0])
    payload = result.to_dict()
    assert payload["suggestion"] == result.suggestion
    assert len(payload["losses"]) == 40


def test_a_diverging_loss_stops_the_test_early(digits) -> None:
    result = kic.find_learning_rate(
        _small_model(batch_norm=False),
        digits,
        min_lr=1e-3,
        max_lr=1e4,
        num_steps=60,
        batch_size=32,
        optimizer="sgd",
    )
    assert result.stopped_early
    assert len(result.learning_rates) < 60
    assert result.learning_rates[0] <= result.suggestion <= result.learning_rates[-1]


def test_exported_model_and_picture(digits, tmp_path) -> None:
    exported = kic.export_model(_small_model(), digits.class_names)
    result = kic.find_learning_rate(exported, digits, num_steps=8, batch_size=64)
    path = result.plot(tmp_path / "lr_find.png")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 400 and image.height > 300
        assert np.asarray(image.convert("L")).std() > 5


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"min_lr": 0.0}, ValueError, "min_lr must be a positive float"),
        ({"max_lr": "big"}, TypeError, "max_lr must be a positive float"),
        ({"min_lr": 1.0, "max_lr": 0.1}, ValueError, "min_lr must be below max_lr"),
        ({"num_steps": 1}, ValueError, "num_steps must be at least 2"),
        ({"batch_size": 0}, ValueError, "batch_size must be a positive integer"),
        ({"smoothing": 1.0}, ValueError, r"smoothing must be in \[0, 1\)"),
        ({"stop_factor": 1.0}, ValueError, "stop_factor must be above 1"),
        ({"optimizer": "nope"}, ValueError, "optimizer must be a Keras optimizer"),
        ({"optimizer": 3}, TypeError, "optimizer must be None, a Keras optimizer"),
    ],
)
def test_find_learning_rate_rejects_bad_options(digits, kwargs, error, match) -> None:
    with pytest.raises(error, match=match):
        kic.find_learning_rate(_small_model(), digits, **kwargs)


def test_find_learning_rate_rejects_bad_data(digits) -> None:
    with pytest.raises(TypeError, match="data must be an ImageDataset"):
        kic.find_learning_rate(_small_model(), digits.train.images)
    other = kic.Split(np.zeros((4, 4, 4, 1), np.uint8), np.zeros(4, np.int64))
    with pytest.raises(ValueError, match=r"data images must have shape \(8, 8, 1\)"):
        kic.find_learning_rate(_small_model(), other)
