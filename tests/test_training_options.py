"""Trainer options: schedules, label smoothing, early stopping, class weights, recipes."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import keras
import numpy as np
import pytest

import kerasimgcls as kic
from kerasimgcls.training import SCHEDULES, Trainer, WarmupSchedule


def tiny_cnn(num_classes: int = 10) -> keras.Model:
    inputs = keras.Input((8, 8, 1))
    x = kic.conv_block(inputs, 8, pool_size=2, name="block1")
    x = kic.conv_block(x, 16, pool_size=2, name="block2")
    return keras.Model(inputs, kic.dense_head(x, num_classes, units=(), name="head"))


def make_trainer(**kwargs):  # type: ignore[no-untyped-def]
    options = {"seed": 0, "deterministic": False, "verbose": 0}
    options.update(kwargs)
    return Trainer(tiny_cnn, **options)


# ---------------------------------------------------------------- schedules
def test_warmup_schedule_shapes() -> None:
    cosine = WarmupSchedule("cosine", 0.1, total_steps=110, warmup_steps=10)
    values = [float(cosine(step)) for step in range(111)]
    assert values[0] == 0.0
    assert values[10] == pytest.approx(0.1)
    assert values[60] == pytest.approx(0.05, rel=1e-5)
    assert values[110] == pytest.approx(0.0, abs=1e-7)
    assert all(a <= b for a, b in itertools.pairwise(values[:11]))
    assert all(a >= b for a, b in itertools.pairwise(values[10:]))
    constant = WarmupSchedule("constant", 0.1, total_steps=100, warmup_steps=4)
    assert [round(float(constant(s)), 6) for s in (0, 2, 4, 99)] == [0, 0.05, 0.1, 0.1]
    restored = WarmupSchedule.from_config(cosine.get_config())
    assert float(restored(37)) == pytest.approx(float(cosine(37)))


@pytest.mark.slow
def test_schedules_are_logged_per_epoch(digits) -> None:
    cosine = make_trainer(schedule="cosine", learning_rate=0.01, warmup_epochs=1)
    rates = cosine.fit(digits, epochs=4).column("learning_rate")
    assert rates[0] == pytest.approx(0.01 * 20 / 21, rel=1e-4)  # end of warmup
    assert rates[0] > rates[1] > rates[2] > rates[3]
    assert rates[3] == pytest.approx(0.0, abs=1e-5)
    one_cycle = make_trainer(schedule="one_cycle", learning_rate=0.01)
    rates = one_cycle.fit(digits, epochs=4).column("learning_rate")
    assert max(rates) == rates[1]  # warms up over 30% of the run, then anneals
    assert rates[0] < rates[1] and rates[3] < 1e-4
    constant = make_trainer(learning_rate=0.005, optimizer="sgd")
    assert constant.fit(digits, epochs=1).column("learning_rate") == pytest.approx(
        [0.005]
    )
    assert set(SCHEDULES) == {"constant", "cosine", "one_cycle", "triangle"}


def test_triangle_schedule_is_airbenchs() -> None:
    from kerasimgcls.training._schedules import make_schedule

    schedule = make_schedule("triangle", 2.0, total_steps=100)
    rates = [float(schedule(step)) for step in (0, 23, 100, 200)]
    # Linear from 0.2 * peak up to peak at 23%, then down to 0.07 * peak.
    assert rates == pytest.approx([0.4, 2.0, 0.14, 0.14], rel=1e-5)
    middle = float(schedule(23 + 77 // 2 + 0.5))
    assert middle == pytest.approx(2.0 - (2.0 - 0.14) / 2, rel=1e-5)
    assert float(schedule(11.5)) == pytest.approx(1.2, rel=1e-5)


def test_make_schedule_shapes_and_checks() -> None:
    from kerasimgcls.training._schedules import make_schedule

    def rates(schedule, steps):  # type: ignore[no-untyped-def]
        return [float(schedule(step)) for step in steps]

    # one_cycle: 30% warm-up from peak/25, cosine down to peak/1e4, flat after.
    one_cycle = make_schedule("one_cycle", 2.0, total_steps=100)
    assert rates(one_cycle, (0, 15, 30, 65, 100, 150)) == pytest.approx(
        [0.08, 0.08 + (2.0 - 0.08) / 2, 2.0, (2.0 + 2e-4) / 2, 2e-4, 2e-4], rel=1e-5
    )
    assert rates(
        make_schedule("one_cycle", 1.0, total_steps=100, warmup_steps=10), (10, 9)
    ) == pytest.approx([1.0, 0.04 + 0.96 * 0.9], rel=1e-5)
    triangle = make_schedule("triangle", 1.0, total_steps=50, warmup_steps=10)
    assert rates(triangle, (0, 5, 10, 30, 50)) == pytest.approx(
        [0.2, 0.6, 1.0, 1.0 - 0.93 / 2, 0.07], rel=1e-5
    )
    # cosine and constant: no warm-up unless asked, peak from step 0.
    cosine = make_schedule("cosine", 0.5, total_steps=40)
    assert rates(cosine, (0, 10, 20, 40, 80)) == pytest.approx(
        [0.5, 0.25 * (1 + np.cos(np.pi / 4)), 0.25, 0.0, 0.0], abs=1e-7
    )
    constant = make_schedule("constant", 0.3, total_steps=40, warmup_steps=3)
    assert rates(constant, (0, 1, 3, 39, 400)) == pytest.approx(
        [0.0, 0.1, 0.3, 0.3, 0.3], rel=1e-5
    )
    # Linear, not cosine, between the ends (a quarter of the way down) ...
    assert float(triangle(20)) == pytest.approx(1.0 - 0.93 / 4, rel=1e-5)
    # ... a one-step warm-up is a warm-up, and a one-step decay ends at its floor.
    for kind in ("one_cycle", "triangle"):
        short = make_schedule(kind, 1.0, total_steps=100, warmup_steps=1)
        assert short.get_config()["warmup_steps"] == 1
    assert float(
        make_schedule("triangle", 1.0, total_steps=11, warmup_steps=10)(11)
    ) == pytest.approx(0.07, rel=1e-5)
    assert float(WarmupSchedule("cosine", 1.0, total_steps=1)(1)) == pytest.approx(
        0.0, abs=1e-7
    )
    assert float(WarmupSchedule("constant", 0.5, total_steps=10)(0)) == pytest.approx(
        0.5
    )
    for schedule in (one_cycle, triangle, cosine, constant):
        config = schedule.get_config()
        assert WarmupSchedule(**config).get_config() == config
        assert rates(WarmupSchedule.from_config(config), range(0, 120, 7)) == rates(
            schedule, range(0, 120, 7)
        )
    assert one_cycle.get_config() == {
        "kind": "one_cycle",
        "peak": 2.0,
        "total_steps": 100,
        "warmup_steps": 30,
        "initial_fraction": 0.04,
        "final_fraction": 1e-4,
    }


def test_keras_schedule_is_accepted(digits) -> None:
    schedule = keras.optimizers.schedules.ExponentialDecay(0.01, 21, 0.5)
    rates = (
        make_trainer(schedule=schedule).fit(digits, epochs=2).column("learning_rate")
    )
    assert rates[1] == pytest.approx(rates[0] / 2, rel=0.05)
    with pytest.raises(ValueError, match="either a LearningRateSchedule"):
        make_trainer(schedule=schedule, learning_rate=0.1)


# ---------------------------------------------------------- label smoothing
def test_label_smoothing_changes_the_loss_exactly(digits) -> None:
    model = tiny_cnn()
    trainer = Trainer(model, learning_rate=3e-3, verbose=0, deterministic=False)
    trainer.fit(digits, epochs=2)  # a model that tells classes apart
    split = digits.test
    plain = trainer.evaluate(split)["loss"]
    smooth = Trainer(
        model, label_smoothing=0.2, verbose=0, deterministic=False
    ).evaluate(split)["loss"]
    probabilities = np.clip(kic.predict_proba(model, split.images), 1e-7, 1.0)
    targets = np.eye(10)[split.labels] * 0.8 + 0.2 / 10
    expected = float(np.mean(-(targets * np.log(probabilities)).sum(axis=1)))
    assert smooth == pytest.approx(expected, rel=1e-4)
    targets = np.eye(10)[split.labels]
    expected = float(np.mean(-(targets * np.log(probabilities)).sum(axis=1)))
    assert plain == pytest.approx(expected, rel=1e-4)
    assert abs(smooth - plain) > 0.05


# ------------------------------------------------------------ early stopping
@pytest.mark.slow
def test_early_stopping_stops_and_restores_best_weights(digits, tmp_path) -> None:
    # Wrong validation labels: the better the model fits, the worse val_loss.
    wrong = kic.Split(digits.validation.images, (digits.validation.labels + 1) % 10)
    data = kic.ImageDataset(digits.train, wrong, None, digits.class_names)
    trainer = make_trainer(
        early_stopping_patience=2, learning_rate=3e-3, run_dir=tmp_path
    )
    history = trainer.fit(data, epochs=12)
    val_losses = history.column("val_loss")
    best = int(np.argmin(val_losses))
    assert len(history) == best + 1 + 2 < 12
    restored = trainer.evaluate(wrong, name="validation")["loss"]
    assert restored == pytest.approx(val_losses[best], rel=1e-4)
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["final"]["stopped_early_at_epoch"] == len(history)
    # Running it again finds the finished run: no more epochs.
    again = make_trainer(
        early_stopping_patience=2, learning_rate=3e-3, run_dir=tmp_path
    )
    assert len(again.fit(data, epochs=12)) == len(history)


# -------------------------------------------------------------- class weight
def test_class_weight_mapping_steers_training(digits) -> None:
    only_zero = {index: 0.0 for index in range(1, 10)} | {0: 1.0}
    trainer = make_trainer(class_weight=only_zero, learning_rate=3e-3)
    trainer.fit(digits, epochs=2)
    predicted = trainer.predict(digits.test.images).argmax(axis=1)
    # Only class 0 carries loss, so the model learns to call everything 0.
    assert np.mean(predicted == 0) > 0.9


def test_class_weight_balanced_and_bad_keys(
    digits, tmp_path: Path, monkeypatch
) -> None:
    keep = np.flatnonzero(
        (digits.train.labels != 1) | (np.arange(len(digits.train)) % 5 == 0)
    )
    skewed = kic.ImageDataset(digits.train.subset(keep), None, None, digits.class_names)
    seen: list[dict[int, float]] = []
    real_fit = keras.Model.fit

    def spy(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen.append(kwargs["class_weight"])
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "fit", spy)
    trainer = make_trainer(class_weight="balanced", run_dir=tmp_path)
    assert len(trainer.fit(skewed, epochs=1)) == 1
    # "balanced" is n / (k * count) per class: the rare class 1 weighs about 5x.
    counts = np.bincount(skewed.train.labels, minlength=10)
    expected = len(skewed.train) / (10 * counts)
    (weights,) = seen
    assert sorted(weights) == list(range(10))
    np.testing.assert_allclose([weights[c] for c in range(10)], expected, rtol=1e-9)
    assert weights[1] > 4 * weights[0]
    run = json.loads((tmp_path / "run.json").read_text())
    assert run["config"]["class_weight"] == "balanced"
    with pytest.raises(ValueError, match=r"class_weight keys must be class indices"):
        make_trainer(class_weight={12: 1.0}).fit(digits, epochs=1)


# ---------------------------------------------------------------- recipes
def test_reference_recipe_is_the_tutorial() -> None:
    recipe = kic.get_recipe("reference")
    assert (recipe.model, recipe.optimizer, recipe.batch_size, recipe.epochs) == (
        "cifar_cnn",
        "adam",
        64,
        25,
    )
    assert recipe.augment is None and recipe.schedule is None
    optimizer = recipe.make_optimizer()
    assert isinstance(optimizer, keras.optimizers.Adam)
    assert float(optimizer.learning_rate) == pytest.approx(1e-3)
    assert json.loads(json.dumps(recipe.to_dict()))["name"] == "reference"


def test_recipe_registry_errors() -> None:
    with pytest.raises(ValueError, match=r"Unknown recipe 'nope'\. Available: \["):
        kic.get_recipe("nope")
    with pytest.raises(ValueError, match="already registered"):
        kic.register_recipe(kic.Recipe("reference", "again"))
    with pytest.raises(TypeError, match="recipe must be a Recipe"):
        kic.register_recipe("reference")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="epochs must be >= 1"):
        kic.Recipe("bad", "bad", epochs=0)
    with pytest.raises(ValueError, match="warmup_epochs must be >= 0"):
        kic.Recipe("bad", "bad", warmup_epochs=-1)
    custom = kic.register_recipe(kic.Recipe("test_quick", "quick", epochs=2))
    assert kic.get_recipe("test_quick") is custom
    assert "test_quick" in kic.list_recipes()
    kic.register_recipe(kic.Recipe("test_quick", "replaced", epochs=3), replace=True)
    assert kic.get_recipe("test_quick").epochs == 3


def test_recipe_optimizer_kwargs_reach_the_trainer(digits, tmp_path: Path) -> None:
    recipe = kic.Recipe(
        "sgd_test",
        "nesterov sgd",
        optimizer="sgd",
        optimizer_kwargs={"momentum": 0.9, "nesterov": True},
    )
    optimizer = recipe.make_optimizer()
    assert (optimizer.momentum, optimizer.nesterov) == (0.9, True)
    trainer = make_trainer(optimizer=optimizer, learning_rate=0.05, run_dir=tmp_path)
    trainer.fit(digits, epochs=1)
    compiled = trainer.model.optimizer
    assert isinstance(compiled, keras.optimizers.SGD) and compiled.nesterov
    assert compiled is not optimizer  # copied from its config, never mutated
    config = json.loads((tmp_path / "run.json").read_text())["config"]
    assert config["optimizer"]["config"]["momentum"] == 0.9
    assert config["learning_rate"] == 0.05


@pytest.mark.slow
def test_digits_recipe_evaluates_as_well_as_it_trains() -> None:
    """The digits recipe's batch-norm momentum keeps validation close to training."""
    import kerasimgcls as kic

    recipe = kic.get_recipe("digits")
    data = kic.load_digits(seed=0)
    trainer = kic.Trainer(
        lambda: kic.get_model(
            recipe.model,
            input_shape=data.input_shape,
            num_classes=data.num_classes,
            **dict(recipe.model_kwargs),
        ),
        seed=0,
        verbose=0,
    )
    trainer.fit(data, epochs=8, batch_size=recipe.batch_size)
    # With Keras' default momentum (the reference recipe) this is near chance.
    assert trainer.evaluate(data.validation)["accuracy"] > 0.85
