"""Weight averaging, fine-tuning and TTA as settings of the one configuration.

``TrainingConfig(weight_averaging=..., fine_tune=..., tta=...)`` (and the
``--weight-averaging``, ``--fine-tune`` and ``--tta`` flags made from them) put
the callbacks into ``Trainer.fit``: checked before anything is built, recorded in
``run.json``, resumed exactly, and a finished run reloaded ends as it ended.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import keras
import numpy as np
import pytest

import kerasimgcls as kic
from kerasimgcls.cli import main
from kerasimgcls.training._config import parse_options

AIRBENCH_AVERAGING = {"decay": 0.95, "every": 5, "lookahead": True, "ramp_power": 3.0}


def _build() -> keras.Model:
    inputs = keras.Input((8, 8, 1))
    x = kic.conv_block(inputs, 8, pool_size=2, name="b1")
    outputs = kic.dense_head(x, 10, units=(), dropout=0.0, name="head")
    return keras.Model(inputs, outputs)


def _variables(model: keras.Model) -> list[np.ndarray]:
    return [np.array(v.numpy()) for v in model.variables]


# ----------------------------------------------------------------- checking
@pytest.mark.parametrize(
    ("field", "value", "error", "match"),
    [
        ("weight_averaging", {"decay": 2.0}, ValueError, "weight_averaging: decay"),
        ("weight_averaging", {"decy": 0.9}, ValueError, "takes no argument decy"),
        ("weight_averaging", {"lookahead": 1}, TypeError, "lookahead must be True"),
        ("weight_averaging", [0.9], TypeError, "weight_averaging must be None or"),
        ("fine_tune", {"warmup_epochs": -1}, ValueError, "fine_tune: warmup_epochs"),
        ("fine_tune", {"unfreeze": 3}, ValueError, "it takes warmup_epochs"),
        ("tta", "mirror", ValueError, "tta must be one of"),
    ],
)
def test_config_checks_the_callback_fields(
    field: str, value: object, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        kic.TrainingConfig(**{field: value})


def test_config_stores_every_argument_and_round_trips() -> None:
    config = kic.TrainingConfig(weight_averaging={"decay": 0.9}, fine_tune={})
    assert config.weight_averaging == {
        "decay": 0.9,
        "every": 1,
        "lookahead": False,
        "ramp_power": 0.0,
        "total_steps": None,
        "validate_with_average": True,
    }
    assert config.fine_tune is not None and config.fine_tune["unfreeze_layers"] == 20
    assert kic.TrainingConfig.from_dict(config.to_dict()) == config


def test_averaging_refuses_restore_best_weights() -> None:
    with pytest.raises(ValueError, match="use one of the two"):
        kic.TrainingConfig(weight_averaging={}, restore_best_weights=True)


def test_parse_options() -> None:
    assert parse_options("decay=0.95,every=5,lookahead") == {
        "decay": 0.95,
        "every": 5,
        "lookahead": True,
    }
    assert parse_options("default") == {}
    assert parse_options("none") == "none"
    assert parse_options("backbone=body,unfreeze_layers=null") == {
        "backbone": "body",
        "unfreeze_layers": None,
    }
    with pytest.raises(ValueError, match="expected KEY=VALUE"):
        parse_options("=3")


def test_callback_flags_parse_and_check() -> None:
    from kerasimgcls.cli._train import add_config_arguments, config_overrides

    parser = argparse.ArgumentParser()
    add_config_arguments(parser)
    args = parser.parse_args(
        [
            "--weight-averaging",
            "decay=0.9,every=2",
            "--fine-tune",
            "none",
            "--tta",
            "flip",
        ]
    )
    overrides = config_overrides(args)
    assert overrides["weight_averaging"] == {"decay": 0.9, "every": 2}
    assert overrides["fine_tune"] is None  # "none" turns a recipe's callback off
    assert overrides["tta"] == "flip"


def test_cli_names_the_flag_of_a_bad_callback_option(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["train", "--dataset", "digits", "--run-dir", str(tmp_path / "run")]
    # Refused while parsing, in one line, with the usage error's exit code.
    assert main([*argv, "--weight-averaging", "decay=2"]) == 2
    error = capsys.readouterr().err
    assert len(error.splitlines()) == 1
    assert "--weight-averaging" in error and "decay must be" in error
    assert "Traceback" not in error
    assert main([*argv, "--fine-tune", "warmup=3"]) == 2
    error = capsys.readouterr().err
    assert "--fine-tune" in error and "takes no argument warmup" in error
    assert not (tmp_path / "run").exists()  # refused before anything ran


def test_airbench_recipe_uses_the_airbench94_tricks() -> None:
    recipe = kic.get_recipe("airbench")
    assert recipe.weight_averaging is not None
    assert {k: recipe.weight_averaging[k] for k in AIRBENCH_AVERAGING} == (
        AIRBENCH_AVERAGING
    )
    assert recipe.tta == "flip_translate"
    assert recipe.augment is not None and recipe.augment["flip_mode"] == "alternating"


# ----------------------------------------------------------------- training
@pytest.mark.slow
def test_trainer_ends_with_the_average_and_records_it(digits, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"

    def averaging_trainer() -> kic.Trainer:
        return kic.Trainer(
            _build,
            seed=0,
            run_dir=run_dir,
            verbose=0,
            precise_batch_norm=False,
            weight_averaging=AIRBENCH_AVERAGING,
        )

    trainer = averaging_trainer()
    trainer.fit(digits, epochs=3, batch_size=64)
    final = json.loads((run_dir / "run.json").read_text())["final"]
    steps = 3 * -(-len(digits.train) // 64)
    assert final["weight_averaging"]["steps"] == steps
    assert final["weight_averaging"]["updates"] == steps // 5
    assert final["kept_epoch"]["why"] == "average of the weights"
    ended = _variables(trainer.model)
    # A finished run reloaded from its checkpoint (the training weights and the
    # averaging state) ends with the same averaged weights, not the last step's.
    again = averaging_trainer()
    again.fit(digits, epochs=3, batch_size=64)
    for first, second in zip(ended, _variables(again.model), strict=True):
        np.testing.assert_array_equal(first, second)


class _StopAfter(keras.callbacks.Callback):  # type: ignore[misc]
    """Interrupts ``fit`` like Ctrl-C at the end of epoch ``epochs``."""

    def __init__(self, epochs: int) -> None:
        super().__init__()
        self.epochs = epochs

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:  # type: ignore[type-arg]
        if epoch + 1 == self.epochs:
            raise KeyboardInterrupt


@pytest.mark.slow
def test_weight_averaging_resumes_bit_identically(digits, tmp_path: Path) -> None:
    settings = {
        "seed": 0,
        "verbose": 0,
        "precise_batch_norm": False,
        "weight_averaging": AIRBENCH_AVERAGING,
        "augment": {"flip": True, "flip_mode": "alternating", "translate": 1},
    }
    whole = kic.Trainer(_build, run_dir=tmp_path / "whole", **settings)
    whole.fit(digits, epochs=4, batch_size=64)
    cut = kic.Trainer(
        _build, run_dir=tmp_path / "cut", callbacks=[_StopAfter(2)], **settings
    )
    with pytest.raises(KeyboardInterrupt):
        cut.fit(digits, epochs=4, batch_size=64)
    resumed = kic.Trainer(_build, run_dir=tmp_path / "cut", **settings)
    resumed.fit(digits, epochs=4, batch_size=64)
    for first, second in zip(
        _variables(whole.model), _variables(resumed.model), strict=True
    ):
        np.testing.assert_array_equal(first, second)
    rows = [
        {k: v for k, v in row.items() if k != "epoch_time"}
        for row in json.loads((tmp_path / "whole" / "history.json").read_text())
    ]
    again = [
        {k: v for k, v in row.items() if k != "epoch_time"}
        for row in json.loads((tmp_path / "cut" / "history.json").read_text())
    ]
    assert rows == again and len(rows) == 4


@pytest.mark.slow
def test_a_changed_averaging_setting_is_refused_on_resume(
    digits, tmp_path: Path
) -> None:
    config = kic.TrainingConfig(
        weight_averaging={"decay": 0.9}, precise_batch_norm=False, epochs=2
    )
    cut = kic.Trainer(
        _build, config=config, run_dir=tmp_path, verbose=0, callbacks=[_StopAfter(1)]
    )
    with pytest.raises(KeyboardInterrupt):
        cut.fit(digits, batch_size=64)
    changed = dataclasses.replace(config, weight_averaging={"decay": 0.99})
    with pytest.raises(ValueError, match="weight_averaging: checkpoint"):
        kic.Trainer(_build, config=changed, run_dir=tmp_path, verbose=0).fit(
            digits, batch_size=64
        )


def test_predict_proba_tta_is_predict_tta() -> None:
    model = kic.build_cifar_cnn(input_shape=(8, 8, 1), num_classes=3)
    images = np.random.default_rng(0).integers(0, 256, (5, 8, 8, 1), dtype=np.uint8)
    for views in ("flip", "flip_translate"):
        np.testing.assert_array_equal(
            kic.predict_proba(model, images, tta=views),
            kic.predict_tta(model, images, views=views),
        )
    # Not a no-op: six views differ from the plain prediction.
    assert not np.allclose(
        kic.predict_proba(model, images, tta="flip_translate"),
        kic.predict_proba(model, images),
    )
    with pytest.raises(ValueError, match="tta must be one of"):
        kic.predict_proba(model, images, tta="mirror")


def test_fine_tune_setting_puts_the_callback_in_and_records_it(tmp_path: Path) -> None:
    from test_fine_tune import _build as build_transfer
    from test_fine_tune import _data

    settings = {"warmup_epochs": 1, "unfreeze_layers": 2}
    trainer = kic.Trainer(
        build_transfer,
        seed=0,
        run_dir=tmp_path,
        verbose=0,
        precise_batch_norm=False,
        fine_tune=settings,
    )
    frozen = trainer.model.get_layer("backbone").get_layer("b1_conv").get_weights()
    trainer.fit(_data(), epochs=2, batch_size=16)
    config = json.loads((tmp_path / "run.json").read_text())["config"]
    assert {k: config["fine_tune"][k] for k in settings} == settings
    backbone = trainer.model.get_layer("backbone")
    # Phase 2 opened the last two layers, batch norm kept frozen; the first conv
    # never moved.
    last_two = backbone.layers[-2:]
    assert [
        layer.trainable
        for layer in last_two
        if not isinstance(layer, keras.layers.BatchNormalization)
    ] == [True]
    assert not backbone.get_layer("b1_conv").trainable
    for before, after in zip(
        frozen, backbone.get_layer("b1_conv").get_weights(), strict=True
    ):
        np.testing.assert_array_equal(before, after)
