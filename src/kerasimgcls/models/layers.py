"""Speed options for training on a CPU: a fused batch norm and mixed precision.

Keras 3 computes batch normalisation in training as separate moment and
arithmetic ops; TensorFlow's ``FusedBatchNormV3`` kernel does the same in one
pass. :class:`FusedBatchNormalization` is a drop-in
:class:`keras.layers.BatchNormalization` (same weights, same results up to
float round-off) whose training step uses that kernel, and
:func:`fuse_batch_norm` swaps it into any functional or sequential model.
:func:`precision_scope` builds models under a Keras dtype policy such as
``"mixed_bfloat16"``. The performance page of the documentation has the
measurements behind both.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import keras
import tensorflow as tf

from kerasimgcls._validation import PRECISIONS as _PRECISIONS
from kerasimgcls._validation import check_precision as check_precision
from kerasimgcls.models._walk import walk_layers

__all__ = [
    "PRECISIONS",
    "FusedBatchNormalization",
    "erf_gelu_copy",
    "float32_copy",
    "fuse_batch_norm",
    "gelu_erf",
    "inference_copy",
    "precision_scope",
    "saved_copy",
]

#: The precisions :func:`kerasimgcls.precision_scope` and ``Trainer(precision=...)`` accept.
PRECISIONS = _PRECISIONS


@keras.saving.register_keras_serializable(package="kerasimgcls")
class FusedBatchNormalization(keras.layers.BatchNormalization):  # type: ignore[misc]
    """:class:`keras.layers.BatchNormalization` trained with TensorFlow's fused kernel.

    In training, on 4-D inputs normalised over the last axis, the batch statistics,
    the normalisation and the moving-average updates come from one
    ``FusedBatchNormV3`` op instead of Keras' separate ops. Everything else
    (inference, other ranks or axes, weights, configuration) is Keras' own, so a
    model can switch between the two layers with its weights unchanged.

    Example:
        >>> import numpy as np
        >>> from kerasimgcls.models.layers import FusedBatchNormalization
        >>> layer = FusedBatchNormalization(momentum=0.9)
        >>> x = np.random.default_rng(0).normal(size=(8, 4, 4, 3)).astype("float32")
        >>> y = layer(x, training=True)
        >>> bool(abs(float(np.mean(y))) < 1e-5), tuple(y.shape)
        (True, (8, 4, 4, 3))
    """

    def call(self, inputs: Any, training: Any = None, mask: Any = None) -> Any:
        """Normalise ``inputs``; with ``training=True`` through the fused kernel."""
        rank = len(inputs.shape)
        if not training or rank != 4 or self.axis not in (-1, 3) or mask is not None:
            return super().call(inputs, training=training, mask=mask)
        # Statistics in float32 even under a mixed policy, as Keras does.
        scale = self.gamma if self.scale else tf.ones_like(self.moving_mean)
        offset = self.beta if self.center else tf.zeros_like(self.moving_mean)
        outputs, mean, variance = tf.compat.v1.nn.fused_batch_norm(
            inputs,
            tf.cast(scale, "float32"),
            tf.cast(offset, "float32"),
            epsilon=self.epsilon,
            is_training=True,
        )
        # The kernel returns the unbiased variance; Keras tracks the biased one.
        count = tf.cast(tf.size(inputs) // tf.shape(inputs)[-1], variance.dtype)
        variance = variance * (count - 1.0) / tf.maximum(count, 1.0)
        momentum = tf.cast(self.momentum, mean.dtype)
        self.moving_mean.assign(
            self.moving_mean * momentum
            + tf.cast(mean, self.moving_mean.dtype) * (1 - momentum)
        )
        self.moving_variance.assign(
            self.moving_variance * momentum
            + tf.cast(variance, self.moving_variance.dtype) * (1 - momentum)
        )
        return tf.cast(outputs, self.compute_dtype)


def fuse_batch_norm(model: keras.Model) -> keras.Model:
    """Return a copy of ``model`` with its Keras batch norms fused.

    Every :class:`keras.layers.BatchNormalization` becomes a
    :class:`FusedBatchNormalization`; subclasses of it are left as they are.

    The copy has the same layers, names, configuration and weights; only the class
    of the :class:`keras.layers.BatchNormalization` layers changes, so it computes
    the same function and trains faster on a CPU (about 1.2x for the reference CNN,
    see the performance page). Nested models are converted too.

    Args:
        model: A functional or sequential Keras model.

    Returns:
        The converted copy (the model itself if it has no batch norm).

    Raises:
        TypeError: If ``model`` is not a Keras model.
        ValueError: If ``model`` is a subclassed model, which Keras cannot clone.

    Example:
        >>> from kerasimgcls import build_cifar_cnn
        >>> from kerasimgcls.models.layers import FusedBatchNormalization, fuse_batch_norm
        >>> fused = fuse_batch_norm(build_cifar_cnn(compile=False))
        >>> fused.count_params()
        393962
        >>> isinstance(fused.get_layer("block1_bn"), FusedBatchNormalization)
        True
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model; received {type(model).__name__}")
    if not any(_is_plain_batch_norm(layer) for layer in walk_layers(model)):
        return model
    return _copy_converting(model, _fused, "fuse_batch_norm")


