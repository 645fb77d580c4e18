"""How close to this CPU's peak does the airbench model train, and where does time go?

Measures, in one process on this machine:

1. the machine's own float32 and bfloat16 peak: a square matmul and the 3x3
   convolution 256 -> 256 at 32x32 (batch 64) that dominates airbench_cnn;
2. the airbench model's training speed (images/s and GFLOP/s, forward + backward
   counted as three times the forward multiply-adds) as a fraction of that peak;
3. where one training step spends its time: forward and backward of each layer
   alone, the optimizer update, and the input pipeline's augmentation;
4. which oneDNN kernels run (a child process with ``ONEDNN_VERBOSE=1``), summed by
   primitive and implementation.

Usage::

    python benchmarks/bench_peak.py --output benchmarks/results/bench_peak.json
    python benchmarks/bench_peak.py --quick          # smaller sizes, for a smoke test

The JSON names the CPU model, its flags (AMX or not) and the load average.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine_info, write_json


def _seconds(function: Any, repeats: int) -> list[float]:
    function()  # trace and warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


def _median_seconds(function: Any, repeats: int) -> float:
    return float(np.median(_seconds(function, repeats)))


def _best_seconds(function: Any, repeats: int) -> float:
    # A peak is the best the machine did: the fastest repeat, not the median.
    return float(np.min(_seconds(function, repeats)))


def peak(dtype: str, *, size: int, batch: int, repeats: int) -> dict[str, float]:
    """GFLOP/s of a ``size``-square matmul and of the 3x3 conv 256->256 at 32x32."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    a = tf.constant(rng.standard_normal((size, size)), dtype=dtype)
    b = tf.constant(rng.standard_normal((size, size)), dtype=dtype)
    x = tf.constant(rng.standard_normal((batch, 32, 32, 256)), dtype=dtype)
    k = tf.constant(rng.standard_normal((3, 3, 256, 256)) * 0.02, dtype=dtype)
    conv = tf.function(lambda: tf.nn.conv2d(x, k, 1, "SAME"))
    matmul_s = _best_seconds(lambda: tf.linalg.matmul(a, b).numpy(), repeats)
    conv_s = _best_seconds(lambda: conv().numpy(), repeats)
    conv_flop = 2.0 * batch * 32 * 32 * 256 * 256 * 9
    return {
        "matmul_gflops": 2.0 * size**3 / matmul_s / 1e9,
        "conv3x3_256_gflops": conv_flop / conv_s / 1e9,
    }


def forward_macs(model: Any) -> int:
    """Multiply-adds of one image's forward pass through the convolutions and dense."""
    import keras

    total = 0
    for layer in _leaf_layers(model):
        if isinstance(layer, keras.layers.Conv2D):
            height, width, filters = layer.output.shape[1:]
            kh, kw = layer.kernel_size
            total += height * width * filters * kh * kw * layer.input.shape[-1]
        elif isinstance(layer, keras.layers.Dense):
            total += int(np.prod(layer.kernel.shape))
    return int(total)


def _leaf_layers(model: Any) -> list[Any]:
    layers = []
    for layer in model.layers:
        layers.extend(_leaf_layers(layer) if hasattr(layer, "layers") else [layer])
    return layers


def _build(precision: str, width_scale: float) -> Any:
    import keras

    from kerasimgcls import build_airbench_cnn
    from kerasimgcls.models.layers import fuse_batch_norm, precision_scope

    widths = tuple(max(8, int(w * width_scale)) for w in (64, 256, 256))
    with precision_scope(precision):
        model = build_airbench_cnn(widths=widths)
        if precision != "float32":
            model = fuse_batch_norm(model)
    model.compile(
        optimizer=keras.optimizers.SGD(0.1, momentum=0.85, nesterov=True),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=0.2),
    )
    return model


def training_speed(
    precision: str, *, batch: int, steps: int, width_scale: float
) -> dict[str, Any]:
    """Images/s and GFLOP/s of ``train_on_batch`` on random images."""
    model = _build(precision, width_scale)
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (batch, 32, 32, 3)).astype("float32")
    labels = np.eye(10, dtype="float32")[rng.integers(0, 10, batch)]
    seconds = _median_seconds(lambda: model.train_on_batch(images, labels), steps)
    macs = forward_macs(model)
    return {
        "precision": precision,
        "batch": batch,
        "forward_macs_per_image": macs,
        "images_per_s": batch / seconds,
        "gflops": 6.0 * macs * batch / seconds / 1e9,
        "model": model,
        "images": images,
        "labels": labels,
    }


def layer_times(model: Any, images: Any, repeats: int) -> list[dict[str, Any]]:
    """Forward and forward+backward time of each layer alone, on its own input."""
    import keras
    import tensorflow as tf

    probe = keras.Model(model.inputs, [layer.output for layer in model.layers[1:]])
    outputs = probe([images], training=True)
    inputs = [images, *[t.numpy() for t in outputs][:-1]]
    rows = []
    for layer, x in zip(model.layers[1:], inputs, strict=True):
        x = tf.constant(x)

        def forward(layer: Any = layer, x: Any = x) -> Any:
            return layer(x, training=True)

        def backward(layer: Any = layer, x: Any = x) -> Any:
            with tf.GradientTape() as tape:
                tape.watch(x)
                y = tf.reduce_sum(tf.cast(layer(x, training=True), "float32"))
            return tape.gradient(y, [x, *layer.trainable_variables])

        f = tf.function(forward, reduce_retracing=True)
        g = tf.function(backward, reduce_retracing=True)
        fwd = _median_seconds(
            lambda f=f: tf.nest.map_structure(np.asarray, f()), repeats
        )
        both = _median_seconds(
            lambda g=g: [np.asarray(t) for t in g() if t is not None], repeats
        )
        rows.append(
            {
                "layer": layer.name,
                "type": type(layer).__name__,
                "forward_ms": 1e3 * fwd,
                "forward_backward_ms": 1e3 * both,
            }
        )
    return rows


