"""The standard datasets: CIFAR-10, CIFAR-100, MNIST and Fashion-MNIST.

Online, the files come through Keras' own download and cache (``$KERAS_HOME``,
``~/.keras`` by default). Offline, from a ``data_dir`` holding the official files
or a folder of images. The CIFAR python format is a pickle: it is read with an
allow-list unpickler, never with :func:`pickle.load`.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import io
import json
import logging
import math
import os
import shutil
import socket
import tarfile
import tempfile
import urllib.parse
import zipfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from kerasimgcls._io import (
    file_lock,
    no_space_error,
    open_regular_file,
    read_regular_file,
    write_json_atomic,
)
from kerasimgcls._validation import (
    check_choice,
    check_class_names,
    check_path_exists,
    check_rate,
    check_seed,
    limit,
    short_repr,
)
from kerasimgcls.data._dataset import ImageDataset, Split
from kerasimgcls.data._safe_pickle import safe_load
from kerasimgcls.data._split import train_validation_split
from kerasimgcls.data._tar_headers import check_tar_headers

__all__ = [
    "CIFAR10_CLASSES",
    "load_cifar10",
    "load_cifar100",
    "load_fashion_mnist",
    "load_mnist",
]

logger = logging.getLogger(__name__)

#: The ten CIFAR-10 class names, in label order (as in the official batches).
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
_CIFAR_URL = "https://www.cs.toronto.edu/~kriz/"
_KERAS_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
_IDX_FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}


@dataclass(frozen=True)
class _Source:
    """Where one dataset comes from and how Keras caches it."""

    name: str
    archive: str  # the official file name
    folder: str  # what the archive extracts to (CIFAR) or the cache sub-folder
    file_hash: str
    keras_cached: tuple[str, ...]  # paths under $KERAS_HOME/datasets to look at


_CIFAR10 = _Source(
    "cifar10",
    "cifar-10-python.tar.gz",
    "cifar-10-batches-py",
    "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce",
    (
        "cifar-10-batches-py-target/cifar-10-batches-py",
        "cifar-10-batches-py",
        "cifar-10-batches-py-target_archive",
        "cifar-10-python.tar.gz",
    ),
)
_CIFAR100 = _Source(
    "cifar100",
    "cifar-100-python.tar.gz",
    "cifar-100-python",
    "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7",
    (
        "cifar-100-python-target/cifar-100-python",
        "cifar-100-python",
        "cifar-100-python-target_archive",
        "cifar-100-python.tar.gz",
    ),
)
_MNIST = _Source(
    "mnist",
    "mnist.npz",
    "",
    "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1",
    ("mnist.npz",),
)
_FASHION = _Source("fashion_mnist", "", "fashion-mnist", "", ("fashion-mnist",))


def keras_datasets_dir() -> Path:
    """Keras' download cache: ``$KERAS_HOME/datasets`` (``~/.keras/datasets``)."""
    home = os.environ.get("KERAS_HOME") or os.path.join(
        os.path.expanduser("~"), ".keras"
    )
    return Path(home) / "datasets"


# --- public loaders ----------------------------------------------------------------


