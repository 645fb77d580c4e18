from __future__ import annotations

import ast
import importlib
import inspect
import warnings
from pathlib import Path

import pytest

import kerasimgcls

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGES = (
    "kerasimgcls",
    "kerasimgcls.analysis",
    "kerasimgcls.data",
    "kerasimgcls.inference",
    "kerasimgcls.models",
    "kerasimgcls.serving",
    "kerasimgcls.training",
)
DEPRECATED = (
    "patch_whitening_kernel",
    "plot_confusion_matrix",
    "plot_embeddings",
    "plot_grad_cam",
    "plot_learning_rate_finder",
    "plot_samples",
    "plot_similar_images",
    "plot_top_losses",
    "whitening_sample",
)


def _type_checking_imports(package: str) -> dict[str, str]:
    """``{name: module}`` of the ``if TYPE_CHECKING:`` block of ``package``."""
    path = SRC.joinpath(*package.split("."), "__init__.py")
    tree = ast.parse(path.read_text(encoding="utf-8"))
    guarded = next(node for node in tree.body if isinstance(node, ast.If))
    imported = {}
    for node in guarded.body:
        assert isinstance(node, ast.ImportFrom) and node.module, ast.dump(node)
        for alias in node.names:
            assert alias.asname == alias.name, f"{alias.name}: write `X as X`"
            submodule = f"{node.module}.{alias.name}"
            parts = submodule.split(".")
            is_module = SRC.joinpath(*parts).is_dir() or (
                SRC.joinpath(*parts[:-1], parts[-1] + ".py").is_file()
            )
            imported[alias.name] = submodule if is_module else node.module
    return imported


@pytest.mark.parametrize("package", PACKAGES)
def test_each_package_writes_each_name_in_one_table(package: str) -> None:
    """The ``TYPE_CHECKING`` block (for type checkers) is the ``_EXPORTS`` table,
    and ``__all__`` is made from it: a name is added in one place."""
    module = importlib.import_module(package)
    assert _type_checking_imports(package) == module._EXPORTS
    names = set(module._EXPORTS)
    if package == "kerasimgcls":
        names = (names - kerasimgcls._NAMESPACES) | {"__version__"}
    assert module.__all__ == sorted(names)
    for name in module._EXPORTS:
        assert getattr(module, name) is not None, f"{package}.{name}"


@pytest.mark.parametrize("name", DEPRECATED)
def test_moved_internals_still_import_with_a_deprecation_warning(name: str) -> None:
    with pytest.warns(DeprecationWarning, match=f"kerasimgcls.{name} is deprecated"):
        value = getattr(kerasimgcls, name)
    home = kerasimgcls.plots if name.startswith("plot_") else kerasimgcls.models
    assert value is getattr(home, name)
    assert name not in kerasimgcls.__all__


def test_the_namespaces_group_the_names_by_job() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert kerasimgcls.models.build_cifar_cnn is kerasimgcls.build_cifar_cnn
        assert kerasimgcls.training.Trainer is kerasimgcls.Trainer
        assert kerasimgcls.inference.load_model is kerasimgcls.load_model
        assert callable(kerasimgcls.plots.plot_samples)
        assert callable(kerasimgcls.models.whitening_sample)


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
