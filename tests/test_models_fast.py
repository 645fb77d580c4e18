"""The fast airbench-style model and its patch-whitening first layer."""

from __future__ import annotations

import numpy as np
import pytest

import kerasimgcls as kic


def _smooth_images(count: int, size: int = 16, seed: int = 0) -> np.ndarray:
    """uint8 images whose neighbouring pixels and channels are strongly correlated."""
    rng = np.random.default_rng(seed)
    coarse = rng.random((count, size // 4, size // 4, 1))
    smooth = np.repeat(np.repeat(coarse, 4, axis=1), 4, axis=2)
    noisy = smooth + 0.05 * rng.random((count, size, size, 3))
    return np.clip(noisy * 230, 0, 255).astype(np.uint8)


def test_patch_whitening_kernel_decorrelates_patches() -> None:
    images = _smooth_images(200)
    kernel, bias = kic.models.patch_whitening_kernel(images, kernel_size=2)
    assert kernel.shape == (2, 2, 3, 24)
    assert bias.shape == (24,)
    assert kernel.dtype == np.float32
    windows = np.lib.stride_tricks.sliding_window_view(
        images.astype(np.float64) / 255.0, (2, 2), axis=(1, 2)
    )
    patches = windows.transpose(0, 1, 2, 4, 5, 3).reshape(-1, 12)
    raw = np.cov(patches, rowvar=False)
    off_diagonal = raw - np.diag(np.diag(raw))
    # The raw patches are strongly correlated; the whitened ones are not.
    assert np.abs(off_diagonal).max() > 0.5 * np.diag(raw).max()
    outputs = patches @ kernel.reshape(12, 24) + bias
    np.testing.assert_allclose(outputs.mean(axis=0), 0.0, atol=1e-3)
    whitened = np.cov(outputs[:, :12], rowvar=False)
    # Unit variance where the data has variance well above epsilon, none across.
    assert np.abs(whitened - np.diag(np.diag(whitened))).max() < 1e-3
    strong = np.linalg.eigvalsh(raw) > 50 * 5e-4
    np.testing.assert_allclose(np.diag(whitened)[strong], 1.0, atol=0.05)
    # Both signs of every filter.
    np.testing.assert_allclose(kernel[..., 12:], -kernel[..., :12])


def test_patch_whitening_kernel_scales_uint8_like_floats() -> None:
    images = _smooth_images(50)
    from_uint8 = kic.models.patch_whitening_kernel(images)
    from_float = kic.models.patch_whitening_kernel(images.astype(np.float32) / 255.0)
    np.testing.assert_allclose(from_uint8[0], from_float[0], rtol=1e-3, atol=1e-3)


def test_patch_whitening_kernel_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="images must be an array of shape"):
        kic.models.patch_whitening_kernel(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="smaller than kernel_size=4"):
        kic.models.patch_whitening_kernel(
            np.zeros((2, 3, 3, 3), np.uint8), kernel_size=4
        )
    with pytest.raises(ValueError, match="epsilon must be > 0; received epsilon=0"):
        kic.models.patch_whitening_kernel(np.zeros((2, 8, 8, 3), np.uint8), epsilon=0)
    with pytest.raises(TypeError, match="kernel_size must be an integer"):
        kic.models.patch_whitening_kernel(
            np.zeros((2, 8, 8, 3), np.uint8), kernel_size=2.5
        )  # type: ignore[arg-type]


def test_airbench_cnn_default_shape_and_parameter_count() -> None:
    model = kic.build_airbench_cnn()
    assert tuple(model.output_shape) == (None, 10)
    # airbench94's network: 1,973,944 weights (whitening 312, head 2,560).
    assert model.count_params() == 1_973_944
    assert model.get_layer("head_dense").count_params() == 256 * 10
    assert model.get_layer("block1_bn1").get_config()["scale"] is False
    assert model.get_layer("block1_bn1").get_config()["center"] is False
    # airbench's 64x learning rate of the batch-norm biases: stored / sqrt(64).
    assert model.get_layer("block1_bias1").multiplier == 8.0


def test_airbench_convolutions_start_as_a_partial_identity() -> None:
    model = kic.build_airbench_cnn(input_shape=(16, 16, 3), widths=(8, 16, 16))
    kernel = model.get_layer("block2_conv1").get_weights()[0]  # (3, 3, 8, 16)
    for channel in range(8):
        expected = np.zeros((3, 3, 8))
        expected[1, 1, channel] = 1.0
        np.testing.assert_array_equal(kernel[..., channel], expected)
    rest = kernel[..., 8:]
    limit = 1 / np.sqrt(3 * 3 * 8)
    assert np.abs(rest).max() <= limit and rest.std() > limit / 4


def test_scaled_bias_moves_faster_under_sgd() -> None:
    import keras

    from kerasimgcls.models.airbench import _ScaledBias

    layer = _ScaledBias(8.0)
    layer.build((None, 4))
    x = keras.ops.zeros((2, 4))
    # d(output)/d(stored bias) is 8, and one SGD step of the stored bias moves
    # the effective bias 8 * 8 = 64 times as far as a plain bias would move.
    optimizer = keras.optimizers.SGD(0.01)
    import tensorflow as tf

    with tf.GradientTape() as tape:
        loss = keras.ops.sum(layer(x))
    (gradient,) = tape.gradient(loss, [layer.bias])
    optimizer.apply([gradient], [layer.bias])
    effective = np.asarray(layer(keras.ops.zeros((1, 4))))[0]
    np.testing.assert_allclose(effective, -0.01 * 2 * 64, rtol=1e-6)
    assert _ScaledBias.from_config(layer.get_config()).multiplier == 8.0
    assert "airbench_cnn" in kic.list_models()


def test_airbench_cnn_whitening_layer_is_frozen_with_computed_weights() -> None:
    images = _smooth_images(64, size=16)
    model = kic.build_airbench_cnn(
        input_shape=(16, 16, 3),
        num_classes=3,
        widths=(8, 16, 16),
        whitening_images=images,
    )
    whiten = model.get_layer("whiten")
    assert whiten.trainable is False
    kernel, bias = kic.models.patch_whitening_kernel(images)
    np.testing.assert_allclose(whiten.get_weights()[0], kernel)
    np.testing.assert_allclose(whiten.get_weights()[1], bias)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    assert trainable == model.count_params() - 312 - 4 * (8 + 16 + 16)


def test_airbench_cnn_without_images_has_a_trainable_first_layer() -> None:
    model = kic.build_airbench_cnn(input_shape=(16, 16, 1), widths=(4, 8, 8))
    assert model.get_layer("whiten").trainable is True
    assert model.get_layer("whiten").filters == 8


def test_airbench_cnn_learns_a_separable_problem() -> None:
    import keras

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 128)
    images = rng.integers(0, 80, (128, 16, 16, 3)).astype(np.uint8)
    images[labels == 1, 4:12, 4:12, 0] = 250  # a bright red square means class 1
    model = kic.build_airbench_cnn(
        input_shape=(16, 16, 3),
        num_classes=2,
        widths=(8, 8, 8),
        whitening_images=images,
        logit_scale=1.0,
    )
    model.compile(keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy")
    x = images.astype(np.float32) / 255.0
    model.fit(x, labels, epochs=8, batch_size=32, verbose=0)
    predictions = model.predict(x, verbose=0).argmax(axis=1)
    assert np.mean(predictions == labels) > 0.9


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"input_shape": (8, 8, 3)}, ValueError, "at least 16x16"),
        ({"input_shape": (32, 32)}, ValueError, "input_shape must be"),
        ({"widths": (8, 8)}, ValueError, "widths must have three entries"),
        ({"widths": "abc"}, TypeError, "widths must be a sequence"),
        ({"widths": (8, 0, 8)}, ValueError, "widths must be a positive integer"),
        ({"num_classes": 0}, ValueError, "num_classes"),
        ({"batch_norm_momentum": 1.0}, ValueError, "batch_norm_momentum must be in"),
        ({"bias_lr_scale": 0}, ValueError, "bias_lr_scale must be positive"),
        (
            {"whitening_images": np.zeros((4, 32, 32, 1), np.uint8)},
            ValueError,
            "whitening_images must have shape",
        ),
    ],
)
def test_airbench_cnn_rejects_bad_arguments(kwargs, error, match) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=match):
        kic.build_airbench_cnn(**kwargs)


