"""An allow-list unpickler for the CIFAR python-format batches.

A pickle can call any importable function while it loads, so loading an untrusted
one runs arbitrary code. A genuine CIFAR batch only needs NumPy's array
reconstruction and plain containers (dicts, lists, bytes, strings, numbers), so
that is all this unpickler accepts: any other global, including one hidden in an
object array's elements, is refused before it is called.
"""

from __future__ import annotations

import io
import pickle
from typing import Any

__all__ = ["UnsafePickleError", "safe_load"]

# (module, name) pairs a NumPy array pickle refers to, for NumPy 1.x and 2.x
# (``numpy._core`` in 2.x) and for pickle protocols 2-5, plus ``_codecs.encode``,
# which Python 3 uses to write ``bytes`` at protocol 2 (a pure text-to-bytes
# conversion).
_ALLOWED = frozenset(
    {
        ("_codecs", "encode"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
    }
)


class UnsafePickleError(pickle.UnpicklingError):
    """A CIFAR batch pickle asked for something other than NumPy arrays and containers.

    Raised by :func:`load_cifar10` and :func:`load_cifar100` before anything in the
    file is called: a crafted batch cannot run code. A subclass of
    :class:`pickle.UnpicklingError`.

    Example:
        >>> import pickle
        >>> from kerasimgcls import UnsafePickleError, load_cifar10
        >>> try:  # doctest: +SKIP
        ...     data = load_cifar10(data_dir="downloads/")
        ... except UnsafePickleError as err:
        ...     print(err)
        >>> issubclass(UnsafePickleError, pickle.UnpicklingError)
        True
    """


class _AllowListUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, source: str) -> None:
        super().__init__(io.BytesIO(data), encoding="bytes")
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED:
            return super().find_class(module, name)
        raise UnsafePickleError(
            f"refusing to load {self._source!r}: it asks for {module}.{name}, which a "
            "CIFAR batch never contains (only NumPy arrays and plain containers are "
            "allowed). The file may be corrupt or crafted to run code; nothing in "
            "it was executed. Download the dataset again from the official source."
        )

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError(
            f"refusing to load {self._source!r}: it uses persistent ids, which a "
            "CIFAR batch never contains"
        )


def safe_load(data: bytes, source: str) -> Any:
    """Unpickle ``data`` allowing only NumPy arrays and plain containers.

    Raises:
        UnsafePickleError: If the pickle refers to any other global.
        pickle.UnpicklingError: If ``data`` is not a valid pickle.
    """
    try:
        return _AllowListUnpickler(data, source).load()
    except UnsafePickleError:
        raise
    except (EOFError, ValueError, TypeError, IndexError, KeyError) as err:
        raise pickle.UnpicklingError(
            f"{source!r} is not a valid CIFAR batch pickle: {err}"
        ) from err
