"""Same seeds, same runs: compare two trainings of the same command, number for number.

Issue 24 moved most of the code; this checks that it changed no result. Train the
same command on the code before and after (``kerasimgcls train ... --run-dir A``,
then ``--run-dir B``) and compare: every column of ``history.csv`` except
``epoch_time`` must be equal as text, and ``run.json``'s ``final.weights_sha256``
(the digest of the trained weights) must be the same. The model a run saved
before must load with the code after, and predict the same probabilities.

Usage::

    python benchmarks/same_seeds.py NAME=BEFORE_DIR:AFTER_DIR ... [--output FILE]

The result (``benchmarks/results/same_seeds.json`` by default) says, per pair,
the epochs, the digests and whether everything matched; the exit code is 1 if
anything differs.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "same_seeds.json"


def _history(run: Path) -> list[dict[str, str]]:
    with (run / "history.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [{k: v for k, v in row.items() if k != "epoch_time"} for row in rows]


def _digest(run: Path) -> str:
    info = json.loads((run / "run.json").read_text(encoding="utf-8"))
    return str(info["final"]["weights_sha256"])


def _same_predictions(before: Path, after: Path) -> bool:
    """The model saved before loads now and predicts what the one saved after does."""
    import numpy as np

    import kerasimgcls as kic

    old, new = kic.load_model(before), kic.load_model(after)
    shape = tuple(int(side) for side in old.input_shape[1:])
    images = np.random.default_rng(0).integers(0, 256, (16, *shape), dtype=np.uint8)
    return bool(
        np.array_equal(kic.predict_proba(old, images), kic.predict_proba(new, images))
    )


def compare(before: Path, after: Path) -> dict[str, Any]:
    """Compare two run directories of the same command."""
    history_before, history_after = _history(before), _history(after)
    digests = {"before": _digest(before), "after": _digest(after)}
    result = {
        "epochs": len(history_after),
        "history_equal": history_before == history_after,
        "last_row": history_after[-1] if history_after else None,
        "weights_sha256": digests,
        "weights_equal": digests["before"] == digests["after"],
        "old_model_loads_and_predicts_the_same": _same_predictions(before, after),
    }
    result["same"] = all(
        result[key]
        for key in (
            "history_equal",
            "weights_equal",
            "old_model_loads_and_predicts_the_same",
        )
    )
    return result


def main(argv: list[str] | None = None) -> int:
    """Compare the pairs given; write the JSON result."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("pairs", nargs="+", help="NAME=BEFORE_DIR:AFTER_DIR")
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument("--command", action="append", default=[], help="recorded as is")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {"commands": args.command, "runs": {}}
    for pair in args.pairs:
        name, _, dirs = pair.partition("=")
        before, _, after = dirs.partition(":")
        results["runs"][name] = compare(Path(before), Path(after))
    results["same"] = all(run["same"] for run in results["runs"].values())
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(results, indent=2))
    return 0 if results["same"] else 1


if __name__ == "__main__":
    sys.exit(main())
