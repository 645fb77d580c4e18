"""JPEG decode speed of ``decode_file`` on CIFAR-10-sized files, one thread.

Kept beside the decision it supports: the hand-written JPEG path that called
Pillow's internals (``Image.core.new``, ``Image._getdecoder``) was removed in the
redesign of issue 24. It decoded 32x32 JPEGs about 1.6 times as fast (11,700
against 7,400 images/s on this machine), which is 2.5 s on the first load of the
50,000 CIFAR-10 training images (later loads read the uint8 cache), against
minutes of training: not worth private APIs.

Usage::

    python benchmarks/decode_speed.py [--data-dir DIR] [--per-class 1000]

The result goes to ``benchmarks/results/decode_speed.json``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from kerasimgcls.data._files import decode_file

RESULTS = Path(__file__).resolve().parent / "results" / "decode_speed.json"
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared/data/cifar10-jpg/train"


def measure(files: list[str], repeats: int = 3) -> float:
    """The best of ``repeats`` passes over ``files``, in images per second."""
    decode_file(files[0])
    best = min(_one_pass(files) for _ in range(repeats))
    return len(files) / best


def _one_pass(files: list[str]) -> float:
    start = time.perf_counter()
    for path in files:
        decode_file(path)
    return time.perf_counter() - start


def main() -> None:
    """Measure and write the result."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--per-class", type=int, default=1000)
    args = parser.parse_args()
    files = [
        str(path)
        for folder in sorted(args.data_dir.iterdir())
        for path in sorted(folder.iterdir())[: args.per_class]
    ]
    result = {
        "files": len(files),
        "images_per_s": round(measure(files)),
        "before_issue_24": {
            "with_the_private_jpeg_path": 11664,
            "pillow_only": 7396,
        },
    }
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
