"""Datasets: loaders, normalisation, labels, splits and tf.data pipelines."""

from __future__ import annotations

from kerasimgcls.data._arrays import from_arrays, load_digits
from kerasimgcls.data._dataset import ImageDataset, Split
from kerasimgcls.data._pipeline import epochs_dataset, to_tf_dataset
from kerasimgcls.data._transforms import normalize, one_hot

__all__ = [
    "ImageDataset",
    "Split",
    "epochs_dataset",
    "from_arrays",
    "load_digits",
    "normalize",
    "one_hot",
    "to_tf_dataset",
]
