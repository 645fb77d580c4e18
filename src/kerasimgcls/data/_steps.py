"""The number of batches in an epoch: the one count of steps per epoch."""

from __future__ import annotations

__all__ = ["steps_per_epoch"]


def steps_per_epoch(
    num_images: int, batch_size: int, *, drop_remainder: bool = False
) -> int:
    """Return how many batches of ``batch_size`` an epoch of ``num_images`` makes.

    The last, smaller batch counts unless ``drop_remainder``. The recipes, the
    Trainer, the input pipeline, the learning-rate finder and the command line
    all count with it (the arguments were checked where they entered).

    Example:
        >>> steps_per_epoch(1000, 64), steps_per_epoch(1000, 64, drop_remainder=True)
        (16, 15)
    """
    if drop_remainder:
        return num_images // batch_size
    return -(-num_images // batch_size)
