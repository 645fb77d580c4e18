"""The cosine schedule is Keras' CosineDecay after the warmup, rate for rate."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from kerasimgcls.training._schedules import WarmupSchedule


def _formula(schedule: WarmupSchedule, step: int) -> float:
    """The hand-written cosine the schedule used before issue 24."""
    ops = keras.ops
    value = ops.cast(step, "float32")
    peak, warm = schedule.peak, float(schedule.warmup_steps)
    warm_rate = peak * value / max(warm, 1.0)
    span = float(max(schedule.total_steps - schedule.warmup_steps, 1))
    progress = ops.clip((value - warm) / span, 0.0, 1.0)
    after = peak * 0.5 * (1.0 + ops.cos(np.pi * progress))
    return float(ops.where(value < warm, warm_rate, after))


@pytest.mark.parametrize(
    ("peak", "total_steps", "warmup_steps"),
    [(0.1, 100, 10), (0.001, 1000, 0), (0.0123, 2345, 117), (0.4, 7, 3)],
)
def test_cosine_gives_the_learning_rates_it_gave_before(
    peak: float, total_steps: int, warmup_steps: int
) -> None:
    schedule = WarmupSchedule("cosine", peak, total_steps, warmup_steps)
    for step in range(total_steps + 3):
        assert float(schedule(step)) == _formula(schedule, step), step


def test_a_checkpoint_names_the_schedule_it_always_named() -> None:
    schedule = WarmupSchedule("cosine", 0.1, total_steps=100, warmup_steps=10)
    config = keras.saving.serialize_keras_object(schedule)
    assert config["registered_name"] == "kerasimgcls>WarmupSchedule"
    restored = keras.saving.deserialize_keras_object(config)
    assert float(restored(55)) == float(schedule(55))
