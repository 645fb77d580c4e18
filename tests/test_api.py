from __future__ import annotations

import inspect

import kerasimgcls


def test_all_is_sorted_and_importable() -> None:
    assert list(kerasimgcls.__all__) == sorted(kerasimgcls.__all__)
    for name in kerasimgcls.__all__:
        assert hasattr(kerasimgcls, name), name


def test_version_is_a_string() -> None:
    import importlib.metadata
    import re

    version = kerasimgcls.__version__
    assert version == importlib.metadata.version("kerasimgcls")
    assert re.fullmatch(r"\d+\.\d+\.\d+((a|b|rc)\d+)?(\.dev\d+)?", version), version


def test_every_public_name_is_documented_with_an_example() -> None:
    for name in kerasimgcls.__all__:
        if name.startswith("__"):
            continue
        obj = getattr(kerasimgcls, name)
        doc = inspect.getdoc(obj) or ""
        assert doc, f"{name} has no docstring"
        assert "Example" in doc, f"{name}'s docstring has no example"
        if inspect.isclass(obj):
            for member_name, member in vars(obj).items():
                if member_name.startswith("_") or not callable(member):
                    continue
                assert inspect.getdoc(member), f"{name}.{member_name} has no docstring"
