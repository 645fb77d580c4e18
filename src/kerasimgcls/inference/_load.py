"""Load a trained model: a run directory or a ``.keras`` file."""

from __future__ import annotations

import os

import keras

from kerasimgcls._validation import check_path_exists
from kerasimgcls.models._file import read_model_file

__all__ = ["load_model"]


def load_model(path: str | os.PathLike[str]) -> keras.Model:
    """Load a ``.keras`` model with Keras' safe mode on (no arbitrary code runs).

    Args:
        path: A ``.keras`` file, or a run directory holding ``model.keras``.

    Returns:
        The model.

    Raises:
        FileNotFoundError: If there is no such file.
        ValueError: If the file is not a ``.keras`` archive, or is truncated or
            damaged.

    Example:
        >>> from kerasimgcls import load_model
        >>> model = load_model("runs/digits")  # doctest: +SKIP
    """
    resolved = check_path_exists(path, "path")
    if resolved.is_dir():
        resolved = check_path_exists(resolved / "model.keras", "path", kind="file")
    if resolved.suffix != ".keras":
        raise ValueError(f"path must be a .keras file; received {str(resolved)!r}")
    return read_model_file(resolved)
