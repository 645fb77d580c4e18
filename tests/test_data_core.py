from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from kerasimgcls import (
    ImageDataset,
    Split,
    from_arrays,
    load_digits,
    normalize,
    one_hot,
    to_tf_dataset,
)
from kerasimgcls.data._split import stratified_indices, train_validation_split

image_shapes = st.tuples(
    st.integers(1, 4), st.integers(1, 6), st.integers(1, 6), st.sampled_from([1, 3, 4])
)


@settings(max_examples=40, deadline=None)
@given(arrays(np.uint8, image_shapes))
def test_normalize_maps_uint8_into_unit_interval(images: np.ndarray) -> None:
    result = normalize(images)
    assert result.dtype == np.float32 and result.shape == images.shape
    assert (
        float(result.min(initial=0.0)) >= 0.0 and float(result.max(initial=0.0)) <= 1.0
    )
    np.testing.assert_allclose(result * 255.0, images, atol=1e-4)


def test_normalize_rejects_non_uint8() -> None:
    with pytest.raises(TypeError, match="images must be uint8"):
        normalize(np.zeros(3, np.float32))


@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 12).flatmap(
        lambda k: st.tuples(
            st.just(k), st.lists(st.integers(0, k - 1), min_size=1, max_size=30)
        )
    )
)
def test_one_hot_round_trips_through_argmax(case: tuple[int, list[int]]) -> None:
    num_classes, labels = case
    encoded = one_hot(labels, num_classes)
    assert encoded.shape == (len(labels), num_classes) and encoded.dtype == np.float32
    np.testing.assert_array_equal(encoded.argmax(axis=1), labels)
    np.testing.assert_array_equal(encoded.sum(axis=1), 1.0)


@settings(max_examples=30, deadline=None)
@given(st.integers(2, 10), st.integers(-50, 50).filter(lambda v: v < 0 or v >= 10))
def test_one_hot_rejects_out_of_range_labels(num_classes: int, bad: int) -> None:
    bad = bad if bad < 0 else num_classes + bad
    with pytest.raises(ValueError, match=rf"received labels\[1\]={bad}"):
        one_hot([0, bad, 1], num_classes)


def test_one_hot_rejects_two_dimensional_labels() -> None:
    with pytest.raises(ValueError, match="must be a 1-D array"):
        one_hot(np.zeros((2, 3), int), 3)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(0, 4), min_size=2, max_size=80),
    st.floats(0.0, 0.9),
    st.integers(0, 2**31),
)
def test_splits_are_disjoint_cover_and_stable(
    labels: list[int], fraction: float, seed: int
) -> None:
    array = np.asarray(labels, dtype=np.int64)
    keep, held = stratified_indices(array, fraction, seed)
    assert np.intersect1d(keep, held).size == 0
    np.testing.assert_array_equal(np.union1d(keep, held), np.arange(array.size))
    again_keep, again_held = stratified_indices(array, fraction, seed)
    np.testing.assert_array_equal(keep, again_keep)
    np.testing.assert_array_equal(held, again_held)
    for label in np.unique(array):
        # Every class keeps at least one training example.
        assert np.any(array[keep] == label)


def test_validation_split_is_stratified_and_seeded() -> None:
    ids = np.arange(100, dtype=np.uint8).reshape(100, 1, 1, 1)
    split = Split(ids, np.arange(100) % 4)
    train, validation = train_validation_split(split, 0.2, seed=5)
    assert validation is not None and len(train) == 80
    assert validation.class_counts(4).tolist() == [5, 5, 5, 5]
    _, other = train_validation_split(split, 0.2, seed=6)
    assert other is not None
    assert not np.array_equal(other.images, validation.images)
    assert train_validation_split(split, 0.0, seed=5) == (split, None)


def test_from_arrays_checks_name_the_problem() -> None:
    x = np.zeros((4, 3, 3), np.uint8)
    with pytest.raises(ValueError, match="x and y must have the same length"):
        from_arrays(x, [0, 1, 0])
    with pytest.raises(ValueError, match=r"x contains NaN"):
        from_arrays(np.full((4, 3, 3), np.nan), [0, 1, 0, 1])
    with pytest.raises(ValueError, match=r"y must be in \[0, num_classes\)"):
        from_arrays(x, [0, 1, 2, 5], class_names=["a", "b", "c"])
    with pytest.raises(ValueError, match="must have 1, 3 or 4 channels"):
        from_arrays(np.zeros((4, 3, 3, 2), np.uint8), [0, 1, 0, 1])
    with pytest.raises(TypeError, match="not one string"):
        from_arrays(x, [0, 1, 0, 1], class_names="ab")
    data = from_arrays(
        np.ones((4, 3, 3), np.float64), [0, 1, 0, 1], validation_split=0.0
    )
    assert data.train.images.dtype == np.uint8 and int(data.train.images.max()) == 255


