"""Load a folder of class sub-folders of images, decoding each file once and caching."""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from kerasimgcls._io import atomic_path, write_json_atomic
from kerasimgcls._validation import (
    check_choice,
    check_image_size,
    check_memory_for,
    check_path_exists,
    check_positive_int,
    check_rate,
    check_seed,
    printable,
)
from kerasimgcls.data._dataset import ImageDataset, Split
from kerasimgcls.data._files import (
    ASPECTS,
    CHANNELS,
    INTERPOLATIONS,
    Aspect,
    ColorMode,
    DecodeResult,
    FolderScan,
    Interpolation,
    decode_file,
    default_workers,
    scan_folder,
)
from kerasimgcls.data._split import stratified_indices

__all__ = ["default_cache_dir", "load_image_folder", "split_layout"]

logger = logging.getLogger(__name__)

_CACHE_FORMAT = 1
_SPLIT_FOLDERS = ("train", "test", "validation", "val")


def default_cache_dir() -> Path:
    """Where decoded image folders are cached unless ``cache=`` says otherwise.

    ``$KERASIMGCLS_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/kerasimgcls``, else
    ``~/.cache/kerasimgcls``.
    """
    explicit = os.environ.get("KERASIMGCLS_CACHE_DIR")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "kerasimgcls"


@dataclass(frozen=True)
class _Options:
    image_size: tuple[int, int] | None
    color_mode: str
    interpolation: str
    aspect: str
    on_error: str
    workers: int
    cache_dir: Path | None


def load_image_folder(
    path: str | os.PathLike[str],
    *,
    image_size: int | tuple[int, int] | None = None,
    color_mode: ColorMode = "rgb",
    validation_split: float = 0.1,
    seed: int = 0,
    class_names: Sequence[str] | None = None,
    interpolation: Interpolation = "bilinear",
    aspect: Aspect = "stretch",
    on_error: Literal["raise", "skip"] = "raise",
    cache: bool | str | os.PathLike[str] = True,
    workers: int | None = None,
    name: str | None = None,
) -> ImageDataset:
    """Load a folder of images laid out one sub-folder per class.

    ``path/<class>/<file>`` (JPEG, PNG, BMP or GIF; deeper sub-folders belong to
    their class) becomes the training data, classes in sorted folder order. If
    ``path`` instead holds ``train/`` and optionally ``test/`` (and ``validation/``
    or ``val/``), each with the class folders, those become the splits; otherwise
    there is no test split. The validation split is carved from the training images
    (stratified, seeded) unless a validation folder exists.

    Grayscale, RGB, RGBA and palette files may be mixed: every image comes out with
    the channels of ``color_mode`` (alpha is dropped for ``"rgb"``). Files with other
    extensions (``.DS_Store``, ``.txt``, ...) are skipped.

    Each file is decoded once, by a thread pool, and the uint8 result is cached
    (an ``.npz`` file written atomically, one per folder and options). The cache is
    used only while the folder's list of files, their sizes and modification times
    and the options are unchanged, so a later load costs a file listing and one
    read. Use :func:`check_image_folder` for a full report of a folder's problems.

    Args:
        path: The folder.
        image_size: ``(height, width)`` (or one int for a square) to resize every
            image to. ``None`` keeps the files' size, which must then be the same for
            every file; :func:`choose_image_size` picks a size from a folder of
            mixed sizes (the command line's rule).
        color_mode: ``"rgb"`` (3 channels), ``"grayscale"`` (1) or ``"rgba"`` (4).
        validation_split: Fraction of the training images held out for validation,
            stratified by class, in ``[0, 1)``.
        seed: Seed of the validation split.
        class_names: Class folders to use, in label order; default: every
            sub-folder, sorted by name.
        interpolation: Resampling filter used by ``image_size``.
        aspect: How ``image_size`` treats an image of another aspect ratio:
            ``"stretch"`` resizes it as it is, ``"crop"`` cuts the largest centred
            window of the target ratio first, ``"pad"`` pads it with black to the
            ratio first (Keras' ``crop_to_aspect_ratio`` and
            ``pad_to_aspect_ratio``). Recorded in :attr:`ImageDataset.resize`,
            and by a run in its model, so ``predict`` resizes the same way.
        on_error: ``"raise"`` stops at the first file that cannot be decoded and
            names it; ``"skip"`` leaves such files out with a warning (the files
            are never modified or deleted).
        cache: ``True`` caches in :func:`default_cache_dir`, a path caches in that
            folder, ``False`` turns the cache off.
        workers: Decoding threads; default: two per CPU core (at most 16).
        name: Name recorded in runs; default: the folder's name.

    Returns:
        The dataset, images uint8 of shape ``(n, height, width, channels)``.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        NotADirectoryError: If ``path`` is not a folder.
        ValueError: If an argument is out of range, the folder has no class
            sub-folders or no images, a file cannot be decoded (with
            ``on_error="raise"``; the message names the file), or files differ in
            size while ``image_size`` is ``None``.
        TypeError: If ``image_size`` or ``workers`` has the wrong type.

    Example:
        >>> from kerasimgcls import load_image_folder
        >>> data = load_image_folder("pets/", image_size=64)  # doctest: +SKIP
        >>> data.class_names, data.input_shape  # doctest: +SKIP
        (('cat', 'dog'), (64, 64, 3))
    """
    root = check_path_exists(path, "path", kind="dir")
    options = _check_options(
        image_size, color_mode, (interpolation, aspect), on_error, cache, workers
    )
    validation_split = check_rate(validation_split, "validation_split")
    seed = check_seed(seed, "seed")
    layout = split_layout(root)
    train = _load_split(layout.get("train", root), class_names, options)
    names = train.class_names
    for split in ("test", "validation"):
        if split in layout and class_names is None:
            _check_same_classes(layout[split], names)
    test = _load_split(layout["test"], names, options) if "test" in layout else None
    validation: Split | None = None
    if "validation" in layout:
        validation = _load_split(layout["validation"], names, options).everything()
        train_split = train.everything()
    elif validation_split == 0.0:
        train_split = train.everything()
    else:
        keep, held_out = stratified_indices(train.labels, validation_split, seed)
        train_split, validation = train.take([keep, held_out])
    return ImageDataset(
        train_split,
        validation,
        test.everything() if test is not None else None,
        names,
        name or root.resolve().name,
        resize={"interpolation": options.interpolation, "aspect": options.aspect},
    )


