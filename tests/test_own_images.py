"""A folder of one's own images: the default recipe, and predict on folders.

The folders are drawn by the tests: a bright shape (circle, square, triangle, ...)
of random size and place on dark noise, one class per shape, half PNG and half
JPEG, so a person sees the class at a glance.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

import kerasimgcls as kic
from kerasimgcls.cli import main

SHAPES = ("circle", "square", "triangle", "cross", "bar")


def _draw(kind: str, size: int, rng: np.random.Generator) -> Image.Image:
    background = tuple(int(v) for v in rng.integers(0, 90, 3))
    colour = tuple(int(v) for v in rng.integers(150, 256, 3))
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    radius = rng.uniform(0.22, 0.34) * size
    cx, cy = rng.uniform(radius + 1, size - radius - 1, 2)
    arm = radius / 3
    if kind == "circle":
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=colour)
    elif kind == "square":
        draw.rectangle(
            [cx - radius, cy - radius, cx + radius, cy + radius], fill=colour
        )
    elif kind == "triangle":
        corners = [
            (cx, cy - radius),
            (cx - radius, cy + radius),
            (cx + radius, cy + radius),
        ]
        draw.polygon(corners, fill=colour)
    else:
        draw.rectangle([cx - radius, cy - arm, cx + radius, cy + arm], fill=colour)
        if kind == "cross":
            draw.rectangle([cx - arm, cy - radius, cx + arm, cy + radius], fill=colour)
    noise = rng.integers(-12, 13, (size, size, 3))
    pixels = np.clip(np.asarray(image).astype(np.int16) + noise, 0, 255)
    return Image.fromarray(pixels.astype(np.uint8))


def make_folder(
    root: Path, *, classes: int, per_class: int, size: int, seed: int
) -> Path:
    """Write ``classes`` sub-folders of ``per_class`` shapes, PNG and JPEG."""
    rng = np.random.default_rng(seed)
    for kind in SHAPES[:classes]:
        folder = root / kind
        folder.mkdir(parents=True)
        for index in range(per_class):
            image = _draw(kind, size, rng)
            if index % 2:
                image.save(folder / f"{index:03d}.jpg", quality=92)
            else:
                image.save(folder / f"{index:03d}.png")
    return root


def test_folder_recipe_derives_its_settings_from_the_steps() -> None:
    small = kic.get_recipe("folder").for_data(108, (32, 32, 3))
    assert (small.epochs, small.batch_size) == (40, 32)
    assert small.model_kwargs["batch_norm_momentum"] == 0.9
    assert small.augment == {"flip": True, "translate": 2}
    assert small.precise_batch_norm and small.restore_best_weights
    large = kic.get_recipe("folder").for_data(30000, (64, 64, 3))
    assert (large.epochs, large.batch_size) == (15, 64)
    assert large.model_kwargs["batch_norm_momentum"] == 0.99
    assert large.augment == {"flip": True, "translate": 4}
    reference = kic.get_recipe("reference")
    assert reference.for_data(108, (32, 32, 3)) is reference
    assert not reference.precise_batch_norm


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):  # type: ignore[no-untyped-def]
    """``kerasimgcls train --data-dir DIR`` with no other flag, on 3 x 40 shapes."""
    root = tmp_path_factory.mktemp("own")
    train = make_folder(root / "shapes", classes=3, per_class=40, size=32, seed=0)
    new = make_folder(root / "new", classes=3, per_class=20, size=32, seed=1)
    run_dir = root / "run"
    code = main(["train", "--data-dir", str(train), "--run-dir", str(run_dir), "-q"])
    assert code == 0
    return train, new, run_dir


def test_default_folder_training_is_right_at_inference(folder_run, capsys) -> None:  # type: ignore[no-untyped-def]
    train, new, run_dir = folder_run
    run = json.loads((run_dir / "run.json").read_text())
    assert run["recipe"]["name"] == "folder"
    assert run["config"]["precise_batch_norm"] and run["config"]["restore_best_weights"]
    kept = run["final"]["kept_epoch"]
    assert (
        kept["why"] == "lowest val_loss"
        and 1 <= kept["epoch"] <= run["config"]["epochs"]
    )
    assert run["final"]["precise_batch_norm"]["layers"]
    assert run["final"]["inference_check"]["agrees"]
    # New images drawn the same way: at least 90% right at inference.
    model = kic.load_model(run_dir)
    data = kic.load_image_folder(new, validation_split=0.0)
    probabilities = kic.predict_proba(model, data.train.images)
    accuracy = float(np.mean(probabilities.argmax(1) == data.train.labels))
    assert accuracy >= 0.9, accuracy
    # Inference-mode accuracy on the training images is within a few points of
    # training-mode accuracy (the model as it learned: dropout on, batch stats).
    own = kic.load_image_folder(train, validation_split=0.0)
    inputs = own.train.images
    inference = float(
        np.mean(kic.predict_proba(model, inputs).argmax(1) == own.train.labels)
    )
    training = np.mean(
        np.asarray(model(inputs, training=True)).argmax(1) == own.train.labels
    )
    assert inference >= training - 0.05, (inference, training)


def test_predict_a_folder_with_a_bad_file(folder_run, tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    _, shared, run_dir = folder_run
    new = Path(shutil.copytree(shared, tmp_path / "new"))  # the fixture stays clean
    (new / "square" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (new / "notes.txt").write_text("not an image")
    output = tmp_path / "predictions.csv"
    capsys.readouterr()
    code = main(["predict", str(run_dir), str(new), "--output", str(output)])
    assert code == 1
    error = capsys.readouterr().err
    assert f"cannot read {new / 'square' / 'broken.png'}" in error
    assert "1 of 61 files failed" in error
    with output.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 60
    assert set(rows[0]) == {
        "image",
        "class",
        "probability",
        "circle",
        "square",
        "triangle",
    }
    right = [Path(row["image"]).parent.name == row["class"] for row in rows]
    assert np.mean(right) >= 0.9
    result = kic.predict(run_dir, [new / "circle", new / "square"], top_k=2)
    assert len(result.paths) == 40 and not result.ok
    assert [Path(path).name for path, _ in result.failed] == ["broken.png"]
    assert len(result.rows()[0]["top_k"]) == 2
    saved = json.loads(result.save(tmp_path / "p.json").read_text())
    assert len(saved["predictions"]) == 40 and len(saved["failed"]) == 1
    assert main(["predict", str(run_dir), str(new / "circle")]) == 0


def test_predict_on_files_names_what_failed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = kic.build_cifar_cnn(input_shape=(16, 16, 1), num_classes=2)
    good = tmp_path / "a.jpg"
    Image.new("RGB", (40, 30), (200, 10, 10)).save(good)
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    result = kic.predict(model, [good, empty, tmp_path / "missing.png"])
    assert result.paths == (str(good),)
    assert result.probabilities.shape == (1, 2)
    assert [Path(path).name for path, _ in result.failed] == [
        "missing.png",
        "empty.png",
    ]
    assert result.class_names == ("0", "1")
    with pytest.raises(ValueError, match="paths must name at least one"):
        kic.predict(model, [])
    with pytest.raises(ValueError, match=r"must end in \.csv or \.json"):
        result.save(tmp_path / "out.txt")
