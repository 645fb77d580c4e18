"""The default ``--run-dir``: a name made of the settings a command gave."""

from __future__ import annotations

import argparse
import hashlib
import re
from pathlib import Path
from typing import Any

from kerasimgcls.training._config import json_ready

__all__ = ["default_run_dir"]


# Flags that shape the run, with the short label they get in the default run dir.
_RUN_NAME_FLAGS = (
    ("recipe", "recipe"),
    ("model_arg", ""),
    ("epochs", "epochs"),
    ("batch_size", "bs"),
    ("optimizer", ""),
    ("learning_rate", "lr"),
    ("schedule", ""),
    ("warmup_epochs", "warmup"),
    ("label_smoothing", "ls"),
    ("augment", "aug"),
    ("early_stopping_patience", "patience"),
    ("class_weight", "cw"),
    ("precision", ""),
    ("fused_batch_norm", "fusedbn"),
    ("weight_averaging", "wa"),
    ("fine_tune", "ft"),
    ("deterministic", "nondet"),
    ("init_from", "from"),
    ("skip_bad_images", "skipbad"),
    ("image_size", "size"),
    ("color_mode", ""),
    ("validation_split", "val"),
    ("split_seed", "split"),
)
_MAX_NAME = 96


def default_run_dir(
    args: argparse.Namespace, spec: dict[str, Any], model_name: str
) -> Path:
    """The default ``--run-dir``: ``runs/<data>-<model>-seed<seed>`` plus each setting given.

    Settings left at their defaults add nothing, so the plain command keeps its
    short name, the same command always finds its own run, and a changed setting
    gets a run directory of its own. A long tail is replaced by a hash of it.

    Example:
        >>> import argparse
        >>> args = argparse.Namespace(seed=0, epochs=30, learning_rate=0.01)
        >>> str(default_run_dir(args, {"dataset": "digits"}, "cifar_cnn"))
        'runs/digits-cifar_cnn-seed0-epochs30-lr0.01'
    """
    source = spec.get("dataset") or Path(spec.get("data_dir", "data")).name
    defaults = {"color_mode": "rgb", "validation_split": 0.1, "split_seed": 0}
    parts = []
    for dest, label in _RUN_NAME_FLAGS:
        value = getattr(args, dest, None)
        if dest == "deterministic":  # named when turned off
            value = value is False
        if value in (None, False, [], defaults.get(dest, ())):
            continue
        parts.append(label + _name_part(dest, value))
    tail = "-".join(parts)
    if len(tail) > _MAX_NAME:
        tail = "h" + hashlib.sha256(tail.encode()).hexdigest()[:10]
    seed = 0 if getattr(args, "seed", None) is None else args.seed
    name = f"{source}-{model_name}-seed{seed}" + (f"-{tail}" if tail else "")
    return Path("runs") / name


def _name_part(dest: str, value: Any) -> str:
    if value is True:
        return ""
    if dest == "init_from":
        value = Path(value).stem if Path(value).suffix == ".keras" else Path(value).name
    elif isinstance(value, dict):
        value = "_".join(f"{key}{json_ready(item)}" for key, item in value.items())
    elif isinstance(value, list):
        value = (
            "x".join(str(v) for v in value) if dest == "image_size" else "_".join(value)
        )
    return re.sub(r"[^A-Za-z0-9.+_-]+", "_", str(value)).strip("_")
