"""Grad-CAM, embeddings and similarity search (kerasimgcls.analysis.interpret)."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from PIL import Image

import kerasimgcls as kic

SIZE = 16
PATCH = 4


def _corner_images(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noise images; class 1 has a bright patch in a corner (corner = index % 4)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 90, size=(count, SIZE, SIZE, 1)).astype(np.uint8)
    labels = (np.arange(count) // 4) % 2
    for index in np.flatnonzero(labels == 1):
        row, column = _corner_origin(int(index % 4))
        images[index, row : row + PATCH, column : column + PATCH] = 255
    return images, labels


def _corner_origin(corner: int) -> tuple[int, int]:
    return (
        0 if corner in (0, 1) else SIZE - PATCH,
        0 if corner in (0, 2) else SIZE - PATCH,
    )


def _corner_mask(corner: int) -> np.ndarray:
    """The quarter of the image that holds a patch in ``corner``."""
    mask = np.zeros((SIZE, SIZE), bool)
    half = SIZE // 2
    rows = slice(0, half) if corner in (0, 1) else slice(half, SIZE)
    columns = slice(0, half) if corner in (0, 2) else slice(half, SIZE)
    mask[rows, columns] = True
    return mask


@pytest.fixture(scope="module")
def corner_model() -> keras.Model:
    """A small CNN trained to tell images with a bright corner patch from others."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((SIZE, SIZE, 1))
    x = kic.conv_block(inputs, 8, pool_size=2, name="block1")
    x = kic.conv_block(x, 16, pool_size=None, name="block2")
    outputs = kic.dense_head(x, 2, units=(), pooling="avg", name="head")
    model = keras.Model(inputs, outputs, name="corners")
    model.compile(
        optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy"
    )
    images, labels = _corner_images(400, seed=1)
    model.fit(images / 255.0, labels, epochs=8, batch_size=32, verbose=0)
    return model


@pytest.fixture(scope="module")
def corner_test() -> tuple[np.ndarray, np.ndarray]:
    return _corner_images(24, seed=2)


def test_corner_model_learned_the_task(corner_model, corner_test) -> None:
    images, labels = corner_test
    predicted = kic.predict_proba(corner_model, images).argmax(axis=1)
    assert np.mean(predicted == labels) >= 0.95


@pytest.mark.parametrize("method", ["gradcam", "gradcam++"])
def test_grad_cam_heatmap_mass_falls_on_the_patch(
    corner_model, corner_test, method
) -> None:
    images, labels = corner_test
    shares = []
    for index in np.flatnonzero(labels == 1):
        result = kic.grad_cam(corner_model, images[index], 1, method=method)
        assert result.heatmap.shape == (SIZE, SIZE)
        assert result.heatmap.dtype == np.float32
        assert result.heatmap.min() >= 0.0 and result.heatmap.max() == pytest.approx(1)
        heat = result.heatmap.astype(np.float64)
        mask = _corner_mask(int(index % 4))
        shares.append(heat[mask].sum() / heat.sum())
        row, column = np.unravel_index(np.argmax(heat), heat.shape)
        assert mask[row, column], (index, row, column)
    # A uniform heatmap would put a quarter of its mass in the corner.
    assert np.mean(shares) > 0.6, shares


def test_grad_cam_defaults_to_the_predicted_class(corner_model, corner_test) -> None:
    images, _ = corner_test
    probabilities = kic.predict_proba(corner_model, images[:1])[0]
    result = kic.grad_cam(corner_model, images[0])
    assert result.class_index == int(np.argmax(probabilities))
    assert result.probability == pytest.approx(float(probabilities.max()), abs=1e-5)
    assert result.layer_name == "block2_conv"
    assert result.class_name == str(result.class_index)


def test_grad_cam_sees_through_an_exported_model(corner_model, corner_test) -> None:
    images, labels = corner_test
    exported = kic.export_model(corner_model, ["none", "patch"])
    direct = kic.grad_cam(corner_model, images[5], int(labels[5]))
    wrapped = kic.grad_cam(exported, images[5], int(labels[5]))
    assert wrapped.layer_name == "block2_conv"
    assert wrapped.class_name == ["none", "patch"][int(labels[5])]
    np.testing.assert_allclose(wrapped.heatmap, direct.heatmap, atol=1e-5)
    # The final softmax was switched off only for the duration of the call.
    assert (
        corner_model.get_layer("head_predictions").activation
        is keras.activations.softmax
    )


