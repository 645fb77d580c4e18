"""Resume compatibility, field by field (issue 25).

One short run is trained once; then every field of :class:`TrainingConfig`, and
every argument of the model factory, is changed in turn and the run resumed. A
resume must be refused, naming the field, unless the field is one of those
documented as safe to change (``RESUME_SAFE_FIELDS``), which must resume. The
cases are generated from ``dataclasses.fields`` and the factory's signature: a new
field fails :func:`test_every_field_is_classified` until it gets a changed value
below (refused) or is documented as safe.
"""

from __future__ import annotations

import dataclasses
import inspect
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import kerasimgcls as kic
from kerasimgcls.training._checkpoint import RESUME_SAFE_FIELDS

FACTORY = kic.get_model_factory("cifar_cnn")
#: Factory arguments the data decides (not settings of the run).
FROM_DATA = {"input_shape", "num_classes"}


def _model_defaults() -> dict[str, Any]:
    return {
        name: parameter.default
        for name, parameter in inspect.signature(FACTORY).parameters.items()
        if name not in FROM_DATA
    }


BASE = dataclasses.replace(
    kic.TrainingConfig(),
    model="cifar_cnn",
    model_kwargs={"dropout": 0.2},
    epochs=1,
    batch_size=64,
    deterministic=False,
    precise_batch_norm=False,
)

#: A changed, valid value of every field a resume must compare.
CHANGED: dict[str, Any] = {
    "model": "airbench_cnn",
    "model_kwargs": {"dropout": 0.3},
    "optimizer": "sgd",
    "optimizer_kwargs": {"beta_1": 0.8},
    "learning_rate": 0.002,
    "schedule": "cosine",
    "warmup_epochs": 0.5,
    "label_smoothing": 0.1,
    "augment": {"flip": True, "translate": 0},
    "epochs": 2,
    "batch_size": 32,
    "early_stopping_patience": 3,
    "restore_best_weights": True,
    "class_weight": "balanced",
    "precision": "mixed_bfloat16",
    "fused_batch_norm": True,
    "precise_batch_norm": True,
    "input_scaling": "raw",
    "seed": 1,
    "deterministic": True,
    "weight_averaging": {},
    "fine_tune": {},
}
#: A changed value of each field documented as safe to change on resume.
SAFE_CHANGED: dict[str, Any] = {"steps_per_execution": 2, "tta": "flip"}
#: Settings some changes need as well (they are refused for the first anyway).
NEEDS = {
    "restore_best_weights": {"early_stopping_patience": 3},
    "fine_tune": {"model": "transfer"},
}


def _data() -> kic.ImageDataset:
    digits = kic.load_digits(seed=0)
    keep = np.arange(256)
    return kic.ImageDataset(
        digits.train.subset(keep), digits.validation, None, digits.class_names
    )


def _factory(config: kic.TrainingConfig) -> Any:
    kwargs = dict(config.model_kwargs)
    if config.fine_tune is not None:
        return _with_backbone
    return lambda: FACTORY(input_shape=(8, 8, 1), num_classes=10, **kwargs)


def _with_backbone() -> Any:
    import keras

    inputs = keras.Input((8, 8, 1))
    backbone = keras.Sequential(
        [keras.Input((8, 8, 1)), keras.layers.Conv2D(4, 3)], name="backbone"
    )
    x = keras.layers.GlobalAveragePooling2D()(backbone(inputs))
    return keras.Model(inputs, keras.layers.Dense(10, activation="softmax")(x))


def _trainer(config: kic.TrainingConfig, run_dir: Path) -> kic.Trainer:
    return kic.Trainer(_factory(config), config=config, run_dir=run_dir, verbose=0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, kic.ImageDataset]:
    run_dir = tmp_path_factory.mktemp("resume") / "run"
    data = _data()
    _trainer(BASE, run_dir).fit(data)
    return run_dir, data


def _copy(run_dir: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    return copy


def test_every_field_is_classified() -> None:
    fields = {field.name for field in dataclasses.fields(kic.TrainingConfig)}
    unclassified = fields - set(CHANGED) - set(RESUME_SAFE_FIELDS)
    assert not unclassified, (
        f"new TrainingConfig fields {sorted(unclassified)}: give each a changed "
        "value in CHANGED (a resume must refuse it), or document it as safe in "
        "RESUME_SAFE_FIELDS"
    )
    assert set(SAFE_CHANGED) == set(RESUME_SAFE_FIELDS)
    assert not set(CHANGED) & set(RESUME_SAFE_FIELDS)
    assert set(CHANGED) <= fields
    for name, value in CHANGED.items():
        assert getattr(BASE, name) != value, name


@pytest.mark.parametrize("field", sorted(CHANGED))
def test_a_changed_field_is_refused_on_resume(
    trained: tuple[Path, kic.ImageDataset], tmp_path: Path, field: str
) -> None:
    run_dir, data = trained
    copy = _copy(run_dir, tmp_path)
    before = {p.name: p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    changes = {**NEEDS.get(field, {}), field: CHANGED[field]}
    config = dataclasses.replace(BASE, **changes)
    with pytest.raises(
        ValueError, match="holds a checkpoint of a different run"
    ) as error:
        _trainer(config, copy).fit(data)
    assert f"; {field}: checkpoint " in str(error.value) or str(error.value).split(
        "different run; "
    )[1].startswith(f"{field}: checkpoint"), str(error.value)
    # Refusing wrote nothing.
    assert {p.name: p.read_bytes() for p in copy.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("argument", sorted(_model_defaults()))
def test_a_changed_model_argument_is_refused_on_resume(
    trained: tuple[Path, kic.ImageDataset], tmp_path: Path, argument: str
) -> None:
    run_dir, data = trained
    default = _model_defaults()[argument]
    changed = {
        bool: lambda v: not v,
        int: lambda v: v + 1,
        float: lambda v: round(v / 2, 3),
        str: lambda v: v + "_b",
        tuple: lambda v: tuple(round(x / 2, 3) for x in v),
    }[type(default)](default)
    kwargs = {**BASE.model_kwargs, argument: changed}
    config = dataclasses.replace(BASE, model_kwargs=kwargs)
    with pytest.raises(ValueError, match="different run; model_kwargs: checkpoint"):
        _trainer(config, _copy(run_dir, tmp_path)).fit(data)


@pytest.mark.parametrize("field", sorted(SAFE_CHANGED))
def test_a_field_documented_as_safe_resumes(
    trained: tuple[Path, kic.ImageDataset], tmp_path: Path, field: str
) -> None:
    run_dir, data = trained
    config = dataclasses.replace(BASE, **{field: SAFE_CHANGED[field]})
    history = _trainer(config, _copy(run_dir, tmp_path)).fit(data)
    assert len(history.rows) == 1  # the saved epoch, not a new run


def test_an_unchanged_config_resumes(
    trained: tuple[Path, kic.ImageDataset], tmp_path: Path
) -> None:
    run_dir, data = trained
    assert len(_trainer(BASE, _copy(run_dir, tmp_path)).fit(data).rows) == 1
