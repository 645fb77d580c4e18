"""One input contract for every model: raw uint8 pixels in, what the model expects out.

Every function of the library that takes a model and images takes raw uint8 pixels
from the user. What the model itself expects differs:

- ``"raw"``: the model scales its own input. The library's exported models (they start
  with :class:`~kerasimgcls.InputPreprocessing`), models with a Keras ``Rescaling``
  layer or a ``Normalization`` layer adapted on 0-255 pixels before their first
  weighted layer (the way keras.io writes them), keras.applications models built with
  their preprocessing included, and models whose input is an integer tensor.
- ``"unit"``: the model expects float pixels in ``[0, 1]``, and the library divides by
  255. This is what the library's own factories build (the Trainer's pipeline scales
  for them), and the documented default for a model that shows no evidence either way.

:func:`resolve_input_scaling` decides from the model (evidence first, the default
last), says why, and lets an explicit ``input_scaling="raw"`` or ``"unit"`` override
it. Deciding in one place means no helper can double-scale: a ``Rescaling(1/255)``
model fed pixels already divided by 255 sees values in ``[0, 1/255]`` and answers
with confidence but without sense.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Literal

# Keras and NumPy are imported where they are used: the command line parses and
# checks its arguments without either.
if TYPE_CHECKING:
    import keras
    import numpy as np
    from numpy.typing import NDArray

__all__ = [
    "INPUT_SCALINGS",
    "InputScaling",
    "ScalingDecision",
    "check_input_scaling",
    "check_model_images",
    "prepare_images",
    "resolve_input_scaling",
]

logger = logging.getLogger(__name__)

InputScaling = Literal["auto", "raw", "unit"]
INPUT_SCALINGS: tuple[str, ...] = ("auto", "raw", "unit")

# Layers that only look at or reshape pixels; the search for evidence walks past them
# to the first layer that holds weights.
_PASS_THROUGH = (
    "InputLayer",
    "Resizing",
    "CenterCrop",
    "RandomFlip",
    "RandomRotation",
    "RandomTranslation",
    "RandomZoom",
    "RandomCrop",
    "RandomContrast",
    "RandomBrightness",
    "Cropping2D",
    "ZeroPadding2D",
    "Permute",
    "Reshape",
    "Activation",
)


@dataclasses.dataclass(frozen=True)
class ScalingDecision:
    """How a model's input is fed, and why.

    Attributes:
        scaling: ``"raw"`` (uint8 pixels as they are) or ``"unit"`` (divided by 255).
        reason: One sentence of evidence, for logs and ``run.json``.
        guessed: Whether the model gave no evidence, so the default was taken: the
            one case worth telling the user about (it is logged; certain decisions
            are logged at DEBUG only).

    Example:
        >>> from kerasimgcls import build_cifar_cnn, resolve_input_scaling
        >>> decision = resolve_input_scaling(build_cifar_cnn(input_shape=(8, 8, 1)))
        >>> decision.scaling
        'unit'
    """

    scaling: Literal["raw", "unit"]
    reason: str
    guessed: bool = False


def check_input_scaling(value: object, name: str = "input_scaling") -> InputScaling:
    """Return ``value`` if it is one of ``"auto"``, ``"raw"``, ``"unit"``.

    Raises:
        ValueError: If ``value`` is anything else.
    """
    if value not in INPUT_SCALINGS:
        raise ValueError(
            f"{name} must be one of {list(INPUT_SCALINGS)}; received {name}={value!r}"
        )
    return value  # type: ignore[return-value]


def _leading_layers(model: keras.Layer) -> Iterator[keras.Layer]:
    """Yield the layers a pixel passes up to the first weighted layer.

    Nested models (a keras.io augmentation ``Sequential``, a keras.applications
    backbone used as a layer, the library's exported wrapper) are entered, and
    the search goes on after one that holds no weighted layer.
    """
    yield from _walk(model, [])


def _walk(model: keras.Layer, done: list[bool]) -> Iterator[keras.Layer]:
    # ``done`` becomes [True] once a weighted layer is reached (shared by nesting).
    import keras

    for layer in getattr(model, "layers", []):
        if isinstance(layer, keras.Model):
            yield from _walk(layer, done)
            if done:
                return
            continue
        yield layer
        kind = type(layer).__name__
        if kind in _PASS_THROUGH or kind == "Normalization" or not layer.weights:
            continue
        done.append(True)
        return


def _normalization_evidence(layer: keras.Layer) -> ScalingDecision | None:
    import keras
    import numpy as np

    mean = getattr(layer, "mean", None)
    if mean is None:
        return None
    try:
        largest = float(np.max(np.abs(np.asarray(keras.ops.convert_to_numpy(mean)))))
    except (TypeError, ValueError):  # not adapted yet: no evidence
        return None
    if largest > 1.5:
        return ScalingDecision(
            "raw", f"layer {layer.name!r} normalises with means up to {largest:.3g}"
        )
    return ScalingDecision(
        "unit", f"layer {layer.name!r} normalises with means up to {largest:.3g}"
    )


def _infer(model: keras.Model) -> ScalingDecision:
    try:
        inputs = list(model.inputs or [])
    except (AttributeError, ValueError):  # a subclassed model without inputs
        inputs = []
    dtype = str(getattr(inputs[0], "dtype", "float32")) if inputs else ""
    if "int" in dtype:
        return ScalingDecision("raw", f"the model's input is {dtype}")
    for layer in _leading_layers(model):
        kind = type(layer).__name__
        if kind == "InputPreprocessing":
            return ScalingDecision("raw", "the model is a kerasimgcls exported model")
        if kind == "Rescaling":
            return ScalingDecision(
                "raw", f"layer {layer.name!r} rescales the input itself"
            )
        if kind == "Normalization":
            decision = _normalization_evidence(layer)
            if decision is not None:
                return decision
    return ScalingDecision(
        "unit",
        "no input scaling layer found, so pixels are divided by 255 (the default; "
        "pass input_scaling='raw' if the model expects 0-255)",
        guessed=True,
    )


def resolve_input_scaling(
    model: keras.Model, input_scaling: InputScaling = "auto"
) -> ScalingDecision:
    """Decide how raw uint8 pixels are fed to ``model``.

    Args:
        model: Any Keras model taking images.
        input_scaling: ``"auto"`` to decide from the model, or ``"raw"`` / ``"unit"``
            to say it.

    Returns:
        The decision and its reason.

    Raises:
        ValueError: If ``input_scaling`` is not one of the three choices.

    Example:
        >>> import keras
        >>> inputs = keras.Input((8, 8, 3))
        >>> x = keras.layers.Rescaling(1 / 255)(inputs)
        >>> outputs = keras.layers.Dense(2)(keras.layers.Flatten()(x))
        >>> resolve_input_scaling(keras.Model(inputs, outputs)).scaling
        'raw'
    """
    check_input_scaling(input_scaling)
    if input_scaling != "auto":
        return ScalingDecision(input_scaling, f"input_scaling={input_scaling!r} given")
    decision = _infer(model)
    # A guess is said once per model (INFO), then only at DEBUG: helpers that run
    # every epoch (precise batch norm) ask again and again. A decision from the
    # model's own evidence needs nothing from the user, and is said at DEBUG.
    key = (id(model), decision.scaling)
    level = logging.INFO if decision.guessed and key not in _REPORTED else logging.DEBUG
    _REPORTED.add(key)
    logger.log(
        level,
        "model %r is fed %s pixels: %s",
        model.name,
        decision.scaling,
        decision.reason,
    )
    return decision


_REPORTED: set[tuple[int, str]] = set()


def prepare_images(
    model: keras.Model,
    images: NDArray[np.uint8],
    input_scaling: InputScaling = "auto",
) -> NDArray[Any]:
    """Return uint8 ``images`` as ``model`` expects them (see the module docstring).

    Example:
        >>> import numpy as np
        >>> from kerasimgcls import build_cifar_cnn
        >>> model = build_cifar_cnn(input_shape=(8, 8, 1), num_classes=2)
        >>> prepare_images(model, np.full((1, 8, 8, 1), 255, np.uint8)).max()
        np.float32(1.0)
    """
    import numpy as np

    if resolve_input_scaling(model, input_scaling).scaling == "raw":
        return images
    return images.astype(np.float32) / np.float32(255.0)


def check_model_images(
    model: keras.Model, images: object, *, allow_single: bool = False
) -> NDArray[np.uint8]:
    """Return ``images`` as a uint8 array of shape ``(n, *model_input_shape)``.

    A model input side of ``None`` (any size) accepts any size. With
    ``allow_single``, one image without the batch axis is accepted too.

    Raises:
        TypeError: If ``images`` is not uint8.
        ValueError: If its shape does not match the model's input.
    """
    import numpy as np

    array = np.asarray(images)
    if array.dtype != np.uint8:
        raise TypeError(
            f"images must be uint8 in [0, 255]; received dtype {array.dtype}"
        )
    expected = tuple(model.input_shape[1:])
    if allow_single and array.ndim == len(expected):
        array = array[np.newaxis]
    compatible = array.ndim == len(expected) + 1 and all(
        want is None or want == got
        for want, got in zip(expected, array.shape[1:], strict=True)
    )
    if not compatible:
        raise ValueError(
            f"images must have shape (n, {', '.join(map(str, expected))}) to match "
            f"the model's input; received shape {array.shape}"
        )
    return array