def test_grad_cam_layer_name_and_overlay(corner_model, corner_test) -> None:
    image = corner_test[0][0]
    result = kic.grad_cam(corner_model, image, layer_name="block1_conv", alpha=0.0)
    assert result.layer_name == "block1_conv"
    assert result.overlay.shape == (SIZE, SIZE, 3) and result.overlay.dtype == np.uint8
    # alpha=0 leaves the (grey, so equal-channel) image untouched.
    np.testing.assert_array_equal(result.overlay, np.repeat(image, 3, axis=-1))
    full = kic.grad_cam(corner_model, image, alpha=1.0)
    assert not np.array_equal(full.overlay, np.repeat(image, 3, axis=-1))


def test_grad_cam_accepts_a_two_dimensional_grey_image(corner_model, corner_test):
    image = corner_test[0][0]
    flat = kic.grad_cam(corner_model, image[..., 0])
    np.testing.assert_allclose(flat.heatmap, kic.grad_cam(corner_model, image).heatmap)


def test_grad_cam_rejects_an_image_of_the_wrong_size(corner_model) -> None:
    with pytest.raises(ValueError, match=r"image must have shape \(16, 16, 1\).*"):
        kic.grad_cam(corner_model, np.zeros((8, 8, 1), np.uint8))


def test_grad_cam_rejects_a_float_image(corner_model) -> None:
    with pytest.raises(TypeError, match="image must be uint8"):
        kic.grad_cam(corner_model, np.zeros((SIZE, SIZE, 1), np.float32))


def test_grad_cam_rejects_a_model_without_convolution() -> None:
    inputs = keras.Input((4, 4, 1))
    outputs = keras.layers.Dense(2, activation="softmax")(
        keras.layers.Flatten()(inputs)
    )
    model = keras.Model(inputs, outputs)
    with pytest.raises(ValueError, match="has no 2-D convolution layer"):
        kic.grad_cam(model, np.zeros((4, 4, 1), np.uint8))


def test_grad_cam_rejects_bad_options(corner_model) -> None:
    image = np.zeros((SIZE, SIZE, 1), np.uint8)
    with pytest.raises(ValueError, match=r"class_index must be in \[0, 2\)"):
        kic.grad_cam(corner_model, image, 2)
    with pytest.raises(ValueError, match="class_index must be an integer"):
        kic.grad_cam(corner_model, image, "cat")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="method must be one of"):
        kic.grad_cam(corner_model, image, method="cam")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\]"):
        kic.grad_cam(corner_model, image, alpha=1.5)
    with pytest.raises(ValueError, match="layer_name 'nope' is not a layer"):
        kic.grad_cam(corner_model, image, layer_name="nope")
    with pytest.raises(ValueError, match="must output a 4-D"):
        kic.grad_cam(corner_model, image, layer_name="head_avgpool")


def test_plot_grad_cam_writes_a_picture(corner_model, corner_test, tmp_path) -> None:
    images, labels = corner_test
    results = [kic.grad_cam(corner_model, images[i], int(labels[i])) for i in range(2)]
    path = kic.plots.plot_grad_cam(results, tmp_path / "cams.png")
    _assert_picture(path)
    _assert_picture(results[0].save(tmp_path / "one.png"))
    with pytest.raises(ValueError, match="results is empty"):
        kic.plots.plot_grad_cam([], tmp_path / "none.png")
    with pytest.raises(ValueError, match="titles must have one entry per result"):
        kic.plots.plot_grad_cam(results, tmp_path / "bad.png", titles=["a"])


def _assert_picture(path, min_size=(100, 100)) -> None:
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.width >= min_size[0] and image.height >= min_size[1]
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.std() > 5, "the picture is blank"


# ---------------------------------------------------------------- embeddings


def test_embeddings_are_the_penultimate_features(corner_model, corner_test) -> None:
    images, _ = corner_test
    features = kic.embeddings(corner_model, images, batch_size=7)
    assert features.shape == (len(images), 16)
    flatten = corner_model.get_layer("head_avgpool")
    reference = keras.Model(corner_model.input, flatten.output)
    expected = np.asarray(reference(images / np.float32(255)))
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-5)


def test_embeddings_of_a_named_layer_and_a_split(corner_model, corner_test) -> None:
    images, labels = corner_test
    split = kic.Split(images, labels)
    features = kic.embeddings(corner_model, split, "block1_conv")
    assert features.shape == (len(images), SIZE * SIZE * 8)
    exported = kic.export_model(corner_model, list("ab"))
    np.testing.assert_allclose(
        kic.embeddings(exported, split, "block1_conv"), features, atol=1e-5
    )


