"""``kerasimgcls train``: train a registered model on a dataset and write a run dir."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import inspect
import json
import logging
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from kerasimgcls.cli._common import (
    MODEL_HELP,
    add_data_arguments,
    check_data_arguments,
    check_extra,
    check_model_name,
    check_model_path,
    checked_number,
    choose_folder_size,
    data_spec_from_args,
    load_data,
    read_run_json,
)
from kerasimgcls.cli._run_name import default_run_dir
from kerasimgcls.data._steps import steps_per_epoch
from kerasimgcls.training._callback_args import checked_arguments
from kerasimgcls.training._config import (
    CALLBACK_FIELDS,
    SCHEDULE_NAMES,
    TrainingConfig,
    check_field,
    json_ready,
    parse_options,
)
from kerasimgcls.training._recipes import get_recipe, list_recipes

# The named schedules, as kerasimgcls.training.SCHEDULES (tests/test_cli_fast.py).
_SCHEDULES = SCHEDULE_NAMES
# Fields of TrainingConfig set by flags of their own kind (--model-arg, --augment)
# or not from the command line at all.
_NOT_FLAGS = ("model_kwargs", "optimizer_kwargs", "augment")


def add_parser(subparsers: Any) -> None:
    """Add the ``train`` sub-command."""
    parser = subparsers.add_parser(
        "train",
        help="train a model and write a run directory",
        description=(
            "Train a registered model on a dataset with a named recipe and write "
            "run.json, history.csv/json, curves.png, model.keras and metrics.json "
            "into --run-dir. Running the same command again resumes an interrupted "
            "run from its last completed epoch; a finished run is reused, not "
            "retrained. The default --run-dir is named after the dataset, model, "
            "seed and every setting given, so changing a setting starts a new run."
        ),
    )
    add_data_arguments(parser)
    training = parser.add_argument_group("training (override the recipe)")
    training.add_argument(
        "--recipe",
        help="named recipe (default: 'folder' for --data-dir alone, 'digits' for "
        f"--dataset digits, else 'reference'); one of {list_recipes()}",
    )
    add_config_arguments(training)
    training.add_argument(
        "--model-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="keyword argument of the model factory, over the recipe's; VALUE is "
        "JSON if it parses (e.g. dropout=0.1, head_dropout=[0,0.2]), else a string; "
        "repeat for more",
    )
    training.add_argument(
        "--augment",
        metavar="SPEC",
        help="augmentation of the training batches, e.g. 'flip,translate=4,cutout=8', "
        "'default' or 'none' (default: the recipe's)",
    )
    training.add_argument(
        "--init-from",
        metavar="RUN",
        help="start from the weights of another run (a run directory or .keras "
        "file): every layer whose name and weight shapes match is copied, e.g. to "
        "fine-tune on new data or to train longer",
    )
    _add_output_arguments(parser)
    parser.set_defaults(handler=run, check=check)


def check(args: argparse.Namespace) -> None:
    """The validation stage of ``train``: what can be checked without Keras.

    Raises:
        FileNotFoundError: If ``--data-dir`` or ``--init-from`` does not exist.
        ValueError: If the recipe, the model or an option cannot be used.
        ModuleNotFoundError: If ``--tensorboard`` is given without tensorboard.
    """
    check_data_arguments(args)
    recipe = get_recipe(args.recipe or _default_recipe(data_spec_from_args(args)))
    check_model_name(str(args.model or recipe.model))
    parse_model_args(args.model_arg)
    if args.augment is not None:
        parse_augment(args.augment, None)
    if args.init_from is not None:
        check_model_path(args.init_from, "--init-from")
    if args.run_dir is not None and Path(args.run_dir).is_file():
        raise NotADirectoryError(f"--run-dir must be a folder: {args.run_dir!r}")
    if args.tensorboard:
        check_extra(
            "tensorboard",
            "--tensorboard",
            "tensorboard (or 'kerasimgcls[tensorboard]')",
        )


def _flag_type(annotation: str) -> Any:
    for name, kind in (("bool", bool), ("int", int), ("float", float)):
        if annotation.split(" | ")[0] == name:
            return kind
    return str


def add_config_arguments(group: Any) -> None:
    """Add one flag per field of :class:`~kerasimgcls.TrainingConfig` with help.

    The flag is the field's name with dashes (or its metadata's ``flag``), its
    ``dest`` the field's name, its default ``None`` ("the recipe's"); a bool field
    becomes ``--name/--no-name``.
    """
    for config_field in dataclasses.fields(TrainingConfig):
        meta = config_field.metadata
        if "help" not in meta or config_field.name in _NOT_FLAGS:
            continue
        flag = meta.get("flag", "--" + config_field.name.replace("_", "-"))
        options: dict[str, Any] = {
            "dest": config_field.name,
            "default": None,
            "help": f"{meta['help']} (default: the recipe's)",
        }
        kind = _flag_type(str(config_field.type))
        if config_field.name in CALLBACK_FIELDS:
            options["type"] = _callback_flag(config_field.name)
            options["metavar"] = meta.get("metavar")
        elif kind is bool:
            options["action"] = argparse.BooleanOptionalAction
        else:
            options["type"] = _number_type(config_field.name, flag, kind)
            for key in ("choices", "metavar"):
                if key in meta:
                    options[key] = meta[key]
        if config_field.name == "model":
            options["help"] += f"; {MODEL_HELP}"
        group.add_argument(flag, **options)


def _number_type(name: str, flag: str, kind: Any) -> Any:
    """The argparse ``type`` of a field's flag; numbers are checked by the field's range."""
    if kind not in (int, float):
        return kind

    def check(value: Any, label: str) -> Any:
        return check_field(name, value, display=label)

    return checked_number(kind, flag, check)


def _callback_flag(name: str) -> Any:
    """The argparse ``type`` of a callback field's flag: parse, then check."""
    table = CALLBACK_FIELDS[name]

    def parse(text: str) -> dict[str, Any] | str:
        try:
            options = parse_options(text)
            if isinstance(options, dict):
                # In the flag's words: "--weight-averaging: decay must be ...".
                checked_arguments(table, options, name)
        except (TypeError, ValueError) as err:
            message = str(err).removeprefix(f"{name}: ").removeprefix(f"{name} ")
            raise argparse.ArgumentTypeError(message) from None
        return options

    parse.__name__ = name  # argparse names the type in its messages
    return parse