def load_cifar10(
    *,
    data_dir: str | os.PathLike[str] | None = None,
    validation_split: float = 0.1,
    seed: int = 0,
    download: bool | None = None,
) -> ImageDataset:
    """Load CIFAR-10: 60,000 32x32 colour images of 10 classes (50,000 train, 10,000 test).

    Where the data comes from, in order:

    1. ``data_dir``, if given (nothing else is tried): the official
       ``cifar-10-python.tar.gz``, the folder it extracts to
       (``cifar-10-batches-py``), a folder holding either, or a folder of images
       laid out ``train/<class>/*`` (and optionally ``test/<class>/*``), which is
       read with :func:`load_image_folder` (no test split if there is no
       ``test/``).
    2. Keras' cache (``$KERAS_HOME/datasets``, ``~/.keras/datasets`` by default),
       where :func:`keras.datasets.cifar10.load_data` leaves it.
    3. A download through Keras (checked against the published SHA-256) if
       ``download`` allows it.

    The python-format batches are pickles; they are read with an allow-list
    unpickler that accepts only NumPy arrays and plain containers, so a crafted
    file cannot run code, and archives are extracted with the standard library's
    ``"data"`` filter (no absolute paths, links out of the folder or devices).

    Args:
        data_dir: Folder (or archive) to load from instead of Keras' cache.
        validation_split: Fraction of the 50,000 training images held out for
            validation, stratified by class, in ``[0, 1)``.
        seed: Seed of the validation split.
        download: ``True`` downloads when the data is not found locally, ``False``
            never touches the network, ``None`` (default) downloads only if the
            server answers within 3 seconds, so an offline machine fails fast.

    Returns:
        The dataset: images uint8 ``(n, 32, 32, 3)``, class names ``airplane`` ...
        ``truck``.

    Raises:
        FileNotFoundError: If the data is not found and cannot be downloaded; the
            message says what to download and where to put it.
        ValueError: If ``validation_split`` is out of range or a file's content is
            not a valid CIFAR batch.
        pickle.UnpicklingError: If a batch file asks to run code (the subclass
            ``UnsafePickleError``); nothing is executed.

    Example:
        >>> from kerasimgcls import load_cifar10
        >>> data = load_cifar10(validation_split=0.1, seed=21)  # doctest: +SKIP
        >>> data.input_shape, len(data.train), len(data.test)  # doctest: +SKIP
        ((32, 32, 3), 45000, 10000)
    """
    location, validation_split, seed = _prepare(
        _CIFAR10, data_dir, validation_split, seed, download
    )
    if location.is_dir() and _is_image_folder(location):
        return _from_image_folder(location, CIFAR10_CLASSES, validation_split, seed)
    folder = _batches_folder(location, _CIFAR10)
    meta = _read_pickle(folder / "batches.meta")
    names = _names(meta, b"label_names", folder / "batches.meta", 10)
    parts = [
        _read_cifar_batch(folder / f"data_batch_{i}", b"labels", 10)
        for i in range(1, 6)
    ]
    train = Split(
        np.concatenate([p.images for p in parts]),
        np.concatenate([p.labels for p in parts]),
    )
    test = _read_cifar_batch(folder / "test_batch", b"labels", 10)
    return _assemble(train, test, names, "cifar10", validation_split, seed)


def load_cifar100(
    *,
    label_mode: Literal["fine", "coarse"] = "fine",
    data_dir: str | os.PathLike[str] | None = None,
    validation_split: float = 0.1,
    seed: int = 0,
    download: bool | None = None,
) -> ImageDataset:
    """Load CIFAR-100: 60,000 32x32 colour images of 100 classes (or 20 superclasses).

    Looks in the same places as :func:`load_cifar10`, for
    ``cifar-100-python.tar.gz`` or its folder ``cifar-100-python`` (or a
    ``train/<class>`` image folder), with the same safe unpickling.

    Args:
        label_mode: ``"fine"`` for the 100 classes, ``"coarse"`` for the 20
            superclasses.
        data_dir: Folder (or archive) to load from instead of Keras' cache.
        validation_split: Fraction of the training images held out for
            validation, stratified by class, in ``[0, 1)``.
        seed: Seed of the validation split.
        download: As in :func:`load_cifar10`.

    Returns:
        The dataset: images uint8 ``(n, 32, 32, 3)`` and the official class names.

    Raises:
        FileNotFoundError: If the data is not found and cannot be downloaded.
        ValueError: If an argument is out of range or a file is not a valid batch.
        pickle.UnpicklingError: If a batch file asks to run code.

    Example:
        >>> from kerasimgcls import load_cifar100
        >>> data = load_cifar100(label_mode="coarse")  # doctest: +SKIP
        >>> data.num_classes  # doctest: +SKIP
        20
    """
    check_choice(label_mode, "label_mode", ("fine", "coarse"))
    location, validation_split, seed = _prepare(
        _CIFAR100, data_dir, validation_split, seed, download
    )
    if location.is_dir() and _is_image_folder(location):
        return _from_image_folder(location, None, validation_split, seed)
    folder = _batches_folder(location, _CIFAR100)
    count = 100 if label_mode == "fine" else 20
    meta = _read_pickle(folder / "meta")
    names = _names(meta, f"{label_mode}_label_names".encode(), folder / "meta", count)
    key = f"{label_mode}_labels".encode()
    train = _read_cifar_batch(folder / "train", key, count)
    test = _read_cifar_batch(folder / "test", key, count)
    name = "cifar100" if label_mode == "fine" else "cifar100_coarse"
    return _assemble(train, test, names, name, validation_split, seed)


