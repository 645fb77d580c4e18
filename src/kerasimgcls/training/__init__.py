"""Training: the :class:`Trainer`, its callbacks, configuration, recipes and seeding.

Names are imported from their modules on first use (PEP 562), so the command line
reads :class:`TrainingConfig` to build its flags without starting TensorFlow.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kerasimgcls._lazy import lazy_exports

if TYPE_CHECKING:  # the table below, for type checkers (tests/test_api.py)
    from kerasimgcls.training._averaging import (
        WeightAveraging as WeightAveraging,
    )
    from kerasimgcls.training._config import (
        TrainingConfig as TrainingConfig,
    )
    from kerasimgcls.training._divergence import (
        TrainingDivergedError as TrainingDivergedError,
    )
    from kerasimgcls.training._early_stopping import (
        ResumableEarlyStopping as ResumableEarlyStopping,
    )
    from kerasimgcls.training._fine_tune import (
        FineTune as FineTune,
    )
    from kerasimgcls.training._history import (
        History as History,
    )
    from kerasimgcls.training._precise_bn import (
        PreciseBatchNorm as PreciseBatchNorm,
    )
    from kerasimgcls.training._precise_bn import (
        precise_batch_norm as precise_batch_norm,
    )
    from kerasimgcls.training._recipes import (
        Recipe as Recipe,
    )
    from kerasimgcls.training._recipes import (
        get_recipe as get_recipe,
    )
    from kerasimgcls.training._recipes import (
        list_recipes as list_recipes,
    )
    from kerasimgcls.training._recipes import (
        register_recipe as register_recipe,
    )
    from kerasimgcls.training._schedules import (
        SCHEDULES as SCHEDULES,
    )
    from kerasimgcls.training._schedules import (
        WarmupSchedule as WarmupSchedule,
    )
    from kerasimgcls.training._seed import (
        seed_everything as seed_everything,
    )
    from kerasimgcls.training._trainer import (
        Trainer as Trainer,
    )

_EXPORTS: dict[str, str] = {
    "WeightAveraging": "kerasimgcls.training._averaging",
    "TrainingConfig": "kerasimgcls.training._config",
    "TrainingDivergedError": "kerasimgcls.training._divergence",
    "ResumableEarlyStopping": "kerasimgcls.training._early_stopping",
    "FineTune": "kerasimgcls.training._fine_tune",
    "History": "kerasimgcls.training._history",
    "PreciseBatchNorm": "kerasimgcls.training._precise_bn",
    "precise_batch_norm": "kerasimgcls.training._precise_bn",
    "Recipe": "kerasimgcls.training._recipes",
    "get_recipe": "kerasimgcls.training._recipes",
    "list_recipes": "kerasimgcls.training._recipes",
    "register_recipe": "kerasimgcls.training._recipes",
    "SCHEDULES": "kerasimgcls.training._schedules",
    "WarmupSchedule": "kerasimgcls.training._schedules",
    "seed_everything": "kerasimgcls.training._seed",
    "Trainer": "kerasimgcls.training._trainer",
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
