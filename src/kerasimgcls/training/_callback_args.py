"""The arguments of the configurable callbacks, checked without Keras.

:class:`~kerasimgcls.WeightAveraging` and :class:`~kerasimgcls.FineTune` check
their arguments here, and so does :class:`~kerasimgcls.TrainingConfig` for its
``weight_averaging`` and ``fine_tune`` fields, so the command line refuses a bad
``--weight-averaging`` or ``--fine-tune`` before TensorFlow starts or any data
loads, with the same words the callbacks use.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from kerasimgcls._validation import check_bool, check_positive_int, check_scalar

__all__ = ["averaging_arguments", "checked_arguments", "fine_tune_arguments"]


def averaging_arguments(
    decay: object = 0.999,
    *,
    every: object = 1,
    lookahead: object = False,
    ramp_power: object = 0.0,
    total_steps: object = None,
    validate_with_average: object = True,
) -> dict[str, Any]:
    """Return :class:`~kerasimgcls.WeightAveraging`'s arguments, checked.

    Raises:
        TypeError: If an argument has the wrong type.
        ValueError: If an argument is out of range.

    Example:
        >>> averaging_arguments(0.95, every=5)["every"]
        5
    """
    return {
        "decay": check_scalar(decay, "decay", min_val=0.0, max_val=1.0),
        "every": check_scalar(every, "every", kind=int, min_val=1),
        "lookahead": check_bool(lookahead, "lookahead"),
        "ramp_power": check_scalar(ramp_power, "ramp_power", min_val=0.0),
        "total_steps": check_scalar(
            total_steps, "total_steps", kind=int, min_val=1, allow_none=True
        ),
        "validate_with_average": check_bool(
            validate_with_average, "validate_with_average"
        ),
    }


def fine_tune_arguments(
    *,
    warmup_epochs: object = 3,
    unfreeze_layers: object = 20,
    learning_rate_factor: object = 0.1,
    backbone: object = "backbone",
    train_batch_norm: object = False,
) -> dict[str, Any]:
    """Return :class:`~kerasimgcls.FineTune`'s arguments, checked.

    Raises:
        TypeError: If an argument has the wrong type.
        ValueError: If an argument is out of range.

    Example:
        >>> fine_tune_arguments(warmup_epochs=2)["unfreeze_layers"]
        20
    """
    if not isinstance(backbone, str) or not backbone:
        raise ValueError(
            f"backbone must be a layer name; received backbone={backbone!r}"
        )
    return {
        "warmup_epochs": check_positive_int(
            warmup_epochs, "warmup_epochs", allow_zero=True
        ),
        "unfreeze_layers": None
        if unfreeze_layers is None
        else check_positive_int(unfreeze_layers, "unfreeze_layers", allow_zero=True),
        "learning_rate_factor": check_scalar(
            learning_rate_factor,
            "learning_rate_factor",
            min_val=0.0,
            max_val=1.0,
            include_min=False,
        ),
        "backbone": backbone,
        "train_batch_norm": check_bool(train_batch_norm, "train_batch_norm"),
    }


def checked_arguments(
    check: Callable[..., dict[str, Any]], values: object, name: str
) -> dict[str, Any]:
    """Return ``check(**values)``, naming the field ``name`` in any error.

    Raises:
        TypeError: If ``values`` is not a mapping or a value has the wrong type.
        ValueError: If a key is not an argument of ``check`` or a value is out
            of range.

    Example:
        >>> checked_arguments(averaging_arguments, {"decay": 0.9}, "weight_averaging")[
        ...     "decay"]
        0.9
    """
    if not isinstance(values, Mapping):
        raise TypeError(
            f"{name} must be None or a mapping of arguments; received {name}={values!r}"
        )
    accepted = list(inspect.signature(check).parameters)
    unknown = sorted(str(key) for key in values if key not in accepted)
    if unknown:
        raise ValueError(
            f"{name} takes no argument {', '.join(unknown)}; it takes "
            f"{', '.join(accepted)}"
        )
    try:
        return check(**values)
    except (TypeError, ValueError) as err:
        raise type(err)(f"{name}: {err}") from err
