"""Weight averaging inside ``fit``: an exponential moving average, or lookahead.

An exponential moving average (EMA) of the weights generalises better than the
last weights of a noisy SGD run and costs one copy of the model. Lookahead
(Zhang et al., 2019) goes one step further and pulls the training weights back to
the average every few steps; cifar10-airbench's ``airbench94`` does that every 5
steps with a decay that grows as ``(t / T) ** 3``, so early training is left
alone and the end of the run is strongly averaged (13.5 -> 12.0 epochs to 94% in
its ablation).

The average covers every floating-point variable of the model, trainable or not:
a batch-norm layer's moving mean and variance are averaged with the weights they
belong to, so the averaged network's statistics describe the averaged network.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from numpy.typing import NDArray

from kerasimgcls.training._callback_args import (
    AVERAGING_ARGUMENTS,
    checked_arguments,
)

__all__ = ["WeightAveraging"]

_PREFIX = "average/"


def _averaged_variables(model: keras.Model) -> list[Any]:
    """The model's floating-point variables (weights and batch-norm statistics)."""
    variables = []
    seen: set[int] = set()
    for variable in model.weights:
        dtype = keras.backend.standardize_dtype(variable.dtype)
        if "float" in dtype and id(variable) not in seen:
            seen.add(id(variable))
            variables.append(variable)
    return variables


