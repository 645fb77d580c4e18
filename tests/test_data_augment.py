from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from kerasimgcls import Augmentation, Split, epochs_dataset, from_arrays, to_tf_dataset
from kerasimgcls.data._augment import augment_batch


def _images(n: int = 16, height: int = 7, width: int = 9) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (n, height, width, 3), np.uint8)


def _run(images: np.ndarray, augmentation: Augmentation, seed: int) -> np.ndarray:
    result = augment_batch(
        tf.constant(images), augmentation, tf.constant([seed, 5], tf.int64)
    )
    return np.asarray(result)


def test_augmentation_defaults_and_validation() -> None:
    assert Augmentation() == Augmentation(flip=True, translate=4, cutout=0)
    assert Augmentation(flip=False, translate=0).is_identity
    with pytest.raises(TypeError, match="flip must be True or False"):
        Augmentation(flip=1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="translate must be an integer"):
        Augmentation(translate=2.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cutout must be >= 0"):
        Augmentation(cutout=-1)
    with pytest.raises(ValueError, match="fill_mode must be one of"):
        Augmentation(fill_mode="wrap")  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        Augmentation().flip = False  # type: ignore[misc]


def test_augmentation_dict_and_string_round_trip() -> None:
    augmentation = Augmentation(flip=False, translate=2, cutout=6, fill_mode="constant")
    assert Augmentation.from_dict(augmentation.to_dict()) == augmentation
    parsed = Augmentation.from_string("translate=2, cutout=6, fill_mode=constant")
    assert parsed == augmentation
    assert Augmentation.from_string("none").is_identity
    assert Augmentation.from_string("default") == Augmentation()
    with pytest.raises(ValueError, match="cannot parse augmentation item 'rotate'"):
        Augmentation.from_string("flip,rotate")
    with pytest.raises(ValueError, match="unknown augmentation setting"):
        Augmentation.from_dict({"flip": True, "zoom": 2})


def test_augmentation_from_string_items_and_errors() -> None:
    assert Augmentation.from_string("").is_identity
    assert Augmentation.from_string("noflip, translate=3") == Augmentation(
        flip=False, translate=3
    )
    assert Augmentation.from_string("flip").flip is True
    assert Augmentation.from_string("fill_mode=constant").fill_mode == "constant"
    allowed = (
        "items like 'flip', 'flip=alternating', 'translate=4', 'cutout=8', "
        "'fill_mode=constant', or 'none'"
    )
    for bad in ("zoom=3", "translate=abc", "fill_mode="):
        with pytest.raises(ValueError, match=f"cannot parse augmentation item '{bad}'"):
            Augmentation.from_string(bad)
    with pytest.raises(ValueError) as error:
        Augmentation.from_string("rotate")
    assert allowed in str(error.value)
    with pytest.raises(ValueError, match="fill_mode must be one of"):
        Augmentation.from_string("fill_mode=constant=x")
    with pytest.raises(ValueError) as error:
        Augmentation.from_dict({"zoom": 2})
    assert str(error.value).endswith(
        "allowed: ['cutout', 'fill_mode', 'flip', 'flip_mode', 'translate']"
    )


def test_flip_mirrors_half_the_images_and_keeps_the_rest() -> None:
    images = _images(2000, 3, 4)
    out = _run(images, Augmentation(flip=True, translate=0), seed=1)
    mirrored = np.all(out == images[:, :, ::-1], axis=(1, 2, 3))
    same = np.all(out == images, axis=(1, 2, 3))
    assert np.all(mirrored ^ same)  # random images: never both
    # Each image is mirrored with probability 1/2: 1000 +- 5 standard deviations.
    assert abs(int(mirrored.sum()) - 1000) < 5 * np.sqrt(2000 * 0.25)
    again = _run(images, Augmentation(flip=True, translate=0), seed=2)
    other = np.all(again == images[:, :, ::-1], axis=(1, 2, 3))
    assert abs(int((other == mirrored).sum()) - 1000) < 5 * np.sqrt(2000 * 0.25)


def test_translate_is_a_shift_with_reflect_or_zero_border() -> None:
    # 400 random images: each is exactly one of the 25 shifts by -2..2 rows and
    # columns (random pixels make the crops distinct), and every one of the 25
    # occurs, so shifts go both ways on both axes and reach the full range (a
    # shift missing from 400 uniform draws has probability 25 * (24/25)**400,
    # about 2e-6).
    images = _images(400)
    for fill_mode in ("reflect", "constant"):
        augmentation = Augmentation(flip=False, translate=2, fill_mode=fill_mode)
        out = _run(images, augmentation, seed=3)
        mode = "reflect" if fill_mode == "reflect" else "constant"
        seen = []
        for original, shifted in zip(images, out, strict=True):
            padded = np.pad(original, ((2, 2), (2, 2), (0, 0)), mode=mode)
            shifts = [
                (dy - 2, dx - 2)
                for dy in range(5)
                for dx in range(5)
                if np.array_equal(shifted, padded[dy : dy + 7, dx : dx + 9])
            ]
            assert len(shifts) == 1, shifts
            seen.append(shifts[0])
        assert set(seen) == {(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)}
        # Rows and columns are drawn independently and evenly: 80 +- 5 sd each.
        for axis in (0, 1):
            counts = np.bincount([shift[axis] + 2 for shift in seen], minlength=5)
            assert np.all(np.abs(counts - 80) < 5 * np.sqrt(400 * 0.2 * 0.8)), counts


def test_flip_folded_into_translate_equals_flip_then_translate() -> None:
    images = _images()
    for fill_mode in ("reflect", "constant"):
        both = Augmentation(flip=True, translate=3, fill_mode=fill_mode)
        flip_only = Augmentation(flip=True, translate=0)
        shift_only = Augmentation(flip=False, translate=3, fill_mode=fill_mode)
        for seed in range(3):
            expected = _run(_run(images, flip_only, seed), shift_only, seed)
            np.testing.assert_array_equal(_run(images, both, seed), expected)


def test_cutout_zeroes_one_square_at_most() -> None:
    images = np.full((32, 10, 10, 1), 200, np.uint8)
    out = _run(images, Augmentation(flip=False, translate=0, cutout=4), seed=0)
    holes = (out == 0).sum(axis=(1, 2, 3))
    assert holes.max() == 16 and holes.min() >= 4
    assert set(np.unique(out)) <= {0, 200}


def test_translate_larger_than_image_stays_valid() -> None:
    images = _images(8, 3, 3)
    out = _run(images, Augmentation(flip=True, translate=5), seed=0)
    assert out.shape == images.shape
    for original, shifted in zip(images, out, strict=True):
        assert set(map(tuple, shifted.reshape(-1, 3))) <= set(
            map(tuple, original.reshape(-1, 3))
        )


def _small_data():  # type: ignore[no-untyped-def]
    x = np.random.default_rng(1).integers(0, 256, (50, 6, 6, 3), np.uint8)
    return from_arrays(x, np.arange(50) % 5, validation_split=0.0)


def test_epochs_dataset_augmentation_resumes_exactly() -> None:
    data = _small_data()
    augmentation = Augmentation(flip=True, translate=2, cutout=2)
    common = {"num_classes": 5, "batch_size": 16, "seed": 4, "augment": augmentation}
    full, steps = epochs_dataset(data.train, initial_epoch=0, epochs=3, **common)
    full_batches = [x.numpy() for x, _ in full]
    resumed, _ = epochs_dataset(data.train, initial_epoch=2, epochs=3, **common)
    resumed_batches = [x.numpy() for x, _ in resumed]
    assert len(full_batches) == 3 * steps and len(resumed_batches) == steps
    for a, b in zip(full_batches[2 * steps :], resumed_batches, strict=True):
        np.testing.assert_array_equal(a, b)
    single = to_tf_dataset(data.train, shuffle=True, epoch=2, **common)
    for a, b in zip([x.numpy() for x, _ in single], resumed_batches, strict=True):
        np.testing.assert_array_equal(a, b)
    # Epochs differ from each other and from the unaugmented batches.
    assert not np.array_equal(full_batches[0], full_batches[steps])
    plain = to_tf_dataset(data.train, num_classes=5, batch_size=16, seed=4)
    assert float(next(iter(plain))[0].numpy().max()) <= 1.0


def test_pipeline_augment_rejects_wrong_types() -> None:
    data = _small_data()
    with pytest.raises(TypeError, match="augment must be a kerasimgcls Augmentation"):
        to_tf_dataset(data.train, num_classes=5, augment="flip")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="augment must be a kerasimgcls Augmentation"):
        epochs_dataset(
            data.train,
            num_classes=5,
            batch_size=8,
            initial_epoch=0,
            epochs=1,
            augment=True,  # type: ignore[arg-type]
        )
    with pytest.raises(ValueError, match="epochs must be greater than initial_epoch"):
        epochs_dataset(
            data.train, num_classes=5, batch_size=8, initial_epoch=2, epochs=2
        )
    with pytest.raises(TypeError, match="seed must be an integer"):
        to_tf_dataset(data.train, num_classes=5, seed=1.5)  # type: ignore[arg-type]


