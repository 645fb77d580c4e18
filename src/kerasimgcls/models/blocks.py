"""Composable building blocks: plain functions, tensor in and tensor out.

Each block names every layer it creates from a prefix (``block2_conv``,
``block2_pool``, ...), so summaries, Grad-CAM layer lookups and saved models stay
readable.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import keras

from kerasimgcls._validation import (
    check_activation,
    check_choice,
    check_int_pair,
    check_optional_rate,
    check_positive_int,
)

__all__ = ["conv_block", "dense_head"]

Padding = Literal["same", "valid"]
Pooling = Literal["flatten", "avg", "max"]


def _block_name(name: str | None, prefix: str) -> str:
    if name is None:
        return f"{prefix}_{keras.backend.get_uid(prefix)}"
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string; received name={name!r}")
    return name


def _check_rank(inputs: Any, rank: int, what: str) -> tuple[int | None, ...]:
    shape = getattr(inputs, "shape", None)
    if shape is None or len(shape) != rank:
        raise ValueError(
            f"inputs must be a {rank}-D tensor {what}; received inputs with shape "
            f"{None if shape is None else tuple(shape)}"
        )
    return tuple(shape)


def conv_block(
    inputs: Any,
    filters: int,
    *,
    kernel_size: int | tuple[int, int] = 3,
    strides: int | tuple[int, int] = 1,
    activation: str = "relu",
    padding: Padding = "same",
    pool_size: int | tuple[int, int] | None = 2,
    dropout: float | None = None,
    batch_norm: bool = False,
    batch_norm_momentum: float = 0.99,
    name: str | None = None,
) -> Any:
    """Add a 2-D convolution block: conv + activation, then pool, dropout, batch norm.

    The order is the one the reference CIFAR-10 CNN uses: the convolution with its
    activation, then (each optional) max pooling, dropout and batch normalisation.
    The layers are named ``{name}_conv``, ``{name}_pool``, ``{name}_dropout`` and
    ``{name}_bn``.

    Args:
        inputs: A 4-D Keras tensor of shape ``(batch, height, width, channels)``.
        filters: Number of convolution filters (output channels), positive.
        kernel_size: Height and width of the convolution window, an integer or a pair.
        strides: Strides of the convolution, an integer or a pair.
        activation: Name of a Keras activation applied after the convolution.
        padding: ``"same"`` keeps the spatial size (at stride 1), ``"valid"`` does not
            pad.
        pool_size: Size of the max-pooling window (its stride too), or ``None`` for no
            pooling.
        dropout: Dropout rate in ``[0, 1)`` after pooling, or ``None`` (or ``0``) for no
            dropout layer.
        batch_norm: Whether to end the block with batch normalisation.
        batch_norm_momentum: Momentum of the batch-normalisation moving statistics,
            in ``(0, 1)``. Keras' default 0.99 suits long runs; small datasets with
            few steps per epoch evaluate far better with 0.9 (the moving statistics
            otherwise lag behind the weights).
        name: Prefix for the layer names; a unique ``conv_block_<n>`` if omitted.

    Returns:
        The block's output tensor.

    Raises:
        ValueError: If an argument is out of range (the message names it), or the
            block would shrink the feature map to nothing.
        TypeError: If an integer argument is not an integer.

    Example:
        >>> import keras
        >>> from kerasimgcls import conv_block
        >>> inputs = keras.Input((32, 32, 3))
        >>> x = conv_block(inputs, 64, pool_size=2, dropout=0.2, batch_norm=True,
        ...                name="block2")
        >>> tuple(x.shape)
        (None, 16, 16, 64)
    """
    filters = check_positive_int(filters, "filters")
    kernel = check_int_pair(kernel_size, "kernel_size")
    stride = check_int_pair(strides, "strides")
    activation = check_activation(activation)
    padding = check_choice(padding, "padding", ("same", "valid"))  # type: ignore[assignment]
    pool = None if pool_size is None else check_int_pair(pool_size, "pool_size")
    rate = check_optional_rate(dropout, "dropout")
    if not isinstance(batch_norm, bool):
        raise TypeError(
            f"batch_norm must be a bool; received batch_norm={batch_norm!r}"
        )
    momentum = _check_momentum(batch_norm_momentum)
    name = _block_name(name, "conv_block")
    shape = _check_rank(inputs, 4, "of shape (batch, height, width, channels)")
    _check_output_size(shape[1:3], kernel, stride, padding, pool, name)

    x = keras.layers.Conv2D(
        filters,
        kernel,
        strides=stride,
        padding=padding,
        activation=activation,
        name=f"{name}_conv",
    )(inputs)
    if pool is not None:
        x = keras.layers.MaxPooling2D(pool, name=f"{name}_pool")(x)
    if rate is not None:
        x = keras.layers.Dropout(rate, name=f"{name}_dropout")(x)
    if batch_norm:
        x = keras.layers.BatchNormalization(momentum=momentum, name=f"{name}_bn")(x)
    return x


def _check_momentum(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(
            "batch_norm_momentum must be a float in (0, 1); received "
            f"batch_norm_momentum={value!r}"
        )
    if not 0.0 < float(value) < 1.0:
        raise ValueError(
            "batch_norm_momentum must be in (0, 1); received "
            f"batch_norm_momentum={value!r}"
        )
    return float(value)


def _check_output_size(
    spatial: tuple[int | None, ...],
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: str,
    pool: tuple[int, int] | None,
    name: str,
) -> None:
    for axis, size in zip(("height", "width"), spatial, strict=True):
        if size is None:
            continue
        i = 0 if axis == "height" else 1
        if padding == "valid":
            out = (size - kernel[i]) // stride[i] + 1
        else:
            out = -(-size // stride[i])
        if pool is not None:
            out //= pool[i]
        if out < 1:
            raise ValueError(
                f"conv_block {name!r} would shrink the input {axis} of {size} to "
                f"{out} (kernel_size={kernel}, strides={stride}, padding={padding!r}, "
                f"pool_size={pool}); use a smaller kernel_size or pool_size, "
                "padding='same', or a larger input"
            )


def _check_units(units: object) -> list[int]:
    """The hidden layers' sizes of :func:`dense_head`, checked."""
    if isinstance(units, (str, bytes)) or not isinstance(units, Sequence):
        raise TypeError(
            f"units must be a sequence of positive integers; received units={units!r}"
        )
    return [check_positive_int(u, "units") for u in units]


