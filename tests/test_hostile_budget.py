"""Small crafted files that ask for unbounded time or memory (issue 27, class 3).

Each file is a few bytes or kilobytes; each test asserts that it is refused (or
loaded) quickly and that the peak of Python's allocations (``tracemalloc``,
which sees NumPy's and the unpickler's buffers too) stays small. Where a
regression would allocate gigabytes, the crafted sizes are scaled down so that
a regression fails the assertion instead of exhausting the machine, and a
timeout stops a walk that would never end.
"""

from __future__ import annotations

import gzip
import io
import json
import pickle
import struct
import tarfile
import time
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import kerasimgcls as kic
from kerasimgcls import UnsafePickleError, load_cifar10
from kerasimgcls._validation import DEFAULT_BUDGET, DEFAULT_LIMITS, ResourceBudget
from kerasimgcls.cli import main
from kerasimgcls.data._safe_pickle import safe_load

MiB = 2**20


def _peak(call: Callable[[], Any]) -> tuple[float, float, Any]:
    """Run ``call``: ``(seconds, peak MiB allocated, what it returned or raised)``."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        outcome: Any = call()
    except Exception as err:  # the outcome is asserted by the caller
        outcome = err
    finally:
        seconds = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return seconds, peak / MiB, outcome


def _shared(levels: int) -> list[Any]:
    """``x = [x, x]`` ``levels`` times: 2**levels leaves, ``levels`` lists."""
    value: list[Any] = []
    for _ in range(levels):
        value = [value, value]
    return value


def _cifar_folder(root: Path, batch: bytes) -> Path:
    """A CIFAR-10 folder whose ``data_batch_1`` is ``batch`` (the others genuine)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        payload = {
            b"data": rng.integers(0, 256, (10, 3072), np.uint8),
            b"labels": list(range(10)),
        }
        (folder / name).write_bytes(pickle.dumps(payload, protocol=2))
    (folder / "data_batch_1").write_bytes(batch)
    names = [name.encode() for name in "abcdefghij"]
    meta = pickle.dumps({b"label_names": names}, protocol=2)
    (folder / "batches.meta").write_bytes(meta)
    return root


# --- the budget itself -------------------------------------------------------------


def test_budget_is_one_frozen_dataclass_with_the_documented_numbers() -> None:
    assert isinstance(DEFAULT_BUDGET, ResourceBudget)
    with pytest.raises(AttributeError):
        DEFAULT_BUDGET.max_pickle_opcodes = 1  # type: ignore[misc]
    assert dict(DEFAULT_LIMITS) == {
        "max_image_side": 8192,
        "max_image_pixels": 8192 * 8192,
        "max_image_file_bytes": 256 * MiB,
        "max_classes": 100_000,
        "max_archive_members": 10_000,
        "max_archive_bytes": 2 << 30,
        "max_archive_member_bytes": 1 << 30,
        "max_archive_header_bytes": 1 * MiB,
        "max_archive_path_depth": 64,
        "max_data_file_bytes": 1 << 30,
        "max_pickle_opcodes": 2_000_000,
        "max_pickle_objects": 1_000_000,
        "max_model_config_bytes": 16 * MiB,
        "max_model_bytes": 8 << 30,
    }
    page = (Path(__file__).parents[1] / "docs" / "guide" / "security.md").read_text()
    for name in DEFAULT_LIMITS:
        assert f"`{name}`" in page, name


# --- pickles -----------------------------------------------------------------------


@pytest.mark.timeout(20)
def test_budget_pickle_of_shared_references_is_refused_at_once(tmp_path: Path) -> None:
    # 514 bytes whose labels are x = [x, x] forty times: 2**40 leaves to a walk
    # or to repr() in the error message.
    labels = _shared(40)
    batch = pickle.dumps(
        {b"data": np.zeros((10, 3072), np.uint8), b"labels": labels}, protocol=2
    )
    root = _cifar_folder(tmp_path, batch)
    seconds, peak, outcome = _peak(lambda: load_cifar10(data_dir=root))
    assert isinstance(outcome, UnsafePickleError), outcome
    assert "nested more than 32 deep" in str(outcome)
    assert len(str(outcome)) < 500
    assert seconds < 2 and peak < 32


