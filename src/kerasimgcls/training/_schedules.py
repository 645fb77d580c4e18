"""Learning-rate schedules with warmup: constant, cosine, one-cycle and triangle."""

from __future__ import annotations

import math
from typing import Any

import keras

__all__ = ["SCHEDULES", "WarmupSchedule", "make_schedule"]

SCHEDULES = ("constant", "cosine", "one_cycle", "triangle")


@keras.saving.register_keras_serializable(package="kerasimgcls")
class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):  # type: ignore[misc]
    """A learning rate that warms up linearly, then stays, decays by cosine or anneals.

    Step ``s`` (the optimizer's iteration count) of ``total_steps``:

    - during the first ``warmup_steps`` the rate rises linearly from
      ``peak * initial_fraction`` to ``peak``;
    - then ``"constant"`` keeps ``peak``; ``"cosine"`` and ``"one_cycle"`` follow a
      half cosine from ``peak`` down to ``peak * final_fraction`` at ``total_steps``.

    ``"one_cycle"`` is the same shape as ``"cosine"`` with a long warmup from a low
    start (Smith's one-cycle policy as in fastai: 30% warmup from ``peak / 25`` to
    ``peak``, then cosine annealing to ``peak / 1e4``); :func:`make_schedule` fills
    in those defaults.

    Args:
        kind: ``"constant"``, ``"cosine"``, ``"one_cycle"`` or ``"triangle"``.
        peak: The highest learning rate.
        total_steps: Optimizer steps of the whole run.
        warmup_steps: Steps of linear warmup.
        initial_fraction: Start of the warmup as a fraction of ``peak``.
        final_fraction: End of the decay as a fraction of ``peak``.

    Example:
        >>> from kerasimgcls.training import WarmupSchedule
        >>> schedule = WarmupSchedule("cosine", 0.1, total_steps=100, warmup_steps=10)
        >>> [round(float(schedule(s)), 4) for s in (0, 10, 55, 100)]
        [0.0, 0.1, 0.05, 0.0]
    """

    def __init__(
        self,
        kind: str,
        peak: float,
        total_steps: int,
        warmup_steps: int = 0,
        initial_fraction: float = 0.0,
        final_fraction: float = 0.0,
    ) -> None:
        super().__init__()
        self.kind = kind
        self.peak = float(peak)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.initial_fraction = float(initial_fraction)
        self.final_fraction = float(final_fraction)

    def __call__(self, step: Any) -> Any:
        """Return the learning rate at optimizer step ``step``."""
        ops = keras.ops
        step = ops.cast(step, "float32")
        peak = self.peak
        warm = float(max(self.warmup_steps, 0))
        start = peak * self.initial_fraction
        warm_rate = start + (peak - start) * step / max(warm, 1.0)
        if self.kind == "constant":
            after = ops.convert_to_tensor(peak, "float32")
        elif self.kind == "triangle":
            span = float(max(self.total_steps - self.warmup_steps, 1))
            progress = ops.clip((step - warm) / span, 0.0, 1.0)
            after = peak + (peak * self.final_fraction - peak) * progress
        elif self.kind == "cosine" and self.final_fraction == 0.0:
            # Keras' own cosine decay: the same rates, bit for bit, as the formula
            # below (tests/test_schedules.py). Keras' warmup (``warmup_target=``)
            # rounds a float32 ulp differently at some steps, so the warmup stays.
            span = max(self.total_steps - self.warmup_steps, 1)
            decay = keras.optimizers.schedules.CosineDecay(peak, span)
            after = decay(ops.maximum(step - warm, 0.0))
        else:
            # one_cycle ends above zero: Keras' ``alpha`` rounds differently.
            span = float(max(self.total_steps - self.warmup_steps, 1))
            progress = ops.clip((step - warm) / span, 0.0, 1.0)
            low = peak * self.final_fraction
            after = low + (peak - low) * 0.5 * (1.0 + ops.cos(math.pi * progress))
        return ops.where(step < warm, warm_rate, after)

    def get_config(self) -> dict[str, Any]:
        """Return the schedule's arguments."""
        return {
            "kind": self.kind,
            "peak": self.peak,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "initial_fraction": self.initial_fraction,
            "final_fraction": self.final_fraction,
        }


def make_schedule(
    kind: str, peak: float, *, total_steps: int, warmup_steps: int = 0
) -> WarmupSchedule:
    """Return the named schedule with this library's defaults (see :class:`WarmupSchedule`)."""
    if kind == "one_cycle":
        warmup = warmup_steps if warmup_steps > 0 else round(0.3 * total_steps)
        return WarmupSchedule(
            kind,
            peak,
            total_steps,
            warmup,
            initial_fraction=1.0 / 25.0,
            final_fraction=1.0 / 1e4,
        )
    if kind == "triangle":
        warmup = warmup_steps if warmup_steps > 0 else round(0.23 * total_steps)
        return WarmupSchedule(
            kind, peak, total_steps, warmup, initial_fraction=0.2, final_fraction=0.07
        )
    return WarmupSchedule(kind, peak, total_steps, warmup_steps)
