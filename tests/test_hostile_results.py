"""Crafted folders and images that gave silently wrong results (issue 27, class 4).

The same file decodes to the same upright pixels at any size; a folder layout is
read as what it is, and what is left out is said.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import kerasimgcls as kic


def _exif_after_frame_header(orientation: int) -> bytes:
    """A 4x8 (height x width) JPEG whose EXIF block follows its frame header."""
    pixels = np.zeros((4, 8, 3), np.uint8)
    pixels[:, :4] = 250  # left half bright: a rotation moves it
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=95, exif=exif)
    data = buffer.getvalue()
    segments, index = [], 2
    while data[index + 1] != 0xDA:  # up to the first scan
        length = (data[index + 2] << 8) | data[index + 3]
        segments.append(data[index : index + 2 + length])
        index += 2 + length
    app1 = next(s for s in segments if s[1] == 0xE1)
    rest = [s for s in segments if s is not app1]
    sof = next(i for i, s in enumerate(rest) if s[1] == 0xC0)
    rest.insert(sof + 1, app1)
    return data[:2] + b"".join(rest) + data[index:]


def test_results_exif_after_the_frame_header_is_applied_at_every_size(
    tmp_path: Path,
) -> None:
    data = _exif_after_frame_header(6)  # rotate 90 degrees: 4x8 becomes 8x4
    for name in ("a", "b"):
        (tmp_path / "pets" / name).mkdir(parents=True)
        (tmp_path / "pets" / name / "x.jpg").write_bytes(data)
    with Image.open(io.BytesIO(data)) as opened:
        from PIL import ImageOps

        upright = np.asarray(ImageOps.exif_transpose(opened).convert("RGB"))
    assert upright.shape == (8, 4, 3)
    native = kic.load_image_folder(tmp_path / "pets", cache=False, validation_split=0)
    resized = kic.load_image_folder(
        tmp_path / "pets", image_size=(8, 4), cache=False, validation_split=0
    )
    assert native.train.images.shape[1:] == (8, 4, 3)
    np.testing.assert_array_equal(native.train.images[0], upright)
    np.testing.assert_array_equal(resized.train.images[0], upright)


def _layout(root: Path, splits: dict[str, list[str]]) -> Path:
    for split, classes in splits.items():
        for name in classes:
            (root / split / name).mkdir(parents=True)
            Image.new("RGB", (4, 4)).save(root / split / name / "0.png")
    return root


def test_results_class_only_in_test_is_refused(tmp_path: Path) -> None:
    root = _layout(tmp_path / "d", {"train": ["cat", "dog"], "test": ["cat", "owl"]})
    with pytest.raises(ValueError, match=r"has class folder\(s\) \['owl'\] that"):
        kic.load_image_folder(root, cache=False)


def test_results_stray_folder_beside_train_and_test_is_named(tmp_path: Path) -> None:
    root = _layout(tmp_path / "d", {"train": ["cat", "dog"], "test": ["cat", "dog"]})
    (root / "notes").mkdir()
    (root / "notes" / "readme.txt").write_text("not images")
    with pytest.warns(UserWarning, match=r"the folder\(s\) \['notes'\] beside them"):
        data = kic.load_image_folder(root, cache=False, validation_split=0)
    assert data.class_names == ("cat", "dog")
    assert data.test is not None and len(data.test) == 2


def test_results_plain_class_layout_is_unchanged(tmp_path: Path) -> None:
    # Without test/ or validation/, a folder named train is a class like any other.
    root = _layout(tmp_path / "d", {".": ["notes", "train"]})
    (root / "train" / "inner").mkdir()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        data = kic.load_image_folder(root, cache=False, validation_split=0)
    assert data.class_names == ("notes", "train")