@pytest.mark.timeout(20)
def test_budget_pickle_shared_references_in_an_error_are_not_repr_whole(
    tmp_path: Path,
) -> None:
    # Within the nesting bound (30 levels, 2**30 leaves): the labels are refused
    # with a message that does not try to print them.
    batch = pickle.dumps(
        {b"data": np.zeros((10, 3072), np.uint8), b"labels": _shared(30)}, protocol=2
    )
    root = _cifar_folder(tmp_path, batch)
    seconds, peak, outcome = _peak(lambda: load_cifar10(data_dir=root))
    assert isinstance(outcome, ValueError), outcome
    assert "labels must be integers" in str(outcome)
    assert seconds < 2 and peak < 32
    code = main(["train", "--dataset", "cifar10", "--data-dir", str(root)])
    assert code == 2


@pytest.mark.timeout(20)
def test_budget_pickle_of_shared_references_under_an_unused_key(
    tmp_path: Path,
) -> None:
    # 3.5 KB that took 693 MB: the structure sits under a key nobody reads.
    batch = {
        b"data": np.zeros((10, 3072), np.uint8),
        b"labels": list(range(10)),
        b"unused": [_shared(30) for _ in range(20)],  # 30 levels: within depth
    }
    data = pickle.dumps(batch, protocol=2)
    assert len(data) < 64_000
    seconds, peak, outcome = _peak(lambda: safe_load(data, "batch"))
    assert isinstance(outcome, dict), outcome
    assert seconds < 2 and peak < 32
    # Shared objects stay shared: 30 lists, not 2**30.
    leaf = outcome[b"unused"][0]
    assert leaf[0] is leaf[1]


def test_budget_pickle_encoding_one_string_many_times_is_refused() -> None:
    # _codecs.encode called 300 times through the memo on one 256 KB string: a
    # regression allocates 75 MB here (1.5 GB with the 1,500 x 1 MB).
    text = "\xff" * (256 << 10)
    encoded = text.encode("utf-8")
    call = b"h\x01h\x02X\x06\x00\x00\x00latin1\x86R"  # encode(text, "latin1")
    data = (
        b"\x80\x02c_codecs\nencode\nq\x010"  # the callable, memo 1
        + b"X"
        + struct.pack("<I", len(encoded))
        + encoded
        + b"q\x020("  # the text, memo 2
        + call * 300
        + b"l."
    )
    seconds, peak, outcome = _peak(lambda: safe_load(data, "batch"))
    assert isinstance(outcome, UnsafePickleError), outcome
    assert "produce more bytes than the file holds" in str(outcome)
    assert seconds < 2 and peak < 24


def test_budget_pickle_memo_index_is_refused_before_unpickling() -> None:
    # LONG_BINPUT 2**24 (CPython zero-fills the memo up to it: 128 MB here, 2.1 GB
    # with the 2**27), in nine bytes.
    data = b"\x80\x02N" + b"r" + struct.pack("<I", 1 << 24) + b"."
    assert len(data) == 9
    seconds, peak, outcome = _peak(lambda: safe_load(data, "batch"))
    assert isinstance(outcome, UnsafePickleError), outcome
    assert "memo index 16,777,216 in a pickle of 4 opcodes" in str(outcome)
    assert seconds < 1 and peak < 4


def test_budget_pickle_opcodes_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERASIMGCLS_MAX_PICKLE_OPCODES", "1000")
    data = pickle.dumps(list(range(2000)), protocol=2)
    with pytest.raises(UnsafePickleError, match="more than 1,000 pickle opcodes"):
        safe_load(data, "batch")
    assert safe_load(pickle.dumps(list(range(100)), protocol=2), "b") == list(
        range(100)
    )


def test_budget_pickle_objects_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERASIMGCLS_MAX_PICKLE_OBJECTS", "100")
    data = pickle.dumps([[i] for i in range(200)], protocol=2)
    with pytest.raises(UnsafePickleError, match="more than 100 distinct objects"):
        safe_load(data, "batch")


# --- tar archives ------------------------------------------------------------------


def _tar_header(name: bytes, size: int, kind: bytes) -> bytes:
    """One 512-byte ustar header with a valid checksum."""
    header = bytearray(512)
    header[0 : len(name)] = name
    header[100:108] = b"0000644\0"
    header[124:136] = b"%011o\0" % size
    header[136:148] = b"00000000000\0"
    header[156:157] = kind
    header[257:263] = b"ustar\0"
    header[263:265] = b"00"
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    return bytes(header)


def _gzip_tar(path: Path, *blocks: bytes) -> Path:
    with gzip.open(path, "wb", compresslevel=1) as handle:
        for block in blocks:
            handle.write(block)
        handle.write(bytes(1024))
    return path


