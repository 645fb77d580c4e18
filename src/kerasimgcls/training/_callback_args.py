"""The arguments of the configurable callbacks, checked without Keras.

:class:`~kerasimgcls.WeightAveraging` and :class:`~kerasimgcls.FineTune` check
their arguments here, and so does :class:`~kerasimgcls.TrainingConfig` for its
``weight_averaging`` and ``fine_tune`` fields, so the command line refuses a bad
``--weight-averaging`` or ``--fine-tune`` before TensorFlow starts or any data
loads, with the same words the callbacks use. Each table maps an argument to its
default and its check.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

from kerasimgcls._validation import check_bool, check_positive_int, check_scalar

__all__ = ["AVERAGING_ARGUMENTS", "FINE_TUNE_ARGUMENTS", "checked_arguments"]

Check = Callable[[Any, str], Any]
ArgumentTable = Mapping[str, tuple[Any, Check]]


def _layer_name(value: object, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a layer name; received {name}={value!r}")
    return value


def _count_or_all(value: object, name: str) -> int | None:
    return None if value is None else check_positive_int(value, name, allow_zero=True)


#: :class:`~kerasimgcls.WeightAveraging`'s arguments: ``name: (default, check)``.
AVERAGING_ARGUMENTS: ArgumentTable = {
    "decay": (0.999, functools.partial(check_scalar, min_val=0.0, max_val=1.0)),
    "every": (1, functools.partial(check_scalar, kind=int, min_val=1)),
    "lookahead": (False, check_bool),
    "ramp_power": (0.0, functools.partial(check_scalar, min_val=0.0)),
    "total_steps": (
        None,
        functools.partial(check_scalar, kind=int, min_val=1, allow_none=True),
    ),
    "validate_with_average": (True, check_bool),
}

#: :class:`~kerasimgcls.FineTune`'s arguments: ``name: (default, check)``.
FINE_TUNE_ARGUMENTS: ArgumentTable = {
    "warmup_epochs": (3, functools.partial(check_positive_int, allow_zero=True)),
    "unfreeze_layers": (20, _count_or_all),
    "learning_rate_factor": (
        0.1,
        functools.partial(check_scalar, min_val=0.0, max_val=1.0, include_min=False),
    ),
    "backbone": ("backbone", _layer_name),
    "train_batch_norm": (False, check_bool),
}


def checked_arguments(
    table: ArgumentTable, values: object, name: str | None = None
) -> dict[str, Any]:
    """Return every argument of ``table``: ``values``' checked, the others' defaults.

    Args:
        table: :data:`AVERAGING_ARGUMENTS` or :data:`FINE_TUNE_ARGUMENTS`.
        values: A mapping of argument names to values.
        name: The configuration field, named in every error; ``None`` for the
            callback's own arguments.

    Raises:
        TypeError: If ``values`` is not a mapping or a value has the wrong type.
        ValueError: If a key is not an argument or a value is out of range.

    Example:
        >>> checked_arguments(AVERAGING_ARGUMENTS, {"decay": 0.9})["every"]
        1
    """
    prefix = "" if name is None else f"{name}: "
    if not isinstance(values, Mapping):
        raise TypeError(
            f"{name} must be None or a mapping of arguments; received {name}={values!r}"
        )
    unknown = sorted(str(key) for key in values if key not in table)
    if unknown:
        raise ValueError(
            f"{name or 'the callback'} takes no argument {', '.join(unknown)}; it "
            f"takes {', '.join(table)}"
        )
    try:
        return {
            key: check(values.get(key, default), key)
            for key, (default, check) in table.items()
        }
    except (TypeError, ValueError) as err:
        raise type(err)(f"{prefix}{err}") from err
