"""``kerasimgcls doctor PATH``: check a folder of images before training."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from kerasimgcls._validation import check_path_exists
from kerasimgcls.cli._common import bounded

_DESCRIPTION = """\
Decode every image of a folder of class sub-folders (PATH/<class>/*, or
PATH/train/<class>/* with optional test/) once and report files that cannot be
decoded (with their paths), files skipped for their extension, empty class
folders, class counts with an imbalance warning and suggested class weights, and
image size, colour mode and format statistics. Nothing is modified or deleted.

Exit codes: 0 when no problem was found (warnings such as imbalance are allowed),
1 when there are undecodable files, empty class folders or no image at all,
2 on bad arguments (for example a PATH that does not exist).
"""


def add_parser(subparsers: Any) -> None:
    """Add the ``doctor`` sub-command."""
    parser = subparsers.add_parser(
        "doctor",
        help="check a folder of images: broken files, empty classes, imbalance",
        description=_DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("path", help="folder of class sub-folders of images")
    parser.add_argument(
        "--json",
        metavar="OUT",
        default=None,
        help="also save the report as JSON to OUT (written atomically)",
    )
    parser.add_argument(
        "--imbalance-threshold",
        type=bounded(float, "--imbalance-threshold", min_val=1),
        default=1.5,
        help="warn when the largest class has more than this many times the images "
        "of the smallest (default: 1.5)",
    )
    parser.add_argument(
        "--workers",
        type=bounded(int, "--workers", min_val=1),
        default=None,
        help="decoding threads (default: two per CPU core)",
    )
    parser.set_defaults(handler=run, check=check)


def check(args: argparse.Namespace) -> None:
    """The validation stage of ``doctor``: PATH is a folder, ``--json`` can be written.

    Raises:
        FileNotFoundError: If PATH, or the folder of ``--json``, does not exist.
        NotADirectoryError: If PATH is not a folder.
    """
    check_path_exists(args.path, "PATH", kind="dir")
    if args.json is not None:
        parent = Path(args.json).parent
        check_path_exists(parent, "the folder of --json", kind="dir")


def run(args: argparse.Namespace) -> int:
    """Print the report of ``args.path``; return 1 if it found problems."""
    from kerasimgcls.data import check_image_folder

    report = check_image_folder(
        args.path,
        imbalance_threshold=args.imbalance_threshold,
        workers=args.workers,
    )
    from kerasimgcls.cli import in_cli_words

    # The report advises in Python's words (on_error='skip'); here, in flags.
    print(in_cli_words(str(report), "doctor"))
    if args.json:
        saved = report.save(args.json)
        print(f"report saved to {saved}")
    return 0 if report.ok else 1