def inference_copy(model: keras.Model) -> keras.Model:
    """Return ``model`` as it is saved: uncompiled, batch norms as Keras' own.

    A trained model carries what only training needs: its optimizer (with the
    learning-rate schedule and the moments of every weight) and the compile
    configuration, and :class:`FusedBatchNormalization` layers. The copy has the
    same layers, names, configuration and weights, computes the same function at
    inference, and holds none of that: a run's ``model.keras`` is this copy, about a
    third of the size, and loads without the modules of training.

    Args:
        model: A functional or sequential Keras model.

    Returns:
        The copy (not compiled).

    Raises:
        TypeError: If ``model`` is not a Keras model.
        ValueError: If ``model`` is a subclassed model, which Keras cannot clone.

    Example:
        >>> import keras
        >>> from kerasimgcls import build_cifar_cnn
        >>> from kerasimgcls.models.layers import fuse_batch_norm, inference_copy
        >>> trained = fuse_batch_norm(build_cifar_cnn())
        >>> copy = inference_copy(trained)
        >>> copy.compiled, type(copy.get_layer("block1_bn")).__name__
        (False, 'BatchNormalization')
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model; received {type(model).__name__}")
    return _copy_converting(model, _unfused, "inference_copy", uncompiled=True)


def float32_copy(model: keras.Model) -> keras.Model:
    """Return ``model`` computing in float32 throughout, with the same weights.

    Converters and runtimes that serve a model (ONNX Runtime, LiteRT) need one
    precision; a mixed-bfloat16 model keeps its weights in float32 already.

    Example:
        >>> from kerasimgcls import build_cifar_cnn
        >>> from kerasimgcls.models.layers import float32_copy, precision_scope
        >>> with precision_scope("mixed_bfloat16"):
        ...     model = build_cifar_cnn(input_shape=(8, 8, 1), num_classes=2)
        >>> float32_copy(model).get_layer("block1_conv").compute_dtype
        'float32'
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model; received {type(model).__name__}")
    if all(layer.compute_dtype == "float32" for layer in walk_layers(model)):
        return model
    return _copy_converting(model, _in_float32, "float32_copy", uncompiled=True)


def erf_gelu_copy(model: keras.Model) -> keras.Model:
    """Return ``model`` with every exact GELU written as ``x * (1 + erf(x / √2)) / 2``.

    Keras' exact GELU on TensorFlow is ``tf.nn.gelu``, which computes with
    ``erfc``; ONNX has no such operator, so tf2onnx writes a node ONNX Runtime
    cannot run. The copy computes the same function (to float32 rounding) with
    ``erf``, which every ONNX runtime has. Models without exact GELU come back
    as they are.

    Args:
        model: A functional or sequential Keras model.

    Returns:
        The copy, or ``model`` itself when it has no exact GELU.

    Example:
        >>> import keras
        >>> from kerasimgcls.models.layers import erf_gelu_copy
        >>> inputs = keras.Input((3,))
        >>> model = keras.Model(inputs, keras.layers.Activation("gelu")(inputs))
        >>> copy = erf_gelu_copy(model)
        >>> copy.layers[-1].activation.__name__
        'gelu_erf'
    """
    if not isinstance(model, keras.Model):
        raise TypeError(f"model must be a keras.Model; received {type(model).__name__}")
    if not any(_has_exact_gelu(layer) for layer in walk_layers(model)):
        return model
    return _copy_converting(model, _with_erf_gelu, "erf_gelu_copy", uncompiled=True)


