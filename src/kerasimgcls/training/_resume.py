"""Checkpoints for exact resume: every variable, the optimizer, RNG and loop state.

One file, ``checkpoints/last.npz``, written atomically after every completed epoch,
holds everything a restarted process needs to continue as if it had never stopped:

- every model variable in order (weights, batch-norm statistics and the state of
  every :class:`keras.random.SeedGenerator`, which is what dropout draws from);
- every optimizer variable (slots and the iteration count, which drives the
  learning-rate schedule);
- the state of every stateful callback (early stopping with its best weights,
  user callbacks; see :mod:`kerasimgcls.training._state`), its arrays stored
  beside the JSON;
- a JSON document: completed epochs, history rows, whether training had stopped,
  the callbacks' states, and the configuration the run must match to be resumed.

The data order and augmentation of epoch ``e`` depend only on ``(seed, e)``, so with
op determinism the continuation is bit-identical. Arrays are stored without pickle
and read with ``allow_pickle=False``.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kerasimgcls._io import atomic_path
from kerasimgcls._validation import short_repr

__all__ = ["load_checkpoint", "restore_variables", "save_checkpoint", "snapshot"]

FORMAT_VERSION = 2


def snapshot(variables: Sequence[Any]) -> list[np.ndarray[Any, Any]]:
    """Return a copy of the values of ``variables`` as NumPy arrays."""
    return [np.array(variable.numpy(), copy=True) for variable in variables]


def restore_variables(
    variables: Sequence[Any], values: Sequence[np.ndarray[Any, Any]], what: str
) -> None:
    """Assign ``values`` to ``variables`` in order, checking count and shapes.

    Raises:
        ValueError: If the counts or a shape differ (a different model or optimizer).
    """
    if len(variables) != len(values):
        raise ValueError(
            f"the checkpoint holds {len(values)} {what} variables but the current "
            f"{what} has {len(variables)}: it was written for a different {what}"
        )
    for variable, value in zip(variables, values, strict=True):
        if tuple(variable.shape) != tuple(value.shape):
            raise ValueError(
                f"the checkpoint's {what} variable for {variable.path!r} has shape "
                f"{tuple(value.shape)}, the current one {tuple(variable.shape)}: it "
                f"was written for a different {what}"
            )
        variable.assign(value)


def save_checkpoint(
    path: str | os.PathLike[str],
    *,
    state: dict[str, Any],
    groups: Mapping[str, Sequence[np.ndarray[Any, Any]]],
) -> Path:
    """Write ``state`` (JSON) and named groups of arrays to one ``.npz``, atomically."""
    arrays: dict[str, np.ndarray[Any, Any]] = {}
    for group, values in groups.items():
        for index, value in enumerate(values):
            arrays[f"{group}/{index:05d}"] = np.asarray(value)
    document = {"format_version": FORMAT_VERSION, **state}
    arrays["__state__"] = np.frombuffer(
        json.dumps(document).encode("utf-8"), dtype=np.uint8
    )
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        np.savez(handle, **arrays)  # type: ignore[arg-type]
    return Path(path)


def load_checkpoint(
    path: str | os.PathLike[str],
) -> tuple[dict[str, Any], dict[str, list[np.ndarray[Any, Any]]]]:
    """Read a checkpoint written by :func:`save_checkpoint`: ``(state, groups)``.

    Raises:
        ValueError: If the file is not a readable checkpoint of this format.
    """
    try:
        _check_stored(path)
        with np.load(path, allow_pickle=False) as archive:
            state = json.loads(bytes(archive["__state__"]).decode("utf-8"))
            groups: dict[str, list[np.ndarray[Any, Any]]] = {}
            for key in sorted(archive.files):
                if key == "__state__":
                    continue
                group, _ = key.rsplit("/", 1)
                groups.setdefault(group, []).append(archive[key])
    except (
        OSError,
        EOFError,
        ValueError,
        KeyError,
        zipfile.BadZipFile,
        zlib.error,
    ) as err:
        raise ValueError(
            f"cannot read the checkpoint {str(path)!r} (truncated or not a "
            f"checkpoint): {err}; delete it (or pass overwrite=True) to start the "
            "run again"
        ) from err
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        found = state.get("format_version") if isinstance(state, dict) else state
        raise ValueError(
            f"the checkpoint {str(path)!r} has format version {short_repr(found, 40)}; this "
            f"version reads {FORMAT_VERSION}"
        )
    _check_state(state, path)
    return state, groups


def _check_stored(path: str | os.PathLike[str]) -> None:
    """Refuse compressed members.

    :func:`save_checkpoint` stores its arrays uncompressed, so a checkpoint never
    unpacks to more than its own size (a zip bomb is refused).
    """
    with zipfile.ZipFile(path) as archive:
        for member in archive.infolist():
            if member.compress_type != zipfile.ZIP_STORED:
                raise ValueError(f"member {member.filename!r} is compressed")


_STATE_TYPES = {
    "epoch": "a non-negative integer",
    "history": "a list of rows of numbers, one per completed epoch",
    "stopped": "true or false",
    "callbacks": "a mapping of mappings",
    "config": "a mapping",
}


def _check_state(state: dict[str, Any], path: str | os.PathLike[str]) -> None:
    """Check every field of the loop state a resume reads (the file may be edited).

    Each field has its type, and the fields agree with each other: one history
    row per completed epoch, numbered 1, 2, ..., its values numbers (or empty),
    and no more epochs than the configuration's ``epochs``.

    Raises:
        ValueError: If a field is missing, of another type, or disagrees with the
            rest; the message names the file and the field.
    """
    for key in _STATE_TYPES:
        problem = _field_problem(state, key)
        if problem is not None:
            raise ValueError(
                f"the checkpoint {str(path)!r} is damaged: {key!r} is {problem}, "
                f"expected {_STATE_TYPES[key]}; delete it (or pass overwrite=True) "
                "to start the run again"
            )


def _field_problem(state: dict[str, Any], key: str) -> str | None:
    """What is wrong with ``state[key]``, in words, or ``None``."""
    value = state.get(key, {} if key in ("callbacks", "config") else None)
    if key == "stopped":
        return None if isinstance(state.get(key, False), bool) else short_repr(value)
    if key in ("callbacks", "config"):
        ok = isinstance(value, dict) and (
            key == "config" or all(isinstance(item, dict) for item in value.values())
        )
        return None if ok else short_repr(value, 60)
    if key == "epoch":
        if type(value) is not int or value < 0:
            return short_repr(value, 60)
        epochs = state.get("config", {}).get("epochs")
        if type(epochs) is int and value > epochs:
            return f"{value}, more than the run's {epochs} epochs"
        history = state.get("history")
        if isinstance(history, list) and len(history) != value:
            return f"{value} but the history has {len(history)} rows"
        return None
    return _history_problem(value)


def _history_problem(history: Any) -> str | None:
    if not isinstance(history, list):
        return short_repr(history, 60)
    for number, row in enumerate(history, start=1):
        if not isinstance(row, dict):
            return f"row {number} = {short_repr(row, 60)}"
        if row.get("epoch", number) != number:
            return f"row {number} numbered epoch {short_repr(row.get('epoch'))}"
        for name, value in row.items():
            number_or_none = value is None or (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
            )
            if not number_or_none:
                return f"row {number} with {short_repr(name)}={short_repr(value)}"
    return None
