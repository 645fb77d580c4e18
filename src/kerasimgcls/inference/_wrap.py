"""Wrap a trained model for inference: ``uint8 images -> InputPreprocessing -> model``."""

from __future__ import annotations

from collections.abc import Sequence

import keras

from kerasimgcls._validation import check_class_names
from kerasimgcls.inference._scaling import InputScaling, resolve_input_scaling
from kerasimgcls.models.preprocessing import InputPreprocessing, find_preprocessing

__all__ = ["export_model"]


def export_model(
    model: keras.Model,
    class_names: Sequence[str],
    *,
    input_scaling: InputScaling = "auto",
    interpolation: str = "bilinear",
    aspect: str = "stretch",
) -> keras.Model:
    """Wrap a trained model so it takes raw uint8 images and carries its class names.

    The returned model shares ``model``'s layers and weights: ``uint8 images ->``
    :class:`InputPreprocessing` ``-> model``. The preprocessing divides by 255 for
    a model that expects ``[0, 1]`` and only casts to float32 for a model that
    scales its own input (a ``Rescaling`` layer, ...), decided by
    :func:`kerasimgcls.resolve_input_scaling`, so no model is scaled twice. A
    model that already starts with :class:`InputPreprocessing` is returned as it
    is.

    Args:
        model: A trained classifier.
        class_names: One name per output unit.
        input_scaling: ``"auto"`` to decide from the model, ``"unit"`` if it
            expects ``[0, 1]``, ``"raw"`` if it expects 0-255.
        interpolation: The filter the training images were resized with; image
            files given to :func:`predict` are resized with it too.
        aspect: How the training images were brought to the input's aspect ratio
            (``"stretch"``, ``"crop"`` or ``"pad"``); likewise.

    Returns:
        The wrapped model (not compiled).

    Raises:
        ValueError: If the number of class names differs from the model's outputs,
            a name is repeated, empty or holds control characters, or
            ``input_scaling`` is not one of the three choices.
        TypeError: If ``class_names`` is not a sequence of strings.

    Example:
        >>> from kerasimgcls import build_cifar_cnn, export_model, get_class_names
        >>> model = build_cifar_cnn(input_shape=(8, 8, 1), num_classes=2)
        >>> exported = export_model(model, ["no", "yes"])
        >>> get_class_names(exported)
        ('no', 'yes')
    """
    if find_preprocessing(model) is not None:
        return model
    class_names = check_class_names(class_names, "class_names")
    outputs = int(model.output_shape[-1])
    if len(class_names) != outputs:
        raise ValueError(
            f"class_names must have one name per model output ({outputs}); "
            f"received {len(class_names)} names"
        )
    decision = resolve_input_scaling(model, input_scaling)
    scale = 1.0 / 255.0 if decision.scaling == "unit" else 1.0
    inputs = keras.Input(tuple(model.input_shape[1:]), dtype="uint8", name="raw_images")
    x = InputPreprocessing(
        class_names,
        scale=scale,
        interpolation=interpolation,
        aspect=aspect,
        name="preprocessing",
    )(inputs)
    return keras.Model(inputs, model(x), name=f"{model.name}_exported")
