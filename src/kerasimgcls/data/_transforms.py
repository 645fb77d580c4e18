"""Normalisation and label encoding."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from kerasimgcls._validation import check_labels, check_positive_int

__all__ = ["normalize", "one_hot"]


def normalize(images: ArrayLike) -> NDArray[np.float32]:
    """Scale uint8 pixels to float32 in ``[0, 1]`` (divide by 255).

    Use it on a batch or a handful of images; the training pipelines normalise batch
    by batch so the whole dataset never exists as floats.

    Args:
        images: uint8 array of any shape.

    Returns:
        A float32 array of the same shape with values in ``[0, 1]``.

    Raises:
        TypeError: If ``images`` is not uint8.

    Example:
        >>> import numpy as np
        >>> from kerasimgcls import normalize
        >>> normalize(np.array([0, 51, 255], dtype=np.uint8))
        array([0. , 0.2, 1. ], dtype=float32)
    """
    array = np.asarray(images)
    if array.dtype != np.uint8:
        raise TypeError(
            f"images must be uint8 in [0, 255]; received dtype {array.dtype}. "
            "Convert with images.astype('uint8') if the values are already 0-255."
        )
    return array.astype(np.float32) / np.float32(255.0)


def one_hot(labels: ArrayLike, num_classes: int) -> NDArray[np.float32]:
    """Encode integer labels as one-hot float32 rows, rejecting out-of-range labels.

    Unlike :func:`keras.utils.to_categorical`, a label outside ``[0, num_classes)``
    raises an error naming it instead of wrapping around or failing with a bare
    ``IndexError``.

    Args:
        labels: 1-D integer class indices (a column vector is accepted too).
        num_classes: Number of classes.

    Returns:
        Array of shape ``(n, num_classes)``, float32.

    Raises:
        ValueError: If a label is outside ``[0, num_classes)`` or ``labels`` is not
            1-D.

    Example:
        >>> from kerasimgcls import one_hot
        >>> one_hot([0, 2], num_classes=3)
        array([[1., 0., 0.],
               [0., 0., 1.]], dtype=float32)
    """
    num_classes = check_positive_int(num_classes, "num_classes")
    indices: NDArray[Any] = check_labels(labels, num_classes)
    encoded = np.zeros((indices.shape[0], num_classes), dtype=np.float32)
    encoded[np.arange(indices.shape[0]), indices] = 1.0
    return encoded