def test_patch_whitening_kernel_standardize_folds_the_normalisation_in() -> None:
    images = _smooth_images(80)
    unit = images.astype(np.float64) / 255.0
    mean, std = unit.mean(axis=(0, 1, 2)), unit.std(axis=(0, 1, 2))
    standardized = ((unit - mean) / std).astype(np.float32)
    kernel, bias = kic.models.patch_whitening_kernel(images, standardize=True)
    z_kernel, z_bias = kic.models.patch_whitening_kernel(standardized)

    def conv(x: np.ndarray, k: np.ndarray, b: np.ndarray) -> np.ndarray:
        windows = np.lib.stride_tricks.sliding_window_view(x, (2, 2), axis=(1, 2))
        patches = windows.transpose(0, 1, 2, 4, 5, 3).reshape(-1, 12)
        return patches.astype(np.float64) @ k.reshape(12, -1) + b

    # The layer takes [0, 1] pixels and outputs what whitening the
    # standardised images gives; not what whitening the raw pixels gives.
    on_unit = conv(unit, kernel, bias)
    np.testing.assert_allclose(on_unit, conv(standardized, z_kernel, z_bias), atol=2e-3)
    plain = kic.models.patch_whitening_kernel(images)
    assert np.abs(on_unit - conv(unit, *plain)).max() > 0.1
    with pytest.raises(TypeError, match="standardize must be True or False"):
        kic.models.patch_whitening_kernel(images, standardize=1)  # type: ignore[arg-type]


