"""The learning-rate range test (kerasimgcls.find_learning_rate)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from PIL import Image

import kerasimgcls as kic
from kerasimgcls.analysis.lr_finder import _suggest


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
    # The test really trained: against a run whose rates are too small to move the
    # weights (same batches, same dropout masks, so the same noise), the first loss
    # is the same and the later ones are not.
    frozen = kic.find_learning_rate(
        model, digits, min_lr=1e-12, max_lr=1e-11, num_steps=12, batch_size=32
    )
    assert result.losses[0] == pytest.approx(frozen.losses[0], rel=1e-5)
    assert np.abs(result.losses[6:] - frozen.losses[6:]).max() > 1e-3


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
    # The smoothed curve is the bias-corrected moving average of the losses, and
    # the suggestion and the minimum are read from it by the documented rule.
    average, expected = 0.0, []
    for step, loss in enumerate(result.losses, start=1):
        average = 0.9 * average + 0.1 * loss
        expected.append(average / (1 - 0.9**step))
    np.testing.assert_allclose(result.smoothed_losses, expected, rtol=1e-10)
    assert (result.suggestion, result.min_loss_learning_rate) == _suggest(
        rates, result.smoothed_losses
    )
    assert result.min_loss_learning_rate == rates[np.argmin(result.smoothed_losses)]
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
    # It stopped at the first step whose smoothed loss passed 4x the minimum so far.
    smoothed = result.smoothed_losses
    over = ~np.isfinite(result.losses) | (
        smoothed > 4 * np.minimum.accumulate(smoothed)
    )
    assert np.flatnonzero(over[1:])[0] + 1 == len(smoothed) - 1
    finite = np.where(np.isfinite(smoothed), smoothed, np.inf)
    assert result.suggestion == _suggest(result.learning_rates, finite)[0]


def _falling_curve(rates: np.ndarray, centre: float) -> np.ndarray:
    """A loss that falls fastest at log10(rate) == centre, bottoms out, then rises."""
    log_rates = np.log10(rates)
    fall = 2.0 - 1.5 * np.tanh((log_rates - centre) / 0.4)
    rise = np.where(log_rates > centre + 1.5, 30.0 * (log_rates - centre - 1.5) ** 2, 0)
    return fall + rise


@pytest.mark.parametrize("centre", [-4.0, -3.0, -1.5])
def test_suggestion_is_the_steepest_fall_before_the_minimum(centre: float) -> None:
    rates = np.logspace(-6, 1, 71)
    curve = _falling_curve(rates, centre)
    suggestion, min_loss_rate = _suggest(rates, curve)
    assert suggestion == pytest.approx(10**centre, rel=1e-9)
    assert min_loss_rate == rates[np.argmin(curve)]
    assert min_loss_rate > suggestion


def test_suggestion_ignores_the_warm_up_and_the_rise_after_the_minimum() -> None:
    rates = np.logspace(-6, 0, 61)
    curve = _falling_curve(rates, -2.0)
    # A steeper drop in the first tenth (the smoothing's warm-up) is skipped ...
    curve[:5] += np.linspace(10.0, 0.0, 5)
    suggestion, _ = _suggest(rates, curve)
    assert suggestion == pytest.approx(1e-2, rel=1e-9)
    # ... and a curve that only rises suggests its minimum, its first rate.
    rising = np.linspace(1.0, 3.0, 20)
    assert _suggest(rates[:20], rising) == (rates[0], rates[0])
    # A minimum too close to the start to measure a slope is the suggestion.
    early = np.array([3.0, 1.0, 2.0, 4.0, 5.0, 6.0])
    assert _suggest(rates[:6], early) == (rates[1], rates[1])


def test_exported_model_and_picture(digits, tmp_path) -> None:
    exported = kic.export_model(_small_model(), digits.class_names)
    result = kic.find_learning_rate(exported, digits, num_steps=8, batch_size=64)
    path = result.plot(tmp_path / "lr_find.png")
    with Image.open(path) as image:
        assert image.format == "PNG" and image.width > 400 and image.height > 300
        assert np.asarray(image.convert("L")).std() > 5


def test_suggestion_skips_exactly_the_first_tenth_and_needs_three_points() -> None:
    rates = np.logspace(-6, 0, 20)
    # Steep drops at steps 1-2 (inside the skipped tenth, steps 0-1) and 7-8.
    curve = np.concatenate([[10.0, 9.0, 3.0], 3.0 - 0.1 * np.arange(1, 5), [2.5, 0.2]])
    curve = np.concatenate([curve, np.linspace(0.15, 0.1, 5), np.linspace(1, 5, 6)])
    assert int(np.argmin(curve)) == 13
    assert _suggest(rates, curve)[0] == rates[7]
    # The minimum two steps after the skipped tenth: the slope is measured on
    # three points and the steepest of them is suggested.
    short = np.array([9.0, 8.0, 5.0, 1.1, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0] * 2)
    short[10:] += 10
    assert int(np.argmin(short)) == 4
    assert _suggest(rates, short)[0] == rates[2]
    # A minimum at step 3 of 60 (inside the tenth): no slope, the minimum.
    rates = np.logspace(-6, 0, 60)
    early = np.concatenate([[6.0, 5.0, 1.1, 1.0], np.linspace(2.0, 9.0, 56)])
    assert _suggest(rates, early) == (rates[3], rates[3])


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
