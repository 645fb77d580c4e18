"""The safe loaders proven by their negatives (issue 25).

Three generated families, each driven by the loaders' own tables so that a grown
allow-list, a new member type or a new bound is covered without editing this file:

- every global a pickle can name in ``numpy``, ``builtins``, ``copyreg``, ``os``,
  ``subprocess``, ``importlib`` (and a few more), by ``GLOBAL`` and by
  ``STACK_GLOBAL``, is refused unless it is on the unpickler's allow-list, and the
  allow-list's neighbours (the same name in another module, a longer or shorter
  module path) are refused too;
- every tar member type in a dataset archive: files and folders are extracted,
  nothing else ever is, and a name that leaves the folder is refused;
- every field of :class:`ResourceBudget`: an input exactly at the bound loads, the
  same input with the bound one lower is refused, naming the variable.

Every refusal is one line, without a traceback.
"""

from __future__ import annotations

import dataclasses
import gzip
import importlib
import io
import os
import pickle
import shutil
import stat
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import kerasimgcls as kic
from kerasimgcls import UnsafePickleError, load_cifar10
from kerasimgcls._validation import ResourceBudget
from kerasimgcls.data import _safe_pickle

# --- pickles: every module a pickle can name ---------------------------------------

#: Modules a crafted pickle reaches for, and the attributes that run code.
DANGEROUS = {
    "numpy": ("load", "fromfile", "frombuffer", "array", "ndarray", "dtype"),
    "numpy.testing._private.utils": ("runstring",),
    "numpy.core.multiarray": ("_reconstruct", "scalar", "fromstring"),
    "numpy._core.multiarray": ("_reconstruct", "scalar"),
    "numpy.core.numeric": ("_frombuffer", "array"),
    "builtins": ("eval", "exec", "getattr", "__import__", "open", "compile"),
    "copyreg": ("_reconstructor", "__newobj__", "_reduce_ex"),
    "os": ("system", "popen", "execv", "remove", "getenv"),
    "posix": ("system",),
    "subprocess": ("Popen", "run", "check_output", "getoutput"),
    "importlib": ("import_module", "reload"),
    "_codecs": ("encode", "decode", "escape_decode"),
    "codecs": ("encode",),
    "pickle": ("loads",),
    "functools": ("partial", "reduce"),
    "operator": ("attrgetter", "methodcaller"),
    "sys": ("exit",),
}
#: What the allow-list admits (the only pairs find_class does not refuse).
ALLOWED = {*_safe_pickle._STAND_INS, ("_codecs", "encode")}


