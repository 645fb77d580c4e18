"""Precise batch norm: moving statistics that describe the network at inference.

A batch-norm layer normalises with the statistics of the batch while training and
with its moving averages at inference. The moving averages describe the network as
it ran during training, over the last ``1 / (1 - momentum)`` steps, with dropout on
and augmented images. When the run is short (a small folder: 2 steps per epoch at
momentum 0.99 average over 50 epochs of changing weights) or dropout precedes a
batch norm (it changes the variance the layer sees), they do not describe the
network at inference, and a model that is right on every training batch answers
one class for every image.

:func:`precise_batch_norm` replaces them with the exact mean and variance of each
layer's input over a fixed sample of training images, computed with the model as it
runs at inference (``training=False``: dropout off, no augmentation, every earlier
batch norm already updated), layer by layer in the order the forward pass calls
them (Wu and Johnson, "Rethinking 'Batch' in BatchNorm", 2021).
:class:`PreciseBatchNorm` does it inside ``fit``: before every validation, so the
epoch's validation scores (and the best-epoch choice) are what inference will give,
and at the end of training.
"""

from __future__ import annotations

import logging
import weakref
from typing import Any

import keras
import numpy as np
from numpy.typing import ArrayLike, NDArray

from kerasimgcls._validation import check_scalar, check_seed
from kerasimgcls.inference._scaling import (
    InputScaling,
    check_input_scaling,
    check_model_images,
    prepare_images,
    resolve_input_scaling,
)
from kerasimgcls.models._walk import walk_layers

__all__ = ["PreciseBatchNorm", "precise_batch_norm"]

logger = logging.getLogger(__name__)

#: Images used by default: the precise-BN paper finds a few thousand enough.
DEFAULT_NUM_IMAGES = 2048
#: With ``batch_size=None``, the whole sample goes in one forward pass when its
#: largest activation (float32) fits in this many bytes; else 256 images a pass.
ONE_PASS_BYTES = 1 << 30
_FALLBACK_BATCH = 256


class _CapturedSignal(Exception):  # noqa: N818 - a signal, not an error
    """Raised inside a layer's call to stop the forward pass once its input is read."""


def _batch_norm_layers(model: keras.Model) -> list[keras.Layer]:
    """The trainable batch-norm layers of ``model`` (nested models included).

    A frozen batch norm (``trainable=False``) runs in inference mode during
    training too, so the layers after it learned against its statistics as they
    are: it is left alone.
    """
    seen: set[int] = set()
    layers = []
    for layer in walk_layers(model):
        is_batch_norm = isinstance(layer, keras.layers.BatchNormalization)
        if is_batch_norm and layer.trainable and id(layer) not in seen:
            seen.add(id(layer))
            layers.append(layer)
    return layers


def _call_order(
    model: keras.Model, layers: list[keras.Layer], probe: Any
) -> list[keras.Layer]:
    """``layers`` in the order one forward pass calls them (also subclassed models)."""
    order: list[keras.Layer] = []
    originals = {id(layer): layer.call for layer in layers}

    def recorder(layer: keras.Layer) -> Any:
        original = originals[id(layer)]

        def call(*args: Any, **kwargs: Any) -> Any:
            if layer not in order:
                order.append(layer)
            return original(*args, **kwargs)

        return call

    for layer in layers:
        layer.call = recorder(layer)
    try:
        model(probe, training=False)
    finally:
        for layer in layers:
            del layer.call
    return order + [layer for layer in layers if layer not in order]


def _input_of(model: keras.Model, layer: keras.Layer, feed: Any) -> Any:
    """The input ``layer`` receives when ``model`` runs on ``feed`` at inference."""
    captured: dict[str, Any] = {}

    def call(*args: Any, **kwargs: Any) -> Any:
        captured["value"] = args[0] if args else kwargs["inputs"]
        raise _CapturedSignal

    layer.call = call
    try:
        model(feed, training=False)
    except _CapturedSignal:
        pass
    finally:
        del layer.call
    return captured.get("value")  # None: not called, its statistics stay


