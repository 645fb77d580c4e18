"""WeightAveraging: EMA / lookahead numerics, batch-norm statistics, validation, resume."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
import pytest

import kerasimgcls as kic


def _model(seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((4, 4, 1))
    x = keras.layers.Conv2D(3, 3, name="conv")(inputs)
    x = keras.layers.BatchNormalization(momentum=0.5, name="bn")(x)
    x = keras.layers.Flatten()(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="dense")(x)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
        loss="categorical_crossentropy",
    )
    return model


def _data(n: int = 24) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    images = rng.normal(size=(n, 4, 4, 1)).astype(np.float32)
    labels = np.eye(2, dtype=np.float32)[rng.integers(0, 2, n)]
    return images, labels


def _values(model: keras.Model) -> list[np.ndarray]:
    return [keras.ops.convert_to_numpy(v) for v in model.weights]


def _fit(model: keras.Model, callbacks: list[Any], n: int = 24, **extra: Any) -> None:
    """Two epochs of ``n / 4`` steps in a fixed order."""
    images, labels = _data(n)
    model.fit(
        images,
        labels,
        batch_size=4,
        epochs=2,
        verbose=0,
        shuffle=False,
        callbacks=callbacks,
        **extra,
    )


def _reference(
    start: list[np.ndarray], raw: list[list[np.ndarray]], every: int, decay: Any
) -> list[np.ndarray]:
    """numpy EMA: ``average += (1 - decay(t)) (raw_t - average)`` at every ``every``."""
    average = [value.astype(np.float32) for value in start]
    for step, values in enumerate(raw, start=1):
        if step % every == 0:
            weight = np.float32(1.0 - decay(step))
            average = [
                a + weight * (v - a) for a, v in zip(average, values, strict=True)
            ]
    return average


class _Recorder(keras.callbacks.Callback):  # type: ignore[misc]
    """Records the model's variables after every training batch (before averaging)."""

    def __init__(self) -> None:
        super().__init__()
        self.after_batch: list[list[np.ndarray]] = []
        self.at_test: list[list[np.ndarray]] = []

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        self.after_batch.append(_values(self.model))

    def on_test_begin(self, logs: Any = None) -> None:
        self.at_test.append(_values(self.model))


