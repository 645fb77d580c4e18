"""``metrics.json``: the scores of each evaluation of a run."""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

from kerasimgcls._io import (
    write_json_atomic,
)
from kerasimgcls.training._environment import utc_now

__all__ = ["write_metrics"]


def write_metrics(
    run_dir: str | os.PathLike[str],
    name: str,
    scores: dict[str, float],
    num_images: int,
) -> Path:
    """Record the ``scores`` of split ``name`` in ``run_dir/metrics.json``.

    The file maps each evaluated split's name to its scores, so evaluating the
    validation and the test split keeps both; an entry is replaced, not appended.
    """
    path = Path(run_dir) / "metrics.json"
    metrics: dict[str, Any] = {}
    if path.is_file():
        with contextlib.suppress(OSError, ValueError):
            loaded = json.loads(path.read_text(encoding="utf-8"))
            metrics = loaded if isinstance(loaded, dict) else {}
    metrics[name] = {**scores, "num_images": int(num_images), "evaluated_at": utc_now()}
    return write_json_atomic(path, metrics)
