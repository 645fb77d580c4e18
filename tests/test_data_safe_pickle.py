"""The allow-list unpickler for CIFAR batches, one rule at a time.

``tests/test_hostile_data.py`` feeds hostile batches through ``load_cifar10``; these
tests call the unpickler directly, so each accepted form and each refusal is pinned
(the mutation score of ``data/_safe_pickle.py`` depends on them).
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np
import pytest

from kerasimgcls import UnsafePickleError
from kerasimgcls.data._safe_pickle import safe_load


def _load(payload: Any, protocol: int = 2) -> Any:
    return safe_load(pickle.dumps(payload, protocol=protocol), "batch")


class _Dtype:
    """Pickles as ``numpy.dtype(obj, False, True)`` with ``state`` (or none)."""

    def __init__(self, obj: Any, state: Any = None) -> None:
        self.obj, self.state = obj, state

    def __reduce__(self) -> tuple[Any, ...]:
        if self.state is None:
            return (np.dtype, (self.obj, False, True))
        return (np.dtype, (self.obj, False, True), self.state)


class _Array:
    """Pickles as numpy's ``_reconstruct(subtype, (0,), b"b")`` with ``state``."""

    def __init__(self, state: Any, subtype: Any = np.ndarray) -> None:
        self.state, self.subtype = state, subtype

    def __reduce__(self) -> tuple[Any, ...]:
        from numpy._core.multiarray import _reconstruct

        return (_reconstruct, (self.subtype, (0,), b"b"), self.state)


class _FromBuffer:
    """Pickles as numpy's ``_frombuffer(buffer, dtype, shape, order)``."""

    def __init__(self, *args: Any) -> None:
        self.args = args

    def __reduce__(self) -> tuple[Any, ...]:
        from numpy._core.numeric import _frombuffer

        return (_frombuffer, self.args)


class _Encode:
    """Pickles as ``_codecs.encode(text, encoding)``."""

    def __init__(self, text: Any, encoding: str) -> None:
        self.args = (text, encoding)

    def __reduce__(self) -> tuple[Any, ...]:
        import _codecs

        return (_codecs.encode, self.args)


def _state(order: Any = "<", version: int = 3, *rest: Any) -> tuple[Any, ...]:
    return (version, order, None, None, None, -1, -1, 0, *rest)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
@pytest.mark.parametrize(
    "dtype", ["u1", "i2", ">i4", "<u8", "f4", ">f8", "?", "i1", "f2"]
)
def test_plain_arrays_round_trip_at_every_protocol(protocol: int, dtype: str) -> None:
    array = (np.arange(24) % 7).astype(dtype).reshape(2, 3, 4)
    loaded = safe_load(pickle.dumps({b"data": array}, protocol=protocol), "batch")
    assert list(loaded) == [b"data"]
    np.testing.assert_array_equal(loaded[b"data"], array)
    assert loaded[b"data"].dtype == array.dtype
    assert loaded[b"data"].shape == (2, 3, 4)


@pytest.mark.parametrize("protocol", [2, 5])
def test_fortran_order_and_empty_and_scalar_arrays(protocol: int) -> None:
    array = np.asfortranarray(np.arange(12, dtype=np.int16).reshape(3, 4))
    # (Empty bytes at protocol 2 are a call of bytes(), which is refused.)
    empty = np.zeros((0, 5), np.uint8) if protocol > 2 else np.zeros((1, 5), np.uint8)
    loaded = _load([array, empty, np.array(7.5)], protocol)
    np.testing.assert_array_equal(loaded[0], array)
    assert loaded[0].flags.f_contiguous and not loaded[0].flags.c_contiguous
    assert loaded[1].shape == empty.shape and loaded[1].dtype == np.uint8
    assert loaded[2].shape == () and loaded[2] == 7.5


def test_frombuffer_order_decides_the_layout() -> None:
    raw = np.arange(6, dtype=np.uint8).tobytes()
    fortran, plain = _load(
        [_FromBuffer(raw, np.dtype("u1"), (2, 3), "F")] * 1
        + [_FromBuffer(raw, np.dtype("u1"), (2, 3), "C")]
    )
    np.testing.assert_array_equal(plain, np.arange(6).reshape(2, 3))
    np.testing.assert_array_equal(fortran, np.arange(6).reshape(2, 3, order="F"))


def test_containers_and_plain_values_come_back_as_they_were() -> None:
    payload = {
        b"labels": [0, 1, 2],
        "pair": (1.5, None),
        b"names": [b"cat", "dog"],
        "flags": [True, False],
        3: {"nested": [[1], (2,)]},
    }
    assert _load(payload) == payload
    assert _load(payload, protocol=4) == payload
    loaded = _load([bytearray(b"ab")], protocol=5)  # BYTEARRAY8, no global
    assert loaded == [b"ab"] and type(loaded[0]) is bytes


