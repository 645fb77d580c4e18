"""The performance recipes ("improved", "airbench") and the recipe runner's parts."""

from __future__ import annotations

import numpy as np
import pytest

import kerasimgcls as kic
from kerasimgcls.training._recipes import get_recipe


def test_improved_recipe_keeps_the_reference_model() -> None:
    recipe = get_recipe("improved")
    assert recipe.model == "cifar_cnn"
    assert recipe.epochs == 10
    assert recipe.label_smoothing == pytest.approx(0.1)
    assert dict(recipe.augment or {}) == {"flip": True, "translate": 2}
    assert type(recipe.make_optimizer()).__name__ == "Adam"
    # Same layers and parameters as the reference; only the dropout rates differ.
    model = kic.get_model(recipe.model, **recipe.model_kwargs)
    assert model.count_params() == 393_962
    assert not any(type(layer).__name__ == "Dropout" for layer in model.layers), (
        "the improved recipe trains without dropout"
    )
    assert (recipe.precision, recipe.fused_batch_norm) == ("mixed_bfloat16", True)


def test_airbench_recipe_builds_its_model_and_optimizer() -> None:
    recipe = get_recipe("airbench")
    optimizer = recipe.make_optimizer()
    assert type(optimizer).__name__ == "SGD"
    assert optimizer.nesterov is True
    assert optimizer.momentum == pytest.approx(0.85)
    model = kic.get_model(
        recipe.model, input_shape=(32, 32, 3), num_classes=10, **recipe.model_kwargs
    )
    assert model.count_params() == 1_973_944  # airbench94's full widths
    assert recipe.schedule == "triangle"
    assert recipe.epochs == 10  # airbench94's 9.9 epochs
    # The triangle peaks at 23% of the run for any --epochs: no fixed warmup.
    from kerasimgcls.training._schedules import make_schedule

    for epochs in (10, 20):
        total = 176 * epochs
        schedule = make_schedule(
            recipe.schedule,
            recipe.learning_rate,
            total_steps=total,
            warmup_steps=round(recipe.warmup_epochs * 176),
        )
        rates = [float(schedule(step)) for step in range(0, total + 1, 8)]
        peak_step = 8 * max(range(len(rates)), key=rates.__getitem__)
        assert abs(peak_step - 0.23 * total) <= 8
        assert rates[0] == pytest.approx(0.2 * recipe.learning_rate)
    # 0.0153 per 1024 examples = weight_decay * learning_rate per 256-image step.
    assert optimizer.weight_decay * recipe.learning_rate * 1024 / 256 == pytest.approx(
        0.0153, rel=0.01
    )


def test_runner_schedule_warms_up_then_decays(load_benchmark) -> None:
    runner = load_benchmark("run_recipe")
    schedule = runner.OneCycle(1.0, 100, 0.2, 0.1, 0.2).schedule()
    values = [float(schedule(step)) for step in (0, 10, 20, 60, 100, 150)]
    assert values[0] == pytest.approx(0.2)
    assert values[1] == pytest.approx(0.6)
    assert values[2] == pytest.approx(1.0)
    assert values[3] == pytest.approx(0.55)
    assert values[4] == pytest.approx(0.1)
    assert values[5] == pytest.approx(0.1)  # never below the final value


def test_runner_flip_tta_averages_each_image_and_its_mirror(load_benchmark) -> None:
    import keras

    runner = load_benchmark("run_recipe")
    inputs = keras.Input((4, 4, 1))
    # Left half minus right half: mirroring an image swaps the class it favours.
    x = keras.layers.Conv2D(
        1,
        (4, 4),
        use_bias=False,
        kernel_initializer=keras.initializers.Constant(
            np.repeat([[1.0, 1.0, -1.0, -1.0]], 4, axis=0)[:, :, None, None]
        ),
    )(inputs)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(
        2,
        activation="softmax",
        kernel_initializer=keras.initializers.Constant([[-4.0, 4.0]]),
        bias_initializer=keras.initializers.Constant([0.0, 0.5]),
    )(x)
    model = keras.Model(inputs, outputs)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (64, 4, 4, 1), dtype=np.uint8)
    labels = rng.integers(0, 2, 64)
    x = images.astype(np.float32) / 255.0
    mean = model.predict(x, verbose=0) + model.predict(x[:, :, ::-1], verbose=0)
    expected = float(np.mean(mean.argmax(axis=1) == labels))
    plain = float(np.mean(model.predict(x, verbose=0).argmax(axis=1) == labels))
    assert expected != plain  # the test can tell a flip from no flip
    assert runner.flip_tta_accuracy(model, images, labels) == pytest.approx(expected)
