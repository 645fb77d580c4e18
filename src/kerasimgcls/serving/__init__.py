"""Serving: export a model for runtimes without the library (SavedModel, ONNX, LiteRT)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kerasimgcls._lazy import lazy_exports

if TYPE_CHECKING:  # the table below, for type checkers (tests/test_api.py)
    from kerasimgcls.serving._export import (
        CLASS_NAMES_FILE as CLASS_NAMES_FILE,
    )
    from kerasimgcls.serving._export import (
        MODEL_FILES as MODEL_FILES,
    )
    from kerasimgcls.serving._export import (
        SERVING_FORMATS as SERVING_FORMATS,
    )
    from kerasimgcls.serving._export import (
        export_for_serving as export_for_serving,
    )

_EXPORTS: dict[str, str] = {
    "CLASS_NAMES_FILE": "kerasimgcls.serving._export",
    "MODEL_FILES": "kerasimgcls.serving._export",
    "SERVING_FORMATS": "kerasimgcls.serving._export",
    "export_for_serving": "kerasimgcls.serving._export",
}
__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