class WeightAveraging(keras.callbacks.Callback):  # type: ignore[misc]
    """A Keras callback keeping an exponential moving average of the weights.

    Every ``every`` training steps the average moves towards the model's variables,
    ``average += (1 - d) * (variables - average)`` with the per-update decay
    ``d = decay ** every * (t / total_steps) ** ramp_power`` at step ``t`` (so
    ``ramp_power=0`` is a plain EMA with ``decay`` per step, and ``ramp_power=3``
    leaves the start of training unaveraged as airbench94 does). With
    ``lookahead=True`` the model's variables are then set to the average (the
    training continues from it). Every floating-point variable is averaged,
    trainable or not, so batch-norm moving statistics are covered.

    While ``fit`` validates (``on_test_begin`` to ``on_test_end``) the model holds
    the average if ``validate_with_average``, and the training weights again
    afterwards; at the end of training the model keeps the average.

    The state (the step and the average) goes through :meth:`state_dict` and
    :meth:`load_state_dict`, so a run resumed from a checkpoint that also restores
    the model and optimizer continues bit for bit as an uninterrupted run.

    Args:
        decay: Decay per training step, in [0, 1]; 0 copies the weights, 1
            never moves the average.
        every: Update the average every this many training steps (airbench94: 5).
        lookahead: Set the model's variables to the average after each update.
        ramp_power: Exponent of the ``(t / total_steps)`` factor of the decay; 0
            for a constant decay (airbench94: 3).
        total_steps: Steps of the whole run, for the ramp; ``None`` takes
            ``epochs * steps_per_epoch`` from ``fit``.
        validate_with_average: Validate (inside ``fit``) with the averaged
            weights rather than the training weights.

    Raises:
        TypeError: If a number is not one, or ``lookahead`` or
            ``validate_with_average`` is not a bool.
        ValueError: If ``decay`` is outside [0, 1], ``every`` or ``total_steps`` is
            below 1, or ``ramp_power`` is negative.

    Example:
        >>> import numpy as np
        >>> from kerasimgcls import WeightAveraging, build_cifar_cnn
        >>> images = np.random.default_rng(0).random((32, 8, 8, 1), np.float32)
        >>> labels = np.eye(2)[np.arange(32) % 2]
        >>> model = build_cifar_cnn(input_shape=(8, 8, 1), num_classes=2)
        >>> averaging = WeightAveraging(decay=0.95, every=5, lookahead=True,
        ...                             ramp_power=3.0)
        >>> _ = model.fit(images, labels, batch_size=4, epochs=2, verbose=0,
        ...               callbacks=[averaging])
        >>> averaging.state_dict()["step"]
        16
    """

    decay: float
    every: int
    lookahead: bool
    ramp_power: float
    total_steps: int | None
    validate_with_average: bool

    def __init__(
        self,
        decay: float = 0.999,
        *,
        every: int = 1,
        lookahead: bool = False,
        ramp_power: float = 0.0,
        total_steps: int | None = None,
        validate_with_average: bool = True,
    ) -> None:
        super().__init__()
        given = locals()  # the arguments, by the names of the table
        checked = checked_arguments(
            AVERAGING_ARGUMENTS, {key: given[key] for key in AVERAGING_ARGUMENTS}
        )
        self.__dict__.update(checked)
        self._step = 0
        self._updates = 0
        self._epoch_start = 0
        self._average: list[NDArray[Any]] | None = None
        self._pending: dict[str, Any] | None = None
        self._saved: list[NDArray[Any]] | None = None
        self._run_steps: int | None = None
        self._training = False

    # ------------------------------------------------------------ the update
    def decay_at(self, step: int) -> float:
        """Return the decay of the update made at training step ``step``.

        Example:
            >>> from kerasimgcls import WeightAveraging
            >>> averaging = WeightAveraging(0.95, every=5, ramp_power=3.0, total_steps=100)
            >>> round(averaging.decay_at(50), 4)  # 0.95 ** 5 * 0.5 ** 3
            0.0967
        """
        value = float(self.decay) ** self.every
        if self.ramp_power:
            total = self.total_steps or self._run_steps
            if total is None:
                raise RuntimeError(
                    "ramp_power needs the run's length: pass total_steps, or use "
                    "a dataset whose steps per epoch fit() knows"
                )
            value *= min(step / total, 1.0) ** self.ramp_power
        return value

    def _variables(self) -> list[Any]:
        return _averaged_variables(self.model)

    def _snapshot(self) -> list[NDArray[Any]]:
        return [np.array(keras.ops.convert_to_numpy(v)) for v in self._variables()]

    def _assign(self, values: list[NDArray[Any]]) -> None:
        for variable, value in zip(self._variables(), values, strict=True):
            variable.assign(value)

    def _update(self, step: int) -> None:
        if self._average is None:  # a batch end outside fit(): nothing to average
            return
        keep = self.decay_at(step)
        current = self._snapshot()
        for average, value in zip(self._average, current, strict=True):
            # lerp in the variable's own dtype: average += (1 - d) (value - average)
            average += np.asarray(1.0 - keep, average.dtype) * (value - average)
        self._updates += 1
        if self.lookahead:
            self._assign(self._average)

    # ------------------------------------------------------------- callbacks
    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Start the average from the loaded state or from the current weights."""
        params = self.params or {}
        epochs, steps = params.get("epochs"), params.get("steps")
        self._run_steps = int(epochs) * int(steps) if epochs and steps else None
        if self.ramp_power and self.total_steps is None and self._run_steps is None:
            raise RuntimeError(
                "WeightAveraging(ramp_power>0) needs the run's length: pass "
                "total_steps, or give fit() steps_per_epoch"
            )
        if self._pending is not None:
            self._restore(self._pending)
            self._pending = None
        else:
            self._average = self._snapshot()
        self._training = True

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Place the step clock at the start of ``epoch`` (exact after a resume)."""
        steps = (self.params or {}).get("steps")
        self._epoch_start = int(epoch) * int(steps) if steps else self._step

    def on_train_batch_end(
        self, batch: int, logs: dict[str, Any] | None = None
    ) -> None:
        """Advance the step clock; update the average at each multiple of ``every``."""
        # ``batch`` is the last step of the call (several with steps_per_execution).
        step = self._epoch_start + int(batch) + 1
        if step // self.every > self._step // self.every:
            self._update(step)
        self._step = step

    def on_test_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Swap the average in for a validation inside ``fit``."""
        if self._training and self.validate_with_average and self._average is not None:
            self._saved = self._snapshot()
            self._assign(self._average)

    def on_test_end(self, logs: dict[str, Any] | None = None) -> None:
        """Give the training weights back after the validation."""
        if self._saved is not None:
            self._assign(self._saved)
            self._saved = None

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        """Leave the averaged weights in the model."""
        self._training = False
        if self._average is not None:
            self._assign(self._average)

    def apply_average(self, model: keras.Model | None = None) -> None:
        """Put the average into the model, as the end of ``fit`` does.

        For a run whose training is over, restored from a checkpoint with
        :meth:`load_state_dict`: the model then ends as the uninterrupted run did.

        Args:
            model: The model (the one ``fit`` trained); ``None`` keeps the one
                the callback was given.

        Example:
            >>> from kerasimgcls import WeightAveraging, build_cifar_cnn
            >>> model = build_cifar_cnn(input_shape=(8, 8, 1), num_classes=2)
            >>> averaging = WeightAveraging()
            >>> averaging.apply_average(model)  # no state yet: nothing changes
        """
        if model is not None:
            self.set_model(model)
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self._restore(pending)
        if self._average is not None:
            self._assign(self._average)

    def summary(self) -> dict[str, Any]:
        """Return what ``run.json`` records: the settings, steps and updates."""
        return {
            "decay": self.decay,
            "every": self.every,
            "lookahead": self.lookahead,
            "ramp_power": self.ramp_power,
            "steps": self._step,
            "updates": self._updates,
        }

    # ----------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Return the state: ``step``, ``updates`` and one array per variable.

        The arrays are keyed ``"average/<variable path>"`` (float numpy arrays, the
        variables' own dtype); before training has started they are absent.

        Example:
            >>> from kerasimgcls import WeightAveraging
            >>> WeightAveraging().state_dict()
            {'step': 0, 'updates': 0}
        """
        state: dict[str, Any] = {"step": self._step, "updates": self._updates}
        if self._pending is not None:
            return dict(self._pending)
        if self._average is not None:
            for variable, average in zip(self._variables(), self._average, strict=True):
                state[_PREFIX + variable.path] = average.copy()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned (before or during ``fit``).

        Raises:
            ValueError: If ``state`` lacks ``step`` or, once the model is known,
                its arrays do not match the model's variables.
        """
        if not isinstance(state, dict) or "step" not in state:
            raise ValueError(
                "state must be a dict returned by WeightAveraging.state_dict(); "
                f"received {type(state).__name__} without a 'step' entry"
            )
        self._pending = dict(state)
        if self._training:
            self._restore(self._pending)
            self._pending = None

    def _restore(self, state: dict[str, Any]) -> None:
        self._step = int(state["step"])
        self._updates = int(state.get("updates", 0))
        stored = {
            k[len(_PREFIX) :]: v for k, v in state.items() if k.startswith(_PREFIX)
        }
        if not stored:  # saved before training began: start from the weights
            self._average = self._snapshot()
            return
        variables = self._variables()
        paths = [variable.path for variable in variables]
        if sorted(paths) != sorted(stored):
            missing = sorted(set(paths) - set(stored))
            extra = sorted(set(stored) - set(paths))
            raise ValueError(
                "the WeightAveraging state does not match the model's variables; "
                f"missing {missing[:5]}, unexpected {extra[:5]}"
            )
        average = []
        for variable in variables:
            value = np.array(stored[variable.path])
            if tuple(value.shape) != tuple(variable.shape):
                raise ValueError(
                    f"the WeightAveraging state of {variable.path!r} has shape "
                    f"{value.shape}; the model's variable has {tuple(variable.shape)}"
                )
            average.append(
                value.astype(keras.backend.standardize_dtype(variable.dtype))
            )
        self._average = average
