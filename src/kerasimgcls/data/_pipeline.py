"""tf.data input pipelines: seeded per-epoch order, batching, augmentation, prefetch.

The order of epoch ``e`` depends only on ``(seed, e)`` and the augmentation of its
batch ``b`` only on ``(seed, e, b)``, never on how many epochs ran before in this
process, so a resumed run sees exactly the batches an uninterrupted run would have
seen.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Literal

from kerasimgcls._validation import check_choice, check_positive_int, check_scalar
from kerasimgcls.data._augment import (
    Augmentation,
    alternating_flips,
    augment_batch,
    batch_seed,
    image_flips,
)
from kerasimgcls.data._dataset import Split
from kerasimgcls.data._steps import steps_per_epoch

__all__ = ["epochs_dataset", "to_tf_dataset"]

LabelMode = Literal["categorical", "int"]
PixelScaling = Literal["unit", "raw"]


def _check_augment(augment: object) -> Augmentation | None:
    if augment is None:
        return None
    if not isinstance(augment, Augmentation):
        raise TypeError(
            "augment must be a kerasimgcls Augmentation such as "
            f"Augmentation(flip=True, translate=4) or None; received augment={augment!r}"
        )
    return None if augment.is_identity else augment


def _check_common(
    split: Split,
    num_classes: int,
    batch_size: int,
    label_mode: str,
    input_scaling: str = "unit",
) -> tuple[int, int]:
    if not isinstance(split, Split):
        raise TypeError(
            f"split must be a kerasimgcls Split (such as data.train); received "
            f"{type(split).__name__}"
        )
    if len(split) == 0:
        raise ValueError("split is empty: there is nothing to iterate over")
    num_classes = check_positive_int(num_classes, "num_classes")
    batch_size = check_positive_int(batch_size, "batch_size")
    check_choice(label_mode, "label_mode", ("categorical", "int"))
    check_choice(input_scaling, "input_scaling", ("unit", "raw"))
    top = int(split.labels.max())
    if top >= num_classes:
        raise ValueError(
            f"split labels must be in [0, num_classes) = [0, {num_classes}); "
            f"received a label {top}"
        )
    return num_classes, batch_size


@dataclass(frozen=True)
class _Batching:
    """How every epoch is cut into batches (the checked arguments)."""

    num_classes: int
    batch_size: int
    label_mode: str
    drop_remainder: bool
    augment: Augmentation | None
    input_scaling: str


def _one_epoch(
    images: Any,
    labels: Any,
    batching: _Batching,
    shuffle: bool,
    seed: int,
    epoch: Any,
) -> Any:
    """The batches of epoch ``epoch`` (a number or a scalar tensor)."""
    order = _epoch_order(int(images.shape[0]), shuffle, seed, epoch)
    return _batches(images, labels, order, batching, seed=seed, epoch=epoch)


def _batches(
    images: Any,
    labels: Any,
    order: Any,
    batching: _Batching,
    *,
    seed: int,
    epoch: Any,
) -> Any:
    import tensorflow as tf

    augment = batching.augment
    num_classes = batching.num_classes

    flips = None
    if augment is not None and augment.flip and augment.flip_mode == "alternating":
        flips = image_flips(seed, int(images.shape[0]))

    def gather(batch_index: Any, index: Any) -> tuple[Any, Any]:
        x = tf.gather(images, index)
        if augment is not None:
            flipped = None if flips is None else alternating_flips(flips, index, epoch)
            # On uint8, before the cast: a quarter of the bytes to move.
            x = augment_batch(
                x, augment, batch_seed(seed, epoch, batch_index), flipped=flipped
            )
        x = tf.cast(x, tf.float32)
        if batching.input_scaling == "unit":
            x = x / 255.0
        y = tf.gather(labels, index)
        if batching.label_mode == "categorical":
            y = tf.one_hot(y, num_classes, dtype=tf.float32)
        return x, y

    batches = (
        tf.data.Dataset.from_tensor_slices(order)
        .batch(batching.batch_size, drop_remainder=batching.drop_remainder)
        .enumerate()
    )
    return batches.map(gather, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _epoch_order(size: int, shuffle: bool, seed: int, epoch: Any) -> Any:
    import tensorflow as tf

    indices = tf.range(size, dtype=tf.int64)
    if not shuffle:
        return indices
    pair = tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64)])
    return tf.random.experimental.stateless_shuffle(indices, seed=pair)


def to_tf_dataset(
    split: Split,
    *,
    num_classes: int,
    batch_size: int = 64,
    shuffle: bool = False,
    seed: int = 0,
    epoch: int = 0,
    label_mode: LabelMode = "categorical",
    drop_remainder: bool = False,
    augment: Augmentation | None = None,
    input_scaling: PixelScaling = "unit",
) -> Any:
    """Return one epoch of ``split`` as a :class:`tf.data.Dataset` of batches.

    Images stay uint8 in memory; each batch is gathered, augmented (if asked),
    cast to float32 and scaled to ``[0, 1]`` (or kept in 0-255 for a model that
    scales its own input) and its labels one-hot encoded (or kept as
    integers) on the fly, and batches are prefetched. With the same arguments the
    batches are the same, in any process.

    Args:
        split: The split to iterate, such as ``data.train``.
        num_classes: Number of classes, for one-hot encoding.
        batch_size: Images per batch.
        shuffle: Shuffle the order; the order depends only on ``seed`` and ``epoch``.
        seed: Seed of the order.
        epoch: Which epoch's order to produce (0-based).
        label_mode: ``"categorical"`` for one-hot float32 labels, ``"int"`` for int64
            class indices.
        drop_remainder: Drop the last batch if it is smaller than ``batch_size``.
        augment: Random flips, translations and cutout for each batch; their
            randomness depends only on ``(seed, epoch, batch index)``. ``None``
            for none (validation and test data).
        input_scaling: ``"unit"`` for pixels in ``[0, 1]``, ``"raw"`` for 0-255
            (what :func:`kerasimgcls.resolve_input_scaling` decides for a model).

    Returns:
        A dataset of ``(images, labels)`` batches: images float32 of shape
        ``(batch, height, width, channels)`` in [0, 1] (0-255 with
        ``input_scaling="raw"``).

    Raises:
        TypeError: If ``split`` is not a :class:`Split` or ``augment`` is not an
            :class:`Augmentation`.
        ValueError: If the split is empty, an argument is out of range or a label
            is not below ``num_classes``.

    Example:
        >>> from kerasimgcls import load_digits, to_tf_dataset
        >>> data = load_digits(seed=0)
        >>> batches = to_tf_dataset(data.train, num_classes=10, batch_size=32,
        ...                         shuffle=True, seed=1)
        >>> images, labels = next(iter(batches))
        >>> tuple(images.shape), tuple(labels.shape)
        ((32, 8, 8, 1), (32, 10))
    """
    import tensorflow as tf

    num_classes, batch_size = _check_common(
        split, num_classes, batch_size, label_mode, input_scaling
    )
    epoch = check_positive_int(epoch, "epoch", allow_zero=True)
    seed = _check_seed(seed)
    augmentation = _check_augment(augment)
    batching = _Batching(
        num_classes, batch_size, label_mode, drop_remainder, augmentation, input_scaling
    )
    images = tf.constant(split.images)
    labels = tf.constant(split.labels)
    dataset = _one_epoch(images, labels, batching, shuffle, seed, epoch)
    return dataset.prefetch(tf.data.AUTOTUNE)


def epochs_dataset(
    split: Split,
    *,
    num_classes: int,
    batch_size: int,
    initial_epoch: int,
    epochs: int,
    shuffle: bool = True,
    seed: int = 0,
    label_mode: LabelMode = "categorical",
    drop_remainder: bool = False,
    augment: Augmentation | None = None,
    input_scaling: PixelScaling = "unit",
) -> tuple[Any, int]:
    """Return the batches of epochs ``initial_epoch .. epochs - 1`` back to back.

    For ``keras.Model.fit(..., steps_per_epoch=steps, initial_epoch=...)``: one
    iterator serves every epoch, and epoch ``e`` yields exactly the batches of
    ``to_tf_dataset(..., epoch=e)`` (same order, same augmentation), so a run
    resumed at ``initial_epoch`` continues as if it had never stopped.

    Args:
        split: The split to iterate, such as ``data.train``.
        num_classes: Number of classes, for one-hot encoding.
        batch_size: Images per batch.
        initial_epoch: First epoch to produce (0-based).
        epochs: One past the last epoch to produce.
        shuffle: Shuffle each epoch; the order depends only on ``seed`` and the
            epoch.
        seed: Seed of the order and of the augmentation.
        label_mode: ``"categorical"`` or ``"int"``, as in :func:`to_tf_dataset`.
        drop_remainder: Drop each epoch's last batch if it is smaller than
            ``batch_size``.
        augment: Augmentation of each batch, as in :func:`to_tf_dataset`.
        input_scaling: ``"unit"`` or ``"raw"``, as in :func:`to_tf_dataset`.

    Returns:
        ``(dataset, steps_per_epoch)``.

    Raises:
        TypeError: If ``split`` is not a :class:`Split` or ``augment`` is not an
            :class:`Augmentation`.
        ValueError: If the split is empty, an argument is out of range,
            ``epochs`` is not above ``initial_epoch`` or a label is not below
            ``num_classes``.

    Example:
        >>> from kerasimgcls import Augmentation, epochs_dataset, load_digits
        >>> data = load_digits(seed=0)
        >>> batches, steps = epochs_dataset(
        ...     data.train, num_classes=10, batch_size=100, initial_epoch=1, epochs=3,
        ...     seed=7, augment=Augmentation(flip=True, translate=1))
        >>> steps, sum(1 for _ in batches) == 2 * steps
        (13, True)
    """
    import tensorflow as tf

    num_classes, batch_size = _check_common(
        split, num_classes, batch_size, label_mode, input_scaling
    )
    initial_epoch = check_positive_int(initial_epoch, "initial_epoch", allow_zero=True)
    epochs = check_positive_int(epochs, "epochs")
    if epochs <= initial_epoch:
        raise ValueError(
            f"epochs must be greater than initial_epoch; received epochs={epochs} "
            f"and initial_epoch={initial_epoch}"
        )
    seed = _check_seed(seed)
    augmentation = _check_augment(augment)
    size = len(split)
    steps = steps_per_epoch(size, batch_size, drop_remainder=drop_remainder)
    if steps == 0:
        raise ValueError(
            f"batch_size={batch_size} with drop_remainder=True leaves no batch of "
            f"the {size} images; lower batch_size"
        )
    batching = _Batching(
        num_classes, batch_size, label_mode, drop_remainder, augmentation, input_scaling
    )
    images = tf.constant(split.images)
    labels = tf.constant(split.labels)
    one_epoch = functools.partial(_one_epoch, images, labels, batching, shuffle, seed)
    epochs_range = tf.data.Dataset.range(initial_epoch, epochs)
    dataset = epochs_range.flat_map(one_epoch)
    return dataset.prefetch(tf.data.AUTOTUNE), steps


def _check_seed(seed: object) -> int:
    return int(check_scalar(seed, "seed", kind=int))
