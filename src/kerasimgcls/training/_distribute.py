"""Work-arounds that let Keras 3 train under MultiWorkerMirroredStrategy.

Keras 3.15 averages the per-replica logs of a step under
``MultiWorkerMirroredStrategy`` with ``strategy.reduce("MEAN", v, axis=0)``, which
fails for the scalar loss and metrics ("Invalid reduction dimension 0 for input
with 0 dimensions", tensorflow/tensorflow#72388), and builds the model by reducing
a nested distributed batch, which the strategy rejects. :func:`multi_worker_fixes`
patches both, only for the duration of a call and only for that strategy.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

__all__ = ["is_chief", "multi_worker_fixes", "prebuild", "shard_by_data"]


def _is_multi_worker(strategy: Any) -> bool:
    import tensorflow as tf

    return isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)


@contextlib.contextmanager
def multi_worker_fixes(strategy: Any) -> Iterator[None]:
    """Within the block, average scalar logs across workers with ``axis=None``."""
    if not _is_multi_worker(strategy):
        yield
        return
    from keras.src import tree
    from keras.src.backend.tensorflow import trainer as tf_trainer

    original = tf_trainer.reduce_per_replica

    def reduce_per_replica(values: Any, strategy: Any, reduction: str) -> Any:
        if reduction not in ("auto", "mean") or not _is_multi_worker(strategy):
            return original(values, strategy, reduction)

        def reduce(value: Any) -> Any:
            if getattr(value, "shape", None) is not None and len(value.shape) == 0:
                return strategy.reduce("MEAN", value, axis=None)
            return original(value, strategy, reduction)

        return tree.map_structure(reduce, values)

    tf_trainer.reduce_per_replica = reduce_per_replica
    try:
        yield
    finally:
        tf_trainer.reduce_per_replica = original


def prebuild(model: Any, strategy: Any, dataset: Any) -> None:
    """Build ``model`` from one plain batch so ``fit`` skips its distributed build."""
    if not _is_multi_worker(strategy):
        return
    batch = next(iter(dataset.take(1)))
    with strategy.scope():
        model._symbolic_build(data_batch=batch)
    model._maybe_symbolic_build = lambda *args, **kwargs: None


def is_chief(strategy: Any) -> bool:
    """Whether this process writes the run directory (one per cluster)."""
    resolver = getattr(strategy, "cluster_resolver", None) if strategy else None
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    cluster = resolver.cluster_spec().as_dict()
    if "chief" in cluster:
        return bool(resolver.task_type == "chief")
    return bool(resolver.task_type == "worker" and int(resolver.task_id or 0) == 0)


def shard_by_data(dataset: Any, strategy: Any) -> Any:
    """Shard ``dataset`` by data (not by file) across the workers of ``strategy``."""
    if strategy is None:
        return dataset
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = (
        tf.data.experimental.AutoShardPolicy.DATA
    )
    return dataset.with_options(options)
