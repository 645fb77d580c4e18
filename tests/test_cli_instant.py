"""Usage errors are answered at once: before TensorFlow loads, in one line, exit 2.

Each case runs as a user runs it (``python -m kerasimgcls ...`` in a fresh
process, timed), and all of them once more in one process that then shows that
neither TensorFlow nor Keras was imported. Also: unknown flags get the nearest
one, abbreviations are refused, ``summary --list`` is the registry's list, and
``doctor`` advises in flags on the command line and in arguments in Python.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kerasimgcls.cli import build_parser, main
from kerasimgcls.cli._common import MODEL_NAMES

REPO_ROOT = Path(__file__).resolve().parents[1]
# Generous for a loaded CI machine; the in-process check below is the strict one
# (no TensorFlow), and the measured times are in docs/guide/cli.md.
LIMIT_S = 1.5


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A folder that is not a run, a fake model file and an image."""
    root = tmp_path_factory.mktemp("instant")
    not_a_run = root / "not_a_run"
    not_a_run.mkdir()
    model = root / "model.keras"
    with zipfile.ZipFile(model, "w") as archive:  # a zip: passes the quick checks
        archive.writestr("config.json", "{}")
    image = root / "a.png"
    Image.new("RGB", (8, 8)).save(image)
    return {
        "not_a_run": str(not_a_run),
        "model": str(model),
        "image": str(image),
        "text_model": str(root / "notes.txt"),
    }


# (argv, words the one line must hold). "{...}" are filled from `places`.
CASES: list[tuple[list[str], list[str]]] = [
    (["train", "--data-dir", "/no/such/dir"], ["--data-dir", "/no/such/dir"]),
    (["train", "--epochs", "-1"], ["--epochs", ">= 1"]),
    (["train", "--batch-size", "0"], ["--batch-size"]),
    (["train", "--image-size", "0"], ["--image-size"]),
    (["train", "--image-size", "64,99999"], ["--image-size", "8,192"]),
    (["train", "--learning-rate", "0"], ["--learning-rate", "> 0"]),
    (["train", "--label-smoothing", "1"], ["--label-smoothing", "[0, 1)"]),
    (["train", "--validation-split", "1.5"], ["--validation-split"]),
    (["train", "--seed", "-1"], ["--seed"]),
    (["train", "--epohcs", "3"], ["unknown option --epohcs; did you mean --epochs?"]),
    (["train", "--epoch", "3"], ["unknown option --epoch; did you mean --epochs?"]),
    (["train", "--model", "cifar_cn"], ["Unknown model 'cifar_cn'", "cifar_cnn"]),
    (["train", "--recipe", "nope"], ["Unknown recipe 'nope'"]),
    (["train", "--init-from", "/no/such/run"], ["--init-from"]),
    (["train", "--model-arg", "dropout"], ["--model-arg", "KEY=VALUE"]),
    (["trian"], ["unknown command 'trian'; did you mean train?"]),
    (["evaluate", "runs/does-not-exist"], ["RUN_DIR does not exist"]),
    (["evaluate", "{not_a_run}"], ["RUN_DIR has no run.json"]),
    (["evaluate", "{not_a_run}", "--batch-size", "0"], ["--batch-size"]),
    (["report", "runs/does-not-exist"], ["RUN_DIR does not exist"]),
    (["report", "{not_a_run}", "--top-losses", "0"], ["--top-losses"]),
    (["predict", "runs/does-not-exist", "{image}"], ["RUN_DIR does not exist"]),
    (["predict", "{model}", "/no/such.png"], ["PATH does not exist"]),
    (["predict", "{model}", "{image}", "--top-k", "0"], ["--top-k"]),
    (["predict", "{model}", "{image}", "--output", "p.txt"], ["--output"]),
    (["predict", "{text_model}", "{image}"], ["RUN_DIR does not exist"]),
    (["explain", "runs/does-not-exist", "{image}"], ["RUN_DIR does not exist"]),
    (["explain", "{model}", "/no/such.png"], ["IMAGE does not exist"]),
    (["explain", "{model}", "{image}", "--alpha", "2"], ["--alpha"]),
    (
        ["export", "runs/does-not-exist", "--format", "onnx", "--output", "m.onnx"],
        ["RUN_DIR does not exist"],
    ),
    (
        ["export", "{model}", "--format", "onnx", "--output", "m.txt"],
        ["--output", ".onnx"],
    ),
    (["summary", "runs/does-not-exist"], ["MODEL does not exist"]),
    (["summary", "nope"], ["Unknown model 'nope'"]),
    (["summary", "--num-classes", "0"], ["--num-classes"]),
    (["doctor", "/no/such/dir"], ["PATH does not exist"]),
    (["doctor", "{image}"], ["PATH must be a directory"]),
    (["lr-find", "--data-dir", "/no/such/dir"], ["--data-dir"]),
    (["lr-find", "--min-lr", "1", "--max-lr", "0.1"], ["--min-lr", "--max-lr"]),
]


