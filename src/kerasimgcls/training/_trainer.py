"""The Trainer: a model and a dataset in, a finished, documented, resumable run out."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import logging
import math
import numbers
import os
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeAlias

import keras
import numpy as np
from numpy.typing import ArrayLike, NDArray

from kerasimgcls._export import export_model, predict_proba
from kerasimgcls._io import write_json_atomic
from kerasimgcls._scaling import (
    InputScaling,
    ScalingDecision,
    check_input_scaling,
    resolve_input_scaling,
)
from kerasimgcls._validation import check_positive_int, check_rate
from kerasimgcls.data import ImageDataset, Split, epochs_dataset, to_tf_dataset
from kerasimgcls.layers import check_precision, fuse_batch_norm, precision_scope
from kerasimgcls.training._checks import (
    check_callbacks,
    check_class_weight,
    check_learning_rate,
    check_optimizer,
    check_schedule,
    check_warmup,
)
from kerasimgcls.training._distribute import multi_worker_fixes, prebuild
from kerasimgcls.training._history import History
from kerasimgcls.training._precise_bn import PreciseBatchNorm, precise_batch_norm
from kerasimgcls.training._resume import (
    load_checkpoint,
    restore_variables,
    save_checkpoint,
    snapshot,
)
from kerasimgcls.training._run_dir import (
    CHECKPOINT,
    environment,
    locks_run_dir,
    prepare_run_dir,
    utc_now,
    write_metrics,
)
from kerasimgcls.training._schedules import make_schedule
from kerasimgcls.training._seed import seed_everything

__all__ = ["Trainer", "TrainingDivergedError"]

logger = logging.getLogger(__name__)

ModelOrFactory: TypeAlias = "keras.Model | Callable[[], keras.Model]"

# How far below the accuracy training reported the inference accuracy on training
# images may fall before fit() warns (training accuracy includes dropout and
# augmentation, so it is usually the lower of the two).
_INFERENCE_TOLERANCE = 0.1


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite; the message says at which epoch and step.

    :meth:`Trainer.fit` raises it after stopping the run; the run directory keeps
    the checkpoint of the last good epoch, so a lower learning rate can take over.

    Example:
        >>> from kerasimgcls import TrainingDivergedError
        >>> issubclass(TrainingDivergedError, RuntimeError)
        True
    """


def _is_chief(strategy: Any) -> bool:
    # Only one process of a multi-worker cluster writes the run directory.
    resolver = getattr(strategy, "cluster_resolver", None) if strategy else None
    if resolver is None or not getattr(resolver, "task_type", None):
        return True
    cluster = resolver.cluster_spec().as_dict()
    if "chief" in cluster:
        return bool(resolver.task_type == "chief")
    return bool(resolver.task_type == "worker" and int(resolver.task_id or 0) == 0)


