"""Crafted dataset files: pickles, archives, IDX and npz files, arrays (issue 15).

Each case writes its own hostile input and asserts the exact outcome: the error
type, a message naming the culprit, and nothing written or allocated beyond the
bounds. Memory cases run in a subprocess under ``RLIMIT_AS``, so a regression fails
instead of exhausting the machine.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import struct
import subprocess
import sys
import tarfile
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from kerasimgcls import (
    Augmentation,
    ImageDataset,
    Split,
    UnsafePickleError,
    from_arrays,
    load_cifar10,
    load_mnist,
)
from kerasimgcls.cli import main

SRC = Path(__file__).resolve().parents[1] / "src"
NAMES = [name.encode() for name in ("a", "b", "c", "d", "e", "f", "g", "h", "i", "j")]


class _ForgedDtype:
    """Pickles as ``numpy.dtype("V8")`` whose state adds an object field, flags 0."""

    def __reduce__(self) -> tuple[Any, ...]:
        state = (3, "|", None, ("f",), {"f": (np.dtype("O"), 0)}, 8, 1, 0)
        return (np.dtype, ("V8", False, True), state)


class _FromBuffer:
    """Pickles as numpy's ``_frombuffer(raw, dtype, shape, "C")``."""

    def __init__(self, raw: bytes, dtype: Any, shape: tuple[int, ...]) -> None:
        self.args = (raw, dtype, shape, "C")

    def __reduce__(self) -> tuple[Any, ...]:
        from numpy._core.numeric import _frombuffer

        return (_frombuffer, self.args)


class _ZeroStride:
    """Pickles as an array state whose 848 bytes claim 200,000 images."""

    def __reduce__(self) -> tuple[Any, ...]:
        from numpy._core.multiarray import _reconstruct

        state = (1, (200_000, 3072), np.dtype("u1"), False, b"\0" * 848)
        return (_reconstruct, (np.ndarray, (0,), b"b"), state)


def _cifar_folder(root: Path, batch: dict[Any, Any] | None = None) -> Path:
    """A CIFAR-10 folder of 10-image batches; ``batch`` replaces data_batch_1."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        payload = {
            b"data": rng.integers(0, 256, (10, 3072), np.uint8),
            b"labels": list(range(10)),
        }
        (folder / name).write_bytes(pickle.dumps(payload, protocol=2))
    if batch is not None:
        (folder / "data_batch_1").write_bytes(pickle.dumps(batch, protocol=2))
    meta = {b"label_names": NAMES}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return folder


def _run_isolated(code: str, *, memory_mb: int = 1024, timeout: float = 120) -> Any:
    """Run ``code`` in a fresh interpreter allowed ``memory_mb`` more address space.

    The limit is set after kerasimgcls (and TensorFlow) are imported, on top of
    what they mapped; the code prints one JSON document, returned parsed.
    """
    prelude = textwrap.dedent(
        f"""
        import json, resource, sys
        import kerasimgcls
        def _mapped():
            for line in open("/proc/self/status"):
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
        limit = _mapped() + {memory_mb} * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(SRC), "TF_CPP_MIN_LOG_LEVEL": "3"}
    completed = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return json.loads(completed.stdout.strip().splitlines()[-1])


# --- 1. memory corruption from an allow-listed pickle -------------------------------


