"""The callback state protocol: what a checkpoint saves of each callback.

Any callback, the library's or the user's, that defines ``state_dict() -> dict``
and ``load_state_dict(state) -> None`` (Lightning's names) is resumable: its state
is saved with every checkpoint and loaded back before a resumed run's first epoch.
Values are JSON data or NumPy arrays (also inside lists and dicts); the arrays
are stored in the checkpoint's ``.npz`` beside the JSON, without pickle.

Keras' own :class:`keras.callbacks.EarlyStopping` has no such methods; it is
adapted here (its ``wait``, ``best``, ``best_epoch``, ``stopped_epoch`` and
``best_weights``), so a user's early stopping resumes exactly too.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import keras
import numpy as np

__all__ = [
    "Stateful",
    "callback_keys",
    "get_state",
    "pack",
    "set_state",
    "unpack",
]

_ARRAY = "__array__"


@runtime_checkable
class Stateful(Protocol):
    """A callback whose state survives a crash."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


def _is_keras_early_stopping(callback: object) -> bool:
    return isinstance(callback, keras.callbacks.EarlyStopping) and not isinstance(
        callback, Stateful
    )


def is_stateful(callback: object) -> bool:
    """Whether the checkpoint saves ``callback``'s state."""
    return isinstance(callback, Stateful) or _is_keras_early_stopping(callback)


def early_stopping_state(callback: keras.callbacks.EarlyStopping) -> dict[str, Any]:
    """The state of a Keras ``EarlyStopping`` (what its ``on_epoch_end`` updates)."""
    best = getattr(callback, "best", None)
    weights = getattr(callback, "best_weights", None)
    return {
        "wait": int(callback.wait),
        "stopped_epoch": int(callback.stopped_epoch),
        "best": None if best is None else float(best),
        "best_epoch": int(getattr(callback, "best_epoch", 0)),
        "best_weights": None if weights is None else [np.asarray(w) for w in weights],
    }


def load_early_stopping_state(
    callback: keras.callbacks.EarlyStopping, state: dict[str, Any]
) -> None:
    """Set a Keras ``EarlyStopping``'s state from :func:`early_stopping_state`.

    Raises:
        ValueError: If a field is missing or of the wrong type (an edited file).
    """
    counts = ("wait", "stopped_epoch", "best_epoch")
    best, weights = state.get("best"), state.get("best_weights")
    if (
        any(type(state.get(key)) is not int or state[key] < 0 for key in counts)
        or not (best is None or (isinstance(best, float | int) and best is not True))
        or not (weights is None or isinstance(weights, list))
    ):
        raise ValueError(
            "the EarlyStopping state must hold non-negative integers wait, "
            "stopped_epoch and best_epoch, a number or null best and a list or null "
            "best_weights"
        )
    callback.wait = int(state["wait"])
    callback.stopped_epoch = int(state["stopped_epoch"])
    callback.best = state["best"]
    callback.best_epoch = int(state["best_epoch"])
    weights = state["best_weights"]
    callback.best_weights = None if weights is None else list(weights)


def get_state(callback: object) -> dict[str, Any]:
    """Return the state of a stateful callback."""
    if _is_keras_early_stopping(callback):
        return early_stopping_state(callback)
    state = callback.state_dict()  # type: ignore[attr-defined]
    if not isinstance(state, dict):
        raise TypeError(
            f"{type(callback).__name__}.state_dict() must return a dict; it "
            f"returned {type(state).__name__}"
        )
    return state


def set_state(callback: object, state: dict[str, Any]) -> None:
    """Load ``state`` (from :func:`get_state`) into ``callback``."""
    if _is_keras_early_stopping(callback):
        load_early_stopping_state(callback, state)
    else:
        callback.load_state_dict(state)  # type: ignore[attr-defined]


def callback_keys(callbacks: Sequence[object]) -> dict[str, object]:
    """Name each stateful callback by its class, numbered when a class repeats."""
    keys: dict[str, object] = {}
    for callback in callbacks:
        if not is_stateful(callback):
            continue
        name = type(callback).__name__
        key, count = name, 1
        while key in keys:
            key, count = f"{name}#{count}", count + 1
        keys[key] = callback
    return keys


def pack(value: Any, arrays: list[np.ndarray[Any, Any]]) -> Any:
    """Return ``value`` as JSON data, moving its NumPy arrays into ``arrays``."""
    if isinstance(value, np.ndarray):
        arrays.append(np.array(value, copy=True))
        return {_ARRAY: len(arrays) - 1}
    if isinstance(value, dict):
        return {str(key): pack(item, arrays) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [pack(item, arrays) for item in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def unpack(value: Any, arrays: Sequence[np.ndarray[Any, Any]]) -> Any:
    """Invert :func:`pack`."""
    if isinstance(value, dict):
        if set(value) == {_ARRAY}:
            return arrays[int(value[_ARRAY])]
        return {key: unpack(item, arrays) for key, item in value.items()}
    if isinstance(value, list):
        return [unpack(item, arrays) for item in value]
    return value
