"""Transfer learning: a keras.applications backbone with its preprocessing and a head.

:func:`build_transfer_model` wraps a pretrained backbone the way every model of the
library is fed: raw 0-255 pixels in (the backbone's own preprocessing is inside the
model, so :func:`~kerasimgcls.resolve_input_scaling` decides ``"raw"``), small
images resized up inside the model to a size the backbone suits, and a pooled head
from :func:`~kerasimgcls.dense_head`. The backbone is one nested layer named
``"backbone"``, which :class:`~kerasimgcls.FineTune` freezes and unfreezes.

Weights come from Keras' download cache (``"imagenet"``), from a local file, or
nowhere (``None``). Without a network, Keras would try the download and fail after
a long wait; here the cache is checked first and a missing file is named, with the
folder to put it in, before anything is built or loaded.

Importing this module imports only Keras itself (as :mod:`kerasimgcls.models`
does); ``keras.applications`` is imported when a backbone is built.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import urllib.parse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import keras

from kerasimgcls._validation import (
    check_image_size,
    check_input_shape,
    check_optional_rate,
    check_path_exists,
    check_positive_int,
)
from kerasimgcls.models._file import read_model_file
from kerasimgcls.models._registry import register_model
from kerasimgcls.models._weights import copy_matching_weights
from kerasimgcls.models.blocks import dense_head

__all__ = [
    "BACKBONES",
    "build_transfer_model",
    "check_backbone_weights",
]

#: Suffixes of the local weights files :func:`build_transfer_model` loads.
WEIGHTS_SUFFIXES = (".weights.h5", ".h5", ".keras")
#: Name of the nested backbone layer of every transfer model.
BACKBONE_LAYER = "backbone"

ImageSize = int | tuple[int, int] | Literal["auto"] | None


@dataclasses.dataclass(frozen=True)
class _Backbone:
    """A keras.applications backbone and where Keras keeps its ImageNet weights."""

    application: str  # attribute of keras.applications
    image_size: int  # the resolution its ImageNet weights were trained at
    weights_file: str  # file name Keras caches the no-top weights under
    weights_origin: str  # folder URL Keras downloads it from
    options: tuple[tuple[str, Any], ...] = ()


_GCS = "https://storage.googleapis.com/tensorflow/keras-applications/"
# File names as keras.applications builds them for include_top=False (Keras 3);
# tests/test_transfer.py checks each against what Keras asks for.
_BACKBONES: dict[str, _Backbone] = {
    "mobilenet_v3_small": _Backbone(
        "MobileNetV3Small",
        224,
        "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5",
        _GCS + "mobilenet_v3/",
        (("include_preprocessing", True),),
    ),
    "mobilenet_v3_large": _Backbone(
        "MobileNetV3Large",
        224,
        "weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5",
        _GCS + "mobilenet_v3/",
        (("include_preprocessing", True),),
    ),
    "efficientnet_b0": _Backbone(
        "EfficientNetB0",
        224,
        "efficientnetb0_notop.h5",
        "https://storage.googleapis.com/keras-applications/",
    ),
    "efficientnet_v2_b0": _Backbone(
        "EfficientNetV2B0",
        224,
        "efficientnetv2-b0_notop.h5",
        _GCS + "efficientnet_v2/",
        (("include_preprocessing", True),),
    ),
    "resnet50": _Backbone(
        "ResNet50",
        224,
        "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
        _GCS + "resnet/",
    ),
    "convnext_tiny": _Backbone(
        "ConvNeXtTiny",
        224,
        "convnext_tiny_notop.h5",
        _GCS + "convnext/",
        (("include_preprocessing", True),),
    ),
}

#: Names of the keras.applications backbones, as registered in the model registry.
BACKBONES: tuple[str, ...] = tuple(sorted(_BACKBONES))

# ResNet50's ImageNet weights expect "caffe" inputs: BGR, minus the ImageNet mean.
_CAFFE_MEAN_RGB = (123.68, 116.779, 103.939)


def _check_backbone(backbone: object) -> _Backbone:
    if not isinstance(backbone, str) or backbone not in _BACKBONES:
        raise ValueError(
            f"Unknown backbone {backbone!r}. Available: {list(BACKBONES)}, or pass a "
            "keras.Model"
        )
    return _BACKBONES[backbone]


def _keras_cache_dir() -> Path:
    """The folder Keras' ``get_file`` caches application weights in."""
    try:  # the folder Keras itself computed at import (from $KERAS_HOME)
        from keras.src.backend.config import keras_home

        base = os.path.expanduser(keras_home())
    except ImportError:  # pragma: no cover - a future Keras without it
        base = os.environ.get("KERAS_HOME", os.path.expanduser("~/.keras"))
    if not os.access(base, os.W_OK) and not os.access(os.path.dirname(base), os.W_OK):
        base = os.path.join("/tmp", ".keras")  # Keras' own fallback
    return Path(base) / "models"