def test_hostile_forged_dtype_pickle_is_refused_in_a_subprocess(tmp_path: Path) -> None:
    # The object field with forged flags used to segfault (exit 139) on reading.
    labels = _FromBuffer(b"\x41" * 80, _ForgedDtype(), (10,))
    data = np.zeros((10, 3072), np.uint8)
    _cifar_folder(tmp_path / "forged", {b"data": data, b"labels": labels})
    meta_dir = _cifar_folder(tmp_path / "meta")
    names = _FromBuffer(b"\x41" * 80, _ForgedDtype(), (10,))
    (meta_dir / "batches.meta").write_bytes(
        pickle.dumps({b"label_names": names}, protocol=2)
    )
    outcome = _run_isolated(
        f"""
        from kerasimgcls import load_cifar10
        out = {{}}
        for case in ("forged", "meta"):
            try:
                load_cifar10(data_dir={str(tmp_path)!r} + "/" + case)
                out[case] = "loaded"
            except Exception as err:
                out[case] = [type(err).__name__, str(err)]
        print(json.dumps(out))
        """
    )
    for case, culprit in (("forged", "data_batch_1"), ("meta", "batches.meta")):
        kind, message = outcome[case]
        assert kind == "UnsafePickleError"
        assert culprit in message and "'V8'" in message


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (np.array([1, "x"], dtype=object), "kind 'O'"),
        (_ZeroStride(), "200000, 3072"),
        (_FromBuffer(b"\0" * 16, np.dtype("u1"), (4, 4, 4)), "backed by 16 bytes"),
        (np.zeros(3, dtype=[("a", "u1"), ("b", "f4")]), "'V5'"),
    ],
)
def test_hostile_pickles_with_unsafe_arrays_are_refused(
    tmp_path: Path, payload: Any, match: str
) -> None:
    _cifar_folder(tmp_path, {b"data": payload, b"labels": list(range(10))})
    with pytest.raises(UnsafePickleError, match=match):
        load_cifar10(data_dir=tmp_path)


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        ([True] * 10, "labels must be integers"),
        ([0.5] * 10, "labels must be integers"),
        (np.zeros(10, np.float32), "must be a list or 1-D array of integer labels"),
        (np.zeros((10, 1), np.int64), "one label per image"),
        ([10**30] * 10, "huge integers"),
        ([11] * 10, r"labels must be in \[0, 10\)"),
    ],
)
def test_hostile_cifar_labels_must_be_integers_in_range(
    tmp_path: Path, labels: Any, match: str
) -> None:
    data = np.zeros((10, 3072), np.uint8)
    _cifar_folder(tmp_path, {b"data": data, b"labels": labels})
    with pytest.raises(ValueError, match=match):
        load_cifar10(data_dir=tmp_path)


@pytest.mark.parametrize("names", [[None] * 10, [{}] * 10, [b"\xff\xfe"] * 10])
def test_hostile_cifar_class_names_must_be_text(tmp_path: Path, names: Any) -> None:
    folder = _cifar_folder(tmp_path)
    (folder / "batches.meta").write_bytes(pickle.dumps({b"label_names": names}))
    with pytest.raises(ValueError, match=r"batches\.meta"):
        load_cifar10(data_dir=tmp_path)


