"""The end of a run: the kept epoch, batch norm at inference, the inference check.

What ``run.json`` records under ``"final"``, computed after ``model.fit`` (or for
a finished run reloaded from its checkpoint) by :func:`finish_run`.
"""

from __future__ import annotations

import warnings
from typing import Any

import keras
import numpy as np
from numpy.typing import ArrayLike, NDArray

from kerasimgcls.data import ImageDataset
from kerasimgcls.inference._predict import predict_proba
from kerasimgcls.training._averaging import WeightAveraging
from kerasimgcls.training._build import scope_of, weights_digest
from kerasimgcls.training._context import RunContext
from kerasimgcls.training._early_stopping import ResumableEarlyStopping
from kerasimgcls.training._history import History
from kerasimgcls.training._precise_bn import precise_batch_norm

__all__ = ["FINAL_KEYS", "check_inference", "finish_run", "scores_of"]

#: What :attr:`Trainer.final` shows of ``run.json``'s ``"final"``.
FINAL_KEYS = ("kept_epoch", "weight_averaging", "precise_batch_norm", "inference_check")

# How far below the accuracy training reported the inference accuracy on training
# images may fall before fit() warns (training accuracy includes dropout and
# augmentation, so it is usually the lower of the two).
_INFERENCE_TOLERANCE = 0.1


def check_inference(
    model: Any,
    data: ImageDataset,
    history: History,
    *,
    kept_epoch: int | None,
    seed: int,
    input_scaling: Any,
) -> dict[str, Any] | None:
    """Compare accuracy at inference on training images with what training saw.

    Cheap (at most 1,024 images, one forward pass). Training accuracy is
    measured with dropout and augmentation on, so inference is usually as good
    or better; far worse means the model does not run at inference as it
    learned (typically batch-norm statistics), and the user is told so.
    """
    rows = [row for row in history.rows if row.get("epoch") == kept_epoch]
    reported = rows[0].get("accuracy") if rows else None
    if reported is None:
        return None
    order = np.random.default_rng(seed).permutation(len(data.train))
    sample = np.sort(order[:1024])
    probabilities = predict_proba(
        model, data.train.images[sample], input_scaling=input_scaling
    )
    labels = data.train.labels[sample]
    inference = float(np.mean(np.argmax(probabilities, axis=-1) == labels))
    check = {
        "images": len(sample),
        "inference_accuracy": inference,
        "training_accuracy": float(reported),
        "agrees": inference >= float(reported) - _INFERENCE_TOLERANCE,
    }
    if not check["agrees"]:
        warnings.warn(
            f"the model is {inference:.1%} accurate at inference on "
            f"{len(sample)} of its training images, but training reported "
            f"{float(reported):.1%} (epoch {kept_epoch}): it does not "
            "run at inference as it learned. Usually the batch-norm moving "
            "statistics lag the weights (few steps per epoch for the "
            "momentum) or dropout before batch norm shifts the variance; use "
            "precise_batch_norm=True (--precise-batch-norm), a lower "
            "batch_norm_momentum, or more steps",
            stacklevel=5,
        )
    return check


def finish_run(
    context: RunContext,
    data: ImageDataset,
    history: History,
    early: ResumableEarlyStopping | None,
    averaging: WeightAveraging | None = None,
) -> dict[str, Any]:
    """Keep the best epoch, re-estimate batch norm, check inference; say what was done.

    Returns:
        ``run.json``'s ``"final"``: epochs completed, where training stopped
        early, the weights' digest, the last history row, the kept epoch, the
        weight averaging's summary, the precise batch-norm summary and the
        inference check.
    """
    kept = (
        early.keep_best(context.model) if early is not None and len(history) else None
    )
    if kept is None and len(history):
        why = "last epoch" if averaging is None else "average of the weights"
        kept = {"epoch": int(history.rows[-1]["epoch"]), "why": why}
    final: dict[str, Any] = {"kept_epoch": kept}
    if averaging is not None:
        final["weight_averaging"] = averaging.summary()
    if context.config.precise_batch_norm:
        # Also for restored best weights and for a finished run reloaded from
        # its checkpoint; idempotent when the last validation just did it.
        with scope_of(context.strategy):
            final["precise_batch_norm"] = precise_batch_norm(
                context.model,
                data.train.images,
                input_scaling=context.scaling.scaling,
                seed=context.config.seed,
            )
    final["inference_check"] = check_inference(
        context.model,
        data,
        history,
        kept_epoch=(kept or {}).get("epoch"),
        seed=context.config.seed,
        input_scaling=context.scaling.scaling,
    )
    return {
        "epochs_completed": len(history),
        "stopped_early_at_epoch": None if early is None else early.stopped_at,
        "weights_sha256": weights_digest(context.model),
        "last_epoch": history.rows[-1] if len(history) else None,
        **final,
    }


def scores_of(
    model: keras.Model, probabilities: NDArray[np.float32], labels: ArrayLike
) -> dict[str, float]:
    """Accuracy and the compiled loss of ``probabilities`` (a TTA evaluation)."""
    labels = np.asarray(labels)
    targets = keras.ops.one_hot(labels, probabilities.shape[-1])
    # Trainer.evaluate compiled the model: its loss is the trainer's.
    value = keras.losses.get(model.loss)(targets, probabilities)
    return {
        "accuracy": float(np.mean(np.argmax(probabilities, axis=-1) == labels)),
        "loss": float(keras.ops.convert_to_numpy(keras.ops.mean(value))),
    }
