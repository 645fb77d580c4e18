"""What ``Trainer.fit`` sets up before ``model.fit``: model, optimizer, weights, data.

Plain functions of the configuration, so that the Trainer reads as the sequence
check, build, compile, fit, finish.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import numbers
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np

from kerasimgcls.data import ImageDataset
from kerasimgcls.models.layers import fuse_batch_norm, precision_scope
from kerasimgcls.training._config import TrainingConfig, json_ready
from kerasimgcls.training._context import RunContext
from kerasimgcls.training._schedules import make_schedule
from kerasimgcls.training._seed import seed_everything

__all__ = [
    "build_model",
    "compile_model",
    "describe",
    "make_optimizer",
    "resolve_class_weight",
    "scope_of",
    "trainer_config",
    "variables_signature",
    "weights_digest",
    "with_fit_arguments",
]


def scope_of(strategy: Any) -> Any:
    """``strategy.scope()``, or a context that does nothing without a strategy."""
    return contextlib.nullcontext() if strategy is None else strategy.scope()


def describe(value: Any) -> Any:
    """A JSON description of a Keras object (optimizer, schedule, loss, metric)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if hasattr(value, "get_config"):
        try:
            config = value.get_config()
        except (NotImplementedError, TypeError, AttributeError):
            return type(value).__name__
        if isinstance(value, keras.optimizers.Optimizer):
            # Keras numbers unnamed optimizers per process ("adam_2"): not part
            # of the run's configuration, and it would block resuming in-process.
            config = {k: v for k, v in config.items() if k != "name"}
        return {"type": type(value).__name__, "config": json_ready(config)}
    return (
        json_ready(value) if isinstance(value, Mapping | list | tuple) else repr(value)
    )


def build_model(model: object, config: TrainingConfig, strategy: Any) -> keras.Model:
    """Return ``model`` (cloned into the strategy's scope), or build it from a factory.

    Raises:
        TypeError: If ``model`` is neither a Keras model nor a callable returning one.
        ValueError: If a ready model was built under another precision.
    """
    if isinstance(model, keras.Model):
        _check_model_precision(model, config.precision)
        built = model
        if strategy is not None:
            with strategy.scope():
                built = keras.models.clone_model(model)
                built.set_weights(model.get_weights())
    elif callable(model):
        seed_everything(config.seed, deterministic=config.deterministic)
        with scope_of(strategy), precision_scope(config.precision):
            built = model()
        if not isinstance(built, keras.Model):
            raise TypeError(
                "model factory must return a keras.Model; it returned "
                f"{type(built).__name__}"
            )
    else:
        raise TypeError(
            "model must be a keras.Model or a callable that builds one; received "
            f"{type(model).__name__}"
        )
    if config.fused_batch_norm:
        with scope_of(strategy):
            built = fuse_batch_norm(built)
    return built


def _check_model_precision(model: keras.Model, precision: str) -> None:
    """Refuse a ready model built under another dtype policy than ``precision``."""
    compute = sorted({layer.compute_dtype for layer in model.layers if layer.weights})
    if ("bfloat16" in compute) != (precision == "mixed_bfloat16"):
        raise ValueError(
            f"precision={precision!r} but model {model.name!r} computes in "
            f"{compute}; pass a model factory so the Trainer builds it under the "
            "policy, or build it inside kerasimgcls.precision_scope(precision)"
        )


def _base_optimizer(config: TrainingConfig, instance: Any) -> Any:
    if instance is not None:
        return instance
    spec = config.optimizer
    if isinstance(spec, Mapping):  # a description read back from run.json
        return keras.optimizers.get(
            {"class_name": spec["type"], "config": dict(spec["config"])}
        )
    if config.optimizer_kwargs:
        return keras.optimizers.get(
            {"class_name": spec, "config": dict(config.optimizer_kwargs)}
        )
    return keras.optimizers.get(spec)


def make_optimizer(
    config: TrainingConfig,
    *,
    instance: Any,
    schedule: Any,
    total_steps: int,
    steps_per_epoch: int,
) -> keras.optimizers.Optimizer:
    """A new optimizer as the configuration says, with its learning-rate schedule.

    Raises:
        ValueError: If a named schedule has no peak learning rate.
    """
    base = _base_optimizer(config, instance)
    options = base.get_config()
    peak = config.learning_rate
    if peak is None:
        current = options.get("learning_rate")
        peak = float(current) if isinstance(current, numbers.Real) else None
    warmup_steps = round(config.warmup_epochs * steps_per_epoch)
    rate: Any
    if schedule is not None:
        rate = schedule
    elif config.schedule in (None, "constant") and not warmup_steps:
        rate = peak
    else:
        if peak is None:
            raise ValueError(
                "a schedule needs a peak learning rate; pass learning_rate="
            )
        rate = make_schedule(
            str(config.schedule or "constant"),
            peak,
            total_steps=total_steps,
            warmup_steps=warmup_steps,
        )
    if rate is not None:
        options["learning_rate"] = rate
    optimizer: keras.optimizers.Optimizer = type(base).from_config(options)
    return optimizer