def _reachable(url: str, timeout: float = 3.0) -> bool:
    parts = urllib.parse.urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "", parts.port or 443), timeout
        ):
            return True
    except OSError:
        return False


def check_backbone_weights(
    backbone: str, weights: str | os.PathLike[str] | None = "imagenet"
) -> Path | None:
    """Check, without building anything, that ``backbone``'s weights can be had.

    Call it before loading data: it takes milliseconds when the weights are on
    disk, and a few seconds at most to find that the download server cannot be
    reached. :func:`build_transfer_model` calls it first.

    Args:
        backbone: A name from :data:`~kerasimgcls.models.transfer.BACKBONES`.
        weights: ``"imagenet"``, a path to a local weights file, or ``None``.

    Returns:
        The local file the weights will come from (the cached ImageNet file, or
        ``weights`` itself), or ``None`` if there is nothing to load or Keras will
        download the ImageNet file now.

    Raises:
        ValueError: If ``backbone`` is unknown or ``weights`` has an unknown suffix.
        FileNotFoundError: If ``weights="imagenet"``, the file is not in Keras'
            cache and the server cannot be reached (the message names the file and
            the folder to put it in), or a local ``weights`` file does not exist.

    Example:
        >>> from kerasimgcls import check_backbone_weights
        >>> check_backbone_weights("mobilenet_v3_small", None) is None
        True
    """
    spec = _check_backbone(backbone)
    if weights is None:
        return None
    if isinstance(weights, str) and weights == "imagenet":
        cached = _keras_cache_dir() / spec.weights_file
        if cached.is_file():
            return cached
        origin = spec.weights_origin + spec.weights_file
        if _reachable(origin):
            return None  # Keras downloads it into the cache
        raise FileNotFoundError(
            f"weights='imagenet' for {backbone} needs {spec.weights_file!r}, which is "
            f"not in Keras' cache and {urllib.parse.urlsplit(origin).hostname} cannot "
            f"be reached; download {origin} elsewhere and put it in "
            f"{str(cached.parent)!r} (~/.keras/models, or $KERAS_HOME/models), or "
            "pass weights=None to train from scratch"
        )
    return _check_weights_path(weights)


def _check_weights_path(weights: object) -> Path:
    if not isinstance(weights, (str, os.PathLike)):
        raise TypeError(
            "weights must be 'imagenet', None or a path to a weights file; received "
            f"weights={weights!r}"
        )
    path = check_path_exists(weights, "weights", kind="file")
    if not str(path).endswith(WEIGHTS_SUFFIXES):
        raise ValueError(
            f"weights must be 'imagenet', None or a file ending in "
            f"{', '.join(WEIGHTS_SUFFIXES)}; received weights={str(weights)!r}"
        )
    return path


def _target_size(
    shape: tuple[int, int, int], image_size: ImageSize, default: int | None
) -> tuple[int, int]:
    """The size the backbone sees: ``image_size`` if the input is smaller."""
    if image_size is None:
        return shape[0], shape[1]
    if isinstance(image_size, str):
        if image_size != "auto":
            raise ValueError(
                "image_size must be 'auto', None, an integer or a pair; received "
                f"image_size={image_size!r}"
            )
        if default is None:
            return shape[0], shape[1]
        image_size = default
    height, width = check_image_size(image_size)
    if shape[0] < height or shape[1] < width:
        return height, width
    return shape[0], shape[1]


def _application(
    spec: _Backbone, shape: tuple[int, int, int], weights: str | None
) -> keras.Model:
    """Build the keras.applications backbone (no top, no pooling) for ``shape``."""
    from keras import applications

    factory: Callable[..., keras.Model] = getattr(applications, spec.application)
    options = dict(spec.options)
    if spec.application == "ResNet50":
        return _resnet50(factory, shape, weights)
    return factory(
        include_top=False, weights=weights, input_shape=shape, pooling=None, **options
    )


def _resnet50(
    factory: Callable[..., keras.Model], shape: tuple[int, int, int], weights: Any
) -> keras.Model:
    # keras.applications.ResNet50 has no preprocessing layer; its "caffe" inputs
    # are built from standard layers and ops inside the backbone, so the model
    # saves and loads in safe mode and takes 0-255 RGB like the others.
    inputs = keras.Input(shape, name="backbone_input")
    x = keras.layers.Normalization(
        mean=list(_CAFFE_MEAN_RGB), variance=[1.0, 1.0, 1.0], name="caffe_mean"
    )(inputs)
    x = keras.ops.flip(x, axis=-1)  # RGB to BGR
    return factory(include_top=False, weights=weights, input_tensor=x, pooling=None)


