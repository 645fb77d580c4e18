"""Batch augmentation that a resumed run repeats exactly: flip, translate, cutout."""

from __future__ import annotations

import numbers
from dataclasses import asdict, dataclass
from typing import Any, Literal

from kerasimgcls._validation import check_choice

__all__ = ["Augmentation", "check_fits"]

FillMode = Literal["reflect", "constant"]

# Keeps augmentation randomness independent of the shuffle, which uses the bare seed.
_AUGMENT_SALT = 0x6B6963


@dataclass(frozen=True)
class Augmentation:
    """Random flips, translations and cutout applied to each training batch.

    The randomness of batch ``b`` of epoch ``e`` is a pure function of
    ``(seed, e, b)`` (TensorFlow's stateless random ops), so a run resumed at epoch
    ``e`` augments exactly as the uninterrupted run did, and two runs with the same
    seed see the same augmented images.

    Why not Keras preprocessing layers (``RandomFlip``, ``RandomTranslation``)?
    They draw from a random generator whose state advances with every call and is
    not part of a checkpoint, so a resumed run would augment differently. The
    operations here are the same ones, done with stateless ops on uint8 batches
    inside the ``tf.data`` pipeline (a batched gather per batch, cheap next to a
    training step), and they never become part of the saved model.

    Args:
        flip: Mirror each image left-right with probability 1/2.
        translate: Shift each image by up to this many pixels in each direction
            (a random crop of the image padded by ``translate`` pixels); 0 turns
            it off.
        cutout: Side of a square set to 0 at a random centre in each image (it may
            overlap the border, as in DeVries & Taylor, 2017); 0 turns it off.
        fill_mode: How the border is filled when translating: ``"reflect"`` mirrors
            the image (like ``keras.layers.RandomTranslation``), ``"constant"``
            pads with zeros.

    Raises:
        TypeError: If ``flip`` is not a bool or a size is not an integer.
        ValueError: If a size is negative or ``fill_mode`` is unknown.

    Example:
        >>> from kerasimgcls import Augmentation
        >>> Augmentation(flip=True, translate=4, cutout=8)
        Augmentation(flip=True, translate=4, cutout=8, fill_mode='reflect')
        >>> Augmentation.from_string("flip,translate=2")
        Augmentation(flip=True, translate=2, cutout=0, fill_mode='reflect')
    """

    flip: bool = True
    translate: int = 4
    cutout: int = 0
    fill_mode: FillMode = "reflect"

    def __post_init__(self) -> None:
        if not isinstance(self.flip, bool):
            raise TypeError(f"flip must be True or False; received flip={self.flip!r}")
        for name in ("translate", "cutout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Integral):
                raise TypeError(
                    f"{name} must be an integer number of pixels; received "
                    f"{name}={value!r}"
                )
            if value < 0:
                raise ValueError(
                    f"{name} must be >= 0 (0 turns it off); received {name}={value!r}"
                )
            object.__setattr__(self, name, int(value))
        check_choice(self.fill_mode, "fill_mode", ("constant", "reflect"))

    @property
    def is_identity(self) -> bool:
        """``True`` if no operation is enabled (the batches pass unchanged)."""
        return not self.flip and self.translate == 0 and self.cutout == 0

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a JSON-ready dict (for ``run.json``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, settings: dict[str, Any]) -> Augmentation:
        """Rebuild from :meth:`to_dict` output.

        Raises:
            ValueError: If ``settings`` has an unknown key.
        """
        unknown = sorted(set(settings) - {"flip", "translate", "cutout", "fill_mode"})
        if unknown:
            raise ValueError(
                f"unknown augmentation setting(s) {unknown}; allowed: "
                "['cutout', 'fill_mode', 'flip', 'translate']"
            )
        return cls(**settings)

    @classmethod
    def from_string(cls, text: str) -> Augmentation:
        """Parse ``"flip,translate=4,cutout=8"`` (the CLI's ``--augment`` value).

        Items are comma-separated: ``flip`` (or ``noflip``), ``translate=N``,
        ``cutout=N``, ``fill_mode=reflect|constant``. Operations not named are
        off; ``"none"`` means no augmentation at all and ``"default"`` means
        ``Augmentation()``.

        Raises:
            ValueError: If an item is not understood.
        """
        text = text.strip().lower()
        if text == "default":
            return cls()
        settings: dict[str, Any] = {"flip": False, "translate": 0, "cutout": 0}
        if text in ("", "none"):
            return cls(**settings)
        for item in (part.strip() for part in text.split(",")):
            key, _, value = item.partition("=")
            if item in ("flip", "noflip"):
                settings["flip"] = item == "flip"
            elif key in ("translate", "cutout") and value.isdigit():
                settings[key] = int(value)
            elif key == "fill_mode" and value:
                settings[key] = value
            else:
                raise ValueError(
                    f"cannot parse augmentation item {item!r} in {text!r}; expected "
                    "items like 'flip', 'translate=4', 'cutout=8', "
                    "'fill_mode=constant', or 'none'"
                )
        return cls(**settings)


def batch_seed(seed: int, epoch: Any, batch_index: Any) -> Any:
    """Stateless seed (shape ``(2,)``, int64) of one batch: ``f(seed, epoch, batch)``."""
    import tensorflow as tf

    base = tf.constant([seed, _AUGMENT_SALT], dtype=tf.int64)
    per_epoch = tf.random.experimental.stateless_fold_in(base, tf.cast(epoch, tf.int64))
    return tf.random.experimental.stateless_fold_in(
        per_epoch, tf.cast(batch_index, tf.int64)
    )


def check_fits(augmentation: Augmentation, height: int, width: int) -> None:
    """Refuse a translation or cutout that does not fit images of this size.

    With ``fill_mode="constant"`` a shift of the whole image or more
    (``translate >= min(height, width)``) can leave nothing of the picture; with
    ``"reflect"`` a shift of two sides or more only repeats shorter ones (the
    reflection is periodic). A cutout larger than the image blanks it.

    Raises:
        ValueError: If ``translate`` or ``cutout`` is too large; the message names it.
    """
    side = min(height, width)
    longest_shift = side - 1 if augmentation.fill_mode == "constant" else 2 * side - 1
    for name, value, allowed in (
        ("translate", augmentation.translate, longest_shift),
        ("cutout", augmentation.cutout, side),
    ):
        if value > allowed:
            raise ValueError(
                f"{name} must be at most {allowed} pixels for {height}x{width} "
                f"images with fill_mode={augmentation.fill_mode!r}; received "
                f"{name}={value}"
            )


def augment_batch(images: Any, augmentation: Augmentation, seed: Any) -> Any:
    """Augment a uint8 batch ``(b, h, w, c)`` using the stateless ``seed``.

    Raises:
        ValueError: If the translation or cutout does not fit the images (checked
            when the pipeline is built, from the static shape).
    """
    import tensorflow as tf

    if images.shape[1] is not None and images.shape[2] is not None:
        try:
            check_fits(augmentation, int(images.shape[1]), int(images.shape[2]))
        except ValueError as err:
            # tf.data traces this function with AutoGraph, which would rewrite the
            # message into a multi-line "in user code" report; let it through.
            err.ag_pass_through = True  # type: ignore[attr-defined]
            raise

    flip_seed, translate_seed, cutout_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, 3)
    )
    batch = tf.shape(images)[0]
    flipped = None
    if augmentation.flip:
        flipped = tf.random.stateless_uniform([batch], flip_seed) < 0.5
    if augmentation.translate:
        images = _translate(images, augmentation, translate_seed, flipped)
    elif flipped is not None:
        images = tf.where(
            flipped[:, tf.newaxis, tf.newaxis, tf.newaxis],
            tf.reverse(images, axis=[2]),
            images,
        )
    if augmentation.cutout:
        images = _cutout(images, augmentation.cutout, cutout_seed)
    return images