def _sampled(module_name: str) -> list[str]:
    """The dangerous attributes of a module and about ten more of its globals."""
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return list(DANGEROUS[module_name])
    names = sorted(name for name in dir(module) if not name.startswith("__"))
    step = max(1, len(names) // 10)
    return sorted({*DANGEROUS[module_name], *names[::step]})


def _neighbours() -> set[tuple[str, str]]:
    """The allow-list's neighbours: each allowed name elsewhere, each module varied."""
    found = set()
    for module, name in ALLOWED:
        found |= {(other, name) for other in DANGEROUS}
        found |= {(f"{module}.x", name), (module.rsplit(".", 1)[0], name)}
        found |= {(module + "x", name), (module, name + "x"), (module, "x" + name)}
    return found - ALLOWED


CASES = sorted(
    {(module, name) for module in DANGEROUS for name in _sampled(module)} - ALLOWED
    | _neighbours()
)


def _global(module: str, name: str) -> bytes:
    """Protocol 0: ``GLOBAL module name``, called with no arguments."""
    return f"c{module}\n{name}\n".encode() + b")R."


def _stack_global(module: str, name: str) -> bytes:
    """Protocol 4: ``STACK_GLOBAL`` of two strings, called with one argument."""
    parts = b""
    for text in (module, name):
        data = text.encode()
        parts += b"\x8c" + bytes([len(data)]) + data
    return b"\x80\x04" + parts + b"\x93" + b"\x8c\x04true\x85R."


def _refusal(data: bytes) -> str:
    with pytest.raises(UnsafePickleError) as error:
        _safe_pickle.safe_load(data, "batch")
    message = str(error.value)
    assert "\n" not in message and "Traceback" not in message
    return message


def test_the_cases_cover_every_module_a_pickle_names() -> None:
    assert {module for module, _ in CASES} >= set(DANGEROUS)
    assert len(CASES) > 150
    for module in ("numpy", "builtins", "os", "subprocess", "importlib", "copyreg"):
        assert sum(case[0] == module for case in CASES) >= 5, module


@pytest.mark.parametrize(("module", "name"), CASES, ids=[".".join(c) for c in CASES])
def test_a_global_off_the_allow_list_is_refused(module: str, name: str) -> None:
    # A refused global is never looked up, so each of the two forms is refused
    # by find_class with the name in the message; a global that reached the
    # real unpickler would run (or fail to run) instead.
    for data in (_global(module, name), _stack_global(module, name)):
        message = _refusal(data)
        assert f"it asks for {module}.{name}," in message
        assert "nothing in it was executed" in message


def test_the_allow_list_is_exactly_numpys_array_names_and_latin1() -> None:
    expected = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("_codecs", "encode"),
    }
    assert expected == ALLOWED
    for protocol in range(2, pickle.HIGHEST_PROTOCOL + 1):
        array = np.arange(6, dtype=np.uint8).reshape(2, 3)
        loaded = _safe_pickle.safe_load(pickle.dumps({b"a": array}, protocol), "x")
        np.testing.assert_array_equal(loaded[b"a"], array)


def test_the_allowed_names_build_nothing_but_inert_stand_ins() -> None:
    # Each allowed name called the way a crafted pickle would (with one string):
    # a stand-in refuses it, where NumPy's own function would build something.
    for module, name in sorted(ALLOWED - {("_codecs", "encode")}):
        with pytest.raises(pickle.UnpicklingError) as error:
            _safe_pickle.safe_load(_stack_global(module, name), "batch")
        assert "\n" not in str(error.value), (module, name)
    assert "_codecs.encode with encoding" in _refusal(
        b"\x80\x04\x8c\x07_codecs\x8c\x06encode\x93\x8c\x01x\x8c\x04zlib\x86R."
    )


def test_a_memo_index_beyond_the_opcodes_is_refused() -> None:
    # LONG_BINPUT 1,000,000 in a pickle of five opcodes: CPython would grow the
    # memo to a million entries (8 MB; 2**27 would be a gigabyte) before loading.
    data = b"\x80\x02]r" + (10**6).to_bytes(4, "little") + b"."
    assert "a memo index 1,000,000 in a pickle of 4 opcodes" in _refusal(data)


def test_persistent_ids_are_refused() -> None:
    assert "persistent ids" in _refusal(b"\x80\x02K\x01Q.")


# --- tar archives: every member type -----------------------------------------------

FOLDER = "cifar-10-batches-py"


def _batches() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    files = {}
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        payload = {
            b"data": rng.integers(0, 256, (10, 3072), np.uint8),
            b"labels": list(range(10)),
        }
        files[name] = pickle.dumps(payload, protocol=2)
    names = [name.encode() for name in "abcdefghij"]
    files["batches.meta"] = pickle.dumps({b"label_names": names}, protocol=2)
    return files


def _member(name: str, kind: bytes, **fields: Any) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    for key, value in fields.items():
        setattr(info, key, value)
    return info