def _describe(value: Any) -> Any:
    """Return a JSON-friendly description of a configuration value."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {"type": type(value).__name__, **dataclasses.asdict(value)}
    if isinstance(value, Mapping):
        return {str(key): _describe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_describe(item) for item in value]
    if hasattr(value, "get_config"):
        try:
            config = value.get_config()
        except (NotImplementedError, TypeError, AttributeError):
            return type(value).__name__
        if isinstance(value, keras.optimizers.Optimizer):
            # Keras numbers unnamed optimizers per process ("adam_2"): not part
            # of the run's configuration, and it would block resuming in-process.
            config = {k: v for k, v in config.items() if k != "name"}
        return {"type": type(value).__name__, "config": _describe(config)}
    return repr(value)


def _variables_signature(model: keras.Model) -> str:
    shapes = [list(map(int, variable.shape)) for variable in model.variables]
    return hashlib.sha256(json.dumps(shapes).encode()).hexdigest()[:16]


def _weights_digest(model: keras.Model) -> str:
    digest = hashlib.sha256()
    for value in model.get_weights():
        digest.update(np.ascontiguousarray(value).tobytes())
    return digest.hexdigest()


class _RunRecorder(keras.callbacks.Callback):  # type: ignore[misc]
    """Record each epoch, stop on NaN, early-stop, and checkpoint after every epoch."""

    def __init__(self, trainer: Trainer, history: History, early: dict[str, Any]):
        super().__init__()
        self.trainer = trainer
        self.history = history
        self.early = early
        self.diverged: tuple[int, int] | None = None
        self._epoch_start = 0.0
        self._epoch = 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._epoch = epoch
        self._epoch_start = time.perf_counter()

    def on_train_batch_end(
        self, batch: int, logs: dict[str, Any] | None = None
    ) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.diverged = (self._epoch + 1, batch + 1)
            self.model.stop_training = True

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.diverged is not None:
            return
        logs = dict(logs or {})
        loss = logs.get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.diverged = (epoch + 1, self.trainer._steps_per_epoch)
            self.model.stop_training = True
            return
        row: dict[str, Any] = {"epoch": epoch + 1}
        row.update(
            {key: float(value) for key, value in logs.items() if key != "learning_rate"}
        )
        row["learning_rate"] = self.trainer._current_learning_rate()
        row["epoch_time"] = round(time.perf_counter() - self._epoch_start, 3)
        self.history.append(row)
        self._update_early_stopping(row)
        self.trainer._save_epoch(epoch + 1, self.history, self.early)

    def _update_early_stopping(self, row: dict[str, Any]) -> None:
        patience = self.early.get("patience")
        if patience is None and not self.trainer.restore_best_weights:
            return
        value = row.get(self.early["monitor"])
        if value is None:
            return
        best = self.early.get("best")
        if best is None or value < best:
            self.early.update(best=value, best_epoch=row["epoch"], wait=0)
            self.trainer._best_weights = snapshot(self.model.variables)
        else:
            self.early["wait"] += 1
            if patience is not None and self.early["wait"] >= patience:
                self.early["stopped_epoch"] = row["epoch"]
                self.model.stop_training = True


class Trainer:
    """Train a Keras classifier reproducibly, record the run and resume it exactly.

    Defaults reproduce the reference tutorial: Adam, categorical cross-entropy on
    one-hot labels, accuracy, batch size 64. Input images stay uint8 in memory and
    are fed batch by batch as the model expects them (:func:`kerasimgcls.to_tf_dataset`
    and the input contract, :doc:`/guide/input`): scaled to ``[0, 1]``, or as
    0-255 to a model that scales its own input (a Keras ``Rescaling`` layer, ...).

    **Inference matches training.** With ``precise_batch_norm=True`` (the default)
    every batch norm's moving mean and variance are re-estimated, before each
    validation and at the end, from a fixed sample of training images with the
    model as it runs at inference (:func:`kerasimgcls.precise_batch_norm`). After
    training, the accuracy at inference on a sample of training images is compared
    with the accuracy training reported, and a warning explains a bad
    disagreement; both are recorded in ``run.json``.

    **Reproducible.** :meth:`fit` first calls :func:`seed_everything` with ``seed``
    (Python, NumPy, TensorFlow, Keras; op determinism when ``deterministic=True``).
    The data order and augmentation of each epoch depend only on ``(seed, epoch)``.
    Pass a model *factory* (a callable returning a model) instead of a model to
    have the initial weights seeded too; with a ready model, seed before building
    it. Two runs with the same seed on the same machine then give identical
    histories (but for ``epoch_time``) and bit-identical weights.

    **Run directory.** With ``run_dir`` every file is written atomically:
    ``run.json`` (configuration, seed, dataset fingerprint, class names, parameter
    counts, versions, hardware, times, command line), ``history.csv`` and
    ``history.json`` (after every epoch), ``curves.png``, ``model.keras`` (the
    exported model: uint8 input and class names inside, see
    :func:`kerasimgcls.export_model`), ``metrics.json`` (from :meth:`evaluate`) and
    ``checkpoints/last.npz``.

    **Resume.** After every epoch the checkpoint stores all model variables
    (including the dropout seed generators), the optimizer's variables and
    iteration count, the history and the early-stopping state. Calling :meth:`fit`
    again with the same configuration and ``run_dir`` (for example after the
    process was killed) continues from the last completed epoch and ends with the
    same weights and history as an uninterrupted run. A finished run is not
    trained again. A non-empty ``run_dir`` without a checkpoint is refused unless
    ``overwrite=True``; a checkpoint written with a different configuration is
    refused with the differences listed. The state of user ``callbacks`` is not
    checkpointed (the precise batch norm needs none: it depends only on the
    weights).

    **Distribution.** ``strategy`` takes any :class:`tf.distribute.Strategy`: a
    model given directly is cloned into ``strategy.scope()`` (its weights copied),
    a factory is called inside it. ``batch_size`` is the global batch. With
    :class:`tf.distribute.MirroredStrategy` the same code trains on every GPU of a
    machine; with :class:`tf.distribute.MultiWorkerMirroredStrategy` and
    ``TF_CONFIG`` on several machines, where only the chief writes ``run_dir``.

    Args:
        model: A :class:`keras.Model` taking images (see ``input_scaling``), or a
            callable with no arguments that builds one.
        optimizer: ``None`` for Adam, a Keras optimizer name such as ``"sgd"``, or
            an optimizer instance (copied from its config).
        learning_rate: Peak learning rate; ``None`` keeps the optimizer's own.
        schedule: ``None`` or ``"constant"``, ``"cosine"``, ``"one_cycle"``,
            ``"triangle"`` (see :class:`kerasimgcls.training.WarmupSchedule`), or
            a Keras ``LearningRateSchedule``.
        warmup_epochs: Epochs of linear warmup for the named schedules.
        loss: ``None`` for categorical cross-entropy on one-hot labels, or any Keras
            loss taking one-hot labels.
        label_smoothing: Label smoothing of the default loss, in ``[0, 1)``.
        metrics: ``None`` for ``["accuracy"]``.
        seed: Seed of everything (see above).
        deterministic: Turn on TensorFlow's op determinism (process-wide; see
            :func:`seed_everything` for the cost).
        run_dir: Directory for the run's files, or ``None`` to write nothing.
        overwrite: Replace the run files in a non-empty ``run_dir`` instead of
            refusing or resuming.
        strategy: A :class:`tf.distribute.Strategy`, or ``None``.
        callbacks: Extra Keras callbacks.
        early_stopping_patience: Stop after this many epochs without improvement
            of ``val_loss`` (``loss`` without a validation split) and restore the
            best weights; ``None`` never stops early.
        restore_best_weights: Keep the weights of the epoch with the lowest
            ``val_loss`` (``loss`` without a validation split) at the end, also
            without early stopping; ``run.json`` and the history say which.
        precise_batch_norm: Re-estimate the batch-norm statistics at inference
            (see above); ``False`` keeps Keras' moving averages as training left
            them (the tutorial's behaviour).
        input_scaling: How the uint8 pixels are fed to the model: ``"auto"``
            decides from the model (see :func:`kerasimgcls.resolve_input_scaling`),
            ``"unit"`` divides by 255, ``"raw"`` feeds 0-255.
        class_weight: ``None``, ``"balanced"`` (inverse class frequency, from
            scikit-learn) or a mapping from class index to weight.
        steps_per_execution: Training steps per compiled call (see
            :meth:`keras.Model.compile`); larger values cut Python overhead.
        precision: ``"float32"``, or ``"mixed_bfloat16"`` to build the model (a
            factory) under that Keras dtype policy: faster on CPUs with
            AVX512-BF16 or AMX, slower on others. A ready model must already
            have been built with it. See :func:`kerasimgcls.precision_scope`.
        fused_batch_norm: Train with
            :class:`~kerasimgcls.FusedBatchNormalization` in place of every
            Keras batch norm (same function and weights, faster on a CPU; see
            :func:`kerasimgcls.fuse_batch_norm`).
        metadata: Extra entries for ``run.json``; a ``"data"`` mapping is merged
            into the data section (the CLI records how to reload the dataset).
        verbose: 0 silent, 1 Keras progress bar, 2 one line per epoch.

    Raises:
        TypeError: If ``model`` is neither a Keras model nor a callable, or an
            argument has the wrong type.
        ValueError: If an argument is out of range or unknown, or options
            conflict (a ``LearningRateSchedule`` with ``learning_rate``, a custom
            ``loss`` with ``label_smoothing``).

    Example:
        >>> import kerasimgcls as kic
        >>> data = kic.load_digits(seed=0)
        >>> trainer = kic.Trainer(
        ...     lambda: kic.build_cifar_cnn(input_shape=(8, 8, 1), num_classes=10),
        ...     seed=0, verbose=0)
        >>> history = trainer.fit(data, epochs=2, batch_size=64)
        >>> len(history), sorted(trainer.evaluate(data.test))
        (2, ['accuracy', 'loss'])
    """

    def __init__(
        self,
        model: ModelOrFactory,
        *,
        optimizer: str | keras.optimizers.Optimizer | None = None,
        learning_rate: float | None = None,
        schedule: str | keras.optimizers.schedules.LearningRateSchedule | None = None,
        warmup_epochs: float = 0.0,
        loss: str | keras.losses.Loss | None = None,
        label_smoothing: float = 0.0,
        metrics: Sequence[Any] | None = None,
        seed: int = 0,
        deterministic: bool = True,
        run_dir: str | os.PathLike[str] | None = None,
        overwrite: bool = False,
        strategy: Any = None,
        callbacks: Sequence[keras.callbacks.Callback] = (),
        early_stopping_patience: int | None = None,
        class_weight: str | Mapping[int, float] | None = None,
        steps_per_execution: int = 1,
        precision: str = "float32",
        fused_batch_norm: bool = False,
        restore_best_weights: bool = False,
        precise_batch_norm: bool = True,
        input_scaling: InputScaling = "auto",
        metadata: Mapping[str, Any] | None = None,
        verbose: int = 1,
    ) -> None:
        self.seed = check_positive_int(seed, "seed", allow_zero=True)
        self.deterministic = bool(deterministic)
        self._optimizer_spec = check_optimizer(optimizer)
        self.learning_rate = check_learning_rate(learning_rate)
        self.schedule = check_schedule(schedule, self.learning_rate)
        self.warmup_epochs = check_warmup(warmup_epochs)
        self.label_smoothing = check_rate(label_smoothing, "label_smoothing")
        if loss is not None and self.label_smoothing:
            raise ValueError(
                "label_smoothing applies to the default loss only; received a custom "
                f"loss={loss!r} and label_smoothing={label_smoothing!r}: set the "
                "smoothing on your loss instead"
            )
        self.loss = loss
        self.metrics = list(metrics) if metrics is not None else ["accuracy"]
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.overwrite = bool(overwrite)
        self.strategy = strategy
        self.callbacks = check_callbacks(callbacks)
        self.early_stopping_patience = (
            None
            if early_stopping_patience is None
            else check_positive_int(early_stopping_patience, "early_stopping_patience")
        )
        self.class_weight = check_class_weight(class_weight)
        self.steps_per_execution = check_positive_int(
            steps_per_execution, "steps_per_execution"
        )
        self.precision = check_precision(precision)
        if not isinstance(fused_batch_norm, bool):
            raise TypeError(
                "fused_batch_norm must be a bool; received "
                f"fused_batch_norm={fused_batch_norm!r}"
            )
        self.fused_batch_norm = fused_batch_norm
        for flag, value in (
            ("restore_best_weights", restore_best_weights),
            ("precise_batch_norm", precise_batch_norm),
        ):
            if not isinstance(value, bool):
                raise TypeError(f"{flag} must be a bool; received {flag}={value!r}")
        self.restore_best_weights = restore_best_weights
        self.precise_batch_norm = precise_batch_norm
        self.input_scaling = check_input_scaling(input_scaling)
        self.metadata = dict(metadata or {})
        if verbose not in (0, 1, 2):
            raise ValueError(f"verbose must be 0, 1 or 2; received verbose={verbose!r}")
        self.verbose = int(verbose)
        self.model: keras.Model = self._resolve_model(model)
        self.scaling: ScalingDecision = resolve_input_scaling(
            self.model, self.input_scaling
        )
        self.history: History | None = None
        self._class_names: tuple[str, ...] | None = None
        self._steps_per_epoch = 0
        self._best_weights: list[NDArray[Any]] | None = None
        self._fit_config: dict[str, Any] = {}
        self._run_info: dict[str, Any] = {}
        self._final: dict[str, Any] = {}
        self._compiled = False

    @property
    def final(self) -> dict[str, Any]:
        """What the last :meth:`fit` kept and checked (``run.json``'s ``final`` too).

        ``"kept_epoch"``: the epoch whose weights the model has and why;
        ``"precise_batch_norm"``: the re-estimated layers and the number of
        images; ``"inference_check"``: accuracy at inference on training images
        against the accuracy training reported.
        """
        return dict(self._final)

    def _scope(self) -> Any:
        if self.strategy is None:
            return contextlib.nullcontext()
        return self.strategy.scope()

    def _resolve_model(self, model: object) -> keras.Model:
        built = self._build_model(model)
        if self.fused_batch_norm:
            with self._scope():
                built = fuse_batch_norm(built)
        return built

    def _build_model(self, model: object) -> keras.Model:
        scope = self._scope()
        if isinstance(model, keras.Model):
            _check_model_precision(model, self.precision)
            if self.strategy is None:
                return model
            with scope:
                clone = keras.models.clone_model(model)
                clone.set_weights(model.get_weights())
            return clone
        if callable(model):
            seed_everything(self.seed, deterministic=self.deterministic)
            with scope, precision_scope(self.precision):
                built = model()
            if not isinstance(built, keras.Model):
                raise TypeError(
                    "model factory must return a keras.Model; it returned "
                    f"{type(built).__name__}"
                )
            return built
        raise TypeError(
            "model must be a keras.Model or a callable that builds one; received "
            f"{type(model).__name__}"
        )

    def _check_data(self, data: object) -> ImageDataset:
        if not isinstance(data, ImageDataset):
            raise TypeError(
                "data must be a kerasimgcls ImageDataset (from load_digits, "
                f"from_arrays, load_cifar10, ...); received {type(data).__name__}"
            )
        if len(data.train) == 0:
            raise ValueError("data.train is empty: there is nothing to train on")
        if data.validation is not None and len(data.validation) == 0:
            raise ValueError(
                "data.validation is empty; use validation_split=0 for no validation"
            )
        outputs = self.model.output_shape
        if isinstance(outputs, list):
            raise ValueError("model must have a single output (class probabilities)")
        if int(outputs[-1]) != data.num_classes:
            raise ValueError(
                f"the model outputs {outputs[-1]} classes but the dataset has "
                f"num_classes={data.num_classes}; build the model with "
                f"num_classes={data.num_classes}"
            )
        self._check_image_shape(data.input_shape, "data")
        return data

    def _check_image_shape(self, shape: tuple[int, ...], what: str) -> None:
        expected = tuple(self.model.input_shape[1:])
        compatible = len(expected) == len(shape) and all(
            want is None or want == got
            for want, got in zip(expected, shape, strict=True)
        )
        if not compatible:
            raise ValueError(
                f"{what} images have shape {tuple(shape)} but the model expects "
                f"{expected}; build the model with input_shape={tuple(shape)} or "
                "resize the images (image_size=...)"
            )

    # ------------------------------------------------------------------- fit
    @locks_run_dir(lambda t: t.run_dir if _is_chief(t.strategy) else None)
    def fit(
        self,
        data: ImageDataset,
        *,
        epochs: int = 25,
        batch_size: int = 64,
        augment: Any = None,
    ) -> History:
        """Train on ``data.train``, validating on ``data.validation`` each epoch.

        Resumes from ``run_dir`` when it holds a checkpoint of the same run (see
        the class documentation), so running the same code again after a crash
        finishes the run.

        Args:
            data: The dataset; ``data.test`` is not used.
            epochs: Total number of epochs of the run (also when resuming).
            batch_size: Images per step (the global batch under a strategy).
            augment: A :class:`kerasimgcls.Augmentation` for the training batches,
                applied from ``(seed, epoch, batch)`` so a resumed run repeats it.

        Returns:
            The :class:`History`, one row per epoch.

        Raises:
            TypeError: If ``data`` is not an :class:`ImageDataset`.
            ValueError: If the model's output size or input shape does not match
                the data, a split is empty, an argument is out of range, or the
                checkpoint in ``run_dir`` belongs to a different configuration.
            FileExistsError: If ``run_dir`` is not empty and holds no checkpoint
                (and ``overwrite`` is false).
            PermissionError: If ``run_dir`` cannot be written.
            TrainingDivergedError: If the loss becomes NaN or infinite; the last
                good checkpoint is kept.
        """
        data = self._check_data(data)
        epochs = check_positive_int(epochs, "epochs")
        batch_size = check_positive_int(batch_size, "batch_size")
        chief = _is_chief(self.strategy)
        writes = self.run_dir is not None and chief
        resume = False
        if self.run_dir is not None:
            if writes:
                resume = prepare_run_dir(self.run_dir, overwrite=self.overwrite)
            else:
                resume = (self.run_dir / CHECKPOINT).is_file()
        self._class_names = data.class_names
        seed_everything(self.seed, deterministic=self.deterministic)
        steps = -(-len(data.train) // batch_size)
        self._steps_per_epoch = steps
        self._fit_config = self._configuration(data, epochs, batch_size, augment, steps)
        class_weight = self._resolve_class_weight(data)
        self._compile(total_steps=epochs * steps, steps_per_epoch=steps)

        history = History()
        early = self._initial_early_state(data)
        start = 0
        if resume:
            assert self.run_dir is not None
            start, history, early = self._restore(self.run_dir / CHECKPOINT)
        self.history = history
        if writes:
            self._write_run_json(data, status="running", resumed_at=start)
        recorder = _RunRecorder(self, history, early)
        callbacks: list[keras.callbacks.Callback] = [recorder, *self.callbacks]
        if self.precise_batch_norm:
            # First, so each validation already sees the re-estimated statistics.
            callbacks.insert(0, self._precise_callback(data))
        finished = start >= epochs or early.get("stopped_epoch") is not None
        if not finished:
            train, _ = self._train_dataset(data, batch_size, start, epochs, augment)
            validation = (
                None
                if data.validation is None
                else to_tf_dataset(
                    data.validation,
                    num_classes=data.num_classes,
                    batch_size=batch_size,
                    input_scaling=self.scaling.scaling,
                )
            )
            prebuild(self.model, self.strategy, train)
            with multi_worker_fixes(self.strategy), self._mark_interrupted(data):
                self.model.fit(
                    train,
                    epochs=epochs,
                    initial_epoch=start,
                    steps_per_epoch=steps,
                    validation_data=validation,
                    callbacks=callbacks,
                    class_weight=class_weight,
                    shuffle=False,  # the order comes from (seed, epoch)
                    verbose=self.verbose,
                )
        if recorder.diverged is not None:
            self._fail_diverged(data, recorder.diverged, history)
        self._final = {"kept_epoch": self._keep_weights(history, early)}
        if self.precise_batch_norm:
            self._final["precise_batch_norm"] = self._run_precise_batch_norm(data)
        self._final["inference_check"] = self._check_inference(data, history)
        if writes:
            self._write_outputs(data, history)
        return history

    def _precise_callback(self, data: ImageDataset) -> PreciseBatchNorm:
        return PreciseBatchNorm(
            data.train.images, input_scaling=self.scaling.scaling, seed=self.seed
        )

    def _run_precise_batch_norm(self, data: ImageDataset) -> dict[str, Any]:
        # Also for the restored best weights and for a finished run reloaded
        # from its checkpoint; idempotent when the last validation just did it.
        with self._scope():
            return precise_batch_norm(
                self.model,
                data.train.images,
                input_scaling=self.scaling.scaling,
                seed=self.seed,
            )

    def _keep_weights(
        self, history: History, early: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Restore the best epoch's weights if asked; say which epoch was kept."""
        if not len(history):
            return None
        best = early.get("best_epoch")
        restore = self.early_stopping_patience is not None or self.restore_best_weights
        if restore and self._best_weights is not None and best is not None:
            restore_variables(self.model.variables, self._best_weights, "model")
            return {
                "epoch": int(best),
                "why": f"lowest {early['monitor']}",
                early["monitor"]: early.get("best"),
            }
        return {"epoch": int(history.rows[-1]["epoch"]), "why": "last epoch"}

    def _check_inference(
        self, data: ImageDataset, history: History
    ) -> dict[str, Any] | None:
        """Compare accuracy at inference on training images with what training saw.

        Cheap (at most 1,024 images, one forward pass). Training accuracy is
        measured with dropout and augmentation on, so inference is usually as good
        or better; far worse means the model does not run at inference as it
        learned (typically batch-norm statistics), and the user is told so.
        """
        kept = self._final.get("kept_epoch") or {}
        rows = [row for row in history.rows if row.get("epoch") == kept.get("epoch")]
        reported = rows[0].get("accuracy") if rows else None
        if reported is None:
            return None
        order = np.random.default_rng(self.seed).permutation(len(data.train))
        sample = np.sort(order[:1024])
        probabilities = predict_proba(
            self.model,
            data.train.images[sample],
            input_scaling=self.scaling.scaling,
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
                f"{float(reported):.1%} (epoch {kept.get('epoch')}): it does not "
                "run at inference as it learned. Usually the batch-norm moving "
                "statistics lag the weights (few steps per epoch for the "
                "momentum) or dropout before batch norm shifts the variance; use "
                "precise_batch_norm=True (--precise-batch-norm), a lower "
                "batch_norm_momentum, or more steps",
                stacklevel=3,
            )
        return check

    @contextlib.contextmanager
    def _mark_interrupted(self, data: ImageDataset) -> Iterator[None]:
        # Ctrl-C keeps the last checkpoint; run.json says the run can be resumed.
        try:
            yield
        except KeyboardInterrupt:
            if self.run_dir is not None and _is_chief(self.strategy):
                self._write_run_json(data, status="interrupted")
            raise

    def _train_dataset(
        self,
        data: ImageDataset,
        batch_size: int,
        start: int,
        epochs: int,
        augment: Any,
    ) -> tuple[Any, int]:
        kwargs: dict[str, Any] = {}
        if augment is not None:
            kwargs["augment"] = augment
        dataset, steps = epochs_dataset(
            data.train,
            num_classes=data.num_classes,
            batch_size=batch_size,
            initial_epoch=start,
            epochs=epochs,
            shuffle=True,
            seed=self.seed,
            input_scaling=self.scaling.scaling,
            **kwargs,
        )
        if self.strategy is not None:
            import tensorflow as tf

            options = tf.data.Options()
            options.experimental_distribute.auto_shard_policy = (
                tf.data.experimental.AutoShardPolicy.DATA
            )
            dataset = dataset.with_options(options)
        return dataset, steps

    def _resolve_class_weight(self, data: ImageDataset) -> dict[int, float] | None:
        if self.class_weight is None:
            return None
        counts = data.train.class_counts(data.num_classes)
        if self.class_weight == "balanced":
            from sklearn.utils.class_weight import compute_class_weight

            present = np.flatnonzero(counts)
            weights = compute_class_weight(
                "balanced", classes=present, y=data.train.labels
            )
            balanced = dict.fromkeys(range(data.num_classes), 0.0)
            balanced.update(
                {int(c): float(w) for c, w in zip(present, weights, strict=True)}
            )
            return balanced
        mapping: dict[int, float] = dict(self.class_weight)
        unknown = sorted(k for k in mapping if k >= data.num_classes)
        if unknown:
            raise ValueError(
                f"class_weight keys must be class indices in [0, {data.num_classes}); "
                f"received {unknown}"
            )
        return {index: mapping.get(index, 1.0) for index in range(data.num_classes)}

    def _make_optimizer(
        self, total_steps: int, steps_per_epoch: int
    ) -> keras.optimizers.Optimizer:
        spec = self._optimizer_spec
        if spec is None:
            base = keras.optimizers.Adam()
        elif isinstance(spec, str):
            base = keras.optimizers.get(spec)
        else:
            base = spec
        config = base.get_config()
        peak = self.learning_rate
        if peak is None:
            current = config.get("learning_rate")
            peak = float(current) if isinstance(current, numbers.Real) else None
        warmup_steps = round(self.warmup_epochs * steps_per_epoch)
        rate: Any
        if isinstance(self.schedule, keras.optimizers.schedules.LearningRateSchedule):
            rate = self.schedule
        elif self.schedule in (None, "constant") and not warmup_steps:
            rate = peak
        else:
            if peak is None:
                raise ValueError(
                    "a schedule needs a peak learning rate; pass learning_rate="
                )
            rate = make_schedule(
                self.schedule or "constant",
                peak,
                total_steps=total_steps,
                warmup_steps=warmup_steps,
            )
        if rate is not None:
            config["learning_rate"] = rate
        optimizer: keras.optimizers.Optimizer = type(base).from_config(config)
        return optimizer

    def _compile(self, *, total_steps: int, steps_per_epoch: int) -> None:
        scope = self._scope()
        loss = self.loss
        if loss is None:
            loss = keras.losses.CategoricalCrossentropy(
                label_smoothing=self.label_smoothing
            )
        self._compiled = True
        with scope:
            self.model.compile(
                optimizer=self._make_optimizer(total_steps, steps_per_epoch),
                loss=loss,
                metrics=list(self.metrics),
                steps_per_execution=self.steps_per_execution,
            )

    def _current_learning_rate(self) -> float:
        optimizer = self.model.optimizer
        rate = optimizer._learning_rate
        if isinstance(rate, keras.optimizers.schedules.LearningRateSchedule):
            # The rate used by the epoch's last step.
            step = max(int(optimizer.iterations.numpy()) - 1, 0)
            return float(keras.ops.convert_to_numpy(rate(step)))
        return float(keras.ops.convert_to_numpy(optimizer.learning_rate))

    # ---------------------------------------------------------- checkpointing
    def _initial_early_state(self, data: ImageDataset) -> dict[str, Any]:
        monitor = "val_loss" if data.validation is not None else "loss"
        self._best_weights = None
        return {
            "patience": self.early_stopping_patience,
            "monitor": monitor,
            "best": None,
            "best_epoch": None,
            "wait": 0,
            "stopped_epoch": None,
        }

    def _configuration(
        self,
        data: ImageDataset,
        epochs: int,
        batch_size: int,
        augment: Any,
        steps: int,
    ) -> dict[str, Any]:
        optimizer = self._optimizer_spec
        return {
            "model": self.model.name,
            "model_variables": _variables_signature(self.model),
            "dataset_fingerprint": data.fingerprint,
            "seed": self.seed,
            "deterministic": self.deterministic,
            "epochs": epochs,
            "batch_size": batch_size,
            "steps_per_epoch": steps,
            "optimizer": _describe(optimizer) if optimizer is not None else "adam",
            "learning_rate": self.learning_rate,
            "schedule": _describe(self.schedule),
            "warmup_epochs": self.warmup_epochs,
            "loss": _describe(self.loss) if self.loss is not None else None,
            "label_smoothing": self.label_smoothing,
            "metrics": [_describe(metric) for metric in self.metrics],
            "early_stopping_patience": self.early_stopping_patience,
            "class_weight": _describe(self.class_weight),
            "augment": _describe(augment),
            "steps_per_execution": self.steps_per_execution,
            "precision": self.precision,
            "fused_batch_norm": self.fused_batch_norm,
            "restore_best_weights": self.restore_best_weights,
            "precise_batch_norm": self.precise_batch_norm,
            "input_scaling": self.scaling.scaling,
        }

    def _restore(self, path: Path) -> tuple[int, History, dict[str, Any]]:
        state, groups = load_checkpoint(path)
        saved = state.get("config", {})
        # Names of unnamed models depend on what the process built before.
        ignored = {"steps_per_execution", "model"}
        differences = [
            f"{key}: checkpoint {saved.get(key)!r}, now {value!r}"
            for key, value in self._fit_config.items()
            if key not in ignored and saved.get(key) != value
        ]
        if differences:
            raise ValueError(
                f"run_dir {str(path.parent.parent)!r} holds a checkpoint of a "
                "different run; " + "; ".join(differences) + ". Use a new run_dir, "
                "or overwrite=True (--overwrite) to start again"
            )
        optimizer = self.model.optimizer
        scope = self._scope()
        with scope:
            if not optimizer.built:
                optimizer.build(self.model.trainable_variables)
        restore_variables(self.model.variables, groups.get("model", []), "model")
        restore_variables(optimizer.variables, groups.get("optimizer", []), "optimizer")
        self._best_weights = groups.get("best") or None
        epoch = int(state["epoch"])
        logger.info("resuming %s after epoch %d", path.parent.parent, epoch)
        return epoch, History(state["history"]), dict(state["early_stopping"])

    def _save_epoch(self, epoch: int, history: History, early: dict[str, Any]) -> None:
        if self.run_dir is None or not _is_chief(self.strategy):
            return
        groups: dict[str, Sequence[NDArray[Any]]] = {
            "model": snapshot(self.model.variables),
            "optimizer": snapshot(self.model.optimizer.variables),
        }
        if self._best_weights is not None:
            groups["best"] = self._best_weights
        state = {
            "epoch": epoch,
            "history": history.rows,
            "early_stopping": early,
            "config": self._fit_config,
            "saved_at": utc_now(),
        }
        # Checkpoint first: the history files are derived from it on resume.
        save_checkpoint(self.run_dir / CHECKPOINT, state=state, groups=groups)
        history.to_csv(self.run_dir / "history.csv")
        history.to_json(self.run_dir / "history.json")

    # ---------------------------------------------------------------- outputs
    def _write_run_json(
        self,
        data: ImageDataset,
        *,
        status: str,
        resumed_at: int | None = None,
        error: str | None = None,
    ) -> None:
        assert self.run_dir is not None
        info = self._run_info
        if not info or info.get("config") != self._fit_config:
            previous = self._read_previous_run_json()
            data_section: dict[str, Any] = {
                "name": data.name,
                "fingerprint": data.fingerprint,
                "input_shape": list(data.input_shape),
                "num_classes": data.num_classes,
                "sizes": {name: len(split) for name, split in data.splits().items()},
            }
            data_section.update(dict(self.metadata.get("data", {})))
            info = {
                "format": "kerasimgcls-run/1",
                "status": status,
                "config": self._fit_config,
                "data": data_section,
                "class_names": list(data.class_names),
                "input_scaling": {
                    "scaling": self.scaling.scaling,
                    "reason": self.scaling.reason,
                },
                "model": {
                    "name": self.model.name,
                    "parameters": int(self.model.count_params()),
                    "trainable_parameters": int(
                        sum(int(np.prod(v.shape)) for v in self.model.trainable_weights)
                    ),
                    "non_trainable_parameters": int(
                        sum(
                            int(np.prod(v.shape))
                            for v in self.model.non_trainable_weights
                        )
                    ),
                },
                **{k: v for k, v in self.metadata.items() if k != "data"},
                **environment(),
                "strategy": None
                if self.strategy is None
                else {
                    "type": type(self.strategy).__name__,
                    "replicas": int(self.strategy.num_replicas_in_sync),
                },
                "started_at": previous.get("started_at", utc_now()),
                "resumes": list(previous.get("resumes", [])),
                "finished_at": None,
            }
            if resumed_at:
                info["resumes"].append({"epoch": resumed_at, "at": utc_now()})
            self._run_info = info
        info["status"] = status
        if error is not None:
            info["error"] = error
        if status != "running":
            info["finished_at"] = utc_now()
        write_json_atomic(self.run_dir / "run.json", info)

    def _read_previous_run_json(self) -> dict[str, Any]:
        assert self.run_dir is not None
        path = self.run_dir / "run.json"
        if not path.is_file() or self.overwrite:
            return {}
        try:
            previous = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return previous if isinstance(previous, dict) else {}

    def _write_outputs(self, data: ImageDataset, history: History) -> None:
        assert self.run_dir is not None
        history.to_csv(self.run_dir / "history.csv")
        history.to_json(self.run_dir / "history.json")
        if len(history):
            history.plot(
                self.run_dir / "curves.png", title=f"{self.model.name} on {data.name}"
            )
        self.save(self.run_dir / "model.keras")
        self._run_info.setdefault("final", {})
        self._run_info["final"] = {
            "epochs_completed": len(history),
            "stopped_early_at_epoch": (self._restore_info_early()),
            "weights_sha256": _weights_digest(self.model),
            "last_epoch": history.rows[-1] if len(history) else None,
            **self._final,
        }
        self._write_run_json(data, status="finished")

    def _restore_info_early(self) -> int | None:
        if self.run_dir is None:
            return None
        path = self.run_dir / CHECKPOINT
        if not path.is_file():
            return None
        state, _ = load_checkpoint(path)
        stopped = state.get("early_stopping", {}).get("stopped_epoch")
        return None if stopped is None else int(stopped)

    def _fail_diverged(
        self, data: ImageDataset, where: tuple[int, int], history: History
    ) -> None:
        epoch, step = where
        kept = (
            f"; the last good checkpoint (epoch {len(history)}) is kept in "
            f"{str(self.run_dir / CHECKPOINT)!r}"
            if self.run_dir is not None and len(history)
            else ""
        )
        message = (
            f"the training loss became NaN or infinite at epoch {epoch}, step {step}"
            f"{kept}; lower the learning rate or check the data"
        )
        if self.run_dir is not None and _is_chief(self.strategy):
            self._write_run_json(data, status="diverged", error=message)
        raise TrainingDivergedError(message)

    # ------------------------------------------------------ evaluate, predict
    def evaluate(
        self,
        split: Split,
        *,
        name: str = "test",
        batch_size: int = 256,
        tta: str | None = None,
    ) -> dict[str, float]:
        """Return the loss and metrics on ``split``; write them to ``metrics.json``.

        ``metrics.json`` in ``run_dir`` maps each evaluated split's ``name`` to its
        scores and size, so evaluating the validation and test splits keeps both.

        Args:
            split: The split to score, such as ``data.test``.
            name: The split's name in ``metrics.json`` (``"{name}_tta_flip"`` with
                ``tta="flip"``).
            batch_size: Images per forward pass.
            tta: ``None``, or ``"flip"`` to score the mean prediction of each image
                and its mirror image (see :func:`kerasimgcls.predict_proba`); then
                the scores are ``accuracy`` and the training ``loss`` only.

        Returns:
            ``{"loss": ..., "accuracy": ..., ...}`` as floats.

        Raises:
            TypeError: If ``split`` is not a :class:`Split`.
            ValueError: If ``split`` is empty or does not match the model.
        """
        if not isinstance(split, Split):
            raise TypeError(
                "split must be a kerasimgcls Split such as data.test; received "
                f"{type(split).__name__}"
            )
        if len(split) == 0:
            raise ValueError(f"the {name} split is empty: there is nothing to evaluate")
        batch_size = check_positive_int(batch_size, "batch_size")
        self._check_image_shape(split.image_shape, "split")
        num_classes = int(self.model.output_shape[-1])
        if not self._compiled:
            # Score with this trainer's loss and metrics, not a previous compile's.
            self._compile(total_steps=1, steps_per_epoch=1)
        if tta is not None:
            result = self._evaluate_tta(split, tta, batch_size)
            name = f"{name}_tta_{tta}"
        else:
            dataset = to_tf_dataset(
                split,
                num_classes=num_classes,
                batch_size=batch_size,
                input_scaling=self.scaling.scaling,
            )
            with multi_worker_fixes(self.strategy):
                scores = self.model.evaluate(dataset, verbose=0, return_dict=True)
            result = {str(key): float(value) for key, value in scores.items()}
        if self.run_dir is not None and _is_chief(self.strategy):
            write_metrics(self.run_dir, name, result, len(split))
        return result

    def _evaluate_tta(
        self, split: Split, tta: str, batch_size: int
    ) -> dict[str, float]:
        probabilities = predict_proba(
            self.model,
            split.images,
            batch_size=batch_size,
            tta=tta,
            input_scaling=self.scaling.scaling,
        )
        labels = np.asarray(split.labels)
        targets = keras.ops.one_hot(labels, probabilities.shape[-1])
        # evaluate() compiled the model: its loss is this trainer's.
        value = keras.losses.get(self.model.loss)(targets, probabilities)
        return {
            "accuracy": float(np.mean(np.argmax(probabilities, axis=-1) == labels)),
            "loss": float(keras.ops.convert_to_numpy(keras.ops.mean(value))),
        }

    def predict(
        self, images: ArrayLike, *, batch_size: int = 256
    ) -> NDArray[np.float32]:
        """Return class probabilities, shape ``(n, num_classes)``, for uint8 images.

        Raises:
            TypeError: If the images are not uint8.
            ValueError: If their shape does not match the model's input.
        """
        return predict_proba(
            self.model,
            images,
            batch_size=batch_size,
            input_scaling=self.scaling.scaling,
        )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save the exported model (uint8 input, class names inside) atomically.

        Raises:
            RuntimeError: If the class names are unknown (call :meth:`fit` first).
        """
        if self._class_names is None:
            raise RuntimeError("call fit() before save(): the class names are unknown")
        from kerasimgcls._io import atomic_path

        exported = export_model(
            self.model, self._class_names, input_scaling=self.scaling.scaling
        )
        with atomic_path(path) as tmp:
            exported.save(tmp)
        return Path(path)


def _check_model_precision(model: keras.Model, precision: str) -> None:
    """Refuse a ready model built under another dtype policy than ``precision``."""
    compute = sorted({layer.compute_dtype for layer in model.layers if layer.weights})
    if ("bfloat16" in compute) != (precision == "mixed_bfloat16"):
        raise ValueError(
            f"precision={precision!r} but model {model.name!r} computes in "
            f"{compute}; pass a model factory so "
            "the Trainer builds it under the policy, or build it inside "
            "kerasimgcls.precision_scope(precision)"
        )
