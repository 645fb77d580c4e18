"""The training benchmark: its --quick mode (what CI runs) and its arithmetic."""

from __future__ import annotations

import json

import pytest


def test_throughput_counts_only_steps_after_warmup(load_benchmark) -> None:
    bench = load_benchmark("bench_train")
    marks = [(1, 0.0), (2, 10.0), (3, 11.0), (4, 12.0), (5, 13.0)]
    # Steps 3..5 took 2 s for 2 steps of 64 images; the slow first steps are ignored.
    assert bench._throughput(marks, 3, 64) == pytest.approx(64.0)
    with pytest.raises(RuntimeError, match="too few timed steps"):
        bench._throughput(marks[:3], 3, 64)


def test_summary_takes_medians_and_ratios_to_the_tutorial(load_benchmark) -> None:
    bench = load_benchmark("bench_train")
    runs = []
    for mode, speeds in (("tutorial", [100, 300, 200]), ("library", [250, 240, 500])):
        for speed in speeds:
            runs.append(
                {
                    "mode": mode,
                    "lever": "none",
                    "batch_size": 64,
                    "threads": 2,
                    "images_per_second": speed,
                    "peak_rss_mb": 1000.0,
                }
            )
    runs.append({"mode": "library", "lever": "none", "error": ["boom"]})
    rows = {row["mode"]: row for row in bench._summarise(runs)}
    assert rows["tutorial"]["images_per_second_median"] == 200
    assert rows["library"]["images_per_second_median"] == 250
    assert rows["library"]["runs"] == 3
    assert rows["library"]["ratio_to_tutorial"] == pytest.approx(1.25)
    # 250 images/s x 205 MFLOP / 230 GFLOP/s
    assert rows["library"]["fraction_of_peak"] == pytest.approx(0.223, abs=1e-3)
    assert "| library | none | 64 | 2 | 3 | 250 |" in bench._format_table(
        list(rows.values())
    )


@pytest.mark.slow
def test_quick_mode_runs_and_writes_results(load_benchmark, tmp_path) -> None:  # type: ignore[no-untyped-def]
    bench = load_benchmark("bench_train")
    output = tmp_path / "bench.json"
    code = bench.main(
        [
            "--quick",
            "--modes",
            "tutorial",
            "library",
            "--quiet",
            "--output",
            str(output),
        ]
    )
    assert code == 0
    payload = json.loads(output.read_text())
    assert payload["quick"] is True
    assert payload["machine"]["tensorflow"]
    assert payload["machine"]["logical_cpus"] >= 1
    modes = {row["mode"] for row in payload["summary"]}
    assert modes == {"tutorial", "library"}
    for run in payload["runs"]:
        assert "error" not in run, run
        assert run["images_per_second"] > 0
        assert run["peak_rss_mb"] > 0
    tutorial = next(r for r in payload["summary"] if r["mode"] == "tutorial")
    assert tutorial["ratio_to_tutorial"] == 1.0