#: Every tar member type, and whether the dataset's extraction writes it.
MEMBER_TYPES: dict[str, tuple[bytes, dict[str, Any], bool]] = {
    "regular": (tarfile.REGTYPE, {}, True),
    "old regular": (tarfile.AREGTYPE, {}, True),
    "contiguous": (tarfile.CONTTYPE, {}, True),
    "directory": (tarfile.DIRTYPE, {}, True),
    "symlink": (tarfile.SYMTYPE, {"linkname": "data_batch_1"}, False),
    "symlink out": (tarfile.SYMTYPE, {"linkname": "/etc/passwd"}, False),
    "hardlink": (tarfile.LNKTYPE, {"linkname": f"{FOLDER}/data_batch_1"}, False),
    "char device": (tarfile.CHRTYPE, {"devmajor": 1, "devminor": 3}, False),
    "block device": (tarfile.BLKTYPE, {"devmajor": 7, "devminor": 0}, False),
    "fifo": (tarfile.FIFOTYPE, {}, False),
}


def _archive(path: Path, extra: list[tuple[tarfile.TarInfo, bytes]], **kw: Any) -> Path:
    with tarfile.open(path, "w:gz", **kw) as handle:
        handle.addfile(_member(FOLDER, tarfile.DIRTYPE, mode=0o755))
        for name, data in _batches().items():
            info = _member(f"{FOLDER}/{name}", tarfile.REGTYPE, size=len(data))
            handle.addfile(info, io.BytesIO(data))
        for info, data in extra:
            handle.addfile(info, io.BytesIO(data) if data else None)
    return path


def _extracted(root: Path) -> dict[str, int]:
    """Each path under ``root`` and its ``lstat`` mode."""
    return {
        str(p.relative_to(root)): os.lstat(p).st_mode
        for p in root.rglob("*")
        if p.name != ".kerasimgcls-extracted.json"
    }


def test_every_tar_member_type_is_named_here() -> None:
    named = {kind for kind, _, _ in MEMBER_TYPES.values()}
    # The rest of tarfile's types: GNU sparse, long names and PAX headers, which
    # are headers of a member rather than members (tested below).
    rest = {tarfile.GNUTYPE_SPARSE, tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK}
    rest |= {tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE}
    assert named | rest >= set(tarfile.SUPPORTED_TYPES)


@pytest.mark.parametrize("kind", sorted(MEMBER_TYPES))
def test_a_member_type_is_extracted_only_if_it_is_a_file_or_folder(
    tmp_path: Path, kind: str
) -> None:
    code, fields, written = MEMBER_TYPES[kind]
    data = b"extra" if code in tarfile.REGULAR_TYPES else b""
    fields = {"mode": 0o644, "size": len(data), **fields}
    name = f"{FOLDER}/extra" if code != tarfile.DIRTYPE else f"{FOLDER}/sub"
    archive = _archive(
        tmp_path / "cifar-10-python.tar.gz", [(_member(name, code, **fields), data)]
    )
    data_set = load_cifar10(data_dir=archive, validation_split=0.0)
    assert len(data_set.train) == 50
    paths = _extracted(tmp_path / "cifar-10-python_extracted")
    assert (name in paths) is written, paths
    for path, mode in paths.items():
        assert stat.S_ISREG(mode) or stat.S_ISDIR(mode), (path, oct(mode))


def test_members_outside_the_folder_are_not_extracted(tmp_path: Path) -> None:
    other = _member("other/readme", tarfile.REGTYPE, size=3)
    archive = _archive(tmp_path / "cifar-10-python.tar.gz", [(other, b"abc")])
    load_cifar10(data_dir=archive, validation_split=0.0)
    assert not any(
        p.startswith("other")
        for p in _extracted(tmp_path / "cifar-10-python_extracted")
    )


def test_extracted_files_lose_setuid_and_world_write(tmp_path: Path) -> None:
    info = _member(f"{FOLDER}/tool", tarfile.REGTYPE, size=2, mode=0o6777)
    archive = _archive(tmp_path / "cifar-10-python.tar.gz", [(info, b"#!")])
    load_cifar10(data_dir=archive, validation_split=0.0)
    mode = os.lstat(tmp_path / "cifar-10-python_extracted" / FOLDER / "tool").st_mode
    assert not mode & (stat.S_ISUID | stat.S_ISGID | stat.S_IWOTH), oct(mode)


