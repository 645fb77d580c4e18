"""The learning-rate range test (Smith, 2017; fastai's ``lr_find``).

Train for a short run while the learning rate grows exponentially from ``min_lr``
to ``max_lr``, record the (smoothed) loss, and suggest the rate where the loss falls
fastest. The model's variables are restored afterwards, exactly, and its own
optimizer is never touched: the test trains with a fresh copy.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import keras
import numpy as np
from numpy.typing import NDArray

from kerasimgcls._validation import check_positive_int, check_scalar
from kerasimgcls.analysis import plots
from kerasimgcls.data._dataset import ImageDataset, Split
from kerasimgcls.data._pipeline import PixelScaling, epochs_dataset
from kerasimgcls.data._steps import steps_per_epoch
from kerasimgcls.inference._scaling import InputScaling, resolve_input_scaling

__all__ = ["LearningRateFinderResult", "find_learning_rate"]


@dataclass(frozen=True, eq=False)
class LearningRateFinderResult:
    """The curve of a learning-rate range test and the suggested rate.

    Attributes:
        learning_rates: The rate of each step, increasing, float64.
        losses: The training loss of each step.
        smoothed_losses: The bias-corrected exponential moving average of the loss.
        suggestion: The rate where the smoothed loss falls fastest (before its
            minimum); always one of :attr:`learning_rates`.
        min_loss_learning_rate: The rate of the lowest smoothed loss.
        stopped_early: Whether the test stopped because the loss diverged.

    Example:
        >>> import numpy as np
        >>> from kerasimgcls import LearningRateFinderResult
        >>> result = LearningRateFinderResult(
        ...     learning_rates=np.array([1e-4, 1e-3, 1e-2, 1e-1]),
        ...     losses=np.array([2.3, 2.0, 1.2, 4.0]),
        ...     smoothed_losses=np.array([2.3, 2.1, 1.6, 2.8]),
        ...     suggestion=1e-2, min_loss_learning_rate=1e-2, stopped_early=True)
        >>> result.suggestion
        0.01
    """

    learning_rates: NDArray[np.float64] = field(repr=False)
    losses: NDArray[np.float64] = field(repr=False)
    smoothed_losses: NDArray[np.float64] = field(repr=False)
    suggestion: float
    min_loss_learning_rate: float
    stopped_early: bool

    def to_dict(self) -> dict[str, Any]:
        """Return the curve and the suggestion as JSON-ready values.

        Example:
            >>> import numpy as np
            >>> from kerasimgcls import LearningRateFinderResult
            >>> result = LearningRateFinderResult(
            ...     np.array([1e-3, 1e-2, 1e-1]), np.array([2.3, 1.5, 3.0]),
            ...     np.array([2.3, 1.9, 2.3]), 1e-2, 1e-2, False)
            >>> sorted(result.to_dict())[:3]
            ['learning_rates', 'losses', 'min_loss_learning_rate']
        """
        return {
            "learning_rates": self.learning_rates.tolist(),
            "losses": self.losses.tolist(),
            "min_loss_learning_rate": self.min_loss_learning_rate,
            "smoothed_losses": self.smoothed_losses.tolist(),
            "stopped_early": self.stopped_early,
            "suggestion": self.suggestion,
        }

    def plot(self, path: str | os.PathLike[str]) -> Path:
        """Draw the loss against the learning rate, with the suggestion, to ``path``.

        See :func:`~kerasimgcls.analysis.plots.plot_learning_rate_finder`.

        Example:
            >>> import tempfile
            >>> import numpy as np
            >>> from kerasimgcls import LearningRateFinderResult
            >>> result = LearningRateFinderResult(
            ...     np.array([1e-3, 1e-2, 1e-1]), np.array([2.3, 1.5, 3.0]),
            ...     np.array([2.3, 1.9, 2.3]), 1e-2, 1e-2, False)
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     path = result.plot(f"{tmp}/lr_find.png")
        """
        return plots.plot_learning_rate_finder(self, path)


def _check_positive_float(value: object, name: str) -> float:
    return float(
        check_scalar(
            value, name, min_val=0, include_min=False, expected="a positive float"
        )
    )


def _fresh_optimizer(model: keras.Model, optimizer: Any) -> keras.optimizers.Optimizer:
    if optimizer is None:
        optimizer = getattr(model, "optimizer", None)
        if optimizer is None:
            return keras.optimizers.Adam()
    if isinstance(optimizer, str):
        try:
            optimizer = keras.optimizers.get(optimizer)
        except ValueError as err:
            raise ValueError(
                f"optimizer must be a Keras optimizer or its name such as 'adam'; "
                f"received optimizer={optimizer!r}"
            ) from err
    if not isinstance(optimizer, keras.optimizers.Optimizer):
        raise TypeError(
            "optimizer must be None, a Keras optimizer or its name such as 'adam'; "
            f"received {type(optimizer).__name__}"
        )
    config = optimizer.get_config()
    config["learning_rate"] = 1e-3  # a float, so the test can set it every step
    fresh: keras.optimizers.Optimizer = type(optimizer).from_config(config)
    return fresh


def _suggest(
    learning_rates: NDArray[np.float64], smoothed: NDArray[np.float64]
) -> tuple[float, float]:
    lowest = int(np.argmin(smoothed))
    min_loss_rate = float(learning_rates[lowest])
    # The first steps are dominated by the smoothing's warm-up: skip a tenth.
    skip = min(len(smoothed) // 10, max(lowest - 1, 0))
    if lowest - skip < 2:
        return float(learning_rates[lowest]), min_loss_rate
    window = smoothed[skip : lowest + 1]
    slopes = np.gradient(window, np.log10(learning_rates[skip : lowest + 1]))
    return float(learning_rates[skip + int(np.argmin(slopes))]), min_loss_rate


def _train_split(data: ImageDataset | Split) -> Split:
    if isinstance(data, ImageDataset):
        return data.train
    if isinstance(data, Split):
        return data
    raise TypeError(
        "data must be an ImageDataset (its train split is used) or a Split; "
        f"received {type(data).__name__}"
    )


class _Range(NamedTuple):
    """The checked numbers of a range test."""

    min_lr: float
    max_lr: float
    num_steps: int
    batch_size: int
    smoothing: float
    stop_factor: float | None


def _check_range(
    min_lr: object,
    max_lr: object,
    num_steps: object,
    batch_size: object,
    smoothing: object,
    stop_factor: object,
) -> _Range:
    """Check :func:`find_learning_rate`'s numbers, in the order of its signature."""
    low = _check_positive_float(min_lr, "min_lr")
    high = _check_positive_float(max_lr, "max_lr")
    if low >= high:
        raise ValueError(
            f"min_lr must be below max_lr; received min_lr={low!r}, max_lr={high!r}"
        )
    steps = check_positive_int(num_steps, "num_steps")
    if steps < 2:
        raise ValueError(f"num_steps must be at least 2; received num_steps={steps}")
    batch = check_positive_int(batch_size, "batch_size")
    weight = check_scalar(
        smoothing,
        "smoothing",
        min_val=0,
        max_val=1,
        include_max=False,
        expected="in [0, 1)",
    )
    stop = check_scalar(
        stop_factor,
        "stop_factor",
        min_val=1,
        include_min=False,
        allow_none=True,
        expected="above 1 or None",
    )
    return _Range(
        low, high, steps, batch, float(weight), None if stop is None else float(stop)
    )


