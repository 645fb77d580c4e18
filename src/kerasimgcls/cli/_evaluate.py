"""``kerasimgcls evaluate RUN_DIR``: score a finished run and write ``metrics.json``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from kerasimgcls.cli._predict import add_input_scaling_argument


def add_parser(subparsers: Any) -> None:
    """Add the ``evaluate`` sub-command."""
    parser = subparsers.add_parser(
        "evaluate",
        help="score a run's model: metrics.json, report.json and pictures",
        description=(
            "Load RUN_DIR/model.keras, rebuild the run's dataset from run.json and "
            "write the loss and accuracy of the chosen split to RUN_DIR/metrics.json, "
            "the per-class report to RUN_DIR/report.json, and the pictures "
            "confusion_matrix.png and top_losses.png."
        ),
    )
    parser.add_argument("run_dir", metavar="RUN_DIR", help="a run directory")
    parser.add_argument(
        "--split",
        choices=("test", "validation", "train"),
        default="test",
        help="the split to score (default: test, or validation if there is none)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=256, help="images per forward pass"
    )
    parser.add_argument(
        "--tta",
        choices=("flip",),
        help="test-time augmentation of the scores: average each image's "
        "prediction with its mirror image's (recorded as SPLIT_tta_flip; the "
        "per-class report stays without)",
    )
    add_input_scaling_argument(parser)
    parser.set_defaults(handler=run)


def score(
    model: Any,
    images: Any,
    labels: Any,
    *,
    batch_size: int = 256,
    tta: str | None = None,
    input_scaling: str = "auto",
) -> dict[str, float]:
    """Return the cross-entropy loss and the accuracy of ``model`` on uint8 images."""
    from kerasimgcls._export import predict_proba

    probabilities = predict_proba(
        model,
        images,
        batch_size=batch_size,
        tta=tta,
        input_scaling=input_scaling,  # type: ignore[arg-type]
    )
    picked = probabilities[np.arange(len(labels)), labels]
    loss = float(-np.mean(np.log(np.clip(picked, 1e-7, 1.0))))
    accuracy = float(np.mean(np.argmax(probabilities, axis=1) == labels))
    return {"loss": loss, "accuracy": accuracy}


def run(args: argparse.Namespace) -> int:
    """Score the run's model on a split and record it in ``metrics.json``."""
    from kerasimgcls.cli._common import load_run
    from kerasimgcls.training._run_dir import write_metrics

    model, _config, data = load_run(args.run_dir)
    name = args.split
    if name == "test" and data.test is None:
        name = "validation"
    split = data.splits().get(name)
    if split is None:
        raise ValueError(f"the run's dataset has no {args.split} split to evaluate")
    scores = score(
        model,
        split.images,
        split.labels,
        batch_size=args.batch_size,
        tta=args.tta,
        input_scaling=args.input_scaling,
    )
    key = name if args.tta is None else f"{name}_tta_{args.tta}"
    write_metrics(args.run_dir, key, scores, len(split))
    print(
        f"{key} ({len(split)} images): loss {scores['loss']:.4f}, "
        f"accuracy {scores['accuracy']:.4f}"
    )
    print(f"wrote {Path(args.run_dir) / 'metrics.json'}")
    for path in _write_report(model, split, data.class_names, args, name):
        print(f"wrote {path}")
    return 0


def _write_report(
    model: Any, split: Any, class_names: Any, args: argparse.Namespace, name: str
) -> list[Path]:
    """Write report.json, confusion_matrix.png and top_losses.png; print the table."""
    from kerasimgcls._io import write_json_atomic
    from kerasimgcls.evaluation import classification_report

    report = classification_report(
        model,
        split,
        class_names,
        batch_size=args.batch_size,
        input_scaling=args.input_scaling,
    )
    print(report)
    run_dir = Path(args.run_dir)
    return [
        write_json_atomic(run_dir / "report.json", {"split": name, **report.to_dict()}),
        report.plot_confusion_matrix(run_dir / "confusion_matrix.png"),
        report.plot_top_losses(split.images, run_dir / "top_losses.png", k=16),
    ]
