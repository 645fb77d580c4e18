"""check_scalar: the one check of numeric arguments."""

from __future__ import annotations

import math

import pytest

from kerasimgcls._validation import check_scalar


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