@pytest.mark.parametrize(
    "content",
    [b"garbage", pickle.dumps({b"data": 1})[:-4], b"(lp0\nI1\naI2\na.", b""],
)
def test_hostile_garbage_pickle_is_one_cli_line(
    tmp_path: Path, content: bytes, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = _cifar_folder(tmp_path / "data")
    (folder / "data_batch_3").write_bytes(content)
    data_dir, run_dir = str(tmp_path / "data"), str(tmp_path / "run")
    code = main(
        ["train", "--dataset", "cifar10", "--data-dir", data_dir, "--run-dir", run_dir]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "data_batch_3" in err
    assert not (tmp_path / "run" / "run.json").exists()


# --- 3. bounded extraction and unpickling ------------------------------------------


def _sparse_member(name: str, real_size: int) -> bytes:
    """A GNU sparse tar member: 512 bytes of data standing for ``real_size`` bytes."""
    header = bytearray(512)
    header[0 : len(name)] = name.encode()
    header[100:108] = b"0000644\0"
    header[108:116] = header[116:124] = b"0000000\0"
    header[124:136] = b"%011o\0" % 512
    header[136:148] = b"%011o\0" % 0
    header[156:157] = b"S"
    header[257:265] = b"ustar  \0"
    header[386:398] = b"%011o\0" % (real_size - 512)  # one chunk at the end
    header[398:410] = b"%011o\0" % 512
    header[483:495] = b"%011o\0" % real_size
    header[148:156] = b"        "
    header[148:156] = b"%06o\0 " % sum(header)
    return bytes(header) + b"\0" * 512


def test_hostile_sparse_member_is_refused_before_extraction(tmp_path: Path) -> None:
    archive = tmp_path / "cifar-10-python.tar.gz"
    raw = _sparse_member("cifar-10-batches-py/data_batch_1", 2 << 30) + b"\0" * 1024
    import gzip

    archive.write_bytes(gzip.compress(raw))
    outcome = _run_isolated(
        f"""
        from kerasimgcls import load_cifar10
        try:
            load_cifar10(data_dir={str(archive)!r})
            print(json.dumps("loaded"))
        except ValueError as err:
            print(json.dumps(str(err)))
        """,
        memory_mb=512,
    )
    assert "data_batch_1" in outcome and "2,147,483,648 bytes" in outcome
    written = sum(p.stat().st_size for p in tmp_path.rglob("*") if p.is_file())
    assert written < 1 << 20


def test_hostile_tar_of_many_members_is_refused_quickly(tmp_path: Path) -> None:
    archive = tmp_path / "cifar-10-python.tar"
    with tarfile.open(archive, "w") as handle:
        for index in range(10_050):
            handle.addfile(tarfile.TarInfo(f"cifar-10-batches-py/{index}"))
    start = time.perf_counter()
    with pytest.raises(ValueError, match="more than 10,000 members"):
        load_cifar10(data_dir=archive)
    assert time.perf_counter() - start < 10
    assert not list(tmp_path.glob("*_extracted/*"))


def test_hostile_archive_bounds_are_overridable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _cifar_folder(tmp_path / "src")
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as handle:
        handle.add(tmp_path / "src" / "cifar-10-batches-py", "cifar-10-batches-py")
    monkeypatch.setenv("KERASIMGCLS_MAX_ARCHIVE_MEMBER_BYTES", "1000")
    with pytest.raises(ValueError, match="KERASIMGCLS_MAX_ARCHIVE_MEMBER_BYTES"):
        load_cifar10(data_dir=archive)
    monkeypatch.setenv("KERASIMGCLS_MAX_ARCHIVE_MEMBER_BYTES", "many")
    with pytest.raises(ValueError, match="must be a positive integer"):
        load_cifar10(data_dir=archive)
    monkeypatch.delenv("KERASIMGCLS_MAX_ARCHIVE_MEMBER_BYTES")
    assert len(load_cifar10(data_dir=archive, validation_split=0.0).train) == 50


def test_hostile_bounds_hold_in_a_subprocess(tmp_path: Path) -> None:
    idx = tmp_path / "idx"
    idx.mkdir()
    header = struct.pack(">BBBBIII", 0, 0, 8, 3, 1_000_000, 4096, 4096)
    for stem in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte"):
        (idx / stem).write_bytes(header + b"\0" * 64)
    for stem in ("train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"):
        (idx / stem).write_bytes(struct.pack(">BBBBI", 0, 0, 8, 1, 4) + b"\0" * 4)
    folder = tmp_path / "folder" / "a"
    folder.mkdir(parents=True)
    from PIL import Image

    Image.new("L", (4, 4)).save(folder / "x.png")
    outcome = _run_isolated(
        f"""
        import numpy as np
        from kerasimgcls import from_arrays, load_image_folder, load_mnist
        cases = {{
            "label": lambda: from_arrays(np.zeros((2, 4, 4), np.uint8), [0, 10**9]),
            "size": lambda: load_image_folder({str(tmp_path / "folder")!r},
                                              image_size=60000, cache=False),
            "idx": lambda: load_mnist(data_dir={str(idx)!r}),
        }}
        out = {{}}
        for name, case in cases.items():
            try:
                case()
                out[name] = "accepted"
            except ValueError as err:
                out[name] = str(err)
        print(json.dumps(out))
        """,
        memory_mb=512,
    )
    assert "number of classes" in outcome["label"]
    assert "KERASIMGCLS_MAX_CLASSES" in outcome["label"]
    assert "each side of image_size must be at most 8,192" in outcome["size"]
    assert "train-images-idx3-ubyte" in outcome["idx"]
    assert "truncated" in outcome["idx"]


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"\0\0\x08\x09", "announces 9 dimensions"),
        (b"\0\0\x0d\x01\0\0\0\x01\0\0\0\0", "not an IDX file of unsigned bytes"),
        (b"\x1f\x8b\x08\0\0\0\0\0", "cannot decompress"),
    ],
)
def test_hostile_bad_idx_files_are_named(
    tmp_path: Path, content: bytes, match: str
) -> None:
    good = struct.pack(">BBBBI", 0, 0, 8, 1, 2) + b"\0\1"
    for stem in ("train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"):
        (tmp_path / stem).write_bytes(good)
    images = struct.pack(">BBBBIII", 0, 0, 8, 3, 2, 2, 2) + b"\0" * 8
    (tmp_path / "t10k-images-idx3-ubyte").write_bytes(images)
    name = "train-images-idx3-ubyte" + (".gz" if content[:2] == b"\x1f\x8b" else "")
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ValueError, match=match) as caught:
        load_mnist(data_dir=tmp_path)
    assert name in str(caught.value)


