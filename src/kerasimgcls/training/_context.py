"""What the Trainer's helpers need of a run: a small typed context, not the Trainer.

:class:`RunContext` is made by :meth:`Trainer.fit` once its configuration is
final; building, compiling, the callbacks, the datasets, the finish and
``run.json`` read it, and nothing else of the Trainer (Lightning's connectors
take the pieces they use, not the trainer's private attributes).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import keras

    from kerasimgcls.inference._scaling import ScalingDecision
    from kerasimgcls.training._config import TrainingConfig
    from kerasimgcls.training._run_dir import RunDirectory

__all__ = ["Compilation", "RunContext"]


@dataclass(frozen=True)
class Compilation:
    """What ``model.compile`` is given: the Trainer's Keras objects, or names."""

    optimizer: str | keras.optimizers.Optimizer | None
    schedule: str | keras.optimizers.schedules.LearningRateSchedule | None
    loss: str | keras.losses.Loss | None
    metrics: Sequence[Any]


@dataclass(frozen=True)
class RunContext:
    """One training run as its helpers see it.

    Attributes:
        config: The final configuration (``fit``'s arguments applied).
        model: The model being trained.
        scaling: How raw pixels are fed to it.
        strategy: The ``tf.distribute`` strategy, or ``None``.
        directory: The run directory (writes nothing without a path).
        compilation: The optimizer, schedule, loss and metrics to compile with.
        callbacks: The user's callbacks, in order.
        metadata: Extra ``run.json`` sections the caller gave.
    """

    config: TrainingConfig
    model: keras.Model
    scaling: ScalingDecision
    strategy: Any
    directory: RunDirectory
    compilation: Compilation
    callbacks: Sequence[keras.callbacks.Callback] = ()
    metadata: Mapping[str, Any] | None = None
