"""One line for every refusal, and no raw control characters (issue 27, minor).

A name read from disk is printed escaped (a newline would forge a line of a
report, ``ESC[2J`` clears the screen); an error is one line whatever raised it;
a bad value is refused where it enters, before expensive work.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import keras
import numpy as np
import pytest
from PIL import Image

import kerasimgcls as kic
from kerasimgcls.cli import main


def _one_line(err: str) -> bool:
    return err.count("\n") == 1 and "Traceback" not in err and "\x1b" not in err


def _png(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (10, 20, 30)).save(path, format="PNG")
    return path


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    core = kic.build_cifar_cnn(input_shape=(8, 8, 3), num_classes=2)
    path = tmp_path_factory.mktemp("model") / "m.keras"
    kic.export_model(core, ["a", "b"]).save(path)
    return path


# --- control characters ---------------------------------------------------------------


def test_messages_doctor_escapes_file_names(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "data"
    _png(root / "cat" / "ok.png")
    _png(root / "dog" / "ok.png")
    (root / "dog" / "x\n  PROBLEM: forged.png").write_bytes(b"not an image")
    (root / "dog" / "\x1b[2Jclear.png").write_bytes(b"not an image")
    code = main(["doctor", str(root)])
    out = capsys.readouterr().out
    assert code == 1
    assert "\x1b" not in out and "\\x1b[2Jclear.png" in out
    assert "x\\n  PROBLEM: forged.png" in out
    assert not any(line.startswith("  PROBLEM: forged") for line in out.splitlines())


def test_messages_predict_escapes_file_names(
    tmp_path: Path, model_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    image = _png(tmp_path / "in" / "\x1b[2Jcat\n.png")
    (tmp_path / "in" / "bad\x1b]0;title\x07.png").write_bytes(b"x")
    code = main(["predict", str(model_file), str(image.parent)])
    captured = capsys.readouterr()
    assert code == 1
    assert "\x1b" not in captured.out + captured.err and "\x07" not in captured.err
    assert "\\x1b[2Jcat\\n.png: " in captured.out


def test_messages_bidi_override_class_name_is_refused(tmp_path: Path) -> None:
    _png(tmp_path / "data" / "cat\u202egnp.exe" / "a.png")
    _png(tmp_path / "data" / "dog" / "a.png")
    with pytest.raises(ValueError, match=r"'cat\\u202egnp\.exe' holds control"):
        kic.load_image_folder(tmp_path / "data", cache=False)


def test_messages_error_text_is_escaped_and_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["doctor", str(tmp_path / "no\x1b[2Jsuch\nfolder")])
    err = capsys.readouterr().err
    assert code == 2 and _one_line(err) and "\\x1b[2J" in err


# --- one line, whatever raised it ---------------------------------------------------


def test_messages_summary_huge_input_shape_is_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["summary", "cifar_cnn", "--input-shape", "100000,100000,3"])
    err = capsys.readouterr().err
    assert code == 2 and _one_line(err) and "at most 8,192" in err


def test_messages_keras_error_is_one_line(
    tmp_path: Path, model_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A model file naming a layer class nobody registered: Keras' error spans lines.
    broken = tmp_path / "broken.keras"
    with zipfile.ZipFile(model_file) as source, zipfile.ZipFile(broken, "w") as out:
        for item in source.infolist():
            data = source.read(item.filename)
            if item.filename == "config.json":
                data = data.replace(b'"Conv2D"', b'"NoSuchLayer"', 1)
            out.writestr(item, data)
    code = main(["predict", str(broken), str(_png(tmp_path / "a.png"))])
    err = capsys.readouterr().err
    assert code == 2 and _one_line(err) and "could not be loaded" in err


def test_messages_image_size_with_a_named_dataset_is_refused(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code = main(["train", "--dataset", "digits", "--image-size", "64", "--epochs", "1"])
    err = capsys.readouterr().err
    assert code == 2 and _one_line(err) and "--image-size" in err


# --- refused where it enters ---------------------------------------------------------


def test_messages_nan_images_are_refused_early() -> None:
    images = np.full((4, 8, 8, 3), 0.5, np.float32)
    images[1, 2, 3, 0] = np.nan
    with pytest.raises(ValueError, match=r"images must be finite; received nan"):
        kic.models.patch_whitening_kernel(images, kernel_size=2)
    with pytest.raises(ValueError, match="NaN or infinite"):
        kic.from_arrays(images, np.arange(4) % 2)
    matrix = np.array([[1.0, np.nan], [0.0, 2.0]])
    with pytest.raises(ValueError, match="confusion_matrix must be finite"):
        kic.plots.plot_confusion_matrix(matrix, Path("never.png"))


def test_messages_images_of_height_zero_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1x1 pixels"):
        kic.from_arrays(np.zeros((4, 0, 8, 3), np.uint8), np.arange(4) % 2)


def test_messages_export_model_refuses_duplicate_class_names() -> None:
    core = kic.build_cifar_cnn(input_shape=(8, 8, 3), num_classes=2)
    with pytest.raises(ValueError, match="class_names must be unique; 'cat'"):
        kic.export_model(core, ["cat", "cat"])


def test_messages_nan_weights_are_refused_on_load_and_export(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    core = kic.build_cifar_cnn(input_shape=(8, 8, 3), num_classes=2)
    model = kic.export_model(core, ["a", "b"])
    weight = model.weights[0]
    weight.assign(np.full(weight.shape, np.nan, "float32"))
    path = tmp_path / "nan.keras"
    keras.Model.save(model, path)
    with pytest.raises(ValueError, match="non-finite weights"):
        kic.load_model(path)
    code = main(["predict", str(path), str(_png(tmp_path / "a.png"))])
    assert code == 2 and "non-finite weights" in capsys.readouterr().err
    out = tmp_path / "serve"
    code = main(["export", str(path), "--format", "saved_model", "--output", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and _one_line(err) and not out.exists()
