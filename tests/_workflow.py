"""The user's workflow, one fresh interpreter per step (driven by test_workflow.py).

``python tests/_workflow.py train ROOT``: one process trains every run of RUNS
through the CLI's own ``main()`` (and one under a distribution strategy through the
Trainer), as a user's first shell would.

``python tests/_workflow.py use ROOT``: a second, fresh process, which has trained
nothing, uses every run: ``keras.saving.load_model`` right after ``import
kerasimgcls`` (before anything else can register the library's objects), then
``kic.load_model`` and each command, then the rerun of the same ``train`` command,
which must reuse the finished run.

``python tests/_workflow.py serve ROOT``: a third process, in which kerasimgcls
cannot be imported, loads each export with its own runtime and writes the
probabilities, for the test to compare with ``kic.predict_proba``.

Each step writes ``ROOT/<step>.json``: per run and command, the exit code, the
seconds, and the last lines of standard error.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

# Run name -> train arguments after "train" (the folder is ROOT/folder).
RUNS: dict[str, list[str]] = {
    "digits": ["--dataset", "digits", "--epochs", "1"],
    "digits_cosine": ["--dataset", "digits", "--schedule", "cosine", "--epochs", "1"],
    "digits_averaging_tta": [
        "--dataset", "digits", "--schedule", "one_cycle", "--epochs", "2",
        "--weight-averaging", "default", "--tta", "flip",
    ],
    "digits_init_from": [
        "--dataset", "digits", "--schedule", "triangle", "--epochs", "1",
        "--init-from", "{root}/runs/digits",
    ],
    "digits_fused_float32": [
        "--dataset", "digits", "--epochs", "1", "--fused-batch-norm",
        "--precision", "float32",
    ],
    "folder": ["--data-dir", "{root}/folder", "--epochs", "2"],
    "reference": ["--data-dir", "{root}/folder", "--recipe", "reference", "--epochs", "1"],
    "improved": ["--data-dir", "{root}/folder", "--recipe", "improved", "--epochs", "1"],
    "airbench": [
        "--data-dir", "{root}/folder", "--recipe", "airbench", "--epochs", "1",
        "--batch-size", "32",
    ],
    "transfer": [
        "--data-dir", "{root}/folder", "--recipe", "transfer", "--epochs", "2",
        "--model-arg", "weights=null", "--fine-tune", "warmup_epochs=1",
    ],
}  # fmt: skip
# Trained through the Trainer under tf.distribute.MirroredStrategy (two logical CPUs).
STRATEGY_RUN = "digits_mirrored"
ALL_RUNS = [*RUNS, STRATEGY_RUN]
# Every run is exported in every format; a digits and a folder image are predicted.
FORMATS = ("saved_model", "onnx", "litert")
EXPORT_PATHS = {
    "saved_model": "saved_model",
    "onnx": "model.onnx",
    "litert": "m.tflite",
}


def _argv(name: str, root: Path) -> list[str]:
    words = [word.replace("{root}", str(root)) for word in RUNS[name]]
    return ["train", *words, "--run-dir", str(root / "runs" / name), "-q"]


def _call(argv: list[str]) -> dict[str, Any]:
    """Run the CLI's main() once; its exit code, time and last lines of stderr."""
    from kerasimgcls.cli import main

    err, out = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse
            code = int(exit_.code or 0)
        except BaseException as crash:  # recorded, so one cell cannot hide others
            code = -1
            print(f"{type(crash).__name__}: {crash}", file=sys.stderr)
    return {
        "argv": argv,
        "code": code,
        "seconds": round(time.perf_counter() - start, 2),
        "stderr": err.getvalue().strip().splitlines()[-5:],
        "stdout": out.getvalue().strip().splitlines()[-40:],
    }


def train(root: Path) -> dict[str, Any]:
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(2)]
    )
    results = {name: _call(_argv(name, root)) for name in RUNS}
    start = time.perf_counter()
    import kerasimgcls as kic

    data = kic.load_digits(validation_split=0.1, seed=0)
    trainer = kic.Trainer(
        lambda: kic.build_cifar_cnn(input_shape=data.input_shape, num_classes=10),
        strategy=tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]),
        run_dir=root / "runs" / STRATEGY_RUN,
        verbose=0,
    )
    trainer.fit(data, epochs=1, batch_size=64)
    results[STRATEGY_RUN] = {"code": 0, "seconds": time.perf_counter() - start}
    return results


def _images(run: Path) -> list[Path]:
    """Two image files of the run's kind (digits 8x8 grey, or the folder's)."""
    config = json.loads((run / "run.json").read_text())
    folder = config["data"].get("data_dir")
    if folder:
        return sorted((Path(folder) / "test").rglob("*.png"))[:2]
    return sorted((run.parent.parent / "digit_images").glob("*.png"))