@pytest.mark.parametrize(("kind", "what"), [(b"x", "PAX header"), (b"L", "GNU long")])
def test_budget_tar_extended_header_is_bounded_before_it_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: bytes, what: str
) -> None:
    # An 8 MiB header body (8 KB compressed) against a 64 KiB bound: tarfile
    # alone reads the body whole (1.6 GB for the 1.5 GiB header).
    monkeypatch.setenv("KERASIMGCLS_MAX_ARCHIVE_HEADER_BYTES", str(64 << 10))
    body = b"0" * (8 * MiB)
    archive = _gzip_tar(
        tmp_path / "cifar-10-python.tar.gz",
        _tar_header(b"././@LongLink", len(body), kind),
        body,
    )
    seconds, peak, outcome = _peak(lambda: load_cifar10(data_dir=archive))
    assert isinstance(outcome, ValueError), outcome
    assert f"has a {what}" in str(outcome)
    assert "KERASIMGCLS_MAX_ARCHIVE_HEADER_BYTES" in str(outcome)
    assert seconds < 2 and peak < 4


def test_budget_tar_header_of_5_gib_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The header claims 5 GiB; the file holds none of it (tarfile: MemoryError).
    archive = _gzip_tar(
        tmp_path / "cifar-10-python.tar.gz",
        _tar_header(b"././@PaxHeader", 5 << 30, b"x"),
    )
    with pytest.raises(ValueError, match=r"PAX header of 5,368,709,120 bytes"):
        load_cifar10(data_dir=archive)
    code = main(["train", "--dataset", "cifar10", "--data-dir", str(archive)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err


def test_budget_tar_header_bodies_count_in_the_archive_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KERASIMGCLS_MAX_ARCHIVE_BYTES", str(1 << 20))
    records = b"".join(
        _tar_header(b"././@PaxHeader", 1000, b"x") + b"9 a=b\n".ljust(1024, b"\0")
        for _ in range(800)
    )
    archive = _gzip_tar(tmp_path / "cifar-10-python.tar.gz", records)
    with pytest.raises(ValueError, match="headers included"):
        load_cifar10(data_dir=archive)


def _named_member_archive(path: Path, name: str) -> Path:
    with tarfile.open(path, "w:gz", format=tarfile.PAX_FORMAT) as handle:
        info = tarfile.TarInfo(name)
        info.size = 1
        handle.addfile(info, io.BytesIO(b"x"))
    return path


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("cifar-10-batches-py/" + "d/" * 3000 + "f", "3,002 folders deep"),
        ("cifar-10-batches-py/" + "x" * 300, "name part of 300 bytes"),
    ],
)
def test_budget_tar_member_names_are_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, message: str
) -> None:
    archive = _named_member_archive(tmp_path / "cifar-10-python.tar.gz", name)
    with pytest.raises(ValueError, match=message):
        load_cifar10(data_dir=archive)
    code = main(["train", "--dataset", "cifar10", "--data-dir", str(archive)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err
    assert "recursion" not in err


def test_budget_zip_named_tar_gz_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    archive = tmp_path / "cifar-10-python.tar.gz"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("cifar-10-batches-py/data_batch_1", b"x")
    with pytest.raises(ValueError, match="is a zip archive, not a tar archive"):
        load_cifar10(data_dir=archive)
    code = main(["train", "--dataset", "cifar10", "--data-dir", str(archive)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1


# --- .keras files ---------------------------------------------------------------------


def test_budget_keras_config_that_inflates_is_refused_before_keras_reads_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 8 MiB of config.json in a few KB (the 1.5 GB loaded at 3.8 GB),
    # against a 1 MiB bound.
    monkeypatch.setenv("KERASIMGCLS_MAX_MODEL_CONFIG_BYTES", str(1 * MiB))
    path = tmp_path / "bomb.keras"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("metadata.json", json.dumps({"keras_version": "3.0.0"}))
        archive.writestr("config.json", b"{" + b" " * (8 * MiB) + b"}")
        archive.writestr("model.weights.h5", b"")
    assert path.stat().st_size < 64 << 10
    seconds, peak, outcome = _peak(lambda: kic.load_model(path))
    assert isinstance(outcome, ValueError), outcome
    assert "config.json unpacks to 8,388,610 bytes" in str(outcome)
    assert seconds < 2 and peak < 2


def test_budget_security_page_names_only_tests_that_exist() -> None:
    import re

    root = Path(__file__).parents[1]
    page = (root / "docs" / "guide" / "security.md").read_text()
    named = 0
    for row in page.splitlines():
        current = None
        for file, test in re.findall(r"`(tests/test_\w+\.py)?::(test_\w+)`", row):
            current = file or current
            assert current is not None, row
            assert f"def {test}(" in (root / current).read_text(), (current, test)
            named += 1
    assert named >= 40
