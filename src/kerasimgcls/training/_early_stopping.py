"""Early stopping and "keep the best epoch", Keras' own, made resumable."""

from __future__ import annotations

import math
from typing import Any

import keras

from kerasimgcls.training._state import early_stopping_state, load_early_stopping_state

__all__ = ["ResumableEarlyStopping"]


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):  # type: ignore[misc]
    """:class:`keras.callbacks.EarlyStopping` whose state survives a crash.

    The rule is Keras' (stop after ``patience`` epochs without improvement of
    ``monitor``); the additions: ``patience=None`` never stops but still tracks the
    best epoch, :meth:`state_dict`/:meth:`load_state_dict` carry the state through
    the run checkpoint, and the best weights are put back by :meth:`keep_best`
    (called by the :class:`~kerasimgcls.Trainer` when the run ends, also for a
    finished run reloaded from its checkpoint) rather than in ``on_train_end``.

    Args:
        monitor: The logged quantity to minimise, such as ``"val_loss"``.
        patience: Epochs without improvement before stopping; ``None`` never stops.
        restore_best_weights: Whether :meth:`keep_best` restores the best epoch.

    Example:
        >>> from kerasimgcls.training import ResumableEarlyStopping
        >>> stopping = ResumableEarlyStopping("val_loss", patience=2)
        >>> stopping.on_train_begin()
        >>> sorted(stopping.state_dict())
        ['best', 'best_epoch', 'best_weights', 'stopped_epoch', 'wait']
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        *,
        patience: int | None = None,
        restore_best_weights: bool = True,
    ) -> None:
        super().__init__(
            monitor=monitor,
            patience=math.inf if patience is None else patience,
            mode="min",
            restore_best_weights=restore_best_weights,
        )

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        """Nothing: :meth:`keep_best` restores, after a resume too."""

    def state_dict(self) -> dict[str, Any]:
        """Return ``wait``, ``best``, ``best_epoch``, ``stopped_epoch``, best weights."""
        return early_stopping_state(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the state :meth:`state_dict` returned."""
        load_early_stopping_state(self, state)

    @property
    def stopped_at(self) -> int | None:
        """The 1-based epoch after which training stopped early, or ``None``."""
        return self.stopped_epoch + 1 if self.stopped_epoch else None

    def keep_best(self, model: keras.Model) -> dict[str, Any] | None:
        """Restore the best epoch's weights into ``model`` if asked; say which and why.

        ``model`` is passed, not taken from the callback, because a finished run
        reloaded from its checkpoint calls this without ``fit``.
        """
        if not self.restore_best_weights or self.best_weights is None:
            return None
        model.set_weights(self.best_weights)
        return {
            "epoch": int(self.best_epoch) + 1,
            "why": f"lowest {self.monitor}",
            self.monitor: None if self.best is None else float(self.best),
        }
