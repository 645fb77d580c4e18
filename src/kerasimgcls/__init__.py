"""kerasimgcls: image classification with Keras 3.

Composable blocks, the reference CIFAR-10 CNN, dataset loaders with checks,
a reproducible and resumable :class:`Trainer`, evaluation reports and Grad-CAM.
"""

from __future__ import annotations

from kerasimgcls._export import (
    InputPreprocessing,
    Predictions,
    export_model,
    get_class_names,
    load_model,
    predict,
    predict_proba,
)
from kerasimgcls._scaling import ScalingDecision, resolve_input_scaling
from kerasimgcls._version import __version__
from kerasimgcls.blocks import conv_block, dense_head
from kerasimgcls.data import (
    Augmentation,
    ImageDataset,
    ImageFolderReport,
    Split,
    UnsafePickleError,
    check_image_folder,
    epochs_dataset,
    from_arrays,
    load_cifar10,
    load_cifar100,
    load_digits,
    load_fashion_mnist,
    load_image_folder,
    load_mnist,
    normalize,
    one_hot,
    to_tf_dataset,
)
from kerasimgcls.evaluation import ClassificationReport, classification_report
from kerasimgcls.interpret import (
    GradCamResult,
    SimilarImages,
    embeddings,
    grad_cam,
    similar_images,
)
from kerasimgcls.layers import FusedBatchNormalization, fuse_batch_norm, precision_scope
from kerasimgcls.lr_finder import LearningRateFinderResult, find_learning_rate
from kerasimgcls.models import (
    build_airbench_cnn,
    build_cifar_cnn,
    get_model,
    list_models,
    patch_whitening_kernel,
    register_model,
)
from kerasimgcls.plots import (
    plot_confusion_matrix,
    plot_embeddings,
    plot_grad_cam,
    plot_learning_rate_finder,
    plot_samples,
    plot_similar_images,
    plot_top_losses,
)
from kerasimgcls.recipes import Recipe, get_recipe, list_recipes, register_recipe
from kerasimgcls.training import (
    History,
    PreciseBatchNorm,
    Trainer,
    TrainingDivergedError,
    precise_batch_norm,
    seed_everything,
)

__all__ = [
    "Augmentation",
    "ClassificationReport",
    "FusedBatchNormalization",
    "GradCamResult",
    "History",
    "ImageDataset",
    "ImageFolderReport",
    "InputPreprocessing",
    "LearningRateFinderResult",
    "PreciseBatchNorm",
    "Predictions",
    "Recipe",
    "ScalingDecision",
    "SimilarImages",
    "Split",
    "Trainer",
    "TrainingDivergedError",
    "UnsafePickleError",
    "__version__",
    "build_airbench_cnn",
    "build_cifar_cnn",
    "check_image_folder",
    "classification_report",
    "conv_block",
    "dense_head",
    "embeddings",
    "epochs_dataset",
    "export_model",
    "find_learning_rate",
    "from_arrays",
    "fuse_batch_norm",
    "get_class_names",
    "get_model",
    "get_recipe",
    "grad_cam",
    "list_models",
    "list_recipes",
    "load_cifar10",
    "load_cifar100",
    "load_digits",
    "load_fashion_mnist",
    "load_image_folder",
    "load_mnist",
    "load_model",
    "normalize",
    "one_hot",
    "patch_whitening_kernel",
    "plot_confusion_matrix",
    "plot_embeddings",
    "plot_grad_cam",
    "plot_learning_rate_finder",
    "plot_samples",
    "plot_similar_images",
    "plot_top_losses",
    "precise_batch_norm",
    "precision_scope",
    "predict",
    "predict_proba",
    "register_model",
    "register_recipe",
    "resolve_input_scaling",
    "seed_everything",
    "similar_images",
    "to_tf_dataset",
]
