"""Datasets from arrays the user already has, and the digits that ship with scikit-learn."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from kerasimgcls._validation import check_labels, check_rate
from kerasimgcls.data._dataset import ImageDataset, Split
from kerasimgcls.data._split import stratified_indices, train_validation_split

__all__ = ["from_arrays", "load_digits"]


def _as_uint8_images(images: ArrayLike, name: str) -> NDArray[np.uint8]:
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
        if low < 0.0 or high > 255.0:
            raise ValueError(
                f"{name} must hold pixel values in [0, 1] or [0, 255]; received "
                f"values in [{low}, {high}]"
            )
        scale = 255.0 if high <= 1.0 else 1.0
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


def _class_names(
    class_names: Sequence[str] | None, labels: NDArray[np.int64]
) -> tuple[str, ...]:
    if class_names is None:
        count = int(labels.max()) + 1 if labels.size else 0
        return tuple(str(i) for i in range(count))
    if isinstance(class_names, str):
        raise TypeError(
            "class_names must be a sequence of strings, not one string; received "
            f"class_names={class_names!r}"
        )
    return tuple(str(c) for c in class_names)


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
) -> ImageDataset:
    """Build an :class:`ImageDataset` from in-memory arrays, checking them first.

    Images may be uint8 in [0, 255], other integers in that range, or floats in
    [0, 1] or [0, 255]; they are stored as uint8. Grayscale images may omit the
    channel axis.

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

    Returns:
        The dataset.

    Raises:
        ValueError: If shapes, lengths, values (NaN, out of range) or labels are
            wrong; the message names the argument.

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
    images = _as_uint8_images(x, "x")
    raw_labels = np.asarray(y)
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
        test_images = _as_uint8_images(x_test, "x_test")
        test_labels = check_labels(y_test, len(names), "y_test")
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
