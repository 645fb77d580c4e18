"""Argument checks of :class:`~kerasimgcls.Trainer`: each names the argument."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import keras

from kerasimgcls._validation import check_choice, check_positive_int
from kerasimgcls.training._schedules import SCHEDULES

__all__ = [
    "check_callbacks",
    "check_class_weight",
    "check_learning_rate",
    "check_optimizer",
    "check_schedule",
    "check_warmup",
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


def check_learning_rate(learning_rate: object) -> float | None:
    if learning_rate is None:
        return None
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, numbers.Real):
        raise TypeError(
            "learning_rate must be a positive float or None; received "
            f"learning_rate={learning_rate!r}"
        )
    if not (math.isfinite(float(learning_rate)) and float(learning_rate) > 0):
        raise ValueError(
            "learning_rate must be a positive finite float; received "
            f"learning_rate={learning_rate!r}"
        )
    return float(learning_rate)


def check_schedule(schedule: object, learning_rate: float | None) -> Any:
    if isinstance(schedule, keras.optimizers.schedules.LearningRateSchedule):
        if learning_rate is not None:
            raise ValueError(
                "pass either a LearningRateSchedule as schedule or learning_rate, "
                f"not both; received learning_rate={learning_rate!r}"
            )
        return schedule
    if schedule is None:
        return None
    return check_choice(schedule, "schedule", SCHEDULES)


def check_warmup(warmup_epochs: object) -> float:
    if isinstance(warmup_epochs, bool) or not isinstance(warmup_epochs, numbers.Real):
        raise TypeError(
            f"warmup_epochs must be a number; received warmup_epochs={warmup_epochs!r}"
        )
    if not (math.isfinite(float(warmup_epochs)) and float(warmup_epochs) >= 0):
        raise ValueError(
            "warmup_epochs must be a non-negative number; received "
            f"warmup_epochs={warmup_epochs!r}"
        )
    return float(warmup_epochs)


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


def check_class_weight(class_weight: object) -> Any:
    if class_weight is None or class_weight == "balanced":
        return class_weight
    if isinstance(class_weight, Mapping):
        checked: dict[int, float] = {}
        for key, value in class_weight.items():
            index = check_positive_int(key, "class_weight key", allow_zero=True)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(
                    f"class_weight values must be numbers; received "
                    f"class_weight[{key!r}]={value!r}"
                )
            if not (math.isfinite(float(value)) and float(value) >= 0):
                raise ValueError(
                    f"class_weight values must be non-negative; received "
                    f"class_weight[{key!r}]={value!r}"
                )
            checked[index] = float(value)
        return checked
    raise ValueError(
        "class_weight must be None, 'balanced' or a mapping from class index to "
        f"weight; received class_weight={class_weight!r}"
    )
