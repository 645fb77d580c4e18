"""One input contract for every model, and precise batch norm (issue: own models).

A keras.io-style model with its own ``Rescaling`` layer and a model that expects
``[0, 1]`` are trained on the same task (a circle or a cross on noise, its place
random); every helper must feed each one what it expects.
"""

from __future__ import annotations

import warnings

import keras
import numpy as np
import pytest

import kerasimgcls as kic


def _shapes(count: int, seed: int, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Images of a bright circle (class 0) or cross (class 1) on dark noise."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[:size, :size]
    images = rng.integers(0, 60, (count, size, size, 3)).astype(np.uint8)
    labels = np.arange(count) % 2
    for image, label in zip(images, labels, strict=True):
        radius = rng.uniform(0.2, 0.3) * size
        cy, cx = rng.uniform(radius + 1, size - radius - 1, 2)
        if label == 0:
            mask = (rows - cy) ** 2 + (cols - cx) ** 2 <= radius**2
        else:
            arm = radius / 3
            horizontal = (abs(rows - cy) <= arm) & (abs(cols - cx) <= radius)
            vertical = (abs(cols - cx) <= arm) & (abs(rows - cy) <= radius)
            mask = horizontal | vertical
        image[mask] = rng.integers(180, 256, 3)
    return images, labels


def _conv_model(rescaling: bool) -> keras.Model:
    inputs = keras.Input((32, 32, 3))
    x = keras.layers.Rescaling(1 / 255)(inputs) if rescaling else inputs
    for index, filters in enumerate((16, 32)):
        x = keras.layers.Conv2D(filters, 3, padding="same", name=f"conv{index}")(x)
        x = keras.layers.BatchNormalization(name=f"bn{index}")(x)
        x = keras.layers.Activation("relu")(x)
        x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="last")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(2, activation="softmax", name="classes")(x)
    return keras.Model(inputs, outputs, name="rescaling" if rescaling else "unit")


def circle_cross_data() -> kic.ImageDataset:
    """320 training and 100 test images of the circle-or-cross task."""
    x, y = _shapes(320, seed=1)
    x_test, y_test = _shapes(100, seed=2)
    return kic.from_arrays(
        x,
        y,
        x_test=x_test,
        y_test=y_test,
        class_names=["circle", "cross"],
        validation_split=0.0,
        seed=0,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):  # type: ignore[no-untyped-def]
    """Both models trained by the Trainer on the same data, and the test images."""
    data = circle_cross_data()
    runs = {}
    for rescaling in (True, False):
        run_dir = tmp_path_factory.mktemp("run")
        trainer = kic.Trainer(
            lambda r=rescaling: _conv_model(r),
            seed=0,
            verbose=0,
            run_dir=run_dir,
            learning_rate=3e-3,
        )
        trainer.fit(data, epochs=8, batch_size=32)
        runs[rescaling] = (trainer, run_dir)
    return runs, data


def _direct(model: keras.Model, images: np.ndarray, scaling: str) -> np.ndarray:
    feed = images.astype(np.float32)
    if scaling == "unit":
        feed = feed / np.float32(255)
    return np.asarray(model.predict(feed, verbose=0))


def test_resolve_input_scaling_decides_from_the_model() -> None:
    assert kic.resolve_input_scaling(_conv_model(True)).scaling == "raw"
    decision = kic.resolve_input_scaling(_conv_model(False))
    assert decision.scaling == "unit" and "input_scaling='raw'" in decision.reason
    # Nested models (keras.io's augmentation Sequential, Rescaling inside a
    # nested model): test_scaling_evidence_inside_nested_models_is_found.
    # Normalization adapted on 0-255 pixels, or on [0, 1] ones.
    for pixels, expected in ((255.0, "raw"), (1.0, "unit")):
        layer = keras.layers.Normalization()
        layer.adapt(np.random.default_rng(0).uniform(0, pixels, (16, 8, 8, 3)))
        inputs = keras.Input((8, 8, 3))
        x = keras.layers.Conv2D(2, 3)(layer(inputs))
        decided = kic.resolve_input_scaling(keras.Model(inputs, x))
        assert decided.scaling == expected
    exported = kic.export_model(_conv_model(False), ["a", "b"])
    assert kic.resolve_input_scaling(exported).scaling == "raw"
    said = kic.resolve_input_scaling(_conv_model(True), "unit")
    assert said == kic.ScalingDecision("unit", "input_scaling='unit' given")
    with pytest.raises(ValueError, match="input_scaling must be one of"):
        kic.resolve_input_scaling(_conv_model(True), "0-255")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="input_scaling must be one of"):
        kic.grad_cam(
            _conv_model(True), np.zeros((32, 32, 3), np.uint8), input_scaling="x"
        )  # type: ignore[arg-type]


