"""The callbacks of one ``Trainer.fit``, in the order Keras calls them."""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import keras

from kerasimgcls.data import Augmentation, ImageDataset, epochs_dataset, to_tf_dataset
from kerasimgcls.training._averaging import WeightAveraging
from kerasimgcls.training._build import describe, variables_signature
from kerasimgcls.training._checkpoint import RunCheckpoint
from kerasimgcls.training._context import RunContext
from kerasimgcls.training._distribute import shard_by_data
from kerasimgcls.training._divergence import DivergenceGuard
from kerasimgcls.training._early_stopping import ResumableEarlyStopping
from kerasimgcls.training._fine_tune import FineTune
from kerasimgcls.training._history import History
from kerasimgcls.training._precise_bn import PreciseBatchNorm
from kerasimgcls.training._recorder import HistoryRecorder

__all__ = ["RunCallbacks", "fit_config", "fit_datasets", "run_callbacks"]


class RunCallbacks(NamedTuple):
    """The callback list of a run, and the callbacks the Trainer asks afterwards."""

    callbacks: list[keras.callbacks.Callback]
    guard: DivergenceGuard
    early: ResumableEarlyStopping | None
    checkpoint: RunCheckpoint
    averaging: WeightAveraging | None


def run_callbacks(
    context: RunContext, data: ImageDataset, steps: int, history: History
) -> RunCallbacks:
    """Fine-tuning, averaging, precise BN, guard, recorder, early stopping, yours.

    Then the user's callbacks, and the run checkpoint last.

    Fine-tuning comes first, so each epoch trains what its phase says; weight
    averaging swaps the average in before precise batch norm re-estimates the
    statistics each validation sees; the checkpoint comes last, so that it saves
    the state every other callback reached at the end of the epoch.
    """
    config = context.config
    guard = DivergenceGuard(steps)
    callbacks: list[keras.callbacks.Callback] = []
    if config.fine_tune is not None:
        callbacks.append(FineTune(**config.fine_tune))
    averaging = None
    if config.weight_averaging is not None:
        averaging = WeightAveraging(**config.weight_averaging)
        callbacks.append(averaging)
    if config.precise_batch_norm:
        callbacks.append(
            PreciseBatchNorm(
                data.train.images,
                input_scaling=context.scaling.scaling,
                seed=config.seed,
            )
        )
    callbacks += [guard, HistoryRecorder(history, guard)]
    early = None
    if config.early_stopping_patience or config.restore_best_weights:
        monitor = "val_loss" if data.validation is not None else "loss"
        early = ResumableEarlyStopping(monitor, patience=config.early_stopping_patience)
        callbacks.append(early)
    callbacks += context.callbacks
    recorded = fit_config(context, data, steps)
    checkpoint = RunCheckpoint(context.directory, recorded, callbacks, history, guard)
    return RunCallbacks([*callbacks, checkpoint], guard, early, checkpoint, averaging)


def fit_config(context: RunContext, data: ImageDataset, steps: int) -> dict[str, Any]:
    """``run.json``'s ``config``: the settings, and what the data made of them.

    The fields of the :class:`~kerasimgcls.TrainingConfig`, the descriptions of
    the Keras objects given to the Trainer (a schedule, loss, metrics), the
    model's variable shapes, the dataset's fingerprint and the steps per epoch:
    everything a resumed run must share, as JSON data.
    """
    schedule = context.compilation.schedule
    recorded = {
        **context.config.to_dict(),
        "schedule": context.config.schedule
        if schedule is None or isinstance(schedule, str)
        else describe(schedule),
        "loss": describe(context.compilation.loss),
        "metrics": [describe(metric) for metric in context.compilation.metrics],
        "model_variables": variables_signature(context.model),
        "dataset_fingerprint": data.fingerprint,
        "steps_per_epoch": steps,
    }
    normalised: dict[str, Any] = json.loads(json.dumps(recorded))
    return normalised


def fit_datasets(
    context: RunContext, data: ImageDataset, start: int
) -> tuple[Any, Any]:
    """The training batches of epochs ``start ..`` and the validation batches.

    The training order and augmentation come from ``(seed, epoch, batch)``, so a
    run resumed at ``start`` sees the batches an uninterrupted run would have.
    """
    config = context.config
    augment = config.augment
    train, _ = epochs_dataset(
        data.train,
        num_classes=data.num_classes,
        batch_size=config.batch_size,
        initial_epoch=start,
        epochs=config.epochs,
        shuffle=True,
        seed=config.seed,
        input_scaling=context.scaling.scaling,
        augment=None if augment is None else Augmentation(**dict(augment)),
    )
    validation = None
    if data.validation is not None:
        validation = to_tf_dataset(
            data.validation,
            num_classes=data.num_classes,
            batch_size=config.batch_size,
            input_scaling=context.scaling.scaling,
        )
    return shard_by_data(train, context.strategy), validation
