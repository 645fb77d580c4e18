"""Datasets from arrays the user already has, and the digits that ship with scikit-learn."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from kerasimgcls._validation import (
    check_class_names,
    check_label_values,
    check_labels,
    check_num_classes,
    check_rate,
    check_seed,
)
from kerasimgcls.data._dataset import ImageDataset, Split
from kerasimgcls.data._split import stratified_indices, train_validation_split

__all__ = ["from_arrays", "load_digits"]


ValueRange = Literal["auto"] | tuple[float, float]


def _check_value_range(value_range: object) -> str:
    if isinstance(value_range, str) and value_range == "auto":
        return "auto"
    if isinstance(value_range, tuple | list) and len(value_range) == 2:
        if tuple(value_range) == (0, 1):
            return "unit"
        if tuple(value_range) == (0, 255):
            return "uint8"
    raise ValueError(
        "value_range must be 'auto', (0, 1) or (0, 255); received "
        f"value_range={value_range!r}"
    )


def _as_uint8_images(
    images: ArrayLike, name: str, value_range: str = "auto"
) -> NDArray[np.uint8]:
    array = np.asarray(images)
    if array.ndim == 3:
        array = array[..., np.newaxis]
    if array.ndim != 4:
        raise ValueError(
            f"{name} must have shape (n, height, width, channels) or (n, height, "
            f"width); received shape {array.shape}"
        )
    if array.shape[0] == 0:
        raise ValueError(f"{name} is empty; received shape {array.shape}")
    if 0 in array.shape[1:3]:
        raise ValueError(
            f"{name} must hold images of at least 1x1 pixels; received shape "
            f"{array.shape}"
        )
    if array.shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"{name} must have 1, 3 or 4 channels in the last axis; received shape "
            f"{array.shape}. For channels-first data use np.moveaxis(x, 1, -1)."
        )
    if array.dtype == np.uint8:
        return array
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)):
            bad = np.argwhere(~np.isfinite(array))[0]
            raise ValueError(
                f"{name} contains NaN or infinite values, first at index "
                f"{tuple(int(i) for i in bad)}"
            )
        low, high = float(array.min()), float(array.max())
        scale = _float_scale(name, low, high, value_range)
        return np.rint(array * scale).astype(np.uint8)
    if np.issubdtype(array.dtype, np.integer):
        low, high = int(array.min()), int(array.max())
        if low < 0 or high > 255:
            raise ValueError(
                f"{name} must hold pixel values in [0, 255]; received values in "
                f"[{low}, {high}]"
            )
        return array.astype(np.uint8)
    raise TypeError(f"{name} must be a numeric array; received dtype {array.dtype}")


# Float images whose maximum lies in (1, _AMBIGUOUS_BELOW) fit neither reading:
# [0, 1] data does not exceed 1, and 0-255 photographs are not that dark. They are
# refused unless value_range says which they are.
_AMBIGUOUS_BELOW = 8.0


def _float_scale(name: str, low: float, high: float, value_range: str) -> float:
    """255 for [0, 1] data, 1 for [0, 255] data, decided from the values' range."""
    ceiling = {"unit": 1.0, "uint8": 255.0}.get(value_range, 255.0)
    if low < 0.0 or high > ceiling:
        allowed = "[0, 1] or [0, 255]" if value_range == "auto" else f"[0, {ceiling:g}]"
        raise ValueError(
            f"{name} must hold pixel values in {allowed}; received values in "
            f"[{low}, {high}]"
        )
    if value_range == "unit" or (value_range == "auto" and high <= 1.0):
        return 255.0
    if value_range == "auto" and high < _AMBIGUOUS_BELOW:
        raise ValueError(
            f"{name} holds floats in [{low}, {high}]: too bright for [0, 1] and too "
            "dark for [0, 255] to tell which is meant; pass value_range=(0, 1) or "
            "value_range=(0, 255)"
        )
    return 1.0


def _class_names(
    class_names: Sequence[str] | None, labels: NDArray[np.int64]
) -> tuple[str, ...]:
    if class_names is None:
        count = int(labels.max()) + 1 if labels.size else 0
        check_num_classes(count, "the largest label of y, plus one")
        return tuple(str(i) for i in range(count))
    return check_class_names(class_names, "class_names")