def _check_head_inputs(inputs: Any) -> Any:
    """The shape of :func:`dense_head`'s input tensor, of rank 2 or more."""
    shape = getattr(inputs, "shape", None)
    if shape is None or len(shape) < 2:
        raise ValueError(
            "inputs must be a Keras tensor of shape (batch, features) or "
            f"(batch, height, width, channels); received shape {shape}"
        )
    return shape


def _predictions(x: Any, num_classes: int, activation: str, name: str) -> Any:
    """The output layer: float32 probabilities under a mixed policy too."""
    # Under a mixed policy (bfloat16 compute) the probabilities stay float32, as
    # Keras' mixed-precision guide recommends for the last layer.
    policy = keras.mixed_precision.global_policy()
    output_dtype = "float32" if policy.compute_dtype != policy.variable_dtype else None
    return keras.layers.Dense(
        num_classes,
        activation=activation,
        dtype=output_dtype,
        name=f"{name}_predictions",
    )(x)


def _pool(x: Any, pooling: str, name: str) -> Any:
    """Flatten a feature map, or pool it globally (``"avg"`` or ``"max"``)."""
    if pooling == "flatten":
        return keras.layers.Flatten(name=f"{name}_flatten")(x)
    if pooling == "avg":
        return keras.layers.GlobalAveragePooling2D(name=f"{name}_avgpool")(x)
    return keras.layers.GlobalMaxPooling2D(name=f"{name}_maxpool")(x)