def _nested(*layers: keras.Layer, depth: int = 1) -> keras.Model:
    """``layers`` inside ``depth`` nested Sequentials, then a weighted head."""
    inner: keras.Layer = keras.Sequential(list(layers), name="inner0")
    for level in range(1, depth):
        inner = keras.Sequential([inner], name=f"inner{level}")
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Flatten()(inner(inputs))
    return keras.Model(inputs, keras.layers.Dense(2)(x))


def test_scaling_evidence_inside_nested_models_is_found() -> None:
    # The Rescaling layer inside the nested model (a backbone, an augmentation
    # block with its own scaling), one and two levels down: the search must
    # enter it rather than stop at the nested model as one weighted layer.
    flip = keras.layers.RandomFlip("horizontal")
    for depth in (1, 2):
        inside = _nested(flip, keras.layers.Rescaling(1 / 255), depth=depth)
        decision = kic.resolve_input_scaling(inside)
        assert decision.scaling == "raw", (depth, decision)
        assert "rescales the input itself" in decision.reason
        assert not decision.guessed
    # A nested model whose first weighted layer comes before any scaling: no
    # evidence in it, and the search stops there (a Rescaling later is an
    # internal layer, not the input's scaling).
    late = _nested(keras.layers.Conv2D(3, 1), keras.layers.Rescaling(1 / 255), depth=1)
    assert kic.resolve_input_scaling(late).guessed
    # keras.io: an augmentation Sequential (no weighted layer) is walked past to
    # the Rescaling after it.
    after = keras.Input((8, 8, 3))
    x = keras.Sequential([keras.layers.RandomFlip("horizontal")])(after)
    x = keras.layers.Rescaling(1 / 255)(x)
    x = keras.layers.Dense(2)(keras.layers.Flatten()(x))
    assert kic.resolve_input_scaling(keras.Model(after, x)).scaling == "raw"


def test_trainer_trains_the_rescaling_model_as_well_as_the_other(trained) -> None:  # type: ignore[no-untyped-def]
    runs, data = trained
    scores = {r: runs[r][0].evaluate(data.test)["accuracy"] for r in runs}
    assert scores[True] >= 0.9 and scores[False] >= 0.9, scores
    assert abs(scores[True] - scores[False]) <= 0.05, scores
    import json

    recorded = json.loads((runs[True][1] / "run.json").read_text())
    assert recorded["input_scaling"]["scaling"] == "raw"
    assert "rescales the input itself" in recorded["input_scaling"]["reason"]


def test_helpers_agree_with_model_predict_on_correctly_fed_inputs(trained) -> None:  # type: ignore[no-untyped-def]
    runs, data = trained
    for rescaling, (trainer, run_dir) in runs.items():
        model = trainer.model
        expected = _direct(model, data.test.images, "raw" if rescaling else "unit")
        probabilities = kic.predict_proba(model, data.test.images)
        np.testing.assert_allclose(probabilities, expected, atol=1e-5)
        report = kic.classification_report(model, data.test)
        truth = float(np.mean(expected.argmax(1) == data.test.labels))
        assert report.accuracy == pytest.approx(truth)
        # The saved model takes uint8 and is not scaled twice either.
        saved = kic.load_model(run_dir)
        np.testing.assert_allclose(
            kic.predict_proba(saved, data.test.images), expected, atol=1e-5
        )
        features = kic.embeddings(model, data.test.images[:8])
        np.testing.assert_allclose(
            kic.embeddings(saved, data.test.images[:8]), features, atol=1e-4
        )


