"""The dataset object every loader returns: three uint8 splits and their classes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from kerasimgcls._validation import check_class_names, check_label_values

__all__ = ["ImageDataset", "Split"]


@dataclass(frozen=True, eq=False)
class Split:
    """One split of a dataset: uint8 images and integer labels.

    Attributes:
        images: Array of shape ``(n, height, width, channels)``, uint8 in [0, 255].
        labels: Array of shape ``(n,)``, int64 class indices.

    Example:
        >>> import numpy as np
        >>> from kerasimgcls import Split
        >>> split = Split(np.zeros((4, 8, 8, 1), np.uint8), np.array([0, 1, 0, 1]))
        >>> len(split), split.image_shape
        (4, (8, 8, 1))
    """

    images: NDArray[np.uint8]
    labels: NDArray[np.int64]

    def __post_init__(self) -> None:
        images = np.asarray(self.images)
        labels = self.labels
        if not (isinstance(labels, np.ndarray) and labels.dtype.kind in "iu"):
            labels = check_label_values(labels, "labels")
        labels = np.asarray(labels)
        if images.dtype != np.uint8 or images.ndim != 4:
            raise ValueError(
                "images must be a uint8 array of shape (n, height, width, channels); "
                f"received dtype {images.dtype} and shape {images.shape}"
            )
        if labels.ndim != 1 or len(labels) != len(images):
            raise ValueError(
                f"labels must be a 1-D array with one label per image ({len(images)}); "
                f"received shape {labels.shape}"
            )
        object.__setattr__(self, "images", images)
        object.__setattr__(self, "labels", labels.astype(np.int64, copy=False))

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """``(height, width, channels)`` of the images."""
        _, height, width, channels = self.images.shape
        return (int(height), int(width), int(channels))

    def class_counts(self, num_classes: int) -> NDArray[np.int64]:
        """Return the number of images of each class, an array of ``num_classes``."""
        return np.bincount(self.labels, minlength=num_classes).astype(np.int64)

    def subset(self, indices: Any) -> Split:
        """Return the split restricted to ``indices`` (an index array or a slice)."""
        return Split(self.images[indices], self.labels[indices])


@dataclass(frozen=True, eq=False)
class ImageDataset:
    """Train, validation and test splits with their class names.

    Loaders (:func:`load_digits`, :func:`load_cifar10`, :func:`load_image_folder`,
    :func:`from_arrays`, ...) return this object. Images are uint8; normalisation to
    [0, 1] and one-hot encoding happen in the input pipeline
    (:func:`to_tf_dataset`), never as a float copy of the whole set.

    Attributes:
        train: The training split.
        validation: Validation split carved from the training data, or ``None``.
        test: The test split, or ``None``; only evaluation touches it.
        class_names: One name per class, in label order.
        name: A short name for the dataset (recorded in runs).
        resize: How the loader resized image files, ``{"interpolation":
            "bilinear", "aspect": "stretch"}`` (see :func:`load_image_folder`),
            or ``None`` for data that came as arrays. A run saves it in its
            model, so ``predict`` resizes new files the same way.

    Example:
        >>> from kerasimgcls import load_digits
        >>> data = load_digits(validation_split=0.1, seed=0)
        >>> data.num_classes, data.input_shape
        (10, (8, 8, 1))
    """

    train: Split
    validation: Split | None
    test: Split | None
    class_names: tuple[str, ...]
    name: str = "dataset"
    _fingerprint: list[str] = field(default_factory=list, repr=False)
    resize: dict[str, str] | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        object.__setattr__(self, "class_names", check_class_names(self.class_names))
        if len(set(self.class_names)) != len(self.class_names):
            raise ValueError(f"class_names must be unique; received {self.class_names}")
        for split_name, split in self.splits().items():
            if split.image_shape != self.train.image_shape:
                raise ValueError(
                    f"all splits must share one image shape; train has "
                    f"{self.train.image_shape} but {split_name} has {split.image_shape}"
                )
            if len(split) and int(split.labels.max()) >= self.num_classes:
                raise ValueError(
                    f"{split_name} labels must be in [0, {self.num_classes}); "
                    f"received a label {int(split.labels.max())}"
                )

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.class_names)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(height, width, channels)`` of every image."""
        return self.train.image_shape

    def splits(self) -> dict[str, Split]:
        """Return the splits that exist, by name (``train``, ``validation``, ``test``)."""
        named = {"train": self.train, "validation": self.validation, "test": self.test}
        return {key: value for key, value in named.items() if value is not None}

    @property
    def fingerprint(self) -> str:
        """SHA-256 of every split's images and labels and of the class names.

        Two datasets with the same fingerprint hold the same data in the same
        order, so a run records it to say exactly what it was trained on.
        """
        if not self._fingerprint:
            digest = hashlib.sha256()
            digest.update("\x1f".join(self.class_names).encode())
            for split_name, split in self.splits().items():
                digest.update(split_name.encode())
                digest.update(str(split.images.shape).encode())
                digest.update(np.ascontiguousarray(split.images).data)
                digest.update(np.ascontiguousarray(split.labels).astype("<i8").data)
            self._fingerprint.append(digest.hexdigest())
        return self._fingerprint[0]

    def summary(self) -> str:
        """Return a short human-readable description of the splits."""
        sizes = ", ".join(f"{k}={len(v)}" for k, v in self.splits().items())
        return (
            f"{self.name}: {self.num_classes} classes, images {self.input_shape}, "
            f"{sizes}"
        )

    def __repr__(self) -> str:
        return f"ImageDataset({self.summary()})"
