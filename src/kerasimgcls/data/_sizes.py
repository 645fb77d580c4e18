"""Choose one image size for a folder of images of many sizes: the rule and its words.

A folder of photos comes in many sizes; a model takes one. The rule: the median
height and width of the folder's images, scaled down (keeping their aspect ratio)
until the longer side fits the model's cap, rounded to a multiple of 8, at least
16 pixels a side. A folder whose images share one size that fits keeps it. Only
the files' headers are read, so choosing costs a fraction of decoding them.
"""

from __future__ import annotations

import math
import os
import stat
import statistics
from collections import Counter
from dataclasses import dataclass
from typing import Any

from kerasimgcls._validation import check_path_exists, check_positive_int
from kerasimgcls.data._files import (
    DECODED_FORMATS,
    DecodeResult,
    decode_many,
    default_workers,
    scan_folder,
)

__all__ = ["ImageSizeChoice", "choose_image_size"]

# EXIF orientations 5-8 swap width and height (as decode_file applies them).
_EXIF_ORIENTATION = 0x0112
_TRANSPOSING = (5, 6, 7, 8)


@dataclass(frozen=True)
class ImageSizeChoice:
    """The image size :func:`choose_image_size` chose for a folder, and why.

    Attributes:
        image_size: ``(height, width)`` to resize every image to.
        sizes: ``"HEIGHTxWIDTH"`` -> number of images, most common first.
        median: The median ``(height, width)`` of the images.
        max_size: The cap on the longer side that was applied.
        reason: Why this size, in words ("the median size 480x640 scaled down to
            the cap of 64 and rounded to a multiple of 8").

    Example:
        >>> from kerasimgcls import ImageSizeChoice
        >>> choice = ImageSizeChoice((48, 64), {"480x640": 3, "24x32": 1},
        ...                          (480, 640), 64, "the median size ...")
        >>> choice.resizes, choice.smallest, choice.largest
        (True, (24, 32), (480, 640))
    """

    image_size: tuple[int, int]
    sizes: dict[str, int]
    median: tuple[int, int]
    max_size: int
    reason: str

    @property
    def num_images(self) -> int:
        """Number of images whose size was read."""
        return sum(self.sizes.values())

    @property
    def smallest(self) -> tuple[int, int]:
        """The ``(height, width)`` with the fewest pixels."""
        return min(_parsed(self.sizes), key=lambda size: (size[0] * size[1], size))

    @property
    def largest(self) -> tuple[int, int]:
        """The ``(height, width)`` with the most pixels."""
        return max(_parsed(self.sizes), key=lambda size: (size[0] * size[1], size))

    @property
    def resizes(self) -> bool:
        """Whether any image is resized (the images differ, or exceed the cap)."""
        return self.sizes != {_text(self.image_size): self.num_images}

    def describe(self, *, cap_of: str | None = None) -> str:
        """Return the choice in one line: what the images are, the size, the why.

        Args:
            cap_of: Whose cap ``max_size`` is (a model name), said after it.

        Example:
            >>> from kerasimgcls import ImageSizeChoice
            >>> ImageSizeChoice((32, 32), {"32x32": 5}, (32, 32), 64,
            ...                 "the size of every image").describe()
            'all 5 images are 32x32; keeping 32x32, the size of every image'
        """
        if len(self.sizes) == 1:
            found = f"all {self.num_images} images are {next(iter(self.sizes))}"
        else:
            found = (
                f"images differ in size ({_text(self.smallest)} to "
                f"{_text(self.largest)}, height x width)"
            )
        verb = "resizing to" if self.resizes else "keeping"
        reason = self.reason
        if cap_of is not None:
            reason = reason.replace(
                f"the cap of {self.max_size}",
                f"the cap of {self.max_size} for {cap_of}",
            )
        return f"{found}; {verb} {_text(self.image_size)}, {reason}"

    def to_dict(self) -> dict[str, Any]:
        """Return the choice as JSON-ready data (recorded in ``run.json``)."""
        return {
            "image_size": list(self.image_size),
            "median": list(self.median),
            "max_size": self.max_size,
            "num_images": self.num_images,
            "num_sizes": len(self.sizes),
            "smallest": list(self.smallest),
            "largest": list(self.largest),
            "reason": self.reason,
        }


def _text(size: tuple[int, int]) -> str:
    return f"{size[0]}x{size[1]}"


def _parsed(sizes: dict[str, int]) -> list[tuple[int, int]]:
    pairs = [text.split("x") for text in sizes]
    return [(int(height), int(width)) for height, width in pairs]


