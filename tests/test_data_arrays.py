"""``from_arrays`` and ``load_digits``: every accepted form and every refusal pinned.

The mutation score of ``data/_arrays.py`` depends on these: each message is
compared whole, each bound is tried on both sides, and the test split given as
arrays is checked as thoroughly as the training split.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from kerasimgcls import from_arrays, load_digits
from kerasimgcls.data._split import stratified_indices, train_validation_split


def _images(count: int = 6, dtype: str = "uint8", high: float = 255) -> np.ndarray:
    values = np.linspace(0, high, count * 2 * 2 * 3).reshape(count, 2, 2, 3)
    return values.astype(dtype)


def _labels(count: int = 6) -> np.ndarray:
    return np.arange(count) % 3


def _raises(error: type[Exception], message: str):  # type: ignore[no-untyped-def]
    return pytest.raises(error, match=f"^{re.escape(message)}$")


@pytest.mark.parametrize("value_range", [(0, 1), [0, 1]])
def test_unit_floats_are_scaled_by_255(value_range: object) -> None:
    x = np.array([0.0, 0.5, 1.0, 0.2]).reshape(1, 2, 2, 1).repeat(3, axis=0)
    for dtype in ("float32", "float64"):
        data = from_arrays(
            x.astype(dtype),
            [0, 1, 2],
            validation_split=0.0,
            value_range=value_range,  # type: ignore[arg-type]
        )
        assert data.train.images.dtype == np.uint8
        assert data.train.images[0].ravel().tolist() == [0, 128, 255, 51]
    # "auto" reads floats of at most 1 as [0, 1] too.
    data = from_arrays(x.astype("float32"), [0, 1, 2], validation_split=0.0)
    assert data.train.images[0].ravel().tolist() == [0, 128, 255, 51]


@pytest.mark.parametrize("value_range", [(0, 255), [0, 255], "auto"])
def test_0_255_floats_are_rounded_not_scaled(value_range: object) -> None:
    x = np.array([0.0, 8.0, 254.6, 255.0]).reshape(1, 2, 2, 1).repeat(3, axis=0)
    data = from_arrays(
        x,
        [0, 1, 2],
        validation_split=0.0,
        value_range=value_range,  # type: ignore[arg-type]
    )
    assert data.train.images[0].ravel().tolist() == [0, 8, 255, 255]


def test_dark_0_255_floats_need_the_range_said() -> None:
    x = np.array([0.0, 2.0, 5.0, 7.9]).reshape(1, 2, 2, 1).repeat(3, axis=0)
    with _raises(
        ValueError,
        "x holds floats in [0.0, 7.9]: too bright for [0, 1] and too dark for "
        "[0, 255] to tell which is meant; pass value_range=(0, 1) or "
        "value_range=(0, 255)",
    ):
        from_arrays(x, [0, 1, 2], validation_split=0.0)
    data = from_arrays(x, [0, 1, 2], validation_split=0.0, value_range=(0, 255))
    assert data.train.images[0].ravel().tolist() == [0, 2, 5, 8]
    # A maximum of exactly 8 is read as [0, 255].
    x[:, 0, 0, 0] = 8.0
    data = from_arrays(x, [0, 1, 2], validation_split=0.0)
    assert data.train.images[0].ravel().tolist() == [8, 2, 5, 8]


@pytest.mark.parametrize(
    ("low", "high", "value_range", "allowed"),
    [
        (-0.5, 1.0, "auto", "[0, 1] or [0, 255]"),
        (0.0, 255.5, "auto", "[0, 1] or [0, 255]"),
        (0.0, 1.5, (0, 1), "[0, 1]"),
        (0.0, 255.5, (0, 255), "[0, 255]"),
        (-1.0, 3.0, (0, 255), "[0, 255]"),
    ],
)
def test_floats_outside_the_range_are_refused(
    low: float, high: float, value_range: object, allowed: str
) -> None:
    x = np.full((3, 2, 2, 1), (low + high) / 2)
    x[0, 0, 0, 0], x[0, 0, 1, 0] = low, high
    with _raises(
        ValueError,
        f"x must hold pixel values in {allowed}; received values in [{low}, {high}]",
    ):
        from_arrays(
            x,
            [0, 1, 2],
            value_range=value_range,  # type: ignore[arg-type]
        )


def test_floats_at_the_ceiling_are_accepted() -> None:
    x = np.full((3, 2, 2, 1), 0.5)
    x[0, 0, 0, 0] = 1.0
    data = from_arrays(x, [0, 1, 2], validation_split=0.0, value_range=(0, 1))
    assert data.train.images.max() == 255


@pytest.mark.parametrize("value_range", ["AUTO", "unit", (0, 2), (0, 1, 255), 1, None])
def test_value_range_choices(value_range: object) -> None:
    with _raises(
        ValueError,
        "value_range must be 'auto', (0, 1) or (0, 255); received "
        f"value_range={value_range!r}",
    ):
        from_arrays(_images(), _labels(), value_range=value_range)  # type: ignore[arg-type]


def test_a_nan_is_named_by_its_index() -> None:
    x = _images(dtype="float32", high=1.0)
    x[1, 0, 1, 2] = np.nan
    with _raises(
        ValueError, "x contains NaN or infinite values, first at index (1, 0, 1, 2)"
    ):
        from_arrays(x, _labels())


@pytest.mark.parametrize("dtype", ["int16", "int64", "uint16", "int8"])
def test_integer_images_in_range_are_kept_as_they_are(dtype: str) -> None:
    # Integers are always 0-255: 0 and 1 stay 0 and 1, never scaled by 255.
    x = np.zeros((3, 2, 2, 1), dtype=dtype)
    x[0, 0, 0, 0] = 1
    x[1, 0, 0, 0] = 127
    data = from_arrays(x, [0, 1, 2], validation_split=0.0)
    assert data.train.images.dtype == np.uint8
    assert data.train.images[:, 0, 0, 0].tolist() == [1, 127, 0]
    x = np.full((3, 2, 2, 1), 255, dtype="int64")
    assert from_arrays(x, [0, 1, 2], validation_split=0.0).train.images.min() == 255


@pytest.mark.parametrize(("low", "high"), [(-1, 10), (0, 256), (-3, 300)])
def test_integers_outside_0_255_are_refused(low: int, high: int) -> None:
    x = np.full((3, 2, 2, 1), 5, dtype="int64")
    x[0, 0, 0, 0], x[2, 1, 1, 0] = low, high
    with _raises(
        ValueError,
        f"x must hold pixel values in [0, 255]; received values in [{low}, {high}]",
    ):
        from_arrays(x, [0, 1, 2])


@pytest.mark.parametrize("x", [np.ones((3, 2, 2, 1), bool), np.full((3, 1, 1, 1), "a")])
def test_images_that_are_not_numbers_are_refused(x: np.ndarray) -> None:
    with _raises(TypeError, f"x must be a numeric array; received dtype {x.dtype}"):
        from_arrays(x, [0, 1, 2])


def test_image_shapes() -> None:
    # Grayscale without the channel axis gets one; 1, 3 and 4 channels are kept.
    data = from_arrays(np.zeros((3, 4, 5), np.uint8), [0, 1, 2], validation_split=0)
    assert data.train.images.shape == (3, 4, 5, 1)
    for channels in (1, 3, 4):
        x = np.zeros((1, 2, 2, channels), np.uint8)
        assert from_arrays(x, [0], validation_split=0).train.images.shape == x.shape
    for shape in ((3, 4), (3, 2, 2, 1, 1)):
        with _raises(
            ValueError,
            "x must have shape (n, height, width, channels) or (n, height, width); "
            f"received shape {shape}",
        ):
            from_arrays(np.zeros(shape, np.uint8), [0, 1, 2])
    for channels in (2, 5):
        shape = (3, 2, 2, channels)
        with _raises(
            ValueError,
            "x must have 1, 3 or 4 channels in the last axis; received shape "
            f"{shape}. For channels-first data use np.moveaxis(x, 1, -1).",
        ):
            from_arrays(np.zeros(shape, np.uint8), [0, 1, 2])
    with _raises(ValueError, "x is empty; received shape (0, 2, 2, 3)"):
        from_arrays(np.zeros((0, 2, 2, 3), np.uint8), [])


def test_default_class_names_and_name_and_seed() -> None:
    x, y = _images(30), np.arange(30) % 3
    data = from_arrays(x, y)
    assert data.class_names == ("0", "1", "2")
    assert data.name == "arrays" and data.test is None
    assert data.validation is not None and len(data.validation) == 3
    same = from_arrays(x, y, seed=0)
    np.testing.assert_array_equal(data.validation.images, same.validation.images)
    other = from_arrays(x, y, seed=1)
    assert not np.array_equal(data.validation.images, other.validation.images)
    named = from_arrays(x, y, class_names=["a", "b", "c"], name="mine")
    assert named.class_names == ("a", "b", "c") and named.name == "mine"


def test_the_class_count_bound_names_where_it_comes_from(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KERASIMGCLS_MAX_CLASSES", "2")
    with pytest.raises(
        ValueError,
        match=re.escape(
            "the number of classes (the largest label of y, plus one) must be at "
            "most 2; received"
        ),
    ):
        from_arrays(_images(), _labels())


def test_label_errors_name_y() -> None:
    with _raises(
        ValueError,
        "x and y must have the same length; received 6 images and labels of shape (5,)",
    ):
        from_arrays(_images(), _labels(5))
    with pytest.raises(ValueError, match=r"^y must be in \[0, num_classes\) = "):
        from_arrays(_images(), [0, -1, 1, 2, 0, 1])
    with pytest.raises(
        ValueError,
        match=r"^y must be in \[0, num_classes\) = \[0, 2\); received y\[5\]=2",
    ):
        from_arrays(_images(), [0, 1, 1, 0, 0, 2], class_names=["a", "b"])
    with pytest.raises(TypeError, match=r"^y must be integer class indices"):
        from_arrays(_images(), [True] * 6)


def test_argument_errors_name_the_argument() -> None:
    with pytest.raises(ValueError, match=r"^validation_split must be in \[0, 1\)"):
        from_arrays(_images(), _labels(), validation_split=1.0)
    with pytest.raises(ValueError, match=r"^seed must be a non-negative integer"):
        from_arrays(_images(), _labels(), seed=-1)
    with pytest.raises(ValueError, match=r"^class_names\[1\] is an empty string$"):
        from_arrays(_images(), _labels(), class_names=["a", "", "c"])


def test_the_test_split_is_checked_and_scaled_like_x() -> None:
    x = _images(6, "float32", high=1.0)
    x_test = np.full((4, 2, 2, 3), 0.5, np.float32)
    y_test = np.array([2, 1, 0, 2])
    data = from_arrays(x, _labels(), x_test=x_test, y_test=y_test, value_range=(0, 1))
    assert data.test is not None and data.validation is not None
    assert data.test.images.dtype == np.uint8 and data.test.images.shape == (4, 2, 2, 3)
    assert np.all(data.test.images == 128)
    assert data.test.labels.tolist() == [2, 1, 0, 2]
    assert data.test.labels.dtype == np.int64


def test_the_test_split_errors_name_x_test_and_y_test() -> None:
    x, y = _images(), _labels()
    for given in ({"x_test": x}, {"y_test": y}):
        with _raises(ValueError, "x_test and y_test must be given together"):
            from_arrays(x, y, **given)  # type: ignore[arg-type]
    with _raises(ValueError, "x_test is empty; received shape (0, 2, 2, 3)"):
        from_arrays(x, y, x_test=np.zeros((0, 2, 2, 3), np.uint8), y_test=[])
    with pytest.raises(
        ValueError,
        match=r"^y_test must be in \[0, num_classes\) = \[0, 3\); received y_test\[1\]=3",
    ):
        from_arrays(x, y, x_test=x[:2], y_test=[0, 3])
    with pytest.raises(TypeError, match=r"^y_test must be integer class indices"):
        from_arrays(x, y, x_test=x[:2], y_test=[True, False])
    with _raises(
        ValueError, "x_test and y_test must have the same length; received 2 and 3"
    ):
        from_arrays(x, y, x_test=x[:2], y_test=[0, 1, 2])
    with _raises(
        ValueError,
        "x_test images must have the shape of x images (2, 2, 3); received (2, 2, 1)",
    ):
        from_arrays(x, y, x_test=np.zeros((2, 2, 2, 1), np.uint8), y_test=[0, 1])
    dark = np.full((2, 2, 2, 3), 3.0)
    with pytest.raises(ValueError, match=r"^x_test holds floats in \[3\.0, 3\.0\]"):
        from_arrays(x, y, x_test=dark, y_test=[0, 1])


def test_load_digits_splits_and_pixels() -> None:
    from sklearn.datasets import load_digits as sklearn_digits

    data = load_digits(seed=0)
    assert data.name == "digits" and data.class_names == tuple("0123456789")
    bunch = sklearn_digits()
    labels = np.asarray(bunch.target, np.int64)
    keep, held_out = stratified_indices(labels, 0.2, 0)
    assert data.test is not None
    np.testing.assert_array_equal(data.test.labels, labels[held_out])
    assert data.test.labels.dtype == np.int64
    # 0-16 intensities become 0-255: 16 -> 255, 8 -> 128 (rounded).
    expected = np.rint(bunch.images[held_out] * (255 / 16)).astype(np.uint8)
    np.testing.assert_array_equal(data.test.images[..., 0], expected)
    assert data.test.images.dtype == np.uint8
    images = np.rint(bunch.images * (255 / 16)).astype(np.uint8)[..., None]
    from kerasimgcls.data._dataset import Split

    train, validation = train_validation_split(
        Split(images[keep], labels[keep]), 0.1, 1
    )
    assert validation is not None and data.validation is not None
    np.testing.assert_array_equal(data.validation.labels, validation.labels)
    np.testing.assert_array_equal(data.train.images, train.images)
    assert load_digits(test_split=0.0).test is None


def test_load_digits_names_its_arguments() -> None:
    for name in ("validation_split", "test_split"):
        with pytest.raises(ValueError, match=rf"^{name} must be in \[0, 1\)"):
            load_digits(**{name: 1.5})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"^seed must be a non-negative integer"):
        load_digits(seed=-1)


def test_x_test_is_read_in_the_range_given_for_x() -> None:
    # Floats of at most 1 would be read as [0, 1] by "auto"; (0, 255) says not.
    x = np.full((3, 2, 2, 1), 100.0)
    x_test = np.full((2, 2, 2, 1), 0.5)
    data = from_arrays(x, [0, 1, 2], x_test=x_test, y_test=[0, 1], value_range=(0, 255))
    assert data.test is not None and np.all(data.test.images == 0)  # rint(0.5) = 0
    assert np.all(data.train.images == 100)


def test_the_test_split_length_message_counts_images() -> None:
    x = _images()
    with _raises(
        ValueError, "x_test and y_test must have the same length; received 3 and 2"
    ):
        from_arrays(x, _labels(), x_test=x[:3], y_test=[0, 1])


def test_load_digits_default_seed_is_0() -> None:
    default, explicit = load_digits(), load_digits(seed=0)
    assert default.test is not None and explicit.test is not None
    np.testing.assert_array_equal(default.test.labels, explicit.test.labels)
    np.testing.assert_array_equal(default.train.images, explicit.train.images)
