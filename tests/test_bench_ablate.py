"""benchmarks/airbench_ablate.py: its configurations, a tiny run and its summary."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip


def test_ablation_configurations_switch_one_item_each(load_benchmark) -> None:
    ablate = load_benchmark("airbench_ablate")
    port = ablate.settings_for("port")
    assert (port["batch_size"], port["drop_remainder"]) == (256, False)
    assert port["flip_mode"] == "random" and not port["lookahead"]
    full = ablate.settings_for("batch+lookahead+alt_flip+whiten_std+final_lr0")
    assert (full["batch_size"], full["drop_remainder"]) == (1024, True)
    assert full["lookahead"] and full["flip_mode"] == "alternating"
    assert (full["whitening_standardize"], full["whitening_dtype"]) == (True, "float32")
    assert full["final_fraction"] == 0.0
    # The batch-norm momentum per 1,024 images at the run's batch size.
    assert ablate.settings_for("bn_matched")["batch_norm_batch_size"] == 256
    assert ablate.settings_for("batch+bn_matched")["batch_norm_batch_size"] == 1024
    with pytest.raises(SystemExit, match="unknown item"):
        ablate.settings_for("batch+mixup")


def _jpeg_folder(root: Path, per_class: int) -> Path:
    rng = np.random.default_rng(0)
    for label, name in enumerate(CLASSES):
        folder = root / name
        folder.mkdir(parents=True)
        for index in range(per_class):
            pixels = rng.integers(0, 60, (32, 32, 3), np.uint8)
            pixels[:, :, label % 3] += np.uint8(20 * label)
            Image.fromarray(pixels).save(folder / f"{index:04d}.jpg")
    return root


def test_ablation_runs_and_summarises(load_benchmark, tmp_path: Path) -> None:
    ablate = load_benchmark("airbench_ablate")
    data = _jpeg_folder(tmp_path / "train", per_class=10)
    out = tmp_path / "results"
    argv = ["--data-dir", str(data), "--out", str(out), "--widths", "4", "8", "8"]
    argv += ["--epochs", "1", "--precision", "float32", "--configs"]
    assert ablate.main([*argv, "port", "lookahead+alt_flip+whiten_std"]) == 0
    result = json.loads((out / "lookahead+alt_flip+whiten_std_seed0.json").read_text())
    assert set(result["val_accuracy"]) == {
        "none", "flip", "flip_translate", "flip_probability_mean",
    }  # fmt: skip
    assert result["train_images"] == 90 and result["validation_images"] == 10
    assert result["settings"]["flip_mode"] == "alternating"
    assert result["cpu_model"] and len(result["load_average_end"]) == 3
    summary = (out / "summary.md").read_text()
    assert "| port | 0 | 1 | 256 |" in summary
    assert "| lookahead+alt_flip+whiten_std | 0 | 1 | 256 |" in summary
