"""predict_tta: airbench's six views, weighted and averaged in logit space."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest

import kerasimgcls as kic
from kerasimgcls.inference._tta import TTA_VIEWS


def _logit_model() -> tuple[keras.Model, keras.Model]:
    """A small softmax classifier and the same network's logits."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((6, 6, 3))
    x = keras.layers.Conv2D(4, 3, name="conv")(inputs)
    x = keras.layers.Flatten()(x)
    logits = keras.layers.Dense(5, name="dense")(x)
    probabilities = keras.layers.Activation("softmax")(logits)
    return keras.Model(inputs, probabilities), keras.Model(inputs, logits)


def _images(n: int = 7) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, 6, 6, 3), np.uint8)


def _shift(images: np.ndarray, rows: int, columns: int) -> np.ndarray:
    padded = np.pad(images, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="reflect")
    return padded[:, 1 - rows : 7 - rows, 1 - columns : 7 - columns]


def test_predict_tta_is_the_softmax_of_airbench_weighted_logits() -> None:
    model, logit_model = _logit_model()
    images = _images()

    def logits(views: np.ndarray) -> np.ndarray:
        return np.asarray(logit_model(views.astype(np.float32) / 255.0), np.float64)

    mirror = images[:, :, ::-1]
    expected = (
        0.25 * logits(images)
        + 0.25 * logits(mirror)
        # airbench pads by one (reflect) and crops [0:32] and [2:34]: content
        # moves down-right and up-left by one pixel; each translated view is
        # then mirrored too.
        + 0.125 * logits(_shift(images, 1, 1))
        + 0.125 * logits(_shift(images, 1, 1)[:, :, ::-1])
        + 0.125 * logits(_shift(images, -1, -1))
        + 0.125 * logits(_shift(images, -1, -1)[:, :, ::-1])
    )
    expected = np.exp(expected - expected.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    got = kic.predict_tta(model, images, batch_size=3)
    assert got.dtype == np.float32 and got.shape == (7, 5)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_predict_tta_flip_averages_logits_not_probabilities() -> None:
    model, logit_model = _logit_model()
    images = _images()
    feed = images.astype(np.float32) / 255.0
    mean = 0.5 * (
        np.asarray(logit_model(feed), np.float64)
        + np.asarray(logit_model(feed[:, :, ::-1]), np.float64)
    )
    expected = np.exp(mean - mean.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    got = kic.predict_tta(model, images, views="flip")
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
    plain, mirrored = (
        kic.predict_proba(model, batch) for batch in (images, images[:, :, ::-1])
    )
    assert not np.allclose(got, (plain + mirrored) / 2, atol=1e-6)
    # predict_proba(tta="flip") is this one implementation.
    np.testing.assert_array_equal(kic.predict_proba(model, images, tta="flip"), got)
    np.testing.assert_allclose(
        kic.predict_tta(model, images, views="none"),
        kic.predict_proba(model, images),
        rtol=1e-5,
        atol=1e-7,
    )


def test_predict_tta_views_weights_sum_to_one() -> None:
    # A model whose output ignores its input: every view gives the same
    # probabilities p, and their weighted log-mean softmaxes back to p only when
    # the weights sum to one (weights summing to s give softmax(s * log p)).
    inputs = keras.Input((6, 6, 3))
    zero = keras.layers.Lambda(lambda x: keras.ops.mean(x, axis=(1, 2)) * 0.0)(inputs)
    logits = keras.layers.Dense(
        3, bias_initializer=keras.initializers.Constant([0.0, 1.0, 3.0])
    )(zero)
    model = keras.Model(inputs, keras.layers.Softmax()(logits))
    images = np.random.default_rng(0).integers(0, 256, (4, 6, 6, 3), np.uint8)
    expected = np.exp([0.0, 1.0, 3.0]) / np.exp([0.0, 1.0, 3.0]).sum()
    for views in TTA_VIEWS:
        averaged = kic.predict_tta(model, images, views=views)
        np.testing.assert_allclose(averaged, np.tile(expected, (4, 1)), rtol=1e-5)


def test_predict_tta_rejects_bad_arguments() -> None:
    model, _ = _logit_model()
    bad: dict[str, Any] = {"views": "six"}
    with pytest.raises(ValueError, match="views must be one of"):
        kic.predict_tta(model, _images(), **bad)
    with pytest.raises(ValueError, match="batch_size must be >= 1"):
        kic.predict_tta(model, _images(), batch_size=0)
    with pytest.raises(TypeError, match="images must be uint8"):
        kic.predict_tta(model, _images().astype(np.float32))
    assert kic.predict_tta(model, _images(0)).shape == (0, 5)
