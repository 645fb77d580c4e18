"""kerasimgcls: image classification with Keras 3.

Composable blocks, the reference CIFAR-10 CNN, dataset loaders with checks,
a reproducible and resumable :class:`Trainer`, evaluation reports and Grad-CAM.
"""

from __future__ import annotations

from kerasimgcls._export import (
    InputPreprocessing,
    export_model,
    get_class_names,
    load_model,
    predict_proba,
)
from kerasimgcls._version import __version__
from kerasimgcls.blocks import conv_block, dense_head
from kerasimgcls.data import (
    ImageDataset,
    Split,
    from_arrays,
    load_digits,
    normalize,
    one_hot,
    to_tf_dataset,
)
from kerasimgcls.models import build_cifar_cnn, get_model, list_models, register_model

__all__ = [
    "ImageDataset",
    "InputPreprocessing",
    "Split",
    "__version__",
    "build_cifar_cnn",
    "conv_block",
    "dense_head",
    "export_model",
    "from_arrays",
    "get_class_names",
    "get_model",
    "list_models",
    "load_digits",
    "load_model",
    "normalize",
    "one_hot",
    "predict_proba",
    "register_model",
    "to_tf_dataset",
]
