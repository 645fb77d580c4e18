"""Finding and decoding image files: the shared core of the folder loader and checker.

Decoding uses Pillow, one file at a time in a thread pool (Pillow releases the GIL
while it decodes). A JPEG that is larger than the requested size is decoded at a
reduced scale first (Pillow's draft mode), which is much cheaper than decoding it
fully and shrinking it afterwards.
"""

from __future__ import annotations

import errno
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

from kerasimgcls._io import read_regular_file
from kerasimgcls._validation import check_class_names, limit

__all__ = [
    "ASPECTS",
    "DECODED_FORMATS",
    "IMAGE_EXTENSIONS",
    "INTERPOLATIONS",
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
#: The resampling filters of ``interpolation=`` (Pillow's, by name).
INTERPOLATIONS: tuple[str, ...] = ("nearest", "bilinear", "bicubic", "lanczos", "box")
Aspect = Literal["stretch", "crop", "pad"]
#: How an image is brought to another aspect ratio: ``"stretch"`` resizes it as it
#: is; ``"crop"`` takes the largest centred window of the target aspect ratio
#: first, ``"pad"`` pads it with black to that ratio first (as Keras'
#: ``crop_to_aspect_ratio`` and ``pad_to_aspect_ratio``).
ASPECTS: tuple[str, ...] = ("stretch", "crop", "pad")
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


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()
    except OSError:  # a symbolic link loop: not a folder (reported as a bad file)
        return False


def scan_folder(root: Path, class_names: Sequence[str] | None = None) -> FolderScan:
    """List the image files of ``root``, one sub-folder per class.

    Files directly in ``root`` and files with other extensions are recorded as
    skipped; hidden folders are ignored. Sub-folders of a class folder are searched
    too (their images belong to the class); each folder is searched once, so a
    symbolic link back to a parent cannot make the search endless. An image name
    that is a dangling link or a link loop is listed (decoding reports it).

    Raises:
        ValueError: If ``root`` has no class sub-folder, ``class_names`` names a
            folder that does not exist, or a class folder's name is not printable
            UTF-8 text.
    """
    top = _sorted_entries(str(root))
    folders = [e.name for e in top if _is_dir(e) and not e.name.startswith(".")]
    scan = _Collector()
    scan.skipped.extend(e.path for e in top if not _is_dir(e))
    if class_names is None:
        names = check_class_names(folders, f"the class folders of {str(root)!r}")
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
        self.visited: set[tuple[int, int]] = set()

    def collect(self, folder: str, relative: str, label: int) -> None:
        try:
            info = os.stat(folder)
        except OSError:
            return
        if (info.st_dev, info.st_ino) in self.visited:
            self.skipped.append(folder)  # searched already (a link to it)
            return
        self.visited.add((info.st_dev, info.st_ino))
        for entry in _sorted_entries(folder):
            name = entry.name
            if _is_dir(entry):
                if not name.startswith("."):
                    self.collect(entry.path, f"{relative}/{name}", label)
            elif name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith("."):
                self.files.append(entry.path)
                self.relative.append(f"{relative}/{name}")
                self.labels.append(label)
                self.stats.append(_file_stats(entry))
            else:
                self.skipped.append(entry.path)


def _file_stats(entry: os.DirEntry[str]) -> tuple[int, int]:
    try:
        info = entry.stat()
    except OSError:  # a dangling link or a link loop: the link's own stats
        info = entry.stat(follow_symlinks=False)
    return (int(info.st_size), int(info.st_mtime_ns))


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


_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def _to_mode(image: Any, color_mode: str) -> Any:
    from PIL import Image

    target = _PIL_MODES[color_mode]
    if image.mode == target:
        return image
    if image.mode in _SIXTEEN_BIT_MODES:
        # A 16-bit grayscale PNG: Pillow clips such values when converting to "L";
        # scale 0-65535 to 0-255 instead (v / 257, exactly how Pillow reduces a
        # 16-bit RGB PNG, which it opens as "RGB").
        wide = np.clip(np.asarray(image, dtype=np.float64), 0, 65535)
        image = Image.fromarray(np.rint(wide / 257.0).astype(np.uint8), "L")
    elif image.mode == "PA" or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
    return image if image.mode == target else image.convert(target)


# The only formats ever decoded, whatever a file's name or content: raster
# formats Pillow decodes itself. Never EPS/PS (Pillow runs Ghostscript on them)
# or any other plugin that hands the file to another program.
DECODED_FORMATS = ("PNG", "JPEG", "BMP", "GIF")
_FORMAT_BY_EXTENSION = {
    ".bmp": "BMP",
    ".gif": "GIF",
    ".jpeg": "JPEG",
    ".jpg": "JPEG",
    ".png": "PNG",
}
# EXIF orientations 5-8 swap width and height.
_EXIF_ORIENTATION = 0x0112
_TRANSPOSING = (5, 6, 7, 8)


def _open(data: bytes, path: str) -> Any:
    from PIL import Image, UnidentifiedImageError

    # Telling Pillow the format skips probing every plugin: twice as fast to open.
    # A file whose content does not match its extension is still opened, but only
    # as one of DECODED_FORMATS.
    hint = _FORMAT_BY_EXTENSION.get(os.path.splitext(path)[1].lower())
    if hint is not None:
        try:
            return Image.open(io.BytesIO(data), formats=[hint])
        except UnidentifiedImageError:
            pass
    return Image.open(io.BytesIO(data), formats=list(DECODED_FORMATS))


def _orientation(image: Any) -> int:
    try:
        value = image.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception:  # a malformed EXIF block: keep the pixels as stored
        return 1
    return int(value) if isinstance(value, int) and 1 <= value <= 8 else 1


def decode_file(
    path: str | os.PathLike[str],
    *,
    color_mode: str = "rgb",
    image_size: tuple[int, int] | None = None,
    interpolation: str = "bilinear",
    aspect: str = "stretch",
    max_pixels: int | None = None,
    max_bytes: int | None = None,
) -> DecodeResult:
    """Decode one image file to uint8 pixels with the requested channels and size.

    The one decoder of the library: the folder loader, the folder checker,
    ``predict`` and ``explain`` all read images through it, so a file gives the
    same pixels at training and at prediction: the resizing to a model's input
    (``image_size``, ``interpolation``, ``aspect``) happens here and nowhere else.
    What it guarantees:

    - only regular files are read (a FIFO, a device or a symbolic link to one is
      refused without blocking), at most ``max_bytes`` of them;
    - only PNG, JPEG, BMP and GIF are decoded (:data:`DECODED_FORMATS`), whatever
      the extension says; nothing is handed to another program;
    - an image with more than ``max_pixels`` pixels is refused from its header,
      before its pixels are decoded (decompression bombs);
    - 16-bit grayscale is scaled to 8 bits (``v / 257``), not clipped; CMYK,
      palette (with transparency), ``LA``, ``PA`` and ``1`` images are converted
      by Pillow to ``color_mode`` (alpha dropped for ``"rgb"``); the EXIF
      orientation is applied, so the pixels are upright as a viewer shows them;
    - it never raises for a bad file: the failure is ``DecodeResult.error``.

    Args:
        path: The file.
        color_mode: ``"rgb"``, ``"grayscale"`` or ``"rgba"``.
        image_size: ``(height, width)`` to resize to, or ``None`` to keep the size.
        interpolation: Pillow resampling filter name for ``image_size``.
        aspect: How an image of another aspect ratio than ``image_size`` is
            resized (:data:`ASPECTS`): ``"stretch"`` as it is, ``"crop"`` after
            cutting the largest centred window of the target ratio, ``"pad"``
            after padding it with black to that ratio.
        max_pixels: Largest ``height * width`` decoded; default: the
            ``max_image_pixels`` bound (``KERASIMGCLS_MAX_IMAGE_PIXELS``).
        max_bytes: Largest file read; default: the ``max_image_file_bytes`` bound.

    Returns:
        The pixels (uint8 ``(height, width, channels)``) or the reason for failure.
    """
    path = os.fspath(path)
    pixel_bound = limit("max_image_pixels") if max_pixels is None else max_pixels
    byte_bound = limit("max_image_file_bytes") if max_bytes is None else max_bytes
    try:
        data = read_regular_file(path, max_bytes=byte_bound, what="image file")
    except OSError as err:
        return DecodeResult(None, _os_reason(err))
    if not data:
        return DecodeResult(None, "empty file (0 bytes)")
    try:
        return _decode_with_pillow(
            data, path, color_mode, image_size, (interpolation, aspect), pixel_bound
        )
    except MemoryError:
        return DecodeResult(None, "not enough memory to decode it")
    except Exception as err:  # any decoder failure on crafted input is a bad file
        return DecodeResult(None, _decoder_reason(err))


def _os_reason(err: OSError) -> str:
    reasons = {
        errno.ELOOP: "a symbolic link loop",
        errno.ENOENT: "a dangling symbolic link, or the file was removed",
        errno.EACCES: "permission denied",
    }
    return reasons.get(err.errno or 0, err.strerror or str(err))


def _decoder_reason(err: Exception) -> str:
    from PIL import UnidentifiedImageError

    if isinstance(err, UnidentifiedImageError):
        return (
            "not a PNG, JPEG, BMP or GIF image (wrong extension, corrupt, or "
            "another format)"
        )
    text = str(err).splitlines()[0] if str(err) else ""
    return text or type(err).__name__


def _decode_with_pillow(
    data: bytes,
    path: str,
    color_mode: str,
    image_size: tuple[int, int] | None,
    resize: tuple[str, str],
    max_pixels: int,
) -> DecodeResult:
    from PIL import ImageOps

    with _open(data, path) as image:
        file_format = image.format
        original_mode = image.mode
        height, width = int(image.height), int(image.width)
        if height * width > max_pixels:
            return DecodeResult(
                None,
                f"{width}x{height} pixels, more than the {max_pixels:,} allowed "
                "(a decompression bomb?); raise KERASIMGCLS_MAX_IMAGE_PIXELS if "
                "the image is genuine",
            )
        orientation = _orientation(image)
        if image_size is not None and file_format == "JPEG":
            target = (image_size[1], image_size[0])
            if orientation in _TRANSPOSING:
                target = (image_size[0], image_size[1])
            image.draft(_PIL_MODES[color_mode], target)
        image.load()
        upright = ImageOps.exif_transpose(image) if orientation != 1 else image
        original_size = (int(upright.height), int(upright.width))
        converted = _to_mode(upright, color_mode)
        if image_size is not None and converted.size != (image_size[1], image_size[0]):
            converted = resize_image(converted, image_size, *resize)
        out_width, out_height = converted.size
        # tobytes + frombuffer is much faster than np.asarray(image) here.
        pixels = np.frombuffer(converted.tobytes(), dtype=np.uint8).reshape(
            out_height, out_width, len(converted.getbands())
        )
    return DecodeResult(pixels, None, original_size, original_mode, file_format)


def resize_image(
    image: Any, image_size: tuple[int, int], interpolation: str, aspect: str
) -> Any:
    """Resize a Pillow image to ``image_size`` ``(height, width)`` by ``aspect``.

    ``"crop"`` is :func:`PIL.ImageOps.fit` (the largest centred window of the
    target aspect ratio, then resized), ``"pad"`` :func:`PIL.ImageOps.pad`
    (resized to fit inside, centred on black), ``"stretch"`` a plain resize.
    """
    from PIL import Image, ImageOps

    size = (image_size[1], image_size[0])  # Pillow's (width, height)
    resample = getattr(Image.Resampling, interpolation.upper())
    if aspect == "crop":
        return ImageOps.fit(image, size, method=resample)
    if aspect == "pad":
        return ImageOps.pad(image, size, method=resample, color=0)
    return image.resize(size, resample)


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
    stays bounded whatever the number of files. A ``decode`` that raises for one
    file gives that file an error result; the others are still decoded.
    """
    if workers <= 1 or len(paths) < 64:
        yield from (_decode_one(decode, path) for path in paths)
        return
    size = max(16, min(256, len(paths) // (workers * 4)))
    chunks = [paths[start : start + size] for start in range(0, len(paths), size)]

    def decode_chunk(chunk: Sequence[str]) -> list[DecodeResult]:
        return [_decode_one(decode, path) for path in chunk]

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


def _decode_one(decode: Callable[[str], DecodeResult], path: str) -> DecodeResult:
    try:
        return decode(path)
    except Exception as err:  # one bad file never stops the others
        return DecodeResult(None, _decoder_reason(err))
