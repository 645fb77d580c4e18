"""``kerasimgcls evaluate RUN_DIR``: score a finished run and write ``metrics.json``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from kerasimgcls.cli._common import add_command, add_split_argument, bounded
from kerasimgcls.cli._predict import add_input_scaling_argument
from kerasimgcls.training._config import TTA_NAMES

_HELP = "score a run's model: metrics.json, report.json and pictures"
_DESCRIPTION = """\
Load RUN_DIR/model.keras, rebuild the run's dataset from run.json and write the loss
and accuracy of the chosen split to RUN_DIR/metrics.json, the per-class report to
RUN_DIR/report.json, and the pictures confusion_matrix.png and top_losses.png.
"""


def add_parser(subparsers: Any) -> None:
    """Add the ``evaluate`` sub-command."""
    parser = add_command(
        subparsers, "evaluate", _HELP, _DESCRIPTION, run, run_dir="run"
    )
    add_split_argument(
        parser,
        "the split to score (default: test, or validation if there is none)",
    )
    parser.add_argument(
        "--batch-size",
        type=bounded(int, "--batch-size", min_val=1),
        default=256,
        help="images per forward pass",
    )
    parser.add_argument(
        "--tta",
        choices=TTA_NAMES,
        help="test-time augmentation of the scores (flip: each image and its "
        "mirror image; flip_translate: airbench's six views), averaged in logit "
        "space; recorded as SPLIT_tta_TTA, the per-class report stays without",
    )
    add_input_scaling_argument(parser)


def _predicted(
    model: Any, images: Any, *, batch_size: int, tta: str | None, input_scaling: str
) -> tuple[Any, Any]:
    """Return the plain probabilities and, with ``tta``, the averaged ones.

    The split is predicted once: the plain probabilities are the first view's.
    """
    from kerasimgcls.inference._predict import predict_proba
    from kerasimgcls.inference._tta import predict_views

    if tta is None:
        plain = predict_proba(
            model,
            images,
            batch_size=batch_size,
            input_scaling=input_scaling,  # type: ignore[arg-type]
        )
        return plain, None
    averaged, plain = predict_views(
        model,
        images,
        views=tta,  # type: ignore[arg-type]
        batch_size=batch_size,
        input_scaling=input_scaling,  # type: ignore[arg-type]
    )
    return plain, averaged


def run(args: argparse.Namespace) -> int:
    """Score the run's model on a split and record it in ``metrics.json``."""
    from kerasimgcls.analysis.evaluation import ClassificationReport
    from kerasimgcls.cli._common import load_run
    from kerasimgcls.training._metrics import write_metrics

    model, _config, data = load_run(args.run_dir)
    name = args.split
    if name == "test" and data.test is None:
        name = "validation"
    split = data.splits().get(name)
    if split is None:
        raise ValueError(f"the run's dataset has no {args.split} split to evaluate")
    probabilities, augmented = _predicted(
        model,
        split.images,
        batch_size=args.batch_size,
        tta=args.tta,
        input_scaling=args.input_scaling,
    )
    # The classification report is the one scorer: metrics.json takes its loss
    # and accuracy (of the augmented predictions with --tta).
    report = ClassificationReport.from_predictions(
        split.labels, probabilities, data.class_names
    )
    scored = report
    if augmented is not None:
        scored = ClassificationReport.from_predictions(
            split.labels, augmented, data.class_names
        )
    scores = {"loss": scored.loss, "accuracy": scored.accuracy}
    key = name if args.tta is None else f"{name}_tta_{args.tta}"
    write_metrics(args.run_dir, key, scores, len(split))
    print(
        f"{key} ({len(split)} images): loss {scores['loss']:.4f}, "
        f"accuracy {scores['accuracy']:.4f}"
    )
    print(f"wrote {Path(args.run_dir) / 'metrics.json'}")
    for path in _write_report(report, split, args, name):
        print(f"wrote {path}")
    return 0


def _write_report(
    report: Any, split: Any, args: argparse.Namespace, name: str
) -> list[Path]:
    """Write report.json, confusion_matrix.png and top_losses.png; print the table."""
    from kerasimgcls._io import write_json_atomic

    print(report)
    run_dir = Path(args.run_dir)
    return [
        write_json_atomic(run_dir / "report.json", {"split": name, **report.to_dict()}),
        report.plot_confusion_matrix(run_dir / "confusion_matrix.png"),
        report.plot_top_losses(split.images, run_dir / "top_losses.png", k=16),
    ]
