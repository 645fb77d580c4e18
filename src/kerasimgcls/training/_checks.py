"""Checks of what :class:`~kerasimgcls.Trainer` takes besides its configuration.

Numbers and choices are checked once, by :class:`~kerasimgcls.TrainingConfig`
(with :func:`kerasimgcls._validation.check_scalar`); here are the Keras objects
and the data. Each message names the argument.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from kerasimgcls.data import ImageDataset

__all__ = [
    "check_callbacks",
    "check_data",
    "check_image_shape",
    "check_optimizer",
    "check_schedule",
    "check_verbose",
]


def check_optimizer(optimizer: object) -> Any:
    if optimizer is None or isinstance(optimizer, keras.optimizers.Optimizer):
        return optimizer
    if isinstance(optimizer, str):
        try:
            keras.optimizers.get(optimizer)
        except ValueError as err:
            raise ValueError(
                "optimizer must be a Keras optimizer name such as 'adam', 'sgd' "
                f"or 'adamw', or an optimizer; received optimizer={optimizer!r}"
            ) from err
        return optimizer
    raise TypeError(
        "optimizer must be None, a Keras optimizer name or a "
        f"keras.optimizers.Optimizer; received {type(optimizer).__name__}"
    )


def check_schedule(schedule: object, learning_rate: object) -> Any:
    """Refuse a ``LearningRateSchedule`` together with a ``learning_rate``."""
    if (
        isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule)
        and learning_rate is not None
    ):
        raise ValueError(
            "pass either a LearningRateSchedule as schedule or learning_rate, "
            f"not both; received learning_rate={learning_rate!r}"
        )
    return schedule


def check_callbacks(callbacks: object) -> list[keras.callbacks.Callback]:
    if not isinstance(callbacks, Sequence) or isinstance(callbacks, str):
        raise TypeError(
            f"callbacks must be a sequence of Keras callbacks; received {callbacks!r}"
        )
    for callback in callbacks:
        if not isinstance(callback, keras.callbacks.Callback):
            raise TypeError(
                "callbacks must hold keras.callbacks.Callback instances; received "
                f"{type(callback).__name__}"
            )
    return list(callbacks)


def check_verbose(verbose: object) -> int:
    if verbose not in (0, 1, 2) or isinstance(verbose, bool):
        raise ValueError(f"verbose must be 0, 1 or 2; received verbose={verbose!r}")
    return int(verbose)


def check_data(model: keras.Model, data: object) -> ImageDataset:
    """Refuse data that is not an :class:`ImageDataset` or does not fit ``model``."""
    if not isinstance(data, ImageDataset):
        raise TypeError(
            "data must be a kerasimgcls ImageDataset (from load_digits, "
            f"from_arrays, load_cifar10, ...); received {type(data).__name__}"
        )
    if len(data.train) == 0:
        raise ValueError("data.train is empty: there is nothing to train on")
    if data.validation is not None and len(data.validation) == 0:
        raise ValueError(
            "data.validation is empty; use validation_split=0 for no validation"
        )
    outputs = model.output_shape
    if isinstance(outputs, list):
        raise ValueError("model must have a single output (class probabilities)")
    if int(outputs[-1]) != data.num_classes:
        raise ValueError(
            f"the model outputs {outputs[-1]} classes but the dataset has "
            f"num_classes={data.num_classes}; build the model with "
            f"num_classes={data.num_classes}"
        )
    check_image_shape(model, data.input_shape, "data")
    return data


def check_image_shape(model: keras.Model, shape: tuple[int, ...], what: str) -> None:
    expected = tuple(model.input_shape[1:])
    compatible = len(expected) == len(shape) and all(
        want is None or want == got for want, got in zip(expected, shape, strict=True)
    )
    if not compatible:
        raise ValueError(
            f"{what} images have shape {tuple(shape)} but the model expects "
            f"{expected}; build the model with input_shape={tuple(shape)} or "
            "resize the images (image_size=...)"
        )
