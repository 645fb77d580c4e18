"""Two-phase fine-tuning inside one ``model.fit``: head first, then the backbone's top.

Phase 1 (epochs ``0 .. warmup_epochs - 1``): the backbone is frozen and only the
head learns, so the random head does not send large gradients through pretrained
features. Phase 2 (the remaining epochs): the last ``unfreeze_layers`` layers of
the backbone learn too, with the learning rate multiplied by
``learning_rate_factor``.

Why one fit with a callback, and how it stays correct in Keras 3:

- The train function is traced once with the variables trainable at that time.
  Setting ``layer.trainable`` later changes nothing until the function is rebuilt,
  so the callback calls ``model.make_train_function(force=True)`` whenever it
  changes the phase (``fit`` looks the function up on every step).
- The optimizer creates its slots for the variables it is built with, and refuses
  variables it does not know. Without a distribution strategy Keras builds it at
  the first traced step, from the variables trainable then; so the callback builds
  it in ``on_train_begin`` with the whole backbone trainable, before freezing it:
  the slots cover every variable either phase trains, and the optimizer's
  variables (which a checkpoint stores) are the same in both phases and in a
  fresh optimizer built by a resume from ``model.trainable_variables``.
- The phase is a function of the epoch, and the learning-rate factor a function of
  the optimizer's iteration count (a schedule wrapping the optimizer's own rate
  or schedule), so a run resumed at any epoch, also after the phase change,
  continues exactly as an uninterrupted one: nothing but the configuration has to
  be saved (:meth:`FineTune.state_dict` still returns it, so a resume can check it).
- Batch normalisation inside the backbone stays frozen in both phases (Keras runs
  a layer with ``trainable=False`` in inference mode): its moving statistics are
  the pretrained ones, and a small batch of new images cannot wreck them, the
  pitfall keras.io's transfer-learning guide warns about.
  :class:`~kerasimgcls.PreciseBatchNorm` leaves frozen layers alone, too.
"""

from __future__ import annotations

import logging
from typing import Any

import keras

from kerasimgcls.models._walk import walk_layers
from kerasimgcls.training._callback_args import (
    FINE_TUNE_ARGUMENTS,
    checked_arguments,
)

__all__ = ["FineTune"]

logger = logging.getLogger(__name__)


@keras.saving.register_keras_serializable(package="kerasimgcls")
class PhaseLearningRate(keras.optimizers.schedules.LearningRateSchedule):  # type: ignore[misc]
    """The optimizer's own rate (a float or a schedule), times ``factor`` from a step.

    Args:
        base: The learning rate before wrapping: a float or a schedule.
        boundary: First step (0-based optimizer iteration) of phase 2.
        factor: Multiplier of the rate from ``boundary`` on.
    """

    def __init__(self, base: Any, boundary: int, factor: float) -> None:
        self.base = base
        self.boundary = int(boundary)
        self.factor = float(factor)

    def __call__(self, step: Any) -> Any:
        """Return the rate at ``step``."""
        if isinstance(self.base, keras.optimizers.schedules.LearningRateSchedule):
            rate = self.base(step)
        else:
            rate = keras.ops.convert_to_tensor(self.base, "float32")
        scale = keras.ops.where(
            keras.ops.greater_equal(step, self.boundary), self.factor, 1.0
        )
        return rate * keras.ops.cast(scale, rate.dtype)

    def get_config(self) -> dict[str, Any]:
        """Return the config (the base schedule serialized)."""
        base = self.base
        if isinstance(base, keras.optimizers.schedules.LearningRateSchedule):
            base = keras.optimizers.schedules.serialize(base)
        return {"base": base, "boundary": self.boundary, "factor": self.factor}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> PhaseLearningRate:
        """Rebuild from :meth:`get_config`."""
        base = config["base"]
        if isinstance(base, dict):
            base = keras.optimizers.schedules.deserialize(base)
        return cls(base, config["boundary"], config["factor"])