@dataclass(frozen=True)
class _Loaded:
    """Pixels of one folder: in memory, or memory-mapped from the cache file."""

    images: NDArray[np.uint8]
    labels: NDArray[np.int64]
    class_names: tuple[str, ...]

    def everything(self) -> Split:
        (split,) = self.take([np.arange(len(self.labels))])
        return split

    def take(self, parts: Sequence[NDArray[np.int64]]) -> list[Split]:
        """Return one in-memory :class:`Split` per sorted index array of ``parts``."""
        if not isinstance(self.images, np.memmap):
            if len(parts) == 1 and len(parts[0]) == len(self.labels):
                return [Split(self.images, self.labels)]
            return [Split(self.images[part], self.labels[part]) for part in parts]
        return [
            Split(images, self.labels[part])
            for images, part in zip(_read_rows(self.images, parts), parts, strict=True)
        ]


def _read_rows(
    mapped: np.memmap[Any, np.dtype[np.uint8]], parts: Sequence[NDArray[np.int64]]
) -> list[NDArray[np.uint8]]:
    """Copy the rows ``parts`` of a cached ``.npy`` into new arrays, in chunks.

    Reading the file in blocks and scattering each block to its destination keeps
    the peak memory at the size of the result plus one block (fancy-indexing the
    memory map would also keep every page of the file resident).
    """
    count = mapped.shape[0]
    destination = np.full(count, -1, dtype=np.int64)
    position = np.zeros(count, dtype=np.int64)
    outputs = []
    for number, part in enumerate(parts):
        destination[part] = number
        position[part] = np.arange(len(part))
        outputs.append(np.empty((len(part), *mapped.shape[1:]), dtype=np.uint8))
    row_bytes = int(np.prod(mapped.shape[1:]))
    block_rows = max(1, (16 << 20) // row_bytes)
    block = np.empty((min(block_rows, count), *mapped.shape[1:]), dtype=np.uint8)
    assert mapped.filename is not None
    with open(mapped.filename, "rb") as handle:
        handle.seek(mapped.offset)
        for start in range(0, count, block_rows):
            rows = min(block_rows, count - start)
            view = block[:rows]
            if handle.readinto(view.reshape(-1).data) != view.nbytes:
                raise OSError(f"cache file {mapped.filename!r} is truncated")
            where = destination[start : start + rows]
            for number, output in enumerate(outputs):
                chosen = where == number
                output[position[start : start + rows][chosen]] = view[chosen]
    return outputs


def _check_options(
    image_size: object,
    color_mode: object,
    resize: tuple[object, object],
    on_error: object,
    cache: object,
    workers: object,
) -> _Options:
    size = None if image_size is None else check_image_size(image_size, "image_size")
    interpolation, aspect = resize
    check_choice(color_mode, "color_mode", tuple(CHANNELS))
    check_choice(interpolation, "interpolation", INTERPOLATIONS)
    check_choice(aspect, "aspect", ASPECTS)
    check_choice(on_error, "on_error", ("raise", "skip"))
    threads = (
        default_workers() if workers is None else check_positive_int(workers, "workers")
    )
    cache_dir: Path | None
    if cache is True:
        cache_dir = default_cache_dir()
    elif cache is False or cache is None:
        cache_dir = None
    elif isinstance(cache, str | os.PathLike):
        cache_dir = Path(cache)
    else:
        raise TypeError(
            f"cache must be True, False or a folder path; received cache={cache!r}"
        )
    return _Options(
        size,
        str(color_mode),
        str(interpolation),
        str(aspect),
        str(on_error),
        threads,
        cache_dir,
    )


def split_layout(root: Path) -> dict[str, Path]:
    """Return ``{"train": ..., "test": ..., "validation": ...}`` for a split layout.

    ``root`` has a split layout when it holds ``train/`` (with class folders) and
    nothing else, or ``train/`` beside ``test/``, ``validation/`` or ``val/``.
    Other folders beside those are not classes: they are left out, with a
    warning that names them (a ``notes/`` folder beside ``train/`` and ``test/``
    would otherwise turn the layout into three classes, ``notes``, ``test`` and
    ``train``). Without a split layout the result is ``{}``: ``root``'s folders
    are the classes.
    """
    folders = {
        entry.name: Path(entry.path)
        for entry in os.scandir(root)
        if entry.is_dir() and not entry.name.startswith(".")
    }
    if "train" not in folders:
        return {}
    has_classes = any(
        entry.is_dir() and not entry.name.startswith(".")
        for entry in os.scandir(folders["train"])
    )
    others = sorted(set(folders) - set(_SPLIT_FOLDERS))
    splits = set(folders) & {"test", "validation", "val"}
    if not has_classes or (others and not splits):
        return {}
    if others:
        warnings.warn(
            f"{str(root)!r} holds train/ and {', '.join(sorted(splits))}/, so "
            f"it is read as a split layout; the folder(s) {others} beside them are "
            "not read (move them out to silence this)",
            stacklevel=3,
        )
    layout = {"train": folders["train"]}
    if "test" in folders:
        layout["test"] = folders["test"]
    for candidate in ("validation", "val"):
        if candidate in folders:
            layout["validation"] = folders[candidate]
            break
    return layout


def _check_same_classes(split: Path, class_names: Sequence[str]) -> None:
    """Refuse a test or validation folder with a class that ``train/`` lacks.

    Its images would otherwise be dropped without a word.

    Raises:
        ValueError: If ``split`` has a class folder not in ``class_names``.
    """
    extra = sorted(
        entry.name
        for entry in os.scandir(split)
        if _is_folder(entry)
        and not entry.name.startswith(".")
        and entry.name not in class_names
    )
    if extra:
        shown = [printable(name) for name in extra[:5]]
        raise ValueError(
            f"{str(split)!r} has class folder(s) {shown} that the training folder "
            "does not have, so their images would be left out; add them to train/ "
            "or remove them"
        )


def _is_folder(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:
        return False


def _load_split(
    root: Path, class_names: Sequence[str] | None, options: _Options
) -> _Loaded:
    scan = scan_folder(root, class_names)
    if not scan.files:
        raise ValueError(
            f"{str(root)!r} has class folders {list(scan.class_names)} but no image "
            f"files (allowed extensions: .bmp, .gif, .jpeg, .jpg, .png)"
        )
    key = _content_key(scan, options)
    cache_stem = _cache_stem(scan.root, options)
    cached = _read_cache(cache_stem, key, scan) if cache_stem is not None else None
    if cached is not None:
        images, labels, failed = cached
        logger.info("loaded %d images of %s from the cache", len(labels), root)
    else:
        start = time.perf_counter()
        images, labels, failed = _decode_folder(scan, options)
        elapsed = time.perf_counter() - start
        logger.info(
            "decoded %d images of %s in %.2f s (%.0f images/s)",
            len(scan.files),
            root,
            elapsed,
            len(scan.files) / max(elapsed, 1e-9),
        )
        if cache_stem is not None:
            _write_cache(cache_stem, key, images, labels, failed)
    if failed:
        shown = ", ".join(failed[:5]) + (", ..." if len(failed) > 5 else "")
        warnings.warn(
            f"skipped {len(failed)} file(s) of {str(root)!r} that could not be "
            f"decoded: {shown}. Run `kerasimgcls doctor` on the folder for details.",
            stacklevel=3,
        )
    if images.shape[0] == 0:
        raise ValueError(f"no image in {str(root)!r} could be decoded")
    _warn_empty_classes(root, scan.class_names, labels)
    return _Loaded(images, labels, scan.class_names)


def _warn_empty_classes(
    root: Path, class_names: tuple[str, ...], labels: NDArray[np.int64]
) -> None:
    counts = np.bincount(labels, minlength=len(class_names))
    empty = [name for name, count in zip(class_names, counts, strict=True) if not count]
    if empty:
        warnings.warn(
            f"class folder(s) {empty} of {str(root)!r} have no (decodable) image; "
            "they stay classes of the dataset with 0 images. Add images, or pass "
            "class_names=[...] without them to leave them out.",
            stacklevel=4,
        )


def _decode_folder(
    scan: FolderScan, options: _Options
) -> tuple[NDArray[np.uint8], NDArray[np.int64], list[str]]:
    """Decode every file into one preallocated array, a chunk of files per task.

    The workers write straight into the result, so the main thread does no work
    per image (it would compete with them for the GIL). Problems are collected per
    chunk and reported in file order, so ``on_error="raise"`` names the same file
    whatever the number of threads.
    """
    decode = functools.partial(
        decode_file,
        color_mode=options.color_mode,
        image_size=options.image_size,
        interpolation=options.interpolation,
        aspect=options.aspect,
    )
    count = len(scan.files)
    failures: dict[int, str] = {}
    # The first decodable file fixes the shape of the array.
    first, image = _first_decodable(scan, decode, failures, options)
    if image is None:
        channels = CHANNELS[options.color_mode]
        height, width = options.image_size or (1, 1)
        failed = [scan.relative[i] for i in sorted(failures)]
        return np.zeros((0, height, width, channels), np.uint8), scan.labels[:0], failed
    check_memory_for((count, *image.shape), f"the images of {str(scan.root)!r}")
    images = np.empty((count, *image.shape), dtype=np.uint8)
    images[first] = image
    good = np.zeros(count, dtype=bool)
    good[first] = True
    decode_range = functools.partial(_decode_range, decode, scan.files, images, good)
    rest = range(first + 1, count)
    size = max(16, min(256, len(rest) // (options.workers * 4) or 1))
    bounds = [(start, min(start + size, count)) for start in rest[::size]]
    if options.workers <= 1 or len(bounds) <= 1:
        for start, stop in bounds:
            failures.update(decode_range(start, stop))
            _raise_if_needed(scan, failures, options, images, first)
    else:
        _decode_in_threads(decode_range, bounds, scan, failures, options, images, first)
    failed = [scan.relative[i] for i in sorted(failures)]
    if failed:
        return images[good], scan.labels[good], failed
    return images, scan.labels.copy(), failed


def _first_decodable(
    scan: FolderScan,
    decode: Callable[[str], DecodeResult],
    failures: dict[int, str],
    options: _Options,
) -> tuple[int, NDArray[np.uint8] | None]:
    """Decode files in order up to the first that decodes: its index and image.

    The image is ``None`` when none decodes; the others' errors go to ``failures``.
    """
    first = 0
    while first < len(scan.files):
        result = decode(scan.files[first])
        if result.image is not None:
            return first, result.image
        failures[first] = str(result.error)
        _raise_if_needed(scan, failures, options)
        first += 1
    return first, None


def _decode_range(
    decode: Callable[[str], DecodeResult],
    files: Sequence[str],
    images: NDArray[np.uint8],
    good: NDArray[np.bool_],
    start: int,
    stop: int,
) -> dict[int, str]:
    """Decode ``files[start:stop]`` into ``images``; the problems by index.

    A file of another size than the first image stops the chunk.
    """
    shape = images.shape[1:]
    problems: dict[int, str] = {}
    for index in range(start, stop):
        decoded = decode(files[index])
        if decoded.image is None:
            problems[index] = str(decoded.error)
        elif decoded.image.shape != shape:
            problems[index] = _SIZE_MISMATCH
            break
        else:
            images[index] = decoded.image
            good[index] = True
    return problems


def _decode_in_threads(
    decode_range: Callable[[int, int], dict[int, str]],
    bounds: list[tuple[int, int]],
    scan: FolderScan,
    failures: dict[int, str],
    options: _Options,
    images: NDArray[np.uint8],
    first: int,
) -> None:
    """Run ``decode_range`` over ``bounds`` on ``options.workers`` threads."""
    with ThreadPoolExecutor(
        options.workers, thread_name_prefix="kerasimgcls-decode"
    ) as pool:
        futures = [pool.submit(decode_range, *bound) for bound in bounds]
        try:
            for future in futures:
                failures.update(future.result())
                _raise_if_needed(scan, failures, options, images, first)
        except BaseException:
            for future in futures:
                future.cancel()
            raise


_SIZE_MISMATCH = "\x00size mismatch"


def _raise_if_needed(
    scan: FolderScan,
    failures: dict[int, str],
    options: _Options,
    images: NDArray[np.uint8] | None = None,
    first: int = 0,
) -> None:
    """Raise for the first failure in file order that must stop the load."""
    for index in sorted(failures):
        reason = failures[index]
        path = scan.files[index]
        if reason == _SIZE_MISMATCH and images is not None:
            size = decode_file(
                path, color_mode=options.color_mode, image_size=options.image_size
            )
            found = size.image.shape[:2] if size.image is not None else "?"
            raise ValueError(
                f"images differ in size: {path!r} is {found} but "
                f"{scan.files[first]!r} is {images.shape[1:3]} (height, width). Pass "
                "image_size=(height, width) to resize every image to one size."
            )
        if options.on_error == "raise" and reason != _SIZE_MISMATCH:
            raise ValueError(
                f"cannot decode image file {path!r}: {reason}. Pass "
                "on_error='skip' to leave undecodable files out, or run "
                "`kerasimgcls doctor` on the folder to list every problem."
            )


# --- cache -------------------------------------------------------------------------


def _options_text(options: _Options) -> str:
    described: dict[str, Any] = {
        "format": _CACHE_FORMAT,
        "image_size": options.image_size,
        "color_mode": options.color_mode,
        "interpolation": options.interpolation,
        "on_error": options.on_error,
    }
    # Cropping or padding changes the pixels of a resize; stretching is what every
    # cache written before the option was, so its entries keep their keys.
    if options.aspect != "stretch" and options.image_size is not None:
        described["aspect"] = options.aspect
    return json.dumps(described, sort_keys=True)


def _content_key(scan: FolderScan, options: _Options) -> str:
    digest = hashlib.sha256(_options_text(options).encode())
    digest.update("\x1f".join(scan.class_names).encode())
    lines = [
        f"{relative}\x1f{label}\x1f{size}\x1f{mtime}\n"
        for relative, label, (size, mtime) in zip(
            scan.relative, scan.labels.tolist(), scan.stats, strict=True
        )
    ]
    # File names that are not UTF-8 arrive as surrogate escapes; keep their bytes.
    digest.update("".join(lines).encode("utf-8", "surrogateescape"))
    return digest.hexdigest()


def _cache_stem(root: Path, options: _Options) -> Path | None:
    """``<cache_dir>/image_folders/<folder>-<hash of path and options>``."""
    if options.cache_dir is None:
        return None
    resolved = root.resolve()
    identity = f"{resolved}\x1f{_options_text(options)}"
    digest = hashlib.sha256(identity.encode("utf-8", "surrogateescape")).hexdigest()
    digest = digest[:20]
    return options.cache_dir / "image_folders" / f"{resolved.name}-{digest}"


# A cache entry is a small JSON index (the content key, labels, skipped files and
# the name of the pixel file) plus the pixels as a plain ``.npy`` file whose name
# carries the content key. The ``.npy`` is memory-mapped on load, so reading it
# and carving the splits out of it is one pass over the bytes. Both files are
# written atomically, pixels first; an index is trusted only if its key matches.


def _read_cache(
    stem: Path, key: str, scan: FolderScan
) -> tuple[NDArray[np.uint8], NDArray[np.int64], list[str]] | None:
    """The cached pixels of ``scan``, or ``None`` to decode the folder again.

    The index is a file anyone may edit, so nothing in it is taken on trust: the
    labels are those of the folder's files (the scan) less the failed ones, and
    an index whose labels or failed files disagree with the scan, or whose pixel
    file has another number of images, is ignored (and rewritten).
    """
    index_file = stem.with_suffix(".json")
    try:
        index = json.loads(index_file.read_text(encoding="utf-8"))
        if index.get("key") != key:
            return None
        images_file = _images_file_of(stem, index)
        if images_file is None:
            logger.warning("ignoring cache %s: it names an unexpected file", index_file)
            return None
        images = np.load(images_file, mmap_mode="r")
        stored_labels, failed = index["labels"], index["failed"]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        logger.warning("ignoring unreadable cache %s: %s", index_file, err)
        return None
    labels = _labels_without(scan, failed)
    if (
        labels is None
        or not isinstance(stored_labels, list)
        or [type(value) for value in stored_labels] != [int] * len(labels)
        or stored_labels != labels.tolist()
        or images.dtype != np.uint8
        or images.ndim != 4
        or len(images) != len(labels)
    ):
        logger.warning("ignoring inconsistent cache %s", index_file)
        return None
    return images, labels, list(failed)


def _labels_without(scan: FolderScan, failed: object) -> NDArray[np.int64] | None:
    """The scan's labels less those of the ``failed`` files; ``None`` if not files."""
    if not isinstance(failed, list) or len(set(map(str, failed))) != len(failed):
        return None
    position = {relative: number for number, relative in enumerate(scan.relative)}
    if not all(isinstance(item, str) and item in position for item in failed):
        return None
    keep = np.ones(len(scan.relative), dtype=bool)
    keep[[position[item] for item in failed]] = False
    return scan.labels[keep]


def _write_cache(
    stem: Path,
    key: str,
    images: NDArray[np.uint8],
    labels: NDArray[np.int64],
    failed: list[str],
) -> None:
    images_file = stem.parent / f"{stem.name}-{key[:16]}.npy"
    index = {
        "format": _CACHE_FORMAT,
        "key": key,
        "images": images_file.name,
        "shape": list(images.shape),
        "labels": labels.tolist(),
        "failed": failed,
    }
    try:
        with atomic_path(images_file) as tmp:
            np.save(tmp, images, allow_pickle=False)
        previous = _previous_images_file(stem)
        write_json_atomic(stem.with_suffix(".json"), index)
        if previous is not None and previous != images_file:
            previous.unlink(missing_ok=True)
    except OSError as err:
        warnings.warn(
            f"could not write the image cache in {str(stem.parent)!r}: {err}. "
            "Loading works but decodes the files again next time; pass cache=False "
            "to silence this or cache=<writable folder>.",
            stacklevel=4,
        )


def _previous_images_file(stem: Path) -> Path | None:
    try:
        index = json.loads(stem.with_suffix(".json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return _images_file_of(stem, index)


def _images_file_of(stem: Path, index: object) -> Path | None:
    """The pixel file an index names, if it is one this cache writes for ``stem``.

    The name is read from a file anyone may edit, so it must be exactly
    ``<stem>-<16 hex digits>.npy`` beside the index: never a path elsewhere
    (``../../victim``), which the next cache rewrite would otherwise delete.
    """
    name = index.get("images") if isinstance(index, dict) else None
    if not isinstance(name, str) or not _IMAGES_FILE.fullmatch(name):
        return None
    if not name.startswith(f"{stem.name}-") or len(name) != len(stem.name) + 21:
        return None
    return stem.parent / name


_IMAGES_FILE = re.compile(r"[^/\\\x00]+-[0-9a-f]{16}\.npy")