def gelu_erf(x: Any) -> Any:
    """Exact GELU written with ``erf``: ``x * (1 + erf(x / √2)) / 2``."""
    return 0.5 * x * (1.0 + keras.ops.erf(x * 0.7071067811865476))


def _has_exact_gelu(layer: keras.layers.Layer) -> bool:
    activation = layer.get_config().get("activation")
    return activation == "gelu" or getattr(activation, "__name__", "") == "gelu"


def _with_erf_gelu(layer: keras.layers.Layer) -> keras.layers.Layer | None:
    if not _has_exact_gelu(layer):
        return None
    config = layer.get_config()
    config["activation"] = gelu_erf
    return layer.__class__.from_config(config)


def _in_float32(layer: keras.layers.Layer) -> keras.layers.Layer | None:
    config = layer.get_config()
    if "dtype" not in config:
        return None
    config["dtype"] = "float32"
    return layer.__class__.from_config(config)


def _fused(layer: keras.layers.Layer) -> keras.layers.Layer | None:
    if _is_plain_batch_norm(layer):
        return FusedBatchNormalization.from_config(layer.get_config())
    return None


def _unfused(layer: keras.layers.Layer) -> keras.layers.Layer | None:
    if type(layer) is FusedBatchNormalization:
        return keras.layers.BatchNormalization.from_config(layer.get_config())
    return None


def _copy_converting(
    model: keras.Model,
    convert: Any,
    caller: str,
    *,
    uncompiled: bool = False,
) -> keras.Model:
    """Clone ``model`` (nested models too), layers replaced where ``convert`` says.

    Keras compiles a clone of a compiled model; with ``uncompiled`` the clone is
    made of a new functional model over the same layers, which is not compiled.
    """

    def swap(layer: keras.layers.Layer) -> keras.layers.Layer:
        if isinstance(layer, keras.Model):
            return _copy_converting(layer, convert, caller, uncompiled=uncompiled)
        converted = convert(layer)
        if converted is not None:
            return converted
        return layer.__class__.from_config(layer.get_config())

    try:
        source = model
        if uncompiled and model.compiled:
            source = keras.Model(model.inputs, model.outputs, name=model.name)
        clone = keras.models.clone_model(source, clone_function=swap)
    except (ValueError, AttributeError) as err:
        raise ValueError(
            f"{caller} cannot copy model {model.name!r}: it needs a functional "
            "or sequential model (in a subclassed model, use FusedBatchNormalization "
            f"directly). Keras said: {err}"
        ) from err
    clone.set_weights(model.get_weights())
    return clone


@contextlib.contextmanager
def precision_scope(precision: str) -> Iterator[None]:
    """Build models inside this block under the Keras dtype policy ``precision``.

    ``"mixed_bfloat16"`` computes in bfloat16 and keeps the weights in float32; on
    CPUs with AVX512-BF16 (or AMX) oneDNN's bfloat16 convolutions are faster
    (about 1.4x for the reference CNN here), on others they are emulated and
    slower. :func:`kerasimgcls.dense_head` keeps its softmax in float32. The global
    policy is restored on exit.

    Args:
        precision: One of :data:`kerasimgcls.models.layers.PRECISIONS`.

    Raises:
        ValueError: If ``precision`` is unknown.

    Example:
        >>> from kerasimgcls import build_cifar_cnn
        >>> from kerasimgcls.models.layers import precision_scope
        >>> with precision_scope("mixed_bfloat16"):
        ...     model = build_cifar_cnn(compile=False)
        >>> model.get_layer("block1_conv").compute_dtype, model.output.dtype
        ('bfloat16', 'float32')
    """
    check_precision(precision)
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _is_plain_batch_norm(layer: keras.layers.Layer) -> bool:
    # Exactly Keras' layer: a user's subclass keeps its own behaviour.
    return type(layer) is keras.layers.BatchNormalization


def saved_copy(model: keras.Model) -> keras.Model:
    """The model as a run saves it: :func:`inference_copy`, where Keras can clone it.

    A subclassed model cannot be cloned; it is saved as it is, optimizer included.
    """
    try:
        return inference_copy(model)
    except ValueError:
        return model
