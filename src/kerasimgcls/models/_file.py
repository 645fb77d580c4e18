"""Read a ``.keras`` file safely: sizes checked first, safe mode on, weights finite.

The one reader of model files: :func:`kerasimgcls.load_model` (a run or a file)
and a backbone's local weights (:func:`kerasimgcls.build_transfer_model`) both read
through it. The modules imported below define every Keras object a model file of
the library may name, so importing this module registers them all with Keras.
"""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import keras
import numpy as np

import kerasimgcls.models.airbench
import kerasimgcls.models.layers
import kerasimgcls.models.preprocessing  # noqa: F401 (registers InputPreprocessing)
from kerasimgcls._validation import limit

__all__ = ["check_finite_weights", "read_model_file"]


def read_model_file(path: Path) -> keras.Model:
    """Load the ``.keras`` file ``path`` with Keras' safe mode on.

    Raises:
        ValueError: If the file is not a ``.keras`` archive, is truncated or
            damaged, declares sizes past the limits, or has non-finite weights.
    """
    # Keras reports a damaged archive as "File not found"; say what is wrong.
    damaged = (
        f"{str(path)!r} is not a readable .keras model (truncated, damaged or "
        "another kind of file); save or download it again"
    )
    if not zipfile.is_zipfile(path):
        raise ValueError(damaged)
    _check_model_archive(path, damaged)
    try:
        model: keras.Model = keras.saving.load_model(Path(path), safe_mode=True)
    except (zipfile.BadZipFile, EOFError, KeyError, zlib.error) as err:
        raise ValueError(f"{damaged}: {err}") from err
    except (TypeError, ValueError) as err:
        # A class of the library's own that Keras cannot find is the library's
        # failure (exit 70 on the command line); anything else is the file's.
        if "kerasimgcls>" in str(err):
            raise
        # Keras nests its reasons; the innermost one names the culprit.
        reason = " ".join(str(err).split()).split("Exception encountered: ")[-1]
        raise ValueError(f"{str(path)!r} could not be loaded: {reason[:400]}") from err
    check_finite_weights(model, repr(str(path)))
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
