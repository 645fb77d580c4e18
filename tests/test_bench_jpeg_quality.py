"""benchmarks/jpeg_quality.py reads back the quality and subsampling of JPEGs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image


@pytest.mark.parametrize("quality", [30, 50, 75, 95])
def test_quality_is_read_back_from_the_quantisation_table(
    load_benchmark, tmp_path: Path, quality: int
) -> None:
    bench = load_benchmark("jpeg_quality")
    pixels = np.random.default_rng(quality).integers(0, 256, (32, 32, 3), np.uint8)
    path = tmp_path / "image.jpg"
    Image.fromarray(pixels).save(path, quality=quality)
    with Image.open(path) as image:
        assert bench.estimate_quality(image.quantization[0]) == quality


def test_survey_counts_qualities_and_subsampling(
    load_benchmark, tmp_path: Path
) -> None:
    bench = load_benchmark("jpeg_quality")
    pixels = np.random.default_rng(0).integers(0, 256, (32, 32, 3), np.uint8)
    for name, quality, subsampling in (
        ("cat/a.jpg", 75, 2),
        ("cat/b.jpg", 75, 2),
        ("dog/c.jpg", 90, 0),
    ):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        Image.fromarray(pixels).save(
            tmp_path / name, quality=quality, subsampling=subsampling
        )
    output = tmp_path / "out.json"
    assert bench.main([str(tmp_path), "--output", str(output)]) == 0
    result = json.loads(output.read_text())
    assert result["files"] == 3
    assert result["quality"] == {"75": 2, "90": 1}
    assert result["subsampling"] == {"4:2:0": 2, "4:4:4": 1}
    sizes = [path.stat().st_size for path in tmp_path.rglob("*.jpg")]
    assert result["mean_bytes"] == pytest.approx(np.mean(sizes), abs=0.1)


def test_an_empty_folder_is_refused(load_benchmark, tmp_path: Path) -> None:
    bench = load_benchmark("jpeg_quality")
    with pytest.raises(SystemExit, match=r"no \.jpg files"):
        bench.survey(tmp_path)
