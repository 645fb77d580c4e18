"""check_scalar: the one check of numeric arguments."""

from __future__ import annotations

import math
import os
import re
from pathlib import Path

import numpy as np
import pytest

from kerasimgcls._validation import (
    DEFAULT_LIMITS,
    PRECISIONS,
    check_activation,
    check_choice,
    check_class_names,
    check_image_size,
    check_int_pair,
    check_label_values,
    check_labels,
    check_memory_for,
    check_num_classes,
    check_optional_rate,
    check_path_exists,
    check_positive_int,
    check_precision,
    check_rate,
    check_scalar,
    check_seed,
    check_within_limit,
    limit,
    resolve_class_names,
)


def test_check_scalar_returns_the_number_in_its_kind() -> None:
    assert check_scalar(3, "epochs", kind=int, min_val=1) == 3
    assert isinstance(check_scalar(3, "epochs", kind=int), int)
    value = check_scalar(1, "learning_rate", min_val=0, include_min=False)
    assert value == 1.0 and isinstance(value, float)
    assert check_scalar(None, "label_smoothing", allow_none=True) is None


@pytest.mark.parametrize(
    ("value", "kwargs", "error", "match"),
    [
        (
            True,
            {"kind": int},
            TypeError,
            r"epochs must be an integer; received epochs=True",
        ),
        (2.5, {"kind": int}, TypeError, r"epochs must be an integer"),
        ("3", {}, TypeError, r"epochs must be a number; received epochs='3'"),
        (None, {}, TypeError, r"epochs must be a number; received epochs=None"),
        (math.nan, {}, ValueError, r"epochs must be finite"),
        (math.inf, {"max_val": 10}, ValueError, r"epochs must be finite"),
        (0, {"min_val": 1}, ValueError, r"epochs must be >= 1; received epochs=0"),
        (0, {"min_val": 0, "include_min": False}, ValueError, r"epochs must be > 0"),
        (1, {"max_val": 1, "include_max": False}, ValueError, r"epochs must be < 1"),
        (2, {"max_val": 1}, ValueError, r"epochs must be <= 1; received epochs=2"),
    ],
)
def test_check_scalar_names_the_argument(
    value: object, kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        check_scalar(value, "epochs", **kwargs)  # type: ignore[arg-type]


def test_check_scalar_keeps_the_bounds_themselves_when_included() -> None:
    assert check_scalar(0, "rate", min_val=0, max_val=1) == 0
    assert check_scalar(1, "rate", min_val=0, max_val=1) == 1


def test_registry_accessors() -> None:
    from kerasimgcls import get_model_factory, is_model, list_models

    assert all(is_model(name) for name in list_models())
    assert not is_model("resnet") and not is_model(3)  # type: ignore[arg-type]
    assert get_model_factory("cifar_cnn").__name__ == "build_cifar_cnn"
    with pytest.raises(ValueError, match=r"Unknown model 'resnet'\. Available: \["):
        get_model_factory("resnet")


# --- the other check_* helpers, each message whole (the mutation score of
# _validation.py depends on these) -------------------------------------------------


def _exactly(message: str) -> str:
    return f"^{re.escape(message)}$"


@pytest.mark.parametrize(
    ("value", "kwargs", "error", "message"),
    [
        (
            "3",
            {"kind": int, "allow_none": True},
            TypeError,
            "epochs must be an integer or None; received epochs='3' of type str",
        ),
        (
            True,
            {},
            TypeError,
            "epochs must be a number; received epochs=True of type bool",
        ),
        (math.nan, {}, ValueError, "epochs must be finite; received epochs=nan"),
        (
            0.5,
            {"min_val": 0.5, "include_min": False},
            ValueError,
            "epochs must be > 0.5; received epochs=0.5",
        ),
        (
            0.25,
            {"min_val": 0.5},
            ValueError,
            "epochs must be >= 0.5; received epochs=0.25",
        ),
        (
            2.0,
            {"max_val": 2, "include_max": False},
            ValueError,
            "epochs must be < 2; received epochs=2.0",
        ),
        (3, {"max_val": 2}, ValueError, "epochs must be <= 2; received epochs=3"),
    ],
)
def test_check_scalar_messages_whole(
    value: object, kwargs: dict[str, object], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=_exactly(message)):
        check_scalar(value, "epochs", **kwargs)  # type: ignore[arg-type]


def test_check_scalar_values_of_every_kind() -> None:
    assert check_scalar(0.5, "rate", min_val=0.25, include_min=False) == 0.5
    assert check_scalar(1.5, "rate", max_val=2, include_max=False) == 1.5
    assert check_scalar(np.int64(4), "epochs", kind=int) == 4
    assert type(check_scalar(np.int64(4), "epochs", kind=int)) is int
    assert type(check_scalar(np.float32(0.5), "rate")) is float
    assert check_scalar(-3, "shift", kind=int) == -3  # no bounds: any integer
    with pytest.raises(TypeError):
        check_scalar(None, "epochs", kind=int)


def test_check_positive_int() -> None:
    assert check_positive_int(np.int32(3), "epochs") == 3
    assert type(check_positive_int(np.int32(3), "epochs")) is int
    assert check_positive_int(1, "epochs") == 1
    assert check_positive_int(0, "workers", allow_zero=True) == 0
    with pytest.raises(
        TypeError,
        match=_exactly("epochs must be an integer; received epochs=True of type bool"),
    ):
        check_positive_int(True, "epochs")
    with pytest.raises(
        TypeError,
        match=_exactly("epochs must be an integer; received epochs=2.0 of type float"),
    ):
        check_positive_int(2.0, "epochs")
    with pytest.raises(
        ValueError,
        match=_exactly("epochs must be a positive integer; received epochs=0"),
    ):
        check_positive_int(0, "epochs")
    with pytest.raises(
        ValueError,
        match=_exactly("workers must be a non-negative integer; received workers=-1"),
    ):
        check_positive_int(-1, "workers", allow_zero=True)


def test_check_int_pair() -> None:
    assert check_int_pair(3, "pool_size") == (3, 3)
    assert check_int_pair((2, 5), "pool_size") == (2, 5)
    assert check_int_pair([1, 4], "pool_size") == (1, 4)
    for bad in ("ab", (1, 2, 3), (1,), 2.0, True, None):
        with pytest.raises(
            TypeError,
            match=_exactly(
                "pool_size must be a positive integer or a pair of positive integers; "
                f"received pool_size={bad!r}"
            ),
        ):
            check_int_pair(bad, "pool_size")
    with pytest.raises(ValueError, match=r"^pool_size must be a positive integer"):
        check_int_pair((2, 0), "pool_size")
    with pytest.raises(ValueError, match=r"^pool_size must be a positive integer"):
        check_int_pair((0, 2), "pool_size")
    with pytest.raises(TypeError, match=r"^pool_size must be an integer"):
        check_int_pair((2, True), "pool_size")


def test_check_rate_and_optional_rate() -> None:
    assert check_rate(0, "dropout") == 0.0 and type(check_rate(0, "dropout")) is float
    assert check_rate(0.999, "dropout") == 0.999
    for bad in (1.0, -0.001, math.nan):
        with pytest.raises(
            ValueError,
            match=_exactly(f"dropout must be in [0, 1); received dropout={bad!r}"),
        ):
            check_rate(bad, "dropout")
    for bad in (True, "0.1", None):
        with pytest.raises(
            TypeError,
            match=_exactly(
                f"dropout must be a float in [0, 1); received dropout={bad!r} "
                f"of type {type(bad).__name__}"
            ),
        ):
            check_rate(bad, "dropout")
    assert check_optional_rate(None, "dropout") is None
    assert check_optional_rate(0, "dropout") is None
    assert check_optional_rate(0.25, "dropout") == 0.25
    with pytest.raises(ValueError, match=r"^dropout must be in \[0, 1\)"):
        check_optional_rate(1, "dropout")


def test_check_choice_lists_the_choices_sorted() -> None:
    assert check_choice("max", "pooling", ("max", "avg")) == "max"
    for bad in ("sum", 3, None):
        with pytest.raises(
            ValueError,
            match=_exactly(
                f"pooling must be one of ['avg', 'max']; received pooling={bad!r}"
            ),
        ):
            check_choice(bad, "pooling", ("max", "avg"))


def test_check_activation() -> None:
    assert check_activation("gelu") == "gelu"
    with pytest.raises(
        ValueError,
        match=_exactly(
            "head_activation must be the name of a Keras activation such as 'relu', "
            "'gelu' or 'softmax'; received head_activation='relux'"
        ),
    ):
        check_activation("relux", "head_activation")
    with pytest.raises(
        TypeError,
        match=_exactly(
            "activation must be the name of a Keras activation such as 'relu'; "
            "received activation=3"
        ),
    ):
        check_activation(3)


def test_check_labels() -> None:
    labels = check_labels([[2], [0], [1]], 3)
    assert labels.tolist() == [2, 0, 1] and labels.dtype == np.int64
    assert check_labels(np.array([1.0, 0.0]), 2).dtype == np.int64
    assert check_labels([], 2).tolist() == []
    assert check_labels([0, 2], 3, "y").tolist() == [0, 2]
    with pytest.raises(
        ValueError,
        match=_exactly(
            "y must be a 1-D array of integer class indices; received an array of "
            "shape (2, 2)"
        ),
    ):
        check_labels([[0, 1], [1, 0]], 2, "y")
    with pytest.raises(
        ValueError,
        match=_exactly(
            "labels must hold integer class indices; received dtype float64"
        ),
    ):
        check_labels([0.5, 1.0], 2)
    with pytest.raises(ValueError, match=r"^labels must hold integer class indices"):
        check_labels([np.inf, 1.0], 2)
    with pytest.raises(
        ValueError,
        match=_exactly(
            "y must be in [0, num_classes) = [0, 3); received y[1]=3 "
            "(2 value(s) out of range)"
        ),
    ):
        check_labels([0, 3, -1, 2], 3, "y")
    with pytest.raises(ValueError, match=r"received labels\[0\]=-1 \(1 value"):
        check_labels([-1, 0], 3)


def test_check_path_exists(tmp_path: Path) -> None:
    file = tmp_path / "f.txt"
    file.write_text("x")
    assert check_path_exists(str(file), "path") == file
    assert check_path_exists(tmp_path, "data_dir", kind="dir") == tmp_path
    assert check_path_exists(file, "model", kind="file") == file
    assert check_path_exists(tmp_path, "anything") == tmp_path
    with pytest.raises(
        FileNotFoundError,
        match=_exactly(f"data_dir does not exist: {str(tmp_path / 'no')!r}"),
    ):
        check_path_exists(tmp_path / "no", "data_dir")
    with pytest.raises(
        NotADirectoryError,
        match=_exactly(f"data_dir must be a directory: {str(file)!r}"),
    ):
        check_path_exists(file, "data_dir", kind="dir")
    with pytest.raises(
        IsADirectoryError, match=_exactly(f"model must be a file: {str(tmp_path)!r}")
    ):
        check_path_exists(tmp_path, "model", kind="file")


def test_limit_reads_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KERASIMGCLS_MAX_CLASSES", raising=False)
    assert limit("max_classes") == DEFAULT_LIMITS["max_classes"] == 100_000
    for text, value in (("12", 12), (" 1_000 ", 1000), ("1", 1)):
        monkeypatch.setenv("KERASIMGCLS_MAX_CLASSES", text)
        assert limit("max_classes") == value
    monkeypatch.setenv("KERASIMGCLS_MAX_CLASSES", "  ")
    assert limit("max_classes") == 100_000
    for text in ("0", "-4", "lots", "1.5"):
        monkeypatch.setenv("KERASIMGCLS_MAX_CLASSES", text)
        with pytest.raises(
            ValueError,
            match=_exactly(
                "the environment variable KERASIMGCLS_MAX_CLASSES must be a positive "
                f"integer; received KERASIMGCLS_MAX_CLASSES={text!r}"
            ),
        ):
            limit("max_classes")
    with pytest.raises(KeyError):
        limit("max_everything")


def test_default_limits_are_the_documented_ones() -> None:
    assert DEFAULT_LIMITS == {
        "max_image_side": 8192,
        "max_image_pixels": 8192 * 8192,
        "max_image_file_bytes": 256 * 2**20,
        "max_classes": 100_000,
        "max_archive_members": 10_000,
        "max_archive_bytes": 2 * 2**30,
        "max_archive_member_bytes": 2**30,
        "max_archive_header_bytes": 2**20,
        "max_archive_path_depth": 64,
        "max_data_file_bytes": 2**30,
        "max_pickle_opcodes": 2_000_000,
        "max_pickle_objects": 1_000_000,
        "max_model_config_bytes": 16 * 2**20,
        "max_model_bytes": 8 * 2**30,
    }


def test_check_within_limit_and_image_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERASIMGCLS_MAX_IMAGE_SIDE", "64")
    assert check_within_limit(64, "side", "max_image_side") == 64
    with pytest.raises(
        ValueError,
        match=_exactly(
            "side must be at most 64; received side=65. If this is intended, raise "
            "the bound with KERASIMGCLS_MAX_IMAGE_SIDE"
        ),
    ):
        check_within_limit(65, "side", "max_image_side")
    assert check_image_size(64) == (64, 64)
    assert check_image_size((32, 64)) == (32, 64)
    with pytest.raises(
        ValueError,
        match=_exactly(
            "each side of image_size must be at most 64; received each side of "
            "image_size=65. If this is intended, raise the bound with "
            "KERASIMGCLS_MAX_IMAGE_SIDE"
        ),
    ):
        check_image_size((65, 2))
    with pytest.raises(ValueError, match=r"^each side of size must be at most 64"):
        check_image_size((2, 65), "size")
    with pytest.raises(TypeError, match=r"^image_size must be a positive integer or"):
        check_image_size("32")
    monkeypatch.setenv("KERASIMGCLS_MAX_CLASSES", "3")
    assert check_num_classes(3) == 3
    with pytest.raises(
        ValueError,
        match=_exactly(
            "the number of classes (class_names) must be at most 3; received the "
            "number of classes (class_names)=4. If this is intended, raise the bound "
            "with KERASIMGCLS_MAX_CLASSES"
        ),
    ):
        check_num_classes(4)
    with pytest.raises(ValueError, match=r"^the number of classes \(names\) must"):
        check_num_classes(4, "names")


def test_check_seed() -> None:
    assert check_seed(0) == 0 and check_seed(2**32 - 1) == 2**32 - 1
    with pytest.raises(
        ValueError, match=_exactly("seed must be below 2**32; received seed=4294967296")
    ):
        check_seed(2**32)
    with pytest.raises(
        ValueError,
        match=_exactly(
            "split_seed must be a non-negative integer; received split_seed=-1"
        ),
    ):
        check_seed(-1, "split_seed")
    with pytest.raises(TypeError, match=r"^seed must be an integer"):
        check_seed(1.0)


def test_check_memory_for(monkeypatch: pytest.MonkeyPatch) -> None:
    physical = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    check_memory_for((physical,), "the images")  # exactly all of it: allowed
    check_memory_for((2, 3), "the images")
    side = math.isqrt(physical) + 2
    with pytest.raises(ValueError) as info:
        check_memory_for((side, side, 1), "the cache")
    assert str(info.value) == (
        f"the cache of shape ({side}, {side}, 1) would need "
        f"{side * side / 2**30:.1f} GiB, more than this machine's "
        f"{physical / 2**30:.1f} GiB of memory; use a smaller image_size or "
        "fewer images"
    )
    monkeypatch.setattr(os, "sysconf", lambda name: 0)
    check_memory_for((side, side), "the cache")  # memory unknown: no check


def test_check_class_names() -> None:
    assert check_class_names(["cat", "dog"]) == ("cat", "dog")
    assert check_class_names(("\u00e9t\u00e9", "a b")) == ("\u00e9t\u00e9", "a b")
    with pytest.raises(
        TypeError,
        match=_exactly(
            "class_names must be a sequence of strings, not one string; received "
            "class_names='cat'"
        ),
    ):
        check_class_names("cat")
    with pytest.raises(TypeError, match=r"^names must be a sequence of strings, not"):
        check_class_names(b"cat", "names")
    with pytest.raises(
        TypeError,
        match=_exactly(
            "class_names must be a sequence of strings; received class_names={'a'}"
        ),
    ):
        check_class_names({"a"})
    with pytest.raises(
        TypeError,
        match=_exactly(
            "class_names must hold strings; received class_names[1]=3 of type int"
        ),
    ):
        check_class_names(["a", 3])
    with pytest.raises(ValueError, match=_exactly("class_names[0] is an empty string")):
        check_class_names(["", "b"])
    long = "x" * 200
    with pytest.raises(TypeError, match=r"received class_names='x{79}$"):
        check_class_names(long)


@pytest.mark.parametrize(
    "char", ["\x00", "\x1b", "\x1f", "\x7f", "\x85", "\x9f", "\udcff", "\ud800"]
)
def test_control_characters_are_refused(char: str) -> None:
    with pytest.raises(
        ValueError,
        match=_exactly(
            f"class_names[1]={'a' + char!r} holds control characters or bytes that "
            "are not valid UTF-8; rename it"
        ),
    ):
        check_class_names(["ok", "a" + char])


@pytest.mark.parametrize(
    "char", [" ", "~", "\xa0", "\xff", "\ud7ff", "\ue000", "\u4e2d"]
)
def test_printable_characters_are_kept(char: str) -> None:
    assert check_class_names([char]) == (char,)


def test_check_label_values() -> None:
    labels = [0, 1.0, np.int64(2)]
    assert check_label_values(labels) is labels
    array = np.array([0.0, 3.0])
    assert check_label_values(array) is array
    assert check_label_values([[0, 1], [1, 0]]) == [[0, 1], [1, 0]]
    with pytest.raises(
        TypeError,
        match=_exactly(
            "y must be integer class indices, not booleans; received dtype bool"
        ),
    ):
        check_label_values(np.array([True, False]), "y")
    with pytest.raises(
        TypeError,
        match=_exactly(
            "labels must be integer class indices, not booleans; received labels[1]=True"
        ),
    ):
        check_label_values([0, True, 1])
    with pytest.raises(TypeError, match=r"received labels\[0\]=np\.True_"):
        check_label_values(np.array([np.True_, 1], dtype=object))
    with pytest.raises(
        TypeError,
        match=_exactly(
            "labels must hold integer class indices; received labels[1]='b' of type str"
        ),
    ):
        check_label_values(np.array([1, "b"], dtype=object))
    with pytest.raises(TypeError, match=r"received labels\[0\]=None of type NoneType"):
        check_label_values((None, 1))
    with pytest.raises(
        ValueError,
        match=_exactly("labels must hold whole class indices; received labels[2]=0.5"),
    ):
        check_label_values([0, 1, 0.5, 2.5])
    with pytest.raises(ValueError, match=r"received labels\[1\]=nan"):
        check_label_values(np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match=r"received labels\[3\]=inf"):
        check_label_values(np.array([[1.0, 0.0], [1.0, np.inf]]))


def test_check_precision() -> None:
    assert PRECISIONS == ("float32", "mixed_bfloat16")
    assert check_precision("mixed_bfloat16") == "mixed_bfloat16"
    with pytest.raises(
        ValueError,
        match=_exactly(
            "precision must be one of ['float32', 'mixed_bfloat16']; received "
            "precision='float16'"
        ),
    ):
        check_precision("float16")


def test_check_scalar_says_what_is_expected_in_the_arguments_words() -> None:
    kwargs = {"min_val": 0, "include_min": False, "expected": "a positive float"}
    assert check_scalar(0.5, "min_lr", **kwargs) == 0.5  # type: ignore[arg-type]
    for value in (0, -1.0, math.inf, math.nan):
        with pytest.raises(ValueError) as info:
            check_scalar(value, "min_lr", **kwargs)  # type: ignore[arg-type]
        assert (
            str(info.value)
            == f"min_lr must be a positive float; received min_lr={value!r}"
        )
    with pytest.raises(TypeError) as info:
        check_scalar("big", "max_lr", **kwargs)  # type: ignore[arg-type]
    assert str(info.value) == (
        "max_lr must be a positive float; received max_lr='big' of type str"
    )
    with pytest.raises(TypeError) as info:
        check_scalar("x", "stop_factor", allow_none=True, expected="above 1 or None")
    assert str(info.value).startswith("stop_factor must be above 1 or None; received")
    assert check_scalar(None, "stop_factor", allow_none=True, expected="x") is None


def test_resolve_class_names() -> None:
    assert resolve_class_names(None, 3) == ("0", "1", "2")
    assert resolve_class_names(None, 0) == ()
    assert resolve_class_names(["cat", 7], 2) == ("cat", "7")
    with pytest.raises(
        TypeError,
        match=_exactly(
            "class_names must be a sequence of names, not a string; "
            "received class_names='ab'"
        ),
    ):
        resolve_class_names("ab", 2)
    with pytest.raises(
        ValueError,
        match=_exactly(
            "class_names must have one name per class (3); received 2 names"
        ),
    ):
        resolve_class_names(["a", "b"], 3)