def choose_image_size(
    path: str | os.PathLike[str],
    *,
    max_size: int = 64,
    min_size: int = 16,
    multiple: int = 8,
    workers: int | None = None,
) -> ImageSizeChoice:
    """Choose the size to resize a folder's images to: the median, rounded and capped.

    Reads the header of every training image of the folder (the layouts
    :func:`load_image_folder` reads; upright, as the EXIF orientation says) and
    applies the rule ``kerasimgcls train --data-dir`` uses when no
    ``--image-size`` is given:

    - images that all have one size keep it if neither side exceeds ``max_size``;
    - otherwise the median height and the median width are scaled down, keeping
      their aspect ratio, until the longer side is at most ``max_size``, then
      each side is rounded to a multiple of ``multiple`` and raised to at least
      ``min_size``.

    Files that cannot be read are left out (loading names them).

    Args:
        path: The folder.
        max_size: The longest side allowed (the command line takes the model's:
            :func:`~kerasimgcls.get_max_image_size`).
        min_size: The shortest side a resized image gets.
        multiple: Each side of a resized image is a multiple of it.
        workers: Threads reading headers; default: two per CPU core.

    Returns:
        The choice: the size, the sizes found and the reason in words.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        NotADirectoryError: If ``path`` is not a folder.
        ValueError: If an option is not positive, or no image's size can be read.

    Example:
        >>> import os, tempfile
        >>> from PIL import Image
        >>> from kerasimgcls import choose_image_size
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     for name, size in (("a", (40, 30)), ("b", (640, 480)), ("c", (64, 48))):
        ...         os.makedirs(f"{tmp}/cls", exist_ok=True)
        ...         Image.new("RGB", size).save(f"{tmp}/cls/{name}.png")
        ...     choice = choose_image_size(tmp, max_size=32)
        >>> choice.image_size, choice.median
        ((24, 32), (48, 64))
    """
    from kerasimgcls.data._image_folder import split_layout

    root = check_path_exists(path, "path", kind="dir")
    max_size = check_positive_int(max_size, "max_size")
    min_size = min(check_positive_int(min_size, "min_size"), max_size)
    multiple = check_positive_int(multiple, "multiple")
    threads = (
        default_workers() if workers is None else check_positive_int(workers, "workers")
    )
    scan = scan_folder((split_layout(root) or {"train": root})["train"])
    sizes: Counter[tuple[int, int]] = Counter(
        result.original_size
        for result in decode_many(scan.files, _read_size, workers=threads)
        if result.original_size is not None
    )
    if not sizes:
        raise ValueError(
            f"no image size could be read in {str(root)!r}: no decodable image "
            "header; run `kerasimgcls doctor` on the folder"
        )
    return _choose(sizes, max_size, min_size, multiple)


def _choose(
    sizes: Counter[tuple[int, int]], max_size: int, min_size: int, multiple: int
) -> ImageSizeChoice:
    """The rule itself, on the counted ``(height, width)`` sizes."""
    heights = [size[0] for size in sizes.elements()]
    widths = [size[1] for size in sizes.elements()]
    median = (
        math.floor(statistics.median(heights) + 0.5),
        math.floor(statistics.median(widths) + 0.5),
    )
    counted = {_text(size): count for size, count in sizes.most_common()}
    if len(sizes) == 1 and max(median) <= max_size:
        return ImageSizeChoice(
            median, counted, median, max_size, "the size of every image"
        )
    scale = min(1.0, max_size / max(median))
    chosen = tuple(
        min(
            max_size,
            max(min_size, multiple * math.floor(side * scale / multiple + 0.5)),
        )
        for side in median
    )
    what = "the size of every image" if len(sizes) == 1 else "the median size"
    if scale < 1.0:
        reason = (
            f"{what} {_text(median)} scaled down to the cap of {max_size} and "
            f"rounded to a multiple of {multiple}"
        )
    else:
        reason = f"{what} {_text(median)} rounded to a multiple of {multiple}"
    if min(side * scale for side in median) < min_size:
        reason += f", at least {min_size}"
    return ImageSizeChoice(
        (int(chosen[0]), int(chosen[1])), counted, median, max_size, reason
    )


def _read_size(path: str) -> DecodeResult:
    """The upright ``(height, width)`` of an image file from its header alone."""
    from PIL import Image

    try:
        if not stat.S_ISREG(os.stat(path).st_mode):  # a FIFO would block
            return DecodeResult(None, "not a regular file")
        with Image.open(path, formats=list(DECODED_FORMATS)) as image:
            height, width = int(image.height), int(image.width)
            orientation = image.getexif().get(_EXIF_ORIENTATION, 1)
    except Exception as err:  # a bad file: loading reports it
        return DecodeResult(None, str(err) or type(err).__name__)
    if orientation in _TRANSPOSING:
        height, width = width, height
    return DecodeResult(None, None, (height, width))
