"""The standard datasets: CIFAR-10, CIFAR-100, MNIST and Fashion-MNIST.

Online, the files come through Keras' own download and cache (``$KERAS_HOME``,
``~/.keras`` by default). Offline, from a ``data_dir`` holding the official files
or a folder of images. The CIFAR python format is a pickle: it is read with an
allow-list unpickler, never with :func:`pickle.load`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from kerasimgcls._validation import (
    check_choice,
    check_rate,
    check_seed,
)
from kerasimgcls.data._dataset import ImageDataset, Split
from kerasimgcls.data._download import locate
from kerasimgcls.data._readers import (
    checked_labels,
    find_idx,
    names_of,
    read_cifar_batch,
    read_idx,
    read_npz,
    read_pickle,
)
from kerasimgcls.data._sources import (
    _CIFAR10,
    _CIFAR100,
    _FASHION,
    _IDX_FILES,
    _MNIST,
    CIFAR10_CLASSES,
    FASHION_MNIST_CLASSES,
    _Source,
)
from kerasimgcls.data._split import train_validation_split
from kerasimgcls.data._tar import batches_folder

__all__ = [
    "CIFAR10_CLASSES",
    "load_cifar10",
    "load_cifar100",
    "load_fashion_mnist",
    "load_mnist",
]

logger = logging.getLogger(__name__)


# --- public loaders ----------------------------------------------------------------


def load_cifar10(
    *,
    data_dir: str | os.PathLike[str] | None = None,
    validation_split: float = 0.1,
    seed: int = 0,
    download: bool | None = None,
) -> ImageDataset:
    """Load CIFAR-10: 60,000 32x32 colour images of 10 classes (50,000 train, 10,000 test).

    Where the data comes from, in order:

    1. ``data_dir``, if given (nothing else is tried): the official
       ``cifar-10-python.tar.gz``, the folder it extracts to
       (``cifar-10-batches-py``), a folder holding either, or a folder of images
       laid out ``train/<class>/*`` (and optionally ``test/<class>/*``), which is
       read with :func:`load_image_folder` (no test split if there is no
       ``test/``).
    2. Keras' cache (``$KERAS_HOME/datasets``, ``~/.keras/datasets`` by default),
       where :func:`keras.datasets.cifar10.load_data` leaves it.
    3. A download through Keras (checked against the published SHA-256) if
       ``download`` allows it.

    The python-format batches are pickles; they are read with an allow-list
    unpickler that accepts only NumPy arrays and plain containers, so a crafted
    file cannot run code, and archives are extracted with the standard library's
    ``"data"`` filter (no absolute paths, links out of the folder or devices).

    Args:
        data_dir: Folder (or archive) to load from instead of Keras' cache.
        validation_split: Fraction of the 50,000 training images held out for
            validation, stratified by class, in ``[0, 1)``.
        seed: Seed of the validation split.
        download: ``True`` downloads when the data is not found locally, ``False``
            never touches the network, ``None`` (default) downloads only if the
            server answers within 3 seconds, so an offline machine fails fast.

    Returns:
        The dataset: images uint8 ``(n, 32, 32, 3)``, class names ``airplane`` ...
        ``truck``.

    Raises:
        FileNotFoundError: If the data is not found and cannot be downloaded; the
            message says what to download and where to put it.
        ValueError: If ``validation_split`` is out of range or a file's content is
            not a valid CIFAR batch.
        pickle.UnpicklingError: If a batch file asks to run code (the subclass
            ``UnsafePickleError``); nothing is executed.

    Example:
        >>> from kerasimgcls import load_cifar10
        >>> data = load_cifar10(validation_split=0.1, seed=21)  # doctest: +SKIP
        >>> data.input_shape, len(data.train), len(data.test)  # doctest: +SKIP
        ((32, 32, 3), 45000, 10000)
    """
    location, validation_split, seed = _prepare(
        _CIFAR10, data_dir, validation_split, seed, download
    )
    if location.is_dir() and _is_image_folder(location):
        return _from_image_folder(location, CIFAR10_CLASSES, validation_split, seed)
    folder = batches_folder(location, _CIFAR10)
    meta = read_pickle(folder / "batches.meta")
    names = names_of(meta, b"label_names", folder / "batches.meta", 10)
    parts = [
        read_cifar_batch(folder / f"data_batch_{i}", b"labels", 10) for i in range(1, 6)
    ]
    train = Split(
        np.concatenate([p.images for p in parts]),
        np.concatenate([p.labels for p in parts]),
    )
    test = read_cifar_batch(folder / "test_batch", b"labels", 10)
    return _assemble(train, test, names, "cifar10", validation_split, seed)


def load_cifar100(
    *,
    label_mode: Literal["fine", "coarse"] = "fine",
    data_dir: str | os.PathLike[str] | None = None,
    validation_split: float = 0.1,
    seed: int = 0,
    download: bool | None = None,
) -> ImageDataset:
    """Load CIFAR-100: 60,000 32x32 colour images of 100 classes (or 20 superclasses).

    Looks in the same places as :func:`load_cifar10`, for
    ``cifar-100-python.tar.gz`` or its folder ``cifar-100-python`` (or a
    ``train/<class>`` image folder), with the same safe unpickling.

    Args:
        label_mode: ``"fine"`` for the 100 classes, ``"coarse"`` for the 20
            superclasses.
        data_dir: Folder (or archive) to load from instead of Keras' cache.
        validation_split: Fraction of the training images held out for
            validation, stratified by class, in ``[0, 1)``.
        seed: Seed of the validation split.
        download: As in :func:`load_cifar10`.

    Returns:
        The dataset: images uint8 ``(n, 32, 32, 3)`` and the official class names.

    Raises:
        FileNotFoundError: If the data is not found and cannot be downloaded.
        ValueError: If an argument is out of range or a file is not a valid batch.
        pickle.UnpicklingError: If a batch file asks to run code.

    Example:
        >>> from kerasimgcls import load_cifar100
        >>> data = load_cifar100(label_mode="coarse")  # doctest: +SKIP
        >>> data.num_classes  # doctest: +SKIP
        20
    """
    check_choice(label_mode, "label_mode", ("fine", "coarse"))
    location, validation_split, seed = _prepare(
        _CIFAR100, data_dir, validation_split, seed, download
    )
    if location.is_dir() and _is_image_folder(location):
        return _from_image_folder(location, None, validation_split, seed)
    folder = batches_folder(location, _CIFAR100)
    count = 100 if label_mode == "fine" else 20
    meta = read_pickle(folder / "meta")
    names = names_of(meta, f"{label_mode}_label_names".encode(), folder / "meta", count)
    key = f"{label_mode}_labels".encode()
    train = read_cifar_batch(folder / "train", key, count)
    test = read_cifar_batch(folder / "test", key, count)
    name = "cifar100" if label_mode == "fine" else "cifar100_coarse"
    return _assemble(train, test, names, name, validation_split, seed)


def load_mnist(
    *,
    data_dir: str | os.PathLike[str] | None = None,
    validation_split: float = 0.1,
    seed: int = 0,
    download: bool | None = None,
) -> ImageDataset:
    """Load MNIST: 70,000 28x28 grayscale handwritten digits (60,000 train).

    From ``data_dir`` (Keras' ``mnist.npz``, a folder holding it, a folder with the
    original IDX files ``train-images-idx3-ubyte[.gz]`` ..., or a ``train/<class>``
    image folder), else Keras' cache, else a download as in :func:`load_cifar10`.
    ``mnist.npz`` is read with ``allow_pickle=False``.

    Args:
        data_dir: ``mnist.npz``, a folder holding it or the IDX files, or an image
            folder, to load instead of Keras' cache.
        validation_split: Fraction of the 60,000 training images held out for
            validation, stratified by class, in ``[0, 1)``.
        seed: Seed of the validation split.
        download: As in :func:`load_cifar10`.

    Returns:
        The dataset: images uint8 ``(n, 28, 28, 1)``, class names ``"0"`` ... ``"9"``.

    Raises:
        FileNotFoundError: If the data is not found and cannot be downloaded.
        ValueError: If an argument is out of range or a file is not valid.

    Example:
        >>> from kerasimgcls import load_mnist
        >>> data = load_mnist(download=False)  # doctest: +SKIP
        >>> data.input_shape  # doctest: +SKIP
        (28, 28, 1)
    """
    location, validation_split, seed = _prepare(
        _MNIST, data_dir, validation_split, seed, download
    )
    names = tuple(str(i) for i in range(10))
    return _load_mnist_like(location, names, "mnist", validation_split, seed)


def load_fashion_mnist(
    *,
    data_dir: str | os.PathLike[str] | None = None,
    validation_split: float = 0.1,
    seed: int = 0,
    download: bool | None = None,
) -> ImageDataset:
    """Load Fashion-MNIST: 70,000 28x28 grayscale images of 10 kinds of clothing.

    From ``data_dir`` (a folder with the IDX files ``train-images-idx3-ubyte.gz``
    ..., an ``.npz`` with ``x_train``/``y_train``/``x_test``/``y_test``, or a
    ``train/<class>`` image folder), else Keras' cache (``datasets/fashion-mnist``),
    else a download as in :func:`load_cifar10`.

    Args:
        data_dir: The four IDX files' folder, an ``.npz`` or an image folder, to
            load instead of Keras' cache.
        validation_split: As in :func:`load_mnist`.
        seed: Seed of the validation split.
        download: As in :func:`load_cifar10`.

    Returns:
        The dataset: images uint8 ``(n, 28, 28, 1)``, class names ``T-shirt/top``
        ... ``Ankle boot``.

    Raises:
        FileNotFoundError: As in :func:`load_mnist`.
        ValueError: If an argument is out of range or a file is not valid.

    Example:
        >>> from kerasimgcls import load_fashion_mnist
        >>> data = load_fashion_mnist(download=False)  # doctest: +SKIP
        >>> data.class_names[0]  # doctest: +SKIP
        'T-shirt/top'
    """
    location, split, seed = _prepare(
        _FASHION, data_dir, validation_split, seed, download
    )
    return _load_mnist_like(
        location, FASHION_MNIST_CLASSES, "fashion_mnist", split, seed
    )


# --- finding the files -------------------------------------------------------------


def _prepare(
    source: _Source,
    data_dir: Any,
    validation_split: object,
    seed: object,
    download: bool | None,
) -> tuple[Path, float, int]:
    """Check a loader's split arguments and find its data: ``(path, split, seed)``."""
    split = check_rate(validation_split, "validation_split")
    checked_seed = check_seed(seed, "seed")
    return locate(source, data_dir, download), split, checked_seed


def _is_image_folder(path: Path) -> bool:
    return (path / "train").is_dir() and any(
        entry.is_dir() for entry in (path / "train").iterdir()
    )


def _load_mnist_like(
    location: Path,
    names: Sequence[str],
    name: str,
    validation_split: float,
    seed: int,
) -> ImageDataset:
    arrays: dict[str, NDArray[Any]]
    if location.is_dir() and _is_image_folder(location):
        return _from_image_folder(location, None, validation_split, seed, "grayscale")
    npz = (
        location
        if location.is_file()
        else next(iter(sorted(location.glob("*.npz"))), None)
    )
    idx = find_idx(location) if location.is_dir() else None
    if idx is not None:
        arrays = {key: read_idx(path) for key, path in idx.items()}
    elif npz is not None:
        arrays = read_npz(npz)
    else:
        raise FileNotFoundError(
            f"{str(location)!r} holds neither an .npz with x_train/y_train/x_test/"
            f"y_test, the IDX files ({', '.join(_IDX_FILES.values())}, optionally "
            ".gz), nor a train/<class>/ image folder"
        )
    splits = {}
    for part in ("train", "test"):
        images, labels = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if images.dtype != np.uint8 or images.ndim != 3:
            raise ValueError(
                f"{name} x_{part} must be uint8 of shape (n, height, width); found "
                f"{images.dtype} {images.shape}"
            )
        source = f"the {name} data in {str(location)!r}"
        checked = checked_labels(
            labels, source, f"y_{part}", int(images.shape[0]), len(names)
        )
        splits[part] = Split(images[..., np.newaxis], checked)
    return _assemble(
        splits["train"], splits["test"], tuple(names), name, validation_split, seed
    )


def _from_image_folder(
    location: Path,
    class_names: Sequence[str] | None,
    validation_split: float,
    seed: int,
    color_mode: Literal["rgb", "grayscale"] = "rgb",
) -> ImageDataset:
    from kerasimgcls.data._image_folder import load_image_folder

    folders = {p.name for p in (location / "train").iterdir() if p.is_dir()}
    use_names = class_names if class_names and folders == set(class_names) else None
    return load_image_folder(
        location,
        class_names=use_names,
        color_mode=color_mode,
        validation_split=validation_split,
        seed=seed,
    )


def _assemble(
    train: Split,
    test: Split,
    names: tuple[str, ...],
    name: str,
    validation_split: float,
    seed: int,
) -> ImageDataset:
    train_split, validation = train_validation_split(train, validation_split, seed)
    return ImageDataset(train_split, validation, test, names, name)
