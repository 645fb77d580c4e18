"""Inference: load a trained model, feed it raw pixels, predict, test-time augmentation.

A run's ``model.keras`` starts with :class:`~kerasimgcls.InputPreprocessing`
(:mod:`kerasimgcls.models.preprocessing`); :func:`load_model` reads it safely,
:func:`resolve_input_scaling` decides how any other model's pixels are scaled.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kerasimgcls._lazy import lazy_exports

if TYPE_CHECKING:  # the table below, for type checkers (tests/test_api.py)
    from kerasimgcls.inference._load import (
        load_model as load_model,
    )
    from kerasimgcls.inference._predict import (
        Predictions as Predictions,
    )
    from kerasimgcls.inference._predict import (
        predict as predict,
    )
    from kerasimgcls.inference._predict import (
        predict_proba as predict_proba,
    )
    from kerasimgcls.inference._scaling import (
        INPUT_SCALINGS as INPUT_SCALINGS,
    )
    from kerasimgcls.inference._scaling import (
        InputScaling as InputScaling,
    )
    from kerasimgcls.inference._scaling import (
        ScalingDecision as ScalingDecision,
    )
    from kerasimgcls.inference._scaling import (
        resolve_input_scaling as resolve_input_scaling,
    )
    from kerasimgcls.inference._tta import (
        TTA_VIEWS as TTA_VIEWS,
    )
    from kerasimgcls.inference._tta import (
        predict_tta as predict_tta,
    )
    from kerasimgcls.inference._wrap import (
        export_model as export_model,
    )
    from kerasimgcls.models.preprocessing import (
        InputPreprocessing as InputPreprocessing,
    )
    from kerasimgcls.models.preprocessing import (
        get_class_names as get_class_names,
    )

_EXPORTS: dict[str, str] = {
    "load_model": "kerasimgcls.inference._load",
    "Predictions": "kerasimgcls.inference._predict",
    "predict": "kerasimgcls.inference._predict",
    "predict_proba": "kerasimgcls.inference._predict",
    "INPUT_SCALINGS": "kerasimgcls.inference._scaling",
    "InputScaling": "kerasimgcls.inference._scaling",
    "ScalingDecision": "kerasimgcls.inference._scaling",
    "resolve_input_scaling": "kerasimgcls.inference._scaling",
    "TTA_VIEWS": "kerasimgcls.inference._tta",
    "predict_tta": "kerasimgcls.inference._tta",
    "export_model": "kerasimgcls.inference._wrap",
    "InputPreprocessing": "kerasimgcls.models.preprocessing",
    "get_class_names": "kerasimgcls.models.preprocessing",
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
