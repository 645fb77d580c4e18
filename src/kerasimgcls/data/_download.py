"""Find a standard dataset on this machine, or download it through Keras' cache."""

from __future__ import annotations

import os
import socket
import urllib.parse
from pathlib import Path
from typing import Any

from kerasimgcls._validation import (
    check_path_exists,
)
from kerasimgcls.data._sources import (
    _CIFAR_URL,
    _FASHION,
    _IDX_FILES,
    _KERAS_URL,
    _MNIST,
    _Source,
    keras_datasets_dir,
)

__all__ = ["locate"]


def locate(source: _Source, data_dir: Any, download: bool | None) -> Path:
    if download is not None and not isinstance(download, bool):
        raise TypeError(
            f"download must be True, False or None; received download={download!r}"
        )
    if data_dir is not None:
        return check_path_exists(data_dir, "data_dir")
    cache = keras_datasets_dir()
    for relative in source.keras_cached:
        candidate = cache / relative
        if candidate.exists():
            return candidate
    if download is False or (download is None and not _reachable(_origin(source))):
        raise FileNotFoundError(_missing_message(source, cache, download))
    return _download(source)


def _origin(source: _Source) -> str:
    if source.name.startswith("cifar"):
        return _CIFAR_URL + source.archive
    return _KERAS_URL + (source.archive or "")


def _reachable(url: str, timeout: float = 3.0) -> bool:
    """Whether the download server accepts a connection within ``timeout`` seconds."""
    host = urllib.parse.urlsplit(url).hostname or ""
    try:
        with socket.create_connection((host, 443), timeout=timeout):
            return True
    except OSError:
        return False


def _missing_message(source: _Source, cache: Path, download: bool | None) -> str:
    why = (
        "download=False"
        if download is False
        else "the download server is not reachable (offline?)"
    )
    loader = f"load_{source.name}"
    if source is _FASHION:
        files = ", ".join(f"{name}.gz" for name in _IDX_FILES.values())
        what = f"the four files {files} from {_KERAS_URL}"
        where = f"into {str(cache / source.folder)!r}"
    elif source is _MNIST:
        what = f"{_KERAS_URL}mnist.npz"
        where = f"into {str(cache)!r}"
    else:
        what = _origin(source)
        where = f"into {str(cache)!r} (the archive or the {source.folder} folder it extracts to)"
    return (
        f"{source.name} is not on this machine and {why}. Download {what} and put it "
        f"{where}, or pass {loader}(data_dir=...) pointing at the file, its folder, "
        "or a folder of images laid out as train/<class>/*. Set KERAS_HOME to use "
        "another cache folder."
    )


def _download(source: _Source) -> Path:
    import keras

    cache_dir = str(keras_datasets_dir().parent)
    if source is _FASHION:
        for name in _IDX_FILES.values():
            keras.utils.get_file(
                f"{name}.gz",
                origin=f"{_KERAS_URL}{name}.gz",
                cache_dir=cache_dir,
                cache_subdir=os.path.join("datasets", source.folder),
            )
        return keras_datasets_dir() / source.folder
    path = keras.utils.get_file(
        source.archive,
        origin=_origin(source),
        file_hash=source.file_hash,
        cache_dir=cache_dir,
    )
    return Path(path)