def use(root: Path) -> dict[str, Any]:
    import keras

    import kerasimgcls as kic

    runs = {name: root / "runs" / name for name in ALL_RUNS}
    results: dict[str, Any] = {name: {} for name in runs}
    # First, before kerasimgcls has loaded anything but its package: the Keras way.
    for name, run in runs.items():
        start = time.perf_counter()
        try:
            keras.saving.load_model(run / "model.keras")
            code = 0
            detail: list[str] = []
        except Exception as err:
            code, detail = 1, [f"{type(err).__name__}: {str(err)[:300]}"]
        results[name]["keras.saving.load_model"] = {
            "code": code,
            "seconds": round(time.perf_counter() - start, 2),
            "stderr": detail,
        }
    for name, run in runs.items():
        results[name].update(_use_run(kic, name, run, root))
    return results


def _use_run(kic: Any, name: str, run: Path, root: Path) -> dict[str, Any]:
    images = _images(run)
    cells: dict[str, Any] = {}
    probabilities: dict[str, Any] = {}
    for kind, target in (("run", run), ("file", run / "model.keras")):
        start = time.perf_counter()
        try:
            model = kic.load_model(target)
            code, detail = 0, []
        except Exception as err:
            code, detail = 1, [f"{type(err).__name__}: {str(err)[:300]}"]
        cells[f"kic.load_model({kind})"] = {
            "code": code,
            "seconds": round(time.perf_counter() - start, 2),
            "stderr": detail,
        }
    if cells["kic.load_model(run)"]["code"] == 0:
        decoded = np.stack([_decode(path, model) for path in images])
        probabilities["keras"] = kic.predict_proba(model, decoded).tolist()
        np.save(root / "serve" / f"{name}-images.npy", decoded)
    out = root / "out" / name
    out.mkdir(parents=True, exist_ok=True)
    paths = [str(path) for path in images]
    commands = {
        "evaluate": ["evaluate", str(run)],
        "predict files": ["predict", str(run), *paths, "--output", f"{out}/p.csv"],
        "predict folder json": [
            "predict", str(run), str(images[0].parent), "--output", f"{out}/p.json",
        ],
        "explain gradcam": ["explain", str(run), paths[0], "--out", f"{out}/cam"],
        "explain gradcam++": [
            "explain", str(run), paths[0], "--method", "gradcam++", "--out", f"{out}/pp",
        ],
        "report": ["report", str(run)],
        "summary": ["summary", str(run)],
        **{
            f"export {fmt}": [
                "export", str(run), "--format", fmt,
                "--output", str(root / "serve" / name / EXPORT_PATHS[fmt]),
            ]
            for fmt in FORMATS
        },
    }  # fmt: skip
    for command, argv in commands.items():
        cells[command] = _call(argv)
    if name in RUNS:
        before = _trained_state(run)
        cell = _call(_argv(name, root))
        if _trained_state(run) != before or "reusing it" not in " ".join(
            cell["stdout"] + cell["stderr"]
        ):
            cell["code"] = -2  # trained again instead of reusing the finished run
            cell["stderr"].append("the rerun changed the history or the weights")
        cells["rerun train"] = cell
    (root / "serve" / f"{name}-keras.json").write_text(json.dumps(probabilities))
    return cells


def _trained_state(run: Path) -> tuple[str, str]:
    """The history and the digest of the final weights: a reuse changes neither."""
    final = json.loads((run / "run.json").read_text()).get("final", {})
    return (run / "history.csv").read_text(), str(final.get("weights_sha256"))


def _decode(path: Path, model: Any) -> Any:
    from PIL import Image

    height, width, channels = model.input_shape[1:]
    with Image.open(path) as image:
        mode = "L" if channels == 1 else "RGB"
        pixels = np.asarray(image.convert(mode).resize((width, height)), np.uint8)
    return pixels.reshape(height, width, channels)


def serve(root: Path) -> dict[str, Any]:
    sys.modules["kerasimgcls"] = None  # type: ignore[assignment]  # import fails
    results: dict[str, Any] = {}
    for name in ALL_RUNS:
        images = np.load(root / "serve" / f"{name}-images.npy")
        results[name] = {}
        for fmt in FORMATS:
            path = root / "serve" / name / EXPORT_PATHS[fmt]
            try:
                results[name][fmt] = _serve_one(fmt, path, images).tolist()
            except Exception as err:
                results[name][fmt] = f"{type(err).__name__}: {err}"
    return results


def _serve_one(fmt: str, path: Path, images: Any) -> Any:
    if fmt == "saved_model":
        import tensorflow as tf

        loaded = tf.saved_model.load(str(path))  # kept: serve uses its variables
        return loaded.serve(images).numpy()
    if fmt == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(str(path))
        return session.run(None, {session.get_inputs()[0].name: images})[0]
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(str(path))
    index = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(index, images.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(index, images)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


if __name__ == "__main__":
    step, folder = sys.argv[1], Path(sys.argv[2])
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    outcome = {"train": train, "use": use, "serve": serve}[step](folder)
    (folder / f"{step}.json").write_text(json.dumps(outcome, indent=1, default=str))
