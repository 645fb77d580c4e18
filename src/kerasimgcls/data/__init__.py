"""Data: loaders, checks, splits, augmentation and tf.data pipelines.

Downloads and their cache (:mod:`~kerasimgcls.data._download`) sit apart from the
readers of each format; images stay uint8 until a batch is made. Names are
imported from their modules on first use, as in every package of the library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kerasimgcls._lazy import lazy_exports

if TYPE_CHECKING:  # the table below, for type checkers (tests/test_api.py)
    from kerasimgcls.data._arrays import (
        from_arrays as from_arrays,
    )
    from kerasimgcls.data._arrays import (
        load_digits as load_digits,
    )
    from kerasimgcls.data._augment import (
        Augmentation as Augmentation,
    )
    from kerasimgcls.data._check import (
        ImageFolderReport as ImageFolderReport,
    )
    from kerasimgcls.data._check import (
        check_image_folder as check_image_folder,
    )
    from kerasimgcls.data._dataset import (
        ImageDataset as ImageDataset,
    )
    from kerasimgcls.data._dataset import (
        Split as Split,
    )
    from kerasimgcls.data._image_folder import (
        default_cache_dir as default_cache_dir,
    )
    from kerasimgcls.data._image_folder import (
        load_image_folder as load_image_folder,
    )
    from kerasimgcls.data._pipeline import (
        epochs_dataset as epochs_dataset,
    )
    from kerasimgcls.data._pipeline import (
        to_tf_dataset as to_tf_dataset,
    )
    from kerasimgcls.data._safe_pickle import (
        UnsafePickleError as UnsafePickleError,
    )
    from kerasimgcls.data._sizes import (
        ImageSizeChoice as ImageSizeChoice,
    )
    from kerasimgcls.data._sizes import (
        choose_image_size as choose_image_size,
    )
    from kerasimgcls.data._standard import (
        CIFAR10_CLASSES as CIFAR10_CLASSES,
    )
    from kerasimgcls.data._standard import (
        load_cifar10 as load_cifar10,
    )
    from kerasimgcls.data._standard import (
        load_cifar100 as load_cifar100,
    )
    from kerasimgcls.data._standard import (
        load_fashion_mnist as load_fashion_mnist,
    )
    from kerasimgcls.data._standard import (
        load_mnist as load_mnist,
    )
    from kerasimgcls.data._transforms import (
        normalize as normalize,
    )
    from kerasimgcls.data._transforms import (
        one_hot as one_hot,
    )

_EXPORTS: dict[str, str] = {
    "from_arrays": "kerasimgcls.data._arrays",
    "load_digits": "kerasimgcls.data._arrays",
    "Augmentation": "kerasimgcls.data._augment",
    "ImageFolderReport": "kerasimgcls.data._check",
    "check_image_folder": "kerasimgcls.data._check",
    "ImageDataset": "kerasimgcls.data._dataset",
    "Split": "kerasimgcls.data._dataset",
    "default_cache_dir": "kerasimgcls.data._image_folder",
    "load_image_folder": "kerasimgcls.data._image_folder",
    "epochs_dataset": "kerasimgcls.data._pipeline",
    "to_tf_dataset": "kerasimgcls.data._pipeline",
    "UnsafePickleError": "kerasimgcls.data._safe_pickle",
    "ImageSizeChoice": "kerasimgcls.data._sizes",
    "choose_image_size": "kerasimgcls.data._sizes",
    "CIFAR10_CLASSES": "kerasimgcls.data._standard",
    "load_cifar10": "kerasimgcls.data._standard",
    "load_cifar100": "kerasimgcls.data._standard",
    "load_fashion_mnist": "kerasimgcls.data._standard",
    "load_mnist": "kerasimgcls.data._standard",
    "normalize": "kerasimgcls.data._transforms",
    "one_hot": "kerasimgcls.data._transforms",
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