def _load_local(backbone: keras.Model, path: Path) -> None:
    """Load ``path`` into ``backbone``: its own weights, or a model holding it."""
    if path.suffix != ".keras":
        backbone.load_weights(path)
        return
    # A nested layer named like ours (a transfer model saved by a run) first.
    source = read_model_file(path)
    if not copy_matching_weights(source, backbone, whole=True, prefer=BACKBONE_LAYER):
        shapes = len(backbone.weights)
        raise ValueError(
            f"weights={str(path)!r} holds no model with the weights of this backbone "
            f"({shapes} arrays); save the backbone (or a transfer model built with "
            "the same backbone and input size) and pass that file"
        )


def _resolve_backbone(
    backbone: object,
    shape: tuple[int, int, int],
    input_shape: Sequence[int],
    weights: str | os.PathLike[str] | None,
    name: str | None,
) -> tuple[_Backbone | None, Path | None, int | None, str]:
    """Check ``backbone`` and ``weights``: ``(spec, local weights, default size, name)``.

    ``spec`` is ``None`` for a given :class:`keras.Model`; the default size is the
    side the backbone's weights were trained at (or its fixed square input).
    """
    if isinstance(backbone, keras.Model):
        local = None if weights is None else _check_weights_path(weights)
        fixed = tuple(backbone.input_shape[1:3])
        default = fixed[0] if None not in fixed and fixed[0] == fixed[1] else None
        return None, local, default, name or backbone.name
    if isinstance(backbone, str):
        spec = _check_backbone(backbone)
        if shape[2] != 3:
            raise ValueError(
                f"input_shape must have 3 (RGB) channels for {backbone}; received "
                f"input_shape={tuple(input_shape)!r}: load the images in colour"
            )
        local = check_backbone_weights(backbone, weights)  # before building anything
        return spec, local, spec.image_size, name or backbone
    raise TypeError(
        "backbone must be a backbone name or a keras.Model; received "
        f"{type(backbone).__name__}"
    )


def _application_body(
    backbone: object,
    spec: _Backbone,
    shape: tuple[int, int, int],
    size: tuple[int, int],
    weights: str | os.PathLike[str] | None,
    local: Path | None,
    asked: tuple[Sequence[int], ImageSize],
) -> keras.Model:
    """Build the named backbone at ``size`` (``asked``: the arguments, for errors)."""
    if min(size) < 32:
        input_shape, image_size = asked
        raise ValueError(
            f"{backbone} needs images of at least 32x32; received input_shape="
            f"{tuple(input_shape)!r} with image_size={image_size!r}: pass "
            "image_size=32 or more"
        )
    from_imagenet = weights == "imagenet"
    # EfficientNet's architecture depends on weights="imagenet" (an extra
    # Rescaling); Keras finds the file checked above in its cache.
    body = _application(spec, (*size, shape[2]), "imagenet" if from_imagenet else None)
    if local is not None and not from_imagenet:
        _load_local(body, local)
    return body


