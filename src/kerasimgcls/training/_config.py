"""The one training configuration: recipes, the Trainer and the CLI read its fields.

Imports nothing heavy (no Keras), so the command line builds its ``train`` flags
from the fields without starting TensorFlow. Each field's ``metadata`` holds its
``--help`` text (``help``), and optionally the flag (``flag``), its ``choices``
and ``metavar``; fields without ``help`` get no flag. A numeric field's range is
its metadata's ``bounds`` (the arguments of ``check_scalar``), or ``check`` a
function of ``(value, name)``: :func:`check_field` applies it, for the
configuration and for the command line's flag alike, so the two cannot disagree.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kerasimgcls._validation import (
    PRECISIONS,
    check_bool,
    check_choice,
    check_rate,
    check_scalar,
    check_seed,
)
from kerasimgcls.training._callback_args import (
    AVERAGING_ARGUMENTS,
    FINE_TUNE_ARGUMENTS,
    ArgumentTable,
    checked_arguments,
)

__all__ = [
    "CALLBACK_FIELDS",
    "SCHEDULE_NAMES",
    "TTA_NAMES",
    "TrainingConfig",
    "check_field",
    "json_ready",
    "parse_options",
]

# The named schedules (kerasimgcls.training.SCHEDULES), spelled out here so this
# module needs no Keras; tests/test_cli_fast.py checks that they agree.
SCHEDULE_NAMES = ("constant", "cosine", "one_cycle", "triangle")
_INPUT_SCALINGS = ("auto", "unit", "raw")
# The view sets of kerasimgcls.predict_tta but "none" (tests/test_cli_fast.py).
TTA_NAMES = ("flip", "flip_translate")
# Fields whose value is the keyword arguments of a callback, and their checks.
CALLBACK_FIELDS: dict[str, ArgumentTable] = {
    "weight_averaging": AVERAGING_ARGUMENTS,
    "fine_tune": FINE_TUNE_ARGUMENTS,
}


def json_ready(value: Any) -> Any:
    """Return ``value`` with mappings and tuples turned into dicts and lists.

    Example:
        >>> json_ready({"head_dropout": (0.0, 0.2), 3: {"a": 1}})
        {'head_dropout': [0.0, 0.2], '3': {'a': 1}}
    """
    if isinstance(value, Mapping):
        return {str(key): json_ready(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_ready(item) for item in value]
    if hasattr(value, "item") and callable(value.item):  # a NumPy scalar
        return value.item()
    return value


def _help(text: str, **extra: Any) -> Any:
    return {"help": text, **extra}


def _callback_field(text: str, callback: str, example: str) -> Any:
    help_text = (
        f"{text}: 'default', 'none', or KEY=VALUE,... of {callback}, e.g. '{example}'"
    )
    return field(default=None, metadata=_help(help_text, metavar="SPEC"))


@dataclass(frozen=True, kw_only=True)
class TrainingConfig:
    """Every setting of a training run, checked once, recorded in ``run.json``.

    One object for recipes (a :class:`~kerasimgcls.Recipe` is a named
    configuration), the :class:`~kerasimgcls.Trainer` (``Trainer(model,
    config=...)``) and the command line (each ``train`` flag is a field). Change
    settings with ``dataclasses.replace``; ``run.json``'s ``"config"`` holds
    :meth:`to_dict`, and :meth:`from_dict` reads it back. A resumed run must have
    the same configuration, model arguments included.

    Attributes:
        model: A registered model name (:func:`kerasimgcls.list_models`), used by
            the command line; ``None`` when the Trainer is given the model.
        model_kwargs: Keyword arguments of the model factory.
        optimizer: A Keras optimizer name, or its serialised form (what
            ``keras.optimizers.serialize`` returns) for an optimizer instance.
        optimizer_kwargs: Keyword arguments of the named optimizer.
        learning_rate: Peak learning rate; ``None`` keeps the optimizer's own.
        schedule: ``None`` or one of ``"constant"``, ``"cosine"``,
            ``"one_cycle"``, ``"triangle"`` (the serialised form of a Keras
            ``LearningRateSchedule`` given to the Trainer).
        warmup_epochs: Epochs of linear warmup of the named schedules.
        label_smoothing: Label smoothing of the default loss, in ``[0, 1)``.
        augment: Keyword arguments of :class:`kerasimgcls.Augmentation`, or
            ``None`` for none.
        epochs: Number of epochs.
        batch_size: Images per step (the global batch under a strategy).
        early_stopping_patience: Epochs without improvement of the monitored loss
            before stopping; ``None`` never stops early.
        restore_best_weights: Keep the weights of the epoch with the lowest
            monitored loss.
        class_weight: ``None``, ``"balanced"`` or a mapping from class index to
            weight.
        steps_per_execution: Training steps per compiled call.
        precision: ``"float32"`` or ``"mixed_bfloat16"``.
        fused_batch_norm: Train with TensorFlow's fused batch-norm kernel.
        precise_batch_norm: Re-estimate the batch-norm statistics at inference
            before each validation and at the end.
        input_scaling: ``"auto"``, ``"unit"`` or ``"raw"``.
        seed: Seed of everything.
        deterministic: Turn on TensorFlow's op determinism.
        weight_averaging: Keyword arguments of
            :class:`~kerasimgcls.WeightAveraging` (``{}`` for its defaults), or
            ``None`` for no averaging. The run validates and ends with the
            averaged weights.
        fine_tune: Keyword arguments of :class:`~kerasimgcls.FineTune` (``{}`` for
            its defaults), or ``None``: the two fine-tuning phases of a model with
            a nested ``"backbone"`` (see :func:`~kerasimgcls.build_transfer_model`).
        tta: Test-time augmentation of the scores at the end of a command-line
            run: ``None``, ``"flip"`` or ``"flip_translate"`` (see
            :func:`~kerasimgcls.predict_tta`).

    Raises:
        TypeError: If a value has the wrong type.
        ValueError: If a value is out of range or not one of its choices.

    Example:
        >>> import dataclasses
        >>> from kerasimgcls import TrainingConfig
        >>> config = dataclasses.replace(TrainingConfig(), epochs=3, seed=1)
        >>> TrainingConfig.from_dict(config.to_dict()) == config
        True
    """

    model: str | None = field(
        default=None, metadata=_help("registered model name", metavar="NAME")
    )
    model_kwargs: Mapping[str, Any] = field(default_factory=dict)
    optimizer: str | Mapping[str, Any] = field(
        default="adam", metadata=_help("Keras optimizer name, e.g. adam, sgd")
    )
    optimizer_kwargs: Mapping[str, Any] = field(default_factory=dict)
    learning_rate: float | None = field(
        default=None,
        metadata=_help(
            "peak learning rate", bounds={"min_val": 0, "include_min": False}
        ),
    )
    schedule: str | Mapping[str, Any] | None = field(
        default=None,
        metadata=_help("learning-rate schedule", choices=SCHEDULE_NAMES),
    )
    warmup_epochs: float = field(
        default=0.0, metadata=_help("epochs of warmup", bounds={"min_val": 0})
    )
    label_smoothing: float = field(
        default=0.0,
        metadata=_help("label smoothing", check=check_rate),
    )
    augment: Mapping[str, Any] | None = None
    epochs: int = field(
        default=25, metadata=_help("number of epochs", bounds={"min_val": 1})
    )
    batch_size: int = field(
        default=64, metadata=_help("images per step", bounds={"min_val": 1})
    )
    early_stopping_patience: int | None = field(
        default=None,
        metadata=_help(
            "stop after PATIENCE epochs without improvement of the validation loss",
            flag="--early-stopping",
            metavar="PATIENCE",
            bounds={"min_val": 1},
        ),
    )
    restore_best_weights: bool = field(
        default=False,
        metadata=_help("keep the weights of the epoch with the lowest validation loss"),
    )
    class_weight: str | Mapping[int, float] | None = field(
        default=None,
        metadata=_help("weight classes by frequency", choices=("balanced",)),
    )
    steps_per_execution: int = field(
        default=1,
        metadata=_help("training steps per compiled call", bounds={"min_val": 1}),
    )
    precision: str = field(
        default="float32",
        metadata=_help(
            "compute precision; mixed_bfloat16 is faster on CPUs with AVX512-BF16 "
            "or AMX, slower on others",
            choices=PRECISIONS,
        ),
    )
    fused_batch_norm: bool = field(
        default=False,
        metadata=_help(
            "train batch norm with TensorFlow's fused kernel: same results up to "
            "round-off, faster on a CPU"
        ),
    )
    precise_batch_norm: bool = field(
        default=True,
        metadata=_help(
            "re-estimate the batch-norm statistics at inference (dropout off) from "
            "training images before each validation and at the end"
        ),
    )
    input_scaling: str = field(
        default="auto",
        metadata=_help(
            "how the model takes uint8 pixels: auto decides from the model (a "
            "registered model takes [0, 1]), unit divides by 255, raw feeds 0-255",
            choices=_INPUT_SCALINGS,
        ),
    )
    seed: int = field(
        default=0,
        metadata=_help("seed of everything", metavar="N", check=check_seed),
    )
    deterministic: bool = field(
        default=True,
        metadata=_help(
            "TensorFlow op determinism; --no-deterministic is faster on some hardware"
        ),
    )

    weight_averaging: Mapping[str, Any] | None = _callback_field(
        "average the weights during training and end with the average",
        "WeightAveraging",
        "decay=0.95,every=5,lookahead,ramp_power=3",
    )
    fine_tune: Mapping[str, Any] | None = _callback_field(
        "two-phase fine-tuning of a transfer model's backbone",
        "FineTune",
        "warmup_epochs=3,unfreeze_layers=20,learning_rate_factor=0.1",
    )
    tta: str | None = field(
        default=None,
        metadata=_help(
            "also score the splits at the end with test-time augmentation "
            "(flip: each image and its mirror; flip_translate: airbench's six "
            "views, mirrored and shifted by one pixel)",
            choices=TTA_NAMES,
        ),
    )

    def __post_init__(self) -> None:
        _validate(self)

    def to_dict(self) -> dict[str, Any]:
        """Return the fields as JSON-ready data (``run.json``'s ``"config"``)."""
        ready: dict[str, Any] = json_ready(
            {f.name: getattr(self, f.name) for f in dataclasses.fields(TrainingConfig)}
        )
        return ready

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> TrainingConfig:
        """Return the configuration :meth:`to_dict` (or ``run.json``) describes.

        Keys that are not fields (such as the data fingerprint ``run.json`` adds)
        are ignored; JSON's string keys of ``class_weight`` become class indices.

        Raises:
            TypeError: If a value has the wrong type.
            ValueError: If a value is out of range.
        """
        names = {f.name for f in dataclasses.fields(TrainingConfig)}
        picked = {key: value for key, value in values.items() if key in names}
        weights = picked.get("class_weight")
        if isinstance(weights, Mapping):
            picked["class_weight"] = {int(k): v for k, v in weights.items()}
        return TrainingConfig(**picked)


_FIELDS = {f.name: f for f in dataclasses.fields(TrainingConfig)}
# The numeric fields: their range is in their metadata ("bounds" or "check").
_NUMBERS = tuple(
    name for name, f in _FIELDS.items() if {"bounds", "check"} & set(f.metadata)
)


def check_field(name: str, value: object, *, display: str | None = None) -> Any:
    """Check ``value`` against the range of the numeric field ``name``; return it.

    The one check of a numeric setting: :class:`TrainingConfig` runs it on every
    such field, and the command line on its flag's value (``display`` is then the
    flag, ``"--epochs"``, named in the message instead of the field).

    Raises:
        TypeError: If ``value`` is not a number of the field's kind.
        ValueError: If ``value`` is outside the field's range.

    Example:
        >>> check_field("epochs", 3)
        3
        >>> check_field("epochs", -1, display="--epochs")
        Traceback (most recent call last):
        ...
        ValueError: --epochs must be >= 1; received --epochs=-1
    """
    config_field = _FIELDS[name]
    label = display or name
    check = config_field.metadata.get("check")
    if check is not None:
        return check(value, label)
    annotation = str(config_field.type)
    return check_scalar(
        value,
        label,
        kind=int if annotation.startswith("int") else float,
        allow_none="None" in annotation,
        **config_field.metadata["bounds"],
    )


def _validate(config: TrainingConfig) -> None:
    """Check every field; the one place a training setting is checked."""
    for name in _NUMBERS:  # frozen: store the checked numbers
        object.__setattr__(config, name, check_field(name, getattr(config, name)))
    check_choice(config.precision, "precision", PRECISIONS)
    check_choice(config.input_scaling, "input_scaling", _INPUT_SCALINGS)
    if isinstance(config.schedule, str):
        check_choice(config.schedule, "schedule", SCHEDULE_NAMES)
    for name in (
        "deterministic",
        "restore_best_weights",
        "fused_batch_norm",
        "precise_batch_norm",
    ):
        check_bool(getattr(config, name), name)
    if config.tta is not None:
        check_choice(config.tta, "tta", TTA_NAMES)
    _check_callback_fields(config)
    _check_class_weight(config.class_weight)
    for name in ("model_kwargs", "optimizer_kwargs"):
        if not isinstance(getattr(config, name), Mapping):
            raise TypeError(
                f"{name} must be a mapping; received {name}={getattr(config, name)!r}"
            )
    if config.augment is not None and not isinstance(config.augment, Mapping):
        raise TypeError(
            "augment must be None or a mapping of Augmentation arguments; received "
            f"augment={config.augment!r}"
        )


def _check_callback_fields(config: TrainingConfig) -> None:
    for name, check in CALLBACK_FIELDS.items():
        value = getattr(config, name)
        if value is not None:  # frozen: store every argument, defaults included
            object.__setattr__(config, name, checked_arguments(check, value, name))
    if config.weight_averaging is not None and config.restore_best_weights:
        raise ValueError(
            "restore_best_weights keeps one epoch's training weights, but "
            "weight_averaging ends with the averaged weights (and validates them); "
            "use one of the two; received restore_best_weights=True and "
            f"weight_averaging={dict(config.weight_averaging)!r}"
        )


def parse_options(text: str) -> dict[str, Any] | str:
    """Return the ``KEY=VALUE,...`` of a callback flag as keyword arguments.

    ``"default"`` is ``{}`` (the callback's defaults) and ``"none"`` is returned
    as it is (the flag turns the callback off). A value is JSON if it parses
    (``3``, ``0.1``, ``true``, ``null``), else a string; a bare ``KEY`` is
    ``True``.

    Raises:
        ValueError: If an item has an empty key.

    Example:
        >>> parse_options("decay=0.95,every=5,lookahead")
        {'decay': 0.95, 'every': 5, 'lookahead': True}
    """
    import json

    text = text.strip()
    if text in ("none", "default"):
        return {} if text == "default" else text
    options: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, raw = item.partition("=")
        if not key.strip():
            raise ValueError(f"expected KEY=VALUE; received {item!r}")
        try:
            value: Any = json.loads(raw) if sep else True
        except json.JSONDecodeError:
            value = raw
        options[key.strip()] = value
    return options


def _check_class_weight(class_weight: object) -> None:
    if class_weight is None or class_weight == "balanced":
        return
    if not isinstance(class_weight, Mapping):
        raise ValueError(
            "class_weight must be None, 'balanced' or a mapping from class index to "
            f"weight; received class_weight={class_weight!r}"
        )
    for key, value in class_weight.items():
        check_scalar(key, "class_weight key", kind=int, min_val=0)
        check_scalar(value, f"class_weight[{key!r}]", min_val=0)
