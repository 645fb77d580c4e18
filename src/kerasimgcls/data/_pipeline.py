"""tf.data input pipelines: seeded per-epoch order, batching, normalisation, prefetch.

The order of epoch ``e`` depends only on ``(seed, e)``, never on how many epochs ran
before in this process, so a resumed run sees exactly the batches an uninterrupted
run would have seen.
"""

from __future__ import annotations

from typing import Any, Literal

from kerasimgcls._validation import check_choice, check_positive_int
from kerasimgcls.data._dataset import Split

__all__ = ["epochs_dataset", "to_tf_dataset"]

LabelMode = Literal["categorical", "int"]


def _check_common(
    split: Split, num_classes: int, batch_size: int, label_mode: str
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
    top = int(split.labels.max())
    if top >= num_classes:
        raise ValueError(
            f"split labels must be in [0, num_classes) = [0, {num_classes}); "
            f"received a label {top}"
        )
    return num_classes, batch_size


def _batches(
    images: Any,
    labels: Any,
    order: Any,
    *,
    num_classes: int,
    batch_size: int,
    label_mode: str,
    drop_remainder: bool,
) -> Any:
    import tensorflow as tf

    def gather(index: Any) -> tuple[Any, Any]:
        x = tf.cast(tf.gather(images, index), tf.float32) / 255.0
        y = tf.gather(labels, index)
        if label_mode == "categorical":
            y = tf.one_hot(y, num_classes, dtype=tf.float32)
        return x, y

    batches = tf.data.Dataset.from_tensor_slices(order).batch(
        batch_size, drop_remainder=drop_remainder
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
) -> Any:
    """Return one epoch of ``split`` as a :class:`tf.data.Dataset` of batches.

    Images stay uint8 in memory; each batch is gathered, scaled to float32 in
    ``[0, 1]`` and its labels one-hot encoded (or kept as integers) on the fly, and
    batches are prefetched.

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

    Returns:
        A dataset of ``(images, labels)`` batches: images float32 of shape
        ``(batch, height, width, channels)`` in [0, 1].

    Raises:
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

    num_classes, batch_size = _check_common(split, num_classes, batch_size, label_mode)
    epoch = check_positive_int(epoch, "epoch", allow_zero=True)
    images = tf.constant(split.images)
    labels = tf.constant(split.labels)
    order = _epoch_order(len(split), shuffle, seed, epoch)
    dataset = _batches(
        images,
        labels,
        order,
        num_classes=num_classes,
        batch_size=batch_size,
        label_mode=label_mode,
        drop_remainder=drop_remainder,
    )
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
) -> tuple[Any, int]:
    """Return the batches of epochs ``initial_epoch .. epochs - 1`` back to back.

    For ``keras.Model.fit(..., steps_per_epoch=steps, initial_epoch=...)``: one
    iterator serves every epoch, and epoch ``e`` has the order of
    ``to_tf_dataset(..., epoch=e)``.

    Returns:
        ``(dataset, steps_per_epoch)``.
    """
    import tensorflow as tf

    num_classes, batch_size = _check_common(split, num_classes, batch_size, label_mode)
    size = len(split)
    steps = size // batch_size if drop_remainder else -(-size // batch_size)
    images = tf.constant(split.images)
    labels = tf.constant(split.labels)

    def one_epoch(epoch: Any) -> Any:
        order = _epoch_order(size, shuffle, seed, epoch)
        return _batches(
            images,
            labels,
            order,
            num_classes=num_classes,
            batch_size=batch_size,
            label_mode=label_mode,
            drop_remainder=drop_remainder,
        )

    epochs_range = tf.data.Dataset.range(initial_epoch, epochs)
    dataset = epochs_range.flat_map(one_epoch)
    return dataset.prefetch(tf.data.AUTOTUNE), steps