def test_bytes_at_protocol_2_go_through_latin1_only() -> None:
    # Python 3 writes bytes at protocol 2 as _codecs.encode(text, "latin1").
    assert _load(b"\x00\xff") == b"\x00\xff"
    for encoding in ("latin1", "latin-1", "latin_1"):
        assert _load(_Encode("\xe9", encoding)) == b"\xe9"
    with pytest.raises(UnsafePickleError, match=r"_codecs\.encode with encoding 'zl"):
        _load(_Encode("x", "zlib"))
    with pytest.raises(UnsafePickleError, match=r"encoding 'latin1'"):
        _load(_Encode(b"x", "latin1"))  # type: ignore[arg-type]


def test_the_old_numpy_module_names_are_understood() -> None:
    # Pickles written by NumPy 1.x name numpy.core, not numpy._core.
    array = np.arange(5, dtype=np.int32)
    data = pickle.dumps(array, protocol=2)
    assert b"numpy._core.multiarray" in data
    old = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    np.testing.assert_array_equal(safe_load(old, "batch"), array)
    data = pickle.dumps(_FromBuffer(array.tobytes(), array.dtype, (5,), "C"), 2)
    old = data.replace(b"numpy._core.numeric", b"numpy.core.numeric")
    np.testing.assert_array_equal(safe_load(old, "batch"), array)


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ("<", "<i4"),
        (">", ">i4"),
        (b"<", "<i4"),
        (b">", ">i4"),
        ("|", "=i4"),
        ("=", "=i4"),
        (b"|", "=i4"),
        (b"=", "=i4"),
    ],
)
def test_dtype_states_set_the_byte_order(order: Any, expected: str) -> None:
    raw = np.array([1, 256], dtype=expected).tobytes()
    array = _load(_Array((1, (2,), _Dtype("i4", _state(order)), False, raw)))
    assert array.dtype == np.dtype(expected)
    assert array.tolist() == [1, 256]


def test_dtype_states_of_version_4_and_nine_fields_are_plain() -> None:
    raw = np.array([3], "<u2").tobytes()
    for state in (_state("<", 4), _state("<", 3, None)):
        array = _load(_Array((1, (1,), _Dtype(b"u2", state), False, raw)))
        assert array.dtype == np.dtype("<u2") and array.tolist() == [3]
    # Without a version the state is (shape, dtype, fortran, data).
    array = _load(_Array(((1,), _Dtype("u2", _state()), False, raw)))
    assert array.tolist() == [3]


@pytest.mark.parametrize(
    "state",
    [
        [3, "<", None, None, None, -1, -1, 0],  # a list, not a tuple
        (3, "<", None, None, None, -1, -1),  # too short
        (3, "<", None, None, None, -1, -1, 0, None, None),  # too long
        (2, "<", None, None, None, -1, -1, 0),  # unknown version
        (5, "<", None, None, None, -1, -1, 0),
        (3, "!", None, None, None, -1, -1, 0),  # unknown byte order
        (3, "<", (np.dtype("u1"), (2,)), None, None, -1, -1, 0),  # sub-array
        (3, "<", None, ("f",), None, -1, -1, 0),  # field names
        (3, "<", None, None, {"f": 0}, -1, -1, 0),  # fields
        (3, "<", None, None, None, 8, -1, 0),  # item size
        (3, "<", None, None, None, -1, 4, 0),  # alignment
        (3, "<", None, None, None, -1, -1, 1),  # flags
        (3, "<", None, None, None, -1, -1, 0, "metadata"),
    ],
)
def test_dtype_states_with_anything_more_are_refused(state: Any) -> None:
    raw = np.zeros(2, "<i4").tobytes()
    with pytest.raises(UnsafePickleError, match=r"a dtype 'i4' with the state"):
        _load(_Array((1, (2,), _Dtype("i4", state), False, raw)))


@pytest.mark.parametrize(
    ("obj", "match"),
    [
        ("O", r"a dtype 'O' of kind 'O'"),
        ("U3", r"a dtype 'U3' of kind 'U'"),
        ("c8", r"a dtype 'c8' of kind 'c'"),
        ("V8", r"a dtype 'V8' of kind 'V'"),
        ("M8", r"a dtype 'M8' of kind 'M'"),
        ("uint1234", r"an unknown dtype 'uint1234'"),
        ("float128x", r"a dtype described by 'float128x'"),  # nine characters
        ("<i4", r"a dtype described by '<i4'"),
        (3, r"a dtype described by 3"),
    ],
)
def test_dtypes_that_are_not_plain_numbers_are_refused(obj: Any, match: str) -> None:
    with pytest.raises(UnsafePickleError, match=match):
        _load(_Array((1, (1,), _Dtype(obj), False, b"\0" * 8)))


