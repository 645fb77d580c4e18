from __future__ import annotations

import numpy as np
import pytest

import kerasimgcls as kic


def test_exported_model_round_trips_with_class_names_in_safe_mode(tmp_path) -> None:  # type: ignore[no-untyped-def]
    model = kic.build_cifar_cnn(input_shape=(8, 8, 1), num_classes=3)
    exported = kic.export_model(model, ["a", "b", "c"])
    path = tmp_path / "model.keras"
    exported.save(path)
    loaded = kic.load_model(tmp_path)  # a directory holding model.keras works too
    assert kic.get_class_names(loaded) == ("a", "b", "c")
    images = np.random.default_rng(0).integers(0, 256, (5, 8, 8, 1), dtype=np.uint8)
    expected = kic.predict_proba(model, images)  # raw model: scaled for it
    np.testing.assert_allclose(kic.predict_proba(loaded, images), expected, atol=1e-6)


def test_export_model_rejects_wrong_number_of_class_names() -> None:
    model = kic.build_cifar_cnn(input_shape=(8, 8, 1), num_classes=3)
    with pytest.raises(ValueError, match="one name per model output"):
        kic.export_model(model, ["a", "b"])


def test_predict_proba_rejects_wrong_dtype_and_shape() -> None:
    model = kic.build_cifar_cnn(input_shape=(8, 8, 1), num_classes=3)
    with pytest.raises(TypeError, match="uint8"):
        kic.predict_proba(model, np.zeros((1, 8, 8, 1), np.float32))
    with pytest.raises(ValueError, match="input"):
        kic.predict_proba(model, np.zeros((1, 9, 8, 1), np.uint8))


def test_load_model_errors(tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(FileNotFoundError, match="path"):
        kic.load_model(tmp_path / "missing.keras")
    other = tmp_path / "weights.h5"
    other.write_bytes(b"")
    with pytest.raises(ValueError, match=r"\.keras"):
        kic.load_model(other)


def test_predict_proba_flip_tta_averages_the_mirror_image() -> None:
    model = kic.build_cifar_cnn(input_shape=(8, 8, 3), num_classes=4, compile=False)
    images = np.random.default_rng(0).integers(0, 256, (5, 8, 8, 3), np.uint8)
    plain = kic.predict_proba(model, images)
    mirrored = kic.predict_proba(model, images[:, :, ::-1])
    tta = kic.predict_proba(model, images, tta="flip", batch_size=2)
    np.testing.assert_allclose(tta, (plain + mirrored) / 2, rtol=1e-5, atol=1e-6)
    assert not np.allclose(plain, mirrored)  # the test can tell them apart
    with pytest.raises(ValueError, match="tta must be None or 'flip'"):
        kic.predict_proba(model, images, tta="crop")
