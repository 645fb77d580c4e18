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

import contextlib
import io
import math
import pickle
import pickletools
from typing import Any

import numpy as np

from kerasimgcls._validation import limit, short_repr

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
            raise _RefusedError(f"a dtype described by {short_repr(self.obj, 60)}")
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
                f"a dtype {name!r} with the state {short_repr(state, 120)}, which gives it "
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
            raise _RefusedError(f"an array state {short_repr(state, 80)}")
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
            raise _RefusedError(f"an array of shape {short_repr(shape, 80)}")
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
        raise _RefusedError(f"_reconstruct of {short_repr(subtype, 60)}")
    return _ArrayStandIn()


def _frombuffer(buffer: Any, dtype: Any, shape: Any, order: Any) -> _ArrayStandIn:
    # numpy.core.numeric._frombuffer, used by pickle protocol 5.
    array = _ArrayStandIn()
    array.__setstate__((shape, dtype, order == "F", buffer))
    return array


class _Budget:
    """The bytes one load may still produce: twice the pickle's own size.

    Every byte an ``_codecs.encode`` call produces comes from a string in the
    file, and every byte of an array from bytes in the file (or from such an
    encoded string), so a genuine batch never produces more than twice its size;
    one 1 MB string encoded 1,500 times through the memo would.
    """

    def __init__(self, total: int) -> None:
        self.left = total

    def spend(self, size: int, what: str) -> None:
        self.left -= size
        if self.left < 0:
            raise _RefusedError(
                f"{what} that, with the others, produce more bytes than the file "
                "holds (its objects are reused through the pickle's memo)"
            )

    def encode_latin1(self, text: Any, encoding: Any = "latin1") -> bytes:
        # Python 3 writes bytes at protocol 2 as _codecs.encode(str, "latin1");
        # any other codec (zlib, bz2, ...) is refused so it cannot expand data.
        if not isinstance(text, str) or encoding not in (
            "latin1",
            "latin-1",
            "latin_1",
        ):
            raise _RefusedError(
                f"_codecs.encode with encoding {short_repr(encoding, 40)}"
            )
        self.spend(len(text), "_codecs.encode calls")
        return text.encode("latin1")


_STAND_INS: dict[tuple[str, str], Any] = {
    ("numpy", "ndarray"): _NdarrayStandIn,
    ("numpy", "dtype"): _DtypeStandIn,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
}


class _AllowListUnpickler(pickle.Unpickler):
    def __init__(self, data: bytes, source: str, budget: _Budget) -> None:
        super().__init__(io.BytesIO(data), encoding="bytes")
        self._source = source
        self._budget = budget

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("_codecs", "encode"):
            return self._budget.encode_latin1
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


# Opcodes that store into, or read from, the unpickler's memo by index. CPython
# grows the memo to the largest index (zero-filled), so a 9-byte pickle naming
# index 2**27 allocates a gigabyte before anything can be checked.
_MEMO_PUTS = frozenset({"PUT", "BINPUT", "LONG_BINPUT"})


def _prescan(data: bytes) -> None:
    """Refuse a pickle with too many opcodes or a memo index beyond its opcodes.

    A pickler numbers its memo entries 0, 1, 2...: one per opcode at most, so an
    index past the number of opcodes is never genuine. Runs before anything is
    unpickled; its cost is one pass over the opcodes.
    """
    max_opcodes = limit("max_pickle_opcodes")
    count = 0
    largest = -1
    # A file that is not a valid pickle stops the scan; the unpickler then says
    # what is wrong with it, once the memo indexes seen so far are checked.
    with contextlib.suppress(ValueError, TypeError, KeyError, UnicodeDecodeError):
        for opcode, argument, _ in pickletools.genops(data):
            count += 1
            if count > max_opcodes:
                raise _RefusedError(
                    f"more than {max_opcodes:,} pickle opcodes "
                    "(KERASIMGCLS_MAX_PICKLE_OPCODES)"
                )
            if opcode.name in _MEMO_PUTS:
                largest = max(largest, int(argument or 0))
    if largest >= max(count, 1):
        raise _RefusedError(
            f"a memo index {largest:,} in a pickle of {count:,} opcodes"
        )


class _Builder:
    """Replace the stand-ins of an unpickled value by arrays, visiting each once.

    Objects the pickle shares through its memo (``x = [x, x]`` forty times) stay
    shared: each distinct container is built once (a walk that copied them would
    visit 2**40 leaves), and the distinct containers are counted against
    ``max_pickle_objects``.
    """

    def __init__(self, budget: _Budget) -> None:
        self.budget = budget
        self.built: dict[int, Any] = {}
        self.keep: list[Any] = []  # the originals, so that their ids stay unique
        self.left = limit("max_pickle_objects")

    def build(self, value: Any, depth: int = 0) -> Any:
        if depth > _MAX_DEPTH:
            raise _RefusedError(f"containers nested more than {_MAX_DEPTH} deep")
        if value is None or isinstance(value, bool | int | float | str | bytes):
            return value
        done = self.built.get(id(value), self)
        if done is not self:
            return done
        self.left -= 1
        if self.left < 0:
            raise _RefusedError(
                f"more than {limit('max_pickle_objects'):,} distinct objects "
                "(KERASIMGCLS_MAX_PICKLE_OBJECTS)"
            )
        self.keep.append(value)
        return self._build_new(value, depth)

    def _build_new(self, value: Any, depth: int) -> Any:
        key = id(value)
        if isinstance(value, _ArrayStandIn):
            if isinstance(value.data, bytes | bytearray):
                self.budget.spend(len(value.data), "arrays")
            built: Any = value.build()
        elif isinstance(value, dict):
            built = self.built[key] = {}
            for item_key, item in value.items():
                built[self.build(item_key, depth + 1)] = self.build(item, depth + 1)
        elif isinstance(value, list):
            built = self.built[key] = []
            built.extend(self.build(item, depth + 1) for item in value)
        elif isinstance(value, tuple):
            built = tuple(self.build(item, depth + 1) for item in value)
        elif isinstance(value, bytearray):
            built = bytes(value)
        else:
            raise _RefusedError(f"a {type(value).__name__} outside an array")
        self.built[key] = built
        return built


def safe_load(data: bytes, source: str) -> Any:
    """Unpickle ``data`` allowing only plain NumPy arrays and plain containers.

    Raises:
        UnsafePickleError: If the pickle refers to any other global, or describes
            an array that is not plain numbers of exactly its stated size.
        pickle.UnpicklingError: If ``data`` is not a valid pickle (also a
            :class:`ValueError`).
    """
    try:
        _prescan(data)
        budget = _Budget(2 * len(data) + 4096)
        loaded = _AllowListUnpickler(data, source, budget).load()
        return _Builder(budget).build(loaded)
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