def test_a_dtype_name_of_eight_characters_is_accepted() -> None:
    array = _load(_Array((1, (1,), _Dtype("float32"), False, b"\0" * 4)))
    assert array.dtype == np.float32
    array = _load(_Array((1, (2,), _Dtype("bool"), False, b"\x01\x00")))
    assert array.tolist() == [True, False]
    array = _load(_Array((1, (1,), _Dtype("float64"), False, b"\0" * 8)))
    assert array.dtype == np.float64 and len("complex1") == 8


@pytest.mark.parametrize(
    ("state", "match"),
    [
        ((1, (2,), "u1", False, b"\0\0"), r"an array whose dtype is str"),
        ((1, [2], _Dtype("u1"), False, b"\0\0"), r"an array of shape \[2\]"),
        ((1, (-1,), _Dtype("u1"), False, b"\0"), r"an array of shape \(-1,\)"),
        ((1, (True,), _Dtype("u1"), False, b"\0"), r"an array of shape \(True,\)"),
        ((1, (2.0,), _Dtype("u1"), False, b"\0\0"), r"an array of shape \(2\.0,\)"),
        ((1, (1,) * 9, _Dtype("u1"), False, b"\0"), r"an array of shape \(1, 1, 1,"),
        ((1, (2,), _Dtype("u1"), False, [1, 2]), r"array contents given as list"),
        ((1, (2,), _Dtype("u1"), False, "ab"), r"array contents given as str"),
        (
            (1, (2, 2), _Dtype("u2"), False, b"\0" * 7),
            r"an array of shape \(2, 2\) and dtype uint16 \(8 bytes\) backed by 7",
        ),
        (
            (1, (2,), _Dtype("u1"), False, b"\0" * 3),
            r"\(2 bytes\) backed by 3 bytes",
        ),
        ((1, (2,), _Dtype("u1")), r"an array state \(1, \(2,\)"),
        ("state", r"an array state 'state'"),
    ],
)
def test_array_states_that_do_not_describe_plain_bytes_are_refused(
    state: Any, match: str
) -> None:
    with pytest.raises(UnsafePickleError, match=match):
        _load(_Array(state))


def test_an_array_of_eight_dimensions_and_bytearray_data_are_accepted() -> None:
    array = _load(
        _Array((1, (1,) * 8, _Dtype("u1"), False, bytearray(b"\x05"))), protocol=5
    )
    assert array.shape == (1,) * 8 and array.ravel().tolist() == [5]
    fortran = _load(_Array((1, (2, 2), _Dtype("u1"), 1, bytes(range(4)))))
    # Only ``True`` means Fortran order; a truthy 1 keeps C order.
    assert fortran.tolist() == [[0, 1], [2, 3]]


def test_reconstruct_of_anything_but_ndarray_is_refused() -> None:
    with pytest.raises(
        UnsafePickleError, match=r"_reconstruct of <class '.+_DtypeStandIn'>"
    ):
        _load(_Array((1, (1,), _Dtype("u1"), False, b"\0"), subtype=np.dtype))


def test_other_globals_and_persistent_ids_are_refused_without_running() -> None:
    with pytest.raises(UnsafePickleError) as info:
        safe_load(pickle.dumps(print), "data_batch_1")
    assert str(info.value) == (
        "refusing to load 'data_batch_1': it asks for builtins.print, which a CIFAR "
        "batch never contains (only NumPy arrays and plain containers are allowed). "
        "The file may be corrupt or crafted to run code; nothing in it was "
        "executed. Download the dataset again from the official source."
    )
    persistent = b"\x80\x02X\x01\x00\x00\x00aQ."  # BINUNICODE 'a', BINPERSID
    with pytest.raises(UnsafePickleError) as info:
        safe_load(persistent, "test_batch")
    assert str(info.value) == (
        "refusing to load 'test_batch': it uses persistent ids, which a CIFAR "
        "batch never contains"
    )


def test_a_refusal_names_the_file_and_what_it_describes() -> None:
    with pytest.raises(UnsafePickleError) as info:
        safe_load(pickle.dumps({1, 2}, protocol=4), "batches.meta")
    assert str(info.value) == (
        "refusing to load 'batches.meta': it describes a set outside an array, "
        "which a CIFAR batch never contains (only arrays of plain numbers of their "
        "stated size are allowed). The file may be corrupt or crafted; nothing in "
        "it was executed. Download the dataset again from the official source."
    )
    assert isinstance(info.value.__cause__, Exception)


