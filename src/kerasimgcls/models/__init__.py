"""Models: a registry of factories, one module per architecture, blocks and layers.

timm's layout: :mod:`~kerasimgcls.models._registry` maps names to factories and
imports no architecture; each architecture module registers itself
(:mod:`~kerasimgcls.models.cifar_cnn`, :mod:`~kerasimgcls.models.airbench`, and the
keras.applications backbones of :mod:`~kerasimgcls.models.transfer`). Importing
this package imports them all (it imports Keras), so every name is registered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kerasimgcls._lazy import lazy_exports

# The architectures register themselves as they are imported.
from kerasimgcls.models import airbench, cifar_cnn, transfer  # noqa: F401

if TYPE_CHECKING:  # the table below, for type checkers (tests/test_api.py)
    from kerasimgcls.models._registry import (
        DEFAULT_MAX_IMAGE_SIZE as DEFAULT_MAX_IMAGE_SIZE,
    )
    from kerasimgcls.models._registry import (
        get_max_image_size as get_max_image_size,
    )
    from kerasimgcls.models._registry import (
        get_model as get_model,
    )
    from kerasimgcls.models._registry import (
        get_model_factory as get_model_factory,
    )
    from kerasimgcls.models._registry import (
        is_model as is_model,
    )
    from kerasimgcls.models._registry import (
        list_models as list_models,
    )
    from kerasimgcls.models._registry import (
        register_model as register_model,
    )
    from kerasimgcls.models.airbench import (
        build_airbench_cnn as build_airbench_cnn,
    )
    from kerasimgcls.models.airbench import (
        patch_whitening_kernel as patch_whitening_kernel,
    )
    from kerasimgcls.models.airbench import (
        whitening_sample as whitening_sample,
    )
    from kerasimgcls.models.blocks import (
        conv_block as conv_block,
    )
    from kerasimgcls.models.blocks import (
        dense_head as dense_head,
    )
    from kerasimgcls.models.cifar_cnn import (
        build_cifar_cnn as build_cifar_cnn,
    )
    from kerasimgcls.models.layers import (
        FusedBatchNormalization as FusedBatchNormalization,
    )
    from kerasimgcls.models.layers import (
        fuse_batch_norm as fuse_batch_norm,
    )
    from kerasimgcls.models.layers import (
        precision_scope as precision_scope,
    )
    from kerasimgcls.models.preprocessing import (
        InputPreprocessing as InputPreprocessing,
    )
    from kerasimgcls.models.preprocessing import (
        get_class_names as get_class_names,
    )
    from kerasimgcls.models.transfer import (
        BACKBONES as BACKBONES,
    )
    from kerasimgcls.models.transfer import (
        build_transfer_model as build_transfer_model,
    )
    from kerasimgcls.models.transfer import (
        check_backbone_weights as check_backbone_weights,
    )

_EXPORTS: dict[str, str] = {
    "DEFAULT_MAX_IMAGE_SIZE": "kerasimgcls.models._registry",
    "get_max_image_size": "kerasimgcls.models._registry",
    "get_model": "kerasimgcls.models._registry",
    "get_model_factory": "kerasimgcls.models._registry",
    "is_model": "kerasimgcls.models._registry",
    "list_models": "kerasimgcls.models._registry",
    "register_model": "kerasimgcls.models._registry",
    "build_airbench_cnn": "kerasimgcls.models.airbench",
    "patch_whitening_kernel": "kerasimgcls.models.airbench",
    "whitening_sample": "kerasimgcls.models.airbench",
    "conv_block": "kerasimgcls.models.blocks",
    "dense_head": "kerasimgcls.models.blocks",
    "build_cifar_cnn": "kerasimgcls.models.cifar_cnn",
    "FusedBatchNormalization": "kerasimgcls.models.layers",
    "fuse_batch_norm": "kerasimgcls.models.layers",
    "precision_scope": "kerasimgcls.models.layers",
    "InputPreprocessing": "kerasimgcls.models.preprocessing",
    "get_class_names": "kerasimgcls.models.preprocessing",
    "BACKBONES": "kerasimgcls.models.transfer",
    "build_transfer_model": "kerasimgcls.models.transfer",
    "check_backbone_weights": "kerasimgcls.models.transfer",
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
