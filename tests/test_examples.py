"""Every script in examples/ runs in its --fast mode and does what its header says.

Each example runs in a fresh subprocess (as a user would run it), offline, writing
only into a temporary directory.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = REPO_ROOT / "examples"
SCRIPTS = sorted(path.name for path in EXAMPLES.glob("[0-9][0-9]_*.py"))
HEADER_SECTIONS = (
    "What it shows",
    "How long it takes here",
    "What it prints",
    "Run it",
)


# The arguments each example runs with (after --fast), in its own temporary folder.
RUN_ARGS = {
    "01_reproduce_cifar10.py": ("--run-dir", "cifar"),
    "02_train_image_folder.py": ("--run-dir", "shapes"),
    "03_extend_blocks_grayscale.py": ("--run-dir", "gray"),
    "04_interpret.py": ("--run-dir", "interp"),
    "05_resume.py": ("--run-dir", "resume"),
    "06_distribute.py": ("--run-dir", "dist", "--multi-worker"),
}


@pytest.fixture(scope="module")
def example_runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, tuple[str, Path]]:
    """Run the selected examples' fast modes all at once (most of each is TensorFlow
    starting up, which overlaps well) and return ``{name: (stdout, folder)}``."""
    selected = sorted(
        {
            item.callspec.params["name"]
            for item in request.session.items
            if getattr(item, "originalname", "") == "test_example_runs_in_fast_mode"
        }
    )
    started = {}
    for name in selected:
        folder = tmp_path_factory.mktemp(name.split("_")[0])
        env = dict(os.environ)
        env["TF_CPP_MIN_LOG_LEVEL"] = "3"
        env["KERASIMGCLS_CACHE_DIR"] = str(folder / "cache")
        env["MPLBACKEND"] = "Agg"
        (folder / "tmp").mkdir()
        env["TMPDIR"] = str(folder / "tmp")  # what the script leaves there is seen
        process = subprocess.Popen(
            [sys.executable, str(EXAMPLES / name), "--fast", *RUN_ARGS[name]],
            cwd=folder,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started[name] = (process, folder)
    results = {}
    for name, (process, folder) in started.items():
        try:
            stdout, stderr = process.communicate(timeout=900)
        except subprocess.TimeoutExpired:
            process.kill()
            stdout, stderr = process.communicate()
        results[name] = (process.returncode, stdout, stderr, folder)
    return {
        name: _checked(name, code, stdout, stderr, folder)
        for name, (code, stdout, stderr, folder) in results.items()
    }


def _checked(
    name: str, code: int, stdout: str, stderr: str, folder: Path
) -> tuple[str, Path]:
    if code != 0:
        # Reported by the test of this example, not by the fixture.
        stdout = f"__FAILED__ {name} exited with {code}\n{stdout}\n--- stderr\n{stderr[-4000:]}"
    return stdout, folder


def assert_png(path: Path) -> None:
    assert path.is_file(), f"missing {path}"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"not a PNG: {path}"


def assert_run_dir(run_dir: Path) -> dict[str, object]:
    for name in ("run.json", "history.csv", "history.json", "model.keras"):
        assert (run_dir / name).is_file(), f"{run_dir} has no {name}"
    info: dict[str, object] = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "finished", info["status"]
    return info


def check_01(out: str, tmp_path: Path) -> None:
    assert "cifar_cnn: 393,962 parameters" in out
    printed = re.search(r"test accuracy: ([0-9.]+) \(80 images\)", out)
    assert printed, out
    info = assert_run_dir(tmp_path / "cifar")
    assert info["class_names"][:2] == ["airplane", "automobile"]  # type: ignore[index]
    assert info["data"]["input_shape"] == [32, 32, 3]  # type: ignore[index]
    # The printed accuracy is the one the run recorded for its 80 test images.
    metrics = json.loads((tmp_path / "cifar" / "metrics.json").read_text())["test"]
    assert metrics["num_images"] == 80
    assert printed.group(1) == f"{metrics['accuracy']:.4f}"


def check_02(out: str, tmp_path: Path) -> None:
    # The check names the planted bad files; training then skips them.
    assert "truncated.jpg" in out and "notes.jpg" in out and ".DS_Store" in out
    assert "ImageDataset(shapes-" in out and "train=96, validation=24" in out
    printed = re.search(r"validation accuracy: ([0-9.]+) \(24 images\)", out)
    assert printed, out
    # The printed accuracy is the one the run recorded for its 24 images.
    metrics = json.loads((tmp_path / "shapes" / "metrics.json").read_text())
    assert metrics["validation"]["num_images"] == 24
    assert printed.group(1) == f"{metrics['validation']['accuracy']:.4f}"
    predictions = [line for line in out.splitlines() if line.startswith("circle/")]
    assert len(predictions) == 2, out
    info = assert_run_dir(tmp_path / "shapes")
    assert info["class_names"] == ["circle", "square", "triangle"]
    check = json.loads((tmp_path / "shapes" / "image_check.json").read_text())
    assert len(check["bad_files"]) == 2


def check_03(out: str, tmp_path: Path) -> None:
    assert "head_avgpool   -> (64,)" in out
    assert "gray_cnn: 33,642 parameters; cifar_cnn at (28, 28, 1): 331,946" in out
    printed = re.search(r"test accuracy: ([0-9.]+)", out)
    assert printed, out
    info = assert_run_dir(tmp_path / "gray")
    metrics = json.loads((tmp_path / "gray" / "metrics.json").read_text())["test"]
    assert printed.group(1) == f"{metrics['accuracy']:.4f}"
    assert info["model"]["name"] == "gray_cnn"  # type: ignore[index]
    assert info["data"]["input_shape"] == [28, 28, 1]  # type: ignore[index]


def check_04(out: str, tmp_path: Path) -> None:
    assert "precision" in out and "most confused" in out
    folder = tmp_path / "interp" / "interpret"
    for name in (
        "samples.png",
        "confusion_matrix.png",
        "top_losses.png",
        "grad_cam_0_predicted.png",
        "grad_cam_0_true.png",
        "embeddings.png",
        "similar.png",
    ):
        assert_png(folder / name)
    report = json.loads((folder / "report.json").read_text())
    # The accuracy is the confusion matrix's diagonal over its total.
    matrix = report["confusion_matrix"]
    diagonal = sum(row[i] for i, row in enumerate(matrix))
    assert sum(map(sum, matrix)) == report["num_samples"] > 0
    assert report["accuracy"] == pytest.approx(diagonal / report["num_samples"])
    assert_run_dir(tmp_path / "interp")


def check_05(out: str, tmp_path: Path) -> None:
    assert "exit code -9" in out, out  # the first run really was killed
    assert "identical history: True" in out, out
    assert "identical weights: True" in out, out
    info = assert_run_dir(tmp_path / "resume" / "interrupted")
    assert info["resumes"], "the second run did not resume"


def check_06(out: str, tmp_path: Path) -> None:
    rows = {
        line.split()[0]: line.split() for line in out.splitlines() if line[:1].isalpha()
    }
    assert rows["single"][2] == "1", out
    assert rows["mirrored"][1:3] == ["MirroredStrategy", "2"], out
    info = assert_run_dir(tmp_path / "dist" / "mirrored")
    assert info["strategy"] == {"type": "MirroredStrategy", "replicas": 2}
    # --multi-worker: two worker processes over loopback, one run written by the chief.
    assert rows["multi-worker"][1:3] == ["CollectiveAllReduceStrategy", "2"], out
    info = assert_run_dir(tmp_path / "dist" / "multi-worker")
    assert info["strategy"] == {"type": "CollectiveAllReduceStrategy", "replicas": 2}


CHECKS: dict[str, Callable[[str, Path], None]] = {
    "01_reproduce_cifar10.py": check_01,
    "02_train_image_folder.py": check_02,
    "03_extend_blocks_grayscale.py": check_03,
    "04_interpret.py": check_04,
    "05_resume.py": check_05,
    "06_distribute.py": check_06,
}


def test_every_example_has_a_check() -> None:
    assert SCRIPTS, "no examples found"
    assert sorted(CHECKS) == SCRIPTS
    assert sorted(RUN_ARGS) == SCRIPTS


@pytest.mark.parametrize("name", SCRIPTS)
def test_example_header_and_fast_mode(name: str) -> None:
    source = (EXAMPLES / name).read_text(encoding="utf-8")
    doc = ast.get_docstring(ast.parse(source)) or ""
    for section in HEADER_SECTIONS:
        assert section in doc, f"{name}'s header has no {section!r} section"
    assert '"--fast"' in source, f"{name} has no --fast mode"
    # No absolute paths of one machine: examples take their folders as arguments.
    assert not re.search(r"""["'](/(home|root|tmp|work|Users)/)""", source)


@pytest.mark.slow
@pytest.mark.timeout(1200)  # the shared fixture waits up to 900 s for the examples
@pytest.mark.parametrize("name", SCRIPTS)
def test_example_runs_in_fast_mode(
    name: str, example_runs: dict[str, tuple[str, Path]]
) -> None:
    out, folder = example_runs[name]
    assert not out.startswith("__FAILED__"), out
    assert "its accuracy is not meaningful" in out
    CHECKS[name](out, folder)
    # The temporary folders the script made for itself are gone. (TensorFlow's
    # autograph files stay behind a process killed on purpose, as 05 does.)
    leftovers = sorted(
        path.name
        for path in (folder / "tmp").iterdir()
        if not path.name.startswith("__autograph_generated_file")
    )
    assert not leftovers, leftovers