def test_embeddings_reject_bad_input(corner_model) -> None:
    with pytest.raises(ValueError, match=r"split must be a Split or a uint8 array"):
        kic.embeddings(corner_model, np.zeros((2, 8, 8, 1), np.uint8))
    with pytest.raises(TypeError, match="split must hold uint8 images"):
        kic.embeddings(corner_model, np.zeros((2, SIZE, SIZE, 1)))
    with pytest.raises(ValueError, match="split is empty"):
        kic.embeddings(corner_model, np.zeros((0, SIZE, SIZE, 1), np.uint8))
    with pytest.raises(ValueError, match="layer_name 'nope' is not a layer"):
        kic.embeddings(corner_model, np.zeros((1, SIZE, SIZE, 1), np.uint8), "nope")


def test_similar_images_puts_the_query_first(corner_model, corner_test) -> None:
    images, labels = corner_test
    gallery = kic.Split(images, labels)
    for index in (0, 5, 17):
        result = kic.similar_images(corner_model, images[index], gallery, k=4)
        assert int(result.indices[0]) == index
        assert result.similarities[0] == pytest.approx(1.0, abs=1e-5)
        assert np.all(np.diff(result.similarities) <= 1e-7)
        np.testing.assert_array_equal(result.images[0], images[index])
        assert result.labels is not None and int(result.labels[0]) == labels[index]


def test_similar_images_finds_the_same_class(corner_model, corner_test) -> None:
    images, labels = corner_test
    query, _ = _corner_images(1, seed=99)  # class 0, not in the gallery
    result = kic.similar_images(corner_model, query[0], images, k=3)
    assert result.labels is None
    assert all(labels[i] == 0 for i in result.indices)


def test_similar_images_rejects_k_larger_than_the_gallery(corner_model, corner_test):
    images, _ = corner_test
    with pytest.raises(ValueError, match=r"k must be at most the number of gallery"):
        kic.similar_images(corner_model, images[0], images[:3], k=4)
    with pytest.raises(ValueError, match="k must be a positive integer"):
        kic.similar_images(corner_model, images[0], images, k=0)
    with pytest.raises(ValueError, match="image must have shape"):
        kic.similar_images(corner_model, images[0, :8], images, k=1)


def test_similarity_and_embedding_pictures(corner_model, corner_test, tmp_path):
    images, labels = corner_test
    result = kic.similar_images(corner_model, images[2], kic.Split(images, labels), k=5)
    _assert_picture(result.plot(tmp_path / "similar.png", class_names=list("ab")))
    features = kic.embeddings(corner_model, images)
    path = kic.plots.plot_embeddings(
        features, labels, tmp_path / "map.png", class_names=list("ab")
    )
    _assert_picture(path)
    with Image.open(path) as picture:
        assert picture.width > 2 * picture.height * 0.9  # two panels side by side


def test_plot_embeddings_rejects_bad_input(tmp_path) -> None:
    features = np.zeros((5, 3))
    with pytest.raises(ValueError, match="features must be a 2-D array"):
        kic.plots.plot_embeddings(np.zeros(5), [0] * 5, tmp_path / "x.png")
    with pytest.raises(ValueError, match="labels must have one entry per row"):
        kic.plots.plot_embeddings(features, [0, 1], tmp_path / "x.png")
    with pytest.raises(ValueError, match="methods must be one of"):
        kic.plots.plot_embeddings(
            features, [0] * 5, tmp_path / "x.png", methods=["umap"]
        )
    with pytest.raises(ValueError, match="methods must be a non-empty list"):
        kic.plots.plot_embeddings(features, [0] * 5, tmp_path / "x.png", methods="pca")


def test_grad_cam_warns_when_nothing_supports_the_class() -> None:
    inputs = keras.Input((6, 6, 1))
    x = keras.layers.Conv2D(2, 3, activation="relu", name="dead_conv")(inputs)
    outputs = kic.dense_head(x, 2, units=(), pooling="avg", name="head")
    model = keras.Model(inputs, outputs)
    conv = model.get_layer("dead_conv")
    conv.set_weights([np.zeros_like(w) for w in conv.get_weights()])
    with pytest.warns(UserWarning, match="heatmap of class 0 is all zero"):
        result = kic.grad_cam(model, np.full((6, 6, 1), 200, np.uint8), 0)
    assert not result.heatmap.any()


def test_embeddings_skip_a_separate_softmax_layer() -> None:
    inputs = keras.Input((6, 6, 1))
    x = keras.layers.Conv2D(3, 3, activation="relu", name="conv")(inputs)
    features = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    logits = keras.layers.Dense(2, name="logits")(features)
    model = keras.Model(inputs, keras.layers.Softmax(name="softmax")(logits))
    images = np.random.default_rng(0).integers(0, 256, (5, 6, 6, 1), np.uint8)
    expected = kic.embeddings(model, images, "pool")
    np.testing.assert_allclose(kic.embeddings(model, images), expected)
    assert expected.shape == (5, 3)
