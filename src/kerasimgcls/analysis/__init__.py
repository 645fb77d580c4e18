"""Analysis: evaluation, interpretation, the learning-rate finder, plots and the report.

The computing modules return plain results; :mod:`~kerasimgcls.analysis.plots`
draws them from arrays (scikit-learn's ``Display`` objects), and
:mod:`~kerasimgcls.analysis.report` puts a run on one page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from kerasimgcls._lazy import lazy_exports

if TYPE_CHECKING:  # the table below, for type checkers (tests/test_api.py)
    from kerasimgcls.analysis.evaluation import (
        ClassificationReport as ClassificationReport,
    )
    from kerasimgcls.analysis.evaluation import (
        classification_report as classification_report,
    )
    from kerasimgcls.analysis.interpret import (
        GradCamResult as GradCamResult,
    )
    from kerasimgcls.analysis.interpret import (
        SimilarImages as SimilarImages,
    )
    from kerasimgcls.analysis.interpret import (
        embeddings as embeddings,
    )
    from kerasimgcls.analysis.interpret import (
        grad_cam as grad_cam,
    )
    from kerasimgcls.analysis.interpret import (
        similar_images as similar_images,
    )
    from kerasimgcls.analysis.lr_finder import (
        LearningRateFinderResult as LearningRateFinderResult,
    )
    from kerasimgcls.analysis.lr_finder import (
        find_learning_rate as find_learning_rate,
    )
    from kerasimgcls.analysis.report import (
        write_report as write_report,
    )

_EXPORTS: dict[str, str] = {
    "ClassificationReport": "kerasimgcls.analysis.evaluation",
    "classification_report": "kerasimgcls.analysis.evaluation",
    "GradCamResult": "kerasimgcls.analysis.interpret",
    "SimilarImages": "kerasimgcls.analysis.interpret",
    "embeddings": "kerasimgcls.analysis.interpret",
    "grad_cam": "kerasimgcls.analysis.interpret",
    "similar_images": "kerasimgcls.analysis.interpret",
    "LearningRateFinderResult": "kerasimgcls.analysis.lr_finder",
    "find_learning_rate": "kerasimgcls.analysis.lr_finder",
    "write_report": "kerasimgcls.analysis.report",
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
