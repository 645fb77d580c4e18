"""Finding and decoding image files: the shared core of the folder loader and checker.

Decoding uses Pillow, one file at a time in a thread pool (Pillow releases the GIL
while it decodes). A JPEG that is larger than the requested size is decoded at a
reduced scale first (Pillow's draft mode), which is much cheaper than decoding it
fully and shrinking it afterwards.
"""

from __future__ import annotations

import io
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "IMAGE_EXTENSIONS",
    "ColorMode",
    "DecodeResult",
    "FolderScan",
    "decode_file",
    "decode_many",
    "scan_folder",
]

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
ColorMode = Literal["rgb", "grayscale", "rgba"]
Interpolation = Literal["nearest", "bilinear", "bicubic", "lanczos", "box"]
CHANNELS = {"grayscale": 1, "rgb": 3, "rgba": 4}
_PIL_MODES = {"grayscale": "L", "rgb": "RGB", "rgba": "RGBA"}


@dataclass(frozen=True)
class FolderScan:
    """The files of one folder of class sub-folders, in a fixed order.

    Paths are plain strings (``pathlib`` costs seconds on 50,000 files).

    Attributes:
        root: The folder.
        class_names: Class folder names in label order.
        files: Image paths, grouped by class, sorted by name within a class.
        relative: The same paths relative to ``root``, ``/``-separated.
        labels: Class index of each file.
        stats: ``(size, mtime_ns)`` of each file, for cache keys.
        skipped: Files that are not images by their extension (``.DS_Store``, ...).
        empty_classes: Class folders with no image file.
    """

    root: Path
    class_names: tuple[str, ...]
    files: tuple[str, ...]
    relative: tuple[str, ...]
    labels: NDArray[np.int64]
    stats: tuple[tuple[int, int], ...]
    skipped: tuple[str, ...]
    empty_classes: tuple[str, ...]


def _sorted_entries(path: str) -> list[os.DirEntry[str]]:
    with os.scandir(path) as entries:
        return sorted(entries, key=lambda entry: entry.name)


def scan_folder(root: Path, class_names: Sequence[str] | None = None) -> FolderScan:
    """List the image files of ``root``, one sub-folder per class.

    Files directly in ``root`` and files with other extensions are recorded as
    skipped; hidden folders are ignored. Sub-folders of a class folder are searched
    too (their images belong to the class).

    Raises:
        ValueError: If ``root`` has no class sub-folder, or ``class_names`` names a
            folder that does not exist.
    """
    top = _sorted_entries(str(root))
    folders = [e.name for e in top if e.is_dir() and not e.name.startswith(".")]
    scan = _Collector()
    scan.skipped.extend(e.path for e in top if not e.is_dir())
    if class_names is None:
        names = tuple(folders)
    else:
        names = tuple(str(name) for name in class_names)
        missing = [name for name in names if name not in folders]
        if missing:
            raise ValueError(
                f"class_names lists folders that do not exist in {str(root)!r}: "
                f"{missing}; the class folders there are {folders}"
            )
    if not names:
        raise ValueError(
            f"{str(root)!r} has no class sub-folders; expected a layout such as "
            "root/cat/001.jpg, root/dog/002.png"
        )
    empty: list[str] = []
    for label, name in enumerate(names):
        before = len(scan.files)
        scan.collect(os.path.join(root, name), name, label)
        if len(scan.files) == before:
            empty.append(name)
    return FolderScan(
        root=root,
        class_names=names,
        files=tuple(scan.files),
        relative=tuple(scan.relative),
        labels=np.asarray(scan.labels, dtype=np.int64),
        stats=tuple(scan.stats),
        skipped=tuple(scan.skipped),
        empty_classes=tuple(empty),
    )


class _Collector:
    def __init__(self) -> None:
        self.files: list[str] = []
        self.relative: list[str] = []
        self.labels: list[int] = []
        self.stats: list[tuple[int, int]] = []
        self.skipped: list[str] = []

    def collect(self, folder: str, relative: str, label: int) -> None:
        for entry in _sorted_entries(folder):
            name = entry.name
            if entry.is_dir():
                if not name.startswith("."):
                    self.collect(entry.path, f"{relative}/{name}", label)
            elif name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith("."):
                info = entry.stat()
                self.files.append(entry.path)
                self.relative.append(f"{relative}/{name}")
                self.labels.append(label)
                self.stats.append((int(info.st_size), int(info.st_mtime_ns)))
            else:
                self.skipped.append(entry.path)