def load_mnist(
    *,
    data_dir: str | os.PathLike[str] | None = None,
    validation_split: float = 0.1,
    seed: int = 0,
    download: bool | None = None,
) -> ImageDataset:
    """Load MNIST: 70,000 28x28 grayscale handwritten digits (60,000 train).

    From ``data_dir`` (Keras' ``mnist.npz``, a folder holding it, a folder with the
    original IDX files ``train-images-idx3-ubyte[.gz]`` ..., or a ``train/<class>``
    image folder), else Keras' cache, else a download as in :func:`load_cifar10`.
    ``mnist.npz`` is read with ``allow_pickle=False``.

    Args:
        data_dir: ``mnist.npz``, a folder holding it or the IDX files, or an image
            folder, to load instead of Keras' cache.
        validation_split: Fraction of the 60,000 training images held out for
            validation, stratified by class, in ``[0, 1)``.
        seed: Seed of the validation split.
        download: As in :func:`load_cifar10`.

    Returns:
        The dataset: images uint8 ``(n, 28, 28, 1)``, class names ``"0"`` ... ``"9"``.

    Raises:
        FileNotFoundError: If the data is not found and cannot be downloaded.
        ValueError: If an argument is out of range or a file is not valid.

    Example:
        >>> from kerasimgcls import load_mnist
        >>> data = load_mnist(download=False)  # doctest: +SKIP
        >>> data.input_shape  # doctest: +SKIP
        (28, 28, 1)
    """
    location, validation_split, seed = _prepare(
        _MNIST, data_dir, validation_split, seed, download
    )
    names = tuple(str(i) for i in range(10))
    return _load_mnist_like(location, names, "mnist", validation_split, seed)


def load_fashion_mnist(
    *,
    data_dir: str | os.PathLike[str] | None = None,
    validation_split: float = 0.1,
    seed: int = 0,
    download: bool | None = None,
) -> ImageDataset:
    """Load Fashion-MNIST: 70,000 28x28 grayscale images of 10 kinds of clothing.

    From ``data_dir`` (a folder with the IDX files ``train-images-idx3-ubyte.gz``
    ..., an ``.npz`` with ``x_train``/``y_train``/``x_test``/``y_test``, or a
    ``train/<class>`` image folder), else Keras' cache (``datasets/fashion-mnist``),
    else a download as in :func:`load_cifar10`.

    Args:
        data_dir: The four IDX files' folder, an ``.npz`` or an image folder, to
            load instead of Keras' cache.
        validation_split: As in :func:`load_mnist`.
        seed: Seed of the validation split.
        download: As in :func:`load_cifar10`.

    Returns:
        The dataset: images uint8 ``(n, 28, 28, 1)``, class names ``T-shirt/top``
        ... ``Ankle boot``.

    Raises:
        FileNotFoundError: As in :func:`load_mnist`.
        ValueError: If an argument is out of range or a file is not valid.

    Example:
        >>> from kerasimgcls import load_fashion_mnist
        >>> data = load_fashion_mnist(download=False)  # doctest: +SKIP
        >>> data.class_names[0]  # doctest: +SKIP
        'T-shirt/top'
    """
    location, split, seed = _prepare(
        _FASHION, data_dir, validation_split, seed, download
    )
    return _load_mnist_like(
        location, FASHION_MNIST_CLASSES, "fashion_mnist", split, seed
    )


# --- finding the files -------------------------------------------------------------


def _prepare(
    source: _Source,
    data_dir: Any,
    validation_split: object,
    seed: object,
    download: bool | None,
) -> tuple[Path, float, int]:
    """Check a loader's split arguments and find its data: ``(path, split, seed)``."""
    split = check_rate(validation_split, "validation_split")
    checked_seed = check_seed(seed, "seed")
    return _locate(source, data_dir, download), split, checked_seed


def _locate(source: _Source, data_dir: Any, download: bool | None) -> Path:
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


def _is_image_folder(path: Path) -> bool:
    return (path / "train").is_dir() and any(
        entry.is_dir() for entry in (path / "train").iterdir()
    )


