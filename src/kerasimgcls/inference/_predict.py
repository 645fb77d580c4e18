"""Predict with a trained model: probabilities for arrays, top-k classes for files.

:func:`predict_proba` feeds raw uint8 pixels as the model expects them;
:func:`predict` reads image files (or folders) through the one decoder of the
library and returns :class:`Predictions`, which writes itself as CSV.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
from numpy.typing import ArrayLike, NDArray

from kerasimgcls._io import atomic_path
from kerasimgcls._validation import check_choice, check_positive_int
from kerasimgcls.data._files import IMAGE_EXTENSIONS, decode_file
from kerasimgcls.inference._load import load_model
from kerasimgcls.inference._scaling import (
    InputScaling,
    check_model_images,
    prepare_images,
    resolve_input_scaling,
)
from kerasimgcls.inference._tta import predict_tta
from kerasimgcls.models.preprocessing import get_class_names, resize_settings

__all__ = ["Predictions", "predict", "predict_proba"]


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
