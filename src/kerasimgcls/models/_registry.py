"""The model registry: a name -> factory table (timm's ``_registry.py``).

The registry is what the command line, the documentation and the tests enumerate:
register a factory once with :func:`register_model` and it is available everywhere
by name. It imports no architecture: each architecture module registers itself
(``cifar_cnn``, ``airbench``, and the backbones of ``transfer``), and
:mod:`kerasimgcls.models` imports them all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import keras

from kerasimgcls._validation import check_positive_int

__all__ = [
    "DEFAULT_MAX_IMAGE_SIZE",
    "ModelFactory",
    "get_max_image_size",
    "get_model",
    "get_model_factory",
    "is_model",
    "list_models",
    "register_model",
]

ModelFactory = Callable[..., keras.Model]
_F = TypeVar("_F", bound=ModelFactory)
_REGISTRY: dict[str, ModelFactory] = {}
_MAX_IMAGE_SIZES: dict[str, int] = {}
#: The cap on the image side of a model registered without one.
DEFAULT_MAX_IMAGE_SIZE = 64


def register_model(
    name: str, *, max_image_size: int = DEFAULT_MAX_IMAGE_SIZE
) -> Callable[[_F], _F]:
    """Register a model factory under ``name`` (a decorator).

    The factory must accept the keyword arguments ``input_shape`` and
    ``num_classes`` and return a :class:`keras.Model`.

    Args:
        name: The name the CLI (``--model``) and :func:`get_model` use.
        max_image_size: The longest image side the model is meant to train at: a
            folder of larger (or mixed) images is resized to fit it when no size
            is given (see :func:`~kerasimgcls.choose_image_size`). A CIFAR-sized
            network gets 64, a keras.applications backbone its native 224.

    Returns:
        A decorator that registers the factory and returns it unchanged.

    Raises:
        ValueError: If ``name`` is empty or already registered.

    Example:
        >>> import keras
        >>> from kerasimgcls import conv_block, dense_head, register_model
        >>> @register_model("tiny_cnn_doc")
        ... def build_tiny_cnn(*, input_shape=(28, 28, 1), num_classes=10):
        ...     inputs = keras.Input(input_shape)
        ...     x = conv_block(inputs, 8, name="block1")
        ...     return keras.Model(inputs, dense_head(x, num_classes, units=()))
        >>> "tiny_cnn_doc" in list_models()
        True
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string; received name={name!r}")
    max_image_size = check_positive_int(max_image_size, "max_image_size")

    def decorator(factory: _F) -> _F:
        _check_unregistered(name)
        _REGISTRY[name] = factory
        _MAX_IMAGE_SIZES[name] = max_image_size
        return factory

    return decorator


def _check_unregistered(name: str) -> None:
    """Raise if a model factory is registered as ``name`` already."""
    if name in _REGISTRY:
        raise ValueError(
            f"A model named {name!r} is already registered; choose another name. "
            f"Registered: {list_models()}"
        )


def list_models() -> list[str]:
    """Return the names of all registered model factories, sorted.

    Example:
        >>> from kerasimgcls import list_models
        >>> {"airbench_cnn", "cifar_cnn", "resnet50"} <= set(list_models())
        True
    """
    return sorted(_REGISTRY)


def get_model(name: str, **kwargs: Any) -> keras.Model:
    """Build the registered model ``name``, passing ``kwargs`` to its factory.

    Args:
        name: A name from :func:`list_models`.
        **kwargs: Keyword arguments of the factory, such as ``input_shape`` and
            ``num_classes``.

    Returns:
        The built model.

    Raises:
        ValueError: If no model is registered as ``name``; the message lists the
            available names.

    Example:
        >>> from kerasimgcls import get_model
        >>> model = get_model("cifar_cnn", input_shape=(32, 32, 3), num_classes=10)
        >>> model.count_params()
        393962
    """
    return get_model_factory(name)(**kwargs)


def get_max_image_size(name: str) -> int:
    """Return the longest image side the registered model ``name`` is meant for.

    ``kerasimgcls train --data-dir`` without ``--image-size`` resizes a folder's
    images to their median size, scaled down to fit this cap (see
    :func:`~kerasimgcls.choose_image_size`), so the model and its compute fit.

    Raises:
        ValueError: If no model is registered as ``name``.

    Example:
        >>> from kerasimgcls import get_max_image_size
        >>> get_max_image_size("cifar_cnn"), get_max_image_size("mobilenet_v3_small")
        (64, 224)
    """
    get_model_factory(name)  # raises, listing the names
    return _MAX_IMAGE_SIZES[name]


def is_model(name: str) -> bool:
    """Return whether a model factory is registered as ``name``.

    Example:
        >>> from kerasimgcls import is_model
        >>> is_model("cifar_cnn"), is_model("resnet")
        (True, False)
    """
    return isinstance(name, str) and name in _REGISTRY


def get_model_factory(name: str) -> ModelFactory:
    """Return the factory registered as ``name``, without calling it.

    Use it to read a factory's signature (which keyword arguments it takes) or to
    build the model later.

    Raises:
        ValueError: If no model is registered as ``name``; the message lists the
            available names.

    Example:
        >>> import inspect
        >>> from kerasimgcls import get_model_factory
        >>> "num_classes" in inspect.signature(get_model_factory("cifar_cnn")).parameters
        True
    """
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown model {name!r}. Available: {list_models()}"
        ) from None
