"""Private ``check_*`` helpers: the one place user input is checked.

Every helper raises with a message that names the argument exactly as the public
signature spells it, says what is allowed and shows what was received.
"""

from __future__ import annotations

import numbers
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

__all__ = [
    "PRECISIONS",
    "check_activation",
    "check_choice",
    "check_int_pair",
    "check_labels",
    "check_optional_rate",
    "check_path_exists",
    "check_positive_int",
    "check_precision",
    "check_rate",
]


def check_positive_int(value: object, name: str, *, allow_zero: bool = False) -> int:
    """Return ``value`` as an ``int`` if it is a positive integer (or zero if allowed).

    Raises:
        TypeError: If ``value`` is not an integer (``bool`` is rejected too).
        ValueError: If ``value`` is not positive.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(
            f"{name} must be an integer; received {name}={value!r} "
            f"of type {type(value).__name__}"
        )
    low = 0 if allow_zero else 1
    if value < low:
        bound = "a non-negative" if allow_zero else "a positive"
        raise ValueError(f"{name} must be {bound} integer; received {name}={value!r}")
    return int(value)


def check_int_pair(value: object, name: str) -> tuple[int, int]:
    """Return ``value`` as a pair of positive ints; a single int ``k`` means ``(k, k)``.

    Raises:
        TypeError: If ``value`` is neither an integer nor a sequence of two integers.
        ValueError: If any entry is not positive.
    """
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        size = check_positive_int(value, name)
        return (size, size)
    if isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2:
        first = check_positive_int(value[0], name)
        second = check_positive_int(value[1], name)
        return (first, second)
    raise TypeError(
        f"{name} must be a positive integer or a pair of positive integers; "
        f"received {name}={value!r}"
    )


def check_rate(value: object, name: str) -> float:
    """Return ``value`` as a float in ``[0, 1)``.

    Raises:
        TypeError: If ``value`` is not a real number.
        ValueError: If ``value`` is outside ``[0, 1)`` or not finite.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(
            f"{name} must be a float in [0, 1); received {name}={value!r} "
            f"of type {type(value).__name__}"
        )
    rate = float(value)
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"{name} must be in [0, 1); received {name}={value!r}")
    return rate


def check_optional_rate(value: object, name: str) -> float | None:
    """Like :func:`check_rate`, but ``None`` (and ``0``) mean "no layer"."""
    if value is None:
        return None
    rate = check_rate(value, name)
    return rate if rate > 0.0 else None


def check_choice(value: object, name: str, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``choices``.

    Raises:
        ValueError: If ``value`` is not one of ``choices``; the message lists them.
    """
    if not isinstance(value, str) or value not in choices:
        raise ValueError(
            f"{name} must be one of {sorted(choices)}; received {name}={value!r}"
        )
    return value


def check_activation(value: object, name: str = "activation") -> str:
    """Return ``value`` if Keras knows an activation of that name.

    Raises:
        ValueError: If Keras has no activation called ``value``.
    """
    import keras

    if not isinstance(value, str):
        raise TypeError(
            f"{name} must be the name of a Keras activation such as 'relu'; "
            f"received {name}={value!r}"
        )
    try:
        keras.activations.get(value)
    except (ValueError, TypeError) as err:
        raise ValueError(
            f"{name} must be the name of a Keras activation such as 'relu', "
            f"'gelu' or 'softmax'; received {name}={value!r}"
        ) from err
    return value


def check_labels(
    labels: Any, num_classes: int, name: str = "labels"
) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Return ``labels`` as a 1-D int64 array with every value in ``[0, num_classes)``.

    Raises:
        ValueError: If ``labels`` is not 1-D integral, or a label is out of range;
            the message names the first bad value and its index.
    """
    array = np.asarray(labels)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(
            f"{name} must be a 1-D array of integer class indices; "
            f"received an array of shape {array.shape}"
        )
    integral = np.issubdtype(array.dtype, np.integer)
    whole_floats = np.issubdtype(array.dtype, np.floating) and bool(
        np.all(np.isfinite(array) & (array == np.round(array)))
    )
    if array.size and not (integral or whole_floats):
        raise ValueError(
            f"{name} must hold integer class indices; received dtype {array.dtype}"
        )
    array = array.astype(np.int64, copy=False)
    bad = np.flatnonzero((array < 0) | (array >= num_classes))
    if bad.size:
        index = int(bad[0])
        raise ValueError(
            f"{name} must be in [0, num_classes) = [0, {num_classes}); "
            f"received {name}[{index}]={int(array[index])} "
            f"({bad.size} value(s) out of range)"
        )
    return array


def check_path_exists(
    path: str | os.PathLike[str],
    name: str,
    *,
    kind: Literal["file", "dir", "any"] = "any",
) -> Path:
    """Return ``path`` as a :class:`~pathlib.Path` if it exists (as the given kind).

    Raises:
        FileNotFoundError: If nothing exists at ``path``.
        NotADirectoryError: If ``kind="dir"`` and ``path`` is not a directory.
        IsADirectoryError: If ``kind="file"`` and ``path`` is a directory.
    """
    resolved = Path(path)
    if not resolved.exists():
        raise FileNotFoundError(f"{name} does not exist: {str(resolved)!r}")
    if kind == "dir" and not resolved.is_dir():
        raise NotADirectoryError(f"{name} must be a directory: {str(resolved)!r}")
    if kind == "file" and resolved.is_dir():
        raise IsADirectoryError(f"{name} must be a file: {str(resolved)!r}")
    return resolved


# The compute precisions (see kerasimgcls.layers.PRECISIONS); here so the recipes and
# the command line can check them without importing Keras.
PRECISIONS = ("float32", "mixed_bfloat16")


def check_precision(precision: object) -> str:
    """Return ``precision`` if it is a known precision, else raise ValueError."""
    if precision not in PRECISIONS:
        raise ValueError(
            f"precision must be one of {list(PRECISIONS)}; received "
            f"precision={precision!r}"
        )
    return str(precision)