class FineTune(keras.callbacks.Callback):  # type: ignore[misc]
    """Train the head on a frozen backbone, then the backbone's top at a lower rate.

    Pass it to :class:`~kerasimgcls.Trainer` (``callbacks=[FineTune()]``) or to
    ``model.fit`` of a model from :func:`~kerasimgcls.build_transfer_model` (or any
    model with a nested backbone model). The callback decides what is trainable:
    it builds the optimizer for the whole backbone when ``fit`` starts, then
    freezes it (see the module documentation for why). After ``fit`` the model
    keeps phase 2's trainability.

    Args:
        warmup_epochs: Epochs of phase 1 (backbone frozen); 0 starts in phase 2.
        unfreeze_layers: How many of the backbone's last layers (in
            ``backbone.layers`` order) learn in phase 2; ``None`` for all of them,
            0 to keep the backbone frozen throughout (a linear probe).
        learning_rate_factor: Multiplier of the learning rate in phase 2, in
            ``(0, 1]``; it applies on top of the Trainer's schedule.
        backbone: Name of the nested backbone layer of the model.
        train_batch_norm: Let the backbone's batch normalisation layers learn in
            phase 2 (their statistics then follow the new data's batches);
            default ``False``: they stay in inference mode.

    Raises:
        ValueError: If an argument is out of range.
        TypeError: If an argument has the wrong type.

    Example:
        >>> import numpy as np
        >>> from kerasimgcls import FineTune, build_transfer_model
        >>> model = build_transfer_model("mobilenet_v3_small", input_shape=(32, 32, 3),
        ...                              num_classes=2, weights=None, image_size=None)
        >>> model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
        >>> images = np.zeros((8, 32, 32, 3), "float32")
        >>> fine_tune = FineTune(warmup_epochs=1, unfreeze_layers=10)
        >>> _ = model.fit(images, np.zeros(8), epochs=2, verbose=0, callbacks=[fine_tune])
        >>> fine_tune.phase
        2
    """

    # The arguments get_config returns, in order.
    warmup_epochs: int
    unfreeze_layers: int | None
    learning_rate_factor: float
    backbone: str
    train_batch_norm: bool

    def __init__(
        self,
        *,
        warmup_epochs: int = 3,
        unfreeze_layers: int | None = 20,
        learning_rate_factor: float = 0.1,
        backbone: str = "backbone",
        train_batch_norm: bool = False,
    ) -> None:
        super().__init__()
        given = locals()  # the arguments, by the names of the table
        checked = checked_arguments(
            FINE_TUNE_ARGUMENTS, {key: given[key] for key in FINE_TUNE_ARGUMENTS}
        )
        self.__dict__.update(checked)
        self.phase = 0  # 0 until fit starts
        self._applied = 0  # the phase the model's trainability is set for

    # ------------------------------------------------------------------ config
    def get_config(self) -> dict[str, Any]:
        """Return the configuration, JSON-ready (for ``run.json``)."""
        return {name: getattr(self, name) for name in FINE_TUNE_ARGUMENTS}

    def state_dict(self) -> dict[str, Any]:
        """Return the state a checkpoint stores: the configuration and the phase.

        The phase follows from the epoch, so the state is only checked on resume.
        """
        return {"config": self.get_config(), "phase": self.phase}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`'s state, refusing another configuration.

        Raises:
            ValueError: If the state was saved with a different configuration.
        """
        saved = dict(state.get("config", {}))
        if saved != self.get_config():
            raise ValueError(
                f"the checkpoint's FineTune configuration {saved!r} differs from this "
                f"one {self.get_config()!r}; resume with the same settings"
            )
        # The phase follows from the epoch: the next on_epoch_begin applies it
        # to the model (a restored number must not make it skip that).
        self.phase = int(state.get("phase", 0))

    # ---------------------------------------------------------------- phases
    def phase_of(self, epoch: int) -> int:
        """Return the phase (1 or 2) of the 0-based ``epoch``."""
        return 1 if epoch < self.warmup_epochs else 2

    def _backbone_layer(self) -> keras.Layer:
        try:
            layer = self.model.get_layer(self.backbone)
        except ValueError:
            names = [layer.name for layer in self.model.layers]
            raise ValueError(
                f"FineTune: model {self.model.name!r} has no layer "
                f"backbone={self.backbone!r}; its layers: {names}"
            ) from None
        if not getattr(layer, "layers", None):
            raise ValueError(
                f"FineTune: layer {self.backbone!r} is not a nested model with layers"
            )
        return layer

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        """Check the optimizer knows every variable and wrap its learning rate.

        Raises:
            RuntimeError: If the optimizer was built before the backbone was
                trainable (it could not train the backbone in phase 2).
        """
        backbone = self._backbone_layer()
        # Every variable phase 2 may train must have its optimizer slots now.
        backbone.trainable = True
        optimizer = self.model.optimizer
        if not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        known = {id(v) for v in getattr(optimizer, "_trainable_variables", [])}
        unknown = [
            variable.path
            for variable in backbone.trainable_variables
            if known and id(variable) not in known
        ]
        if unknown:
            raise RuntimeError(
                f"FineTune: the optimizer was built without {len(unknown)} backbone "
                f"variables (such as {unknown[0]!r}), so phase 2 could not train "
                "them; build and compile the model with the backbone trainable "
                "(FineTune freezes it itself)"
            )
        steps = (self.params or {}).get("steps")
        if steps is None:
            raise ValueError(
                "FineTune needs the number of steps per epoch: pass steps_per_epoch "
                "to fit (the Trainer does)"
            )
        if not isinstance(optimizer._learning_rate, PhaseLearningRate):
            base = optimizer._learning_rate
            if not isinstance(base, keras.optimizers.schedules.LearningRateSchedule):
                base = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
            # Not through the ``learning_rate`` setter: it would untrack the rate
            # variable, and a checkpoint of the optimizer's variables written in
            # this fit would no longer fit a fresh optimizer on resume.
            optimizer._learning_rate = PhaseLearningRate(
                base, self.warmup_epochs * int(steps), self.learning_rate_factor
            )
        self.phase = self._applied = 0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        """Apply the phase of ``epoch`` (and retrace the train step) if it changed."""
        phase = self.phase_of(epoch)
        if phase == self._applied:
            return
        self._apply(phase)
        self.phase = self._applied = phase
        self.model.make_train_function(force=True)
        logger.info(
            "fine-tune phase %d from epoch %d: %d trainable backbone variables",
            phase,
            epoch + 1,
            len(self._backbone_layer().trainable_variables),
        )

    def _apply(self, phase: int) -> None:
        backbone = self._backbone_layer()
        layers = backbone.layers
        count = len(layers) if self.unfreeze_layers is None else self.unfreeze_layers
        open_from = len(layers) - count if phase == 2 else len(layers)
        backbone.trainable = open_from < len(layers)
        for index, layer in enumerate(layers):
            layer.trainable = index >= open_from
        if not self.train_batch_norm:
            for layer in walk_layers(backbone):
                if isinstance(layer, keras.layers.BatchNormalization):
                    layer.trainable = False
