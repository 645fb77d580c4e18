"""The one walk over a model's layers, nested models included."""

from __future__ import annotations

from collections.abc import Iterator

import keras

__all__ = ["walk_layers"]


def walk_layers(model: keras.Layer) -> Iterator[keras.Layer]:
    """Yield every layer of ``model`` in order, descending into nested models.

    The one walk over a model's layers (Grad-CAM's layer search, the fused batch
    norm's check); a nested model is yielded, then its own layers.
    """
    for layer in getattr(model, "layers", []):
        yield layer
        yield from walk_layers(layer)