def _epoch_images(augmentation: Augmentation, epoch: int, seed: int = 4) -> np.ndarray:
    """One epoch through the pipeline, put back in image order (uint8 pixels)."""
    images = _images(40, 5, 6)
    split = Split(images, (np.arange(40) % 2).astype(np.int64))
    batches = to_tf_dataset(
        split,
        num_classes=2,
        batch_size=8,
        shuffle=True,
        seed=seed,
        epoch=epoch,
        augment=augmentation,
        input_scaling="raw",
        label_mode="int",
    )
    out = np.concatenate([np.asarray(x) for x, _ in batches]).astype(np.uint8)
    # Recover each output's source image by matching (mirrored or not).
    order = []
    for picture in out:
        matches = [
            i
            for i, source in enumerate(split.images)
            if np.array_equal(picture, source)
            or np.array_equal(picture, source[:, ::-1])
        ]
        assert len(matches) == 1
        order.append(matches[0])
    flipped = np.array(
        [
            not np.array_equal(picture, split.images[i])
            for picture, i in zip(out, order, strict=True)
        ]
    )
    result = np.zeros(40, bool)
    result[order] = flipped
    return result


def test_alternating_flip_mirrors_a_fixed_half_then_its_complement() -> None:
    alternating = Augmentation(flip=True, translate=0, flip_mode="alternating")
    epoch0 = _epoch_images(alternating, 0)
    epoch1 = _epoch_images(alternating, 1)
    epoch2 = _epoch_images(alternating, 2)
    assert 8 <= epoch0.sum() <= 32  # about half
    np.testing.assert_array_equal(epoch1, ~epoch0)  # odd epochs flip all
    np.testing.assert_array_equal(epoch2, epoch0)  # fixed per image, not per batch
    # Deterministic from the seed (a resumed run repeats it), another seed differs.
    np.testing.assert_array_equal(_epoch_images(alternating, 1), epoch1)
    assert not np.array_equal(_epoch_images(alternating, 0, seed=5), epoch0)
    # The random mode draws anew each epoch: not the complement.
    random_mode = Augmentation(flip=True, translate=0)
    assert not np.array_equal(
        _epoch_images(random_mode, 1), ~_epoch_images(random_mode, 0)
    )


