"""airbench: the fast CIFAR-10 network of Keller Jordan's ``airbench94.py``.

Its whitening helpers (:func:`~kerasimgcls.models.whitening_sample`, :func:`~kerasimgcls.models.patch_whitening_kernel`)
compute the first layer's fixed weights from the training images.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
from numpy.typing import ArrayLike, NDArray

from kerasimgcls._validation import (
    check_choice,
    check_finite,
    check_input_shape,
    check_min_size,
    check_positive_int,
    check_scalar,
)
from kerasimgcls.models._registry import register_model

__all__ = ["build_airbench_cnn", "patch_whitening_kernel", "whitening_sample"]


def whitening_sample(
    images: NDArray[np.uint8], count: int = 5000, *, seed: int = 0
) -> NDArray[np.uint8]:
    """Return a seeded random subset of ``images`` to compute patch whitening from.

    airbench computes its whitening layer from 5,000 training images. A prefix
    of a split sorted by class would hold one class only; a seeded random subset
    (in the images' order) keeps every class and the run reproducible.

    Example:
        >>> import numpy as np
        >>> from kerasimgcls.models import whitening_sample
        >>> images = np.arange(10, dtype=np.uint8).reshape(10, 1, 1, 1)
        >>> whitening_sample(images, 3).ravel().tolist()
        [2, 4, 6]
    """
    count = check_positive_int(count, "count")
    order = np.random.default_rng(seed).permutation(len(images))[:count]
    return images[np.sort(order)]


def patch_whitening_kernel(
    images: ArrayLike,
    *,
    kernel_size: int = 2,
    epsilon: float = 5e-4,
    max_patches: int = 1_000_000,
    seed: int = 0,
    standardize: bool = False,
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """Compute a patch-whitening convolution from example images (cifar10-airbench).

    Every ``kernel_size x kernel_size`` patch of the images (scaled to [0, 1] if
    they are uint8) is a vector of ``kernel_size**2 * channels`` values. The
    kernel's filters are the eigenvectors of the patches' covariance divided by the
    square root of their eigenvalues (plus ``epsilon``), each used with both signs,
    so a valid convolution with it outputs decorrelated, unit-variance features
    (``2 * kernel_size**2 * channels`` of them). The bias centres the outputs.

    With ``standardize=True`` the patches are taken from the images normalised per
    channel to zero mean and unit standard deviation, as cifar10-airbench does, and
    the normalisation is folded into the kernel and bias, so the layer still takes
    the images as they are. ``epsilon`` is then relative to unit-variance pixels:
    on [0, 1] CIFAR-10 pixels (standard deviation about 0.25) the same ``epsilon``
    whitens the weakest directions about 16 times less.

    Args:
        images: Array of shape ``(n, height, width, channels)``: uint8 in [0, 255]
            or float in [0, 1], as the model will see them.
        kernel_size: Height and width of the patches, positive.
        epsilon: Added to the eigenvalues before the square root, positive; larger
            values whiten the low-variance directions less.
        max_patches: At most this many patches (sampled with ``seed``) are used.
        seed: Seed of the patch sample.
        standardize: Whiten the per-channel standardised images (airbench's
            recipe) instead of the images as given.

    Returns:
        ``(kernel, bias)``: float32 arrays of shapes
        ``(kernel_size, kernel_size, channels, 2 * kernel_size**2 * channels)`` and
        ``(2 * kernel_size**2 * channels,)``, ready for a ``Conv2D`` layer.

    Raises:
        ValueError: If ``images`` is not 4-D, holds NaN or infinity, is smaller
            than the kernel, or an argument is out of range.
        TypeError: If ``kernel_size``, ``max_patches`` or ``epsilon`` is not a
            number of its kind.

    Example:
        >>> import numpy as np
        >>> from kerasimgcls.models import patch_whitening_kernel
        >>> images = np.random.default_rng(0).integers(0, 256, (64, 8, 8, 3), np.uint8)
        >>> kernel, bias = patch_whitening_kernel(images, kernel_size=2)
        >>> kernel.shape, bias.shape
        ((2, 2, 3, 24), (24,))
    """
    array = np.asarray(images)
    check_finite(array, "images")
    kernel_size, max_patches, epsilon = _check_whitening_args(
        array, kernel_size, max_patches, epsilon, standardize
    )
    scaled = array.astype(np.float32)
    if array.dtype == np.uint8:
        scaled /= 255.0
    channels = array.shape[-1]
    shift = np.zeros(channels, np.float64)
    spread = np.ones(channels, np.float64)
    if standardize:
        shift = scaled.mean(axis=(0, 1, 2), dtype=np.float64)
        spread = np.maximum(scaled.std(axis=(0, 1, 2), dtype=np.float64), 1e-12)
        scaled = ((scaled - shift) / spread).astype(np.float32)
    patches = _sample_patches(scaled, kernel_size, max_patches, seed)
    mean = patches.mean(axis=0)
    covariance = np.cov(patches - mean, rowvar=False)
    eigenvalues, eigenvectors = np.linalg.eigh(covariance)
    filters = eigenvectors / np.sqrt(np.maximum(eigenvalues, 0.0) + epsilon)
    filters = np.concatenate([filters, -filters], axis=1)  # (k*k*c, 2*k*k*c)
    bias = -(mean @ filters)
    # Fold (x - shift) / spread into the filters: patches are (k, k, c), c last.
    tiled_spread = np.tile(spread, kernel_size * kernel_size)
    tiled_shift = np.tile(shift, kernel_size * kernel_size)
    bias = bias - (tiled_shift / tiled_spread) @ filters
    filters = filters / tiled_spread[:, np.newaxis]
    kernel = filters.reshape(kernel_size, kernel_size, channels, -1)
    return kernel.astype(np.float32), bias.astype(np.float32)


def _check_whitening_args(
    array: NDArray[Any],
    kernel_size: object,
    max_patches: object,
    epsilon: object,
    standardize: object,
) -> tuple[int, int, float]:
    """Check :func:`~kerasimgcls.models.patch_whitening_kernel`'s arguments; return the numbers."""
    if array.ndim != 4 or min(array.shape) < 1:
        raise ValueError(
            "images must be an array of shape (n, height, width, channels); "
            f"received shape {array.shape}"
        )
    size = check_positive_int(kernel_size, "kernel_size")
    patches = check_positive_int(max_patches, "max_patches")
    rate = check_scalar(epsilon, "epsilon", min_val=0, include_min=False)
    if not isinstance(standardize, bool):
        raise TypeError(
            f"standardize must be True or False; received standardize={standardize!r}"
        )
    if min(array.shape[1:3]) < size:
        raise ValueError(
            f"images of shape {array.shape} are smaller than kernel_size={size}"
        )
    return size, patches, rate


def _sample_patches(
    scaled: NDArray[np.float32], kernel_size: int, max_patches: int, seed: int
) -> NDArray[np.float64]:
    """The ``kernel_size``-square patches as float64 rows, at most ``max_patches``."""
    channels = scaled.shape[-1]
    windows = np.lib.stride_tricks.sliding_window_view(
        scaled, (kernel_size, kernel_size), axis=(1, 2)
    )  # (n, h', w', channels, k, k)
    patches = windows.transpose(0, 1, 2, 4, 5, 3).reshape(
        -1, kernel_size * kernel_size * channels
    )
    if patches.shape[0] > max_patches:
        rng = np.random.default_rng(seed)
        patches = patches[rng.choice(patches.shape[0], max_patches, replace=False)]
    return patches.astype(np.float64)


def _check_widths(widths: object) -> tuple[int, int, int]:
    if isinstance(widths, (str, bytes)) or not isinstance(widths, Sequence):
        raise TypeError(
            f"widths must be a sequence of three positive integers; received widths={widths!r}"
        )
    if len(widths) != 3:
        raise ValueError(
            f"widths must have three entries (one per block); received widths={widths!r}"
        )
    first, second, third = (check_positive_int(width, "widths") for width in widths)
    return (first, second, third)


@keras.saving.register_keras_serializable(package="kerasimgcls")
class _PartialIdentity(keras.initializers.Initializer):  # type: ignore[misc]
    """Conv kernel: uniform in ``+-1/sqrt(fan_in)``, first ``in`` filters identity.

    airbench's "dirac" initialisation: the first ``in_channels`` output channels
    start as the identity (an implicit residual), the others as PyTorch's default.
    """

    def __call__(self, shape: Any, dtype: Any = None) -> Any:
        height, width, channels_in, channels_out = (int(size) for size in shape)
        limit = 1.0 / np.sqrt(height * width * channels_in)
        kernel = keras.random.uniform(
            shape, -limit, limit, dtype=dtype, seed=keras.random.SeedGenerator()
        )
        identity = np.zeros((height, width, channels_in, channels_out), "float32")
        count = min(channels_in, channels_out)
        identity[height // 2, width // 2, np.arange(count), np.arange(count)] = 1.0
        mask = np.zeros_like(identity)
        mask[..., :count] = 1.0
        return kernel * (1.0 - mask) + keras.ops.cast(identity, kernel.dtype)


@keras.saving.register_keras_serializable(package="kerasimgcls")
class _ScaledBias(keras.layers.Layer):  # type: ignore[misc]
    """Add a per-channel bias stored divided by ``multiplier``.

    The effective bias is ``multiplier * b``, so SGD moves it ``multiplier**2``
    times faster than an ordinary bias: airbench's 64x learning rate for the batch
    norm biases is ``multiplier=8``. Decoupled weight decay keeps its strength.
    """

    def __init__(self, multiplier: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.multiplier = float(multiplier)

    def build(self, input_shape: Any) -> None:
        self.bias = self.add_weight(
            shape=(int(input_shape[-1]),), initializer="zeros", name="bias"
        )

    def call(self, inputs: Any) -> Any:
        return inputs + keras.ops.cast(self.bias * self.multiplier, inputs.dtype)

    def get_config(self) -> dict[str, Any]:
        config: dict[str, Any] = super().get_config()
        config["multiplier"] = self.multiplier
        return config


def _airbench_group(
    x: Any, filters: int, momentum: float, bias_multiplier: float, name: str
) -> Any:
    """Conv, max-pool, BN, GELU, conv, BN, GELU: one airbench ``ConvGroup``."""
    common: dict[str, Any] = {
        "kernel_size": 3,
        "padding": "same",
        "use_bias": False,
        "kernel_initializer": _PartialIdentity(),
    }
    # Batch norm without a learned scale; its bias is a _ScaledBias (faster lr).
    batch_norm: dict[str, Any] = {
        "momentum": momentum,
        "epsilon": 1e-5,
        "scale": False,
        "center": False,
    }
    x = keras.layers.Conv2D(filters, name=f"{name}_conv1", **common)(x)
    x = keras.layers.MaxPooling2D(2, name=f"{name}_pool")(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn1", **batch_norm)(x)
    x = _ScaledBias(bias_multiplier, name=f"{name}_bias1")(x)
    x = keras.layers.Activation("gelu", name=f"{name}_act1")(x)
    x = keras.layers.Conv2D(filters, name=f"{name}_conv2", **common)(x)
    x = keras.layers.BatchNormalization(name=f"{name}_bn2", **batch_norm)(x)
    x = _ScaledBias(bias_multiplier, name=f"{name}_bias2")(x)
    return keras.layers.Activation("gelu", name=f"{name}_act2")(x)


@register_model("airbench_cnn", max_image_size=64)
def build_airbench_cnn(
    *,
    input_shape: Sequence[int] = (32, 32, 3),
    num_classes: int = 10,
    widths: Sequence[int] = (64, 256, 256),
    whitening_images: ArrayLike | None = None,
    whitening_kernel_size: int = 2,
    batch_norm_momentum: float = 0.6,
    logit_scale: float = 1.0 / 9.0,
    bias_lr_scale: float = 64.0,
    whitening_standardize: bool = False,
    whitening_epsilon: float = 5e-4,
    whitening_dtype: str | None = None,
    batch_norm_batch_size: int | None = None,
    name: str = "airbench_cnn",
) -> keras.Model:
    """Build the fast CIFAR-10 network of cifar10-airbench (``airbench94``) in Keras.

    A frozen patch-whitening convolution (``2x2``, valid padding,
    ``2 * 4 * channels`` filters computed by :func:`~kerasimgcls.models.patch_whitening_kernel` from
    ``whitening_images``) with GELU, then three groups of
    conv-pool-BN-GELU-conv-BN-GELU with ``widths`` filters (batch normalisation
    without a learned scale, as airbench freezes it, and with biases that learn
    ``bias_lr_scale`` times faster; each convolution starts with its first
    input-many filters as the identity), a global max pool and a
    bias-free linear layer whose logits are multiplied by ``logit_scale`` before
    the softmax. At the default widths it has about 1.97 million parameters and
    costs about 118 million multiply-adds per 32x32 image; ``widths=(32, 128, 128)``
    is about four times cheaper. Train it with Nesterov SGD, a triangular
    learning-rate schedule, label smoothing and flip/translate augmentation (the
    ``airbench`` recipe).

    Args:
        input_shape: ``(height, width, channels)``; at least 16x16 (three poolings
            after the whitening layer).
        num_classes: Number of classes.
        widths: Filters of the three convolution groups.
        whitening_images: Training images (uint8, or float in [0, 1]) from which
            the whitening kernel is computed; a few thousand suffice. ``None`` makes
            the first layer an ordinary trainable convolution of the same shape.
        whitening_kernel_size: Patch size of the whitening layer.
        batch_norm_momentum: Keras momentum of the moving statistics (airbench's
            0.6; its ``BatchNorm`` wrapper passes PyTorch ``1 - 0.6``), per step,
            or per 1,024 images with ``batch_norm_batch_size``.
        logit_scale: Multiplier of the logits (airbench uses 1/9).
        bias_lr_scale: How much faster than the other weights the batch-norm
            biases learn under SGD (airbench's 64). Each bias is stored divided by
            ``sqrt(bias_lr_scale)`` and multiplied back in the forward pass.
        whitening_standardize: Compute the whitening from per-channel
            standardised images, as airbench does (see
            :func:`~kerasimgcls.models.patch_whitening_kernel`); ``False`` whitens the [0, 1] pixels.
        whitening_epsilon: The whitening's ``epsilon`` (airbench's 5e-4 is meant
            for standardised images).
        whitening_dtype: ``"float32"`` keeps the whitening convolution in float32
            under a mixed-precision policy (it amplifies its weakest directions
            about 40 times, more than bfloat16's 8 bits of mantissa keep);
            ``None`` follows the policy.
        batch_norm_batch_size: The training batch size, to read
            ``batch_norm_momentum`` as the momentum per 1,024 images (airbench's
            batch): the layers get ``batch_norm_momentum ** (batch_norm_batch_size
            / 1024)``, the same memory in images at any batch size (0.6 at 1,024
            is about 0.88 at 256). ``None`` uses ``batch_norm_momentum`` per step.
        name: Name of the model.

    Returns:
        The (uncompiled) model: float images in [0, 1] in, class probabilities out.

    Raises:
        ValueError: If ``input_shape`` is not three positive integers or is smaller
            than 16x16, ``widths`` does not have three positive entries, the
            whitening images do not match ``input_shape``'s channels,
            ``batch_norm_momentum`` is outside [0, 1), ``bias_lr_scale`` or
            ``whitening_epsilon`` is not positive, or ``whitening_dtype`` is not
            ``None`` or ``"float32"``.
        TypeError: If ``widths`` is not a sequence, or ``bias_lr_scale`` or
            ``batch_norm_momentum`` is not a number.

    Example:
        >>> import numpy as np
        >>> from kerasimgcls import build_airbench_cnn
        >>> images = np.random.default_rng(0).integers(0, 256, (32, 32, 32, 3), np.uint8)
        >>> model = build_airbench_cnn(widths=(16, 32, 32), whitening_images=images)
        >>> model.get_layer("whiten").trainable
        False
        >>> tuple(model.output_shape)
        (None, 10)
    """
    shape = check_input_shape(input_shape)
    num_classes = check_positive_int(num_classes, "num_classes")
    group_widths = _check_widths(widths)
    kernel_size = check_positive_int(whitening_kernel_size, "whitening_kernel_size")
    check_min_size(shape, input_shape, 16, "airbench_cnn's three poolings")
    bias_scale, momentum = _airbench_rates(
        bias_lr_scale, batch_norm_momentum, batch_norm_batch_size
    )
    epsilon = check_scalar(
        whitening_epsilon, "whitening_epsilon", min_val=0.0, include_min=False
    )
    if whitening_dtype is not None:
        check_choice(whitening_dtype, "whitening_dtype", ("float32",))
    weights = None
    if whitening_images is not None:
        weights = _airbench_whitening(
            whitening_images, shape, kernel_size, epsilon, whitening_standardize
        )
    inputs = keras.Input(shape, name="images")
    x = _airbench_whiten_layer(inputs, kernel_size, weights, whitening_dtype)
    for index, filters in enumerate(group_widths, start=1):
        x = _airbench_group(
            x,
            filters,
            momentum,
            float(np.sqrt(bias_scale)),
            f"block{index}",
        )
    outputs = _airbench_head(x, num_classes, float(logit_scale))
    return keras.Model(inputs, outputs, name=name)


def _airbench_head(x: Any, num_classes: int, logit_scale: float) -> Any:
    """Global max pool, bias-free dense, scaled logits, float32 softmax."""
    x = keras.layers.GlobalMaxPooling2D(name="head_maxpool")(x)
    x = keras.layers.Dense(num_classes, use_bias=False, name="head_dense")(x)
    x = keras.layers.Rescaling(logit_scale, name="head_scale")(x)
    # Float32 probabilities under a mixed (bfloat16) policy.
    return keras.layers.Activation("softmax", dtype="float32", name="head_predictions")(
        x
    )


def _airbench_rates(
    bias_lr_scale: object,
    batch_norm_momentum: object,
    batch_norm_batch_size: object,
) -> tuple[float, float]:
    """Check the bias learning-rate scale and the momentum; the momentum per step."""
    bias_scale = check_scalar(
        bias_lr_scale,
        "bias_lr_scale",
        min_val=0,
        include_min=False,
        expected="positive",
    )
    momentum = float(
        check_scalar(
            batch_norm_momentum,
            "batch_norm_momentum",
            min_val=0,
            max_val=1,
            include_max=False,
            expected="in [0, 1)",
        )
    )
    if batch_norm_batch_size is not None:
        per_batch = check_scalar(
            batch_norm_batch_size, "batch_norm_batch_size", kind=int, min_val=1
        )
        momentum = momentum ** (per_batch / 1024.0)
    return bias_scale, momentum


def _airbench_whitening(
    images: ArrayLike,
    shape: tuple[int, int, int],
    kernel_size: int,
    epsilon: float,
    standardize: bool,
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """The whitening layer's ``(kernel, bias)`` from images of ``shape``'s channels."""
    sample = np.asarray(images)
    if sample.ndim != 4 or sample.shape[-1] != shape[2]:
        raise ValueError(
            "whitening_images must have shape (n, height, width, "
            f"{shape[2]}) to match input_shape; received shape {sample.shape}"
        )
    return patch_whitening_kernel(
        sample,
        kernel_size=kernel_size,
        epsilon=epsilon,
        standardize=standardize,
    )


def _airbench_whiten_layer(
    inputs: Any,
    kernel_size: int,
    weights: tuple[NDArray[np.float32], NDArray[np.float32]] | None,
    dtype: str | None,
) -> Any:
    """The whitening convolution (frozen when ``weights`` are given) and its GELU."""
    whiten = keras.layers.Conv2D(
        2 * kernel_size * kernel_size * inputs.shape[-1],
        kernel_size,
        padding="valid",
        name="whiten",
        dtype=dtype,
    )
    x = whiten(inputs)
    if weights is not None:
        whiten.set_weights(list(weights))
        whiten.trainable = False
    return keras.layers.Activation("gelu", name="whiten_act")(x)