@pytest.mark.parametrize(
    "name",
    [
        f"{FOLDER}/../../escaped",
        f"{FOLDER}/../escaped",
        "/tmp/escaped",
        f"/{FOLDER}/data_batch_9",
        "../escaped",
    ],
)
def test_a_member_leaving_the_folder_is_refused_in_one_line(
    tmp_path: Path, name: str
) -> None:
    info = _member(name, tarfile.REGTYPE, size=1)
    archive = _archive(tmp_path / "cifar-10-python.tar.gz", [(info, b"x")])
    with pytest.raises(ValueError) as error:
        load_cifar10(data_dir=archive)
    message = str(error.value)
    assert "would be written outside the extraction folder" in message
    assert "\n" not in message
    assert not (tmp_path / "escaped").exists() and not Path("/tmp/escaped").exists()


def test_a_name_part_longer_than_a_file_system_allows_is_refused(
    tmp_path: Path,
) -> None:
    for part in ("n" * 255, "n" * 256):
        root = tmp_path / str(len(part))
        root.mkdir()
        info = _member(f"{FOLDER}/{part}", tarfile.REGTYPE, size=1, mode=0o644)
        archive = _archive(root / "cifar-10-python.tar.gz", [(info, b"x")])
        if len(part) == 255:
            load_cifar10(data_dir=archive, validation_split=0.0)
            continue
        with pytest.raises(ValueError, match="has a name part of 256 bytes, more than"):
            load_cifar10(data_dir=archive)


def test_a_stale_extraction_that_is_a_symlink_is_not_replaced(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / FOLDER).mkdir(parents=True)
    link = tmp_path / "cifar-10-python_extracted"
    link.symlink_to(elsewhere, target_is_directory=True)
    archive = _archive(tmp_path / "cifar-10-python.tar.gz", [])
    with pytest.raises(ValueError, match="holds an outdated or incomplete extraction"):
        load_cifar10(data_dir=archive)
    assert link.is_symlink() and (elsewhere / FOLDER).is_dir()


def test_a_damaged_header_is_named_by_the_header_walk(tmp_path: Path) -> None:
    archive = _archive(tmp_path / "good.tar.gz", [])
    plain = bytearray(gzip.decompress(archive.read_bytes()))
    with tarfile.open(fileobj=io.BytesIO(bytes(plain))) as handle:
        second = handle.getmembers()[1].offset
    plain[second + 100] ^= 0x01  # a mode byte: the stored checksum no longer holds
    damaged = tmp_path / "cifar-10-python.tar.gz"
    damaged.write_bytes(gzip.compress(bytes(plain)))
    with pytest.raises(
        ValueError, match=f"has a damaged header \\(at byte {second:,}\\)"
    ):
        load_cifar10(data_dir=damaged)


def test_a_pax_size_record_counts_in_the_archive_bytes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A PAX header says the next member holds 1 GiB; its own header says 1 byte.
    # The walk counts the PAX size (what tarfile will believe), so the archive is
    # refused as too large before tarfile reads it.
    info = _member(f"{FOLDER}/big", tarfile.REGTYPE, size=1, mode=0o644)
    info.pax_headers = {"size": str(1 << 30)}
    archive = _archive(
        tmp_path / "cifar-10-python.tar.gz", [(info, b"x")], format=tarfile.PAX_FORMAT
    )
    monkeypatch.setenv("KERASIMGCLS_MAX_ARCHIVE_BYTES", str(1 << 29))
    with pytest.raises(ValueError, match="bytes, headers included"):
        load_cifar10(data_dir=archive)


def test_pax_and_gnu_long_names_extract_like_plain_ones(tmp_path: Path) -> None:
    long = f"{FOLDER}/" + "d" * 150 + "/file"
    for index, form in enumerate((tarfile.PAX_FORMAT, tarfile.GNU_FORMAT)):
        root = tmp_path / str(index)
        root.mkdir()
        info = _member(long, tarfile.REGTYPE, size=4, mode=0o644)
        archive = _archive(
            root / "cifar-10-python.tar.gz", [(info, b"long")], format=form
        )
        load_cifar10(data_dir=archive, validation_split=0.0)
        assert (root / "cifar-10-python_extracted" / long).read_bytes() == b"long"