def config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`~kerasimgcls.TrainingConfig` fields given on the command line.

    A callback flag given as ``none`` turns the recipe's callback off.
    """
    names = [
        f.name for f in dataclasses.fields(TrainingConfig) if f.name not in _NOT_FLAGS
    ]
    overrides = {
        name: getattr(args, name)
        for name in names
        if getattr(args, name, None) is not None
    }
    for name in CALLBACK_FIELDS:
        if overrides.get(name) == "none":
            overrides[name] = None
    return overrides


def _add_output_arguments(parser: Any) -> None:
    output = parser.add_argument_group("output")
    output.add_argument(
        "--run-dir",
        help="run directory (default: runs/<dataset>-<model>-seed<seed>, followed "
        "by the settings given, e.g. runs/digits-cifar_cnn-seed0-epochs30)",
    )
    output.add_argument(
        "--tensorboard",
        action="store_true",
        help="write TensorBoard logs (losses, metrics and learning rate per epoch) "
        "to RUN_DIR/tensorboard; view them with `tensorboard --logdir RUN_DIR`",
    )
    output.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run in a non-empty --run-dir instead of resuming it",
    )
    output.add_argument(
        "--no-evaluate",
        action="store_true",
        help="skip scoring the test split into metrics.json at the end",
    )
    output.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bar, only the summary"
    )


def parse_augment(spec: str | None, recipe_augment: Any) -> Any:
    """Return the :class:`kerasimgcls.Augmentation` of ``--augment`` (or the recipe's).

    ``spec`` uses :meth:`kerasimgcls.Augmentation.from_string`:
    ``flip,translate=4,cutout=8``, ``default`` or ``none``.

    Raises:
        ValueError: If ``spec`` cannot be parsed.
    """
    from kerasimgcls.data import Augmentation

    if spec is not None:
        try:
            augmentation = Augmentation.from_string(spec)
        except (TypeError, ValueError) as err:
            raise ValueError(f"--augment: cannot parse {spec!r}: {err}") from err
    elif recipe_augment is None:
        return None
    else:
        augmentation = Augmentation(**dict(recipe_augment))
    return None if augmentation.is_identity else augmentation


def parse_model_args(specs: list[str]) -> dict[str, Any]:
    """Return the ``--model-arg KEY=VALUE`` options as keyword arguments.

    Raises:
        ValueError: If an option has no ``=`` or an empty key.
    """
    kwargs: dict[str, Any] = {}
    for spec in specs:
        key, sep, text = spec.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--model-arg: expected KEY=VALUE; received {spec!r}")
        try:
            value: Any = json.loads(text)
        except json.JSONDecodeError:
            value = text
        kwargs[key.strip()] = value
    return kwargs


def _check_model_args(model_name: str, kwargs: dict[str, Any]) -> None:
    """Refuse unknown model names and arguments before loading any data."""
    from kerasimgcls.models import get_model_factory, is_model, list_models

    if not is_model(model_name):
        raise ValueError(f"Unknown model {model_name!r}. Available: {list_models()}")
    accepted = inspect.signature(get_model_factory(model_name)).parameters
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError(
            f"--model-arg: {model_name} takes no argument {', '.join(unknown)}; it "
            f"takes {', '.join(sorted(accepted))}"
        )


def _check_backbone_weights(model_name: str, kwargs: dict[str, Any]) -> None:
    """A transfer model's weights must be at hand before any data loads."""
    from kerasimgcls.models.transfer import BACKBONES, check_backbone_weights

    if model_name not in BACKBONES:
        return
    try:
        check_backbone_weights(model_name, kwargs.get("weights", "imagenet"))
    except (FileNotFoundError, ValueError) as err:
        message = str(err).replace("pass weights=None", "pass --model-arg weights=null")
        raise type(err)(f"--model {model_name}: {message}") from err


def _data_dependent_kwargs(model_name: str, data: Any) -> dict[str, Any]:
    """Model arguments computed from the training images (fixed, seeded subset)."""
    from kerasimgcls.models import get_model_factory, is_model

    if not is_model(model_name) or (
        "whitening_images"
        not in inspect.signature(get_model_factory(model_name)).parameters
    ):
        return {}
    from kerasimgcls.models import whitening_sample

    # airbench's patch-whitening layer is computed once from training images;
    # a seeded subset keeps it cheap and the run reproducible.
    return {"whitening_images": whitening_sample(data.train.images)}


def _default_recipe(spec: dict[str, Any]) -> str:
    # A folder of one's own images gets the recipe whose settings follow its size;
    # the reference recipe's batch-norm momentum lets the 8x8 digits' validation
    # accuracy lag for most of a short run; the digits recipe does not.
    if spec.get("data_dir") and not spec.get("dataset"):
        return "folder"
    return "digits" if spec.get("dataset") == "digits" else "reference"


def _recipe_model_kwargs(recipe: Any, model_name: str) -> dict[str, Any]:
    """The recipe's model arguments that ``model_name``'s factory accepts."""
    from kerasimgcls.models import get_model_factory

    kwargs = dict(recipe.model_kwargs)
    if model_name == recipe.model:
        return kwargs
    accepted = inspect.signature(get_model_factory(model_name)).parameters
    return {key: value for key, value in kwargs.items() if key in accepted}


def training_config(
    args: argparse.Namespace, recipe: Any, data: Any, model_args: dict[str, Any]
) -> tuple[TrainingConfig, Any]:
    """The run's configuration: the recipe, fitted to the data, then the flags.

    Returns:
        The configuration and the recipe as fitted to the data.
    """
    overrides = config_overrides(args)
    model_name = overrides.pop("model", recipe.model)
    recipe = recipe.for_data(
        len(data.train), data.input_shape, batch_size=overrides.get("batch_size")
    )
    if "optimizer" in overrides:  # another optimizer: not the recipe's arguments
        overrides["optimizer_kwargs"] = {}
    augment = parse_augment(args.augment, recipe.augment)
    try:
        config = dataclasses.replace(
            TrainingConfig.from_dict(recipe.to_dict()),
            **overrides,
            model=model_name,
            model_kwargs={**_recipe_model_kwargs(recipe, model_name), **model_args},
            augment=None if augment is None else dataclasses.asdict(augment),
        )
    except (TypeError, ValueError) as err:  # in the CLI's words: --epochs, not epochs=
        message = re.sub(
            r"\b([a-z_]+)=",
            lambda m: "--" + m.group(1).replace("_", "-") + " ",
            str(err),
        )
        raise type(err)(message) from err
    return _without_validation(config, data, overrides), recipe


def _without_validation(
    config: TrainingConfig, data: Any, overrides: dict[str, Any]
) -> TrainingConfig:
    """Without a validation split, no epoch can be chosen by its validation loss."""
    if data.validation is not None:
        return config
    asked = [
        flag
        for flag, name in (
            ("--early-stopping", "early_stopping_patience"),
            ("--restore-best-weights", "restore_best_weights"),
        )
        if overrides.get(name)
    ]
    if asked:
        raise ValueError(
            f"{' and '.join(asked)} choose the epoch with the lowest validation "
            "loss, but there is no validation split (--validation-split 0): drop "
            f"{' and '.join(asked)}, or hold out images with --validation-split 0.1"
        )
    if config.early_stopping_patience or config.restore_best_weights:
        print(
            "no validation split: the recipe's early stopping and best-epoch "
            "weights are off; the last epoch's weights are kept"
        )
    return dataclasses.replace(
        config, early_stopping_patience=None, restore_best_weights=False
    )


def run(args: argparse.Namespace) -> int:
    """Train as the arguments say; print where the run went and its scores."""
    spec = data_spec_from_args(args)
    recipe = get_recipe(args.recipe or _default_recipe(spec))
    model_name = str(args.model or recipe.model)
    model_args = parse_model_args(args.model_arg)
    _check_model_args(model_name, model_args)
    _check_backbone_weights(model_name, {**recipe.model_kwargs, **model_args})
    init_from = _load_init_from(args.init_from)
    run_dir = Path(args.run_dir or default_run_dir(args, spec, model_name))
    spec = choose_folder_size(spec, model_name)
    data = load_data(spec)
    print(f"data: {data.summary()}")
    config, fitted = training_config(args, recipe, data, model_args)
    copied: list[str] = []
    trainer = _make_trainer(args, config, data, run_dir, init_from, copied)
    trainer.metadata.update(
        recipe=fitted.to_dict(),
        model_name=model_name,
        model_args=json_ready(model_args),
        data=spec,
    )
    state, finished = _run_state(args, run_dir)
    print(f"model {model_name}; {_recipe_words(recipe, config, data)}; {state}")
    with _silence_resume_log(finished):
        history = trainer.fit(data)
    if init_from is not None:
        print(
            f"initialised from {args.init_from}: {len(copied)} layers copied "
            f"({', '.join(copied)})"
        )
    _print_results(args, trainer, data, history)
    print(f"run directory: {run_dir}")
    return 0


def _recipe_words(recipe: Any, config: TrainingConfig, data: Any) -> str:
    text = f"recipe {recipe.name}"
    if recipe.derive_from_data:
        steps = steps_per_epoch(len(data.train), config.batch_size)
        momentum = config.model_kwargs.get("batch_norm_momentum")
        text += (
            f" (from {steps} steps per epoch: {config.epochs} epochs, batch-norm "
            f"momentum {momentum})"
        )
    return text


def _make_trainer(
    args: argparse.Namespace,
    config: TrainingConfig,
    data: Any,
    run_dir: Path,
    init_from: Any,
    copied: list[str],
) -> Any:
    from kerasimgcls.models import get_model
    from kerasimgcls.models._weights import copy_matching_weights
    from kerasimgcls.training import Trainer

    assert config.model is not None
    kwargs = {
        "input_shape": data.input_shape,
        "num_classes": data.num_classes,
        **dict(config.model_kwargs),
        **_data_dependent_kwargs(config.model, data),
    }

    def build() -> Any:
        model = get_model(str(config.model), **kwargs)
        if init_from is not None:
            copied[:] = copy_matching_weights(init_from, model)
            if not copied:
                raise ValueError(
                    f"--init-from: no layer of {init_from.name!r} matches the model "
                    f"{model.name!r} by name and weight shapes; use the same --model"
                )
        return model

    callbacks = []
    if args.tensorboard:
        import keras

        callbacks.append(
            keras.callbacks.TensorBoard(
                log_dir=str(run_dir / "tensorboard"), write_graph=False
            )
        )
    init = None
    if args.init_from is not None:
        init = {"path": str(Path(args.init_from).resolve()), "layers": copied}
    return Trainer(
        build,
        config=config,
        run_dir=run_dir,
        overwrite=args.overwrite,
        callbacks=callbacks,
        metadata={"command": ["kerasimgcls", *args.argv], "init_from": init},
        verbose=0 if args.quiet else (1 if sys.stdout.isatty() else 2),
    )


def _print_results(
    args: argparse.Namespace, trainer: Any, data: Any, history: Any
) -> None:
    if len(history):
        last = history.rows[-1]
        shown = {
            k: v
            for k, v in last.items()
            if k not in ("epoch", "epoch_time") and v is not None
        }
        values = ", ".join(f"{k} {_fmt(v)}" for k, v in shown.items())
        print(f"epoch {last['epoch']}: {values}")
        for line in _final_notes(trainer):
            print(line)
    if args.no_evaluate:
        return
    for name, split in (("validation", data.validation), ("test", data.test)):
        if split is None:
            continue
        scores = trainer.evaluate(split, name=name)
        print(f"{name}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in scores.items()))
        if trainer.config.tta:
            tta = trainer.config.tta
            scores = trainer.evaluate(split, name=name, tta=tta)
            print(
                f"{name} ({tta} TTA): "
                + ", ".join(f"{k} {_fmt(v)}" for k, v in scores.items())
            )


def _run_state(args: argparse.Namespace, run_dir: Path) -> tuple[str, bool]:
    """Return what training will do with ``run_dir`` and whether it is finished."""
    if args.overwrite or not (run_dir / "checkpoints" / "last.npz").is_file():
        return f"training a new run in {run_dir}", False
    try:
        status = read_run_json(run_dir).get("status")
    except (FileNotFoundError, ValueError):
        status = None
    if status == "finished":
        return (
            f"{run_dir} already finished, reusing it (--overwrite trains it again, "
            "--init-from starts a new run from its weights)",
            True,
        )
    return f"resuming the run in {run_dir}", False


@contextlib.contextmanager
def _silence_resume_log(finished: bool) -> Iterator[None]:
    """Keep the Trainer's "resuming ..." line off a reused run's output."""
    logger = logging.getLogger("kerasimgcls.training._checkpoint")
    level = logger.level
    if finished:
        logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        logger.setLevel(level)


def _load_init_from(path: str | None) -> Any:
    """The model of ``--init-from`` (its inner model, without the preprocessing)."""
    if path is None:
        return None
    from kerasimgcls.inference import load_model

    try:
        model = load_model(path)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as err:
        raise FileNotFoundError(
            f"--init-from: {path!r} is not a finished run (no model.keras): {err}"
        ) from err
    return model


def _final_notes(trainer: Any) -> list[str]:
    """What the run kept and checked, in words (from what run.json records)."""
    final = trainer.final
    notes = []
    kept = final.get("kept_epoch")
    averaging = final.get("weight_averaging")
    if averaging:
        notes.append(
            f"kept the average of the weights ({averaging['updates']} updates over "
            f"{averaging['steps']} steps, decay {_fmt(averaging['decay'])})"
        )
    elif kept and kept.get("why", "").startswith("lowest "):
        monitor = kept["why"].removeprefix("lowest ")
        notes.append(
            f"kept the weights of epoch {kept['epoch']} ({kept['why']} "
            f"{_fmt(kept.get(monitor))})"
        )
    precise = final.get("precise_batch_norm")
    if precise and precise.get("layers"):
        notes.append(
            f"batch-norm statistics of {len(precise['layers'])} layers re-estimated "
            f"at inference from {precise['num_images']} training images"
        )
    check = final.get("inference_check")
    if check:
        notes.append(
            f"accuracy at inference on {check['images']} training images "
            f"{_fmt(check['inference_accuracy'])} (training reported "
            f"{_fmt(check['training_accuracy'])})"
        )
    return notes


def _fmt(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(json_ready(value))
