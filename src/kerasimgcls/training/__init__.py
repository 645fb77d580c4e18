"""Training: the :class:`Trainer`, its callbacks, configuration, seeding, schedules.

Importing the package is cheap: names are imported from their modules on first use
(PEP 562), so the command line reads :class:`TrainingConfig` to build its flags
without starting TensorFlow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kerasimgcls._lazy import lazy_exports

if TYPE_CHECKING:
    from kerasimgcls.training._averaging import WeightAveraging
    from kerasimgcls.training._config import TrainingConfig
    from kerasimgcls.training._divergence import TrainingDivergedError
    from kerasimgcls.training._early_stopping import ResumableEarlyStopping
    from kerasimgcls.training._fine_tune import FineTune
    from kerasimgcls.training._history import History
    from kerasimgcls.training._precise_bn import PreciseBatchNorm, precise_batch_norm
    from kerasimgcls.training._schedules import SCHEDULES, WarmupSchedule
    from kerasimgcls.training._seed import seed_everything
    from kerasimgcls.training._trainer import Trainer

_EXPORTS: dict[str, str] = {
    "FineTune": "kerasimgcls.training._fine_tune",
    "History": "kerasimgcls.training._history",
    "PreciseBatchNorm": "kerasimgcls.training._precise_bn",
    "ResumableEarlyStopping": "kerasimgcls.training._early_stopping",
    "SCHEDULES": "kerasimgcls.training._schedules",
    "Trainer": "kerasimgcls.training._trainer",
    "TrainingConfig": "kerasimgcls.training._config",
    "TrainingDivergedError": "kerasimgcls.training._divergence",
    "WarmupSchedule": "kerasimgcls.training._schedules",
    "WeightAveraging": "kerasimgcls.training._averaging",
    "precise_batch_norm": "kerasimgcls.training._precise_bn",
    "seed_everything": "kerasimgcls.training._seed",
}
__all__ = [
    "SCHEDULES",
    "FineTune",
    "History",
    "PreciseBatchNorm",
    "ResumableEarlyStopping",
    "Trainer",
    "TrainingConfig",
    "TrainingDivergedError",
    "WarmupSchedule",
    "WeightAveraging",
    "precise_batch_norm",
    "seed_everything",
]


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS, _EXPORTS)
