"""Checkpoints for exact resume: every variable, the optimizer, RNG and loop state.

One file, ``checkpoints/last.npz``, written atomically after every completed epoch,
holds everything a restarted process needs to continue as if it had never stopped:

- every model variable in order (weights, batch-norm statistics and the state of
  every :class:`keras.random.SeedGenerator`, which is what dropout draws from);
- every optimizer variable (slots and the iteration count, which drives the
  learning-rate schedule);
- the best weights so far when early stopping restores them;
- a JSON document: completed epochs, history rows, early-stopping state, and the
  configuration the run must match to be resumed.

The data order and augmentation of epoch ``e`` depend only on ``(seed, e)``, so with
op determinism the continuation is bit-identical. Arrays are stored without pickle
and read with ``allow_pickle=False``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from kerasimgcls._io import atomic_path

__all__ = ["load_checkpoint", "restore_variables", "save_checkpoint", "snapshot"]

FORMAT_VERSION = 1


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
        with np.load(path, allow_pickle=False) as archive:
            state = json.loads(bytes(archive["__state__"]).decode("utf-8"))
            groups: dict[str, list[np.ndarray[Any, Any]]] = {}
            for key in sorted(archive.files):
                if key == "__state__":
                    continue
                group, _ = key.rsplit("/", 1)
                groups.setdefault(group, []).append(archive[key])
    except (OSError, ValueError, KeyError) as err:
        raise ValueError(
            f"cannot read the checkpoint {str(path)!r}: {err}; delete it (or pass "
            "overwrite=True) to start the run again"
        ) from err
    if state.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"the checkpoint {str(path)!r} has format version "
            f"{state.get('format_version')!r}; this version reads {FORMAT_VERSION}"
        )
    return state, groups
