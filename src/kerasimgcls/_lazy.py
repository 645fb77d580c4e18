"""Lazy package attributes (PEP 562): a name's module is imported on first use.

Every package of the library exports the same way: one table ``_EXPORTS`` (each
public name and the module that defines it) beside a ``TYPE_CHECKING`` block of the
same imports for type checkers (``tests/test_api.py`` checks the two are equal);
``__all__`` is made from the table.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str,
    namespace: dict[str, Any],
    exports: Mapping[str, str],
    *,
    deprecated: Mapping[str, str] | None = None,
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return a package's module-level ``__getattr__`` and ``__dir__``.

    Args:
        package: The package's ``__name__``, for the error message.
        namespace: The package's ``globals()``; a name looked up once is stored
            there, so later look-ups skip ``__getattr__``.
        exports: Each lazy name and the module that defines it (a name equal to
            the module's last part, ``"plots": "kerasimgcls.analysis.plots"``, is
            the module itself).
        deprecated: Old names still served, each with the module it now lives in;
            every look-up warns with a :class:`DeprecationWarning` naming it.

    Returns:
        ``(__getattr__, __dir__)``.
    """
    moved = dict(deprecated or {})

    def __getattr__(name: str) -> Any:  # noqa: N807 (the module hook)
        module = exports.get(name)
        if module is None and name in moved:
            warnings.warn(
                f"{package}.{name} is deprecated; use {moved[name]}.{name}",
                DeprecationWarning,
                stacklevel=2,
            )
            return getattr(importlib.import_module(moved[name]), name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        imported = importlib.import_module(module)
        value = (
            imported if module.rpartition(".")[2] == name else getattr(imported, name)
        )
        namespace[name] = value  # later look-ups skip this function
        return value

    def __dir__() -> list[str]:  # noqa: N807
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