def _batches_folder(location: Path, source: _Source) -> Path:
    """Return the folder holding the extracted batches, extracting an archive once."""
    if location.is_dir():
        for candidate in (location, location / source.folder):
            if (
                candidate / ("batches.meta" if source is _CIFAR10 else "meta")
            ).exists():
                return candidate
        for name in (source.archive, f"{source.folder}-target_archive"):
            if (location / name).is_file():
                return _batches_folder(location / name, source)
        raise FileNotFoundError(
            f"data_dir {str(location)!r} holds neither {source.archive}, its "
            f"extracted folder {source.folder}/, nor a train/<class>/ image folder"
        )
    return _extract_once(location, source)


# Written into an extraction folder last: the folder is complete and came from
# the archive of this size and modification time. A folder without it (an
# interrupted or older extraction) or with another archive's is extracted again.
_EXTRACTED_MARKER = ".kerasimgcls-extracted.json"


def _extract_once(archive: Path, source: _Source) -> Path:
    """Extract ``archive`` beside itself (or in the user cache) unless already done.

    The extraction is verified (bounded, complete, marker last) and replaced when
    the archive changes; concurrent loaders take turns on a lock file, so the
    second one finds the first one's extraction.
    """
    from kerasimgcls.data._image_folder import default_cache_dir

    stem = archive.name.split(".")[0]
    identity = _archive_identity(archive)
    targets = [
        archive.parent / f"{stem}_extracted",
        default_cache_dir() / f"{stem}_extracted",
    ]
    for target in targets:
        if _is_current(target, identity, source):
            return target / source.folder
    for target in targets:
        with contextlib.ExitStack() as stack:
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                lock = target.parent / f".{stem}.extract.lock"
                stack.enter_context(file_lock(lock, blocking=True))
            except OSError:
                continue
            if not _is_current(target, identity, source):
                _extract_into(archive, target, identity, source)
        logger.info("extracted %s to %s", archive, target)
        return target / source.folder
    raise PermissionError(
        f"cannot extract {str(archive)!r}: neither its folder nor the cache folder "
        f"{str(default_cache_dir())!r} is writable; extract it yourself and pass the "
        "extracted folder as data_dir"
    )


def _archive_identity(archive: Path) -> dict[str, Any]:
    info = archive.stat()
    return {
        "archive": archive.name,
        "size": int(info.st_size),
        "mtime_ns": int(info.st_mtime_ns),
    }


