from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_data.py"


@pytest.mark.slow
def test_bench_data_quick_writes_results(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("bench_data", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    output = tmp_path / "bench.json"
    code = module.main(
        [
            "--quick",
            "--images",
            "200",
            "--train-steps",
            "0",
            "--memory-rounds",
            "1",
            "--output",
            str(output),
        ]
    )
    assert code == 0
    results = json.loads(output.read_text())
    loading = results["loading"]
    assert loading["images"] == 200 and loading["image_shape"] == [32, 32, 3]
    assert loading["first_load_images_per_s"] > 0
    assert loading["cached_load_images_per_s"] > 0
    assert results["pipeline"]["pipeline_images_per_s"] > 0
    memory = results["memory"]
    assert memory["library_peak_mb"] > 0 and memory["tutorial_peak_mb"] > 0
    assert {"cpu_model", "tensorflow", "logical_cpus"} <= set(results["machine"])
