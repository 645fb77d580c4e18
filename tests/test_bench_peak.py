"""The peak benchmark's arithmetic: model cost and the oneDNN log summary."""

from __future__ import annotations

import pytest


def test_forward_macs_matches_the_documented_reference_cost(load_benchmark) -> None:
    from kerasimgcls import build_cifar_cnn

    bench = load_benchmark("bench_peak")
    # docs/performance.md: 34.2 M multiply-adds per 32x32 image forward.
    assert bench.forward_macs(build_cifar_cnn()) == pytest.approx(34.2e6, rel=0.005)


def test_forward_macs_counts_a_convolution_exactly(load_benchmark) -> None:
    import keras

    bench = load_benchmark("bench_peak")
    inputs = keras.Input((8, 8, 3))
    outputs = keras.layers.Dense(5)(
        keras.layers.Flatten()(keras.layers.Conv2D(4, 3, padding="same")(inputs))
    )
    model = keras.Model(inputs, outputs)
    assert bench.forward_macs(model) == 8 * 8 * 4 * 3 * 3 * 3 + 8 * 8 * 4 * 5


def test_by_type_sums_forward_and_backward(load_benchmark) -> None:
    bench = load_benchmark("bench_peak")
    rows = [
        {"type": "Conv2D", "forward_backward_ms": 2.0},
        {"type": "Conv2D", "forward_backward_ms": 3.0},
        {"type": "Activation", "forward_backward_ms": 1.0},
    ]
    assert bench.by_type(rows) == {"Conv2D": 5.0, "Activation": 1.0}
    assert list(bench.by_type(rows)) == ["Conv2D", "Activation"]
