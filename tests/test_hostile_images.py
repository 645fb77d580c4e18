"""Crafted image files and folders: what decoding and scanning do with them (issue 15).

Every image the library reads goes through ``decode_file``: the folder loader, the
folder checker, ``predict`` and ``explain``. These cases craft files whose content,
type or size is hostile and assert the exact outcome.
"""

from __future__ import annotations

import json
import os
import signal
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from kerasimgcls import check_image_folder, load_image_folder
from kerasimgcls.cli import main
from kerasimgcls.data._files import DECODED_FORMATS, decode_file, decode_many


@pytest.fixture
def deadline() -> Iterator[None]:
    """Fail a case that blocks (a FIFO read) after 30 s instead of hanging."""

    def expire(signum: int, frame: object) -> None:
        raise TimeoutError("the case blocked for 30 s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(30)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def _folder(root: Path, per_class: int = 3) -> Path:
    for name in ("cat", "dog"):
        (root / name).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            pixels = np.full((8, 8, 3), 30 * index + (name == "dog") * 100, np.uint8)
            Image.fromarray(pixels).save(root / name / f"{index}.png")
    return root


def _png(width: int, height: int, depth: int, color: int, rows: bytes) -> bytes:
    """A PNG written by hand: Pillow cannot write 16-bit RGB or lying headers."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        crc = zlib.crc32(kind + body) & 0xFFFFFFFF
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


# --- 2. external programs ------------------------------------------------------------


def test_hostile_postscript_named_png_never_reaches_ghostscript(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ran = tmp_path / "gs-ran"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_gs = bin_dir / "gs"
    fake_gs.write_text(f"#!/bin/sh\ntouch {ran}\nexit 1\n")
    fake_gs.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    root = _folder(tmp_path / "data")
    evil = root / "cat" / "evil.png"
    evil.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 8 8\nshowpage\n")
    assert decode_file(evil).error is not None
    assert main(["doctor", str(root)]) == 1
    out = capsys.readouterr().out
    assert "evil.png: not a PNG, JPEG, BMP or GIF image" in out
    with pytest.warns(UserWarning, match="evil.png"):
        data = load_image_folder(root, on_error="skip", cache=False)
    assert len(data.train) + len(data.validation or ()) == 6
    assert not ran.exists()


def test_hostile_only_listed_formats_are_decoded(tmp_path: Path) -> None:
    assert DECODED_FORMATS == ("PNG", "JPEG", "BMP", "GIF")
    tiff = tmp_path / "image.png"
    Image.new("RGB", (4, 4)).save(tiff, format="TIFF")
    assert "not a PNG, JPEG, BMP or GIF" in str(decode_file(tiff).error)
    jpeg_named_png = tmp_path / "photo.png"
    Image.new("RGB", (4, 4), (200, 10, 10)).save(jpeg_named_png, format="JPEG")
    result = decode_file(jpeg_named_png)
    assert result.file_format == "JPEG" and result.image is not None


# --- 3. hangs and unbounded reads ------------------------------------------------------


def test_hostile_fifo_and_device_are_refused_without_blocking(
    tmp_path: Path, deadline: None, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _folder(tmp_path / "data")
    os.mkfifo(root / "cat" / "pipe.png")
    (root / "dog" / "zero.png").symlink_to("/dev/zero")
    assert "FIFO" in str(decode_file(root / "cat" / "pipe.png").error)
    assert "character device" in str(decode_file(root / "dog" / "zero.png").error)
    report = check_image_folder(root)
    assert sorted(Path(bad["path"]).name for bad in report.bad_files) == [
        "pipe.png",
        "zero.png",
    ]
    code = main(["train", "--data-dir", str(root), "--run-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err
    assert "pipe.png" in err and "not a regular file (it is a FIFO)" in err


def test_hostile_file_size_and_pixel_bounds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bomb = tmp_path / "bomb.png"  # 81 MB of pixels in 80 KB
    bomb.write_bytes(_png(9000, 9000, 8, 0, b"\0" * 9001 * 9000))
    result = decode_file(bomb)
    assert result.image is None
    assert "9000x9000 pixels, more than the 67,108,864 allowed" in str(result.error)
    huge = tmp_path / "huge.png"
    huge.write_bytes(_png(30000, 30000, 8, 0, b"\0" * 30001))
    assert "decompression bomb" in str(decode_file(huge).error)
    small = tmp_path / "small.png"
    Image.new("L", (100, 100)).save(small)
    assert decode_file(small, max_pixels=99 * 100).image is None
    monkeypatch.setenv("KERASIMGCLS_MAX_IMAGE_FILE_BYTES", "10")
    assert "more than the 10 allowed" in str(decode_file(small).error)


# --- 5. the same pixels everywhere -----------------------------------------------------


def _variants(folder: Path) -> dict[str, tuple[int, ...]]:
    """Write one file per kind of image; return the RGB each must decode to."""
    folder.mkdir(parents=True)
    Image.fromarray(np.full((8, 8), 30000, np.uint16)).save(folder / "gray16.png")
    rgb16 = b"".join(b"\0" + struct.pack(">HHH", 65535, 32896, 0) * 8 for _ in range(8))
    (folder / "rgb16.png").write_bytes(_png(8, 8, 16, 2, rgb16))
    Image.new("RGB", (8, 8), (200, 100, 50)).convert("CMYK").save(
        folder / "cmyk.jpg", quality=100
    )
    palette = Image.new("P", (8, 8), 0)
    palette.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    palette.save(folder / "palette.png", transparency=0)
    Image.new("LA", (8, 8), (90, 40)).save(folder / "la.png")
    Image.new("L", (8, 8), 77).save(folder / "gray.png")
    Image.new("RGB", (8, 8), (10, 220, 30)).save(folder / "rgb.bmp")
    return {
        "gray16.png": (117, 117, 117),  # 30000 / 257, not clipped to 255
        "rgb16.png": (255, 128, 0),
        "cmyk.jpg": (200, 100, 50),
        "palette.png": (255, 0, 0),  # the transparent colour, alpha dropped
        "la.png": (90, 90, 90),
        "gray.png": (77, 77, 77),
        "rgb.bmp": (10, 220, 30),
    }


def test_hostile_every_kind_of_image_decodes_to_the_same_pixels(
    tmp_path: Path,
) -> None:
    expected = _variants(tmp_path / "data" / "kinds")
    (tmp_path / "data" / "other").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "data" / "other" / "x.png")
    data = load_image_folder(tmp_path / "data", validation_split=0.0, cache=False)
    for index, (name, colour) in enumerate(sorted(expected.items())):
        alone = decode_file(tmp_path / "data" / "kinds" / name)
        resized = decode_file(tmp_path / "data" / "kinds" / name, image_size=(4, 4))
        assert alone.image is not None and resized.image is not None
        assert np.abs(alone.image.astype(int) - colour).max() <= 2, name
        np.testing.assert_array_equal(data.train.images[index], alone.image)
        assert np.abs(resized.image.astype(int) - colour).max() <= 2, name
    palette = decode_file(
        tmp_path / "data" / "kinds" / "palette.png", color_mode="rgba"
    )
    assert palette.image is not None and int(palette.image[..., 3].max()) == 0
    la = decode_file(tmp_path / "data" / "kinds" / "la.png", color_mode="rgba")
    assert la.image is not None and la.image[0, 0].tolist() == [90, 90, 90, 40]
    gray = decode_file(
        tmp_path / "data" / "kinds" / "gray16.png", color_mode="grayscale"
    )
    assert gray.image is not None and gray.image.shape == (8, 8, 1)
    assert int(gray.image[0, 0, 0]) == 117


@pytest.mark.parametrize("size", [None, (12, 4)])
def test_hostile_exif_orientation_is_applied(
    tmp_path: Path, size: tuple[int, int] | None
) -> None:
    # Stored 4 high and 12 wide, left third white; orientation 6 shows it rotated
    # 90 degrees clockwise: 12 high and 4 wide, the white third at the top.
    pixels = np.zeros((4, 12, 3), np.uint8)
    pixels[:, :4] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    Image.fromarray(pixels).save(path, exif=exif, quality=100)
    result = decode_file(path, image_size=size)
    assert result.image is not None and result.image.shape == (12, 4, 3)
    assert result.original_size == (12, 4)
    assert result.image[:3].min() > 200 and result.image[5:].max() < 50


def test_hostile_decode_many_survives_a_raising_decoder() -> None:
    def decode(path: str):  # type: ignore[no-untyped-def]
        if path == "b":
            raise ZeroDivisionError("crafted")
        return decode_file(path)

    results = list(decode_many(["a", "b"], decode, workers=1))
    assert results[1].error == "crafted"
    assert results[0].error is not None  # "a" does not exist


# --- 6 and 7. folders ----------------------------------------------------------------------


def test_hostile_links_in_a_folder_are_bad_files_not_crashes(
    tmp_path: Path, deadline: None
) -> None:
    root = _folder(tmp_path / "data")
    (root / "cat" / "loop.png").symlink_to("loop.png")
    (root / "cat" / "gone.png").symlink_to("nothing-here.png")
    (root / "dog" / "parent").symlink_to("..")  # a folder loop
    report = check_image_folder(root)
    reasons = {Path(bad["path"]).name: bad["reason"] for bad in report.bad_files}
    assert reasons == {
        "loop.png": "a symbolic link loop",
        "gone.png": "a dangling symbolic link, or the file was removed",
    }
    with pytest.warns(UserWarning, match="skipped 2 file"):
        data = load_image_folder(root, on_error="skip", cache=False)
    assert data.num_classes == 2 and len(data.train) + len(data.validation or ()) == 6
    with pytest.raises(ValueError, match=r"gone\.png': a dangling symbolic link"):
        load_image_folder(root, cache=False)


def test_hostile_empty_class_warns(tmp_path: Path) -> None:
    root = _folder(tmp_path / "data")
    (root / "empty").mkdir()
    with pytest.warns(UserWarning, match=r"\['empty'\].*no \(decodable\) image"):
        data = load_image_folder(root, cache=False)
    assert data.class_names == ("cat", "dog", "empty")
    (root / "bird").mkdir()
    (root / "bird" / "broken.png").write_bytes(b"not a png")
    with pytest.warns(UserWarning, match=r"\['bird', 'empty'\]"):
        load_image_folder(root, on_error="skip", cache=False)


def test_hostile_non_utf8_names(tmp_path: Path) -> None:
    root = _folder(tmp_path / "data")
    odd = os.fsencode(root / "cat") + b"/caf\xe9.png"
    with open(odd, "wb") as handle:
        Image.new("RGB", (8, 8), 5).save(handle, format="PNG")
    data = load_image_folder(root, validation_split=0.0, cache=tmp_path / "cache")
    assert len(data.train) == 7
    again = load_image_folder(root, validation_split=0.0, cache=tmp_path / "cache")
    np.testing.assert_array_equal(again.train.images, data.train.images)
    os.mkdir(os.fsencode(root) + b"/b\xffd")
    with pytest.raises(ValueError, match=r"'b\\udcffd' holds control characters"):
        load_image_folder(root, cache=False)


def test_hostile_cache_index_never_points_outside(tmp_path: Path) -> None:
    victim = tmp_path / "victim" / "file"
    victim.parent.mkdir()
    victim.write_text("precious")
    root = _folder(tmp_path / "data")
    cache = tmp_path / "cache"
    load_image_folder(root, cache=cache)
    (index_file,) = (cache / "image_folders").glob("*.json")
    index = json.loads(index_file.read_text())
    index["images"] = "../../victim/file"
    index_file.write_text(json.dumps(index))
    Image.new("RGB", (8, 8)).save(root / "cat" / "new.png")  # forces a rewrite
    data = load_image_folder(root, cache=cache, validation_split=0.0)
    assert len(data.train) == 7
    assert victim.read_text() == "precious"
    index = json.loads(index_file.read_text())
    index["labels"] = [-1] * len(index["labels"])  # a tampered index is ignored
    index_file.write_text(json.dumps(index))
    assert load_image_folder(root, cache=cache).train.labels.min() >= 0


def test_hostile_image_size_bound_is_one_cli_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _folder(tmp_path / "data")
    run = tmp_path / "run"
    code = main(
        [
            "train",
            "--data-dir",
            str(root),
            "--image-size",
            "100000",
            "--run-dir",
            str(run),
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "--image-size" in err and "8,192" in err
    assert not run.exists() or not any(run.iterdir())
