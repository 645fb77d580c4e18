"""Copy weights from one model into another: the one weight-copying routine.

``--init-from`` (a run's model into a new one) and a backbone's local ``.keras``
weights (:func:`kerasimgcls.build_transfer_model`) both copy through it.
"""

from __future__ import annotations

from typing import Any

import keras

__all__ = ["copy_matching_weights", "nested_models"]


def nested_models(model: keras.Model) -> list[keras.Model]:
    """Every model nested inside ``model``, depth first."""
    found: list[keras.Model] = []
    for layer in getattr(model, "layers", []):
        if isinstance(layer, keras.Model):
            found.append(layer)
            found.extend(nested_models(layer))
    return found


def _shapes(model: Any) -> list[tuple[int, ...]]:
    return [tuple(weight.shape) for weight in model.weights]


def copy_matching_weights(
    source: keras.Model,
    target: keras.Model,
    *,
    whole: bool = False,
    prefer: str | None = None,
) -> list[str]:
    """Copy into ``target`` the weights of ``source`` that fit, and say which.

    With ``whole=True``, ``source`` or a model nested in it (the one named
    ``prefer`` first) must have exactly ``target``'s weight shapes, and all of its
    weights are copied. Otherwise each layer of ``source`` (or of a model nested
    one level inside it, such as the model an exported wrapper holds) is copied
    into the ``target`` layer of the same name when their weight shapes agree;
    the others (a head for a new number of classes) keep their fresh weights.

    Returns:
        The names of the ``target`` layers copied (empty if none fits); the
        caller says in its own words what an empty result means.
    """
    if whole:
        candidates = [source, *nested_models(source)]
        candidates.sort(key=lambda model: model.name != prefer)
        for candidate in candidates:
            if _shapes(candidate) == _shapes(target):
                target.set_weights(candidate.get_weights())
                return [layer.name for layer in target.layers if layer.weights]
        return []
    layers = {
        layer.name: layer
        for model in (source, *(m for m in source.layers if isinstance(m, keras.Model)))
        for layer in model.layers
        if layer.weights and not isinstance(layer, keras.Model)
    }
    copied = []
    for layer in target.layers:
        match = layers.get(layer.name)
        if match is None or not layer.weights or _shapes(match) != _shapes(layer):
            continue
        layer.set_weights(match.get_weights())
        copied.append(layer.name)
    return copied