def _translate(
    images: Any, augmentation: Augmentation, seed: Any, flipped: Any | None
) -> Any:
    import tensorflow as tf

    pad = augmentation.translate
    height, width = images.shape[1], images.shape[2]
    batch = tf.shape(images)[0]
    shifts = tf.random.stateless_uniform(
        [2, batch], seed, minval=-pad, maxval=pad + 1, dtype=tf.int32
    )
    rows, row_inside = _source_indices(shifts[0], height, augmentation.fill_mode)
    columns, column_inside = _source_indices(shifts[1], width, augmentation.fill_mode)
    if flipped is not None:
        # Mirroring is one more permutation of the columns: fold it into the gather.
        columns = tf.where(flipped[:, tf.newaxis], width - 1 - columns, columns)
    # Two batched gathers shift every image by its own offset, no padded copy.
    shifted = tf.gather(images, rows, axis=1, batch_dims=1)
    shifted = tf.gather(shifted, columns, axis=2, batch_dims=1)
    if augmentation.fill_mode == "reflect":
        return shifted
    inside = row_inside[:, :, tf.newaxis] & column_inside[:, tf.newaxis, :]
    return tf.where(inside[..., tf.newaxis], shifted, tf.zeros_like(shifted))


def _source_indices(shift: Any, size: int, fill_mode: str) -> tuple[Any, Any]:
    """Source index of each output pixel for per-image shifts ``(b,)``: ``(b, size)``."""
    import tensorflow as tf

    index = shift[:, tf.newaxis] + tf.range(size)[tf.newaxis, :]
    inside = (index >= 0) & (index < size)
    if fill_mode == "reflect":
        # Mirror without repeating the edge pixel (like numpy's "reflect"), folded
        # again for shifts larger than the image.
        period = max(2 * (size - 1), 1)
        folded = tf.math.floormod(index, period)
        return tf.minimum(folded, period - folded), inside
    return tf.clip_by_value(index, 0, size - 1), inside


def _cutout(images: Any, size: int, seed: Any) -> Any:
    import tensorflow as tf

    height, width = images.shape[1], images.shape[2]
    batch = tf.shape(images)[0]
    centre_y = tf.random.stateless_uniform(
        [batch], seed, minval=0, maxval=height, dtype=tf.int32
    )
    centre_x = tf.random.stateless_uniform(
        [batch],
        tf.random.experimental.stateless_fold_in(seed, 1),
        minval=0,
        maxval=width,
        dtype=tf.int32,
    )
    top = centre_y - size // 2
    left = centre_x - size // 2
    rows = tf.range(height)[tf.newaxis, :]
    columns = tf.range(width)[tf.newaxis, :]
    in_rows = (rows >= top[:, tf.newaxis]) & (rows < top[:, tf.newaxis] + size)
    in_columns = (columns >= left[:, tf.newaxis]) & (
        columns < left[:, tf.newaxis] + size
    )
    hole = in_rows[:, :, tf.newaxis] & in_columns[:, tf.newaxis, :]
    return tf.where(hole[..., tf.newaxis], tf.zeros_like(images), images)