def _hidden_dense(
    x: Any,
    size: int,
    activation: str,
    rate: float | None,
    momentum: float | None,
    prefix: str,
) -> Any:
    """Dense, then dropout (``rate``) and batch norm (``momentum``) if not ``None``."""
    x = keras.layers.Dense(size, activation=activation, name=prefix)(x)
    if rate is not None:
        x = keras.layers.Dropout(rate, name=f"{prefix}_dropout")(x)
    if momentum is not None:
        x = keras.layers.BatchNormalization(momentum=momentum, name=f"{prefix}_bn")(x)
    return x


def dense_head(
    inputs: Any,
    num_classes: int,
    *,
    units: Sequence[int] = (32,),
    pooling: Pooling = "flatten",
    input_dropout: float | None = 0.2,
    dropout: float | None = 0.3,
    batch_norm: bool = True,
    batch_norm_momentum: float = 0.99,
    activation: str = "relu",
    output_activation: str = "softmax",
    name: str | None = None,
) -> Any:
    """Add a classifier head: flatten, dropout, dense layers, then the class scores.

    The head reduces the feature map (``pooling``), applies ``input_dropout``, then
    for each entry of ``units`` a dense layer with ``activation`` followed by
    ``dropout`` and batch normalisation, and ends with a dense layer of
    ``num_classes`` units and ``output_activation``. The defaults are the reference
    CIFAR-10 head. Layers are named ``{name}_flatten``, ``{name}_dropout``,
    ``{name}_dense1``, ``{name}_dense1_dropout``, ``{name}_dense1_bn``, ...,
    ``{name}_predictions``.

    Args:
        inputs: A Keras tensor: 4-D feature maps or already flat 2-D features.
        num_classes: Number of classes (units of the output layer), positive.
        units: Sizes of the hidden dense layers; empty for a linear classifier.
        pooling: ``"flatten"`` keeps every position, ``"avg"`` or ``"max"`` pool each
            channel globally first (far fewer parameters for large feature maps).
        input_dropout: Dropout rate after pooling, or ``None`` for none.
        dropout: Dropout rate after each hidden dense layer, or ``None`` for none.
        batch_norm: Whether to add batch normalisation after each hidden layer.
        batch_norm_momentum: Momentum of the batch-normalisation moving statistics,
            in ``(0, 1)`` (see :func:`conv_block`).
        activation: Activation of the hidden dense layers.
        output_activation: Activation of the output layer; ``"softmax"`` gives class
            probabilities, ``"linear"`` gives logits.
        name: Prefix for the layer names; a unique ``dense_head_<n>`` if omitted.

    Returns:
        The class scores, a tensor of shape ``(batch, num_classes)``.

    Raises:
        ValueError: If an argument is out of range; the message names it.
        TypeError: If an integer argument is not an integer.

    Example:
        >>> import keras
        >>> from kerasimgcls import dense_head
        >>> features = keras.Input((8, 8, 128))
        >>> outputs = dense_head(features, 10, units=(32,), name="head")
        >>> tuple(outputs.shape)
        (None, 10)
    """
    num_classes = check_positive_int(num_classes, "num_classes")
    hidden = _check_units(units)
    pooling = check_choice(pooling, "pooling", ("flatten", "avg", "max"))  # type: ignore[assignment]
    first_rate = check_optional_rate(input_dropout, "input_dropout")
    rate = check_optional_rate(dropout, "dropout")
    if not isinstance(batch_norm, bool):
        raise TypeError(
            f"batch_norm must be a bool; received batch_norm={batch_norm!r}"
        )
    momentum = _check_momentum(batch_norm_momentum)
    activation = check_activation(activation)
    output_activation = check_activation(output_activation, "output_activation")
    name = _block_name(name, "dense_head")
    x = inputs
    if len(_check_head_inputs(inputs)) > 2:
        x = _pool(x, pooling, name)
    if first_rate is not None:
        x = keras.layers.Dropout(first_rate, name=f"{name}_dropout")(x)
    for index, size in enumerate(hidden, start=1):
        x = _hidden_dense(
            x,
            size,
            activation,
            rate,
            momentum if batch_norm else None,
            f"{name}_dense{index}",
        )
    return _predictions(x, num_classes, output_activation, name)
