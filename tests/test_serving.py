"""Exports for serving load without kerasimgcls and give ``kerasimgcls predict``'s
probabilities: SavedModel with plain TensorFlow, ONNX with onnxruntime, LiteRT with
its interpreter, each in a subprocess that refuses ``import kerasimgcls``."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kerasimgcls.cli import main

# Measured on the digits run below (see the report of the change): SavedModel and
# LiteRT run TensorFlow's float32 kernels, ONNX Runtime its own.
TOLERANCE = {"saved_model": 1e-5, "onnx": 1e-4, "litert": 1e-5}

_REFUSE_KERASIMGCLS = """
import sys

class _Refuse:
    def find_spec(self, name, path=None, target=None):
        if name == "kerasimgcls" or name.startswith("kerasimgcls."):
            raise ImportError("this process serves without kerasimgcls")
        return None

sys.meta_path.insert(0, _Refuse())
"""

_LOADERS = {
    "saved_model": """
import tensorflow as tf
serve = tf.saved_model.load(path).signatures["serving_default"]
(name,) = serve.structured_input_signature[1]
(output,) = serve(**{name: tf.constant(images)}).values()
probabilities = output.numpy()
""",
    "onnx": """
import onnxruntime
session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
(probabilities,) = session.run(None, {session.get_inputs()[0].name: images})
meta = session.get_modelmeta().custom_metadata_map
assert json.loads(meta["class_names"]) == class_names, meta
""",
    "litert": """
try:
    from ai_edge_litert.interpreter import Interpreter
except ImportError:
    from tensorflow.lite import Interpreter
interpreter = Interpreter(path)
(details,) = interpreter.get_input_details()
interpreter.resize_tensor_input(details["index"], images.shape)
interpreter.allocate_tensors()
interpreter.set_tensor(details["index"], images)
interpreter.invoke()
probabilities = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
""",
}

_SCRIPT = """
import json
import numpy as np
path, names_path, images_path, output_path = sys.argv[1:]
images = np.load(images_path)
with open(names_path, encoding="utf-8") as handle:
    class_names = handle.read().split("\\n")[:-1]
{loader}
assert not any(m.startswith("kerasimgcls") for m in sys.modules)
np.save(output_path, np.asarray(probabilities, dtype=np.float32))
"""


# Where each export goes: SavedModel is a folder, the others are one file, as keras'
# model.export writes them.
OUTPUT = {"saved_model": "serve", "onnx": "digits.onnx", "litert": "digits.tflite"}


def class_names_file(format: str, path: Path) -> Path:
    """The class names of an export: inside a SavedModel, beside a model file."""
    if format == "saved_model":
        return path / "class_names.txt"
    return path.with_name(path.name + ".class_names.txt")


def _missing(format: str) -> list[str]:
    needs = {
        "saved_model": [],
        "onnx": ["tf2onnx", "onnx", "onnxruntime"],
        "litert": [],
    }[format]
    return [name for name in needs if importlib.util.find_spec(name) is None]


@pytest.fixture(scope="module")
def run(digits_run, tmp_path_factory):  # type: ignore[no-untyped-def]
    """The shared digits run, test images as PNG files and as an array."""
    from kerasimgcls import load_digits

    root = tmp_path_factory.mktemp("serving")
    run_dir = digits_run
    images = load_digits(seed=0).test.images[:12]
    paths = []
    for index, image in enumerate(images):
        path = root / f"digit{index}.png"
        Image.fromarray(image[:, :, 0]).save(path)
        paths.append(str(path))
    np.save(root / "images.npy", images)
    return run_dir, paths, root / "images.npy"


def _predicted(run_dir: Path, paths: list[str], capsys) -> np.ndarray:  # type: ignore[no-untyped-def]
    """``kerasimgcls predict --json`` as an array, one column per class."""
    capsys.readouterr()
    assert main(["predict", str(run_dir), *paths, "--json", "-k", "10"]) == 0
    results = json.loads(capsys.readouterr().out)
    names = json.loads((run_dir / "run.json").read_text())["class_names"]
    rows = []
    for result in results:
        by_name = {item["class"]: item["probability"] for item in result["top_k"]}
        rows.append([by_name[name] for name in names])
    return np.asarray(rows, dtype=np.float32)


@pytest.mark.slow
@pytest.mark.parametrize("format", ["saved_model", "onnx", "litert"])
def test_export_serves_without_kerasimgcls_and_matches_predict(
    format, run, tmp_path, capsys
) -> None:  # type: ignore[no-untyped-def]
    missing = _missing(format)
    if missing:
        pytest.skip(f"{format} needs {missing} (pip install 'kerasimgcls[export]')")
    run_dir, paths, images_path = run
    path = tmp_path / OUTPUT[format]
    assert (
        main(["export", str(run_dir), "--format", format, "--output", str(path)]) == 0
    )
    assert f"wrote {format} to {path}" in capsys.readouterr().out
    assert path.is_dir() if format == "saved_model" else path.is_file()
    names_file = class_names_file(format, path)
    names = names_file.read_text().splitlines()
    assert names == json.loads((run_dir / "run.json").read_text())["class_names"]
    script = tmp_path / "serve.py"
    script.write_text(
        _REFUSE_KERASIMGCLS + _SCRIPT.format(loader=textwrap.dedent(_LOADERS[format]))
    )
    result = tmp_path / "probabilities.npy"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    completed = subprocess.run(
        [
            sys.executable,
            str(script),
            str(path),
            str(names_file),
            str(images_path),
            str(result),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    served = np.load(result)
    expected = _predicted(run_dir, paths, capsys)
    assert served.shape == expected.shape == (12, 10)
    difference = float(np.max(np.abs(served - expected)))
    print(f"{format}: max |served - predict| = {difference:.3g}")
    assert difference <= TOLERANCE[format]


def test_the_refusing_hook_refuses(tmp_path) -> None:  # type: ignore[no-untyped-def]
    script = tmp_path / "refuse.py"
    script.write_text(_REFUSE_KERASIMGCLS + "import kerasimgcls\n")
    completed = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60
    )
    assert completed.returncode != 0
    assert "serves without kerasimgcls" in completed.stderr


def test_export_refuses_a_missing_extra_and_a_full_folder(
    run, tmp_path, capsys, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    run_dir, _paths, _images = run
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "tf2onnx" else real(name, *a),
    )
    argv = ["export", str(run_dir), "--output", str(tmp_path / "x.onnx")]
    assert main([*argv, "--format", "onnx"]) == 2
    error = capsys.readouterr().err
    assert "needs tf2onnx" in error and "pip install 'kerasimgcls[export]'" in error
    monkeypatch.undo()
    occupied = tmp_path / "occupied"
    occupied.mkdir()
    (occupied / "notes.txt").write_text("mine")
    argv = ["export", str(run_dir), "--format", "saved_model", "--output"]
    assert main([*argv, str(occupied)]) == 2
    assert "--output" in capsys.readouterr().err
    assert main([*argv, str(occupied), "--overwrite"]) == 2  # not an export: kept
    assert (occupied / "notes.txt").read_text() == "mine"
    folder = tmp_path / "serve"
    assert main([*argv, str(folder)]) == 0
    assert main([*argv, str(folder)]) == 2
    assert main([*argv, str(folder), "--overwrite"]) == 0
    assert (folder / "saved_model.pb").is_file()
