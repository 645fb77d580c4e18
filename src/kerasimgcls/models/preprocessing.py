"""The input layer every exported model starts with: raw pixels in, class names inside.

A trained model is wrapped as ``uint8 images -> InputPreprocessing -> model`` (by
:func:`kerasimgcls.export_model`) so raw pixels go straight in, and
:class:`InputPreprocessing` stores the class names in its config, so they are saved
and loaded with the model (safe mode stays on: the layer is registered with Keras).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras

from kerasimgcls._validation import check_choice, check_class_names
from kerasimgcls.data._files import ASPECTS, INTERPOLATIONS

__all__ = [
    "InputPreprocessing",
    "find_preprocessing",
    "get_class_names",
    "resize_settings",
]


@keras.saving.register_keras_serializable(package="kerasimgcls")
class InputPreprocessing(keras.layers.Layer):  # type: ignore[misc]
    """Cast raw pixels to float32, scale them, and carry the class names of the model.

    It also records how image files are resized to the model's input
    (``interpolation`` and ``aspect``, as the training images were by
    :func:`~kerasimgcls.load_image_folder`), so :func:`~kerasimgcls.predict`
    and ``kerasimgcls explain`` decode a file of any size into the same pixels the
    loader would have given. The resizing itself happens when a file is decoded,
    in one function for training and inference alike; the layer only carries its
    settings in the saved model.

    Args:
        class_names: One name per output class, in output order.
        scale: Factor applied to the (cast to float32) input: ``1/255`` for a model
            that expects ``[0, 1]``, ``1.0`` for one that scales its own input.
        interpolation: The resampling filter image files are resized with.
        aspect: ``"stretch"``, ``"crop"`` or ``"pad"``: how a file of another
            aspect ratio is brought to the input's (see
            :func:`~kerasimgcls.load_image_folder`).
        **kwargs: Standard :class:`keras.layers.Layer` arguments such as ``name``.

    Example:
        >>> import numpy as np
        >>> from kerasimgcls import InputPreprocessing
        >>> layer = InputPreprocessing(class_names=["cat", "dog"])
        >>> np.asarray(layer(np.array([[0, 255]], dtype=np.uint8))).tolist()
        [[0.0, 1.0]]
    """

    def __init__(
        self,
        class_names: Sequence[str],
        scale: float = 1.0 / 255.0,
        interpolation: str = "bilinear",
        aspect: str = "stretch",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.class_names = [str(name) for name in class_names]
        self.scale = float(scale)
        # A model file may come from anywhere: only the known settings are used.
        self.interpolation = check_choice(
            interpolation, "interpolation", INTERPOLATIONS
        )
        self.aspect = check_choice(aspect, "aspect", ASPECTS)

    def call(self, inputs: Any) -> Any:
        """Return ``inputs`` cast to float32 and multiplied by ``scale``."""
        return keras.ops.cast(inputs, "float32") * self.scale

    def compute_output_shape(self, input_shape: Any) -> Any:
        """Return ``input_shape`` unchanged."""
        return input_shape

    def get_config(self) -> dict[str, Any]:
        """Return the layer's config, including the class names."""
        config: dict[str, Any] = super().get_config()
        config.update(
            {
                "class_names": list(self.class_names),
                "scale": self.scale,
                "interpolation": self.interpolation,
                "aspect": self.aspect,
            }
        )
        return config


def find_preprocessing(model: keras.Model) -> InputPreprocessing | None:
    """Return the :class:`InputPreprocessing` layer of ``model``, or ``None``."""
    for layer in getattr(model, "layers", []):
        if isinstance(layer, InputPreprocessing):
            return layer
    return None


def resize_settings(model: keras.Model) -> tuple[str, str]:
    """``(interpolation, aspect)`` to resize image files for ``model`` with.

    A model exported by the library carries them (see
    :class:`InputPreprocessing`); any other is fed as ``load_image_folder``'s
    defaults resize.
    """
    layer = find_preprocessing(model)
    if layer is None:
        return "bilinear", "stretch"
    return layer.interpolation, layer.aspect


def get_class_names(model: keras.Model) -> tuple[str, ...] | None:
    """Return the class names stored in an exported model, or ``None``.

    The names come from a model file, which may have been made elsewhere, so they
    are checked before anyone prints or indexes them: one printable name per
    output unit.

    Raises:
        ValueError: If the model carries a name with control characters (a
            terminal escape code, say) or not exactly one name per output.

    Example:
        >>> from kerasimgcls import build_cifar_cnn, get_class_names
        >>> get_class_names(build_cifar_cnn()) is None
        True
    """
    layer = find_preprocessing(model)
    if layer is None:
        return None
    names = check_class_names(list(layer.class_names), f"class names of {model.name!r}")
    outputs = int(model.output_shape[-1])
    if len(names) != outputs:
        raise ValueError(
            f"model {model.name!r} carries {len(names)} class names for {outputs} "
            "outputs; re-export it with one name per output"
        )
    return names