def _is_current(target: Path, identity: dict[str, Any], source: _Source) -> bool:
    try:
        marker = json.loads((target / _EXTRACTED_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return marker == identity and (target / source.folder).is_dir()


def _extract_into(
    archive: Path, target: Path, identity: dict[str, Any], source: _Source
) -> None:
    staging = Path(
        tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    )
    try:
        _extract_checked(archive, staging, source)
        if not (staging / source.folder).is_dir():
            raise ValueError(
                f"{str(archive)!r} does not contain the folder {source.folder}/; "
                f"is it the official {source.archive}?"
            )
        write_json_atomic(staging / _EXTRACTED_MARKER, identity)
        if target.exists():
            _remove_stale_extraction(target, source)
        os.replace(staging, target)
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            raise no_space_error(err, target) from err
        raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _remove_stale_extraction(target: Path, source: _Source) -> None:
    """Delete an earlier extraction, but only one that is recognisably ours."""
    entries = {entry.name for entry in target.iterdir()}
    if (
        not target.is_dir()
        or target.is_symlink()
        or not entries
        <= {
            source.folder,
            _EXTRACTED_MARKER,
        }
    ):
        raise ValueError(
            f"{str(target)!r} holds an outdated or incomplete extraction together "
            f"with other files ({sorted(entries)[:5]}); remove it, or move the "
            "other files out, and load again"
        )
    logger.info("replacing the outdated extraction %s", target)
    trash = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    os.replace(target, trash / "stale")
    shutil.rmtree(trash, ignore_errors=True)


def _extract_checked(archive: Path, staging: Path, source: _Source) -> None:
    """Extract the members of ``archive`` under ``source.folder``, within the bounds."""
    max_members = limit("max_archive_members")
    max_total = limit("max_archive_bytes")
    max_member = limit("max_archive_member_bytes")
    try:
        fd, _ = open_regular_file(archive, max_bytes=max_total, what="archive")
    except FileNotFoundError:
        raise
    except OSError as err:
        raise ValueError(f"cannot read {str(archive)!r}: {err.strerror}") from err
    fix = (
        f"Is it the official {source.archive}? Download it again, or raise the "
        "bound with the environment variable named"
    )
    try:
        check_tar_headers(archive, fix.split("?")[0] + "? Download it again")
    except BaseException:
        os.close(fd)
        raise
    try:
        with os.fdopen(fd, "rb") as raw, tarfile.open(fileobj=raw) as handle:
            members = []
            total = 0
            for count, member in enumerate(handle, start=1):
                if count > max_members:
                    raise ValueError(
                        f"{str(archive)!r} has more than {max_members:,} members. "
                        f"{fix} (KERASIMGCLS_MAX_ARCHIVE_MEMBERS)."
                    )
                if member.size > max_member:
                    raise ValueError(
                        f"{str(archive)!r}: member {member.name!r} unpacks to "
                        f"{member.size:,} bytes, more than the {max_member:,} "
                        f"allowed. {fix} (KERASIMGCLS_MAX_ARCHIVE_MEMBER_BYTES)."
                    )
                total += member.size
                if total > max_total:
                    raise ValueError(
                        f"{str(archive)!r} unpacks to more than {max_total:,} bytes. "
                        f"{fix} (KERASIMGCLS_MAX_ARCHIVE_BYTES)."
                    )
                _check_member_name(member, archive, fix)
                parts = Path(member.name).parts
                if member.name.startswith(("/", "\\")) or ".." in parts:
                    raise ValueError(
                        f"cannot extract {str(archive)!r}: member {member.name!r} "
                        "would be written outside the extraction folder (a crafted "
                        "archive?)"
                    )
                inside = parts[:1] == (source.folder,)
                if inside and (member.isfile() or member.isdir()):
                    members.append(member)
            # The "data" filter refuses absolute paths, "..", links leaving the
            # folder and device files: a crafted archive cannot write elsewhere.
            handle.extractall(staging, members=members, filter="data")
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as err:
        raise ValueError(
            f"cannot extract {str(archive)!r} (truncated or not a tar archive): "
            f"{err or type(err).__name__}. {fix.split('?')[0]}? Download it again."
        ) from err


# The longest name of one folder or file on common file systems (NAME_MAX).
_NAME_MAX = 255


def _check_member_name(member: tarfile.TarInfo, archive: Path, fix: str) -> None:
    """Refuse a member name too deep, or with a part too long, to extract."""
    parts = member.name.split("/")
    depth = limit("max_archive_path_depth")
    if len(parts) > depth:
        raise ValueError(
            f"{str(archive)!r}: member {member.name[:60]!r}... is {len(parts):,} "
            f"folders deep, more than the {depth} allowed. {fix} "
            "(KERASIMGCLS_MAX_ARCHIVE_PATH_DEPTH)."
        )
    for part in (*parts, *member.linkname.split("/")):
        size = len(part.encode("utf-8", "surrogateescape"))
        if size > _NAME_MAX:
            raise ValueError(
                f"{str(archive)!r}: member {member.name[:60]!r}... has a name part "
                f"of {size:,} bytes, more than the {_NAME_MAX} a file system allows; "
                f"is it the official archive? Download it again."
            )


# --- reading the files -------------------------------------------------------------


def _read_data_file(path: Path) -> bytes:
    """The bytes of a dataset file: a regular file within ``max_data_file_bytes``."""
    try:
        return read_regular_file(
            path, max_bytes=limit("max_data_file_bytes"), what="dataset file"
        )
    except FileNotFoundError:
        raise
    except OSError as err:
        raise ValueError(f"cannot read {str(path)!r}: {err.strerror or err}") from err


def _read_pickle(path: Path) -> Any:
    if not path.is_file():
        raise FileNotFoundError(f"missing CIFAR file {str(path)!r}")
    return safe_load(_read_data_file(path), str(path))


def _names(meta: Any, key: bytes, path: Path, count: int) -> tuple[str, ...]:
    raw = meta.get(key, meta.get(key.decode())) if isinstance(meta, dict) else None
    if not isinstance(raw, list) or len(raw) != count:
        raise ValueError(
            f"{str(path)!r} must hold a list of {count} class names under {key!r}"
        )
    names = []
    for index, name in enumerate(raw):
        try:
            text = name.decode("utf-8") if isinstance(name, bytes) else name
        except UnicodeDecodeError as err:
            raise ValueError(
                f"{str(path)!r}: class name {index} is not UTF-8 text: {short_repr(name, 60)}"
            ) from err
        if not isinstance(text, str):
            raise ValueError(
                f"{str(path)!r}: class names must be strings; found "
                f"{type(name).__name__} at index {index}"
            )
        names.append(text)
    return check_class_names(names, f"the class names of {str(path)!r}")


def _checked_labels(
    labels: Any, source: str, key: str, count: int, num_classes: int
) -> NDArray[np.int64]:
    """``labels`` of a dataset file as int64, one per image, each in range, or raise.

    The one check of labels read from a CIFAR batch, an ``.npz`` or IDX files:
    a list of ints or a 1-D integer array (no bools, floats or huge integers),
    ``count`` of them, each in ``[0, num_classes)``. ``source`` names the file.
    """
    if isinstance(labels, list):
        if not all(type(value) is int for value in labels):
            raise ValueError(
                f"{source}: labels must be integers; {key!r} holds other values"
            )
        try:
            array = np.asarray(labels, dtype=np.int64)
        except OverflowError as err:
            raise ValueError(f"{source}: {key!r} holds huge integers") from err
    elif isinstance(labels, np.ndarray) and labels.dtype.kind in "iu":
        array = labels.astype(np.int64)
    else:
        raise ValueError(
            f"{source}: {key!r} must be a list or 1-D array of integer labels; "
            f"found {_found(labels, 'an array of {0.dtype}')}"
        )
    if array.ndim != 1 or array.shape[0] != count:
        raise ValueError(
            f"{source}: {key!r} must hold one label per image ({count}); "
            f"found shape {array.shape}"
        )
    bad = np.flatnonzero((array < 0) | (array >= num_classes))
    if bad.size:
        raise ValueError(
            f"{source}: labels must be in [0, {num_classes}); found "
            f"{int(array[bad[0]])} at index {int(bad[0])}"
        )
    return array


def _found(value: object, array_format: str) -> str:
    """How an error names ``value``: ``array_format`` of an array, else its type."""
    if isinstance(value, np.ndarray):
        return array_format.format(value)
    return type(value).__name__


def _read_cifar_batch(path: Path, label_key: bytes, num_classes: int) -> Split:
    batch = _read_pickle(path)
    if not isinstance(batch, dict):
        raise ValueError(
            f"{str(path)!r} must hold a dict; found {type(batch).__name__}"
        )
    data = batch.get(b"data", batch.get("data"))
    labels = batch.get(label_key, batch.get(label_key.decode()))
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2:
        raise ValueError(
            f"{str(path)!r}: 'data' must be a uint8 array of shape (n, 3072); "
            f"found {_found(data, '{0.dtype} {0.shape}')}"
        )
    if data.shape[1] != 3072:
        raise ValueError(
            f"{str(path)!r}: 'data' must have 3072 columns (32x32x3); found "
            f"shape {data.shape}"
        )
    integer_labels = _checked_labels(
        labels, repr(str(path)), label_key.decode(), int(data.shape[0]), num_classes
    )
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return Split(np.ascontiguousarray(images), integer_labels)


def _read_idx(path: Path) -> NDArray[np.uint8]:
    raw = _read_gzip(path) if path.suffix == ".gz" else _read_data_file(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(
            f"{str(path)!r} is not an IDX file of unsigned bytes (its first bytes "
            f"are {raw[:4]!r})"
        )
    dims = raw[3]
    if not 1 <= dims <= 4 or len(raw) < 4 + 4 * dims:
        raise ValueError(
            f"{str(path)!r} is not a valid IDX file: its header announces {dims} "
            "dimensions"
        )
    shape = tuple(
        int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)
    )
    body = len(raw) - 4 - 4 * dims
    if body != math.prod(shape):
        raise ValueError(
            f"{str(path)!r} is truncated or not a valid IDX file: the header says "
            f"shape {shape} ({math.prod(shape):,} bytes) but {body:,} bytes follow"
        )
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)


def _read_gzip(path: Path) -> bytes:
    """Decompress ``path`` into memory, refusing more than ``max_data_file_bytes``."""
    maximum = limit("max_data_file_bytes")
    compressed = _read_data_file(path)
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(compressed)) as handle:
            raw = handle.read(maximum + 1)
    except (OSError, EOFError, zlib.error) as err:
        raise ValueError(
            f"cannot decompress {str(path)!r} (truncated or not gzip): {err}"
        ) from err
    if len(raw) > maximum:
        raise ValueError(
            f"{str(path)!r} decompresses to more than {maximum:,} bytes; raise "
            "KERASIMGCLS_MAX_DATA_FILE_BYTES if that is intended"
        )
    return raw