def from_arrays(
    x: ArrayLike,
    y: ArrayLike,
    *,
    class_names: Sequence[str] | None = None,
    x_test: ArrayLike | None = None,
    y_test: ArrayLike | None = None,
    validation_split: float = 0.1,
    seed: int = 0,
    name: str = "arrays",
    value_range: ValueRange = "auto",
) -> ImageDataset:
    """Build an :class:`ImageDataset` from in-memory arrays, checking them first.

    Images may be uint8 in [0, 255], other integers in that range, or floats in
    [0, 1] or [0, 255]; they are stored as uint8. Which float range is meant is
    decided from the values (at most 1: [0, 1]); floats whose maximum is above 1
    but below 8 fit neither and are refused unless ``value_range`` says. Grayscale
    images may omit the channel axis.

    Args:
        x: Training images, shape ``(n, height, width[, channels])``.
        y: Training labels, integers in ``[0, num_classes)``, shape ``(n,)``.
        class_names: One name per class; ``"0"``, ``"1"``, ... if omitted.
        x_test: Optional test images (same height, width and channels as ``x``).
        y_test: Labels of ``x_test``.
        validation_split: Fraction of ``x`` held out for validation, stratified by
            class, in ``[0, 1)``.
        seed: Seed of the validation split.
        name: Name recorded with runs.
        value_range: Range of float images: ``"auto"`` (decided from the values),
            ``(0, 1)`` or ``(0, 255)``. Integer images are always [0, 255].

    Returns:
        The dataset.

    Raises:
        ValueError: If shapes, lengths, values (NaN, out of range, an ambiguous
            float range) or labels (out of range, not whole) are wrong, or
            ``class_names`` holds an empty or unprintable name; the message names
            the argument.
        TypeError: If a label is a bool or a class name is not a string.

    Example:
        >>> import numpy as np
        >>> from kerasimgcls import from_arrays
        >>> x = np.random.default_rng(0).integers(0, 256, (20, 8, 8, 3), np.uint8)
        >>> y = np.arange(20) % 2
        >>> data = from_arrays(x, y, class_names=["even", "odd"], validation_split=0.2)
        >>> len(data.train), len(data.validation)
        (16, 4)
    """
    validation_split = check_rate(validation_split, "validation_split")
    seed = check_seed(seed, "seed")
    scaling = _check_value_range(value_range)
    images = _as_uint8_images(x, "x", scaling)
    raw_labels = np.asarray(check_label_values(y, "y"))
    if raw_labels.ndim == 0 or raw_labels.shape[0] != images.shape[0]:
        raise ValueError(
            f"x and y must have the same length; received {images.shape[0]} images "
            f"and labels of shape {raw_labels.shape}"
        )
    provisional = check_labels(raw_labels, np.iinfo(np.int64).max, "y")
    names = _class_names(class_names, provisional)
    labels = check_labels(provisional, len(names), "y")
    train, validation = train_validation_split(
        Split(images, labels), validation_split, seed
    )
    test = None
    if (x_test is None) != (y_test is None):
        raise ValueError("x_test and y_test must be given together")
    if x_test is not None:
        test_images = _as_uint8_images(x_test, "x_test", scaling)
        test_labels = check_labels(
            check_label_values(y_test, "y_test"), len(names), "y_test"
        )
        if test_images.shape[0] != test_labels.shape[0]:
            raise ValueError(
                f"x_test and y_test must have the same length; received "
                f"{test_images.shape[0]} and {test_labels.shape[0]}"
            )
        if test_images.shape[1:] != images.shape[1:]:
            raise ValueError(
                f"x_test images must have the shape of x images {images.shape[1:]}; "
                f"received {test_images.shape[1:]}"
            )
        test = Split(test_images, test_labels)
    return ImageDataset(train, validation, test, names, name)


def load_digits(
    *,
    validation_split: float = 0.1,
    test_split: float = 0.2,
    seed: int = 0,
) -> ImageDataset:
    """Load the 8x8 handwritten digits that ship inside scikit-learn (no network).

    1,797 grayscale images of the digits 0-9, 8x8 pixels, rescaled from scikit-learn's
    0-16 intensities to uint8 0-255. A real dataset that is always available offline:
    the default for the quick start, the examples and the tests. The test split is
    fixed by ``seed`` (stratified); the validation split is carved from the rest.

    Args:
        validation_split: Fraction of the non-test images held out for validation.
        test_split: Fraction of all images held out as the test split.
        seed: Seed of both splits.

    Returns:
        The dataset, with class names ``"0"`` to ``"9"``.

    Raises:
        ValueError: If a fraction is outside ``[0, 1)``.

    Example:
        >>> from kerasimgcls import load_digits
        >>> data = load_digits(seed=0)
        >>> data.input_shape, data.num_classes
        ((8, 8, 1), 10)
        >>> len(data.train) + len(data.validation) + len(data.test)
        1797
    """
    from sklearn.datasets import load_digits as sklearn_load_digits

    validation_split = check_rate(validation_split, "validation_split")
    seed = check_seed(seed, "seed")
    test_split = check_rate(test_split, "test_split")
    bunch: Any = sklearn_load_digits()
    images = np.rint(np.asarray(bunch.images) * (255.0 / 16.0)).astype(np.uint8)
    labels = np.asarray(bunch.target, dtype=np.int64)
    everything = Split(images[..., np.newaxis], labels)
    keep, held_out = stratified_indices(labels, test_split, seed)
    test = everything.subset(held_out) if held_out.size else None
    train, validation = train_validation_split(
        everything.subset(keep), validation_split, seed + 1
    )
    names = tuple(str(i) for i in range(10))
    return ImageDataset(train, validation, test, names, "digits")
