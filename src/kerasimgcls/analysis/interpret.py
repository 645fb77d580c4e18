"""Why did the model predict that, and what did it learn: Grad-CAM and embeddings.

Both read a layer's activations during an ordinary forward pass: the layer's
``call`` is wrapped for the duration of the pass and restored afterwards, so the
same code works for sequential, functional and nested models (such as an exported
model, which wraps the trained one) without rebuilding them.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import keras
import numpy as np
from numpy.typing import ArrayLike, NDArray

from kerasimgcls._validation import check_choice, check_positive_int, check_scalar
from kerasimgcls.analysis import plots
from kerasimgcls.data._dataset import Split
from kerasimgcls.inference._scaling import (
    InputScaling,
    check_input_scaling,
    prepare_images,
    resolve_input_scaling,
)
from kerasimgcls.models._walk import walk_layers
from kerasimgcls.models.preprocessing import get_class_names

__all__ = [
    "GradCamResult",
    "SimilarImages",
    "embeddings",
    "grad_cam",
    "similar_images",
]

GradCamMethod = Literal["gradcam", "gradcam++"]
_CONV_TYPES = (
    keras.layers.Conv2D,
    keras.layers.SeparableConv2D,
    keras.layers.DepthwiseConv2D,
    keras.layers.Conv2DTranspose,
)


@dataclass(frozen=True, eq=False)
class GradCamResult:
    """What :func:`grad_cam` found: where the model looked for one class.

    Attributes:
        image: The explained image, uint8 of shape ``(height, width, channels)``.
        heatmap: Class-activation map resized to the image, float32 of shape
            ``(height, width)`` in ``[0, 1]`` (all zeros if nothing supports the
            class).
        overlay: The heatmap (jet colours) blended over the image, uint8 RGB of
            shape ``(height, width, 3)``.
        class_index: The explained class.
        class_name: Its name (from the model, else the index as text).
        probability: The model's probability for that class.
        layer_name: The convolution layer whose activations were used.
        method: ``"gradcam"`` or ``"gradcam++"``.

    Example:
        >>> import numpy as np
        >>> from kerasimgcls import build_cifar_cnn, grad_cam
        >>> model = build_cifar_cnn(input_shape=(8, 8, 1), num_classes=2)
        >>> image = np.random.default_rng(0).integers(0, 256, (8, 8, 1), np.uint8)
        >>> result = grad_cam(model, image)
        >>> result.heatmap.shape, result.overlay.shape, result.layer_name
        ((8, 8), (8, 8, 3), 'block4_conv')
    """

    image: NDArray[np.uint8] = field(repr=False)
    heatmap: NDArray[np.float32] = field(repr=False)
    overlay: NDArray[np.uint8] = field(repr=False)
    class_index: int
    class_name: str
    probability: float
    layer_name: str
    method: str

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Draw image, heatmap and overlay side by side to ``path``.

        See :func:`~kerasimgcls.analysis.plots.plot_grad_cam`.

        Example:
            >>> import tempfile
            >>> import numpy as np
            >>> from kerasimgcls import build_cifar_cnn, grad_cam
            >>> model = build_cifar_cnn(input_shape=(8, 8, 1), num_classes=2)
            >>> image = np.random.default_rng(0).integers(0, 256, (8, 8, 1), np.uint8)
            >>> result = grad_cam(model, image)
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     path = result.save(f"{tmp}/cam.png")
        """
        return plots.plot_grad_cam(self, path)


