"""``kerasimgcls report RUN_DIR``: write ``RUN_DIR/report.html``."""

from __future__ import annotations

import argparse
from typing import Any

from kerasimgcls.cli._common import add_command, add_split_argument, bounded

_HELP = "write report.html: a run at a glance, for a browser"
_DESCRIPTION = """\
Write RUN_DIR/report.html, one self-contained page (pictures embedded, nothing
loaded from the network): the run's configuration and versions, learning curves,
per-class precision/recall/F1, the confusion matrix, top losses, Grad-CAM on a few
validation images and the run's timing.
"""


def add_parser(subparsers: Any) -> None:
    """Add the ``report`` sub-command."""
    parser = add_command(
        subparsers, "report", _HELP, _DESCRIPTION, run, run_dir="finished"
    )
    add_split_argument(
        parser,
        "the split scored for the table, confusion matrix and top losses "
        "(default: test, or validation if there is none)",
    )
    parser.add_argument(
        "--grad-cam-images",
        type=bounded(int, "--grad-cam-images", min_val=0),
        default=4,
        metavar="N",
        help="validation images shown with Grad-CAM (default: 4)",
    )
    parser.add_argument(
        "--top-losses",
        type=bounded(int, "--top-losses", min_val=1),
        default=9,
        metavar="K",
        help="misclassified images in the top-losses picture (default: 9)",
    )


def run(args: argparse.Namespace) -> int:
    """Write the report and print its path."""
    from pathlib import Path

    from kerasimgcls.analysis.report import check_not_running, write_report
    from kerasimgcls.cli._common import load_run, read_run_json

    check_not_running(read_run_json(args.run_dir), Path(args.run_dir))
    model, _config, data = load_run(args.run_dir)
    path = write_report(
        args.run_dir,
        data,
        model=model,
        split=args.split,
        grad_cam_images=args.grad_cam_images,
        top_losses=args.top_losses,
    )
    print(f"wrote {path}")
    return 0
