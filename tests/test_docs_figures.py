"""The speed, memory and accuracy figures quoted in README and docs match the
committed benchmark results they cite (benchmarks/results/)."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS = REPO_ROOT / "benchmarks" / "results"
PERFORMANCE = (REPO_ROOT / "docs" / "performance.md").read_text(encoding="utf-8")
README = (REPO_ROOT / "README.md").read_text(encoding="utf-8")

# The speed tables of docs/performance.md, each from the file its text names.
SPEED_TABLES = ["bench_train_b64.json", "bench_train_idle.json"]


def _table_rows(results: dict) -> list[str]:  # type: ignore[type-arg]
    """Each measured row as a pattern of the doc's: speed (min-max), ratio, RSS."""
    rows = []
    for entry in results["summary"]:
        cells = [
            f"{entry['images_per_second_median']:.0f} "
            f"({entry['images_per_second_min']:.0f}-"
            f"{entry['images_per_second_max']:.0f})",
            f"{entry['ratio_to_tutorial']:.2f}",
            f"{entry['fraction_of_peak']:.0%}",
            f"{entry['peak_rss_mb_median']:,.0f} MiB",
        ]
        # Cells may be bold; nothing else may differ.
        rows.append(r" \| ".join(rf"(\*\*)?{re.escape(cell)}(\*\*)?" for cell in cells))
    return rows


@pytest.mark.parametrize("name", SPEED_TABLES)
def test_speed_and_memory_tables_match_their_results_file(name: str) -> None:
    assert f"benchmarks/results/{name}" in PERFORMANCE
    results = json.loads((RESULTS / name).read_text())
    command = results["command"].replace("--output benchmarks/results/", "--output X/")
    # The command printed above the table is the one that wrote the file.
    printed = " ".join(PERFORMANCE.replace("\\\n", " ").split())
    for flag in command.split("--")[1:4]:
        assert f"--{flag.strip()}" in printed, flag
    for row in _table_rows(results):
        assert re.search(row, PERFORMANCE), f"{name}: no row matching {row!r}"


def _final_val_accuracy(run: str) -> float:
    with open(RESULTS / run / "history.csv", newline="") as handle:
        return float(list(csv.DictReader(handle))[-1]["val_accuracy"])


@pytest.mark.parametrize(
    ("figure", "run", "where"),
    [
        ("82.7%", "improved_cli", "README"),
        ("**82.7%**", "improved_cli", "performance"),
        ("**89.2%**", "airbench_cli", "performance"),
        ("78.4%", "reference_cli", "performance"),
    ],
)
def test_recipe_accuracies_match_the_committed_runs(
    figure: str, run: str, where: str
) -> None:
    text = README if where == "README" else PERFORMANCE
    assert figure in text
    measured = _final_val_accuracy(run)
    assert f"{measured:.1%}" == figure.strip("*")


@pytest.mark.parametrize(
    ("figure", "run"), [("83.7%", "improved_cli"), ("**89.8%**", "airbench_cli")]
)
def test_flip_tta_accuracies_match_the_committed_runs(figure: str, run: str) -> None:
    assert figure in PERFORMANCE
    metrics = json.loads((RESULTS / run / "metrics.json").read_text())
    assert f"{metrics['validation_tta_flip']['accuracy']:.1%}" == figure.strip("*")


def test_memory_ratio_matches_the_measured_peak_rss() -> None:
    summary = json.loads((RESULTS / "bench_train_b64.json").read_text())["summary"]
    rss = {entry["mode"]: entry["peak_rss_mb_median"] for entry in summary}
    ratio = rss["trainer"] / rss["tutorial"]
    assert f"**{ratio:.2f}x**" in PERFORMANCE
    assert f"need {rss['tutorial'] / 1000:.1f} GB" in PERFORMANCE
