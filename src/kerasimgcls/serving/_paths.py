"""Where an export may be written: the checks ``export_for_serving`` runs first.

Apart from :mod:`kerasimgcls.serving._export` because they need no Keras: the command
line runs them before TensorFlow loads, so ``kerasimgcls export`` answers a wrong
``--output`` or a missing extra at once.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from pathlib import Path

__all__ = [
    "CLASS_NAMES_FILE",
    "MARKER",
    "MODEL_FILES",
    "SERVING_FORMATS",
    "check_output",
    "require",
    "sidecar",
]

SERVING_FORMATS: tuple[str, ...] = ("saved_model", "onnx", "litert")
#: The model file of each format: inside the SavedModel folder, or the suffix
#: ``output`` must have for a one-file format.
MODEL_FILES = {
    "saved_model": "saved_model.pb",
    "onnx": ".onnx",
    "litert": ".tflite",
}
#: The class names file, inside the SavedModel folder (``m.class_names.txt``
#: beside a one-file export ``m.onnx``).
CLASS_NAMES_FILE = "class_names.txt"
MARKER = "kerasimgcls-export.json"
# Every file a saved_model export writes into its folder (what overwrite replaces).
_SAVED_MODEL_FILES = re.compile(
    r"saved_model\.pb|fingerprint\.pb|class_names\.txt|kerasimgcls-export\.json"
    r"|variables/variables\.(index|data-\d{5}-of-\d{5})"
)
# Packages each format needs beyond TensorFlow and Keras (the `export` extra).
NEEDS = {"saved_model": (), "onnx": ("tf2onnx", "onnx"), "litert": ()}


def sidecar(model_file: Path, name: str) -> Path:
    """``m.onnx.class_names.txt`` or ``m.onnx.kerasimgcls-export.json`` beside it.

    The model file's whole name is kept, so ``m.onnx`` and ``m.tflite`` can share a
    folder.
    """
    return model_file.with_name(f"{model_file.name}.{name}")


def require(format: str) -> None:
    """Raise if ``format`` needs a package of the ``export`` extra that is missing."""
    missing = [name for name in NEEDS[format] if importlib.util.find_spec(name) is None]
    if missing:
        raise ModuleNotFoundError(
            f"format={format!r} needs {' and '.join(missing)}, which "
            f"{'is' if len(missing) == 1 else 'are'} not installed; install the "
            "export extra: pip install 'kerasimgcls[export]'"
        )


def check_output(
    output: str | os.PathLike[str], format: str, *, overwrite: bool
) -> Path:
    """Return ``output`` as a path if the export may be written there, else raise."""
    target = Path(output)
    if not str(output) or not target.name or target.name in (".", ".."):
        raise ValueError(f"output must name a file or folder; received {str(output)!r}")
    if target.is_symlink():
        raise FileExistsError(
            f"output {str(target)!r} is a symbolic link; give the path it points to"
        )
    if format == "saved_model":
        _check_folder_output(target, overwrite=overwrite)
        return target
    suffix = MODEL_FILES[format]
    if target.suffix.lower() != suffix:
        raise ValueError(
            f"output must be the {format} file to write, ending in {suffix} (as "
            f"keras' model.export writes it); received {str(target)!r}"
        )
    if target.is_dir():
        raise FileExistsError(
            f"output {str(target)!r} is a folder; name a {suffix} file"
        )
    for path in (target, sidecar(target, CLASS_NAMES_FILE), sidecar(target, MARKER)):
        if (path.exists() or path.is_symlink()) and not (
            overwrite and not path.is_symlink() and _listed(target, path)
        ):
            raise FileExistsError(_exists(path, overwrite))
    return target


def _listed(model_file: Path, path: Path) -> bool:
    """Whether the manifest beside ``model_file`` lists ``path`` as written by it."""
    manifest = sidecar(model_file, MARKER)
    try:
        files = json.loads(manifest.read_text(encoding="utf-8")).get("files", [])
    except (OSError, ValueError, AttributeError):
        return False
    return isinstance(files, list) and path.name in files


def _exists(path: Path, overwrite: bool) -> str:
    if overwrite:
        return (
            f"output {str(path)!r} exists and no kerasimgcls export manifest lists "
            "it; overwrite replaces only what an earlier export wrote"
        )
    return f"output {str(path)!r} exists; choose a new path, or overwrite=True"


def _check_folder_output(target: Path, *, overwrite: bool) -> None:
    if not target.exists():
        return
    if not target.is_dir():
        raise FileExistsError(f"output must be a folder; {str(target)!r} is a file")
    entries = sorted(
        path.relative_to(target).as_posix()
        for path in target.rglob("*")
        if path.is_symlink()
        or not path.is_dir()
        or path.relative_to(target).as_posix() not in ("variables", "assets")
    )
    if not entries:
        return
    if not overwrite:
        raise FileExistsError(
            f"output {str(target)!r} is not empty; choose a new folder, or "
            "overwrite=True to replace an earlier export"
        )
    try:
        manifest = json.loads((target / MARKER).read_text(encoding="utf-8"))
        written = set(manifest.get("files", []))
    except (OSError, ValueError, AttributeError, TypeError):
        written = set()
    # The manifest is a file anyone may edit: an entry is replaced only if the
    # manifest lists it and it is a file a SavedModel export writes.
    foreign = [
        entry
        for entry in entries
        if entry not in written
        or not _SAVED_MODEL_FILES.fullmatch(entry)
        or (target / entry).is_symlink()
    ]
    if foreign:
        raise FileExistsError(
            f"output {str(target)!r} holds {foreign[0]!r}, which no kerasimgcls "
            "export manifest lists; overwrite replaces only a folder written by "
            "export_for_serving"
        )