@dataclass(frozen=True, eq=False)
class SimilarImages:
    """What :func:`similar_images` found: the nearest gallery images to a query.

    Attributes:
        query: The query image, uint8 ``(height, width, channels)``.
        indices: Gallery indices of the neighbours, most similar first.
        similarities: Their cosine similarities to the query, in ``[-1, 1]``.
        images: The neighbour images, uint8 ``(k, height, width, channels)``.
        labels: The neighbours' labels if the gallery was a :class:`Split`,
            else ``None``.

    Example:
        >>> from kerasimgcls import build_cifar_cnn, load_digits, similar_images
        >>> data = load_digits(seed=0)
        >>> model = build_cifar_cnn(input_shape=(8, 8, 1), num_classes=10)
        >>> result = similar_images(model, data.test.images[3], data.test, k=2)
        >>> int(result.indices[0])
        3
    """

    query: NDArray[np.uint8] = field(repr=False)
    indices: NDArray[np.int64]
    similarities: NDArray[np.float32]
    images: NDArray[np.uint8] = field(repr=False)
    labels: NDArray[np.int64] | None

    def plot(
        self,
        path: str | os.PathLike[str],
        *,
        class_names: Sequence[str] | None = None,
    ) -> Path:
        """Draw the query and its neighbours to ``path``.

        See :func:`~kerasimgcls.analysis.plots.plot_similar_images`.

        Example:
            >>> import tempfile
            >>> from kerasimgcls import build_cifar_cnn, load_digits, similar_images
            >>> data = load_digits(seed=0)
            >>> model = build_cifar_cnn(input_shape=(8, 8, 1), num_classes=10)
            >>> result = similar_images(model, data.test.images[0], data.test, k=3)
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     path = result.plot(f"{tmp}/similar.png", class_names=data.class_names)
        """
        return plots.plot_similar_images(self, path, class_names=class_names)


def _find_layer(model: keras.Model, name: str) -> keras.Layer:
    for layer in walk_layers(model):
        if layer.name == name:
            return layer
    available = [layer.name for layer in walk_layers(model)]
    raise ValueError(
        f"layer_name {name!r} is not a layer of model {model.name!r}. "
        f"Available: {available}"
    )


def _last_conv_layer(model: keras.Model) -> keras.Layer:
    convs = [layer for layer in walk_layers(model) if isinstance(layer, _CONV_TYPES)]
    if not convs:
        raise ValueError(
            f"model {model.name!r} has no 2-D convolution layer, so Grad-CAM has no "
            "spatial activations to weigh; pass layer_name= of a layer with 4-D "
            "output (batch, height, width, channels)"
        )
    return convs[-1]


@contextlib.contextmanager
def _capture(
    layer: keras.Layer, *, what: Literal["input", "output"], tape: Any = None
) -> Iterator[dict[str, Any]]:
    """Record ``layer``'s input or output (and watch it on ``tape``) while active."""
    captured: dict[str, Any] = {}
    original = layer.call

    def call(*args: Any, **kwargs: Any) -> Any:
        outputs = original(*args, **kwargs)
        value = outputs if what == "output" else args[0]
        if tape is not None:
            tape.watch(value)
        captured["value"] = value
        return outputs

    layer.call = call
    try:
        yield captured
    finally:
        del layer.call


def _check_image(model: keras.Model, image: ArrayLike) -> NDArray[np.uint8]:
    array = np.asarray(image)
    expected = tuple(int(size) for size in model.input_shape[1:])
    if array.ndim == len(expected) + 1 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 2 and len(expected) == 3 and expected[-1] == 1:
        array = array[..., np.newaxis]
    if array.dtype != np.uint8:
        raise TypeError(
            f"image must be uint8 in [0, 255]; received dtype {array.dtype}"
        )
    if tuple(array.shape) != expected:
        raise ValueError(
            f"image must have shape {expected} to match the model's input; received "
            f"shape {array.shape}. Resize it to the model's size first"
        )
    return array


def _check_class_index(class_index: object, num_classes: int) -> None:
    if class_index is None:
        return
    if isinstance(class_index, bool) or not isinstance(class_index, (int, np.integer)):
        raise ValueError(
            f"class_index must be an integer in [0, {num_classes}); "
            f"received class_index={class_index!r}"
        )
    if not 0 <= class_index < num_classes:
        raise ValueError(
            f"class_index must be in [0, {num_classes}); "
            f"received class_index={class_index!r}"
        )


def _unit_heatmap(
    heatmap: NDArray[np.float32], chosen: int, layer_name: str
) -> NDArray[np.float32]:
    """``heatmap`` clipped at 0 and scaled to a peak of 1; warn if it is all zero."""
    heatmap = np.clip(heatmap, 0.0, None)
    peak = float(heatmap.max())
    if peak <= 0:
        warnings.warn(
            f"the Grad-CAM heatmap of class {chosen} is all zero: no activation of "
            f"layer {layer_name!r} supports it. Try method='gradcam++' or an earlier "
            "layer_name",
            stacklevel=3,  # the caller of grad_cam
        )
        return np.zeros_like(heatmap, dtype=np.float32)
    return (heatmap / peak).astype(np.float32)