def _check_fits(model: keras.Model, split: Split) -> None:
    """Raise unless ``split`` has images of the shape ``model`` takes."""
    expected = tuple(int(size) for size in model.input_shape[1:])
    if split.image_shape != expected:
        raise ValueError(
            f"data images must have shape {expected} to match the model's input; "
            f"received {split.image_shape}"
        )
    if len(split) == 0:
        raise ValueError("data has no training images")


def find_learning_rate(
    model: keras.Model,
    data: ImageDataset | Split,
    *,
    min_lr: float = 1e-6,
    max_lr: float = 1.0,
    num_steps: int = 100,
    batch_size: int = 64,
    optimizer: str | keras.optimizers.Optimizer | None = None,
    smoothing: float = 0.9,
    stop_factor: float | None = 4.0,
    seed: int = 0,
    input_scaling: InputScaling = "auto",
) -> LearningRateFinderResult:
    """Run a learning-rate range test and suggest a learning rate.

    For ``num_steps`` training steps the rate grows exponentially from ``min_lr``
    to ``max_lr`` while the loss is recorded and smoothed. The test stops early
    once the smoothed loss exceeds ``stop_factor`` times its minimum. It runs
    through ``keras.Model.fit`` (one batch per epoch, a callback setting each
    rate) on a wrapper that shares the model's layers, with a fresh optimizer.
    Afterwards every variable of the model (weights, batch-norm statistics,
    dropout seeds) is restored exactly; the model's own optimizer and compile
    settings are never used, so they are unchanged too.

    Args:
        model: The model to test, ending in a softmax over one-hot labels; the
            images are fed as it expects them (see :doc:`/guide/input`).
        data: An :class:`ImageDataset` (its train split is used) or a
            :class:`Split`.
        min_lr: The first learning rate.
        max_lr: The last learning rate.
        num_steps: Training steps (batches), cycling through the data as needed.
        batch_size: Images per step.
        optimizer: The optimizer to copy (its configuration, not its state);
            default: the model's compiled optimizer, else Adam.
        smoothing: Weight of the past in the loss's moving average, in ``[0, 1)``.
        stop_factor: Stop when the smoothed loss exceeds this multiple of its
            minimum; ``None`` runs every step.
        seed: Seed of the batch order.
        input_scaling: ``"auto"``, ``"raw"`` or ``"unit"`` (see
            :func:`kerasimgcls.resolve_input_scaling`).

    Returns:
        The curve and the suggested rate.

    Raises:
        TypeError: If ``data`` or ``optimizer`` has the wrong type, or a rate,
            ``smoothing`` or ``stop_factor`` is not a number.
        ValueError: If a rate is not positive, ``min_lr >= max_lr``, ``num_steps``
            is below 2, ``smoothing`` is outside ``[0, 1)``, ``stop_factor`` is not
            above 1, ``input_scaling`` is not one of its choices, or the data does
            not fit the model.

    Example:
        >>> from kerasimgcls import build_cifar_cnn, find_learning_rate, load_digits
        >>> data = load_digits(seed=0)
        >>> model = build_cifar_cnn(input_shape=(8, 8, 1), num_classes=10)
        >>> result = find_learning_rate(model, data, num_steps=20, batch_size=32)
        >>> len(result.learning_rates) <= 20
        True
    """
    split = _train_split(data)
    settings = _check_range(
        min_lr, max_lr, num_steps, batch_size, smoothing, stop_factor
    )
    _check_fits(model, split)
    scaling = resolve_input_scaling(model, input_scaling).scaling
    fresh = _fresh_optimizer(model, optimizer)
    saved = [np.array(variable.numpy(), copy=True) for variable in model.variables]
    try:
        return _range_test(model, split, fresh, settings, seed=seed, scaling=scaling)
    finally:
        for variable, value in zip(model.variables, saved, strict=True):
            variable.assign(value)


