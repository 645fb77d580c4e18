"""kerasimgcls: image classification with Keras 3.

Composable blocks, the reference CIFAR-10 CNN, dataset loaders with checks,
a reproducible and resumable :class:`Trainer`, evaluation reports and Grad-CAM.

The public names are grouped by job, each in the namespace of its room
(``kic.models``, ``kic.data``, ``kic.training``, ``kic.inference``,
``kic.serving``, ``kic.analysis`` and ``kic.plots``); the names users need most are
re-exported here. Importing the package is cheap: each name is imported from its
module on first use (PEP 562), so ``import kerasimgcls`` and the command line's
``--help`` do not start TensorFlow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kerasimgcls._keras_objects import register_when_keras_loads
from kerasimgcls._lazy import lazy_exports
from kerasimgcls._version import __version__ as __version__

if TYPE_CHECKING:  # the table below, for type checkers (tests/test_api.py)
    # Models: the registry, the architectures, their blocks and layers
    # The namespaces, one per job (kic.plots.plot_samples, ...)
    from kerasimgcls import analysis as analysis
    from kerasimgcls import data as data
    from kerasimgcls import inference as inference
    from kerasimgcls import models as models
    from kerasimgcls import serving as serving
    from kerasimgcls import training as training

    # Analysis: evaluation, interpretation, the learning-rate finder, the report
    from kerasimgcls.analysis import (
        ClassificationReport as ClassificationReport,
    )
    from kerasimgcls.analysis import (
        GradCamResult as GradCamResult,
    )
    from kerasimgcls.analysis import (
        LearningRateFinderResult as LearningRateFinderResult,
    )
    from kerasimgcls.analysis import (
        SimilarImages as SimilarImages,
    )
    from kerasimgcls.analysis import (
        classification_report as classification_report,
    )
    from kerasimgcls.analysis import (
        embeddings as embeddings,
    )
    from kerasimgcls.analysis import (
        find_learning_rate as find_learning_rate,
    )
    from kerasimgcls.analysis import (
        grad_cam as grad_cam,
    )
    from kerasimgcls.analysis import plots as plots
    from kerasimgcls.analysis import (
        similar_images as similar_images,
    )
    from kerasimgcls.analysis import (
        write_report as write_report,
    )

    # Data: loaders, checks, splits, augmentation, tf.data pipelines
    from kerasimgcls.data import (
        Augmentation as Augmentation,
    )
    from kerasimgcls.data import (
        ImageDataset as ImageDataset,
    )
    from kerasimgcls.data import (
        ImageFolderReport as ImageFolderReport,
    )
    from kerasimgcls.data import (
        ImageSizeChoice as ImageSizeChoice,
    )
    from kerasimgcls.data import (
        Split as Split,
    )
    from kerasimgcls.data import (
        UnsafePickleError as UnsafePickleError,
    )
    from kerasimgcls.data import (
        check_image_folder as check_image_folder,
    )
    from kerasimgcls.data import (
        choose_image_size as choose_image_size,
    )
    from kerasimgcls.data import (
        epochs_dataset as epochs_dataset,
    )
    from kerasimgcls.data import (
        from_arrays as from_arrays,
    )
    from kerasimgcls.data import (
        load_cifar10 as load_cifar10,
    )
    from kerasimgcls.data import (
        load_cifar100 as load_cifar100,
    )
    from kerasimgcls.data import (
        load_digits as load_digits,
    )
    from kerasimgcls.data import (
        load_fashion_mnist as load_fashion_mnist,
    )
    from kerasimgcls.data import (
        load_image_folder as load_image_folder,
    )
    from kerasimgcls.data import (
        load_mnist as load_mnist,
    )
    from kerasimgcls.data import (
        normalize as normalize,
    )
    from kerasimgcls.data import (
        one_hot as one_hot,
    )
    from kerasimgcls.data import (
        to_tf_dataset as to_tf_dataset,
    )

    # Inference: load, input scaling, predict, test-time augmentation
    from kerasimgcls.inference import (
        InputPreprocessing as InputPreprocessing,
    )
    from kerasimgcls.inference import (
        Predictions as Predictions,
    )
    from kerasimgcls.inference import (
        ScalingDecision as ScalingDecision,
    )
    from kerasimgcls.inference import (
        export_model as export_model,
    )
    from kerasimgcls.inference import (
        get_class_names as get_class_names,
    )
    from kerasimgcls.inference import (
        load_model as load_model,
    )
    from kerasimgcls.inference import (
        predict as predict,
    )
    from kerasimgcls.inference import (
        predict_proba as predict_proba,
    )
    from kerasimgcls.inference import (
        predict_tta as predict_tta,
    )
    from kerasimgcls.inference import (
        resolve_input_scaling as resolve_input_scaling,
    )
    from kerasimgcls.models import (
        FusedBatchNormalization as FusedBatchNormalization,
    )
    from kerasimgcls.models import (
        build_airbench_cnn as build_airbench_cnn,
    )
    from kerasimgcls.models import (
        build_cifar_cnn as build_cifar_cnn,
    )
    from kerasimgcls.models import (
        build_transfer_model as build_transfer_model,
    )
    from kerasimgcls.models import (
        check_backbone_weights as check_backbone_weights,
    )
    from kerasimgcls.models import (
        conv_block as conv_block,
    )
    from kerasimgcls.models import (
        dense_head as dense_head,
    )
    from kerasimgcls.models import (
        fuse_batch_norm as fuse_batch_norm,
    )
    from kerasimgcls.models import (
        get_max_image_size as get_max_image_size,
    )
    from kerasimgcls.models import (
        get_model as get_model,
    )
    from kerasimgcls.models import (
        get_model_factory as get_model_factory,
    )
    from kerasimgcls.models import (
        is_model as is_model,
    )
    from kerasimgcls.models import (
        list_models as list_models,
    )
    from kerasimgcls.models import (
        precision_scope as precision_scope,
    )
    from kerasimgcls.models import (
        register_model as register_model,
    )

    # Serving: a model for other runtimes
    from kerasimgcls.serving import (
        export_for_serving as export_for_serving,
    )

    # Training: the Trainer, its configuration, recipes and callbacks
    from kerasimgcls.training import (
        FineTune as FineTune,
    )
    from kerasimgcls.training import (
        History as History,
    )
    from kerasimgcls.training import (
        PreciseBatchNorm as PreciseBatchNorm,
    )
    from kerasimgcls.training import (
        Recipe as Recipe,
    )
    from kerasimgcls.training import (
        Trainer as Trainer,
    )
    from kerasimgcls.training import (
        TrainingConfig as TrainingConfig,
    )
    from kerasimgcls.training import (
        TrainingDivergedError as TrainingDivergedError,
    )
    from kerasimgcls.training import (
        WeightAveraging as WeightAveraging,
    )
    from kerasimgcls.training import (
        get_recipe as get_recipe,
    )
    from kerasimgcls.training import (
        list_recipes as list_recipes,
    )
    from kerasimgcls.training import (
        precise_batch_norm as precise_batch_norm,
    )
    from kerasimgcls.training import (
        register_recipe as register_recipe,
    )
    from kerasimgcls.training import (
        seed_everything as seed_everything,
    )

# Each public name and the public module that defines it, grouped by job.
_EXPORTS: dict[str, str] = {
    # Models: the registry, the architectures, their blocks and layers
    "FusedBatchNormalization": "kerasimgcls.models",
    "build_airbench_cnn": "kerasimgcls.models",
    "build_cifar_cnn": "kerasimgcls.models",
    "build_transfer_model": "kerasimgcls.models",
    "check_backbone_weights": "kerasimgcls.models",
    "conv_block": "kerasimgcls.models",
    "dense_head": "kerasimgcls.models",
    "fuse_batch_norm": "kerasimgcls.models",
    "get_max_image_size": "kerasimgcls.models",
    "get_model": "kerasimgcls.models",
    "get_model_factory": "kerasimgcls.models",
    "is_model": "kerasimgcls.models",
    "list_models": "kerasimgcls.models",
    "precision_scope": "kerasimgcls.models",
    "register_model": "kerasimgcls.models",
    # Data: loaders, checks, splits, augmentation, tf.data pipelines
    "Augmentation": "kerasimgcls.data",
    "ImageDataset": "kerasimgcls.data",
    "ImageFolderReport": "kerasimgcls.data",
    "ImageSizeChoice": "kerasimgcls.data",
    "Split": "kerasimgcls.data",
    "UnsafePickleError": "kerasimgcls.data",
    "check_image_folder": "kerasimgcls.data",
    "choose_image_size": "kerasimgcls.data",
    "epochs_dataset": "kerasimgcls.data",
    "from_arrays": "kerasimgcls.data",
    "load_cifar10": "kerasimgcls.data",
    "load_cifar100": "kerasimgcls.data",
    "load_digits": "kerasimgcls.data",
    "load_fashion_mnist": "kerasimgcls.data",
    "load_image_folder": "kerasimgcls.data",
    "load_mnist": "kerasimgcls.data",
    "normalize": "kerasimgcls.data",
    "one_hot": "kerasimgcls.data",
    "to_tf_dataset": "kerasimgcls.data",
    # Training: the Trainer, its configuration, recipes and callbacks
    "FineTune": "kerasimgcls.training",
    "History": "kerasimgcls.training",
    "PreciseBatchNorm": "kerasimgcls.training",
    "Recipe": "kerasimgcls.training",
    "Trainer": "kerasimgcls.training",
    "TrainingConfig": "kerasimgcls.training",
    "TrainingDivergedError": "kerasimgcls.training",
    "WeightAveraging": "kerasimgcls.training",
    "get_recipe": "kerasimgcls.training",
    "list_recipes": "kerasimgcls.training",
    "precise_batch_norm": "kerasimgcls.training",
    "register_recipe": "kerasimgcls.training",
    "seed_everything": "kerasimgcls.training",
    # Inference: load, input scaling, predict, test-time augmentation
    "InputPreprocessing": "kerasimgcls.inference",
    "Predictions": "kerasimgcls.inference",
    "ScalingDecision": "kerasimgcls.inference",
    "export_model": "kerasimgcls.inference",
    "get_class_names": "kerasimgcls.inference",
    "load_model": "kerasimgcls.inference",
    "predict": "kerasimgcls.inference",
    "predict_proba": "kerasimgcls.inference",
    "predict_tta": "kerasimgcls.inference",
    "resolve_input_scaling": "kerasimgcls.inference",
    # Serving: a model for other runtimes
    "export_for_serving": "kerasimgcls.serving",
    # Analysis: evaluation, interpretation, the learning-rate finder, the report
    "ClassificationReport": "kerasimgcls.analysis",
    "GradCamResult": "kerasimgcls.analysis",
    "LearningRateFinderResult": "kerasimgcls.analysis",
    "SimilarImages": "kerasimgcls.analysis",
    "classification_report": "kerasimgcls.analysis",
    "embeddings": "kerasimgcls.analysis",
    "find_learning_rate": "kerasimgcls.analysis",
    "grad_cam": "kerasimgcls.analysis",
    "similar_images": "kerasimgcls.analysis",
    "write_report": "kerasimgcls.analysis",
    # The namespaces, one per job
    "analysis": "kerasimgcls.analysis",
    "data": "kerasimgcls.data",
    "inference": "kerasimgcls.inference",
    "models": "kerasimgcls.models",
    "plots": "kerasimgcls.analysis.plots",
    "serving": "kerasimgcls.serving",
    "training": "kerasimgcls.training",
}

# Internals that moved under their module's namespace in 0.x; still served, with
# a DeprecationWarning (CHANGELOG, "Deprecated").
_DEPRECATED: dict[str, str] = {
    "patch_whitening_kernel": "kerasimgcls.models",
    "whitening_sample": "kerasimgcls.models",
    "plot_confusion_matrix": "kerasimgcls.analysis.plots",
    "plot_embeddings": "kerasimgcls.analysis.plots",
    "plot_grad_cam": "kerasimgcls.analysis.plots",
    "plot_learning_rate_finder": "kerasimgcls.analysis.plots",
    "plot_samples": "kerasimgcls.analysis.plots",
    "plot_similar_images": "kerasimgcls.analysis.plots",
    "plot_top_losses": "kerasimgcls.analysis.plots",
}

_NAMESPACES = frozenset(
    {"analysis", "data", "inference", "models", "plots", "serving", "training"}
)
__all__ = sorted({"__version__", *_EXPORTS} - _NAMESPACES)

__getattr__, __dir__ = lazy_exports(
    __name__, globals(), _EXPORTS, deprecated=_DEPRECATED
)

# keras.saving.load_model("RUN/model.keras") works after `import kerasimgcls`, in
# either import order, without this import starting TensorFlow.
register_when_keras_loads()