def _filled(argv: list[str], places: dict[str, str]) -> list[str]:
    return [word.format(**places) for word in argv]


def _environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")}


@pytest.mark.parametrize(
    ("argv", "words"), CASES, ids=[" ".join(argv) for argv, _ in CASES]
)
def test_usage_error_is_one_line_exit_2_at_once(
    argv: list[str], words: list[str], places: dict[str, str], tmp_path: Path
) -> None:
    start = time.perf_counter()
    completed = subprocess.run(
        [sys.executable, "-m", "kerasimgcls", *_filled(argv, places)],
        capture_output=True,
        text=True,
        env=_environment(),
        cwd=tmp_path,
        timeout=60,
    )
    elapsed = time.perf_counter() - start
    assert completed.returncode == 2, completed.stderr
    lines = completed.stderr.splitlines()
    assert len(lines) == 1, completed.stderr
    assert lines[0].startswith(f"kerasimgcls{' ' if argv[0] != 'trian' else ''}")
    for word in words:
        assert word in lines[0], lines[0]
    assert completed.stdout == ""
    assert elapsed < LIMIT_S, f"{elapsed:.2f} s: {argv}"


def test_usage_errors_import_neither_tensorflow_nor_keras(
    places: dict[str, str], tmp_path: Path
) -> None:
    cases = [_filled(argv, places) for argv, _ in CASES]
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import json, sys
                from kerasimgcls.cli import main
                results = []
                for argv in {cases!r}:
                    code = main(argv)
                    heavy = [m for m in ("tensorflow", "keras") if m in sys.modules]
                    results.append([argv, code, heavy])
                print(json.dumps(results))
                """
            ),
        ],
        capture_output=True,
        text=True,
        env=_environment(),
        cwd=tmp_path,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    for argv, code, heavy in json.loads(completed.stdout.splitlines()[-1]):
        assert code == 2, argv
        assert heavy == [], (argv, heavy)


def test_abbreviated_flags_are_refused_by_every_parser(capsys) -> None:  # type: ignore[no-untyped-def]
    parser = build_parser()
    assert parser.allow_abbrev is False
    for name, command in parser.commands.items():  # type: ignore[attr-defined]
        assert command.allow_abbrev is False, name
    # --epoch is not --epochs: it is refused, naming the flag meant.
    assert main(["train", "--epoch", "3", "--dataset", "digits"]) == 2
    assert "did you mean --epochs?" in capsys.readouterr().err
    assert main(["predict", "run", "a.png", "--topk", "2"]) == 2
    assert "did you mean --top-k?" in capsys.readouterr().err
    assert main(["train", "--verbose"]) == 2
    assert "kerasimgcls --verbose train" in capsys.readouterr().err


def test_summary_list_is_the_registry_and_needs_no_tensorflow() -> None:
    from kerasimgcls.models import list_models

    assert list(MODEL_NAMES) == list_models()
    completed = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys\nfrom kerasimgcls.cli import main\n"
            "code = main(['summary', '--list'])\n"
            "print(code, 'tensorflow' in sys.modules, 'keras' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        env=_environment(),
        timeout=60,
    )
    *names, last = completed.stdout.splitlines()
    assert names == list_models()
    assert last == "0 False False"


def _messy_folder(root: Path) -> Path:
    """Classes of 2 and 6 images, two sizes, one broken file."""
    for label, count in (("cat", 2), ("dog", 6)):
        (root / label).mkdir(parents=True)
        for index in range(count):
            side = 8 if index % 2 else 12
            Image.fromarray(np.zeros((side, side, 3), np.uint8)).save(
                root / label / f"{index}.png"
            )
    (root / "cat" / "broken.png").write_bytes(b"not a png")
    return root


# Each piece of doctor's advice: its Python words, its command-line words.
ADVICE = [
    ("or load with on_error='skip'", "or train with --skip-bad-images"),
    (
        "pass image_size=(height, width) to load_image_folder to resize them",
        "or pass --image-size HEIGHT,WIDTH",
    ),
    ("consider class_weight='balanced'", "consider --class-weight balanced"),
]


@pytest.mark.parametrize(("python_words", "cli_words"), ADVICE)
def test_doctor_advises_in_python_words_from_python_and_flags_from_the_cli(
    python_words: str, cli_words: str, tmp_path: Path, capsys
) -> None:  # type: ignore[no-untyped-def]
    from kerasimgcls import check_image_folder

    folder = _messy_folder(tmp_path / "pets")
    report = check_image_folder(folder)
    advice = " ".join((*report.problems, *report.warnings))
    assert python_words in advice and cli_words not in advice
    assert main(["doctor", str(folder)]) == 1
    printed = capsys.readouterr().out
    assert cli_words in printed and python_words not in printed
    for python_only in (
        "on_error=",
        "image_size=",
        "class_weight=",
        "load_image_folder",
    ):
        assert python_only not in printed