# --- the resource budget: every bound, at it and one past it -----------------------

MiB = 1 << 20


def _cifar_archive(root: Path, extra: list[tuple[tarfile.TarInfo, bytes]] = ()) -> Path:  # type: ignore[assignment]
    return _archive(root / "cifar-10-python.tar.gz", list(extra))


def _cifar_folder(root: Path) -> Path:
    folder = root / FOLDER
    folder.mkdir(parents=True)
    for name, data in _batches().items():
        (folder / name).write_bytes(data)
    return root


def _image_folder(root: Path, size: tuple[int, int]) -> Path:
    from PIL import Image

    for label in ("a", "b"):
        (root / label).mkdir(parents=True)
        for index in range(2):
            Image.new("RGB", (size[1], size[0]), (index * 90, 0, 0)).save(
                root / label / f"{index}.png"
            )
    return root


def _tar_total(archive: Path) -> int:
    """Bytes of the archive's headers and padded bodies, as the header walk counts."""
    with tarfile.open(archive) as handle:
        members = handle.getmembers()
    return max(m.offset_data + -(-m.size // 512) * 512 for m in members)


def _keras_file(root: Path) -> Path:
    import keras

    inputs = keras.Input((4, 4, 1))
    model = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs)))
    path = root / "model.keras"
    model.save(path)
    return path


def _bound_image_side(root: Path) -> tuple[int, Callable[[], object]]:
    folder = _image_folder(root / "images", (6, 6))
    return 12, lambda: kic.load_image_folder(folder, image_size=(12, 12))


def _bound_image_pixels(root: Path) -> tuple[int, Callable[[], object]]:
    folder = _image_folder(root / "images", (3, 5))
    return 15, lambda: kic.load_image_folder(folder)


def _bound_image_file_bytes(root: Path) -> tuple[int, Callable[[], object]]:
    folder = _image_folder(root / "images", (3, 3))
    largest = max(p.stat().st_size for p in folder.rglob("*.png"))
    return largest, lambda: kic.load_image_folder(folder)


def _bound_classes(root: Path) -> tuple[int, Callable[[], object]]:
    images = np.zeros((6, 4, 4, 1), np.uint8)
    labels = np.arange(6) % 3
    return 3, lambda: kic.from_arrays(images, labels, validation_split=0.0)


def _bound_archive_members(root: Path) -> tuple[int, Callable[[], object]]:
    archive = _cifar_archive(root)
    return 8, lambda: load_cifar10(data_dir=archive, validation_split=0.0)


def _bound_archive_bytes(root: Path) -> tuple[int, Callable[[], object]]:
    archive = _cifar_archive(root)
    with gzip.open(archive) as raw:
        plain = root / "plain.tar"
        plain.write_bytes(raw.read())
    return _tar_total(plain), lambda: load_cifar10(
        data_dir=archive, validation_split=0.0
    )


def _bound_archive_member_bytes(root: Path) -> tuple[int, Callable[[], object]]:
    archive = _cifar_archive(root)
    largest = max(len(data) for data in _batches().values())
    return largest, lambda: load_cifar10(data_dir=archive, validation_split=0.0)


def _bound_archive_header_bytes(root: Path) -> tuple[int, Callable[[], object]]:
    name = f"{FOLDER}/" + "n" * 150 + "/" + "m" * 150
    info = _member(name, tarfile.REGTYPE, size=1, mode=0o644)
    archive = root / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz", format=tarfile.GNU_FORMAT) as handle:
        handle.addfile(_member(FOLDER, tarfile.DIRTYPE, mode=0o755))
        for batch, data in _batches().items():
            member = _member(f"{FOLDER}/{batch}", tarfile.REGTYPE, size=len(data))
            handle.addfile(member, io.BytesIO(data))
        handle.addfile(info, io.BytesIO(b"x"))
    # A GNU long name's body is the name and its terminating NUL.
    return len(name) + 1, lambda: load_cifar10(data_dir=archive, validation_split=0.0)


