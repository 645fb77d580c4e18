from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kerasimgcls import ImageFolderReport, check_image_folder
from kerasimgcls.cli import main


def _png(path: Path, array: np.ndarray, mode: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path)


@pytest.fixture
def messy(tmp_path: Path) -> Path:
    root = tmp_path / "messy"
    rng = np.random.default_rng(0)
    for i in range(6):
        _png(root / "cat" / f"{i}.png", rng.integers(0, 256, (8, 8, 3), np.uint8))
    _png(root / "dog" / "gray.png", rng.integers(0, 256, (8, 8), np.uint8), "L")
    _png(root / "dog" / "rgba.png", rng.integers(0, 256, (8, 8, 4), np.uint8), "RGBA")
    Image.fromarray(rng.integers(0, 256, (10, 12, 3), np.uint8)).save(
        root / "dog" / "photo.jpg"
    )
    full = (root / "dog" / "photo.jpg").read_bytes()
    (root / "dog" / "truncated.jpg").write_bytes(full[: len(full) // 2])
    (root / "dog" / "notes.jpg").write_text("plain text")
    (root / "cat" / "empty.png").write_bytes(b"")
    (root / "cat" / ".DS_Store").write_bytes(b"\x00")
    (root / "empty_class").mkdir()
    return root


@pytest.fixture
def clean(tmp_path: Path) -> Path:
    root = tmp_path / "clean"
    for label, name in enumerate(["a", "b"]):
        for i in range(3):
            _png(root / name / f"{i}.png", np.full((4, 4, 3), label * 50 + i, np.uint8))
    return root


def test_check_image_folder_reports_every_problem(messy: Path) -> None:
    before = sorted(p.relative_to(messy) for p in messy.rglob("*"))
    report = check_image_folder(messy, workers=2)
    assert isinstance(report, ImageFolderReport)
    assert not report.ok
    bad = {Path(b["path"]).name: b["reason"] for b in report.bad_files}
    assert set(bad) == {"truncated.jpg", "notes.jpg", "empty.png"}
    assert "truncated" in bad["truncated.jpg"].lower()
    assert "empty" in bad["empty.png"]
    assert all(b["path"].startswith(str(messy)) for b in report.bad_files)
    assert [Path(p).name for p in report.skipped_files] == [".DS_Store"]
    assert report.empty_classes == ("empty_class",)
    assert report.class_counts == {"train": {"cat": 6, "dog": 3, "empty_class": 0}}
    assert report.num_images == 9
    assert report.color_modes == {"RGB": 7, "L": 1, "RGBA": 1}
    assert report.image_sizes == {"8x8": 8, "10x12": 1}
    assert report.file_formats == {"PNG": 8, "JPEG": 1}
    assert report.imbalance_ratio == 2.0
    assert report.suggested_class_weights == pytest.approx({"cat": 0.75, "dog": 1.5})
    assert any("imbalanced" in w for w in report.warnings)
    assert any("sizes" in w for w in report.warnings)
    text = str(report)
    assert "notes.jpg" in text and "PROBLEM" in text and "empty_class" in text
    after = sorted(p.relative_to(messy) for p in messy.rglob("*"))
    assert before == after  # nothing deleted or moved


def test_check_image_folder_clean_and_json(clean: Path, tmp_path: Path) -> None:
    report = check_image_folder(clean)
    assert report.ok and report.problems == () and report.warnings == ()
    assert report.imbalance_ratio == 1.0
    saved = report.save(tmp_path / "out" / "report.json")
    loaded = json.loads(saved.read_text())
    assert loaded == json.loads(report.to_json())
    assert loaded["ok"] is True and loaded["class_counts"]["train"] == {"a": 3, "b": 3}


def test_check_image_folder_split_layout(clean: Path, tmp_path: Path) -> None:
    root = tmp_path / "split"
    root.mkdir()
    clean.rename(root / "train")
    (root / "test" / "a").mkdir(parents=True)
    _png(root / "test" / "a" / "x.png", np.zeros((4, 4, 3), np.uint8))
    (root / "test" / "b").mkdir()
    report = check_image_folder(root)
    assert report.class_counts["test"] == {"a": 1, "b": 0}
    assert report.empty_classes == ("test/b",)
    assert not report.ok


def test_check_image_folder_bad_arguments(tmp_path: Path, clean: Path) -> None:
    with pytest.raises(FileNotFoundError, match="path does not exist"):
        check_image_folder(tmp_path / "missing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="path must be a directory"):
        check_image_folder(tmp_path / "file")
    with pytest.raises(ValueError, match="has no class sub-folders"):
        check_image_folder(clean / "a")
    with pytest.raises(ValueError, match="imbalance_threshold must be a number >= 1"):
        check_image_folder(clean, imbalance_threshold=0.5)
    with pytest.raises(TypeError, match="imbalance_threshold must be a number"):
        check_image_folder(clean, imbalance_threshold="2")  # type: ignore[arg-type]


def test_doctor_cli_exit_codes_and_json(
    messy: Path, clean: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report.json"
    assert main(["doctor", str(messy), "--json", str(out)]) == 1
    printed = capsys.readouterr().out
    assert "truncated.jpg" in printed and "report saved to" in printed
    assert json.loads(out.read_text())["ok"] is False
    assert main(["doctor", str(clean), "--workers", "1"]) == 0
    assert "OK" in capsys.readouterr().out
    assert main(["doctor", str(tmp_path / "missing")]) == 2
    assert "PATH does not exist" in capsys.readouterr().err  # the CLI's word
