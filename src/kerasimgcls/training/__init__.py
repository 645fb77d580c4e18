"""Training: the :class:`Trainer`, its :class:`History`, seeding and schedules."""

from __future__ import annotations

from kerasimgcls.training._history import History
from kerasimgcls.training._precise_bn import PreciseBatchNorm, precise_batch_norm
from kerasimgcls.training._schedules import SCHEDULES, WarmupSchedule
from kerasimgcls.training._seed import seed_everything
from kerasimgcls.training._trainer import Trainer, TrainingDivergedError

__all__ = [
    "SCHEDULES",
    "History",
    "PreciseBatchNorm",
    "Trainer",
    "TrainingDivergedError",
    "WarmupSchedule",
    "precise_batch_norm",
    "seed_everything",
]