def build_transfer_model(
    backbone: str | keras.Model,
    *,
    input_shape: Sequence[int],
    num_classes: int,
    weights: str | os.PathLike[str] | None = "imagenet",
    image_size: ImageSize = "auto",
    head_units: Sequence[int] = (),
    dropout: float | None = 0.2,
    name: str | None = None,
) -> keras.Model:
    """Build a classifier from a pretrained backbone: raw pixels in, probabilities out.

    The model is: the input (float, 0-255 pixels as every model of the library
    takes them), a ``Resizing`` layer named ``resize`` when the images are smaller
    than ``image_size``, the backbone as one nested layer named ``backbone`` with
    its own preprocessing inside (keras.applications' ``Rescaling`` or
    ``Normalization``; for ResNet50 a ``Normalization`` by the ImageNet mean and
    an RGB-to-BGR flip), then :func:`dense_head` named ``head``: global average
    pooling, dropout, optional hidden layers and the softmax.
    :func:`~kerasimgcls.resolve_input_scaling` decides ``"raw"`` for it, so the
    Trainer, :func:`predict`, :func:`grad_cam` and an exported model feed it
    0-255 pixels. Every layer is trainable; train the head first and then the top
    of the backbone with :class:`~kerasimgcls.FineTune`.

    Args:
        backbone: A name from :data:`~kerasimgcls.models.transfer.BACKBONES` (``"mobilenet_v3_small"``,
            ``"efficientnet_b0"``, ...), or a :class:`keras.Model` mapping images
            to a 4-D feature map (your own body; it is used as it is, so it must
            scale its own input to take raw pixels).
        input_shape: ``(height, width, 3)`` of the images given to the model.
        num_classes: Number of classes.
        weights: ``"imagenet"`` (Keras' download, cached in ``~/.keras/models`` or
            ``$KERAS_HOME/models``; checked first, see
            :func:`check_backbone_weights`), a path to a local file (a
            ``.weights.h5`` or ``.h5`` file of the backbone's weights, or a
            ``.keras`` model that contains the backbone, such as the
            ``model.keras`` of a run trained from the same backbone), or ``None``
            for random initial weights.
        image_size: Images smaller than this on either side are resized to it
            (bilinear) inside the model; larger ones pass at their own size.
            ``"auto"``: the resolution the backbone's ImageNet weights were
            trained at (224 for all of :data:`~kerasimgcls.models.transfer.BACKBONES`), or a given backbone's
            fixed input size; ``None`` never resizes (the backbone must accept the
            input: keras.applications need at least 32x32). Upscaling costs
            compute: a 32x32 image resized to 224 costs 49 times as much, and 96
            or 128 is a good compromise on a CPU.
        head_units: Hidden dense layers of the head; empty for a linear classifier
            on the pooled features.
        dropout: Dropout rate on the pooled features, or ``None``.
        name: Name of the model; default: the backbone's name.

    Returns:
        The uncompiled model.

    Raises:
        ValueError: If ``backbone`` is unknown, ``input_shape`` is not
            ``(height, width, 3)``, an argument is out of range, the image size is
            below 32, or a local ``weights`` file does not fit the backbone.
        FileNotFoundError: If the ImageNet weights are not cached and cannot be
            downloaded, or a ``weights`` path does not exist.
        TypeError: If ``backbone`` or ``weights`` has the wrong type.

    Example:
        >>> from kerasimgcls import build_transfer_model, resolve_input_scaling
        >>> model = build_transfer_model("mobilenet_v3_small", input_shape=(32, 32, 3),
        ...                              num_classes=5, weights=None, image_size=64)
        >>> tuple(model.output_shape), model.get_layer("resize").height
        ((None, 5), 64)
        >>> resolve_input_scaling(model).scaling
        'raw'
    """
    shape = check_input_shape(input_shape)
    num_classes = check_positive_int(num_classes, "num_classes")
    rate = check_optional_rate(dropout, "dropout")
    spec, local, default, model_name = _resolve_backbone(
        backbone, shape, input_shape, weights, name
    )
    size = _target_size(shape, image_size, default)
    if spec is not None:
        body = _application_body(
            backbone, spec, shape, size, weights, local, (input_shape, image_size)
        )
    else:
        assert isinstance(backbone, keras.Model)
        body = backbone
        if local is not None:
            _load_local(body, local)
    body.name = BACKBONE_LAYER
    inputs = keras.Input(shape, name="images")
    x = inputs
    if size != shape[:2]:
        x = keras.layers.Resizing(*size, interpolation="bilinear", name="resize")(x)
    features = body(x)
    outputs = dense_head(
        features,
        num_classes,
        units=tuple(head_units),
        pooling="avg",
        input_dropout=rate,
        dropout=rate,
        batch_norm=False,
        name="head",
    )
    return keras.Model(inputs, outputs, name=model_name)


def native_image_size(backbone: str) -> int:
    """Return the image side ``backbone``'s ImageNet weights were trained at."""
    return _check_backbone(backbone).image_size


def registered_factory(backbone: str) -> Callable[..., keras.Model]:
    """Return the registry factory of ``backbone`` (registered below)."""
    spec = _check_backbone(backbone)

    def factory(
        *,
        input_shape: Sequence[int] = (spec.image_size, spec.image_size, 3),
        num_classes: int = 1000,
        weights: str | os.PathLike[str] | None = "imagenet",
        image_size: ImageSize = "auto",
        head_units: Sequence[int] = (),
        dropout: float | None = 0.2,
        name: str = backbone,
    ) -> keras.Model:
        return build_transfer_model(
            backbone,
            input_shape=input_shape,
            num_classes=num_classes,
            weights=weights,
            image_size=image_size,
            head_units=head_units,
            dropout=dropout,
            name=name,
        )

    factory.__name__ = factory.__qualname__ = f"build_{backbone}"
    factory.__doc__ = (
        f"Build a transfer model on keras.applications.{spec.application} "
        "(see :func:`~kerasimgcls.build_transfer_model`)."
    )
    return factory


# The backbones register themselves (keras.applications is imported only when one
# is built, so registering them costs nothing at import).
for _backbone in BACKBONES:
    register_model(_backbone, max_image_size=native_image_size(_backbone))(
        registered_factory(_backbone)
    )
