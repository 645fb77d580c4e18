"""Export a trained classifier for serving without kerasimgcls: SavedModel, ONNX, LiteRT.

Every export takes raw uint8 images of shape ``(batch, height, width, channels)``
and returns class probabilities of shape ``(batch, num_classes)``, float32. How the
pixels are scaled is decided once, by the library's input contract
(``kerasimgcls.inference._scaling.resolve_input_scaling``), and built into the export.
The conversion is Keras' own :meth:`keras.Model.export` (which uses tf2onnx for
ONNX and TensorFlow's converter for LiteRT).

What is written follows each format's own convention, as ``model.export`` writes
it:

- ``saved_model``: the folder ``output`` (``saved_model.pb`` and ``variables/``),
  with ``class_names.txt`` (one name per line, in output order) and the manifest
  ``kerasimgcls-export.json`` (format, input shape and dtype, class names, versions,
  and the files written) inside;
- ``onnx`` and ``litert``: the file ``output`` itself (``m.onnx``, ``m.tflite``),
  with ``m.onnx.class_names.txt`` and the manifest ``m.onnx.kerasimgcls-export.json``
  beside it. ONNX files also carry the class names as the metadata entry ``class_names``
  (a JSON list).

Files and folders get the permissions a plain ``open`` or ``mkdir`` would give.
``overwrite=True`` replaces only what a manifest says an earlier export wrote.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal

import keras
import numpy as np

from kerasimgcls._io import atomic_path, default_mode, write_text_atomic
from kerasimgcls._validation import check_choice, check_class_names
from kerasimgcls._version import __version__
from kerasimgcls.inference._load import load_model
from kerasimgcls.inference._scaling import resolve_input_scaling
from kerasimgcls.models._file import check_finite_weights
from kerasimgcls.models.layers import erf_gelu_copy, float32_copy
from kerasimgcls.models.preprocessing import get_class_names, resize_settings
from kerasimgcls.serving._paths import (
    CLASS_NAMES_FILE,
    MARKER,
    MODEL_FILES,
    SERVING_FORMATS,
    check_output,
    require,
    sidecar,
)

__all__ = [
    "CLASS_NAMES_FILE",
    "MODEL_FILES",
    "SERVING_FORMATS",
    "export_for_serving",
]

_KERAS_FORMATS = {"saved_model": "tf_saved_model", "onnx": "onnx", "litert": "litert"}


def export_for_serving(
    model: keras.Model | str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    format: Literal["saved_model", "onnx", "litert"],
    class_names: Sequence[str] | None = None,
    input_scaling: Literal["auto", "raw", "unit"] = "auto",
    overwrite: bool = False,
) -> Path:
    """Write ``model`` to ``output`` for serving, raw uint8 pixels in.

    Args:
        model: A Keras classifier ending in a softmax, or a run directory or
            ``.keras`` file (loaded with :func:`kerasimgcls.load_model`).
        output: Where to write: the folder of a ``saved_model`` (absent or empty,
            or an earlier export with ``overwrite=True``); the file of an
            ``onnx`` or ``litert`` export, ending in ``.onnx`` or ``.tflite``.
        format: ``"saved_model"`` (TensorFlow SavedModel, signature
            ``serving_default``), ``"onnx"`` or ``"litert"`` (TensorFlow Lite).
        class_names: One name per output; ``None`` takes them from the model
            (the library's exported models carry them).
        input_scaling: How the model expects pixels: ``"auto"`` decides from
            the model (a run's ``model.keras`` scales its own input), ``"raw"``
            means 0-255, ``"unit"`` means ``[0, 1]``.
        overwrite: Replace an earlier export in ``output``.

    Returns:
        The folder or file written.

    Raises:
        ValueError: If ``format`` or ``input_scaling`` is unknown, the class
            names are missing or do not match the model's outputs, or a one-file
            ``output`` has the wrong suffix.
        FileExistsError: If ``output`` exists (and is not an earlier export, with
            ``overwrite=True``), or is a symbolic link.
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
    target = check_output(output, format, overwrite=overwrite)
    require(format)
    if not isinstance(model, keras.Model):
        model = load_model(model)
    else:
        check_finite_weights(model, f"model {model.name!r}")
    names = _class_names(model, class_names)
    decision = resolve_input_scaling(model, input_scaling)
    # One precision for the converters: ONNX Runtime refuses bfloat16 convolutions.
    serving = _raw_pixel_model(float32_copy(model), decision.scaling)
    if format == "onnx":
        # ONNX has no erfc, the operator of TensorFlow's exact GELU.
        serving = erf_gelu_copy(serving)
    description: dict[str, object] = {
        "format": format,
        "model_file": target.name if format != "saved_model" else MODEL_FILES[format],
        "input": {"shape": [None, *serving.input_shape[1:]], "dtype": "uint8"},
        # The export takes images of the input's size; a server resizes its
        # files to it as the training images were (kerasimgcls.predict does).
        "resize": dict(
            zip(("interpolation", "aspect"), resize_settings(model), strict=True)
        ),
        "output": "class probabilities, float32, one column per class name",
        "class_names": names,
        "input_scaling": {"scaling": decision.scaling, "reason": decision.reason},
        "versions": {"kerasimgcls": __version__, "keras": keras.__version__},
    }
    if format == "saved_model":
        _write_saved_model(serving, target, names, description)
    else:
        _write_model_file(serving, target, format, names, description)
    return target


def _names_text(names: Sequence[str]) -> str:
    return "".join(f"{name}\n" for name in names)


def _write_saved_model(
    serving: keras.Model, target: Path, names: list[str], description: dict[str, object]
) -> None:
    with _staging(target) as folder:
        _export(serving, folder, "saved_model", names)
        (folder / CLASS_NAMES_FILE).write_text(_names_text(names), encoding="utf-8")
        files = sorted(
            str(path.relative_to(folder))
            for path in folder.rglob("*")
            if path.is_file()
        )
        description["files"] = [*files, MARKER]
        (folder / MARKER).write_text(
            json.dumps(description, indent=2) + "\n", encoding="utf-8"
        )
        _ordinary_permissions(folder)


def _write_model_file(
    serving: keras.Model,
    target: Path,
    format: str,
    names: list[str],
    description: dict[str, object],
) -> None:
    names_file = sidecar(target, CLASS_NAMES_FILE)
    manifest = sidecar(target, MARKER)
    description["files"] = [target.name, names_file.name, manifest.name]
    with atomic_path(target) as tmp:
        _export(serving, tmp, format, names)
        write_text_atomic(names_file, _names_text(names))
        write_text_atomic(manifest, json.dumps(description, indent=2) + "\n")


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
    return list(check_class_names(names, "class_names"))


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


def _export(model: keras.Model, path: Path, format: str, names: list[str]) -> None:
    # Keras' ONNX export needs a model that has been called once.
    model(np.zeros((1, *model.input_shape[1:]), np.uint8), training=False)
    with warnings.catch_warnings():
        # tf2onnx still touches np.object; the warning is not the user's to act on.
        warnings.filterwarnings(
            "ignore", message=".*np\\.object", category=FutureWarning
        )
        model.export(str(path), format=_KERAS_FORMATS[format], verbose=False)
    if format == "onnx":
        import onnx

        proto = onnx.load(str(path))
        entry = proto.metadata_props.add()
        entry.key, entry.value = "class_names", json.dumps(names)
        onnx.save(proto, str(path))


def _ordinary_permissions(folder: Path) -> None:
    """Give a staged folder what ``mkdir`` and ``open`` give (mkdtemp makes 0700)."""
    for path in [folder, *folder.rglob("*")]:
        if not path.is_symlink():
            os.chmod(path, default_mode(directory=path.is_dir()))


@contextlib.contextmanager
def _staging(target: Path) -> Iterator[Path]:
    """Yield a folder beside ``target``; move it into place when the block succeeds.

    ``target`` changes only at the end: a failed export leaves it as it was.
    """
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        folder = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    except OSError as err:
        raise type(err)(
            err.errno, f"cannot write output {str(target)!r}: {err.strerror}"
        ) from err
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