def _bound_archive_path_depth(root: Path) -> tuple[int, Callable[[], object]]:
    info = _member(f"{FOLDER}/a/b/c/d", tarfile.REGTYPE, size=1, mode=0o644)
    archive = _cifar_archive(root, [(info, b"x")])
    return 5, lambda: load_cifar10(data_dir=archive, validation_split=0.0)


def _bound_data_file_bytes(root: Path) -> tuple[int, Callable[[], object]]:
    folder = _cifar_folder(root / "cifar")
    largest = max(p.stat().st_size for p in (folder / FOLDER).iterdir())
    return largest, lambda: load_cifar10(data_dir=folder, validation_split=0.0)


def _batch_pickle() -> bytes:
    return _batches()["data_batch_1"]


def _bound_pickle_opcodes(root: Path) -> tuple[int, Callable[[], object]]:
    import pickletools

    data = _batch_pickle()
    count = sum(1 for _ in pickletools.genops(data))
    return count, lambda: _safe_pickle.safe_load(data, "batch")


def _bound_pickle_objects(root: Path) -> tuple[int, Callable[[], object]]:
    # The dict, the labels list and the array: three distinct objects.
    data = _batch_pickle()
    return 3, lambda: _safe_pickle.safe_load(data, "batch")


def _bound_model_config_bytes(root: Path) -> tuple[int, Callable[[], object]]:
    path = _keras_file(root)
    with zipfile.ZipFile(path) as archive:
        size = max(
            archive.getinfo(name).file_size for name in ("config.json", "metadata.json")
        )
    return size, lambda: kic.load_model(path)


def _bound_model_bytes(root: Path) -> tuple[int, Callable[[], object]]:
    path = _keras_file(root)
    with zipfile.ZipFile(path) as archive:
        total = sum(member.file_size for member in archive.infolist())
    return total, lambda: kic.load_model(path)


BOUNDS: dict[str, Callable[[Path], tuple[int, Callable[[], object]]]] = {
    field.name: globals()[f"_bound_{field.name.removeprefix('max_')}"]
    for field in dataclasses.fields(ResourceBudget)
    if f"_bound_{field.name.removeprefix('max_')}" in globals()
}


def test_every_budget_field_has_a_bound_case() -> None:
    # A new field of ResourceBudget fails here until it gets a _bound_<name> case.
    assert set(BOUNDS) == {field.name for field in dataclasses.fields(ResourceBudget)}


@pytest.mark.parametrize("field", sorted(BOUNDS))
def test_a_bound_admits_its_value_and_refuses_one_more(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, field: str
) -> None:
    value, load = BOUNDS[field](tmp_path)
    variable = f"KERASIMGCLS_{field.upper()}"
    monkeypatch.setenv(variable, str(value))
    # A cache of its own: the second load decodes and extracts again.
    monkeypatch.setenv("KERASIMGCLS_CACHE_DIR", str(tmp_path / "cache"))
    load()  # exactly at the bound: accepted
    for extracted in (*tmp_path.glob("*_extracted"), tmp_path / "cache"):
        shutil.rmtree(extracted, ignore_errors=True)
    monkeypatch.setenv(variable, str(value - 1))
    with pytest.raises((ValueError, UnsafePickleError)) as error:
        load()
    message = str(error.value)
    assert "\n" not in message and "Traceback" not in message
    assert variable in message or f"{value - 1:,}" in message, message


@pytest.mark.parametrize("text", ["0", "-1", "many", "1.5"])
def test_a_bound_from_the_environment_must_be_a_positive_integer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    for field in dataclasses.fields(ResourceBudget):
        monkeypatch.setenv(f"KERASIMGCLS_{field.name.upper()}", text)
    _, load = _bound_pickle_opcodes(tmp_path)
    with pytest.raises(ValueError, match="must be a positive integer") as error:
        load()
    assert "\n" not in str(error.value)
