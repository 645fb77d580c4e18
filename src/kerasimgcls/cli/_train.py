"""``kerasimgcls train``: train a registered model on a dataset and write a run dir."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
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
    data_spec_from_args,
    load_data,
    read_run_json,
)
from kerasimgcls.recipes import get_recipe, json_ready, list_recipes

# kerasimgcls.training.SCHEDULES, spelled out because importing the training
# package starts TensorFlow (tests/test_cli_fast.py checks that they agree).
_SCHEDULES = ("constant", "cosine", "one_cycle", "triangle")


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
    training.add_argument(
        "--model", help=f"registered model name (default: the recipe's); {MODEL_HELP}"
    )
    training.add_argument(
        "--model-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="keyword argument of the model factory, over the recipe's; VALUE is "
        "JSON if it parses (e.g. dropout=0.1, head_dropout=[0,0.2]), else a string; "
        "repeat for more",
    )
    training.add_argument("--epochs", type=int, help="number of epochs")
    training.add_argument("--batch-size", type=int, help="images per step")
    training.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    training.add_argument("--optimizer", help="Keras optimizer name, e.g. adam, sgd")
    training.add_argument("--learning-rate", type=float, help="peak learning rate")
    training.add_argument(
        "--schedule", choices=_SCHEDULES, help="learning-rate schedule"
    )
    training.add_argument("--warmup-epochs", type=float, help="epochs of warmup")
    training.add_argument("--label-smoothing", type=float, help="label smoothing")
    training.add_argument(
        "--augment",
        metavar="SPEC",
        help="augmentation of the training batches, e.g. 'flip,translate=4,cutout=8', "
        "'default' or 'none' (default: the recipe's)",
    )
    training.add_argument(
        "--early-stopping", type=int, metavar="PATIENCE", help="early-stopping patience"
    )
    training.add_argument(
        "--class-weight", choices=("balanced",), help="weight classes by frequency"
    )
    training.add_argument(
        "--steps-per-execution", type=int, help="training steps per compiled call"
    )
    training.add_argument(
        "--precision",
        choices=("float32", "mixed_bfloat16"),
        help="compute precision (default: the recipe's); mixed_bfloat16 is faster "
        "on CPUs with AVX512-BF16 or AMX, slower on others",
    )
    training.add_argument(
        "--fused-batch-norm",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="train batch norm with TensorFlow's fused kernel: same results up to "
        "round-off, faster on a CPU (default: the recipe's)",
    )
    training.add_argument(
        "--precise-batch-norm",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="re-estimate the batch-norm statistics at inference (dropout off) "
        "from training images before each validation and at the end (default: "
        "the recipe's)",
    )
    training.add_argument(
        "--restore-best-weights",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="keep the weights of the epoch with the lowest validation loss "
        "(default: the recipe's)",
    )
    training.add_argument(
        "--no-deterministic",
        action="store_true",
        help="skip TensorFlow op determinism (faster on some hardware)",
    )
    training.add_argument(
        "--init-from",
        metavar="RUN",
        help="start from the weights of another run (a run directory or .keras "
        "file): every layer whose name and weight shapes match is copied, e.g. to "
        "fine-tune on new data or to train longer",
    )
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
        "--tta",
        choices=("flip",),
        help="also score the splits at the end with test-time augmentation "
        "(flip: average each image's prediction with its mirror image's)",
    )
    output.add_argument(
        "-q", "--quiet", action="store_true", help="no progress bar, only the summary"
    )
    parser.set_defaults(handler=run)


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
    from kerasimgcls.models import _REGISTRY, list_models

    factory = _REGISTRY.get(model_name)
    if factory is None:
        raise ValueError(f"Unknown model {model_name!r}. Available: {list_models()}")
    accepted = inspect.signature(factory).parameters
    unknown = sorted(set(kwargs) - set(accepted))
    if unknown:
        raise ValueError(
            f"--model-arg: {model_name} takes no argument {', '.join(unknown)}; it "
            f"takes {', '.join(sorted(accepted))}"
        )


def _data_dependent_kwargs(model_name: str, data: Any) -> dict[str, Any]:
    """Model arguments computed from the training images (fixed, seeded subset)."""
    from kerasimgcls.models import _REGISTRY

    factory = _REGISTRY.get(model_name)  # run() has refused unknown names
    if (
        factory is None
        or "whitening_images" not in inspect.signature(factory).parameters
    ):
        return {}
    import numpy as np

    # airbench's patch-whitening layer is computed once from training images;
    # a seeded subset keeps it cheap and the run reproducible.
    images = data.train.images
    count = min(len(images), 5000)
    order = np.random.default_rng(0).permutation(len(images))[:count]
    return {"whitening_images": images[np.sort(order)]}


def _default_recipe(spec: dict[str, Any]) -> str:
    # A folder of one's own images gets the recipe whose settings follow its size;
    # the reference recipe's batch-norm momentum lets the 8x8 digits' validation
    # accuracy lag for most of a short run; the digits recipe does not.
    if spec.get("data_dir") and not spec.get("dataset"):
        return "folder"
    return "digits" if spec.get("dataset") == "digits" else "reference"


def _recipe_model_kwargs(recipe: Any, model_name: str) -> dict[str, Any]:
    """The recipe's model arguments that ``model_name``'s factory accepts."""
    from kerasimgcls.models import _REGISTRY

    kwargs = dict(recipe.model_kwargs)
    if model_name == recipe.model:
        return kwargs
    accepted = inspect.signature(_REGISTRY[model_name]).parameters
    return {key: value for key, value in kwargs.items() if key in accepted}


def _describe_recipe(
    recipe: Any, derived: bool, steps: int, epochs: int, momentum: Any
) -> str:
    text = f"recipe {recipe.name}"
    if derived:
        text += (
            f" (from {steps} steps per epoch: {epochs} epochs, batch-norm "
            f"momentum {momentum})"
        )
    return text


def _pick(value: Any, default: Any) -> Any:
    return default if value is None else value


def run(args: argparse.Namespace) -> int:
    """Train as the arguments say; print where the run went and its scores."""
    from kerasimgcls.models import get_model
    from kerasimgcls.training import Trainer

    spec = data_spec_from_args(args)
    recipe = get_recipe(args.recipe or _default_recipe(spec))
    model_name = args.model or recipe.model
    model_args = parse_model_args(args.model_arg)
    _check_model_args(model_name, model_args)
    if args.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise ModuleNotFoundError(
            "--tensorboard needs the tensorboard package, which is not installed: "
            "pip install tensorboard (or 'kerasimgcls[tensorboard]')"
        )
    init_from = _load_init_from(args.init_from)
    run_dir = Path(args.run_dir or default_run_dir(args, spec, model_name))
    data = load_data(spec)
    print(f"data: {data.summary()}")
    derived = recipe.derive_from_data
    recipe = recipe.for_data(
        len(data.train), data.input_shape, batch_size=args.batch_size
    )
    augment = parse_augment(args.augment, recipe.augment)
    get_model_kwargs = {
        "input_shape": data.input_shape,
        "num_classes": data.num_classes,
        **_recipe_model_kwargs(recipe, model_name),
        **model_args,
        **_data_dependent_kwargs(model_name, data),
    }
    copied: list[str] = []

    def build() -> Any:
        model = get_model(model_name, **get_model_kwargs)
        if init_from is not None:
            copied[:] = copy_matching_weights(init_from, model)
        return model

    callbacks = []
    if args.tensorboard:
        import keras

        callbacks.append(
            keras.callbacks.TensorBoard(
                log_dir=str(run_dir / "tensorboard"), write_graph=False
            )
        )
    batch_size = _pick(args.batch_size, recipe.batch_size)
    epochs = _pick(args.epochs, recipe.epochs)
    trainer = Trainer(
        build,
        optimizer=args.optimizer or recipe.make_optimizer(),
        learning_rate=_pick(args.learning_rate, recipe.learning_rate),
        schedule=_pick(args.schedule, recipe.schedule),
        warmup_epochs=_pick(args.warmup_epochs, recipe.warmup_epochs),
        label_smoothing=_pick(args.label_smoothing, recipe.label_smoothing),
        seed=args.seed,
        deterministic=not args.no_deterministic,
        run_dir=run_dir,
        overwrite=args.overwrite,
        callbacks=callbacks,
        early_stopping_patience=_pick(
            args.early_stopping, recipe.early_stopping_patience
        ),
        class_weight=args.class_weight,
        steps_per_execution=_pick(args.steps_per_execution, recipe.steps_per_execution),
        precision=_pick(args.precision, recipe.precision),
        fused_batch_norm=_pick(args.fused_batch_norm, recipe.fused_batch_norm),
        precise_batch_norm=_pick(args.precise_batch_norm, recipe.precise_batch_norm),
        restore_best_weights=_pick(
            args.restore_best_weights, recipe.restore_best_weights
        ),
        metadata={
            "command": ["kerasimgcls", *args.argv],
            "recipe": recipe.to_dict(),
            "model_name": model_name,
            "model_args": json_ready(model_args),
            "data": spec,
            "init_from": None
            if args.init_from is None
            else {"path": str(Path(args.init_from).resolve()), "layers": copied},
        },
        verbose=0 if args.quiet else (1 if sys.stdout.isatty() else 2),
    )
    state, finished = _run_state(args, run_dir)
    steps = -(-len(data.train) // batch_size)
    momentum = get_model_kwargs.get("batch_norm_momentum")
    described = _describe_recipe(recipe, derived, steps, epochs, momentum)
    print(f"model {model_name}; {described}; {state}")
    with _silence_resume_log(finished):
        history = trainer.fit(
            data, epochs=epochs, batch_size=batch_size, augment=augment
        )
    if init_from is not None:
        print(
            f"initialised from {args.init_from}: {len(copied)} layers copied "
            f"({', '.join(copied)})"
        )
    _print_results(args, trainer, data, history)
    print(f"run directory: {run_dir}")
    return 0


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
        if args.tta:
            scores = trainer.evaluate(split, name=name, tta=args.tta)
            print(
                f"{name} ({args.tta} TTA): "
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
    logger = logging.getLogger("kerasimgcls.training._trainer")
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
    from kerasimgcls._export import load_model

    try:
        model = load_model(path)
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as err:
        raise FileNotFoundError(
            f"--init-from: {path!r} is not a finished run (no model.keras): {err}"
        ) from err
    return model


def copy_matching_weights(source: Any, target: Any) -> list[str]:
    """Copy the weights of each layer of ``source`` into the same-named ``target`` layer.

    ``source`` may be an exported model (its wrapped model is searched). Layers whose
    weight shapes differ (a new number of classes) keep their fresh weights.

    Returns:
        The names of the layers copied.

    Raises:
        ValueError: If no layer matches.
    """
    import keras

    layers = {
        layer.name: layer
        for model in (source, *(m for m in source.layers if isinstance(m, keras.Model)))
        for layer in model.layers
        if layer.weights and not isinstance(layer, keras.Model)
    }
    copied = []
    for layer in target.layers:
        match = layers.get(layer.name)
        if match is None or not layer.weights:
            continue
        shapes = [tuple(w.shape) for w in match.weights]
        if shapes != [tuple(w.shape) for w in layer.weights]:
            continue
        layer.set_weights(match.get_weights())
        copied.append(layer.name)
    if not copied:
        raise ValueError(
            f"--init-from: no layer of {source.name!r} matches the model "
            f"{target.name!r} by name and weight shapes; use the same --model"
        )
    return copied


def _final_notes(trainer: Any) -> list[str]:
    """What the run kept and checked, in words (from what run.json records)."""
    final = trainer.final
    notes = []
    kept = final.get("kept_epoch")
    if kept and kept.get("why") != "last epoch":
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


# Flags that shape the run, with the short label they get in the default run dir.
_RUN_NAME_FLAGS = (
    ("recipe", "recipe"),
    ("model_arg", ""),
    ("epochs", "epochs"),
    ("batch_size", "bs"),
    ("optimizer", ""),
    ("learning_rate", "lr"),
    ("schedule", ""),
    ("warmup_epochs", "warmup"),
    ("label_smoothing", "ls"),
    ("augment", "aug"),
    ("early_stopping", "patience"),
    ("class_weight", "cw"),
    ("precision", ""),
    ("fused_batch_norm", "fusedbn"),
    ("no_deterministic", "nondet"),
    ("init_from", "from"),
    ("skip_bad_images", "skipbad"),
    ("image_size", "size"),
    ("color_mode", ""),
    ("validation_split", "val"),
    ("split_seed", "split"),
)
_MAX_NAME = 96


def default_run_dir(
    args: argparse.Namespace, spec: dict[str, Any], model_name: str
) -> Path:
    """The default ``--run-dir``: ``runs/<data>-<model>-seed<seed>`` plus each setting given.

    Settings left at their defaults add nothing, so the plain command keeps its
    short name, the same command always finds its own run, and a changed setting
    gets a run directory of its own. A long tail is replaced by a hash of it.

    Example:
        >>> import argparse
        >>> args = argparse.Namespace(seed=0, epochs=30, learning_rate=0.01)
        >>> str(default_run_dir(args, {"dataset": "digits"}, "cifar_cnn"))
        'runs/digits-cifar_cnn-seed0-epochs30-lr0.01'
    """
    source = spec.get("dataset") or Path(spec.get("data_dir", "data")).name
    defaults = {"color_mode": "rgb", "validation_split": 0.1, "split_seed": 0}
    parts = []
    for dest, label in _RUN_NAME_FLAGS:
        value = getattr(args, dest, None)
        if value in (None, False, [], defaults.get(dest, ())):
            continue
        parts.append(label + _name_part(dest, value))
    tail = "-".join(parts)
    if len(tail) > _MAX_NAME:
        tail = "h" + hashlib.sha256(tail.encode()).hexdigest()[:10]
    name = f"{source}-{model_name}-seed{args.seed}" + (f"-{tail}" if tail else "")
    return Path("runs") / name


def _name_part(dest: str, value: Any) -> str:
    if value is True:
        return ""
    if dest == "init_from":
        value = Path(value).stem if Path(value).suffix == ".keras" else Path(value).name
    elif isinstance(value, list):
        value = (
            "x".join(str(v) for v in value) if dest == "image_size" else "_".join(value)
        )
    return re.sub(r"[^A-Za-z0-9.+_-]+", "_", str(value)).strip("_")
