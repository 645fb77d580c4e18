"""Stop a run whose loss became NaN or infinite, like ``TerminateOnNaN``, and say where."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import keras

__all__ = ["DivergenceGuard", "TrainingDivergedError"]


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the message says at which epoch and step.

    :meth:`Trainer.fit` raises it after stopping the run; the run directory keeps
    the checkpoint of the last good epoch, so a lower learning rate can take over.

    Example:
        >>> from kerasimgcls import TrainingDivergedError
        >>> issubclass(TrainingDivergedError, RuntimeError)
        True
    """


class DivergenceGuard(keras.callbacks.Callback):  # type: ignore[misc]
    """Stop training at the first non-finite loss and remember where it was.

    Keras' ``TerminateOnNaN`` stops silently; this one records ``(epoch, step)``
    (1-based) in :attr:`diverged`, which the history recorder and the run
    checkpoint read so that the diverged epoch is neither recorded nor saved.

    Args:
        steps_per_epoch: Steps of an epoch (the step named when only the epoch's
            mean loss is non-finite).
    """

    def __init__(self, steps_per_epoch: int) -> None:
        super().__init__()
        self.steps_per_epoch = steps_per_epoch
        self.diverged: tuple[int, int] | None = None
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch

    def on_train_batch_end(
        self, batch: int, logs: dict[str, Any] | None = None
    ) -> None:
        if self.diverged is None and not _finite((logs or {}).get("loss")):
            self.diverged = (self._epoch + 1, batch + 1)
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.diverged is None and not _finite((logs or {}).get("loss")):
            self.diverged = (epoch + 1, self.steps_per_epoch)
            self.model.stop_training = True

    def error(self, checkpoint: Path | None, completed: int) -> TrainingDivergedError:
        """The error to raise, naming the ``checkpoint`` of ``completed`` epochs kept."""
        assert self.diverged is not None
        epoch, step = self.diverged
        kept = None
        if checkpoint is not None and completed:
            kept = (
                f"the last good checkpoint (epoch {completed}) is kept in "
                f"{str(checkpoint)!r}"
            )
        return TrainingDivergedError(
            f"the training loss became NaN or infinite at epoch {epoch}, step {step}"
            f"{'; ' + kept if kept else ''}; lower the learning rate or check the data"
        )


def _finite(loss: Any) -> bool:
    return loss is None or math.isfinite(float(loss))
