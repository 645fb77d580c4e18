"""Record one history row per epoch: the logs, the learning rate and the time."""

from __future__ import annotations

import time
from typing import Any

import keras

from kerasimgcls.training._divergence import DivergenceGuard
from kerasimgcls.training._history import History

__all__ = ["HistoryRecorder"]


def current_learning_rate(optimizer: keras.optimizers.Optimizer) -> float:
    """The learning rate the optimizer's last step used."""
    # Keras 3 has no public accessor for the schedule object: the public
    # ``optimizer.learning_rate`` evaluates it at the *next* step (one row later
    # than what the last step used), so the schedule is read and evaluated here.
    rate = optimizer._learning_rate
    if isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
        step = max(int(optimizer.iterations.numpy()) - 1, 0)
        return float(keras.ops.convert_to_numpy(rate(step)))
    return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


class HistoryRecorder(keras.callbacks.Callback):  # type: ignore[misc]
    """Append each completed epoch to a :class:`History`.

    A row holds ``epoch`` (1-based), every logged loss and metric as a float,
    ``learning_rate`` (the rate of the epoch's last step) and ``epoch_time`` in
    seconds. An epoch the ``guard`` saw diverge is not recorded.

    Args:
        history: The history to append to (the restored one when resuming).
        guard: The run's divergence guard, if any.
    """

    def __init__(self, history: History, guard: DivergenceGuard | None = None) -> None:
        super().__init__()
        self.history = history
        self.guard = guard
        self._epoch_start = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch_start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.guard is not None and self.guard.diverged is not None:
            return
        row: dict[str, Any] = {"epoch": epoch + 1}
        row.update(
            {
                key: float(value)
                for key, value in (logs or {}).items()
                if key != "learning_rate"
            }
        )
        row["learning_rate"] = current_learning_rate(self.model.optimizer)
        row["epoch_time"] = round(time.perf_counter() - self._epoch_start, 3)
        self.history.append(row)
