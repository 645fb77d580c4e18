"""Self-contained models: preprocessing and class names travel inside ``model.keras``.

A trained model is wrapped as ``uint8 images -> InputPreprocessing -> model`` so raw
pixels go straight in, and :class:`InputPreprocessing` stores the class names in its
config, so they are saved and loaded with the model (safe mode stays on: the layer is
registered with Keras when :mod:`kerasimgcls` is imported).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
from numpy.typing import ArrayLike, NDArray

from kerasimgcls._validation import check_path_exists, check_positive_int

__all__ = [
    "InputPreprocessing",
    "export_model",
    "get_class_names",
    "load_model",
    "predict_proba",
]


@keras.saving.register_keras_serializable(package="kerasimgcls")
class InputPreprocessing(keras.layers.Layer):  # type: ignore[misc]
    """Scale raw pixels to ``[0, 1]`` and carry the class names of the model.

    Args:
        class_names: One name per output class, in output order.
        scale: Factor applied to the (cast to float32) input, ``1/255`` for uint8.
        **kwargs: Standard :class:`keras.layers.Layer` arguments such as ``name``.

    Example:
        >>> import numpy as np
        >>> from kerasimgcls import InputPreprocessing
        >>> layer = InputPreprocessing(class_names=["cat", "dog"])
        >>> np.asarray(layer(np.array([[0, 255]], dtype=np.uint8))).tolist()
        [[0.0, 1.0]]
    """

    def __init__(
        self, class_names: Sequence[str], scale: float = 1.0 / 255.0, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.class_names = [str(name) for name in class_names]
        self.scale = float(scale)

    def call(self, inputs: Any) -> Any:
        """Return ``inputs`` cast to float32 and multiplied by ``scale``."""
        return keras.ops.cast(inputs, "float32") * self.scale

    def compute_output_shape(self, input_shape: Any) -> Any:
        """Return ``input_shape`` unchanged."""
        return input_shape

    def get_config(self) -> dict[str, Any]:
        """Return the layer's config, including the class names."""
        config: dict[str, Any] = super().get_config()
        config.update({"class_names": list(self.class_names), "scale": self.scale})
        return config


def _find_preprocessing(model: keras.Model) -> InputPreprocessing | None:
    for layer in getattr(model, "layers", []):
        if isinstance(layer, InputPreprocessing):
            return layer
    return None


def export_model(model: keras.Model, class_names: Sequence[str]) -> keras.Model:
    """Wrap a trained model so it takes raw uint8 images and carries its class names.

    The returned model shares ``model``'s layers and weights: ``uint8 images ->``
    :class:`InputPreprocessing` ``-> model``. A model that already starts with
    :class:`InputPreprocessing` is returned as it is.

    Args:
        model: A model taking float images in ``[0, 1]``.
        class_names: One name per output unit.

    Returns:
        The wrapped model (not compiled).

    Raises:
        ValueError: If the number of class names differs from the model's outputs.

    Example:
        >>> from kerasimgcls import build_cifar_cnn, export_model, get_class_names
        >>> model = build_cifar_cnn(input_shape=(8, 8, 1), num_classes=2)
        >>> exported = export_model(model, ["no", "yes"])
        >>> get_class_names(exported)
        ('no', 'yes')
    """
    if _find_preprocessing(model) is not None:
        return model
    outputs = int(model.output_shape[-1])
    if len(class_names) != outputs:
        raise ValueError(
            f"class_names must have one name per model output ({outputs}); "
            f"received {len(class_names)} names"
        )
    inputs = keras.Input(tuple(model.input_shape[1:]), dtype="uint8", name="raw_images")
    x = InputPreprocessing(class_names, name="preprocessing")(inputs)
    return keras.Model(inputs, model(x), name=f"{model.name}_exported")


