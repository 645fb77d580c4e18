"""One switch that seeds everything and, optionally, makes TensorFlow deterministic."""

from __future__ import annotations

import logging
import os

from kerasimgcls._validation import check_positive_int

__all__ = ["seed_everything"]

logger = logging.getLogger(__name__)


def seed_everything(seed: int, *, deterministic: bool = True) -> int:
    """Seed Python, NumPy, TensorFlow and Keras, and turn on op determinism.

    Seeds :mod:`random`, NumPy's global generator, TensorFlow's global seed and
    Keras' global :class:`keras.random.SeedGenerator` in one call (through
    :func:`keras.utils.set_random_seed`), and sets ``PYTHONHASHSEED`` for child
    processes. Call it *before* building a model so its initial weights (and the
    seeds of its dropout layers) are reproducible too; :class:`Trainer` does this
    for you when it is given a model factory instead of a model.

    With ``deterministic=True`` it also calls
    :func:`tf.config.experimental.enable_op_determinism`: every TensorFlow op then
    uses a deterministic kernel, so two runs with the same seed on the same machine
    give bit-identical weights. This is process-wide and cannot be undone. It costs
    speed where a faster non-deterministic kernel exists (mostly on GPUs: scatter
    and segment reductions, some convolution algorithms; on CPUs the cost is
    usually small; a ``tf.data`` map with *stateful* random ops can become much
    slower, which is why this library's pipelines use stateless ones), and an op
    that has no deterministic kernel raises :class:`tf.errors.UnimplementedError`
    when it runs instead of silently varying.

    Args:
        seed: A non-negative integer.
        deterministic: Also turn on TensorFlow's op determinism.

    Returns:
        The seed.

    Raises:
        TypeError: If ``seed`` is not an integer.
        ValueError: If ``seed`` is negative.

    Example:
        >>> import numpy as np
        >>> from kerasimgcls import seed_everything
        >>> _ = seed_everything(7, deterministic=False)
        >>> first = np.random.rand()
        >>> _ = seed_everything(7, deterministic=False)
        >>> first == np.random.rand()
        True
    """
    seed = check_positive_int(seed, "seed", allow_zero=True)
    import keras
    import tensorflow as tf

    os.environ["PYTHONHASHSEED"] = str(seed)
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
        logger.debug("TensorFlow op determinism enabled (process-wide)")
    return seed