def by_type(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Forward + backward milliseconds summed by layer type."""
    totals: dict[str, float] = collections.defaultdict(float)
    for row in rows:
        totals[row["type"]] += row["forward_backward_ms"]
    return {
        name: round(ms, 2) for name, ms in sorted(totals.items(), key=lambda i: -i[1])
    }


def optimizer_time(model: Any, repeats: int) -> float:
    """Milliseconds of one optimizer update of every trainable variable."""
    import tensorflow as tf

    grads = [tf.zeros_like(v) for v in model.trainable_variables]
    step = tf.function(
        lambda: model.optimizer.apply_gradients(
            zip(grads, model.trainable_variables, strict=True)
        )
    )
    return 1e3 * _median_seconds(lambda: step(), repeats)


def augmentation_time(batch: int, repeats: int) -> float:
    """Milliseconds to flip and translate one batch of uint8 images."""
    import tensorflow as tf

    from kerasimgcls.data._augment import Augmentation, augment_batch

    images = tf.constant(
        np.random.default_rng(0).integers(0, 256, (batch, 32, 32, 3), dtype=np.uint8)
    )
    augmentation = Augmentation(flip=True, translate=2)
    run = tf.function(lambda: augment_batch(images, augmentation, tf.constant([0, 1])))
    return 1e3 * _median_seconds(lambda: run().numpy(), repeats)


def onednn_kernels(precision: str, batch: int, width_scale: float) -> dict[str, Any]:
    """Run three training steps in a child with ONEDNN_VERBOSE=1; sum by kernel."""
    code = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).resolve().parent)!r});"
        "import bench_peak as b, numpy as np;"
        f"r = b.training_speed({precision!r}, batch={batch}, steps=2, "
        f"width_scale={width_scale})"
    )
    env = {**os.environ, "ONEDNN_VERBOSE": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True
    ).stdout
    totals: dict[str, float] = collections.defaultdict(float)
    counts: collections.Counter[str] = collections.Counter()
    for line in out.splitlines():
        parts = line.split(",")
        if (
            len(parts) < 6
            or not line.startswith("onednn_verbose")
            or "exec" not in parts
        ):
            continue
        at = parts.index("exec")
        # onednn_verbose,[timestamp,]exec,cpu,<primitive>,<implementation>,...,<ms>
        key = f"{parts[at + 2]}:{parts[at + 3]}"
        try:
            totals[key] += float(parts[-1])
        except ValueError:
            continue
        counts[key] += 1
    ranked = sorted(totals.items(), key=lambda item: -item[1])
    return {
        "precision": precision,
        "kernels": [
            {"kernel": key, "calls": counts[key], "total_ms": round(ms, 2)}
            for key, ms in ranked[:25]
        ],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=None)
    parser.add_argument("--quick", action="store_true", help="small sizes (smoke test)")
    parser.add_argument("--batch", type=int, default=256)
    args = parser.parse_args(argv)
    quick = args.quick
    size, conv_batch, repeats = (512, 4, 2) if quick else (2048, 64, 7)
    batch, width_scale = (16, 0.125) if quick else (args.batch, 1.0)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.filterwarnings("ignore")
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    result: dict[str, Any] = {"machine": machine_info(), "quick": quick}
    result["peak"] = {
        dtype: peak(dtype, size=size, batch=conv_batch, repeats=repeats)
        for dtype in ("float32", "bfloat16")
    }
    result["training"] = []
    for precision in ("float32", "mixed_bfloat16"):
        speed = training_speed(
            precision, batch=batch, steps=repeats, width_scale=width_scale
        )
        model, images = speed.pop("model"), speed.pop("images")
        speed.pop("labels")
        dtype = "float32" if precision == "float32" else "bfloat16"
        speed["fraction_of_conv_peak"] = (
            speed["gflops"] / result["peak"][dtype]["conv3x3_256_gflops"]
        )
        speed["step_ms"] = 1e3 * batch / speed["images_per_s"]
        speed["layers"] = layer_times(model, images, repeats)
        speed["layer_ms_by_type"] = by_type(speed["layers"])
        speed["optimizer_ms"] = optimizer_time(model, repeats)
        result["training"].append(speed)
    result["augmentation_ms_per_batch"] = augmentation_time(batch, repeats)
    result["onednn"] = [
        onednn_kernels(precision, batch, width_scale)
        for precision in ("float32", "mixed_bfloat16")
    ]
    result["machine"]["load_average_end"] = machine_info()["load_average"]
    if args.output:
        write_json(args.output, result)
    summary = {
        "peak": result["peak"],
        "training": [
            {k: v for k, v in row.items() if k != "layers"}
            for row in result["training"]
        ],
        "augmentation_ms_per_batch": result["augmentation_ms_per_batch"],
    }
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