def _moments(
    model: keras.Model, layer: keras.Layer, batches: list[Any]
) -> tuple[NDArray[np.float64], NDArray[np.float64]] | None:
    """Mean and (biased, as Keras') variance of the layer's input over all batches."""
    parts = []
    for feed in batches:
        value = _input_of(model, layer, feed)
        if value is None:
            return None
        parts.append(_channel_rows(layer, value))
    return _combined(parts)


def _channel_rows(layer: keras.Layer, value: Any) -> NDArray[Any]:
    """The layer's input as rows of channels (float32, no float64 copy)."""
    axis = layer.axis if isinstance(layer.axis, int) else int(layer.axis[0])
    array = np.asarray(keras.ops.convert_to_numpy(value))
    return np.moveaxis(array, axis, -1).reshape(-1, array.shape[axis])


#: Rows of channels whose moments are taken at once (bounds the float64 scratch).
_CHUNK_ROWS = 1 << 16


def _combined(
    parts: list[NDArray[Any]],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Exact mean and biased variance over all rows of ``parts``, in float64.

    The rows are taken in chunks, each in float64, and combined by their counts:
    the within-chunk variance plus the spread of the chunk means (exact, stable).
    """
    counts, means, variances = [], [], []
    for rows in parts:
        for start in range(0, len(rows), _CHUNK_ROWS):
            chunk = rows[start : start + _CHUNK_ROWS].astype(np.float64)
            counts.append(len(chunk))
            means.append(chunk.mean(axis=0))
            variances.append(chunk.var(axis=0))
    weights = np.asarray(counts, dtype=np.float64)[:, np.newaxis] / sum(counts)
    mean = (weights * np.stack(means)).sum(axis=0)
    spread = (np.stack(means) - mean) ** 2
    variance = (weights * (np.stack(variances) + spread)).sum(axis=0)
    return mean, variance


def _in_one_pass(model: keras.Model, layers: list[keras.Layer], feed: Any) -> list[str]:
    """Re-estimate every layer in one compiled forward pass over the whole sample.

    Each batch norm, when the pass reaches it, takes the moments of its input (in
    float64), sets its moving statistics to them and then normalises with them, so
    the layers after it see it updated: with the whole sample in one batch this is
    exactly the layer-by-layer estimate, for one forward pass instead of one per
    layer. A layer the pass calls twice keeps the moments of its first call. The
    pass is traced once per model and input shape and reused (``fit`` re-estimates
    before every validation).
    """
    key = (tuple(id(layer) for layer in layers), tuple(feed.shape), str(feed.dtype))
    cached = _ONE_PASS.get(model)
    if cached is None or cached[0] != key:
        cached = (key, *_trace_one_pass(model, layers))
        _ONE_PASS[model] = cached
    _, run, updated = cached
    run(feed)
    return list(updated)


#: model -> (key, compiled pass, names of the layers it updates), per model.
_ONE_PASS: weakref.WeakKeyDictionary[Any, tuple[Any, Any, list[str]]] = (
    weakref.WeakKeyDictionary()
)


def _trace_one_pass(
    model: keras.Model, layers: list[keras.Layer]
) -> tuple[Any, list[str]]:
    import tensorflow as tf

    updated: list[str] = []

    def estimating(layer: keras.Layer) -> Any:
        original = layer.call

        def call(*args: Any, **kwargs: Any) -> Any:
            if str(layer.name) not in updated:
                value = tf.cast(args[0] if args else kwargs["inputs"], tf.float64)
                rank = value.shape.rank
                axis = layer.axis if isinstance(layer.axis, int) else int(layer.axis[0])
                axis %= rank
                others = [index for index in range(rank) if index != axis]
                mean = tf.reduce_mean(value, axis=others, keepdims=True)
                variance = tf.reduce_mean(tf.square(value - mean), axis=others)
                layer.moving_mean.assign(
                    tf.cast(tf.reshape(mean, [-1]), layer.moving_mean.dtype)
                )
                layer.moving_variance.assign(
                    tf.cast(variance, layer.moving_variance.dtype)
                )
                updated.append(str(layer.name))
            return original(*args, **kwargs)

        return call

    def run(feed: Any) -> None:
        for layer in layers:
            layer.call = estimating(layer)
        try:
            model(feed, training=False)
        finally:
            for layer in layers:
                del layer.call

    return tf.function(run, autograph=False), updated


def _sample(count: int, num_images: int, seed: int) -> NDArray[np.int64]:
    if count <= num_images:
        return np.arange(count, dtype=np.int64)
    chosen = np.random.default_rng(seed).choice(count, num_images, replace=False)
    return np.sort(chosen).astype(np.int64)


def precise_batch_norm(
    model: keras.Model,
    images: ArrayLike,
    *,
    num_images: int = DEFAULT_NUM_IMAGES,
    batch_size: int | None = None,
    input_scaling: InputScaling = "auto",
    seed: int = 0,
) -> dict[str, Any]:
    """Re-estimate every batch norm's moving mean and variance at inference.

    Each trainable :class:`keras.layers.BatchNormalization` layer of ``model``
    (nested models included, so a loaded ``model.keras`` works as it is) gets the
    exact mean and variance of its input over a fixed sample of ``images``, with
    the model as it runs at inference: ``training=False`` (dropout off), the images
    as they are (no augmentation), and every earlier batch norm already updated.
    The weights are not touched and the result is deterministic. The images are
    fed through the input contract (see :doc:`/guide/input`).

    Args:
        model: Any Keras model; one without batch norm is returned unchanged.
        images: Training images, uint8 of shape ``(n, height, width, channels)``.
        num_images: At most this many images are used (a seeded sample, in order).
        batch_size: Images per forward pass. ``None``: the whole sample in one
            pass (one forward pass updates every layer) when the model's largest
            activation over it fits in ``ONE_PASS_BYTES`` (1 GiB), else 256.
        input_scaling: ``"auto"``, ``"raw"`` or ``"unit"`` (see
            :func:`kerasimgcls.resolve_input_scaling`).
        seed: Seed of the sample.

    Returns:
        What was done, JSON-ready: ``{"layers": [...], "num_images": ...,
        "input_scaling": ...}``.

    Raises:
        TypeError: If ``images`` is not uint8.
        ValueError: If ``images`` does not match the model's input or is empty, or
            an option is out of range.

    Example:
        >>> import numpy as np
        >>> from kerasimgcls import build_cifar_cnn, precise_batch_norm
        >>> model = build_cifar_cnn(input_shape=(8, 8, 1), num_classes=2)
        >>> images = np.random.default_rng(0).integers(0, 256, (64, 8, 8, 1), np.uint8)
        >>> sorted(precise_batch_norm(model, images))
        ['input_scaling', 'layers', 'num_images']
    """
    array = _check_images(model, images)
    num_images = check_scalar(num_images, "num_images", kind=int, min_val=1)
    if batch_size is not None:
        batch_size = check_scalar(batch_size, "batch_size", kind=int, min_val=1)
    seed = check_seed(seed)
    check_input_scaling(input_scaling)
    decision = resolve_input_scaling(model, input_scaling)
    chosen = array[_sample(len(array), num_images, seed)]
    if batch_size is None:
        batch_size = _pass_size(model, len(chosen))
    layers = _re_estimate(model, chosen, batch_size, decision.scaling)
    logger.debug("precise batch norm: %d layers, %d images", len(layers), len(chosen))
    return {
        "layers": layers,
        "num_images": len(chosen),
        "input_scaling": decision.scaling,
    }


def _re_estimate(
    model: keras.Model, images: NDArray[np.uint8], batch_size: int, scaling: Any
) -> list[str]:
    """Set each batch norm's moving statistics, in call order; return their names."""
    layers = _batch_norm_layers(model)
    if not layers:
        return []
    batches = [
        prepare_images(model, images[start : start + batch_size], scaling)
        for start in range(0, len(images), batch_size)
    ]
    if len(batches) == 1:
        return _in_one_pass(model, layers, batches[0])
    updated = []
    for layer in _call_order(model, layers, batches[0][:1]):
        moments = _moments(model, layer, batches)
        if moments is None:
            continue
        mean, variance = moments
        layer.moving_mean.assign(mean.astype(layer.moving_mean.dtype))
        layer.moving_variance.assign(variance.astype(layer.moving_variance.dtype))
        updated.append(str(layer.name))
    return updated


def _pass_size(model: keras.Model, count: int) -> int:
    """``count`` if its largest activation fits in :data:`ONE_PASS_BYTES`, else 256."""
    largest = 0
    for layer in walk_layers(model):
        try:
            shape = tuple(layer.output.shape[1:])
        except (AttributeError, ValueError):  # not built symbolically, several outputs
            continue
        if all(isinstance(size, int) for size in shape):
            largest = max(largest, int(np.prod(shape)))
    if largest and count * largest * 4 <= ONE_PASS_BYTES:
        return count
    return min(count, _FALLBACK_BATCH)


def _check_images(model: keras.Model, images: ArrayLike) -> NDArray[np.uint8]:
    array = check_model_images(model, images)
    if len(array) == 0:
        raise ValueError("images is empty: there is nothing to estimate from")
    return array


class PreciseBatchNorm(keras.callbacks.Callback):  # type: ignore[misc]
    """A Keras callback running :func:`precise_batch_norm` inside ``fit``.

    Before every validation of ``fit`` (so the epoch's validation scores, and the
    choice of the best epoch, are what the model gives at inference) and at the
    end of training, the batch-norm statistics are re-estimated from the same
    fixed sample of training images. Only the moving statistics change, never the
    weights, so training itself follows the same path; a resumed run repeats the
    same re-estimates (they depend only on the weights and the sample).

    The callback keeps no state of its own beyond its summary of the last
    re-estimate: :meth:`state_dict` and :meth:`load_state_dict` carry it through a
    checkpoint.

    Args:
        images: Training images, uint8 of shape ``(n, height, width, channels)``.
        num_images: At most this many images (a seeded sample).
        batch_size: Images per forward pass (``None``: as
            :func:`precise_batch_norm` chooses).
        input_scaling: How the model is fed (see :func:`precise_batch_norm`).
        seed: Seed of the sample.

    Example:
        >>> import numpy as np
        >>> from kerasimgcls import PreciseBatchNorm, build_cifar_cnn
        >>> images = np.zeros((32, 8, 8, 1), np.uint8)
        >>> labels = np.eye(2)[np.arange(32) % 2]
        >>> model = build_cifar_cnn(input_shape=(8, 8, 1), num_classes=2)
        >>> callback = PreciseBatchNorm(images)
        >>> _ = model.fit(images / 255, labels, epochs=1, verbose=0, callbacks=[callback])
        >>> callback.state_dict()["num_images"]
        32
    """

    def __init__(
        self,
        images: ArrayLike,
        *,
        num_images: int = DEFAULT_NUM_IMAGES,
        batch_size: int | None = None,
        input_scaling: InputScaling = "auto",
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.images = np.asarray(images)
        self.num_images = check_scalar(num_images, "num_images", kind=int, min_val=1)
        self.batch_size = (
            None
            if batch_size is None
            else check_scalar(batch_size, "batch_size", kind=int, min_val=1)
        )
        self.input_scaling = check_input_scaling(input_scaling)
        self.seed = check_seed(seed)
        self.summary: dict[str, Any] = {}
        self._training = False
        self._fresh = False

    def _update(self) -> None:
        self.summary = precise_batch_norm(
            self.model,
            self.images,
            num_images=self.num_images,
            batch_size=self.batch_size,
            input_scaling=self.input_scaling,
            seed=self.seed,
        )
        self._fresh = True

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Note that ``fit`` runs (validations are then inside ``fit``)."""
        self._training = True

    def on_train_batch_end(
        self, batch: int, logs: dict[str, Any] | None = None
    ) -> None:
        """A training step moved the statistics: the next validation re-estimates."""
        self._fresh = False

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Re-estimate before a validation of ``fit``."""
        if self._training and not self._fresh:
            self._update()

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        """Re-estimate for the final weights (unless the last validation did)."""
        self._training = False
        if not self._fresh:
            self._update()

    def state_dict(self) -> dict[str, Any]:
        """Return the callback's state: its summary of the last re-estimate."""
        return dict(self.summary)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the state :meth:`state_dict` returned."""
        self.summary = dict(state)
