"""Read the official files: CIFAR batches (safe pickle), IDX, gzip and npz."""

from __future__ import annotations

import gzip
import io
import math
import zipfile
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from kerasimgcls._io import (
    read_regular_file,
)
from kerasimgcls._validation import (
    check_class_names,
    limit,
    short_repr,
)
from kerasimgcls.data._dataset import Split
from kerasimgcls.data._safe_pickle import safe_load
from kerasimgcls.data._sources import _IDX_FILES

__all__ = [
    "checked_labels",
    "find_idx",
    "names_of",
    "read_cifar_batch",
    "read_idx",
    "read_npz",
    "read_pickle",
]

# --- reading the files -------------------------------------------------------------


def _read_data_file(path: Path) -> bytes:
    """The bytes of a dataset file: a regular file within ``max_data_file_bytes``."""
    try:
        return read_regular_file(
            path, max_bytes=limit("max_data_file_bytes"), what="dataset file"
        )
    except FileNotFoundError:
        raise
    except OSError as err:
        raise ValueError(f"cannot read {str(path)!r}: {err.strerror or err}") from err


def read_pickle(path: Path) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"missing CIFAR file {str(path)!r}")
    return safe_load(_read_data_file(path), str(path))


def names_of(meta: Any, key: bytes, path: Path, count: int) -> tuple[str, ...]:
    raw = meta.get(key, meta.get(key.decode())) if isinstance(meta, dict) else None
    if not isinstance(raw, list) or len(raw) != count:
        raise ValueError(
            f"{str(path)!r} must hold a list of {count} class names under {key!r}"
        )
    names = []
    for index, name in enumerate(raw):
        try:
            text = name.decode("utf-8") if isinstance(name, bytes) else name
        except UnicodeDecodeError as err:
            raise ValueError(
                f"{str(path)!r}: class name {index} is not UTF-8 text: {short_repr(name, 60)}"
            ) from err
        if not isinstance(text, str):
            raise ValueError(
                f"{str(path)!r}: class names must be strings; found "
                f"{type(name).__name__} at index {index}"
            )
        names.append(text)
    return check_class_names(names, f"the class names of {str(path)!r}")


def checked_labels(
    labels: Any, source: str, key: str, count: int, num_classes: int
) -> NDArray[np.int64]:
    """``labels`` of a dataset file as int64, one per image, each in range, or raise.

    The one check of labels read from a CIFAR batch, an ``.npz`` or IDX files:
    a list of ints or a 1-D integer array (no bools, floats or huge integers),
    ``count`` of them, each in ``[0, num_classes)``. ``source`` names the file.
    """
    if isinstance(labels, list):
        if not all(type(value) is int for value in labels):
            raise ValueError(
                f"{source}: labels must be integers; {key!r} holds other values"
            )
        try:
            array = np.asarray(labels, dtype=np.int64)
        except OverflowError as err:
            raise ValueError(f"{source}: {key!r} holds huge integers") from err
    elif isinstance(labels, np.ndarray) and labels.dtype.kind in "iu":
        array = labels.astype(np.int64)
    else:
        raise ValueError(
            f"{source}: {key!r} must be a list or 1-D array of integer labels; "
            f"found {_found(labels, 'an array of {0.dtype}')}"
        )
    if array.ndim != 1 or array.shape[0] != count:
        raise ValueError(
            f"{source}: {key!r} must hold one label per image ({count}); "
            f"found shape {array.shape}"
        )
    bad = np.flatnonzero((array < 0) | (array >= num_classes))
    if bad.size:
        raise ValueError(
            f"{source}: labels must be in [0, {num_classes}); found "
            f"{int(array[bad[0]])} at index {int(bad[0])}"
        )
    return array


def _found(value: object, array_format: str) -> str:
    """How an error names ``value``: ``array_format`` of an array, else its type."""
    if isinstance(value, np.ndarray):
        return array_format.format(value)
    return type(value).__name__