@dataclass(frozen=True)
class DecodeResult:
    """What decoding one file gave: the pixels or the reason it failed.

    Attributes:
        image: uint8 array ``(height, width, channels)``, or ``None`` on failure.
        error: Why the file could not be decoded, or ``None``.
        original_size: ``(height, width)`` before resizing, or ``None``.
        original_mode: Pillow's mode of the file (``"L"``, ``"RGB"``, ``"P"``, ...).
        file_format: Pillow's format name (``"JPEG"``, ``"PNG"``, ...).
    """

    image: NDArray[np.uint8] | None
    error: str | None = None
    original_size: tuple[int, int] | None = None
    original_mode: str | None = None
    file_format: str | None = None


def _to_mode(image: Any, color_mode: str) -> Any:
    from PIL import Image

    target = _PIL_MODES[color_mode]
    if image.mode == target:
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # Pillow clips 16-bit values when converting to "L"; scale them instead.
        wide = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if wide.max() > 255 else 255.0
        image = Image.fromarray(np.rint(wide * (255.0 / peak)).astype(np.uint8), "L")
    elif image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    return image if image.mode == target else image.convert(target)


_FORMAT_BY_EXTENSION = {
    ".bmp": "BMP",
    ".gif": "GIF",
    ".jpeg": "JPEG",
    ".jpg": "JPEG",
    ".png": "PNG",
}


def _open(data: bytes, path: str) -> Any:
    from PIL import Image, UnidentifiedImageError

    # Telling Pillow the format skips probing every plugin: twice as fast to open.
    # A file whose content does not match its extension is still opened.
    hint = _FORMAT_BY_EXTENSION.get(os.path.splitext(path)[1].lower())
    if hint is not None:
        try:
            return Image.open(io.BytesIO(data), formats=[hint])
        except UnidentifiedImageError:
            pass
    return Image.open(io.BytesIO(data))


def decode_file(
    path: str | os.PathLike[str],
    *,
    color_mode: str = "rgb",
    image_size: tuple[int, int] | None = None,
    interpolation: str = "bilinear",
) -> DecodeResult:
    """Decode one image file to uint8 pixels with the requested channels and size.

    Never raises for a bad file: the failure is returned as ``DecodeResult.error``.
    """
    from PIL import Image, UnidentifiedImageError

    path = os.fspath(path)
    try:
        with open(path, "rb") as handle:
            data = handle.read()
        if not data:
            return DecodeResult(None, "empty file (0 bytes)")
        fast = _decode_small_jpeg(data, color_mode, image_size)
        if fast is not None:
            return fast
        with _open(data, path) as image:
            file_format = image.format
            original_mode = image.mode
            original_size = (int(image.height), int(image.width))
            if image_size is not None and file_format == "JPEG":
                image.draft(_PIL_MODES[color_mode], (image_size[1], image_size[0]))
            image.load()
            converted = _to_mode(image, color_mode)
            if image_size is not None and converted.size != (
                image_size[1],
                image_size[0],
            ):
                resample = getattr(Image.Resampling, interpolation.upper())
                converted = converted.resize((image_size[1], image_size[0]), resample)
            width, height = converted.size
            # tobytes + frombuffer is much faster than np.asarray(image) here.
            pixels = np.frombuffer(converted.tobytes(), dtype=np.uint8).reshape(
                height, width, len(converted.getbands())
            )
    except UnidentifiedImageError:
        reason = "not an image Pillow can identify (wrong extension or corrupt)"
        return DecodeResult(None, reason)
    except (OSError, SyntaxError, ValueError, EOFError) as err:
        return DecodeResult(None, str(err) or type(err).__name__)
    except Image.DecompressionBombError as err:  # pragma: no cover - huge files
        return DecodeResult(None, str(err))
    return DecodeResult(pixels, None, original_size, original_mode, file_format)


_SOF_MARKERS = (0xC0, 0xC1, 0xC2)
_JPEG_MODES = {1: "L", 3: "RGB"}


