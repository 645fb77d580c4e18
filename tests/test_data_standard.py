from __future__ import annotations

import gzip
import io
import os
import pickle
import socket
import tarfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kerasimgcls import (
    UnsafePickleError,
    load_cifar10,
    load_cifar100,
    load_fashion_mnist,
    load_mnist,
)

CLASSES = [
    b"airplane",
    b"automobile",
    b"bird",
    b"cat",
    b"deer",
    b"dog",
    b"frog",
    b"horse",
    b"ship",
    b"truck",
]


def _batch(
    seed: int, n: int = 20, num_classes: int = 10
) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, (n, 3072), np.uint8)
    labels = [int(i % num_classes) for i in range(n)]
    return data, labels


def _write_cifar10(folder: Path, per_batch: int = 20) -> dict[str, Any]:
    folder.mkdir(parents=True)
    written = {}
    for index, name in enumerate(
        [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    ):
        data, labels = _batch(index, per_batch)
        written[name] = (data, labels)
        payload = {b"batch_label": name.encode(), b"data": data, b"labels": labels}
        (folder / name).write_bytes(pickle.dumps(payload, protocol=2))
    meta = {b"label_names": CLASSES, b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return written


def _tar(source: Path, archive: Path) -> Path:
    with tarfile.open(archive, "w:gz") as handle:
        handle.add(source, arcname=source.name)
    return archive


@pytest.fixture
def keras_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "keras_home"
    (home / "datasets").mkdir(parents=True)
    monkeypatch.setenv("KERAS_HOME", str(home))
    monkeypatch.setenv("KERASIMGCLS_CACHE_DIR", str(tmp_path / "kic_cache"))
    return home


def test_load_cifar10_from_extracted_folder(tmp_path: Path) -> None:
    written = _write_cifar10(tmp_path / "cifar-10-batches-py")
    data = load_cifar10(data_dir=tmp_path / "cifar-10-batches-py", validation_split=0.0)
    assert data.class_names[0] == "airplane" and data.class_names[-1] == "truck"
    assert data.input_shape == (32, 32, 3)
    assert len(data.train) == 100 and data.test is not None and len(data.test) == 20
    data_1, labels_1 = written["data_batch_1"]
    expected = data_1[3].reshape(3, 32, 32).transpose(1, 2, 0)
    np.testing.assert_array_equal(data.train.images[3], expected)
    np.testing.assert_array_equal(data.train.labels[:20], labels_1)
    # Channels: the first 1024 values are red.
    assert data.train.images[0, 0, 1, 0] == data_1[0, 1]
    assert data.train.images[0, 0, 0, 2] == data_1[0, 2048]


def test_load_cifar10_from_archive_and_its_folder(
    tmp_path: Path, keras_home: Path
) -> None:
    _write_cifar10(tmp_path / "src" / "cifar-10-batches-py")
    archive = _tar(
        tmp_path / "src" / "cifar-10-batches-py", tmp_path / "cifar-10-python.tar.gz"
    )
    from_archive = load_cifar10(data_dir=archive, validation_split=0.2, seed=1)
    assert len(from_archive.train) == 80 and from_archive.validation is not None
    assert from_archive.validation.class_counts(10).tolist() == [2] * 10
    assert (tmp_path / "cifar-10-python_extracted" / "cifar-10-batches-py").is_dir()
    holder = tmp_path / "downloads"
    holder.mkdir()
    os.replace(archive, holder / archive.name)
    from_holder = load_cifar10(data_dir=holder, validation_split=0.2, seed=1)
    assert from_holder.fingerprint == from_archive.fingerprint


def test_load_cifar10_from_keras_cache(keras_home: Path) -> None:
    _write_cifar10(
        keras_home / "datasets" / "cifar-10-batches-py-target" / "cifar-10-batches-py"
    )
    data = load_cifar10(download=False)
    assert data.name == "cifar10" and len(data.test or ()) == 20


def test_load_cifar10_offline_without_data_is_fast_and_helpful(
    keras_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError, match=r"cifar-10-python\.tar\.gz.*data_dir"):
        load_cifar10(download=False)
    assert time.perf_counter() - start < 2.0

    def offline(*args: object, **kwargs: object) -> socket.socket:
        raise OSError("network is unreachable")

    monkeypatch.setattr(socket, "create_connection", offline)
    with pytest.raises(FileNotFoundError, match="not reachable"):
        load_cifar10()
    with pytest.raises(FileNotFoundError, match=r"mnist\.npz"):
        load_mnist()
    with pytest.raises(FileNotFoundError, match=r"train-images-idx3-ubyte\.gz"):
        load_fashion_mnist(download=False)
    with pytest.raises(FileNotFoundError, match=r"cifar-100-python\.tar\.gz"):
        load_cifar100(download=False)


class _Marker:
    """Pickles to a call that would create a marker file when loaded."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.path}",))


@pytest.mark.parametrize("hidden", [False, True])
def test_crafted_batch_is_refused_and_runs_nothing(
    tmp_path: Path, hidden: bool
) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    _write_cifar10(folder)
    marker = tmp_path / "marker"
    payload: Any = _Marker(marker)
    if hidden:
        payload = np.array([payload, 1], dtype=object)
    data, labels = _batch(0)
    evil = {b"data": data, b"labels": labels, b"extra": payload}
    (folder / "data_batch_3").write_bytes(pickle.dumps(evil, protocol=2))
    with pytest.raises(UnsafePickleError, match=r"data_batch_3.*system"):
        load_cifar10(data_dir=folder)
    assert not marker.exists()
    # The same pickle loaded the unsafe way really would create the marker.
    pickle.loads((folder / "data_batch_3").read_bytes())
    assert marker.exists()


def test_crafted_batch_refused_for_every_pickle_protocol(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    _write_cifar10(folder)
    marker = tmp_path / "marker"
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        meta = {b"label_names": CLASSES, b"x": _Marker(marker)}
        (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=protocol))
        with pytest.raises(UnsafePickleError):
            load_cifar10(data_dir=folder)
    assert not marker.exists()


def test_numpy_pickle_protocol_5_is_accepted(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    _write_cifar10(folder)
    data, labels = _batch(9)
    (folder / "test_batch").write_bytes(
        pickle.dumps({b"data": data, b"labels": np.array(labels)}, protocol=5)
    )
    loaded = load_cifar10(data_dir=folder)
    assert loaded.test is not None
    np.testing.assert_array_equal(loaded.test.labels, labels)


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ({b"data": np.zeros((20, 3072), np.float32)}, "must be a uint8 array"),
        ({b"data": np.zeros((20, 100), np.uint8)}, "must have 3072 columns"),
        ({b"labels": [0] * 19}, "one label per image"),
        ({b"labels": [0] * 19 + [10]}, r"labels must be in \[0, 10\); found 10"),
        ({b"labels": ["cat"] * 20}, "labels must be integers"),
    ],
)
def test_invalid_batch_content_is_rejected(
    tmp_path: Path, content: dict[bytes, Any], match: str
) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    _write_cifar10(folder)
    data, labels = _batch(0)
    batch = {b"data": data, b"labels": labels, **content}
    (folder / "data_batch_2").write_bytes(pickle.dumps(batch, protocol=2))
    with pytest.raises(ValueError, match=match):
        load_cifar10(data_dir=folder)


def test_not_a_pickle_is_rejected(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-10-batches-py"
    _write_cifar10(folder)
    (folder / "data_batch_1").write_bytes(b"this is not a pickle")
    with pytest.raises(pickle.UnpicklingError):
        load_cifar10(data_dir=folder)


def test_archive_with_path_traversal_is_refused(
    tmp_path: Path, keras_home: Path
) -> None:
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as handle:
        info = tarfile.TarInfo("../escaped.txt")
        body = b"outside"
        info.size = len(body)
        handle.addfile(info, io.BytesIO(body))
    with pytest.raises(ValueError, match="cannot extract"):
        load_cifar10(data_dir=archive)
    assert not (tmp_path / "escaped.txt").exists()


def test_load_cifar10_from_image_folder(tmp_path: Path, keras_home: Path) -> None:
    from PIL import Image

    for name in ("cat", "airplane"):
        for i in range(3):
            folder = tmp_path / "jpg" / "train" / name
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((32, 32, 3), i * 40, np.uint8)).save(
                folder / f"{i}.png"
            )
    data = load_cifar10(data_dir=tmp_path / "jpg", validation_split=0.0)
    assert data.class_names == ("airplane", "cat") and data.test is None
    assert len(data.train) == 6


def test_load_cifar100_fine_and_coarse(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for split, n in (("train", 200), ("test", 100)):
        data, fine = _batch(1, n, num_classes=100)
        coarse = [label // 5 for label in fine]
        batch = {b"data": data, b"fine_labels": fine, b"coarse_labels": coarse}
        (folder / split).write_bytes(pickle.dumps(batch, protocol=2))
    meta = {
        b"fine_label_names": [f"fine{i}".encode() for i in range(100)],
        b"coarse_label_names": [f"coarse{i}".encode() for i in range(20)],
    }
    (folder / "meta").write_bytes(pickle.dumps(meta, protocol=2))
    fine_data = load_cifar100(data_dir=folder, validation_split=0.0)
    assert fine_data.num_classes == 100 and fine_data.class_names[7] == "fine7"
    coarse_data = load_cifar100(data_dir=folder, label_mode="coarse")
    assert coarse_data.num_classes == 20 and coarse_data.name == "cifar100_coarse"
    with pytest.raises(ValueError, match="label_mode must be one of"):
        load_cifar100(data_dir=folder, label_mode="medium")  # type: ignore[arg-type]


def _idx(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(
        int(d).to_bytes(4, "big") for d in array.shape
    )
    return header + array.tobytes()


def test_load_mnist_from_npz_and_fashion_from_idx(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (30, 28, 28), np.uint8),
        "y_train": np.arange(30, dtype=np.uint8) % 10,
        "x_test": rng.integers(0, 256, (10, 28, 28), np.uint8),
        "y_test": np.arange(10, dtype=np.uint8),
    }
    np.savez(tmp_path / "mnist.npz", **arrays)
    mnist = load_mnist(data_dir=tmp_path / "mnist.npz", validation_split=0.0)
    assert mnist.input_shape == (28, 28, 1) and len(mnist.test or ()) == 10
    np.testing.assert_array_equal(mnist.train.images[..., 0], arrays["x_train"])
    idx_folder = tmp_path / "fashion"
    idx_folder.mkdir()
    names = {
        "x_train": "train-images-idx3-ubyte",
        "y_train": "train-labels-idx1-ubyte",
        "x_test": "t10k-images-idx3-ubyte",
        "y_test": "t10k-labels-idx1-ubyte",
    }
    for key, name in names.items():
        (idx_folder / f"{name}.gz").write_bytes(gzip.compress(_idx(arrays[key])))
    fashion = load_fashion_mnist(data_dir=idx_folder, validation_split=0.1)
    assert fashion.class_names[-1] == "Ankle boot"
    assert len(fashion.train) + len(fashion.validation or ()) == 30
    (idx_folder / "t10k-labels-idx1-ubyte.gz").write_bytes(
        gzip.compress(_idx(arrays["y_test"])[:-3])
    )
    with pytest.raises(ValueError, match="is truncated"):
        load_fashion_mnist(data_dir=idx_folder)


def test_loaders_check_arguments(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="data_dir does not exist"):
        load_cifar10(data_dir=tmp_path / "nothing")
    with pytest.raises(ValueError, match="validation_split must be in"):
        load_mnist(data_dir=tmp_path, validation_split=1.5)
    with pytest.raises(TypeError, match="download must be True, False or None"):
        load_cifar10(download="yes")  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match="holds neither"):
        load_cifar10(data_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match="holds neither"):
        load_mnist(data_dir=tmp_path)


@pytest.mark.parametrize(
    ("y_train", "match"),
    [
        (np.arange(30) % 11, r"labels must be in \[0, 10\); found 10 at index 10"),
        (np.zeros(29, np.int64), r"'y_train' must hold one label per image \(30\)"),
        (np.zeros(30, np.float32), r"'y_train' must be a list or 1-D array of integer"),
    ],
)
def test_mnist_labels_are_checked_like_cifar_labels(
    tmp_path: Path, y_train: np.ndarray, match: str
) -> None:
    rng = np.random.default_rng(0)
    np.savez(
        tmp_path / "mnist.npz",
        x_train=rng.integers(0, 256, (30, 28, 28), np.uint8),
        y_train=y_train,
        x_test=rng.integers(0, 256, (10, 28, 28), np.uint8),
        y_test=np.arange(10, dtype=np.uint8),
    )
    with pytest.raises(
        ValueError, match=rf"^the mnist data in '.+mnist\.npz': {match}"
    ):
        load_mnist(data_dir=tmp_path / "mnist.npz", validation_split=0.0)
