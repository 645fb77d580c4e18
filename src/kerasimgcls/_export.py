"""Self-contained models: preprocessing and class names travel inside ``model.keras``.

A trained model is wrapped as ``uint8 images -> InputPreprocessing -> model`` so raw
pixels go straight in, and :class:`InputPreprocessing` stores the class names in its
config, so they are saved and loaded with the model (safe mode stays on: the layer is
registered with Keras when :mod:`kerasimgcls` is imported).
"""

from __future__ import annotations

import dataclasses
import os
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
from numpy.typing import ArrayLike, NDArray

from kerasimgcls._keras_objects import register_keras_objects
from kerasimgcls._scaling import (
    InputScaling,
    check_model_images,
    prepare_images,
    resolve_input_scaling,
)
from kerasimgcls._tta import predict_tta
from kerasimgcls._validation import (
    check_choice,
    check_class_names,
    check_path_exists,
    check_positive_int,
    limit,
)
from kerasimgcls.data._files import ASPECTS, INTERPOLATIONS

__all__ = [
    "InputPreprocessing",
    "Predictions",
    "export_model",
    "get_class_names",
    "load_model",
    "predict",
    "predict_proba",
]


@keras.saving.register_keras_serializable(package="kerasimgcls")
class InputPreprocessing(keras.layers.Layer):  # type: ignore[misc]
    """Cast raw pixels to float32, scale them, and carry the class names of the model.

    It also records how image files are resized to the model's input
    (``interpolation`` and ``aspect``, as the training images were by
    :func:`~kerasimgcls.load_image_folder`), so :func:`~kerasimgcls.predict`
    and ``kerasimgcls explain`` decode a file of any size into the same pixels the
    loader would have given. The resizing itself happens when a file is decoded,
    in one function for training and inference alike; the layer only carries its
    settings in the saved model.

    Args:
        class_names: One name per output class, in output order.
        scale: Factor applied to the (cast to float32) input: ``1/255`` for a model
            that expects ``[0, 1]``, ``1.0`` for one that scales its own input.
        interpolation: The resampling filter image files are resized with.
        aspect: ``"stretch"``, ``"crop"`` or ``"pad"``: how a file of another
            aspect ratio is brought to the input's (see
            :func:`~kerasimgcls.load_image_folder`).
        **kwargs: Standard :class:`keras.layers.Layer` arguments such as ``name``.

    Example:
        >>> import numpy as np
        >>> from kerasimgcls import InputPreprocessing
        >>> layer = InputPreprocessing(class_names=["cat", "dog"])
        >>> np.asarray(layer(np.array([[0, 255]], dtype=np.uint8))).tolist()
        [[0.0, 1.0]]
    """

    def __init__(
        self,
        class_names: Sequence[str],
        scale: float = 1.0 / 255.0,
        interpolation: str = "bilinear",
        aspect: str = "stretch",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.class_names = [str(name) for name in class_names]
        self.scale = float(scale)
        # A model file may come from anywhere: only the known settings are used.
        self.interpolation = check_choice(
            interpolation, "interpolation", INTERPOLATIONS
        )
        self.aspect = check_choice(aspect, "aspect", ASPECTS)

    def call(self, inputs: Any) -> Any:
        """Return ``inputs`` cast to float32 and multiplied by ``scale``."""
        return keras.ops.cast(inputs, "float32") * self.scale

    def compute_output_shape(self, input_shape: Any) -> Any:
        """Return ``input_shape`` unchanged."""
        return input_shape

    def get_config(self) -> dict[str, Any]:
        """Return the layer's config, including the class names."""
        config: dict[str, Any] = super().get_config()
        config.update(
            {
                "class_names": list(self.class_names),
                "scale": self.scale,
                "interpolation": self.interpolation,
                "aspect": self.aspect,
            }
        )
        return config


def _find_preprocessing(model: keras.Model) -> InputPreprocessing | None:
    for layer in getattr(model, "layers", []):
        if isinstance(layer, InputPreprocessing):
            return layer
    return None


def resize_settings(model: keras.Model) -> tuple[str, str]:
    """``(interpolation, aspect)`` to resize image files for ``model`` with.

    A model exported by the library carries them (see
    :class:`InputPreprocessing`); any other is fed as ``load_image_folder``'s
    defaults resize.
    """
    layer = _find_preprocessing(model)
    if layer is None:
        return "bilinear", "stretch"
    return layer.interpolation, layer.aspect


def export_model(
    model: keras.Model,
    class_names: Sequence[str],
    *,
    input_scaling: InputScaling = "auto",
    interpolation: str = "bilinear",
    aspect: str = "stretch",
) -> keras.Model:
    """Wrap a trained model so it takes raw uint8 images and carries its class names.

    The returned model shares ``model``'s layers and weights: ``uint8 images ->``
    :class:`InputPreprocessing` ``-> model``. The preprocessing divides by 255 for
    a model that expects ``[0, 1]`` and only casts to float32 for a model that
    scales its own input (a ``Rescaling`` layer, ...), decided by
    :func:`kerasimgcls.resolve_input_scaling`, so no model is scaled twice. A
    model that already starts with :class:`InputPreprocessing` is returned as it
    is.

    Args:
        model: A trained classifier.
        class_names: One name per output unit.
        input_scaling: ``"auto"`` to decide from the model, ``"unit"`` if it
            expects ``[0, 1]``, ``"raw"`` if it expects 0-255.
        interpolation: The filter the training images were resized with; image
            files given to :func:`predict` are resized with it too.
        aspect: How the training images were brought to the input's aspect ratio
            (``"stretch"``, ``"crop"`` or ``"pad"``); likewise.

    Returns:
        The wrapped model (not compiled).

    Raises:
        ValueError: If the number of class names differs from the model's outputs,
            a name is repeated, empty or holds control characters, or
            ``input_scaling`` is not one of the three choices.
        TypeError: If ``class_names`` is not a sequence of strings.

    Example:
        >>> from kerasimgcls import build_cifar_cnn, export_model, get_class_names
        >>> model = build_cifar_cnn(input_shape=(8, 8, 1), num_classes=2)
        >>> exported = export_model(model, ["no", "yes"])
        >>> get_class_names(exported)
        ('no', 'yes')
    """
    if _find_preprocessing(model) is not None:
        return model
    class_names = check_class_names(class_names, "class_names")
    outputs = int(model.output_shape[-1])
    if len(class_names) != outputs:
        raise ValueError(
            f"class_names must have one name per model output ({outputs}); "
            f"received {len(class_names)} names"
        )
    decision = resolve_input_scaling(model, input_scaling)
    scale = 1.0 / 255.0 if decision.scaling == "unit" else 1.0
    inputs = keras.Input(tuple(model.input_shape[1:]), dtype="uint8", name="raw_images")
    x = InputPreprocessing(
        class_names,
        scale=scale,
        interpolation=interpolation,
        aspect=aspect,
        name="preprocessing",
    )(inputs)
    return keras.Model(inputs, model(x), name=f"{model.name}_exported")


def get_class_names(model: keras.Model) -> tuple[str, ...] | None:
    """Return the class names stored in an exported model, or ``None``.

    The names come from a model file, which may have been made elsewhere, so they
    are checked before anyone prints or indexes them: one printable name per
    output unit.

    Raises:
        ValueError: If the model carries a name with control characters (a
            terminal escape code, say) or not exactly one name per output.

    Example:
        >>> from kerasimgcls import build_cifar_cnn, get_class_names
        >>> get_class_names(build_cifar_cnn()) is None
        True
    """
    layer = _find_preprocessing(model)
    if layer is None:
        return None
    names = check_class_names(list(layer.class_names), f"class names of {model.name!r}")
    outputs = int(model.output_shape[-1])
    if len(names) != outputs:
        raise ValueError(
            f"model {model.name!r} carries {len(names)} class names for {outputs} "
            "outputs; re-export it with one name per output"
        )
    return names


def load_model(path: str | os.PathLike[str]) -> keras.Model:
    """Load a ``.keras`` model with Keras' safe mode on (no arbitrary code runs).

    Args:
        path: A ``.keras`` file, or a run directory holding ``model.keras``.

    Returns:
        The model.

    Raises:
        FileNotFoundError: If there is no such file.
        ValueError: If the file is not a ``.keras`` archive, or is truncated or
            damaged.

    Example:
        >>> from kerasimgcls import load_model
        >>> model = load_model("runs/digits")  # doctest: +SKIP
    """
    resolved = check_path_exists(path, "path")
    if resolved.is_dir():
        resolved = check_path_exists(resolved / "model.keras", "path", kind="file")
    if resolved.suffix != ".keras":
        raise ValueError(f"path must be a .keras file; received {str(resolved)!r}")
    # `import kerasimgcls` registered every object a file may name when Keras
    # loaded; again here, in case that ran while a module of ours was half
    # imported (idempotent, and it raises what went wrong).
    register_keras_objects()
    # Keras reports a damaged archive as "File not found"; say what is wrong.
    damaged = (
        f"{str(resolved)!r} is not a readable .keras model (truncated, damaged or "
        "another kind of file); save or download it again"
    )
    if not zipfile.is_zipfile(resolved):
        raise ValueError(damaged)
    _check_model_archive(resolved, damaged)
    try:
        model: keras.Model = keras.saving.load_model(Path(resolved), safe_mode=True)
    except (zipfile.BadZipFile, EOFError, KeyError, zlib.error) as err:
        raise ValueError(f"{damaged}: {err}") from err
    except (TypeError, ValueError) as err:
        # A class of the library's own that Keras cannot find is the library's
        # failure (exit 70 on the command line); anything else is the file's.
        if "kerasimgcls>" in str(err):
            raise
        # Keras nests its reasons; the innermost one names the culprit.
        reason = " ".join(str(err).split()).split("Exception encountered: ")[-1]
        raise ValueError(
            f"{str(resolved)!r} could not be loaded: {reason[:400]}"
        ) from err
    check_finite_weights(model, repr(str(resolved)))
    return model


# Members of a .keras file that Keras reads whole into memory and parses.
_CONFIG_MEMBERS = ("config.json", "metadata.json")


def _check_model_archive(path: Path, damaged: str) -> None:
    """Check a ``.keras`` zip's declared sizes before Keras reads any of it.

    ``zipfile`` never inflates a member past the size its header declares, so the
    declared sizes bound what loading can allocate: a ``config.json`` of 3 KB
    that inflates to 1.5 GB is refused here.

    Raises:
        ValueError: If the archive is unreadable, has more members than
            ``max_archive_members``, a config larger than
            ``max_model_config_bytes`` or more bytes than ``max_model_bytes``.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise ValueError(f"{damaged}: {err}") from err
    name = repr(str(path))
    max_members = limit("max_archive_members")
    if len(members) > max_members:
        raise ValueError(
            f"{name} has {len(members):,} members, more than the {max_members:,} a "
            ".keras model may have (KERASIMGCLS_MAX_ARCHIVE_MEMBERS)"
        )
    max_config = limit("max_model_config_bytes")
    for member in members:
        if member.filename in _CONFIG_MEMBERS and member.file_size > max_config:
            raise ValueError(
                f"{name}: its {member.filename} unpacks to {member.file_size:,} "
                f"bytes, more than the {max_config:,} allowed; it is not a model "
                "saved by Keras, or raise KERASIMGCLS_MAX_MODEL_CONFIG_BYTES"
            )
    total = sum(member.file_size for member in members)
    max_total = limit("max_model_bytes")
    if total > max_total:
        raise ValueError(
            f"{name} unpacks to {total:,} bytes, more than the {max_total:,} "
            "allowed (KERASIMGCLS_MAX_MODEL_BYTES)"
        )


def check_finite_weights(model: keras.Model, source: str) -> None:
    """Refuse a model with a NaN or infinite weight (it predicts "nan").

    Raises:
        ValueError: If a weight of ``model`` is not finite; the message names
            ``source`` and the weight.
    """
    for weight in model.weights:
        values = keras.ops.convert_to_numpy(weight)
        if np.issubdtype(values.dtype, np.inexact) and not np.isfinite(values).all():
            raise ValueError(
                f"{source} has non-finite weights (NaN or infinity) in "
                f"{weight.path!r}; it cannot predict. Train or save it again"
            )


def predict_proba(
    model: keras.Model,
    images: ArrayLike,
    *,
    batch_size: int = 256,
    tta: str | None = None,
    input_scaling: InputScaling = "auto",
) -> NDArray[np.float32]:
    """Return class probabilities for uint8 images, whichever input the model takes.

    The raw pixels are fed as the model expects them (see :doc:`/guide/input`):
    as they are to an exported model (see :func:`export_model`) or one that scales
    its own input, divided by 255 to any other, batch by batch.

    Args:
        model: A classifier ending in a softmax.
        images: uint8 array of shape ``(n, height, width, channels)``.
        batch_size: Images per forward pass.
        tta: ``None``, or test-time augmentation by
            :func:`~kerasimgcls.predict_tta`: ``"flip"`` (each image and its
            left-right mirror image, for models trained with flips; a second
            forward pass) or ``"flip_translate"`` (airbench's six views), averaged
            in logit space.
        input_scaling: ``"auto"`` to decide from the model, or ``"raw"`` /
            ``"unit"`` to say it (see :func:`kerasimgcls.resolve_input_scaling`).

    Returns:
        Array of shape ``(n, num_classes)``, float32.

    Raises:
        ValueError: If the images do not match the model's input shape, or an
            option is not one of its choices.
        TypeError: If the images are not uint8.

    Example:
        >>> import numpy as np
        >>> from kerasimgcls import build_cifar_cnn, predict_proba
        >>> model = build_cifar_cnn(input_shape=(8, 8, 1), num_classes=3)
        >>> predict_proba(model, np.zeros((2, 8, 8, 1), np.uint8)).shape
        (2, 3)
    """
    if tta is not None:
        check_choice(tta, "tta", ("flip", "flip_translate"))
        return predict_tta(
            model,
            images,
            views=tta,  # type: ignore[arg-type]
            batch_size=batch_size,
            input_scaling=input_scaling,
        )
    array = check_model_images(model, images, allow_single=True)
    batch_size = check_positive_int(batch_size, "batch_size")
    scaling = resolve_input_scaling(model, input_scaling).scaling
    outputs = []
    for start in range(0, array.shape[0], batch_size):
        feed = prepare_images(model, array[start : start + batch_size], scaling)
        outputs.append(np.asarray(model(feed, training=False), dtype=np.float32))
    if not outputs:  # zero images: zero rows, not an error deep inside NumPy
        return np.zeros((0, int(model.output_shape[-1])), np.float32)
    return np.concatenate(outputs, axis=0)


@dataclasses.dataclass(frozen=True, eq=False)
class Predictions:
    """What :func:`predict` found for image files: one row per decoded image.

    Attributes:
        paths: The decoded files, in the order they were given (a folder's files
            sorted by path).
        probabilities: float32 array of shape ``(len(paths), num_classes)``.
        class_names: One name per class (from the model, else ``"0"``, ``"1"``...).
        top_k: How many classes :meth:`rows` lists per image.
        failed: ``(path, reason)`` of each file that could not be read or decoded.
        skipped: Files inside the given folders that are not images by their
            extension (not tried).

    Example:
        >>> import numpy as np
        >>> from kerasimgcls import Predictions
        >>> result = Predictions(("a.png",), np.array([[0.2, 0.8]], np.float32),
        ...                      ("cat", "dog"), 1, (("b.png", "empty file"),), ())
        >>> result.rows()[0]["top_k"], result.ok
        ([{'class': 'dog', 'probability': 0.800000011920929}], False)
    """

    paths: tuple[str, ...]
    probabilities: NDArray[np.float32] = dataclasses.field(repr=False)
    class_names: tuple[str, ...]
    top_k: int
    failed: tuple[tuple[str, str], ...]
    skipped: tuple[str, ...]

    @property
    def ok(self) -> bool:
        """Whether every file given was decoded."""
        return not self.failed

    def rows(self) -> list[dict[str, Any]]:
        """Return one JSON-ready ``{"image", "top_k": [{"class", "probability"}]}`` each.

        Example:
            >>> import numpy as np
            >>> from kerasimgcls import Predictions
            >>> Predictions(("a.png",), np.array([[1.0]], np.float32), ("x",), 1, (),
            ...             ()).rows()[0]["image"]
            'a.png'
        """
        k = min(self.top_k, len(self.class_names))
        rows = []
        for path, row in zip(self.paths, self.probabilities, strict=True):
            top = np.argsort(-row, kind="stable")[:k]
            rows.append(
                {
                    "image": path,
                    "top_k": [
                        {"class": self.class_names[i], "probability": float(row[i])}
                        for i in top
                    ],
                }
            )
        return rows

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the predictions to ``path``: CSV for ``.csv``, JSON for ``.json``.

        The CSV has one row per decoded image: ``image``, ``class``,
        ``probability`` (the top class), then one column per class with its
        probability. The JSON holds the :meth:`rows` and the failed files.

        Raises:
            ValueError: If the suffix is neither ``.csv`` nor ``.json``.

        Example:
            >>> import tempfile
            >>> import numpy as np
            >>> from kerasimgcls import Predictions
            >>> result = Predictions(("a.png",), np.array([[0.3, 0.7]], np.float32),
            ...                      ("cat", "dog"), 1, (), ())
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     text = result.save(f"{tmp}/p.csv").read_text()
            >>> text.splitlines()[1]
            'a.png,dog,0.7,0.3,0.7'
        """
        import csv
        import io
        import json

        from kerasimgcls._io import atomic_path

        target = Path(path)
        suffix = target.suffix.lower()
        if suffix not in (".csv", ".json"):
            raise ValueError(
                f"the output must end in .csv or .json; received {str(target)!r}"
            )
        if suffix == ".json":
            document = {
                "predictions": self.rows(),
                "failed": [{"image": p, "error": e} for p, e in self.failed],
            }
            text = json.dumps(document, indent=2) + "\n"
        else:
            buffer = io.StringIO()
            writer = csv.writer(buffer, lineterminator="\n")
            writer.writerow(["image", "class", "probability", *self.class_names])
            for image, row in zip(self.paths, self.probabilities, strict=True):
                best = int(np.argmax(row))
                writer.writerow(
                    [
                        image,
                        self.class_names[best],
                        f"{float(row[best]):.6g}",
                        *(f"{float(value):.6g}" for value in row),
                    ]
                )
            text = buffer.getvalue()
        with atomic_path(target) as tmp:
            Path(tmp).write_text(text, encoding="utf-8")
        return target


_COLOR_MODES = {1: "grayscale", 3: "rgb", 4: "rgba"}


def _expand(
    paths: Sequence[str | os.PathLike[str]],
) -> tuple[list[str], list[tuple[str, str]], list[str]]:
    """Files to decode, missing paths, and non-image files found in folders."""
    from kerasimgcls.data._files import IMAGE_EXTENSIONS

    files: list[str] = []
    missing: list[tuple[str, str]] = []
    skipped: list[str] = []
    for item in paths:
        path = Path(item)
        if path.is_dir():
            found = []
            # os.walk does not follow symbolic links to folders: no loops.
            for folder, subfolders, names in os.walk(path):
                subfolders[:] = [
                    name for name in subfolders if not name.startswith(".")
                ]
                found += [
                    os.path.join(folder, name)
                    for name in names
                    if not name.startswith(".")
                ]
            for name in sorted(found):
                if not os.path.isfile(name):  # a FIFO or a socket would block
                    missing.append((name, "not a regular file"))
                elif name.lower().endswith(IMAGE_EXTENSIONS):
                    files.append(name)
                else:
                    skipped.append(name)
        elif path.exists():
            files.append(str(path))  # named explicitly: tried whatever its suffix
        else:
            missing.append((str(path), "no such file or folder"))
    return files, missing, skipped


def _read_mode(model: keras.Model) -> tuple[str, tuple[int, int] | None]:
    """The colour mode and size (``None``: any) to decode images at for ``model``.

    How to resize to that size is :func:`resize_settings`.
    """
    height, width, channels = tuple(model.input_shape[1:])
    if channels not in _COLOR_MODES:
        raise ValueError(
            f"the model takes {channels} channels; predict reads images as 1, 3 "
            "or 4 channels"
        )
    size = None if height is None or width is None else (int(height), int(width))
    return _COLOR_MODES[channels], size


def _predict_files(
    model: keras.Model,
    files: list[str],
    failed: list[tuple[str, str]],
    read: tuple[str, tuple[int, int] | None],
    batch_size: int,
    tta: str | None,
    scaling: InputScaling,
) -> tuple[list[str], list[NDArray[np.float32]]]:
    """Decode and predict ``files`` in batches: the decoded files, their chunks.

    Files that do not decode go to ``failed``; images of any size (``read``'s size
    ``None``) are predicted one at a time.
    """
    from kerasimgcls.data._files import decode_file

    color_mode, size = read
    interpolation, aspect = resize_settings(model)
    decoded: list[str] = []
    chunks: list[NDArray[np.float32]] = []
    batch: list[NDArray[np.uint8]] = []

    def flush() -> None:
        if batch:
            stacked = np.stack(batch) if size else batch[0][np.newaxis]
            chunks.append(
                predict_proba(
                    model,
                    stacked,
                    batch_size=batch_size,
                    tta=tta,
                    input_scaling=scaling,
                )
            )
            batch.clear()

    for file in files:
        result = decode_file(
            file,
            color_mode=color_mode,
            image_size=size,
            interpolation=interpolation,
            aspect=aspect,
        )
        if result.image is None:
            failed.append((file, result.error or "cannot be decoded"))
            continue
        decoded.append(file)
        batch.append(result.image)
        if len(batch) >= batch_size or size is None:
            flush()
    flush()
    return decoded, chunks


def predict(
    model: keras.Model | str | os.PathLike[str],
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    top_k: int = 3,
    batch_size: int = 64,
    tta: str | None = None,
    input_scaling: InputScaling = "auto",
) -> Predictions:
    """Classify image files and folders (recursively), going on past bad files.

    Each file is decoded (Pillow; raster formats), converted to the model's
    channels and resized to its input size as the training images were (the
    filter and aspect mode a run's model carries, see
    :class:`InputPreprocessing`), then fed as the model expects (see
    :doc:`/guide/input`). A file that cannot be read or decoded is reported in
    :attr:`Predictions.failed` with the reason, and the others are predicted.

    Args:
        model: A Keras model, a ``.keras`` file or a run directory.
        paths: Image files and folders; a folder's images (by extension) are
            found recursively, hidden files and folders left out.
        top_k: Classes per image in :meth:`Predictions.rows`.
        batch_size: Images decoded and predicted at a time.
        tta: ``None``, ``"flip"`` or ``"flip_translate"`` (see
            :func:`predict_proba`).
        input_scaling: ``"auto"``, ``"raw"`` or ``"unit"`` (see
            :func:`resolve_input_scaling`).

    Returns:
        The predictions, the failed files and the skipped ones.

    Raises:
        FileNotFoundError: If ``model`` is a path that does not exist.
        ValueError: If ``paths`` is empty, an option is out of range, or the
            model does not take 1, 3 or 4 channels.

    Example:
        >>> import tempfile
        >>> import numpy as np
        >>> from PIL import Image
        >>> from kerasimgcls import build_cifar_cnn, predict
        >>> model = build_cifar_cnn(input_shape=(8, 8, 3), num_classes=2)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     Image.new("RGB", (8, 8)).save(f"{tmp}/a.png")
        ...     _ = open(f"{tmp}/broken.png", "wb").write(b"not a png")
        ...     result = predict(model, tmp)
        >>> len(result.paths), [reason != "" for _, reason in result.failed]
        (1, [True])
    """
    if isinstance(model, str | os.PathLike):
        model = load_model(model)
    items = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    if not items:
        raise ValueError("paths must name at least one image file or folder")
    top_k = check_positive_int(top_k, "top_k")
    batch_size = check_positive_int(batch_size, "batch_size")
    scaling = resolve_input_scaling(model, input_scaling).scaling
    color_mode, size = _read_mode(model)
    files, failed, skipped = _expand(items)
    decoded, chunks = _predict_files(
        model, files, failed, (color_mode, size), batch_size, tta, scaling
    )
    num_classes = int(model.output_shape[-1])
    names = get_class_names(model) or tuple(str(i) for i in range(num_classes))
    probabilities = (
        np.concatenate(chunks) if chunks else np.zeros((0, num_classes), np.float32)
    )
    return Predictions(
        paths=tuple(decoded),
        probabilities=probabilities,
        class_names=tuple(names),
        top_k=top_k,
        failed=tuple(failed),
        skipped=tuple(skipped),
    )