def test_airbench_cnn_batch_norm_momentum_per_1024_images() -> None:
    model = kic.build_airbench_cnn(
        input_shape=(16, 16, 3), widths=(4, 8, 8), batch_norm_batch_size=256
    )
    momentum = model.get_layer("block2_bn2").momentum
    assert momentum == pytest.approx(0.6**0.25)  # about 0.88 per 256 images
    default = kic.build_airbench_cnn(input_shape=(16, 16, 3), widths=(4, 8, 8))
    assert default.get_layer("block2_bn2").momentum == pytest.approx(0.6)
    with pytest.raises(ValueError, match="batch_norm_batch_size must be >= 1"):
        kic.build_airbench_cnn(batch_norm_batch_size=0)


def test_airbench_cnn_whitening_options() -> None:
    images = _smooth_images(32)
    with kic.precision_scope("mixed_bfloat16"):
        model = kic.build_airbench_cnn(
            input_shape=(16, 16, 3),
            widths=(4, 8, 8),
            whitening_images=images,
            whitening_standardize=True,
            whitening_epsilon=1e-3,
            whitening_dtype="float32",
        )
        mixed = kic.build_airbench_cnn(input_shape=(16, 16, 3), widths=(4, 8, 8))
    assert model.get_layer("whiten").compute_dtype == "float32"
    assert mixed.get_layer("whiten").compute_dtype == "bfloat16"
    assert model.get_layer("block1_conv1").compute_dtype == "bfloat16"
    kernel, _ = kic.models.patch_whitening_kernel(
        images, epsilon=1e-3, standardize=True
    )
    np.testing.assert_allclose(model.get_layer("whiten").get_weights()[0], kernel)
    with pytest.raises(ValueError, match="whitening_epsilon must be > 0"):
        kic.build_airbench_cnn(whitening_epsilon=0.0)
    with pytest.raises(ValueError, match="whitening_dtype must be one of"):
        kic.build_airbench_cnn(whitening_dtype="float16")