def test_weight_averaging_ema_matches_a_numpy_reference() -> None:
    model = _model()
    start = _values(model)
    # The recorder runs first: it sees each step's raw weights before the update.
    recorder = _Recorder()
    averaging = kic.WeightAveraging(0.8, every=2, validate_with_average=False)
    _fit(model, [recorder, averaging])
    assert len(recorder.after_batch) == 12
    reference = _reference(start, recorder.after_batch, 2, lambda step: 0.8**2)
    for got, want in zip(_values(model), reference, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    # Not the last raw weights: the average differs from them.
    assert not np.allclose(_values(model)[0], recorder.after_batch[-1][0])
    assert averaging.state_dict()["updates"] == 6


def test_weight_averaging_lookahead_with_ramp_matches_airbench_schedule() -> None:
    model = _model()
    start = _values(model)
    recorder = _Recorder()
    averaging = kic.WeightAveraging(
        0.95, every=3, lookahead=True, ramp_power=3.0, validate_with_average=False
    )
    _fit(model, [recorder, averaging])
    total = 12  # 2 epochs of 6 steps: fit's length is the ramp's T
    assert averaging.decay_at(6) == pytest.approx(0.95**3 * (6 / total) ** 3)
    # ema.lerp(net, 1 - d) at every third step, d = 0.95**3 * (t / T)**3; the
    # recorded weights are the raw ones of each step (the net is reset after).
    average = _reference(
        start, recorder.after_batch, 3, lambda step: 0.95**3 * (step / total) ** 3
    )
    for got, want in zip(_values(model), average, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)


def test_weight_averaging_lookahead_resets_the_net_to_the_average() -> None:
    model = _model()
    images, labels = _data(8)
    snapshots: list[list[np.ndarray]] = []

    class After(keras.callbacks.Callback):  # type: ignore[misc]
        def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
            snapshots.append(_values(self.model))

    averaging = kic.WeightAveraging(0.5, every=1, lookahead=True)
    # After runs second: it sees the weights once the callback has acted.
    model.fit(
        images,
        labels,
        batch_size=4,
        epochs=1,
        verbose=0,
        callbacks=[averaging, After()],
    )
    state = averaging.state_dict()
    last = snapshots[-1]
    for variable, value in zip(model.weights, last, strict=True):
        np.testing.assert_array_equal(state["average/" + variable.path], value)


def test_weight_averaging_covers_batch_norm_statistics() -> None:
    model = _model()
    images, labels = _data()
    averaging = kic.WeightAveraging(0.9, validate_with_average=False)
    model.fit(images, labels, batch_size=4, epochs=1, verbose=0, callbacks=[averaging])
    keys = set(averaging.state_dict())
    bn = model.get_layer("bn")
    assert "average/" + bn.moving_mean.path in keys
    assert "average/" + bn.moving_variance.path in keys
    # The model ends with the averaged moving statistics, not the last ones.
    np.testing.assert_array_equal(
        keras.ops.convert_to_numpy(bn.moving_mean),
        averaging.state_dict()["average/" + bn.moving_mean.path],
    )


def test_weight_averaging_validates_with_the_average_and_trains_on_raw_weights() -> (
    None
):
    images, labels = _data()
    recorder = _Recorder()
    model = _model()
    # Averaging first: at on_test_begin the recorder sees what validation uses.
    _fit(model, [kic.WeightAveraging(0.7), recorder], validation_data=(images, labels))
    assert len(recorder.at_test) == 2
    # The first validation used the average after epoch 1, not the raw weights.
    raw_end_of_epoch_1 = recorder.after_batch[5]
    assert not np.allclose(recorder.at_test[0][0], raw_end_of_epoch_1[0])
    # Training resumed from the raw weights: same run without validation.
    plain = _model()
    plain_recorder = _Recorder()
    _fit(plain, [kic.WeightAveraging(0.7), plain_recorder])
    for got, want in zip(
        recorder.after_batch[-1], plain_recorder.after_batch[-1], strict=True
    ):
        np.testing.assert_array_equal(got, want)
    # And the last validation's weights were exactly the final average.
    for got, want in zip(recorder.at_test[-1], _values(model), strict=True):
        np.testing.assert_array_equal(got, want)


def _fit_segment(
    model: keras.Model,
    averaging: kic.WeightAveraging,
    initial_epoch: int,
    epochs: int,
    stop_after: int | None = None,
) -> dict[str, Any]:
    images, labels = _data()
    dataset, steps = kic.epochs_dataset(
        kic.Split((images * 40 + 128).clip(0, 255).astype(np.uint8), labels.argmax(1)),
        num_classes=2,
        batch_size=4,
        initial_epoch=initial_epoch,
        epochs=4,
        seed=3,
    )
    saved: dict[str, Any] = {}

    class Checkpoint(keras.callbacks.Callback):  # type: ignore[misc]
        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            if stop_after is not None and epoch + 1 == stop_after:
                saved["model"] = _values(self.model)
                saved["optimizer"] = [
                    keras.ops.convert_to_numpy(v)
                    for v in self.model.optimizer.variables
                ]
                saved["averaging"] = averaging.state_dict()
                self.model.stop_training = True

    model.fit(
        dataset,
        epochs=epochs,
        initial_epoch=initial_epoch,
        steps_per_epoch=steps,
        verbose=0,
        callbacks=[averaging, Checkpoint()],
    )
    return saved


def test_weight_averaging_state_dict_round_trip_continues_bit_identically() -> None:
    settings = {"every": 2, "lookahead": True, "ramp_power": 3.0}
    uninterrupted = _model()
    _fit_segment(uninterrupted, kic.WeightAveraging(0.9, **settings), 0, 4)

    first = _model()
    saved = _fit_segment(
        first, kic.WeightAveraging(0.9, **settings), 0, 4, stop_after=2
    )
    assert saved["averaging"]["step"] == 12

    resumed = _model(seed=5)  # other initial weights: everything comes from the state
    resumed.optimizer.build(resumed.trainable_variables)
    for variable, value in zip(resumed.weights, saved["model"], strict=True):
        variable.assign(value)
    for variable, value in zip(
        resumed.optimizer.variables, saved["optimizer"], strict=True
    ):
        variable.assign(value)
    averaging = kic.WeightAveraging(0.9, **settings)
    averaging.load_state_dict(saved["averaging"])
    assert averaging.state_dict()["step"] == 12
    _fit_segment(resumed, averaging, 2, 4)
    for got, want in zip(_values(resumed), _values(uninterrupted), strict=True):
        np.testing.assert_array_equal(got, want)


def test_weight_averaging_load_state_dict_refuses_a_mismatched_state() -> None:
    images, labels = _data(8)
    model = _model()
    averaging = kic.WeightAveraging(0.9)
    averaging.load_state_dict({"step": 3, "updates": 3, "average/nope": np.zeros(2)})
    with pytest.raises(ValueError, match="does not match the model's variables"):
        model.fit(images, labels, epochs=1, verbose=0, callbacks=[averaging])
    with pytest.raises(ValueError, match="without a 'step' entry"):
        kic.WeightAveraging().load_state_dict({"updates": 1})


def test_weight_averaging_checks_its_arguments() -> None:
    with pytest.raises(ValueError, match="decay must be <= 1"):
        kic.WeightAveraging(1.5)
    with pytest.raises(TypeError, match="decay must be a number"):
        kic.WeightAveraging("0.9")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="every must be >= 1"):
        kic.WeightAveraging(every=0)
    with pytest.raises(ValueError, match="ramp_power must be >= 0"):
        kic.WeightAveraging(ramp_power=-1.0)
    with pytest.raises(TypeError, match="total_steps must be an integer or None"):
        kic.WeightAveraging(total_steps=2.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="lookahead must be True or False"):
        kic.WeightAveraging(lookahead=1)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="ramp_power needs the run's length"):
        kic.WeightAveraging(ramp_power=3.0).decay_at(4)
    assert kic.WeightAveraging(0.9, total_steps=10, ramp_power=1.0).decay_at(5) == (
        pytest.approx(0.45)
    )