class _RangeTest(keras.callbacks.Callback):  # type: ignore[misc]
    """One range-test step per ``fit`` epoch: set its rate, record its loss, stop.

    ``fit`` runs one batch per epoch (``steps_per_epoch=1``), so the loss Keras
    reports at each epoch's end is that batch's loss.
    """

    def __init__(
        self, rates: NDArray[np.float64], smoothing: float, stop_factor: float | None
    ) -> None:
        super().__init__()
        self.rates = rates
        self.smoothing = smoothing
        self.stop_factor = stop_factor
        self.losses: list[float] = []
        self.smoothed: list[float] = []
        self.stopped = False
        self._average = 0.0
        self._best = math.inf

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.model.optimizer.learning_rate = float(self.rates[epoch])

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        loss = float((logs or {})["loss"])
        self.losses.append(loss)
        self._average = self.smoothing * self._average + (1.0 - self.smoothing) * loss
        self.smoothed.append(self._average / (1.0 - self.smoothing ** len(self.losses)))
        self._best = min(self._best, self.smoothed[-1])
        diverged = not math.isfinite(loss) or (
            self.stop_factor is not None
            and self.smoothed[-1] > self.stop_factor * self._best
        )
        if diverged and len(self.losses) > 1:
            self.stopped = True
            self.model.stop_training = True


def _range_test(
    model: keras.Model,
    split: Split,
    optimizer: keras.optimizers.Optimizer,
    settings: _Range,
    *,
    seed: int,
    scaling: PixelScaling,
) -> LearningRateFinderResult:
    min_lr, max_lr, num_steps, batch_size, smoothing, stop_factor = settings
    batch = min(batch_size, len(split))
    drop_remainder = len(split) >= batch_size
    per_epoch = steps_per_epoch(len(split), batch, drop_remainder=drop_remainder)
    batches, _ = epochs_dataset(
        split,
        num_classes=int(model.output_shape[-1]),
        batch_size=batch,
        initial_epoch=0,
        epochs=steps_per_epoch(num_steps, per_epoch),
        seed=seed,
        drop_remainder=drop_remainder,
        input_scaling=scaling,
    )
    # A wrapper shares the model's layers and variables but has its own optimizer
    # and compile state, so the model's own are never touched.
    probe = keras.Sequential([model], name=f"{model.name}_lr_finder")
    probe.compile(
        optimizer=optimizer,
        loss=keras.losses.CategoricalCrossentropy(),
        jit_compile=False,
    )
    rates = min_lr * (max_lr / min_lr) ** (np.arange(num_steps) / (num_steps - 1))
    test = _RangeTest(rates, smoothing, stop_factor)
    probe.fit(
        batches,
        epochs=num_steps,
        steps_per_epoch=1,
        shuffle=False,  # the batches are in their seeded order already
        callbacks=[test],
        verbose=0,
    )
    tested = np.asarray(rates[: len(test.losses)], dtype=np.float64)
    curve = np.asarray(test.smoothed, dtype=np.float64)
    finite = np.where(np.isfinite(curve), curve, np.inf)
    suggestion, min_loss_rate = _suggest(tested, finite)
    return LearningRateFinderResult(
        learning_rates=tested,
        losses=np.asarray(test.losses, dtype=np.float64),
        smoothed_losses=curve,
        suggestion=suggestion,
        min_loss_learning_rate=min_loss_rate,
        stopped_early=test.stopped,
    )