def test_hostile_truncated_npz_and_zip_bomb_are_named(tmp_path: Path) -> None:
    arrays = {
        "x_train": np.zeros((4, 2, 2), np.uint8),
        "y_train": np.zeros(4, np.int64),
        "x_test": np.zeros((2, 2, 2), np.uint8),
        "y_test": np.zeros(2, np.int64),
    }
    truncated = tmp_path / "mnist.npz"
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    truncated.write_bytes(buffer.getvalue()[:-100])
    with pytest.raises(ValueError, match=r"mnist\.npz.*truncated"):
        load_mnist(data_dir=truncated)
    bomb = tmp_path / "bomb.npz"
    np.savez_compressed(bomb, **{**arrays, "x_train": np.zeros((40, 1000, 1000), "u1")})
    os.environ["KERASIMGCLS_MAX_DATA_FILE_BYTES"] = str(10 << 20)
    try:
        with pytest.raises(ValueError, match="x_train unpacks to 40,000,128 bytes"):
            load_mnist(data_dir=bomb)
    finally:
        del os.environ["KERASIMGCLS_MAX_DATA_FILE_BYTES"]


def test_hostile_truncated_tar_gz_is_one_line(tmp_path: Path) -> None:
    _cifar_folder(tmp_path / "src")
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as handle:
        handle.add(tmp_path / "src" / "cifar-10-batches-py", "cifar-10-batches-py")
    archive.write_bytes(archive.read_bytes()[:-2000])
    with pytest.raises(ValueError, match="truncated or not a tar archive"):
        load_cifar10(data_dir=archive)
    assert not (tmp_path / "cifar-10-python_extracted").exists()


# --- 4. stale and concurrent extractions --------------------------------------------


def _archive(tmp_path: Path, name: str, first_label: int = 0) -> Path:
    source = tmp_path / name
    folder = _cifar_folder(source)
    if first_label:
        data = np.zeros((10, 3072), np.uint8)
        labels = [first_label] * 10
        payload = {b"data": data, b"labels": labels}
        (folder / "data_batch_1").write_bytes(pickle.dumps(payload, protocol=2))
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as handle:
        handle.add(folder, "cifar-10-batches-py")
    return archive


def test_hostile_corrupt_extraction_is_replaced_with_the_new_archive(
    tmp_path: Path,
) -> None:
    archive = _archive(tmp_path, "bad", first_label=12)  # labels out of range
    with pytest.raises(ValueError, match="labels must be in"):
        load_cifar10(data_dir=archive)
    extracted = tmp_path / "cifar-10-python_extracted"
    assert (extracted / ".kerasimgcls-extracted.json").is_file()
    time.sleep(0.01)
    archive = _archive(tmp_path, "good")  # the user downloads it again
    data = load_cifar10(data_dir=archive, validation_split=0.0)
    assert len(data.train) == 50
    marker = json.loads((extracted / ".kerasimgcls-extracted.json").read_text())
    assert marker["size"] == archive.stat().st_size


def test_hostile_extraction_without_marker_is_redone(tmp_path: Path) -> None:
    archive = _archive(tmp_path, "good")
    partial = tmp_path / "cifar-10-python_extracted" / "cifar-10-batches-py"
    partial.mkdir(parents=True)
    (partial / "batches.meta").write_bytes(b"half")  # an interrupted extraction
    assert len(load_cifar10(data_dir=archive, validation_split=0.0).train) == 50
    mine = tmp_path / "cifar-10-python_extracted" / "notes.txt"
    mine.write_text("mine")
    (mine.parent / ".kerasimgcls-extracted.json").unlink()
    with pytest.raises(ValueError, match="with other files"):
        load_cifar10(data_dir=archive)
    assert mine.read_text() == "mine"


