"""Datasets: loaders, normalisation, labels, splits, augmentation and tf.data pipelines."""

from __future__ import annotations

from kerasimgcls.data._arrays import from_arrays, load_digits
from kerasimgcls.data._augment import Augmentation
from kerasimgcls.data._check import ImageFolderReport, check_image_folder
from kerasimgcls.data._dataset import ImageDataset, Split
from kerasimgcls.data._image_folder import default_cache_dir, load_image_folder
from kerasimgcls.data._pipeline import epochs_dataset, to_tf_dataset
from kerasimgcls.data._safe_pickle import UnsafePickleError
from kerasimgcls.data._sizes import ImageSizeChoice, choose_image_size
from kerasimgcls.data._standard import (
    CIFAR10_CLASSES,
    load_cifar10,
    load_cifar100,
    load_fashion_mnist,
    load_mnist,
)
from kerasimgcls.data._transforms import normalize, one_hot

__all__ = [
    "CIFAR10_CLASSES",
    "Augmentation",
    "ImageDataset",
    "ImageFolderReport",
    "ImageSizeChoice",
    "Split",
    "UnsafePickleError",
    "check_image_folder",
    "choose_image_size",
    "default_cache_dir",
    "epochs_dataset",
    "from_arrays",
    "load_cifar10",
    "load_cifar100",
    "load_digits",
    "load_fashion_mnist",
    "load_image_folder",
    "load_mnist",
    "normalize",
    "one_hot",
    "to_tf_dataset",
]