def test_nesting_is_bounded() -> None:
    value: Any = 1
    for _ in range(32):
        value = [value]
    assert _load(value) == value  # 32 containers deep, the value at depth 32
    with pytest.raises(UnsafePickleError, match=r"containers nested more than 32 deep"):
        _load([value])
    deep_dict: Any = 1
    for _ in range(33):
        deep_dict = {"k": deep_dict}
    with pytest.raises(UnsafePickleError, match=r"nested more than 32"):
        _load(deep_dict)
    deep_key: Any = "k"
    for _ in range(33):
        deep_key = (deep_key,)
    with pytest.raises(UnsafePickleError, match=r"nested more than 32"):
        _load({deep_key: 1})


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", r"^'f' is not a valid CIFAR batch pickle: Ran out of input$"),
        (b"garbage", r"^'f' is not a valid CIFAR batch pickle: "),
        (pickle.dumps([1, 2])[:-3], r"^'f' is not a valid CIFAR batch pickle: "),
    ],
)
def test_what_is_not_a_pickle_is_one_value_error(data: bytes, match: str) -> None:
    with pytest.raises(pickle.UnpicklingError, match=match) as info:
        safe_load(data, "f")
    assert isinstance(info.value, ValueError)
    assert not isinstance(info.value, UnsafePickleError)
    assert info.value.__cause__ is not None


def test_an_error_without_a_message_is_named_by_its_type() -> None:
    # A dict key that cannot be hashed raises TypeError("unhashable ...") inside
    # the unpickler; an empty KeyError shows as its type name.
    data = b"\x80\x02}q\x00(]q\x01K\x01au."  # {[]: 1}
    with pytest.raises(pickle.UnpicklingError, match=r"not a valid CIFAR batch"):
        safe_load(data, "f")
    memo_miss = b"\x80\x02h\x05."  # BINGET of a memo slot never set
    with pytest.raises(pickle.UnpicklingError, match=r"pickle: .+"):
        safe_load(memo_miss, "f")


def test_python_2_strings_come_back_as_bytes() -> None:
    # The CIFAR batches were pickled by Python 2: their keys are STRING opcodes,
    # which must load as bytes (b"data"), as the loaders look them up.
    assert safe_load(b"(dp0\nS'data'\np1\nI1\ns.", "batch") == {b"data": 1}
    assert safe_load(b"\x80\x02U\x06labelsq\x00.", "batch") == b"labels"


def test_codecs_encode_with_its_default_encoding_is_latin1() -> None:
    class _EncodeDefault:
        def __reduce__(self) -> tuple[Any, ...]:
            import _codecs

            return (_codecs.encode, ("\xe9",))

    assert _load(_EncodeDefault()) == b"\xe9"


def test_an_array_without_its_state_is_refused() -> None:
    class _Bare:
        def __reduce__(self) -> tuple[Any, ...]:
            from numpy._core.multiarray import _reconstruct

            return (_reconstruct, (np.ndarray, (0,), b"b"))

    with pytest.raises(UnsafePickleError, match=r"an array whose dtype is NoneType"):
        _load(_Bare())


def test_a_forged_dtype_state_is_named_whole() -> None:
    state = (3, "<", None, ("f",), None, -1, -1, 0)
    with pytest.raises(UnsafePickleError) as info:
        _load(_Array((1, (2,), _Dtype("i4", state), False, b"\0" * 8)))
    assert (
        f"it describes a dtype 'i4' with the state {state!r}, which gives it "
        "fields, sub-arrays or flags, which a CIFAR batch never contains"
    ) in str(info.value)


def _nested(depth: int, wrap: Any) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = wrap(value)
    return value


def test_nesting_is_bounded_through_dicts_tuples_and_keys() -> None:
    # Every container counts one level, keys as values: 32 levels load, 33 do not.
    as_dict = _nested(32, lambda inner: {"k": inner})
    assert _load(as_dict, protocol=4) == as_dict
    as_tuple = _nested(32, lambda inner: (inner,))
    assert _load(as_tuple, protocol=4) == as_tuple
    key = _nested(31, lambda inner: (inner,))
    assert _load({key: 1}, protocol=4) == {key: 1}
    with pytest.raises(UnsafePickleError, match=r"nested more than 32"):
        _load({_nested(32, lambda inner: (inner,)): 1}, protocol=4)
    with pytest.raises(UnsafePickleError, match=r"nested more than 32"):
        _load({"k": as_tuple}, protocol=4)


def test_an_empty_error_message_is_named_by_its_type(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from kerasimgcls.data import _safe_pickle

    def load(self: Any) -> Any:
        raise ValueError()

    monkeypatch.setattr(_safe_pickle._AllowListUnpickler, "load", load)
    with pytest.raises(pickle.UnpicklingError) as info:
        safe_load(b".", "f")
    assert str(info.value) == "'f' is not a valid CIFAR batch pickle: ValueError"
