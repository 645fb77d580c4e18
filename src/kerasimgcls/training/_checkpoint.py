"""The run checkpoint: save everything after each epoch, restore it on a restart.

Like :class:`keras.callbacks.BackupAndRestore`, a restarted run continues from the
last completed epoch; unlike it, one file holds all of the state an exact resume
needs (see :mod:`kerasimgcls.training._resume`), the configuration is compared
first, and every stateful callback (see :mod:`kerasimgcls.training._state`) is
saved and restored with it. The order of a restore follows Lightning's
checkpoint connector: the model (and optimizer), then the callbacks, then the
loop state (completed epochs, history, whether training had stopped).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

from kerasimgcls._validation import short_repr
from kerasimgcls.training._divergence import DivergenceGuard
from kerasimgcls.training._environment import utc_now
from kerasimgcls.training._history import History
from kerasimgcls.training._resume import (
    load_checkpoint,
    restore_variables,
    save_checkpoint,
    snapshot,
)
from kerasimgcls.training._run_dir import RunDirectory
from kerasimgcls.training._state import (
    callback_keys,
    get_state,
    pack,
    set_state,
    unpack,
)

__all__ = ["RESUME_SAFE_FIELDS", "RunCheckpoint"]

logger = logging.getLogger(__name__)

#: The settings a resumed run may change: the only keys of ``run.json``'s
#: ``"config"`` that :meth:`RunCheckpoint.restore` does not compare with the
#: checkpoint's. Each changes the speed of a run (``steps_per_execution``) or what
#: is scored after it (``tta``), never its result. Every other
#: :class:`~kerasimgcls.TrainingConfig` field, the model's arguments and variables,
#: the loss, the metrics and the dataset must match, or the resume is refused
#: (``tests/test_resume_fields.py`` changes each in turn).
RESUME_SAFE_FIELDS: tuple[str, ...] = ("steps_per_execution", "tta")


class RunCheckpoint(keras.callbacks.Callback):  # type: ignore[misc]
    """Checkpoint the run after every epoch; restore it before a resumed ``fit``.

    Put it last in the callback list, so that the states it saves are those the
    other callbacks reached at the end of the epoch, and so that the states it
    loads in ``on_train_begin`` are not reset by their own ``on_train_begin``.

    Args:
        run_dir: The run directory (saving is skipped where it does not write).
        config: The run's configuration; a checkpoint of another is refused.
        callbacks: The run's callbacks; the stateful ones are saved.
        history: The run's history, saved as loop state.
        guard: The divergence guard: a diverged epoch is not saved.
    """

    def __init__(
        self,
        run_dir: RunDirectory,
        config: dict[str, Any],
        callbacks: Sequence[keras.callbacks.Callback],
        history: History,
        guard: DivergenceGuard | None = None,
    ) -> None:
        super().__init__()
        self.run_dir = run_dir
        self.config = config
        self.stateful = callback_keys(callbacks)
        self.history = history
        self.guard = guard
        self.stopped = False
        self._pending: dict[str, dict[str, Any]] = {}
        self._saved_epoch = 0

    # ----------------------------------------------------------- restore
    def restore(self, model: keras.Model) -> int:
        """Restore the model, optimizer and loop state; return the completed epochs.

        The callbacks' states are loaded at ``on_train_begin`` (or by
        :meth:`load_callback_states` when no epoch is left to train).

        Raises:
            ValueError: If the checkpoint is unreadable, was written with another
                configuration or lacks the state of a stateful callback.
        """
        path = self.run_dir.checkpoint
        assert path is not None
        state, groups = load_checkpoint(path)
        self._check_config(state.get("config", {}))
        optimizer = model.optimizer
        if not optimizer.built:
            optimizer.build(model.trainable_variables)
        restore_variables(model.variables, groups.get("model", []), "model")
        restore_variables(optimizer.variables, groups.get("optimizer", []), "optimizer")
        self._pending = self._callback_states(state, groups)
        self.history.rows[:] = History(state["history"]).rows
        self.stopped = bool(state.get("stopped", False))
        epoch = self._saved_epoch = int(state["epoch"])
        logger.info("resuming %s after epoch %d", self.run_dir.path, epoch)
        return epoch

    def _check_config(self, saved: dict[str, Any]) -> None:
        differences = [
            f"{key}: checkpoint {saved.get(key)!r}, now {value!r}"
            for key, value in self.config.items()
            if key not in RESUME_SAFE_FIELDS and saved.get(key) != value
        ]
        if differences:
            raise ValueError(
                f"run_dir {str(self.run_dir.path)!r} holds a checkpoint of a "
                "different run; " + "; ".join(differences) + ". Use a new run_dir, "
                "or overwrite=True (--overwrite) to start again"
            )

    def _callback_states(
        self, state: dict[str, Any], groups: dict[str, list[np.ndarray[Any, Any]]]
    ) -> dict[str, dict[str, Any]]:
        saved = state.get("callbacks", {})
        missing = sorted(set(self.stateful) - set(saved))
        if missing:
            raise ValueError(
                f"the checkpoint in run_dir {str(self.run_dir.path)!r} holds no state "
                f"of the callbacks {missing}: they were not part of the run when it "
                "was saved. Resume with the same callbacks, use a new run_dir, or "
                "overwrite=True (--overwrite) to start again"
            )
        return {
            key: unpack(saved[key], groups.get(f"callback/{key}", []))
            for key in self.stateful
        }

    def load_callback_states(self) -> None:
        """Load the restored states into the callbacks (once)."""
        for key, state in self._pending.items():
            try:
                set_state(self.stateful[key], state)
            except (ValueError, TypeError, KeyError) as err:
                raise ValueError(
                    f"the checkpoint {str(self.run_dir.checkpoint)!r} holds a state of "
                    f"{key} that it cannot load ({short_repr(str(err), 200)}); delete "
                    "it (or pass overwrite=True) to start the run again"
                ) from err
        self._pending = {}

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.load_callback_states()

    # -------------------------------------------------------------- save
    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.guard is not None and self.guard.diverged is not None:
            return
        self.save(epoch + 1, stopped=bool(self.model.stop_training))

    def save_recorded_epoch(self) -> None:
        """Save the last recorded epoch if an interruption came before its save."""
        diverged = self.guard is not None and self.guard.diverged is not None
        if not diverged and len(self.history) > self._saved_epoch:
            self.save(len(self.history))

    def save(self, epoch: int, *, stopped: bool = False) -> None:
        """Write the checkpoint of ``epoch`` completed epochs, then the history files."""
        path = self.run_dir.checkpoint
        if path is None or not self.run_dir.writes:
            return
        groups: dict[str, list[np.ndarray[Any, Any]]] = {
            "model": snapshot(self.model.variables),
            "optimizer": snapshot(self.model.optimizer.variables),
        }
        callbacks: dict[str, Any] = {}
        for key, callback in self.stateful.items():
            arrays: list[np.ndarray[Any, Any]] = []
            callbacks[key] = pack(get_state(callback), arrays)
            groups[f"callback/{key}"] = arrays
        state = {
            "epoch": epoch,
            "history": self.history.rows,
            "stopped": stopped,
            "callbacks": callbacks,
            "config": self.config,
            "saved_at": utc_now(),
        }
        # Checkpoint first: the history files are derived from it on resume.
        save_checkpoint(path, state=state, groups=groups)
        self._saved_epoch = epoch
        self.run_dir.write_history(self.history)