def _read_npz(path: Path) -> dict[str, NDArray[Any]]:
    """The four MNIST arrays of an ``.npz``, each checked before it is read."""
    keys = ("x_train", "y_train", "x_test", "y_test")
    maximum = limit("max_data_file_bytes")
    try:
        with np.load(path, allow_pickle=False) as stored:
            missing = set(keys) - set(stored.files)
            if missing:
                raise ValueError(f"{str(path)!r} lacks the arrays {sorted(missing)}")
            for key in keys:
                size = stored.zip.getinfo(f"{key}.npy").file_size
                if size > maximum:
                    raise ValueError(
                        f"{str(path)!r}: {key} unpacks to {size:,} bytes, more than "
                        f"the {maximum:,} allowed (KERASIMGCLS_MAX_DATA_FILE_BYTES)"
                    )
            return {key: stored[key] for key in keys}
    except (OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as err:
        raise ValueError(
            f"cannot read {str(path)!r} (truncated or not an .npz of "
            f"x_train/y_train/x_test/y_test): {err}"
        ) from err


def _find_idx(folder: Path) -> dict[str, Path] | None:
    found: dict[str, Path] = {}
    for key, stem in _IDX_FILES.items():
        for candidate in (folder / f"{stem}.gz", folder / stem):
            if candidate.is_file():
                found[key] = candidate
                break
    return found if len(found) == 4 else None


def _load_mnist_like(
    location: Path,
    names: Sequence[str],
    name: str,
    validation_split: float,
    seed: int,
) -> ImageDataset:
    arrays: dict[str, NDArray[Any]]
    if location.is_dir() and _is_image_folder(location):
        return _from_image_folder(location, None, validation_split, seed, "grayscale")
    npz = (
        location
        if location.is_file()
        else next(iter(sorted(location.glob("*.npz"))), None)
    )
    idx = _find_idx(location) if location.is_dir() else None
    if idx is not None:
        arrays = {key: _read_idx(path) for key, path in idx.items()}
    elif npz is not None:
        arrays = _read_npz(npz)
    else:
        raise FileNotFoundError(
            f"{str(location)!r} holds neither an .npz with x_train/y_train/x_test/"
            f"y_test, the IDX files ({', '.join(_IDX_FILES.values())}, optionally "
            ".gz), nor a train/<class>/ image folder"
        )
    splits = {}
    for part in ("train", "test"):
        images, labels = arrays[f"x_{part}"], arrays[f"y_{part}"]
        if images.dtype != np.uint8 or images.ndim != 3:
            raise ValueError(
                f"{name} x_{part} must be uint8 of shape (n, height, width); found "
                f"{images.dtype} {images.shape}"
            )
        source = f"the {name} data in {str(location)!r}"
        checked = _checked_labels(
            labels, source, f"y_{part}", int(images.shape[0]), len(names)
        )
        splits[part] = Split(images[..., np.newaxis], checked)
    return _assemble(
        splits["train"], splits["test"], tuple(names), name, validation_split, seed
    )


def _from_image_folder(
    location: Path,
    class_names: Sequence[str] | None,
    validation_split: float,
    seed: int,
    color_mode: Literal["rgb", "grayscale"] = "rgb",
) -> ImageDataset:
    from kerasimgcls.data._image_folder import load_image_folder

    folders = {p.name for p in (location / "train").iterdir() if p.is_dir()}
    use_names = class_names if class_names and folders == set(class_names) else None
    return load_image_folder(
        location,
        class_names=use_names,
        color_mode=color_mode,
        validation_split=validation_split,
        seed=seed,
    )


def _assemble(
    train: Split,
    test: Split,
    names: tuple[str, ...],
    name: str,
    validation_split: float,
    seed: int,
) -> ImageDataset:
    train_split, validation = train_validation_split(train, validation_split, seed)
    return ImageDataset(train_split, validation, test, names, name)