def test_alternating_flip_composes_with_translation() -> None:
    images = _images(6, 5, 6)
    augmentation = Augmentation(flip=True, translate=1, flip_mode="alternating")
    mask = tf.constant([True, False, True, False, True, False])
    out = np.asarray(
        augment_batch(
            tf.constant(images),
            augmentation,
            tf.constant([1, 5], tf.int64),
            flipped=mask,
        )
    )
    no_flip = Augmentation(flip=False, translate=1)
    shifted = _run(images, no_flip, seed=1)
    shifted_mirrors = _run(np.ascontiguousarray(images[:, :, ::-1]), no_flip, seed=1)
    # The same shifts as without flipping (same seed), of the mirror image where
    # the mask says so.
    for i, flip in enumerate(mask.numpy()):
        np.testing.assert_array_equal(
            out[i], shifted_mirrors[i] if flip else shifted[i]
        )
    assert not np.array_equal(shifted_mirrors[0], shifted[0])
    with pytest.raises(ValueError, match="needs the batch's flipped mask"):
        augment_batch(tf.constant(images), augmentation, tf.constant([1, 5], tf.int64))


def test_flip_mode_is_checked_parsed_and_round_trips() -> None:
    with pytest.raises(ValueError, match="flip_mode must be one of"):
        Augmentation(flip_mode="sometimes")  # type: ignore[arg-type]
    parsed = Augmentation.from_string("flip=alternating,translate=2")
    assert parsed == Augmentation(flip=True, translate=2, flip_mode="alternating")
    assert Augmentation.from_dict(parsed.to_dict()) == parsed
    assert Augmentation().flip_mode == "random"


def test_alternating_flip_resumes_in_epochs_dataset() -> None:
    images = _images(24, 5, 6)
    split = Split(images, (np.arange(24) % 3).astype(np.int64))
    augmentation = Augmentation(flip=True, translate=1, flip_mode="alternating")

    def batches(initial_epoch: int) -> list[np.ndarray]:
        dataset, _ = epochs_dataset(
            split,
            num_classes=3,
            batch_size=8,
            initial_epoch=initial_epoch,
            epochs=3,
            seed=2,
            augment=augmentation,
        )
        return [np.asarray(x) for x, _ in dataset]

    whole_batches = batches(0)
    tail_batches = batches(2)
    for got, want in zip(
        tail_batches, whole_batches[-len(tail_batches) :], strict=True
    ):
        np.testing.assert_array_equal(got, want)