def resolve_class_weight(
    class_weight: str | Mapping[int, float] | None, data: ImageDataset
) -> dict[int, float] | None:
    """Keras' ``class_weight`` for ``data`` (``"balanced"`` from scikit-learn).

    Raises:
        ValueError: If a key is not a class index of ``data``.
    """
    if class_weight is None:
        return None
    if class_weight == "balanced":
        from sklearn.utils.class_weight import compute_class_weight

        present = np.flatnonzero(data.train.class_counts(data.num_classes))
        weights = compute_class_weight("balanced", classes=present, y=data.train.labels)
        balanced = dict.fromkeys(range(data.num_classes), 0.0)
        balanced.update(
            {int(c): float(w) for c, w in zip(present, weights, strict=True)}
        )
        return balanced
    assert isinstance(class_weight, Mapping)
    mapping = {int(key): float(value) for key, value in class_weight.items()}
    unknown = sorted(key for key in mapping if key >= data.num_classes)
    if unknown:
        raise ValueError(
            f"class_weight keys must be class indices in [0, {data.num_classes}); "
            f"received {unknown}"
        )
    return {index: mapping.get(index, 1.0) for index in range(data.num_classes)}


def variables_signature(model: keras.Model) -> str:
    shapes = [list(map(int, variable.shape)) for variable in model.variables]
    return hashlib.sha256(json.dumps(shapes).encode()).hexdigest()[:16]


def weights_digest(model: keras.Model) -> str:
    digest = hashlib.sha256()
    for value in model.get_weights():
        digest.update(np.ascontiguousarray(value).tobytes())
    return digest.hexdigest()


def trainer_config(
    config: TrainingConfig | None,
    settings: dict[str, Any],
    optimizer: Any,
    schedule: Any,
    loss: Any,
) -> TrainingConfig:
    """The Trainer's configuration: ``config`` with the keyword ``settings`` over it.

    Raises:
        TypeError: If ``config`` is not a configuration or a setting is unknown.
        ValueError: If a setting is out of range, or ``label_smoothing`` comes
            with a custom ``loss``.
    """
    if config is not None and not isinstance(config, TrainingConfig):
        raise TypeError(
            f"config must be a TrainingConfig; received {type(config).__name__}"
        )
    # A Recipe is a TrainingConfig with a name: keep the configuration only.
    base = TrainingConfig.from_dict((config or TrainingConfig()).to_dict())
    fields = {field.name for field in dataclasses.fields(TrainingConfig)}
    unknown = sorted(set(settings) - fields)
    if unknown:
        raise TypeError(
            f"Trainer got unknown settings {unknown}; the settings are the fields "
            f"of TrainingConfig: {sorted(fields)}"
        )
    given = {key: value for key, value in settings.items() if value is not None}
    if isinstance(optimizer, str):
        given.update(optimizer=optimizer, optimizer_kwargs={})
    elif optimizer is not None:
        given.update(optimizer=describe(optimizer), optimizer_kwargs={})
    if isinstance(schedule, str):
        given["schedule"] = schedule
    elif schedule is not None:
        given["schedule"] = None  # recorded as its description (fit_config)
    checked = dataclasses.replace(base, **given)
    if loss is not None and checked.label_smoothing:
        raise ValueError(
            "label_smoothing applies to the default loss only; received a custom "
            f"loss={loss!r} and label_smoothing={checked.label_smoothing!r}: set "
            "the smoothing on your loss instead"
        )
    return checked


def with_fit_arguments(
    config: TrainingConfig, epochs: int | None, batch_size: int | None, augment: Any
) -> TrainingConfig:
    """``config`` with the arguments of ``fit`` that are not ``None`` over it."""
    given: dict[str, Any] = {"epochs": epochs, "batch_size": batch_size}
    if augment is not None:
        given["augment"] = dataclasses.asdict(augment)
    changes = {key: value for key, value in given.items() if value is not None}
    return dataclasses.replace(config, **changes)


def compile_model(
    context: RunContext, *, total_steps: int, steps_per_epoch: int
) -> bool:
    """Compile the run's model with its optimizer, loss and metrics."""
    compilation = context.compilation
    loss = compilation.loss
    if loss is None:
        loss = keras.losses.CategoricalCrossentropy(
            label_smoothing=context.config.label_smoothing
        )
    with scope_of(context.strategy):  # the optimizer's variables too
        optimizer = make_optimizer(
            context.config,
            instance=None
            if isinstance(compilation.optimizer, str)
            else compilation.optimizer,
            schedule=None
            if isinstance(compilation.schedule, str)
            else compilation.schedule,
            total_steps=total_steps,
            steps_per_epoch=steps_per_epoch,
        )
        context.model.compile(
            optimizer=optimizer,
            loss=loss,
            metrics=list(compilation.metrics),
            steps_per_execution=context.config.steps_per_execution,
        )
    return True