def test_hostile_concurrent_loaders_share_one_extraction(tmp_path: Path) -> None:
    archive = _archive(tmp_path, "good")
    results: list[Any] = []

    def load() -> None:
        try:
            results.append(len(load_cifar10(data_dir=archive).train))
        except Exception as err:  # reported by the assertion below
            results.append(err)

    threads = [threading.Thread(target=load) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [40, 40, 40]
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


# --- 3 and 7. arrays -----------------------------------------------------------------


def test_hostile_from_arrays_refuses_ambiguous_float_ranges() -> None:
    x = np.linspace(0, 1.5, 4 * 8 * 8).reshape(4, 8, 8)
    with pytest.raises(ValueError, match=r"pass value_range=\(0, 1\)"):
        from_arrays(x, [0, 1, 0, 1])
    with pytest.raises(ValueError, match=r"in \[0, 1\]; received values"):
        from_arrays(x, [0, 1, 0, 1], value_range=(0, 1))
    dark = from_arrays(x, [0, 1, 0, 1], value_range=(0, 255), validation_split=0)
    assert int(dark.train.images.max()) == 2
    unit = from_arrays(x / 1.5, [0, 1, 0, 1], validation_split=0)
    assert int(unit.train.images.max()) == 255
    with pytest.raises(ValueError, match="value_range must be"):
        from_arrays(x, [0, 1, 0, 1], value_range=(0, 2))


@pytest.mark.parametrize(
    ("labels", "error", "match"),
    [
        ([True, False, True, False], TypeError, "not booleans"),
        ([0, 1, True, 0], TypeError, r"y\[2\]=True"),
        ([0, 1, 0.5, 0], ValueError, r"y\[2\]=0.5"),
        (["0", "1", "0", "1"], TypeError, "integer class indices"),
    ],
)
def test_hostile_from_arrays_labels_are_not_cast(
    labels: Any, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        from_arrays(np.zeros((4, 8, 8), np.uint8), labels)


@pytest.mark.parametrize(
    ("names", "error", "match"),
    [
        ([None, "b"], TypeError, r"class_names\[0\]=None"),
        ([{}, "b"], TypeError, "of type dict"),
        (["a", ""], ValueError, "empty string"),
        (["a", "\x1b[31mred"], ValueError, "control characters"),
    ],
)
def test_hostile_class_names_must_be_printable_strings(
    names: Any, error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        from_arrays(np.zeros((4, 8, 8), np.uint8), [0, 1, 0, 1], class_names=names)
    split = Split(np.zeros((2, 8, 8, 1), np.uint8), np.array([0, 1]))
    with pytest.raises(error, match=match):
        ImageDataset(split, None, None, names)


def test_hostile_split_refuses_fractional_labels() -> None:
    with pytest.raises(ValueError, match=r"labels\[1\]=0.5"):
        Split(np.zeros((2, 8, 8, 1), np.uint8), np.array([0.0, 0.5]))


@pytest.mark.parametrize(
    ("augment", "match"),
    [
        (Augmentation(flip=False, translate=1000), "translate must be at most 15"),
        (
            Augmentation(flip=False, translate=8, fill_mode="constant"),
            "translate must be at most 7",
        ),
        (
            Augmentation(flip=False, translate=0, cutout=1000),
            "cutout must be at most 8",
        ),
    ],
)
def test_hostile_augmentation_must_fit_the_images(
    augment: Augmentation, match: str
) -> None:
    from kerasimgcls import epochs_dataset

    split = Split(np.zeros((4, 8, 8, 1), np.uint8), np.array([0, 1, 0, 1]))
    with pytest.raises(ValueError, match=match) as caught:
        epochs_dataset(
            split,
            num_classes=2,
            batch_size=2,
            initial_epoch=0,
            epochs=1,
            augment=augment,
        )
    assert "\n" not in str(caught.value)
