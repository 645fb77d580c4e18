"""How lossy are a folder's JPEGs? Their quality factor and chroma subsampling.

A JPEG file carries the quantisation tables it was encoded with. The encoders
people use (libjpeg, hence Pillow and OpenCV) scale the two standard tables of the
JPEG specification (Annex K) by the quality factor, so the factor can be read back:
the quality whose scaled luminance table is closest to the file's. Chroma
subsampling is read from the frame header (4:4:4, 4:2:2 or 4:2:0).

Usage::

    python benchmarks/jpeg_quality.py ../shared/data/cifar10-jpg/train \\
        --output benchmarks/results/jpeg_quality.json

The JSON counts the files per estimated quality and per subsampling, with the mean
file size.
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import write_json

# The luminance table of the JPEG specification (Annex K.1), in natural order.
_LUMINANCE = np.array(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ],
    dtype=np.float64,
)
_SUBSAMPLING = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0", -1: "unknown"}


def scaled_table(quality: int) -> np.ndarray:
    """libjpeg's luminance table at ``quality`` (1-100)."""
    scale = 5000 / quality if quality < 50 else 200 - 2 * quality
    return np.clip(np.floor((_LUMINANCE * scale + 50) / 100), 1, 255)


_TABLES = {quality: scaled_table(quality) for quality in range(1, 101)}


def estimate_quality(luminance: list[int] | np.ndarray) -> int:
    """The quality whose standard table is closest to ``luminance`` (64 values).

    Pillow gives the table in zigzag order, which holds the same multiset of
    values; the comparison sorts both, so the order does not matter.
    """
    values = np.sort(np.asarray(luminance, dtype=np.float64).ravel())
    errors = {
        quality: float(np.abs(np.sort(table.ravel()) - values).sum())
        for quality, table in _TABLES.items()
    }
    return min(errors, key=errors.__getitem__)


def survey(folder: Path) -> dict[str, Any]:
    """Count the JPEGs under ``folder`` by estimated quality and subsampling."""
    from PIL import Image, JpegImagePlugin

    qualities: collections.Counter[int] = collections.Counter()
    subsampling: collections.Counter[str] = collections.Counter()
    sizes = []
    for path in sorted(folder.rglob("*.jpg")):
        with Image.open(path) as image:
            qualities[estimate_quality(image.quantization[0])] += 1
            subsampling[_SUBSAMPLING[JpegImagePlugin.get_sampling(image)]] += 1
        sizes.append(path.stat().st_size)
    if not sizes:
        raise SystemExit(f"no .jpg files under {folder}")
    return {
        "files": len(sizes),
        "mean_bytes": round(float(np.mean(sizes)), 1),
        "quality": {str(k): v for k, v in sorted(qualities.items())},
        "subsampling": dict(subsampling),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    result = survey(args.folder)
    result["command"] = "python benchmarks/jpeg_quality.py " + " ".join(
        sys.argv[1:] if argv is None else argv
    )
    print(json.dumps(result, indent=2))
    if args.output is not None:
        write_json(args.output, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
