from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kerasimgcls import load_image_folder


def _save(path: Path, array: np.ndarray, mode: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path)


def _rgb(seed: int, size: int = 8) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (size, size, 3), np.uint8)


def _simple_folder(root: Path, per_class: int = 4) -> Path:
    for label, name in enumerate(["cat", "dog", "fox"]):
        for i in range(per_class):
            _save(root / name / f"{i:03d}.png", _rgb(label * 100 + i))
    return root


@pytest.fixture
def messy_folder(tmp_path: Path) -> Path:
    """Good images in mixed modes plus every kind of problem the checker reports."""
    root = tmp_path / "messy"
    rng = np.random.default_rng(0)
    for i in range(3):
        _save(root / "cat" / f"rgb_{i}.png", _rgb(i))
    gray = rng.integers(0, 256, (8, 8), np.uint8)
    _save(root / "cat" / "gray.png", gray, "L")
    rgba = rng.integers(0, 256, (8, 8, 4), np.uint8)
    _save(root / "dog" / "rgba.png", rgba, "RGBA")
    Image.fromarray(_rgb(7)).convert("P").save(root / "dog" / "palette.gif")
    Image.fromarray(_rgb(8)).save(root / "dog" / "photo.jpg", quality=90)
    full = (root / "dog" / "photo.jpg").read_bytes()
    (root / "dog" / "truncated.jpg").write_bytes(full[: len(full) // 2])
    (root / "dog" / "notes.jpg").write_text("this is text, not a JPEG")
    (root / "cat" / "empty.png").write_bytes(b"")
    (root / "cat" / ".DS_Store").write_bytes(b"\x00\x01")
    (root / "dog" / "readme.txt").write_text("labels are folder names")
    (root / "empty_class").mkdir()
    return root


def test_load_image_folder_labels_shapes_and_pixels(tmp_path: Path) -> None:
    root = _simple_folder(tmp_path / "pets")
    data = load_image_folder(root, validation_split=0.0, cache=False)
    assert data.class_names == ("cat", "dog", "fox")
    assert data.input_shape == (8, 8, 3)
    assert data.name == "pets"
    assert data.validation is None and data.test is None
    np.testing.assert_array_equal(data.train.labels, np.repeat([0, 1, 2], 4))
    np.testing.assert_array_equal(data.train.images[5], _rgb(101))


def test_load_image_folder_validation_split_is_stratified(tmp_path: Path) -> None:
    root = _simple_folder(tmp_path / "pets", per_class=10)
    data = load_image_folder(root, validation_split=0.2, seed=3, cache=False)
    assert data.validation is not None
    assert data.validation.class_counts(3).tolist() == [2, 2, 2]
    assert len(data.train) == 24


def test_load_image_folder_split_layout(tmp_path: Path) -> None:
    _simple_folder(tmp_path / "set" / "train")
    _simple_folder(tmp_path / "set" / "test", per_class=2)
    data = load_image_folder(tmp_path / "set", validation_split=0.25, cache=False)
    assert data.test is not None and len(data.test) == 6
    assert data.validation is not None and len(data.validation) == 3
    assert data.name == "set"


def test_load_image_folder_modes_are_converted(messy_folder: Path) -> None:
    for mode, channels in (("rgb", 3), ("grayscale", 1), ("rgba", 4)):
        with pytest.warns(UserWarning, match="skipped 3 file"):
            data = load_image_folder(
                messy_folder,
                color_mode=mode,
                on_error="skip",
                validation_split=0.0,
                cache=False,
            )
        assert data.input_shape == (8, 8, channels)
        # Good files: 3 RGB + gray in cat, rgba + palette + jpeg in dog.
        assert data.train.class_counts(3).tolist() == [4, 3, 0]
    gray = np.asarray(Image.open(messy_folder / "cat" / "gray.png"))
    with pytest.warns(UserWarning, match="skipped 3 file"):
        data = load_image_folder(
            messy_folder, on_error="skip", validation_split=0.0, cache=False
        )
    # In cat/, "empty.png" fails, so "gray.png" is the first good image.
    np.testing.assert_array_equal(data.train.images[0], np.stack([gray] * 3, -1))


def test_load_image_folder_raise_names_the_bad_file(messy_folder: Path) -> None:
    with pytest.raises(ValueError, match=r"cannot decode image file .*empty\.png"):
        load_image_folder(messy_folder, cache=False)
    (messy_folder / "cat" / "empty.png").unlink()
    with pytest.raises(ValueError, match=r"cannot decode image file .*notes\.jpg"):
        load_image_folder(messy_folder, cache=False)


def test_load_image_folder_skip_never_deletes(messy_folder: Path) -> None:
    before = sorted(p.relative_to(messy_folder) for p in messy_folder.rglob("*"))
    with pytest.warns(UserWarning, match="truncated.jpg"):
        load_image_folder(messy_folder, on_error="skip", cache=False)
    after = sorted(p.relative_to(messy_folder) for p in messy_folder.rglob("*"))
    assert before == after


def test_load_image_folder_image_size_resizes(tmp_path: Path) -> None:
    root = tmp_path / "sizes"
    _save(root / "a" / "big.jpg", _rgb(0, size=64))
    _save(root / "a" / "small.png", _rgb(1, size=8))
    _save(root / "b" / "wide.png", np.zeros((10, 30, 3), np.uint8))
    with pytest.raises(ValueError, match=r"images differ in size.*image_size"):
        load_image_folder(root, cache=False)
    data = load_image_folder(
        root, image_size=(16, 12), validation_split=0.0, cache=False
    )
    assert data.input_shape == (16, 12, 3)
    data = load_image_folder(root, image_size=5, validation_split=0.0, cache=False)
    assert data.input_shape == (5, 5, 3)


def test_load_image_folder_cache_hit_and_invalidation(tmp_path: Path) -> None:
    root = _simple_folder(tmp_path / "pets")
    cache = tmp_path / "cache"
    first = load_image_folder(root, validation_split=0.0, cache=cache)
    files = sorted(p.name for p in (cache / "image_folders").iterdir())
    assert len(files) == 2 and files[0].endswith(".json") ^ files[1].endswith(".json")
    second = load_image_folder(root, validation_split=0.0, cache=cache)
    assert second.fingerprint == first.fingerprint
    # A changed file (new mtime and content) invalidates the cache.
    target = root / "dog" / "001.png"
    _save(target, np.full((8, 8, 3), 7, np.uint8))
    later = time.time() + 5
    os.utime(target, (later, later))
    third = load_image_folder(root, validation_split=0.0, cache=cache)
    np.testing.assert_array_equal(third.train.images[5], np.full((8, 8, 3), 7))
    # The old pixel file is replaced, not accumulated.
    assert len(list((cache / "image_folders").iterdir())) == 2
    # Other options get their own entry.
    load_image_folder(root, color_mode="grayscale", cache=cache)
    assert len(list((cache / "image_folders").iterdir())) == 4


def test_load_image_folder_cache_notices_added_and_removed_files(
    tmp_path: Path,
) -> None:
    root = _simple_folder(tmp_path / "pets")
    cache = tmp_path / "cache"
    assert len(load_image_folder(root, validation_split=0.0, cache=cache).train) == 12
    _save(root / "fox" / "new.png", _rgb(999))
    added = load_image_folder(root, validation_split=0.0, cache=cache)
    assert added.train.class_counts(3).tolist() == [4, 4, 5]
    np.testing.assert_array_equal(added.train.images[-1], _rgb(999))
    (root / "cat" / "000.png").unlink()
    removed = load_image_folder(root, validation_split=0.0, cache=cache)
    assert removed.train.class_counts(3).tolist() == [3, 4, 5]
    assert not any(np.array_equal(image, _rgb(0)) for image in removed.train.images)
    # Still one entry for these options: the stale ones were replaced.
    assert len(list((cache / "image_folders").iterdir())) == 2


def test_load_image_folder_cache_is_really_used(tmp_path: Path) -> None:
    root = _simple_folder(tmp_path / "pets")
    cache = tmp_path / "cache"
    load_image_folder(root, validation_split=0.0, cache=cache)
    (pixels,) = (cache / "image_folders").glob("*.npy")
    stored = np.load(pixels)
    stored[:] = 42
    np.save(pixels, stored)
    data = load_image_folder(root, validation_split=0.0, cache=cache)
    assert int(data.train.images.max()) == 42
    assert not isinstance(data.train.images, np.memmap)


def test_load_image_folder_corrupt_cache_is_ignored(tmp_path: Path) -> None:
    root = _simple_folder(tmp_path / "pets")
    cache = tmp_path / "cache"
    first = load_image_folder(root, validation_split=0.0, cache=cache)
    (index,) = (cache / "image_folders").glob("*.json")
    index.write_text("{not json")
    again = load_image_folder(root, validation_split=0.0, cache=cache)
    assert again.fingerprint == first.fingerprint


def test_load_image_folder_class_names_select_and_order(tmp_path: Path) -> None:
    root = _simple_folder(tmp_path / "pets")
    data = load_image_folder(
        root, class_names=["fox", "cat"], validation_split=0.0, cache=False
    )
    assert data.class_names == ("fox", "cat")
    np.testing.assert_array_equal(data.train.images[0], _rgb(200))
    with pytest.raises(ValueError, match=r"class_names lists folders.*\['cow'\]"):
        load_image_folder(root, class_names=["cow"], cache=False)


def test_load_image_folder_shared_cifar10_subset(
    shared_cifar10_jpg: Path, tmp_path: Path
) -> None:
    subset = tmp_path / "cifar_subset"
    for name in ("airplane", "cat"):
        (subset / name).mkdir(parents=True)
        for i in range(20):
            source = shared_cifar10_jpg / "train" / name / f"{i:04d}.jpg"
            (subset / name / source.name).write_bytes(source.read_bytes())
    data = load_image_folder(subset, validation_split=0.1, cache=False, workers=2)
    assert data.input_shape == (32, 32, 3)
    assert len(data.train) + len(data.validation or ()) == 40
    assert 20 < float(data.train.images.mean()) < 235


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"color_mode": "cmyk"}, ValueError, "color_mode must be one of"),
        ({"on_error": "ignore"}, ValueError, "on_error must be one of"),
        ({"interpolation": "cubic"}, ValueError, "interpolation must be one of"),
        ({"image_size": (0, 4)}, ValueError, "image_size must be a positive"),
        ({"image_size": "32"}, TypeError, "image_size must be a positive integer"),
        ({"workers": 0}, ValueError, "workers must be a positive"),
        ({"cache": 3}, TypeError, "cache must be True, False or a folder"),
        ({"validation_split": 1.0}, ValueError, "validation_split must be in"),
    ],
)
def test_load_image_folder_bad_arguments(
    tmp_path: Path, kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    root = _simple_folder(tmp_path / "pets", per_class=1)
    with pytest.raises(error, match=match):
        load_image_folder(root, **kwargs)  # type: ignore[arg-type]


def test_load_image_folder_bad_paths(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="path does not exist"):
        load_image_folder(tmp_path / "missing")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(NotADirectoryError, match="path must be a directory"):
        load_image_folder(tmp_path / "file.txt")
    (tmp_path / "flat").mkdir()
    _save(tmp_path / "flat" / "a.png", _rgb(0))
    with pytest.raises(ValueError, match="has no class sub-folders"):
        load_image_folder(tmp_path / "flat", cache=False)
    (tmp_path / "flat" / "cat").mkdir()
    with pytest.raises(ValueError, match="but no image files"):
        load_image_folder(tmp_path / "flat", cache=False)


@pytest.mark.parametrize(
    ("mode", "options"),
    [
        ("RGB", {}),
        ("RGB", {"progressive": True}),
        ("RGB", {"quality": 30, "subsampling": 0}),
        ("L", {}),
        ("CMYK", {}),
    ],
)
def test_jpeg_decoding_matches_pillow_exactly(
    tmp_path: Path, mode: str, options: dict[str, object]
) -> None:
    # Small JPEGs take a direct path to Pillow's decoder; it must agree with
    # Image.open pixel for pixel, in every colour mode asked for.
    from kerasimgcls.data._files import decode_file

    path = tmp_path / "image.jpg"
    Image.fromarray(_rgb(3, size=19)).convert(mode).save(path, "JPEG", **options)
    for color_mode, pil_mode in (("rgb", "RGB"), ("grayscale", "L"), ("rgba", "RGBA")):
        result = decode_file(path, color_mode=color_mode)
        with Image.open(path) as image:
            expected = np.asarray(image.convert(pil_mode))
        assert result.image is not None
        np.testing.assert_array_equal(result.image.reshape(expected.shape), expected)
        assert result.original_mode == mode and result.file_format == "JPEG"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    truncated = decode_file(path)
    assert truncated.image is None and "truncated" in str(truncated.error).lower()
