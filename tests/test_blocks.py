from __future__ import annotations

import keras
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kerasimgcls import conv_block, dense_head

SETTINGS = settings(max_examples=15, deadline=None)


def _conv_out(
    size: int, kernel: int, stride: int, padding: str, pool: int | None
) -> int:
    out = -(-size // stride) if padding == "same" else (size - kernel) // stride + 1
    return out // pool if pool else out


@SETTINGS
@given(
    size=st.integers(8, 20),
    channels=st.sampled_from([1, 3, 4]),
    filters=st.integers(1, 16),
    kernel=st.integers(1, 4),
    stride=st.integers(1, 2),
    padding=st.sampled_from(["same", "valid"]),
    pool=st.sampled_from([None, 2]),
    dropout=st.sampled_from([None, 0.0, 0.25]),
    batch_norm=st.booleans(),
)
def test_conv_block_shape_and_parameters_match_arithmetic(
    size: int,
    channels: int,
    filters: int,
    kernel: int,
    stride: int,
    padding: str,
    pool: int | None,
    dropout: float | None,
    batch_norm: bool,
) -> None:
    inputs = keras.Input((size, size, channels))
    outputs = conv_block(
        inputs,
        filters,
        kernel_size=kernel,
        strides=stride,
        padding=padding,  # type: ignore[arg-type]
        pool_size=pool,
        dropout=dropout,
        batch_norm=batch_norm,
        name="b",
    )
    model = keras.Model(inputs, outputs)
    side = _conv_out(size, kernel, stride, padding, pool)
    assert tuple(outputs.shape) == (None, side, side, filters)
    expected = (
        kernel * kernel * channels * filters
        + filters
        + (4 * filters if batch_norm else 0)
    )
    assert model.count_params() == expected
    names = [layer.name for layer in model.layers[1:]]
    expected_names = (
        ["b_conv"]
        + (["b_pool"] if pool else [])
        + (["b_dropout"] if dropout else [])
        + (["b_bn"] if batch_norm else [])
    )
    assert names == expected_names


@SETTINGS
@given(
    features=st.integers(1, 64),
    units=st.lists(st.integers(1, 32), max_size=3),
    num_classes=st.integers(1, 12),
    batch_norm=st.booleans(),
)
def test_dense_head_parameters_match_closed_form(
    features: int, units: list[int], num_classes: int, batch_norm: bool
) -> None:
    inputs = keras.Input((2, 2, features))
    outputs = dense_head(
        inputs, num_classes, units=units, batch_norm=batch_norm, name="h"
    )
    model = keras.Model(inputs, outputs)
    expected, width = 0, 4 * features
    for size in units:
        expected += width * size + size + (4 * size if batch_norm else 0)
        width = size
    expected += width * num_classes + num_classes
    assert tuple(outputs.shape) == (None, num_classes)
    assert model.count_params() == expected


def test_dense_head_global_pooling_and_flat_inputs() -> None:
    maps = keras.Input((4, 4, 8))
    avg = dense_head(maps, 3, units=(), pooling="avg", name="avg")
    assert keras.Model(maps, avg).count_params() == 8 * 3 + 3
    flat = keras.Input((5,))
    out = dense_head(flat, 2, units=(4,), input_dropout=None, name="flat")
    assert tuple(out.shape) == (None, 2)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"filters": 0}, ValueError, "filters=0"),
        ({"filters": 2.5}, TypeError, "filters"),
        ({"kernel_size": 0}, ValueError, "kernel_size"),
        ({"kernel_size": (3, 3, 3)}, TypeError, "kernel_size"),
        ({"strides": -1}, ValueError, "strides"),
        ({"activation": "relux"}, ValueError, "activation='relux'"),
        ({"padding": "full"}, ValueError, "padding='full'"),
        ({"pool_size": 0}, ValueError, "pool_size"),
        (
            {"dropout": 1.0},
            ValueError,
            r"dropout must be in \[0, 1\); received dropout=1.0",
        ),
        ({"dropout": -0.1}, ValueError, "dropout"),
        ({"batch_norm": "yes"}, TypeError, "batch_norm"),
        ({"name": ""}, ValueError, "name"),
    ],
)
def test_conv_block_rejects_bad_arguments(
    kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    arguments: dict[str, object] = {"filters": 8, **kwargs}
    filters = arguments.pop("filters")
    with pytest.raises(error, match=match):
        conv_block(keras.Input((8, 8, 3)), filters, **arguments)  # type: ignore[arg-type]


def test_conv_block_rejects_wrong_rank_and_shrinking_to_nothing() -> None:
    with pytest.raises(ValueError, match="4-D"):
        conv_block(keras.Input((8,)), 4)
    with pytest.raises(ValueError, match="shrink the input height of 2"):
        conv_block(keras.Input((2, 2, 1)), 4, kernel_size=3, padding="valid")


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_classes": 0}, "num_classes=0"),
        ({"units": (0,)}, "units"),
        ({"pooling": "sum"}, "pooling='sum'"),
        ({"input_dropout": 1.5}, "input_dropout"),
        ({"dropout": 1.0}, "dropout"),
        ({"activation": "nope"}, "activation='nope'"),
        ({"output_activation": "nope"}, "output_activation"),
    ],
)
def test_dense_head_rejects_bad_arguments(
    kwargs: dict[str, object], match: str
) -> None:
    arguments: dict[str, object] = {"num_classes": 3, **kwargs}
    num_classes = arguments.pop("num_classes")
    with pytest.raises(ValueError, match=match):
        dense_head(keras.Input((4, 4, 2)), num_classes, **arguments)  # type: ignore[arg-type]


def test_dense_head_units_must_be_a_sequence() -> None:
    with pytest.raises(TypeError, match="units"):
        dense_head(keras.Input((4,)), 3, units=32)  # type: ignore[arg-type]


def test_blocks_generate_unique_names_when_unnamed() -> None:
    inputs = keras.Input((8, 8, 1))
    x = conv_block(inputs, 4)
    y = conv_block(x, 4, pool_size=None)
    model = keras.Model(inputs, dense_head(y, 2))
    names = [layer.name for layer in model.layers]
    assert len(names) == len(set(names))


def test_batch_norm_momentum_reaches_every_layer_and_is_checked() -> None:
    inputs = keras.Input((8, 8, 1))
    x = conv_block(inputs, 4, batch_norm=True, batch_norm_momentum=0.9, name="c")
    outputs = dense_head(x, 2, batch_norm_momentum=0.8, name="h")
    model = keras.Model(inputs, outputs)
    assert model.get_layer("c_bn").momentum == 0.9
    assert model.get_layer("h_dense1_bn").momentum == 0.8
    with pytest.raises(ValueError, match=r"batch_norm_momentum=1\.0"):
        conv_block(inputs, 4, batch_norm=True, batch_norm_momentum=1.0)
    with pytest.raises(TypeError, match="batch_norm_momentum"):
        dense_head(x, 2, batch_norm_momentum="fast")  # type: ignore[arg-type]