def _dilate(mask: np.ndarray, pixels: int) -> np.ndarray:
    padded = np.pad(mask, pixels)
    size = mask.shape[0]
    window = range(2 * pixels + 1)
    return np.any(
        [padded[i : i + size, j : j + size] for i in window for j in window], axis=0
    )


def _cam_mass(model: keras.Model, images: np.ndarray, scaling: str) -> tuple:
    masses, shares = [], []
    for image in images:
        # The circle or cross a person sees, and 2 pixels around it (the
        # heatmap comes from an 8x8 layer).
        region = _dilate(image.max(axis=-1) > 150, 2)
        heatmap = kic.grad_cam(model, image, input_scaling=scaling).heatmap
        masses.append(heatmap[region].sum() / heatmap.sum())
        shares.append(region.mean())
    return float(np.mean(masses)), float(np.mean(shares))


def test_grad_cam_looks_at_the_shape_for_both_models(trained) -> None:  # type: ignore[no-untyped-def]
    runs, data = trained
    images = data.test.images[:16]
    for trainer, _ in runs.values():
        mass, share = _cam_mass(trainer.model, images, "auto")
        # A flat heatmap would put the region's share of the image there.
        assert mass >= 0.5 and mass >= 1.5 * share, (mass, share)
    # Fed [0, 1] pixels (what every helper did before), the Rescaling model sees
    # [0, 1/255] and its heatmap misses the shape.
    wrong, share = _cam_mass(runs[True][0].model, images, "unit")
    assert wrong < share, (wrong, share)


def test_find_learning_rate_feeds_the_rescaling_model_raw_pixels(trained) -> None:  # type: ignore[no-untyped-def]
    runs, data = trained
    model = runs[True][0].model
    result = kic.find_learning_rate(
        model, data, min_lr=1e-9, max_lr=1e-8, num_steps=3, batch_size=64
    )
    # The trained model's loss on its training images, fed right, is low.
    assert result.losses[0] < 0.4, result.losses


def _tiny_bn_model() -> keras.Model:
    inputs = keras.Input((6, 6, 2))
    x = keras.layers.Conv2D(3, 3, padding="same", name="conv1")(inputs)
    x = keras.layers.Dropout(0.5)(x)
    x = keras.layers.BatchNormalization(name="bn1")(x)
    x = keras.layers.Activation("relu")(x)
    x = keras.layers.Conv2D(4, 3, name="conv2")(x)
    x = keras.layers.BatchNormalization(name="bn2", momentum=0.5)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(x))


def _input_moments(model: keras.Model, name: str, feed: np.ndarray) -> tuple:
    layer = model.get_layer(name)
    upstream = keras.Model(model.input, layer.input)
    values = np.asarray(upstream(feed, training=False), dtype=np.float64)
    flat = values.reshape(-1, values.shape[-1])
    return flat.mean(axis=0), flat.var(axis=0)


