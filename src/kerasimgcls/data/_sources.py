"""Where each standard dataset comes from: names, URLs, hashes, Keras' cache."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CIFAR10_CLASSES", "FASHION_MNIST_CLASSES", "keras_datasets_dir"]

#: The ten CIFAR-10 class names, in label order (as in the official batches).
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
_CIFAR_URL = "https://www.cs.toronto.edu/~kriz/"
_KERAS_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
_IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


@dataclass(frozen=True)
class _Source:
    """Where one dataset comes from and how Keras caches it."""

    name: str
    archive: str  # the official file name
    folder: str  # what the archive extracts to (CIFAR) or the cache sub-folder
    file_hash: str
    keras_cached: tuple[str, ...]  # paths under $KERAS_HOME/datasets to look at


_CIFAR10 = _Source(
    "cifar10",
    "cifar-10-python.tar.gz",
    "cifar-10-batches-py",
    "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
    (
        "cifar-10-batches-py-target/cifar-10-batches-py",
        "cifar-10-batches-py",
        "cifar-10-batches-py-target_archive",
        "cifar-10-python.tar.gz",
    ),
)
_CIFAR100 = _Source(
    "cifar100",
    "cifar-100-python.tar.gz",
    "cifar-100-python",
    "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
    (
        "cifar-100-python-target/cifar-100-python",
        "cifar-100-python",
        "cifar-100-python-target_archive",
        "cifar-100-python.tar.gz",
    ),
)
_MNIST = _Source(
    "mnist",
    "mnist.npz",
    "",
    "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
    ("mnist.npz",),
)
_FASHION = _Source("fashion_mnist", "", "fashion-mnist", "", ("fashion-mnist",))


def keras_datasets_dir() -> Path:
    """Keras' download cache: ``$KERAS_HOME/datasets`` (``~/.keras/datasets``)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(
        os.path.expanduser("~"), ".keras"
    )
    return Path(home) / "datasets"