def _output_layer(model: keras.Model) -> keras.Layer:
    layers = [layer for layer in walk_layers(model) if not hasattr(layer, "layers")]
    return layers[-1]


def _classifier_layer(model: keras.Model) -> keras.Layer:
    """The last layer with weights: its input is the penultimate representation."""
    layers = [
        layer
        for layer in walk_layers(model)
        if not hasattr(layer, "layers") and layer.weights
    ]
    return layers[-1] if layers else _output_layer(model)


@contextlib.contextmanager
def _logits(model: keras.Model) -> Iterator[bool]:
    """Switch a final softmax activation off while active; yield whether it did."""
    layer = _output_layer(model)
    activation = getattr(layer, "activation", None)
    if activation is not keras.activations.softmax:
        yield False
        return
    layer.activation = keras.activations.linear
    try:
        yield True
    finally:
        layer.activation = activation


def _cam_weights(
    activations: NDArray[np.float64], gradients: NDArray[np.float64], method: str
) -> NDArray[np.float64]:
    if method == "gradcam":
        return np.asarray(gradients.mean(axis=(0, 1)))
    # Grad-CAM++ (Chattopadhay et al., 2018) with the exponential-score closed form.
    squared = gradients**2
    cubed = gradients**3
    denominator = 2.0 * squared + activations.sum(axis=(0, 1)) * cubed
    denominator = np.where(denominator != 0.0, denominator, 1.0)
    alphas = squared / denominator
    return np.asarray((alphas * np.maximum(gradients, 0.0)).sum(axis=(0, 1)))


def _resize(heatmap: NDArray[np.float64], size: tuple[int, int]) -> NDArray[np.float32]:
    import tensorflow as tf

    resized = tf.image.resize(heatmap[..., np.newaxis], size, method="bilinear")
    return np.asarray(resized, dtype=np.float32)[..., 0]


def _overlay(
    image: NDArray[np.uint8], heatmap: NDArray[np.float32], alpha: float
) -> NDArray[np.uint8]:
    from matplotlib import colormaps

    colours = colormaps["jet"](heatmap)[..., :3] * 255.0
    base = image if image.shape[-1] == 3 else np.repeat(image[..., :1], 3, axis=-1)
    blended = (1.0 - alpha) * base.astype(np.float64) + alpha * colours
    return np.clip(np.round(blended), 0, 255).astype(np.uint8)


