"""An allow-list unpickler for the CIFAR python-format batches.

A pickle can call any importable function while it loads, so loading an untrusted
one runs arbitrary code. A genuine CIFAR batch only needs NumPy arrays of plain
numbers and plain containers (dicts, lists, bytes, strings, numbers), so that is
all this unpickler builds.

Allow-listing NumPy's own reconstruction functions is not enough: a ``numpy.dtype``
can be given a forged state (an object field, flags that deny it) and filled from
raw bytes, which makes NumPy read those bytes as object pointers and crash the
process. So no NumPy function is ever called by the pickle: the names an array
pickle refers to resolve to inert stand-ins that only record their arguments, and
the arrays are built afterwards by :func:`np.frombuffer` from a plain dtype
(booleans, integers or floats, no fields, no sub-arrays) with the byte count
checked against the shape.
"""

from __future__ import annotations

import io
import math
import pickle
from typing import Any

import numpy as np

__all__ = ["UnsafePickleError", "safe_load"]


class UnsafePickleError(pickle.UnpicklingError, ValueError):
    """A CIFAR batch pickle asked for something other than NumPy arrays and containers.

    Raised by :func:`load_cifar10` and :func:`load_cifar100` before anything in the
    file is called: a crafted batch cannot run code. A subclass of
    :class:`pickle.UnpicklingError` and of :class:`ValueError` (a bad input file).

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


# NumPy dtype kinds a CIFAR batch may hold: booleans, integers, floats.
_PLAIN_KINDS = "biuf"
# The state of a plain dtype after its endianness: no sub-array, no field names,
# no fields, default item size and alignment, no flags.
_PLAIN_DTYPE_STATE = (None, None, None, -1, -1, 0)
_MAX_DIMENSIONS = 8
_MAX_DEPTH = 32


class _InvalidPickleError(pickle.UnpicklingError, ValueError):
    """A file that is not a pickle at all (truncated, garbage): a bad input file."""


class _RefusedError(Exception):
    """Why a stand-in cannot become an array (turned into UnsafePickleError)."""


class _DtypeStandIn:
    """What ``numpy.dtype(obj, align, copy)`` and its ``__setstate__`` asked for."""

    def __init__(self, obj: Any = None, align: Any = False, copy: Any = True) -> None:
        self.obj = obj
        self.state: Any = None

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def resolve(self) -> np.dtype[Any]:
        name = self.obj.decode("ascii") if isinstance(self.obj, bytes) else self.obj
        if not isinstance(name, str) or len(name) > 8 or not name.isalnum():
            raise _RefusedError(f"a dtype described by {self.obj!r:.60}")
        try:
            dtype = np.dtype(name)
        except TypeError as err:
            raise _RefusedError(f"an unknown dtype {name!r}") from err
        if dtype.kind not in _PLAIN_KINDS or dtype.fields or dtype.subdtype:
            raise _RefusedError(f"a dtype {name!r} of kind {dtype.kind!r}")
        state = self.state
        if state is None:
            return dtype
        if (
            not isinstance(state, tuple)
            or len(state) not in (8, 9)
            or state[0] not in (3, 4)
            or state[1] not in ("<", ">", "|", "=", b"<", b">", b"|", b"=")
            or tuple(state[2:8]) != _PLAIN_DTYPE_STATE
            or (len(state) == 9 and state[8] is not None)
        ):
            raise _RefusedError(
                f"a dtype {name!r} with the state {state!r:.120}, which gives it "
                "fields, sub-arrays or flags"
            )
        order = state[1].decode("ascii") if isinstance(state[1], bytes) else state[1]
        if order == "<":
            return dtype.newbyteorder("<")
        return dtype.newbyteorder(">") if order == ">" else dtype


class _NdarrayStandIn:
    """``numpy.ndarray`` as a pickle names it; only a marker for ``_reconstruct``."""


class _ArrayStandIn:
    """An array the pickle described; :meth:`build` makes it from its bytes."""

    def __init__(self) -> None:
        self.shape: Any = None
        self.dtype: Any = None
        self.fortran: Any = False
        self.data: Any = None

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) == 5:
            state = state[1:]  # (version, shape, dtype, is_fortran, data)
        if not isinstance(state, tuple) or len(state) != 4:
            raise _RefusedError(f"an array state {state!r:.80}")
        self.shape, self.dtype, self.fortran, self.data = state

    def build(self) -> np.ndarray[Any, Any]:
        if not isinstance(self.dtype, _DtypeStandIn):
            raise _RefusedError(f"an array whose dtype is {type(self.dtype).__name__}")
        dtype = self.dtype.resolve()
        shape = self.shape
        if (
            not isinstance(shape, tuple)
            or len(shape) > _MAX_DIMENSIONS
            or not all(type(side) is int and side >= 0 for side in shape)
        ):
            raise _RefusedError(f"an array of shape {shape!r:.80}")
        if not isinstance(self.data, bytes | bytearray):
            # An object array lists its elements here; a CIFAR batch has none.
            raise _RefusedError(f"array contents given as {type(self.data).__name__}")
        expected = math.prod(shape) * dtype.itemsize
        if len(self.data) != expected:
            raise _RefusedError(
                f"an array of shape {shape} and dtype {dtype} ({expected:,} bytes) "
                f"backed by {len(self.data):,} bytes"
            )
        flat: np.ndarray[Any, Any] = np.frombuffer(bytes(self.data), dtype=dtype)
        sides = tuple(int(side) for side in shape)
        return flat.reshape(sides, order="F" if self.fortran is True else "C")


def _reconstruct(subtype: Any, shape: Any, typecode: Any) -> _ArrayStandIn:
    # numpy.core.multiarray._reconstruct(ndarray, (0,), b"b"): an empty array that
    # the pickle's BUILD then fills through __setstate__.
    if subtype is not _NdarrayStandIn:
        raise _RefusedError(f"_reconstruct of {subtype!r:.60}")
    return _ArrayStandIn()


def _frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any) -> _ArrayStandIn:
    # numpy.core.numeric._frombuffer, used by pickle protocol 5.
    array = _ArrayStandIn()
    array.__setstate__((shape, dtype, order == "F", buffer))
    return array


def _encode_latin1(text: Any, encoding: Any = "latin1") -> bytes:
    # Python 3 writes bytes at protocol 2 as _codecs.encode(str, "latin1"); any
    # other codec (zlib, bz2, ...) is refused so it cannot expand data.
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1", "latin_1"):
        raise _RefusedError(f"_codecs.encode with encoding {encoding!r:.40}")
    return text.encode("latin1")


_STAND_INS: dict[tuple[str, str], Any] = {
    ("_codecs", "encode"): _encode_latin1,
    ("numpy", "ndarray"): _NdarrayStandIn,
    ("numpy", "dtype"): _DtypeStandIn,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
}


class _AllowListUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, source: str) -> None:
        super().__init__(io.BytesIO(data), encoding="bytes")
        self._source = source

    def find_class(self, module: str, name: str) -> Any:
        stand_in = _STAND_INS.get((module, name))
        if stand_in is not None:
            return stand_in
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


def _materialize(value: Any, depth: int = 0) -> Any:
    """Replace the array stand-ins in ``value`` by arrays; refuse anything else odd."""
    if depth > _MAX_DEPTH:
        raise _RefusedError(f"containers nested more than {_MAX_DEPTH} deep")
    if isinstance(value, _ArrayStandIn):
        return value.build()
    if isinstance(value, dict):
        return {
            _materialize(key, depth + 1): _materialize(item, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_materialize(item, depth + 1) for item in value]
    if isinstance(value, tuple):
        return tuple(_materialize(item, depth + 1) for item in value)
    if value is None or isinstance(value, bool | int | float | str | bytes):
        return value
    if isinstance(value, bytearray):
        return bytes(value)
    raise _RefusedError(f"a {type(value).__name__} outside an array")


def safe_load(data: bytes, source: str) -> Any:
    """Unpickle ``data`` allowing only plain NumPy arrays and plain containers.

    Raises:
        UnsafePickleError: If the pickle refers to any other global, or describes
            an array that is not plain numbers of exactly its stated size.
        pickle.UnpicklingError: If ``data`` is not a valid pickle (also a
            :class:`ValueError`).
    """
    try:
        loaded = _AllowListUnpickler(data, source).load()
        return _materialize(loaded)
    except UnsafePickleError:
        raise
    except _RefusedError as err:
        raise UnsafePickleError(
            f"refusing to load {source!r}: it describes {err}, which a CIFAR batch "
            "never contains (only arrays of plain numbers of their stated size are "
            "allowed). The file may be corrupt or crafted; nothing in it was "
            "executed. Download the dataset again from the official source."
        ) from err
    except (
        pickle.UnpicklingError,
        EOFError,
        ValueError,
        TypeError,
        IndexError,
        KeyError,
        AttributeError,
        RecursionError,
        MemoryError,
        OverflowError,
    ) as err:
        raise _InvalidPickleError(
            f"{source!r} is not a valid CIFAR batch pickle: {str(err) or type(err).__name__}"
        ) from err
