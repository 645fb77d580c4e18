"""kerasimgcls: image classification with Keras 3.

Composable blocks, the reference CIFAR-10 CNN, dataset loaders with checks,
a reproducible and resumable :class:`Trainer`, evaluation reports and Grad-CAM.

Importing the package is cheap: each public name is imported from its module on first
use (PEP 562), so ``import kerasimgcls`` and the command line's ``--help`` do not
start TensorFlow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kerasimgcls._keras_objects import register_when_keras_loads
from kerasimgcls._lazy import lazy_exports
from kerasimgcls._version import __version__

if TYPE_CHECKING:  # the same names, for type checkers and editors
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
    from kerasimgcls._tta import predict_tta
    from kerasimgcls.blocks import conv_block, dense_head
    from kerasimgcls.data import (
        Augmentation,
        ImageDataset,
        ImageFolderReport,
        ImageSizeChoice,
        Split,
        UnsafePickleError,
        check_image_folder,
        choose_image_size,
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
    from kerasimgcls.layers import (
        FusedBatchNormalization,
        fuse_batch_norm,
        precision_scope,
    )
    from kerasimgcls.lr_finder import LearningRateFinderResult, find_learning_rate
    from kerasimgcls.models import (
        build_airbench_cnn,
        build_cifar_cnn,
        get_max_image_size,
        get_model,
        get_model_factory,
        is_model,
        list_models,
        patch_whitening_kernel,
        register_model,
        whitening_sample,
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
    from kerasimgcls.report import write_report
    from kerasimgcls.serving import export_for_serving
    from kerasimgcls.training import (
        FineTune,
        History,
        PreciseBatchNorm,
        Trainer,
        TrainingConfig,
        TrainingDivergedError,
        WeightAveraging,
        precise_batch_norm,
        seed_everything,
    )
    from kerasimgcls.transfer import build_transfer_model, check_backbone_weights

# Each public name and the module that defines it (tests/test_api.py checks this
# table against the imports above and against __all__).
_EXPORTS: dict[str, str] = {
    "Augmentation": "kerasimgcls.data",
    "ClassificationReport": "kerasimgcls.evaluation",
    "FineTune": "kerasimgcls.training",
    "FusedBatchNormalization": "kerasimgcls.layers",
    "GradCamResult": "kerasimgcls.interpret",
    "History": "kerasimgcls.training",
    "ImageDataset": "kerasimgcls.data",
    "ImageFolderReport": "kerasimgcls.data",
    "ImageSizeChoice": "kerasimgcls.data",
    "InputPreprocessing": "kerasimgcls._export",
    "LearningRateFinderResult": "kerasimgcls.lr_finder",
    "PreciseBatchNorm": "kerasimgcls.training",
    "Predictions": "kerasimgcls._export",
    "Recipe": "kerasimgcls.recipes",
    "ScalingDecision": "kerasimgcls._scaling",
    "SimilarImages": "kerasimgcls.interpret",
    "Split": "kerasimgcls.data",
    "Trainer": "kerasimgcls.training",
    "TrainingConfig": "kerasimgcls.training",
    "TrainingDivergedError": "kerasimgcls.training",
    "UnsafePickleError": "kerasimgcls.data",
    "WeightAveraging": "kerasimgcls.training",
    "build_airbench_cnn": "kerasimgcls.models",
    "build_cifar_cnn": "kerasimgcls.models",
    "build_transfer_model": "kerasimgcls.transfer",
    "check_backbone_weights": "kerasimgcls.transfer",
    "check_image_folder": "kerasimgcls.data",
    "choose_image_size": "kerasimgcls.data",
    "classification_report": "kerasimgcls.evaluation",
    "conv_block": "kerasimgcls.blocks",
    "dense_head": "kerasimgcls.blocks",
    "embeddings": "kerasimgcls.interpret",
    "epochs_dataset": "kerasimgcls.data",
    "export_for_serving": "kerasimgcls.serving",
    "export_model": "kerasimgcls._export",
    "find_learning_rate": "kerasimgcls.lr_finder",
    "from_arrays": "kerasimgcls.data",
    "fuse_batch_norm": "kerasimgcls.layers",
    "get_class_names": "kerasimgcls._export",
    "get_max_image_size": "kerasimgcls.models",
    "get_model": "kerasimgcls.models",
    "get_model_factory": "kerasimgcls.models",
    "get_recipe": "kerasimgcls.recipes",
    "grad_cam": "kerasimgcls.interpret",
    "is_model": "kerasimgcls.models",
    "list_models": "kerasimgcls.models",
    "list_recipes": "kerasimgcls.recipes",
    "load_cifar10": "kerasimgcls.data",
    "load_cifar100": "kerasimgcls.data",
    "load_digits": "kerasimgcls.data",
    "load_fashion_mnist": "kerasimgcls.data",
    "load_image_folder": "kerasimgcls.data",
    "load_mnist": "kerasimgcls.data",
    "load_model": "kerasimgcls._export",
    "normalize": "kerasimgcls.data",
    "one_hot": "kerasimgcls.data",
    "patch_whitening_kernel": "kerasimgcls.models",
    "whitening_sample": "kerasimgcls.models",
    "plot_confusion_matrix": "kerasimgcls.plots",
    "plot_embeddings": "kerasimgcls.plots",
    "plot_grad_cam": "kerasimgcls.plots",
    "plot_learning_rate_finder": "kerasimgcls.plots",
    "plot_samples": "kerasimgcls.plots",
    "plot_similar_images": "kerasimgcls.plots",
    "plot_top_losses": "kerasimgcls.plots",
    "precise_batch_norm": "kerasimgcls.training",
    "precision_scope": "kerasimgcls.layers",
    "predict": "kerasimgcls._export",
    "predict_proba": "kerasimgcls._export",
    "predict_tta": "kerasimgcls._tta",
    "register_model": "kerasimgcls.models",
    "register_recipe": "kerasimgcls.recipes",
    "resolve_input_scaling": "kerasimgcls._scaling",
    "seed_everything": "kerasimgcls.training",
    "similar_images": "kerasimgcls.interpret",
    "to_tf_dataset": "kerasimgcls.data",
    "write_report": "kerasimgcls.report",
}

__all__ = [
    "Augmentation",
    "ClassificationReport",
    "FineTune",
    "FusedBatchNormalization",
    "GradCamResult",
    "History",
    "ImageDataset",
    "ImageFolderReport",
    "ImageSizeChoice",
    "InputPreprocessing",
    "LearningRateFinderResult",
    "PreciseBatchNorm",
    "Predictions",
    "Recipe",
    "ScalingDecision",
    "SimilarImages",
    "Split",
    "Trainer",
    "TrainingConfig",
    "TrainingDivergedError",
    "UnsafePickleError",
    "WeightAveraging",
    "__version__",
    "build_airbench_cnn",
    "build_cifar_cnn",
    "build_transfer_model",
    "check_backbone_weights",
    "check_image_folder",
    "choose_image_size",
    "classification_report",
    "conv_block",
    "dense_head",
    "embeddings",
    "epochs_dataset",
    "export_for_serving",
    "export_model",
    "find_learning_rate",
    "from_arrays",
    "fuse_batch_norm",
    "get_class_names",
    "get_max_image_size",
    "get_model",
    "get_model_factory",
    "get_recipe",
    "grad_cam",
    "is_model",
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
    "predict_tta",
    "register_model",
    "register_recipe",
    "resolve_input_scaling",
    "seed_everything",
    "similar_images",
    "to_tf_dataset",
    "whitening_sample",
    "write_report",
]


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS, __all__)

# keras.saving.load_model("RUN/model.keras") works after `import kerasimgcls`, in
# either import order, without this import starting TensorFlow.
register_when_keras_loads()
