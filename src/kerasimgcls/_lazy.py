"""Lazy package attributes (PEP 562): a name's module is imported on first use."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def lazy_exports(
    package: str,
    namespace: dict[str, Any],
    exports: Mapping[str, str],
    listed: Iterable[str],
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """Return a package's module-level ``__getattr__`` and ``__dir__``.

    Args:
        package: The package's ``__name__``, for the error message.
        namespace: The package's ``globals()``; a name looked up once is stored
            there, so later look-ups skip ``__getattr__``.
        exports: Each lazy name and the module that defines it.
        listed: The names ``dir()`` lists besides those already loaded.

    Returns:
        ``(__getattr__, __dir__)``.
    """
    names = frozenset(listed)

    def __getattr__(name: str) -> Any:  # noqa: N807 (the module hook)
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value  # later look-ups skip this function
        return value

    def __dir__() -> list[str]:  # noqa: N807
        return sorted(set(namespace) | names)

    return __getattr__, __dir__
