"""``kerasimgcls report``: one self-contained report.html that renders in Chromium."""

from __future__ import annotations

import base64
import io
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kerasimgcls.cli import main

_DATA_URI = re.compile(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'")
# Any reference a browser would fetch: src/href/url() not pointing at a data: URI.
_FETCHED = re.compile(r"""(?:src|href)\s*=\s*['"](?!data:)|url\(\s*['"]?(?!data:)""")

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


@pytest.fixture(scope="module")
def report(digits_run: Path) -> Path:
    assert main(["report", str(digits_run), "--grad-cam-images", "3"]) == 0
    return digits_run / "report.html"


def test_report_is_self_contained_with_every_section(report: Path) -> None:
    text = report.read_text(encoding="utf-8")
    for heading in (
        "Learning curves",
        "Per-class scores (test split, 359 images)",
        "Confusion matrix and top losses",
        "Grad-CAM on validation images",
        "Timing",
        "Configuration and versions",
    ):
        assert heading in text, heading
    assert "version of tensorflow" in text and "training time" in text
    assert text.count("<tr><td>") >= 10  # one row per digit class
    assert _FETCHED.search(text) is None  # nothing is loaded from anywhere
    pictures = _DATA_URI.findall(text)
    assert len(pictures) == 1 + 2 + 3  # curves, matrix and top losses, Grad-CAMs
    for encoded in pictures:
        with Image.open(io.BytesIO(base64.b64decode(encoded))) as picture:
            picture.verify()  # each embedded picture decodes


def test_report_refuses_bad_input(digits_run: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["report", str(tmp_path)]) == 2
    assert "has no run.json" in capsys.readouterr().err
    assert main(["report", str(digits_run), "--top-losses", "0"]) == 2
    assert "--top-losses must be >= 1" in capsys.readouterr().err


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.mark.slow
def test_report_renders_in_headless_chromium(report: Path, tmp_path: Path) -> None:
    browser = _chromium()
    if browser is None:
        pytest.skip("no Chromium installed (Debian: apt-get install chromium)")
    shot = tmp_path / "report.png"
    completed = subprocess.run(
        [
            browser,
            *CHROMIUM_FLAGS,
            f"--user-data-dir={tmp_path / 'profile'}",
            "--enable-logging=stderr",
            "--window-size=1280,2400",
            f"--screenshot={shot}",
            report.resolve().as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert shot.is_file(), completed.stderr[-3000:]
    failed = [
        line
        for line in completed.stderr.splitlines()
        if "Failed to load resource" in line or "net::ERR_" in line
    ]
    assert not failed, failed
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("L"), dtype=np.float32)
    assert pixels.shape == (2400, 1280)
    # Not blank: a white page has one grey level; text, tables and pictures many.
    assert len(np.unique(pixels)) > 50
    assert float(np.mean(pixels < 200)) > 0.02
