"""Named training recipes: a model, an optimizer, a schedule and the data settings.

A recipe is everything about *how* to train, apart from the data: the CLI's
``--recipe NAME`` and :func:`get_recipe` look it up by name, and every option can
still be overridden (``--epochs``, ``--batch-size``, ...). Register your own with
:func:`register_recipe`.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from kerasimgcls._validation import check_scalar
from kerasimgcls.data._steps import steps_per_epoch
from kerasimgcls.training._config import TrainingConfig, json_ready

__all__ = ["Recipe", "get_recipe", "json_ready", "list_recipes", "register_recipe"]

_REGISTRY: dict[str, Recipe] = {}

# Optimizer steps the folder recipe aims at (see Recipe.for_data).
_FOLDER_STEPS = 2000


@dataclass(frozen=True)
class Recipe(TrainingConfig):
    """A named :class:`~kerasimgcls.TrainingConfig`: how to train, apart from the data.

    Every field of the configuration (model and its arguments, optimizer,
    schedule, augmentation, epochs, batch size, ...) with the defaults of
    :class:`~kerasimgcls.TrainingConfig` except ``model="cifar_cnn"``, plus a
    name, a description and whether the data decides some settings. Pass it as
    ``Trainer(model, config=recipe)``; override fields with
    ``dataclasses.replace``.

    Attributes:
        name: The registry name.
        description: One line for ``--help`` and the documentation.
        derive_from_data: Derive the epochs, batch size, batch-norm momentum and
            augmentation from the training set (see :meth:`for_data`).

    Example:
        >>> from kerasimgcls import get_recipe
        >>> recipe = get_recipe("reference")
        >>> recipe.model, recipe.optimizer, recipe.batch_size, recipe.epochs
        ('cifar_cnn', 'adam', 64, 25)
    """

    name: str
    description: str
    model: str | None = field(default="cifar_cnn", kw_only=True)
    derive_from_data: bool = field(default=False, kw_only=True)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"name must be a non-empty string; received {self.name!r}")
        super().__post_init__()

    def for_data(
        self,
        train_size: int,
        image_shape: tuple[int, ...],
        *,
        batch_size: int | None = None,
    ) -> Recipe:
        """Return the recipe with its data-derived settings filled in.

        A recipe without ``derive_from_data`` is returned unchanged. Otherwise,
        with ``n`` training images of size ``height x width`` (the rule of the
        ``folder`` recipe, from the number of optimizer steps):

        - batch size 32 up to 4,096 images, else 64 (unless ``batch_size`` is
          given); ``steps = ceil(n / batch_size)`` per epoch;
        - epochs ``ceil(2000 / steps)``, between 15 and 40: about 2,000 steps in
          all where the folder allows, so a folder of 100 images gets 40 epochs
          of 4 steps and one of 30,000 images 15 epochs of 469 steps;
        - batch-norm momentum ``1 - 1 / clamp(steps, 10, 100)``: the moving
          averages span about one epoch (0.9 for a small folder, 0.99 from 100
          steps per epoch on) instead of lagging behind the weights;
        - warmup over the first tenth of the epochs;
        - flips and translations by ``min(height, width) / 16`` pixels (at least 1).

        Args:
            train_size: Number of training images.
            image_shape: ``(height, width, channels)`` of the images.
            batch_size: The batch size to plan for, if not the rule's.

        Returns:
            The recipe to train with (``derive_from_data`` is false in it).

        Example:
            >>> from kerasimgcls import get_recipe
            >>> recipe = get_recipe("folder").for_data(108, (32, 32, 3))
            >>> recipe.epochs, recipe.batch_size, recipe.model_kwargs
            (40, 32, {'batch_norm_momentum': 0.9})
        """
        if not self.derive_from_data:
            return self
        train_size = check_scalar(train_size, "train_size", kind=int, min_val=1)
        if batch_size is None:
            batch_size = 32 if train_size <= 4096 else 64
        batch_size = check_scalar(batch_size, "batch_size", kind=int, min_val=1)
        steps = steps_per_epoch(train_size, batch_size)
        epochs = min(max(math.ceil(_FOLDER_STEPS / steps), 15), 40)
        momentum = round(1.0 - 1.0 / min(max(steps, 10), 100), 4)
        translate = max(1, min(int(image_shape[0]), int(image_shape[1])) // 16)
        return dataclasses.replace(
            self,
            model_kwargs={**dict(self.model_kwargs), "batch_norm_momentum": momentum},
            epochs=epochs,
            batch_size=batch_size,
            warmup_epochs=round(epochs / 10, 2),
            augment={**dict(self.augment or {}), "translate": translate},
            derive_from_data=False,
        )

    def make_optimizer(self) -> Any:
        """Return a new Keras optimizer as the recipe describes it."""
        import keras

        config = {"class_name": self.optimizer, "config": dict(self.optimizer_kwargs)}
        return keras.optimizers.get(config)

    def to_dict(self) -> dict[str, Any]:
        """Return the recipe as plain JSON-friendly data (for ``run.json``)."""
        ready: dict[str, Any] = json_ready(dataclasses.asdict(self))
        return ready


def register_recipe(recipe: Recipe, *, replace: bool = False) -> Recipe:
    """Register ``recipe`` under ``recipe.name`` and return it.

    Args:
        recipe: The recipe.
        replace: Allow replacing a recipe of the same name.

    Returns:
        The recipe, unchanged.

    Raises:
        TypeError: If ``recipe`` is not a :class:`Recipe`.
        ValueError: If the name is taken and ``replace`` is false.

    Example:
        >>> from kerasimgcls import Recipe, register_recipe
        >>> _ = register_recipe(Recipe("quick_doc", "two epochs", epochs=2))
        >>> "quick_doc" in list_recipes()
        True
    """
    if not isinstance(recipe, Recipe):
        raise TypeError(f"recipe must be a Recipe; received {type(recipe).__name__}")
    if recipe.name in _REGISTRY and not replace:
        raise ValueError(
            f"A recipe named {recipe.name!r} is already registered; choose another "
            f"name or pass replace=True. Registered: {list_recipes()}"
        )
    _REGISTRY[recipe.name] = recipe
    return recipe


def list_recipes() -> list[str]:
    """Return the names of the registered recipes, sorted.

    Example:
        >>> from kerasimgcls import list_recipes
        >>> "reference" in list_recipes()
        True
    """
    return sorted(_REGISTRY)


def get_recipe(name: str) -> Recipe:
    """Return the recipe registered as ``name``.

    Raises:
        ValueError: If there is no such recipe; the message lists the names.

    Example:
        >>> from kerasimgcls import get_recipe
        >>> get_recipe("reference").optimizer
        'adam'
    """
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown recipe {name!r}. Available: {list_recipes()}"
        ) from None


register_recipe(
    Recipe(
        "reference",
        "the tutorial: cifar_cnn, Adam (learning rate 0.001), batch 64, 25 epochs, "
        "no augmentation, Keras' moving batch-norm statistics as training left them",
        precise_batch_norm=False,
    )
)

register_recipe(
    Recipe(
        "folder",
        "the default for a folder of your own images: cifar_cnn, Adam with a "
        "one-cycle learning rate (peak 0.002), flips and translations, epochs, "
        "batch size and batch-norm momentum derived from the number of steps, "
        "precise batch norm, the best validation epoch's weights kept",
        learning_rate=2e-3,
        schedule="one_cycle",
        augment={"flip": True},
        precise_batch_norm=True,
        restore_best_weights=True,
        derive_from_data=True,
    )
)

register_recipe(
    Recipe(
        "digits",
        "the reference cifar_cnn for small datasets such as the 8x8 digits: "
        "batch-norm momentum 0.9 so the moving statistics keep up with few steps, "
        "Adam, batch 64, 15 epochs",
        model_kwargs={"batch_norm_momentum": 0.9},
        epochs=15,
    )
)

# What the improved and airbench recipes share: flip and 2-pixel translate,
# mixed bfloat16 and fused batch norm, without precise batch norm.
_FAST_ON_CPU: dict[str, Any] = {
    "augment": {"flip": True, "translate": 2},
    "precision": "mixed_bfloat16",
    "fused_batch_norm": True,
    "precise_batch_norm": False,
}

register_recipe(
    Recipe(
        "improved",
        "the reference cifar_cnn trained better in 10 epochs: no dropout (flip and "
        "2-pixel translate regularise instead), Adam with a one-cycle learning rate "
        "(peak 0.003), label smoothing 0.1, mixed bfloat16 and fused batch norm",
        # Same layers and 393,962 parameters; the reference's dropout 0.2-0.3
        # keeps training accuracy below validation accuracy for 10 epochs.
        model_kwargs={"dropout": 0.0, "head_dropout": (0.0, 0.0)},
        learning_rate=3e-3,
        schedule="one_cycle",
        warmup_epochs=1.5,
        label_smoothing=0.1,
        epochs=10,
        batch_size=64,
        # As measured (README, performance page); precise batch norm is measured
        # separately on the saved models before it becomes this recipe's default.
        **_FAST_ON_CPU,
    )
)


register_recipe(
    Recipe(
        "airbench",
        "cifar10-airbench94 in Keras for a CPU: airbench_cnn (widths 64, 256, 256; "
        "patch whitening, identity-initialised convolutions, batch-norm biases at "
        "64x learning rate), Nesterov SGD (momentum 0.85) with a triangular "
        "schedule, label smoothing 0.2, alternating flips and 2-pixel translate, "
        "lookahead weight averaging (every 5 steps, decay 0.95^5 (t/T)^3), "
        "six-view TTA, batch 256, mixed bfloat16 and fused batch norm",
        model="airbench_cnn",
        optimizer="sgd",
        # airbench94's lr 11.5 and weight decay 0.0153 "per 1024 examples", on a
        # summed loss with momentum folded out (kilostep_scale), become Keras'
        # mean-loss lr 1.5 * 256 / 1024 and decoupled decay
        # 0.0153 * 256 / 1024 / 0.375 per step at batch 256.
        optimizer_kwargs={"momentum": 0.85, "nesterov": True, "weight_decay": 0.0102},
        learning_rate=0.375,
        # The triangle rises for the first 23% of the steps (make_schedule's
        # default when no warmup is given), whatever --epochs says.
        schedule="triangle",
        label_smoothing=0.2,
        # Each of these three helped alone in the 16k-image ablation
        # (benchmarks/results/airbench_ablation): +0.5, +0.3 and +0.3 points.
        augment={"flip": True, "flip_mode": "alternating", "translate": 2},
        weight_averaging={
            "decay": 0.95,
            "every": 5,
            "lookahead": True,
            "ramp_power": 3.0,
        },
        tta="flip_translate",
        # airbench94's 9.9 epochs; 20 gave no more (89.2% against 89.4% at 10,
        # benchmarks/results/airbench and airbench10_cli).
        epochs=10,
        batch_size=256,
        **{key: value for key, value in _FAST_ON_CPU.items() if key != "augment"},
    )
)

register_recipe(
    Recipe(
        "transfer",
        "fine-tune a pretrained keras.applications backbone on your own images: "
        "mobilenet_v3_small (ImageNet weights; --model-arg weights=FILE for a "
        "local file), the head alone for 3 epochs, then the last 20 backbone "
        "layers at a tenth of the learning rate with batch norm frozen; Adam "
        "(peak 0.001, cosine), flips, 12 epochs, batch 32, the best epoch kept",
        model="mobilenet_v3_small",
        learning_rate=1e-3,
        schedule="cosine",
        augment={"flip": True, "translate": 2},
        fine_tune={},
        epochs=12,
        batch_size=32,
        precise_batch_norm=False,
        restore_best_weights=True,
    )
)