def _jpeg_header(data: bytes) -> tuple[int, int, int] | None:
    """``(height, width, components)`` from a JPEG's frame header, or ``None``."""
    if not data.startswith(b"\xff\xd8"):
        return None
    index, end = 2, len(data) - 10
    while index < end:
        if data[index] != 0xFF:
            return None
        marker = data[index + 1]
        if marker == 0xFF:  # fill byte
            index += 1
        elif marker in _SOF_MARKERS:
            if data[index + 4] != 8:  # bits per sample
                return None
            height = (data[index + 5] << 8) | data[index + 6]
            width = (data[index + 7] << 8) | data[index + 8]
            return height, width, data[index + 9]
        elif marker == 0xDA:  # start of scan before any frame header
            return None
        else:
            index += 2 + ((data[index + 2] << 8) | data[index + 3])
    return None


def _decode_small_jpeg(
    data: bytes, color_mode: str, image_size: tuple[int, int] | None
) -> DecodeResult | None:
    """Decode a plain 8-bit RGB or grayscale JPEG with Pillow's decoder, directly.

    ``Image.open`` parses the JPEG markers in Python, which costs more than
    decoding a 32x32 image; this reads only the frame header and hands the bytes to
    the same libjpeg decoder with the same arguments Pillow's JPEG plugin uses, so
    the pixels are identical. Anything unusual (other modes, resizing, an error,
    truncation) returns ``None`` and takes the normal path, which reports errors.
    """
    from PIL import Image

    header = _jpeg_header(data)
    if header is None:
        return None
    height, width, components = header
    mode = _JPEG_MODES.get(components)
    if mode is None or height == 0 or width == 0:
        return None
    if Image.MAX_IMAGE_PIXELS and height * width > Image.MAX_IMAGE_PIXELS:
        return None  # the normal path applies Pillow's decompression-bomb check
    if image_size is not None and image_size != (height, width):
        return None
    try:
        core = Image.core.new(mode, (width, height))  # type: ignore[attr-defined]
        decoder = Image._getdecoder(mode, "jpeg", (mode, ""))
        decoder.setimage(core, (0, 0, width, height))
        try:
            consumed, error_code = decoder.decode(data)
        finally:
            decoder.cleanup()
    except Exception:  # any change in Pillow's internals: use the public path
        return None
    if consumed >= 0 or error_code < 0:  # not finished (truncated) or failed
        return None
    image = _to_mode(Image.Image()._new(core), color_mode)
    pixels = np.frombuffer(image.tobytes(), dtype=np.uint8).reshape(
        height, width, len(image.getbands())
    )
    return DecodeResult(pixels, None, (height, width), mode, "JPEG")


def default_workers() -> int:
    """Threads for decoding: two per core (file reads overlap decoding), at most 16."""
    return max(1, min(16, 2 * (os.cpu_count() or 1)))


def decode_many(
    paths: Sequence[str],
    decode: Callable[[str], DecodeResult],
    *,
    workers: int,
) -> Iterator[DecodeResult]:
    """Decode ``paths`` with ``workers`` threads, yielding results in order.

    Files go to the threads in chunks (one task per chunk, not per file, keeps the
    scheduling cost small) and only a few chunks are in flight at once, so memory
    stays bounded whatever the number of files.
    """
    if workers <= 1 or len(paths) < 64:
        yield from (decode(path) for path in paths)
        return
    size = max(16, min(256, len(paths) // (workers * 4)))
    chunks = [paths[start : start + size] for start in range(0, len(paths), size)]

    def decode_chunk(chunk: Sequence[str]) -> list[DecodeResult]:
        return [decode(path) for path in chunk]

    with ThreadPoolExecutor(workers, thread_name_prefix="kerasimgcls-decode") as pool:
        pending: deque[Future[list[DecodeResult]]] = deque()
        remaining = iter(chunks)
        for chunk in remaining:
            pending.append(pool.submit(decode_chunk, chunk))
            if len(pending) >= 2 * workers:
                break
        while pending:
            done = pending.popleft().result()
            for chunk in remaining:
                pending.append(pool.submit(decode_chunk, chunk))
                break
            yield from done
