"""Folders of any image sizes: the size rule, the aspect modes, one resize everywhere.

The rule (``choose_image_size``) on counted sizes and on files; stretch, crop and
pad in the one decoder, keyed apart in the cache; and the workflow as a user runs
it: ``train --data-dir`` on a folder of mixed sizes chooses a size and says so,
and ``predict`` on an odd-sized image in a fresh process gives the probabilities
the loader's pixels give.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

import kerasimgcls as kic
from kerasimgcls.data._files import decode_file
from kerasimgcls.data._sizes import _choose

REPO_ROOT = Path(__file__).resolve().parents[1]


def _folder(root: Path, sizes: list[tuple[int, int]], classes: int = 2) -> Path:
    """``classes`` class folders, one image of each ``(height, width)`` in each."""
    rng = np.random.default_rng(0)
    for label in range(classes):
        (root / f"c{label}").mkdir(parents=True)
        for index, (height, width) in enumerate(sizes):
            pixels = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
            pixels[..., label % 3] = 220  # a colour per class: learnable at once
            Image.fromarray(pixels).save(root / f"c{label}" / f"{index}.png")
    return root


@pytest.mark.parametrize(
    ("sizes", "max_size", "expected", "reason"),
    [
        ({(32, 32): 5}, 64, (32, 32), "the size of every image"),
        ({(8, 8): 5}, 64, (8, 8), "the size of every image"),  # kept: no floor
        ({(480, 640): 3}, 64, (48, 64), "scaled down to the cap of 64"),
        ({(24, 32): 1, (52, 52): 1, (480, 640): 1}, 64, (56, 56), "rounded"),
        ({(24, 32): 2, (480, 640): 3}, 64, (48, 64), "the median size 480x640"),
        ({(6, 6): 2, (10, 12): 2}, 64, (16, 16), "at least 16"),
        ({(300, 200): 1, (200, 300): 2}, 224, (152, 224), "the median size 200x300"),
    ],
)
def test_rule_keeps_one_size_else_median_rounded_and_capped(
    sizes: dict[tuple[int, int], int],
    max_size: int,
    expected: tuple[int, int],
    reason: str,
) -> None:
    choice = _choose(Counter(sizes), max_size, 16, 8)
    assert choice.image_size == expected
    assert reason in choice.reason
    assert max(choice.image_size) <= max_size
    assert choice.resizes == (len(sizes) > 1 or expected not in sizes)


def test_choose_image_size_reads_the_folder_and_says_why(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "pets", [(24, 32), (60, 40), (480, 640)])
    choice = kic.choose_image_size(folder, max_size=64)
    assert choice.sizes == {"24x32": 2, "60x40": 2, "480x640": 2}
    assert choice.median == (60, 40)
    assert choice.image_size == (64, 40)
    line = choice.describe(cap_of="cifar_cnn")
    assert line.startswith(
        "images differ in size (24x32 to 480x640, height x width); resizing to 64x40"
    )
    assert choice.to_dict()["largest"] == [480, 640]
    uniform = kic.choose_image_size(_folder(tmp_path / "same", [(20, 30)]))
    assert uniform.image_size == (20, 30) and not uniform.resizes
    capped = kic.choose_image_size(tmp_path / "same", max_size=16)
    assert capped.describe(cap_of="m") == (
        "all 2 images are 20x30; resizing to 16x16, the size of every image 20x30 "
        "scaled down to the cap of 16 for m and rounded to a multiple of 8, at least 16"
    )


def test_choose_image_size_uses_the_upright_size(tmp_path: Path) -> None:
    (tmp_path / "pets" / "cat").mkdir(parents=True)
    image = Image.new("RGB", (40, 20))  # 20 high, 40 wide as stored
    exif = image.getexif()
    exif[0x0112] = 6  # rotated: 40 high, 20 wide as shown
    image.save(tmp_path / "pets" / "cat" / "a.jpg", exif=exif)
    choice = kic.choose_image_size(tmp_path / "pets")
    assert choice.sizes == {"40x20": 1}


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_size": 0}, ValueError, "max_size must be a positive integer"),
        ({"workers": 0}, ValueError, "workers must be a positive integer"),
    ],
)
def test_choose_image_size_refuses_bad_options(
    tmp_path: Path, kwargs: dict[str, int], error: type[Exception], match: str
) -> None:
    folder = _folder(tmp_path / "pets", [(8, 8)])
    with pytest.raises(error, match=match):
        kic.choose_image_size(folder, **kwargs)


def test_choose_image_size_refuses_a_missing_or_imageless_folder(
    tmp_path: Path,
) -> None:
    with pytest.raises(FileNotFoundError, match="path does not exist"):
        kic.choose_image_size(tmp_path / "nowhere")
    (tmp_path / "pets" / "cat").mkdir(parents=True)
    (tmp_path / "pets" / "cat" / "a.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match="no image size could be read"):
        kic.choose_image_size(tmp_path / "pets")


def test_get_max_image_size_is_registry_metadata() -> None:
    for name in kic.list_models():
        assert kic.get_max_image_size(name) >= 64
    assert kic.get_max_image_size("cifar_cnn") == 64
    assert kic.get_max_image_size("resnet50") == 224
    with pytest.raises(ValueError, match="Unknown model 'nope'"):
        kic.get_max_image_size("nope")
    with pytest.raises(ValueError, match="max_image_size must be a positive integer"):
        kic.register_model("never_registered", max_image_size=0)


def test_aspect_modes_crop_and_pad_as_pillow_does(tmp_path: Path) -> None:
    pixels = np.random.default_rng(1).integers(0, 256, (20, 40, 3), dtype=np.uint8)
    path = tmp_path / "wide.png"
    Image.fromarray(pixels).save(path)
    image = Image.fromarray(pixels)
    target = (16, 16)
    expected = {
        "stretch": image.resize(target, Image.Resampling.BILINEAR),
        "crop": ImageOps.fit(image, target, method=Image.Resampling.BILINEAR),
        "pad": ImageOps.pad(image, target, method=Image.Resampling.BILINEAR, color=0),
    }
    for aspect, reference in expected.items():
        decoded = decode_file(path, image_size=target, aspect=aspect).image
        assert decoded is not None
        np.testing.assert_array_equal(decoded, np.asarray(reference))
    padded = decode_file(path, image_size=target, aspect="pad").image
    assert padded is not None and not padded[0].any() and padded[8].any()


def test_load_image_folder_caches_each_aspect_apart(tmp_path: Path) -> None:
    folder = _folder(tmp_path / "pets", [(20, 40), (40, 20)])
    cache = tmp_path / "cache"
    loaded = {
        aspect: kic.load_image_folder(
            folder, image_size=16, aspect=aspect, validation_split=0, cache=cache
        )
        for aspect in ("stretch", "crop", "pad", "crop")
    }
    assert loaded["crop"].resize == {"interpolation": "bilinear", "aspect": "crop"}
    images = {aspect: data.train.images for aspect, data in loaded.items()}
    assert not np.array_equal(images["stretch"], images["crop"])
    assert not np.array_equal(images["crop"], images["pad"])
    again = kic.load_image_folder(
        folder, image_size=16, aspect="pad", validation_split=0, cache=cache
    )
    np.testing.assert_array_equal(again.train.images, images["pad"])
    with pytest.raises(ValueError, match="aspect must be one of"):
        kic.load_image_folder(folder, image_size=16, aspect="squash")  # type: ignore[arg-type]


@pytest.mark.slow  # trains one epoch, then a fresh interpreter predicts
def test_mixed_sizes_train_and_predict_resizes_as_the_loader(
    tmp_path: Path, capsys, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from kerasimgcls.cli import main

    monkeypatch.setenv("KERASIMGCLS_CACHE_DIR", str(tmp_path / "cache"))
    folder = _folder(tmp_path / "shapes", [(24, 32), (60, 40), (480, 640), (30, 30)])
    run_dir = tmp_path / "run"
    argv = ["train", "--data-dir", str(folder), "--aspect", "crop", "--epochs", "1"]
    assert main([*argv, "--run-dir", str(run_dir), "--quiet", "--no-evaluate"]) == 0
    printed = capsys.readouterr().out
    assert (
        "images differ in size (24x32 to 480x640, height x width); resizing to "
        "48x40, the median size 45x36 rounded to a multiple of 8; pass "
        "--image-size to choose"
    ) in printed
    data = json.loads((run_dir / "run.json").read_text())["data"]
    assert data["image_size"] == [48, 40] and data["aspect"] == "crop"
    assert data["interpolation"] == "bilinear"
    assert data["image_size_choice"]["why"].startswith("images differ in size")

    odd = tmp_path / "odd" / "c0"
    odd.mkdir(parents=True)
    pixels = np.random.default_rng(2).integers(0, 256, (77, 51, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(odd / "odd.png")
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "kerasimgcls",
            "predict",
            str(run_dir),
            str(odd / "odd.png"),
            "--json",
            "-k",
            "2",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "src")},
        timeout=600,
    )
    assert completed.returncode == 0, completed.stderr
    (row,) = json.loads(completed.stdout)
    predicted = {item["class"]: item["probability"] for item in row["top_k"]}

    model = kic.load_model(run_dir)
    loaded = kic.load_image_folder(
        odd.parent, image_size=(48, 40), aspect="crop", validation_split=0, cache=False
    )
    expected = kic.predict_proba(model, loaded.train.images)[0]
    names = kic.get_class_names(model)
    assert names is not None
    for index, name in enumerate(names):
        assert predicted[name] == pytest.approx(float(expected[index]), abs=1e-6)


def test_the_saved_model_carries_how_files_are_resized(tmp_path: Path) -> None:
    from kerasimgcls.models.preprocessing import resize_settings

    model = kic.build_cifar_cnn(input_shape=(8, 8, 3), num_classes=2)
    exported = kic.export_model(
        model, ["a", "b"], interpolation="bicubic", aspect="pad"
    )
    exported.save(tmp_path / "m.keras")
    loaded = kic.load_model(tmp_path / "m.keras")
    assert resize_settings(loaded) == ("bicubic", "pad")
    assert resize_settings(model) == ("bilinear", "stretch")  # not exported: defaults
    with pytest.raises(ValueError, match="aspect must be one of"):
        kic.InputPreprocessing(["a"], aspect="squash")