# 16: layer by layer over four batches; None: one compiled pass over all 50.
@pytest.mark.parametrize("batch_size", [16, None])
def test_precise_batch_norm_equals_a_direct_computation(batch_size: int | None) -> None:
    keras.utils.set_random_seed(3)
    model = _tiny_bn_model()
    for name in ("bn1", "bn2"):  # statistics that describe nothing
        layer = model.get_layer(name)
        layer.moving_mean.assign(np.full(layer.moving_mean.shape, 5.0))
        layer.moving_variance.assign(np.full(layer.moving_variance.shape, 9.0))
    images = np.random.default_rng(0).integers(0, 256, (50, 6, 6, 2), np.uint8)
    weights = [keras.ops.convert_to_numpy(w) for w in model.trainable_weights]
    summary = kic.precise_batch_norm(model, images, batch_size=batch_size)
    assert summary == {
        "layers": ["bn1", "bn2"],
        "num_images": 50,
        "input_scaling": "unit",
    }
    feed = images.astype(np.float32) / 255
    for name in ("bn1", "bn2"):  # bn2's input depends on bn1's new statistics
        mean, variance = _input_moments(model, name, feed)
        layer = model.get_layer(name)
        np.testing.assert_allclose(np.asarray(layer.moving_mean), mean, rtol=1e-5)
        np.testing.assert_allclose(
            np.asarray(layer.moving_variance), variance, rtol=1e-4
        )
    for before, after in zip(weights, model.trainable_weights, strict=True):
        np.testing.assert_array_equal(before, np.asarray(after))
    # A seeded sample: the same images give the same statistics; nested works.
    exported = kic.export_model(model, ["a", "b"])
    again = kic.precise_batch_norm(exported, images, num_images=20, seed=4)
    first = np.asarray(model.get_layer("bn2").moving_variance)
    kic.precise_batch_norm(exported, images, num_images=20, seed=4)
    np.testing.assert_array_equal(
        np.asarray(model.get_layer("bn2").moving_variance), first
    )
    assert again["num_images"] == 20 and again["input_scaling"] == "raw"
    with pytest.raises(TypeError, match="images must be uint8"):
        kic.precise_batch_norm(model, feed)
    with pytest.raises(ValueError, match="images must have shape"):
        kic.precise_batch_norm(model, images[:, :4])
    with pytest.raises(ValueError, match="num_images"):
        kic.precise_batch_norm(model, images, num_images=0)


def test_precise_batch_norm_leaves_frozen_layers_and_runs_before_validation() -> None:
    keras.utils.set_random_seed(0)
    model = _tiny_bn_model()
    model.get_layer("bn1").trainable = False
    frozen = np.asarray(model.get_layer("bn1").moving_mean).copy()
    images = np.random.default_rng(1).integers(0, 256, (40, 6, 6, 2), np.uint8)
    labels = keras.utils.to_categorical(np.arange(40) % 2, 2)
    callback = kic.PreciseBatchNorm(images)
    seen = {}

    class Spy(keras.callbacks.Callback):  # type: ignore[misc]
        def on_test_begin(self, logs=None):  # type: ignore[no-untyped-def]
            seen["mean"] = np.asarray(self.model.get_layer("bn2").moving_mean).copy()

    model.compile("adam", "categorical_crossentropy")
    model.fit(
        images / 255,
        labels,
        epochs=2,
        batch_size=8,
        verbose=0,
        validation_data=(images / 255, labels),
        callbacks=[callback, Spy()],
    )
    np.testing.assert_array_equal(
        np.asarray(model.get_layer("bn1").moving_mean), frozen
    )
    mean, _ = _input_moments(model, "bn2", images.astype(np.float32) / 255)
    # The validation saw the re-estimated statistics of the final weights.
    np.testing.assert_allclose(seen["mean"], mean, rtol=1e-5)
    state = callback.state_dict()
    assert state["layers"] == ["bn2"]
    other = kic.PreciseBatchNorm(images)
    other.load_state_dict(state)
    assert other.state_dict() == state


def test_trainer_warns_when_inference_disagrees_with_training(digits) -> None:  # type: ignore[no-untyped-def]
    small = kic.from_arrays(
        digits.train.images[:128],
        digits.train.labels[:128],
        validation_split=0.0,
        seed=0,
    )

    def build() -> keras.Model:
        return kic.build_cifar_cnn(input_shape=(8, 8, 1), num_classes=10)

    results = {}
    for precise in (False, True):
        trainer = kic.Trainer(
            build, seed=0, verbose=0, precise_batch_norm=precise, learning_rate=3e-3
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            trainer.fit(small, epochs=12, batch_size=64)
        results[precise] = (trainer.final["inference_check"], caught)
    lagging, caught = results[False]
    assert not lagging["agrees"], lagging
    assert any(
        "does not run at inference as it learned" in str(w.message) for w in caught
    )
    fixed, caught = results[True]
    assert fixed["agrees"], fixed
    assert fixed["inference_accuracy"] > lagging["inference_accuracy"] + 0.2
    assert not any("inference" in str(w.message) for w in caught)