def get_class_names(model: keras.Model) -> tuple[str, ...] | None:
    """Return the class names stored in an exported model, or ``None``.

    Example:
        >>> from kerasimgcls import build_cifar_cnn, get_class_names
        >>> get_class_names(build_cifar_cnn()) is None
        True
    """
    layer = _find_preprocessing(model)
    return None if layer is None else tuple(layer.class_names)


def load_model(path: str | os.PathLike[str]) -> keras.Model:
    """Load a ``.keras`` model with Keras' safe mode on (no arbitrary code runs).

    Args:
        path: A ``.keras`` file, or a run directory holding ``model.keras``.

    Returns:
        The model.

    Raises:
        FileNotFoundError: If there is no such file.
        ValueError: If the file is not a ``.keras`` archive.

    Example:
        >>> from kerasimgcls import load_model
        >>> model = load_model("runs/digits")  # doctest: +SKIP
    """
    resolved = check_path_exists(path, "path")
    if resolved.is_dir():
        resolved = check_path_exists(resolved / "model.keras", "path", kind="file")
    if resolved.suffix != ".keras":
        raise ValueError(f"path must be a .keras file; received {str(resolved)!r}")
    # Importing the package no longer imports every module; the library's layers
    # must be registered with Keras before a model holding them is loaded.
    import kerasimgcls.layers
    import kerasimgcls.models
    import kerasimgcls.training  # noqa: F401

    model: keras.Model = keras.saving.load_model(Path(resolved), safe_mode=True)
    return model


def predict_proba(
    model: keras.Model,
    images: ArrayLike,
    *,
    batch_size: int = 256,
    tta: str | None = None,
) -> NDArray[np.float32]:
    """Return class probabilities for uint8 images, whichever input the model takes.

    An exported model (see :func:`export_model`) gets the raw uint8 pixels; any
    other model gets them scaled to ``[0, 1]``, batch by batch.

    Args:
        model: A classifier ending in a softmax.
        images: uint8 array of shape ``(n, height, width, channels)``.
        batch_size: Images per forward pass.
        tta: ``None``, or ``"flip"`` for test-time augmentation: the mean of the
            probabilities of each image and of its left-right mirror image (for
            models trained with flips; costs a second forward pass).

    Returns:
        Array of shape ``(n, num_classes)``, float32.

    Raises:
        ValueError: If the images do not match the model's input shape.
        TypeError: If the images are not uint8.

    Example:
        >>> import numpy as np
        >>> from kerasimgcls import build_cifar_cnn, predict_proba
        >>> model = build_cifar_cnn(input_shape=(8, 8, 1), num_classes=3)
        >>> predict_proba(model, np.zeros((2, 8, 8, 1), np.uint8)).shape
        (2, 3)
    """
    array = np.asarray(images)
    if array.dtype != np.uint8:
        raise TypeError(
            f"images must be uint8 in [0, 255]; received dtype {array.dtype}"
        )
    expected = tuple(model.input_shape[1:])
    if array.ndim == len(expected):
        array = array[np.newaxis]
    if tuple(array.shape[1:]) != expected:
        raise ValueError(
            f"images must have shape (n, {', '.join(map(str, expected))}) to match "
            f"the model's input; received shape {array.shape}"
        )
    batch_size = check_positive_int(batch_size, "batch_size")
    if tta not in (None, "flip"):
        raise ValueError(f"tta must be None or 'flip'; received tta={tta!r}")
    raw = _find_preprocessing(model) is not None
    outputs = []
    for start in range(0, array.shape[0], batch_size):
        batch = array[start : start + batch_size]
        feed = batch if raw else batch.astype(np.float32) / np.float32(255.0)
        probabilities = np.asarray(model(feed, training=False), dtype=np.float32)
        if tta == "flip":
            mirrored = np.ascontiguousarray(feed[:, :, ::-1])
            flipped = np.asarray(model(mirrored, training=False), dtype=np.float32)
            probabilities = (probabilities + flipped) / np.float32(2.0)
        outputs.append(probabilities)
    return np.concatenate(outputs, axis=0)
