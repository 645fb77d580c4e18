"""Export a trained classifier for serving without kerasimgcls: SavedModel, ONNX, LiteRT.

Every export takes raw uint8 images of shape ``(batch, height, width, channels)``
and returns class probabilities of shape ``(batch, num_classes)``, float32. How the
pixels are scaled is decided once, by the library's input contract
(``kerasimgcls._scaling.resolve_input_scaling``), and built into the export.
The conversion is Keras' own :meth:`keras.Model.export` (which uses tf2onnx for
ONNX and TensorFlow's converter for LiteRT).

The output is a folder: the model (``saved_model.pb`` and ``variables/``,
``model.onnx`` or ``model.tflite``), ``class_names.txt`` (one name per line, in
output order) and ``kerasimgcls-export.json`` (format, input shape and dtype,
class names, versions). ONNX files also carry the class names as the metadata
entry ``class_names`` (a JSON list).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

import keras
import numpy as np

from kerasimgcls._export import get_class_names, load_model
from kerasimgcls._scaling import resolve_input_scaling
from kerasimgcls._validation import check_choice
from kerasimgcls._version import __version__

__all__ = [
    "CLASS_NAMES_FILE",
    "MODEL_FILES",
    "SERVING_FORMATS",
    "export_for_serving",
]

SERVING_FORMATS: tuple[str, ...] = ("saved_model", "onnx", "litert")
#: The model file of each format inside the export folder.
MODEL_FILES = {
    "saved_model": "saved_model.pb",
    "onnx": "model.onnx",
    "litert": "model.tflite",
}
CLASS_NAMES_FILE = "class_names.txt"
_MARKER = "kerasimgcls-export.json"
_KERAS_FORMATS = {"saved_model": "tf_saved_model", "onnx": "onnx", "litert": "litert"}
# Packages each format needs beyond TensorFlow and Keras (the `export` extra).
_NEEDS = {"saved_model": (), "onnx": ("tf2onnx", "onnx"), "litert": ()}


def export_for_serving(
    model: keras.Model | str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    format: Literal["saved_model", "onnx", "litert"],
    class_names: Sequence[str] | None = None,
    input_scaling: Literal["auto", "raw", "unit"] = "auto",
    overwrite: bool = False,
) -> Path:
    """Write ``model`` to the folder ``output`` for serving, raw uint8 pixels in.

    Args:
        model: A Keras classifier ending in a softmax, or a run directory or
            ``.keras`` file (loaded with :func:`kerasimgcls.load_model`).
        output: The folder to write (created; must be absent or empty, or an
            earlier export with ``overwrite=True``).
        format: ``"saved_model"`` (TensorFlow SavedModel, signature
            ``serving_default``), ``"onnx"`` or ``"litert"`` (TensorFlow Lite).
        class_names: One name per output; ``None`` takes them from the model
            (the library's exported models carry them).
        input_scaling: How the model expects pixels: ``"auto"`` decides from
            the model (a run's ``model.keras`` scales its own input), ``"raw"``
            means 0-255, ``"unit"`` means ``[0, 1]``.
        overwrite: Replace an earlier export in ``output``.

    Returns:
        The folder written.

    Raises:
        ValueError: If ``format`` or ``input_scaling`` is unknown, or the class
            names are missing or do not match the model's outputs.
        FileExistsError: If ``output`` is not empty (and not an earlier export
            with ``overwrite=True``).
        ModuleNotFoundError: If the format needs a package of the ``export`` extra
            that is not installed (``pip install 'kerasimgcls[export]'``).

    Example:
        >>> import tempfile, kerasimgcls as kic
        >>> model = kic.build_cifar_cnn(input_shape=(8, 8, 1), num_classes=2)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     folder = kic.export_for_serving(
        ...         model, f"{tmp}/serve", format="saved_model",
        ...         class_names=["no", "yes"])
        ...     print((folder / "class_names.txt").read_text().split())
        ['no', 'yes']
    """
    check_choice(format, "format", SERVING_FORMATS)
    _require(format)
    target = Path(output)
    _check_output(target, overwrite=overwrite)
    if not isinstance(model, keras.Model):
        model = load_model(model)
    names = _class_names(model, class_names)
    decision = resolve_input_scaling(model, input_scaling)
    serving = _raw_pixel_model(model, decision.scaling)
    with _staging(target) as folder:
        _write_model(serving, folder, format, names)
        (folder / CLASS_NAMES_FILE).write_text(
            "".join(f"{name}\n" for name in names), encoding="utf-8"
        )
        description = {
            "format": format,
            "model_file": MODEL_FILES[format],
            "input": {"shape": [None, *serving.input_shape[1:]], "dtype": "uint8"},
            "output": "class probabilities, float32, one column per class name",
            "class_names": names,
            "input_scaling": {"scaling": decision.scaling, "reason": decision.reason},
            "versions": {"kerasimgcls": __version__, "keras": keras.__version__},
        }
        (folder / _MARKER).write_text(
            json.dumps(description, indent=2) + "\n", encoding="utf-8"
        )
    return target


def _require(format: str) -> None:
    missing = [
        name for name in _NEEDS[format] if importlib.util.find_spec(name) is None
    ]
    if missing:
        raise ModuleNotFoundError(
            f"format={format!r} needs {' and '.join(missing)}, which "
            f"{'is' if len(missing) == 1 else 'are'} not installed; install the "
            "export extra: pip install 'kerasimgcls[export]'"
        )


def _check_output(target: Path, *, overwrite: bool) -> None:
    if not target.exists():
        return
    if not target.is_dir():
        raise FileExistsError(f"output must be a folder; {str(target)!r} is a file")
    if not any(target.iterdir()):
        return
    if overwrite and (target / _MARKER).is_file():
        return
    raise FileExistsError(
        f"output {str(target)!r} is not empty; choose a new folder"
        + ("" if overwrite else ", or overwrite=True to replace an earlier export")
        + (
            " (overwrite replaces only a folder written by export_for_serving)"
            if overwrite
            else ""
        )
    )


def _class_names(model: keras.Model, given: Sequence[str] | None) -> list[str]:
    names = given if given is not None else get_class_names(model)
    if names is None:
        raise ValueError(
            "class_names is None and the model carries no class names; pass "
            "class_names=[...] (one per output)"
        )
    outputs = int(model.output_shape[-1])
    if len(names) != outputs:
        raise ValueError(
            f"class_names must have one name per model output ({outputs}); "
            f"received {len(names)} names"
        )
    return [str(name) for name in names]


def _raw_pixel_model(model: keras.Model, scaling: str) -> keras.Model:
    """``model`` behind a uint8 input that scales pixels as the model expects."""
    dtype = str(getattr(model.inputs[0], "dtype", "")) if model.inputs else ""
    output_dtype = str(getattr(model.outputs[0], "dtype", "float32"))
    if dtype == "uint8" and scaling == "raw" and output_dtype == "float32":
        return model
    inputs = keras.Input(tuple(model.input_shape[1:]), dtype="uint8", name="images")
    scale = 1.0 if scaling == "raw" else 1.0 / 255.0
    x = keras.layers.Rescaling(scale, name="pixel_scaling")(inputs)
    outputs = model(x)
    if output_dtype != "float32":
        outputs = keras.layers.Activation("linear", dtype="float32", name="float32")(
            outputs
        )
    return keras.Model(inputs, outputs, name=f"{model.name}_serving")


def _write_model(
    model: keras.Model, folder: Path, format: str, names: list[str]
) -> None:
    path = folder if format == "saved_model" else folder / MODEL_FILES[format]
    # Keras' ONNX export needs a model that has been called once.
    model(np.zeros((1, *model.input_shape[1:]), np.uint8), training=False)
    model.export(str(path), format=_KERAS_FORMATS[format], verbose=False)
    if format == "onnx":
        import onnx

        proto = onnx.load(str(path))
        entry = proto.metadata_props.add()
        entry.key, entry.value = "class_names", json.dumps(names)
        onnx.save(proto, str(path))


@contextlib.contextmanager
def _staging(target: Path) -> Iterator[Path]:
    """Yield a folder beside ``target``; move it into place when the block succeeds.

    ``target`` changes only at the end: a failed export leaves it as it was.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    old: Path | None = None
    try:
        yield folder
        if target.exists():
            old = target.with_name(f"{folder.name}.old")
            os.replace(target, old)
        os.replace(folder, target)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
