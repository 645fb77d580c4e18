"""The Trainer: check, build, compile, ``model.fit(callbacks=[...])``, finish.

The work lives in callbacks, one module each (see ``_loop.run_callbacks``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeAlias

import keras
import numpy as np
from numpy.typing import ArrayLike, NDArray

from kerasimgcls._io import atomic_path
from kerasimgcls._validation import check_positive_int
from kerasimgcls.data import ImageDataset, Split, to_tf_dataset
from kerasimgcls.data._steps import steps_per_epoch
from kerasimgcls.inference._predict import predict_proba
from kerasimgcls.inference._scaling import ScalingDecision, resolve_input_scaling
from kerasimgcls.inference._wrap import export_model
from kerasimgcls.models.layers import saved_copy
from kerasimgcls.training._build import (
    build_model,
    compile_model,
    resolve_class_weight,
    scope_of,
    trainer_config,
    with_fit_arguments,
)
from kerasimgcls.training._checks import (
    check_callbacks,
    check_data,
    check_image_shape,
    check_optimizer,
    check_schedule,
    check_verbose,
)
from kerasimgcls.training._config import TrainingConfig
from kerasimgcls.training._context import Compilation, RunContext
from kerasimgcls.training._distribute import is_chief, multi_worker_fixes, prebuild
from kerasimgcls.training._divergence import DivergenceGuard, TrainingDivergedError
from kerasimgcls.training._finish import FINAL_KEYS, finish_run, scores_of
from kerasimgcls.training._history import History
from kerasimgcls.training._lock import locks_run_dir
from kerasimgcls.training._loop import RunCallbacks, fit_datasets, run_callbacks
from kerasimgcls.training._run_dir import RunDirectory
from kerasimgcls.training._run_info import describe_run
from kerasimgcls.training._seed import seed_everything

__all__ = ["Trainer", "TrainingDivergedError"]

ModelOrFactory: TypeAlias = "keras.Model | Callable[[], keras.Model]"


class Trainer:
    """Train a Keras classifier reproducibly, record the run and resume it exactly.

    Every setting is a field of one :class:`~kerasimgcls.TrainingConfig`: pass
    ``config=`` (a :class:`~kerasimgcls.Recipe` is one), keyword ``settings``
    (each overrides its field; ``None`` keeps it), or both. The defaults are the
    reference tutorial's: Adam, cross-entropy on one-hot labels, batch size 64.
    Images stay uint8 in memory and are fed as the model expects them
    (:doc:`/guide/input`).

    :meth:`fit` seeds everything, then runs ``model.fit`` with callbacks, one job
    each: precise batch norm, a divergence guard, a history recorder, early
    stopping, the user's ``callbacks``, and last the run checkpoint. After every
    epoch it saves the model, the optimizer, the history and the state of every
    callback with ``state_dict()``/``load_state_dict()`` (Keras' ``EarlyStopping``
    too). Running the same code again after a crash resumes and ends
    bit-identical to an uninterrupted run; a finished run is not trained again; a
    checkpoint of another configuration (model arguments included) is refused
    with the differences named. Under a ``strategy`` a ready model is cloned into
    its scope, ``batch_size`` is the global batch and only the chief writes
    ``run_dir``. See :doc:`/guide/training`.

    Args:
        model: A :class:`keras.Model`, or a callable with no arguments that builds
            one.
        config: The settings; default :class:`~kerasimgcls.TrainingConfig` ``()``.
        optimizer: A Keras optimizer name, or an optimizer instance (copied from
            its config).
        schedule: A named schedule (see :class:`kerasimgcls.training.WarmupSchedule`)
            or a Keras ``LearningRateSchedule``.
        loss: ``None`` for categorical cross-entropy on one-hot labels (with
            ``label_smoothing``), or any Keras loss taking one-hot labels.
        metrics: ``None`` for ``["accuracy"]``.
        run_dir: Directory for the run's files, or ``None`` to write nothing.
        overwrite: Replace the run files in a non-empty ``run_dir``.
        strategy: A :class:`tf.distribute.Strategy`, or ``None``.
        callbacks: Extra Keras callbacks; stateful ones are checkpointed.
        metadata: Extra entries for ``run.json``; a ``"data"`` mapping is merged
            into its data section.
        verbose: 0 silent, 1 Keras progress bar, 2 one line per epoch.
        **settings: Fields of :class:`~kerasimgcls.TrainingConfig`
            (``learning_rate``, ``seed``, ``early_stopping_patience``, ...).

    Raises:
        TypeError: If ``model`` is neither a Keras model nor a callable, a
            setting is unknown or has the wrong type.
        ValueError: If a setting is out of range, or options conflict (a
            ``LearningRateSchedule`` with ``learning_rate``, a custom ``loss``
            with ``label_smoothing``).

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
        config: TrainingConfig | None = None,
        optimizer: str | keras.optimizers.Optimizer | None = None,
        schedule: str | keras.optimizers.schedules.LearningRateSchedule | None = None,
        loss: str | keras.losses.Loss | None = None,
        metrics: Sequence[Any] | None = None,
        run_dir: str | os.PathLike[str] | None = None,
        overwrite: bool = False,
        strategy: Any = None,
        callbacks: Sequence[keras.callbacks.Callback] = (),
        metadata: Mapping[str, Any] | None = None,
        verbose: int = 1,
        **settings: Any,
    ) -> None:
        self._optimizer = check_optimizer(optimizer)
        self._schedule = check_schedule(schedule, settings.get("learning_rate"))
        self.config = trainer_config(
            config, settings, self._optimizer, self._schedule, loss
        )
        self.loss = loss
        self.metrics = list(metrics) if metrics is not None else ["accuracy"]
        self.run_dir = Path(run_dir) if run_dir is not None else None
        self.overwrite = bool(overwrite)
        self.strategy = strategy
        self.callbacks = check_callbacks(callbacks)
        self.metadata = dict(metadata or {})
        self.verbose = check_verbose(verbose)
        self.model: keras.Model = build_model(model, self.config, strategy)
        self.scaling: ScalingDecision = resolve_input_scaling(
            self.model,
            self.config.input_scaling,  # type: ignore[arg-type]
        )
        self._directory = RunDirectory(
            self.run_dir, writes=is_chief(strategy), overwrite=self.overwrite
        )
        self.history: History | None = None
        self._class_names: tuple[str, ...] | None = None
        # How the loader resized the training files (the saved model carries it).
        self._resize: dict[str, str] = {}
        self._final: dict[str, Any] = {}
        self._compiled = False

    def _context(self) -> RunContext:
        """What the helpers need of this run (after ``fit`` set the configuration)."""
        return RunContext(
            config=self.config,
            model=self.model,
            scaling=self.scaling,
            strategy=self.strategy,
            directory=self._directory,
            compilation=Compilation(
                self._optimizer, self._schedule, self.loss, tuple(self.metrics)
            ),
            callbacks=tuple(self.callbacks),
            metadata=self.metadata,
        )

    @property
    def final(self) -> dict[str, Any]:
        """What the last :meth:`fit` kept and checked (``run.json``'s ``final`` too).

        ``"kept_epoch"``: the epoch whose weights the model has and why;
        ``"precise_batch_norm"``: the re-estimated layers and the number of
        images; ``"inference_check"``: accuracy at inference on training images
        against the accuracy training reported.
        """
        return dict(self._final)

    # ------------------------------------------------------------------- fit
    @locks_run_dir(lambda t: t.run_dir if is_chief(t.strategy) else None)
    def fit(
        self,
        data: ImageDataset,
        *,
        epochs: int | None = None,
        batch_size: int | None = None,
        augment: Any = None,
    ) -> History:
        """Train on ``data.train``, validating on ``data.validation`` each epoch.

        Resumes from ``run_dir`` when it holds a checkpoint of the same run.

        Args:
            data: The dataset; ``data.test`` is not used.
            epochs: Total number of epochs of the run (also when resuming);
                ``None`` for the configuration's.
            batch_size: Images per step (the global batch under a strategy);
                ``None`` for the configuration's.
            augment: A :class:`kerasimgcls.Augmentation` for the training batches,
                applied from ``(seed, epoch, batch)`` so a resumed run repeats it;
                ``None`` for the configuration's.

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
        data = check_data(self.model, data)
        self.config = with_fit_arguments(self.config, epochs, batch_size, augment)
        resume = self._directory.prepare()
        self._class_names = data.class_names
        self._resize = dict(getattr(data, "resize", None) or {})
        seed_everything(self.config.seed, deterministic=self.config.deterministic)
        steps = steps_per_epoch(len(data.train), self.config.batch_size)
        context = self._context()
        self._compiled = compile_model(
            context, total_steps=self.config.epochs * steps, steps_per_epoch=steps
        )
        history = self.history = History()
        loop = run_callbacks(context, data, steps, history)
        start = 0
        if resume:
            with scope_of(self.strategy):
                start = loop.checkpoint.restore(self.model)
        info = describe_run(context, data, loop.checkpoint.config)
        self._directory.begin(info, resumed_at=start)
        if start < self.config.epochs and not loop.checkpoint.stopped:
            self._train(context, data, loop, start, steps)
        else:
            loop.checkpoint.load_callback_states()
            if loop.averaging is not None:  # as the end of fit() left it
                loop.averaging.apply_average(self.model)
        if loop.guard.diverged is not None:
            self._fail(loop.guard, history)
        return self._finish(context, data, history, loop)

    def _train(
        self,
        context: RunContext,
        data: ImageDataset,
        loop: RunCallbacks,
        start: int,
        steps: int,
    ) -> None:
        train, validation = fit_datasets(context, data, start)
        prebuild(self.model, self.strategy, train)
        try:
            with multi_worker_fixes(self.strategy):
                self.model.fit(
                    train,
                    epochs=self.config.epochs,
                    initial_epoch=start,
                    steps_per_epoch=steps,
                    validation_data=validation,
                    callbacks=loop.callbacks,
                    class_weight=resolve_class_weight(self.config.class_weight, data),
                    shuffle=False,  # the order comes from (seed, epoch)
                    verbose=self.verbose,
                )
        except KeyboardInterrupt:
            # Ctrl-C in a callback after the epoch was recorded: keep that epoch.
            loop.checkpoint.save_recorded_epoch()
            raise

    def _fail(self, guard: DivergenceGuard, history: History) -> None:
        error = guard.error(self._directory.checkpoint, len(history))
        self._directory.set_status("diverged", error=str(error))
        raise error

    def _finish(
        self,
        context: RunContext,
        data: ImageDataset,
        history: History,
        loop: RunCallbacks,
    ) -> History:
        final = finish_run(context, data, history, loop.early, loop.averaging)
        self._final = {key: final[key] for key in FINAL_KEYS if key in final}
        title = f"{self.model.name} on {data.name}"
        self._directory.finish(history, final, save_model=self.save, title=title)
        return history

    # ------------------------------------------------------ evaluate, predict
    def evaluate(
        self,
        split: Split,
        *,
        name: str = "test",
        batch_size: int = 256,
        tta: str | None = None,
    ) -> dict[str, float]:
        """Return the loss and metrics on ``split``; record them in ``metrics.json``.

        Args:
            split: The split to score, such as ``data.test``.
            name: The split's name in ``metrics.json`` (``"{name}_tta_{tta}"``
                with ``tta``).
            batch_size: Images per forward pass.
            tta: ``None``, or ``"flip"`` / ``"flip_translate"`` to score the
                test-time augmented predictions (see
                :func:`kerasimgcls.predict_tta`); then the scores are
                ``accuracy`` and the training ``loss`` only.

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
        check_image_shape(self.model, split.image_shape, "split")
        if not self._compiled:
            # Score with this trainer's loss and metrics, not a previous compile's.
            self._compiled = compile_model(
                self._context(), total_steps=1, steps_per_epoch=1
            )
        if tta is not None:
            probabilities = self.predict(split.images, batch_size=batch_size, tta=tta)
            result = scores_of(self.model, probabilities, split.labels)
            name = f"{name}_tta_{tta}"
        else:
            dataset = to_tf_dataset(
                split,
                num_classes=int(self.model.output_shape[-1]),
                batch_size=batch_size,
                input_scaling=self.scaling.scaling,
            )
            with multi_worker_fixes(self.strategy):
                scores = self.model.evaluate(dataset, verbose=0, return_dict=True)
            result = {str(key): float(value) for key, value in scores.items()}
        self._directory.write_metrics(name, result, len(split))
        return result

    def predict(
        self, images: ArrayLike, *, batch_size: int = 256, tta: str | None = None
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
            tta=tta,
            input_scaling=self.scaling.scaling,
        )

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Save the exported model (uint8 input, class names inside) atomically.

        Raises:
            RuntimeError: If the class names are unknown (call :meth:`fit` first).
        """
        if self._class_names is None:
            raise RuntimeError("call fit() before save(): the class names are unknown")
        # Only what inference needs: the optimizer and its schedule are training
        # state, kept in the checkpoints (see inference_copy).
        exported = export_model(
            saved_copy(self.model),
            self._class_names,
            input_scaling=self.scaling.scaling,
            **self._resize,
        )
        with atomic_path(path) as tmp:
            exported.save(tmp)
        return Path(path)