def test_dataset_fingerprint_changes_with_content() -> None:
    x = np.zeros((4, 2, 2, 1), np.uint8)
    first = ImageDataset(Split(x, np.array([0, 1, 0, 1])), None, None, ("a", "b"))
    same = ImageDataset(Split(x.copy(), np.array([0, 1, 0, 1])), None, None, ("a", "b"))
    other = ImageDataset(Split(x, np.array([1, 1, 0, 1])), None, None, ("a", "b"))
    assert first.fingerprint == same.fingerprint != other.fingerprint
    with pytest.raises(ValueError, match="class_names must be unique"):
        ImageDataset(Split(x, np.array([0, 1, 0, 1])), None, None, ("a", "a"))


def test_load_digits_is_real_and_split() -> None:
    data = load_digits(seed=0)
    assert data.num_classes == 10 and data.input_shape == (8, 8, 1)
    total = len(data.train) + len(data.validation or ()) + len(data.test or ())
    assert total == 1797
    assert int(data.train.images.max()) == 255


def test_to_tf_dataset_order_depends_only_on_seed_and_epoch(
    digits: ImageDataset,
) -> None:
    def labels(epoch: int, seed: int) -> np.ndarray:
        batches = to_tf_dataset(
            digits.train,
            num_classes=10,
            batch_size=256,
            shuffle=True,
            seed=seed,
            epoch=epoch,
            label_mode="int",
        )
        return np.concatenate([y.numpy() for _, y in batches])

    first = labels(3, 1)
    np.testing.assert_array_equal(first, labels(3, 1))
    assert not np.array_equal(first, labels(4, 1))
    assert not np.array_equal(first, labels(3, 2))
    np.testing.assert_array_equal(np.sort(first), np.sort(digits.train.labels))


def test_to_tf_dataset_rejects_bad_input(digits: ImageDataset) -> None:
    with pytest.raises(TypeError, match="split must be a kerasimgcls Split"):
        to_tf_dataset(digits.train.images, num_classes=10)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"split labels must be in \[0, num_classes\)"):
        to_tf_dataset(digits.train, num_classes=5)
    with pytest.raises(ValueError, match="label_mode must be one of"):
        to_tf_dataset(digits.train, num_classes=10, label_mode="sparse")  # type: ignore[arg-type]


def test_stratified_indices_small_classes_and_limits() -> None:
    def held_per_class(labels, fraction):  # type: ignore[no-untyped-def]
        keep, held = stratified_indices(np.asarray(labels, np.int64), fraction, 0)
        assert keep.dtype == held.dtype == np.int64
        assert sorted([*keep, *held]) == list(range(len(labels)))
        return np.bincount(np.asarray(labels)[held], minlength=4).tolist()

    # round(0.1 * n) is 0 for n = 2 and 5: at least one is held out ...
    assert held_per_class([0, 0, 1, 1, 1, 1, 1, 2, 3, 3, 3, 3], 0.1) == [1, 1, 0, 1]
    # ... but never a class's last image, and nothing for fraction 0.
    assert held_per_class([0, 0, 1, 1, 1, 2], 0.9) == [1, 2, 0, 0]
    assert held_per_class([0, 0, 1, 1, 1, 2], 0.0) == [0, 0, 0, 0]
    keep, held = stratified_indices(np.array([], np.int64), 0.2, 0)
    assert keep.dtype == held.dtype == np.int64 and len(keep) == len(held) == 0
    split = Split(np.zeros((4, 2, 2, 1), np.uint8), np.array([0, 0, 1, 1]))
    with pytest.raises(ValueError, match=r"^validation_split must be in \[0, 1\)"):
        train_validation_split(split, 1.5, 0)
    # The seed decides the split: the same seed, the same images held out.
    ids = np.arange(200, dtype=np.uint8).reshape(200, 1, 1, 1)
    split = Split(ids, np.arange(200) % 4)
    first, second = (train_validation_split(split, 0.3, 7)[1] for _ in range(2))
    assert first is not None and second is not None
    np.testing.assert_array_equal(first.images, second.images)