def grad_cam(
    model: keras.Model,
    image: ArrayLike,
    class_index: int | None = None,
    *,
    layer_name: str | None = None,
    method: GradCamMethod = "gradcam",
    alpha: float = 0.4,
    input_scaling: InputScaling = "auto",
) -> GradCamResult:
    """Show where the model looks: a Grad-CAM (or Grad-CAM++) heatmap for a class.

    The class score's gradient with respect to a convolution's activations weighs
    the activation channels; their weighted sum, through a ReLU, is the heatmap
    (Selvaraju et al., 2017). By default the last 2-D convolution is used, also when
    it sits inside a nested model (an exported model wraps the trained one), and
    the score is the pre-softmax logit when the model ends in a softmax.

    Args:
        model: A classifier with a 2-D convolution: any model the input contract
            feeds (see :doc:`/guide/input`), exported ones included.
        image: One uint8 image of the model's input size, shape ``(height, width,
            channels)`` (``(height, width)`` for one channel is accepted).
        class_index: The class to explain; default: the predicted class.
        layer_name: The convolution layer to use, by name; default: the last one.
        method: ``"gradcam"`` or ``"gradcam++"`` (better when a class appears
            several times in the image).
        alpha: Opacity of the heatmap in the overlay, in ``[0, 1]``.
        input_scaling: ``"auto"`` to decide from the model how the pixels are fed,
            or ``"raw"`` / ``"unit"`` (see :func:`resolve_input_scaling`).

    Returns:
        The heatmap, the overlay and what was explained.

    Raises:
        TypeError: If ``image`` is not uint8, or ``alpha`` is not a number.
        ValueError: If ``image`` does not have the model's input shape, the model
            has no convolution (or ``layer_name`` is unknown or not spatial),
            ``class_index`` is out of range, or ``method``, ``alpha`` or
            ``input_scaling`` is invalid.

    Example:
        >>> import numpy as np
        >>> from kerasimgcls import build_cifar_cnn, grad_cam
        >>> model = build_cifar_cnn(input_shape=(8, 8, 1), num_classes=2)
        >>> image = np.random.default_rng(0).integers(0, 256, (8, 8, 1), np.uint8)
        >>> result = grad_cam(model, image, class_index=1, method="gradcam++")
        >>> bool(0.0 <= result.heatmap.min() <= result.heatmap.max() <= 1.0)
        True
    """
    import tensorflow as tf

    check_choice(method, "method", ("gradcam", "gradcam++"))
    check_input_scaling(input_scaling)
    alpha = check_scalar(alpha, "alpha", min_val=0, max_val=1, expected="in [0, 1]")
    pixels = _check_image(model, image)
    layer = (
        _last_conv_layer(model)
        if layer_name is None
        else _find_layer(model, layer_name)
    )
    _check_class_index(class_index, int(model.output_shape[-1]))
    feed = prepare_images(model, pixels[np.newaxis], input_scaling)
    with _logits(model) as is_logits, tf.GradientTape() as tape:
        with _capture(layer, what="output", tape=tape) as captured:
            scores = model(feed, training=False)
        activations = captured.get("value")
        if activations is None or len(activations.shape) != 4:
            shape = None if activations is None else tuple(activations.shape)
            raise ValueError(
                f"layer {layer.name!r} must output a 4-D (batch, height, width, "
                f"channels) tensor for Grad-CAM; received output shape {shape}"
            )
        probabilities = tf.nn.softmax(scores) if is_logits else scores
        chosen = (
            int(tf.argmax(probabilities[0]))
            if class_index is None
            else int(class_index)
        )
        target = scores[:, chosen]
    gradients = tape.gradient(target, activations)
    acts = np.asarray(activations, dtype=np.float64)[0]
    grads = np.asarray(gradients, dtype=np.float64)[0]
    cam = np.maximum((acts * _cam_weights(acts, grads, method)).sum(axis=-1), 0.0)
    heatmap = _unit_heatmap(_resize(cam, pixels.shape[:2]), chosen, layer.name)
    names = get_class_names(model)
    return GradCamResult(
        image=pixels,
        heatmap=heatmap,
        overlay=_overlay(pixels, heatmap, float(alpha)),
        class_index=chosen,
        class_name=names[chosen] if names else str(chosen),
        probability=float(probabilities[0, chosen]),
        layer_name=str(layer.name),
        method=method,
    )


def _check_images(
    model: keras.Model, images: Split | ArrayLike, name: str
) -> NDArray[np.uint8]:
    array = images.images if isinstance(images, Split) else np.asarray(images)
    expected = tuple(int(size) for size in model.input_shape[1:])
    if array.dtype != np.uint8:
        raise TypeError(f"{name} must hold uint8 images; received dtype {array.dtype}")
    if array.ndim != 4 or tuple(array.shape[1:]) != expected:
        raise ValueError(
            f"{name} must be a Split or a uint8 array of shape (n, "
            f"{', '.join(map(str, expected))}) to match the model's input; "
            f"received shape {array.shape}"
        )
    if len(array) == 0:
        raise ValueError(f"{name} is empty: there are no images to embed")
    return array