def read_cifar_batch(path: Path, label_key: bytes, num_classes: int) -> Split:
    batch = read_pickle(path)
    if not isinstance(batch, dict):
        raise ValueError(
            f"{str(path)!r} must hold a dict; found {type(batch).__name__}"
        )
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(label_key, batch.get(label_key.decode()))
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        raise ValueError(
            f"{str(path)!r}: 'data' must be a uint8 array of shape (n, 3072); "
            f"found {_found(data, '{0.dtype} {0.shape}')}"
        )
    if data.shape[1] != 3072:
        raise ValueError(
            f"{str(path)!r}: 'data' must have 3072 columns (32x32x3); found "
            f"shape {data.shape}"
        )
    integer_labels = checked_labels(
        labels, repr(str(path)), label_key.decode(), int(data.shape[0]), num_classes
    )
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return Split(np.ascontiguousarray(images), integer_labels)


def read_idx(path: Path) -> NDArray[np.uint8]:
    raw = _read_gzip(path) if path.suffix == ".gz" else _read_data_file(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(
            f"{str(path)!r} is not an IDX file of unsigned bytes (its first bytes "
            f"are {raw[:4]!r})"
        )
    dims = raw[3]
    if not 1 <= dims <= 4 or len(raw) < 4 + 4 * dims:
        raise ValueError(
            f"{str(path)!r} is not a valid IDX file: its header announces {dims} "
            "dimensions"
        )
    shape = tuple(
        int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)
    )
    body = len(raw) - 4 - 4 * dims
    if body != math.prod(shape):
        raise ValueError(
            f"{str(path)!r} is truncated or not a valid IDX file: the header says "
            f"shape {shape} ({math.prod(shape):,} bytes) but {body:,} bytes follow"
        )
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)


def _read_gzip(path: Path) -> bytes:
    """Decompress ``path`` into memory, refusing more than ``max_data_file_bytes``."""
    maximum = limit("max_data_file_bytes")
    compressed = _read_data_file(path)
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(compressed)) as handle:
            raw = handle.read(maximum + 1)
    except (OSError, EOFError, zlib.error) as err:
        raise ValueError(
            f"cannot decompress {str(path)!r} (truncated or not gzip): {err}"
        ) from err
    if len(raw) > maximum:
        raise ValueError(
            f"{str(path)!r} decompresses to more than {maximum:,} bytes; raise "
            "KERASIMGCLS_MAX_DATA_FILE_BYTES if that is intended"
        )
    return raw


def read_npz(path: Path) -> dict[str, NDArray[Any]]:
    """The four MNIST arrays of an ``.npz``, each checked before it is read."""
    keys = ("x_train", "y_train", "x_test", "y_test")
    maximum = limit("max_data_file_bytes")
    try:
        with np.load(path, allow_pickle=False) as stored:
            missing = set(keys) - set(stored.files)
            if missing:
                raise ValueError(f"{str(path)!r} lacks the arrays {sorted(missing)}")
            for key in keys:
                size = stored.zip.getinfo(f"{key}.npy").file_size
                if size > maximum:
                    raise ValueError(
                        f"{str(path)!r}: {key} unpacks to {size:,} bytes, more than "
                        f"the {maximum:,} allowed (KERASIMGCLS_MAX_DATA_FILE_BYTES)"
                    )
            return {key: stored[key] for key in keys}
    except (OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as err:
        raise ValueError(
            f"cannot read {str(path)!r} (truncated or not an .npz of "
            f"x_train/y_train/x_test/y_test): {err}"
        ) from err


def find_idx(folder: Path) -> dict[str, Path] | None:
    found: dict[str, Path] = {}
    for key, stem in _IDX_FILES.items():
        for candidate in (folder / f"{stem}.gz", folder / stem):
            if candidate.is_file():
                found[key] = candidate
                break
    return found if len(found) == 4 else None
