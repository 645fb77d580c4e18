"""What ``run.json`` says of a run besides its status and times."""

from __future__ import annotations

from typing import Any

from kerasimgcls.training._context import RunContext
from kerasimgcls.training._environment import environment

__all__ = ["describe_run"]


def describe_run(
    context: RunContext, data: Any, config: dict[str, Any]
) -> dict[str, Any]:
    """What ``run.json`` says of a trainer's run besides its status and times."""
    model, strategy, scaling = context.model, context.strategy, context.scaling
    metadata = dict(context.metadata or {})
    data_section: dict[str, Any] = {
        "name": data.name,
        "fingerprint": data.fingerprint,
        "input_shape": list(data.input_shape),
        "num_classes": data.num_classes,
        "sizes": {name: len(split) for name, split in data.splits().items()},
        **dict(metadata.get("data", {})),
    }
    return {
        "config": config,
        "data": data_section,
        "class_names": list(data.class_names),
        "input_scaling": {"scaling": scaling.scaling, "reason": scaling.reason},
        "model": {
            "name": model.name,
            "parameters": int(model.count_params()),
            "trainable_parameters": _count(model.trainable_weights),
            "non_trainable_parameters": _count(model.non_trainable_weights),
        },
        **{key: value for key, value in metadata.items() if key != "data"},
        **environment(),
        "strategy": None
        if strategy is None
        else {
            "type": type(strategy).__name__,
            "replicas": int(strategy.num_replicas_in_sync),
        },
    }


def _count(weights: Any) -> int:
    total = 0
    for weight in weights:
        size = 1
        for dimension in weight.shape:
            size *= int(dimension)
        total += size
    return total