def embeddings(
    model: keras.Model,
    split: Split | ArrayLike,
    layer: str | None = None,
    *,
    batch_size: int = 256,
    input_scaling: InputScaling = "auto",
) -> NDArray[np.float32]:
    """Return the features the model computes for each image (penultimate layer).

    By default these are the inputs of the model's last layer with weights (what
    the classifier sees, also when a separate softmax layer follows it); name a
    ``layer`` to take its outputs instead. Features with
    spatial dimensions are flattened.

    Args:
        model: A classifier (see :doc:`/guide/input` for how it is fed).
        split: A :class:`Split`, or a uint8 array of shape ``(n, height, width,
            channels)``.
        layer: Name of the layer whose output to return; default: the input of the
            final layer.
        batch_size: Images per forward pass.
        input_scaling: ``"auto"``, ``"raw"`` or ``"unit"`` (see
            :func:`resolve_input_scaling`).

    Returns:
        Array of shape ``(n, dim)``, float32.

    Raises:
        TypeError: If the images are not uint8.
        ValueError: If the images do not fit the model, are empty, or ``layer`` is
            not a layer of the model.

    Example:
        >>> from kerasimgcls import build_cifar_cnn, embeddings, load_digits
        >>> data = load_digits(seed=0)
        >>> model = build_cifar_cnn(input_shape=(8, 8, 1), num_classes=10)
        >>> embeddings(model, data.test).shape
        (359, 32)
    """
    images = _check_images(model, split, "split")
    batch_size = check_positive_int(batch_size, "batch_size")
    scaling = resolve_input_scaling(model, input_scaling).scaling
    if layer is None:
        target, what = _classifier_layer(model), "input"
    else:
        target, what = _find_layer(model, layer), "output"
    chunks = []
    for start in range(0, len(images), batch_size):
        feed = prepare_images(model, images[start : start + batch_size], scaling)
        with _capture(target, what=what) as captured:  # type: ignore[arg-type]
            model(feed, training=False)
        values = np.asarray(captured["value"], dtype=np.float32)
        chunks.append(values.reshape(len(values), -1))
    return np.concatenate(chunks, axis=0)


def similar_images(
    model: keras.Model,
    query: ArrayLike,
    gallery: Split | ArrayLike,
    *,
    k: int = 5,
    layer: str | None = None,
    batch_size: int = 256,
    input_scaling: InputScaling = "auto",
) -> SimilarImages:
    """Find the ``k`` gallery images most similar to ``query`` in the model's eyes.

    Similarity is the cosine similarity of :func:`embeddings`; an image of the
    gallery used as the query comes back first, with similarity 1.

    Args:
        model: A classifier (see :doc:`/guide/input` for how it is fed).
        query: One uint8 image of the model's input size.
        gallery: A :class:`Split` (neighbour labels are returned too) or a uint8
            array of shape ``(n, height, width, channels)``.
        k: How many neighbours; at most the gallery size.
        layer: The embedding layer (see :func:`embeddings`).
        batch_size: Images per forward pass.
        input_scaling: ``"auto"``, ``"raw"`` or ``"unit"`` (see
            :func:`resolve_input_scaling`).

    Returns:
        The neighbours with their indices, similarities and images.

    Raises:
        TypeError: If the images are not uint8.
        ValueError: If ``query`` or ``gallery`` does not fit the model, or ``k`` is
            not positive or larger than the gallery.

    Example:
        >>> from kerasimgcls import build_cifar_cnn, load_digits, similar_images
        >>> data = load_digits(seed=0)
        >>> model = build_cifar_cnn(input_shape=(8, 8, 1), num_classes=10)
        >>> result = similar_images(model, data.test.images[0], data.test, k=4)
        >>> result.indices.shape, float(result.similarities[0]) > 0.999
        ((4,), True)
    """
    pixels = _check_image(model, query)
    images = _check_images(model, gallery, "gallery")
    k = check_positive_int(k, "k")
    if k > len(images):
        raise ValueError(
            f"k must be at most the number of gallery images ({len(images)}); "
            f"received k={k}"
        )
    scaling = resolve_input_scaling(model, input_scaling).scaling
    features = embeddings(
        model, images, layer, batch_size=batch_size, input_scaling=scaling
    )
    # A query taken from the gallery gets exactly its gallery features, so it comes
    # first even when batching changes the last bits of a forward pass.
    copies = np.flatnonzero((images == pixels).reshape(len(images), -1).all(axis=1))
    query_features = (
        features[copies[0]]
        if copies.size
        else embeddings(
            model, pixels[np.newaxis], layer, batch_size=1, input_scaling=scaling
        )[0]
    )
    similarities = _cosine(features, query_features)
    order = np.argsort(-similarities, kind="stable")[:k].astype(np.int64)
    labels = gallery.labels[order] if isinstance(gallery, Split) else None
    return SimilarImages(
        query=pixels,
        indices=order,
        similarities=similarities[order].astype(np.float32),
        images=images[order],
        labels=labels,
    )


def _cosine(
    features: NDArray[np.float32], query: NDArray[np.float32]
) -> NDArray[np.float64]:
    gallery = features.astype(np.float64)
    vector = query.astype(np.float64)
    norms = np.linalg.norm(gallery, axis=1) * np.linalg.norm(vector)
    dots = gallery @ vector
    return np.asarray(np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0))
