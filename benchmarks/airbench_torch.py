"""An independent PyTorch run of the airbench94 procedure, on this project's data.

Is the gap between the ``airbench`` recipe and airbench94's published 94% in the
Keras port, or in the data (the CIFAR-10 JPEGs, re-encoded at about quality 75 with
4:2:0 chroma subsampling)? This script answers the question from the other side:
it trains the airbench94 network and procedure, written here from airbench94's
description, in PyTorch on the CPU, on exactly the split the port trains on, and
scores the same validation images. It follows airbench94 where the port departs
from it: batch 1,024 with the last partial batch dropped, a summed loss with
airbench's learning-rate and weight-decay units, batch-norm epsilon 1e-12, the
whitening computed from 5,000 standardised images (uncentred 2x2 patch covariance,
eps 5e-4) with its bias trained for the first 3 epochs, float32 throughout.

PyTorch is not a dependency of the project: run this in an environment of its
own (``pip install torch numpy``), on the split written by
``python benchmarks/airbench_ablate.py --dump-split split.npz``::

    python benchmarks/airbench_torch.py --split split.npz --widths 64 256 256 \\
        --output benchmarks/results/airbench_torch/full_seed0.json

It prints one JSON line per epoch and writes the result (accuracies without TTA,
with mirror TTA and with airbench's six views, the history, the CPU model and the
load average) to ``--output``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np


def _cpu_model() -> str:
    # Not _common.cpu_model: _common imports kerasimgcls (and TensorFlow), which
    # this script's PyTorch-only environment does not have.
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def main(argv: list[str] | None = None) -> int:
    import torch
    import torch.nn.functional as F  # noqa: N812 - the usual name
    from torch import nn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--split", required=True, help="npz from airbench_ablate.py")
    parser.add_argument("--widths", type=int, nargs=3, default=[32, 128, 128])
    parser.add_argument("--epochs", type=float, default=10)
    parser.add_argument("--train-images", type=int, default=16000, help="0: all")
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.manual_seed(args.seed)
    torch.set_num_threads(args.threads)

    with np.load(args.split) as saved:
        xtr, ytr, xva, yva = (saved[k] for k in ("xtr", "ytr", "xva", "yva"))
    if args.train_images and args.train_images < len(xtr):
        # The same seeded subset as airbench_ablate.py --train-images.
        order = np.random.default_rng(0).permutation(len(xtr))
        pick = np.sort(order[: args.train_images])
        xtr, ytr = xtr[pick], ytr[pick]

    def to_tensor(images: np.ndarray) -> Any:
        return torch.tensor(images).permute(0, 3, 1, 2).float() / 255.0

    xtr_t, xva_t = to_tensor(xtr), to_tensor(xva)
    mean = xtr_t.mean((0, 2, 3), keepdim=True)
    std = xtr_t.std((0, 2, 3), keepdim=True)
    xtr_n, xva_n = (xtr_t - mean) / std, (xva_t - mean) / std
    ytr_t, yva_t = torch.tensor(ytr).long(), torch.tensor(yva).long()

    class BatchNorm(nn.BatchNorm2d):
        def __init__(self, size: int) -> None:
            super().__init__(size, eps=1e-12, momentum=1 - 0.6)
            self.weight.requires_grad = False

    class Conv(nn.Conv2d):
        def __init__(self, size_in: int, size_out: int) -> None:
            super().__init__(size_in, size_out, 3, padding="same", bias=False)

        def reset_parameters(self) -> None:
            super().reset_parameters()
            nn.init.dirac_(self.weight.data[: self.weight.size(1)])

    class Group(nn.Module):
        def __init__(self, size_in: int, size_out: int) -> None:
            super().__init__()
            self.c1, self.n1 = Conv(size_in, size_out), BatchNorm(size_out)
            self.c2, self.n2 = Conv(size_out, size_out), BatchNorm(size_out)

        def forward(self, x: Any) -> Any:
            x = F.gelu(self.n1(F.max_pool2d(self.c1(x), 2)))
            return F.gelu(self.n2(self.c2(x)))

    class Net(nn.Module):
        def __init__(self, widths: list[int]) -> None:
            super().__init__()
            self.whiten = nn.Conv2d(3, 24, 2, padding=0, bias=True)
            self.g1 = Group(24, widths[0])
            self.g2 = Group(widths[0], widths[1])
            self.g3 = Group(widths[1], widths[2])
            self.head = nn.Linear(widths[2], 10, bias=False)

        def forward(self, x: Any) -> Any:
            x = self.g3(self.g2(self.g1(F.gelu(self.whiten(x)))))
            return self.head(F.adaptive_max_pool2d(x, 1).flatten(1)) / 9.0

    net = Net(args.widths)
    # Whitening: eigenvectors of the uncentred covariance of every 2x2 patch of
    # 5,000 standardised training images, scaled by 1 / sqrt(eigenvalue + 5e-4).
    patches = xtr_n[:5000].unfold(2, 2, 1).unfold(3, 2, 1)
    patches = patches.transpose(1, 3).reshape(-1, 3, 2, 2).double()
    flat = patches.reshape(len(patches), -1)
    values, vectors = torch.linalg.eigh(flat.T @ flat / len(flat))
    values = values.flip(0).view(-1, 1, 1, 1)
    vectors = vectors.T.reshape(12, 3, 2, 2).flip(0)
    scaled = vectors / torch.sqrt(values + 5e-4)
    net.whiten.weight.data[:] = torch.cat((scaled, -scaled)).float()
    net.whiten.weight.requires_grad = False

    # airbench94's units: lr 11.5 and weight decay 0.0153 per 1,024 examples on a
    # summed loss, momentum folded out; batch-norm biases at 64x the rate.
    batch, momentum = args.batch, 0.85
    kilostep = 1024 * (1 + 1 / (1 - momentum))
    lr, decay = 11.5 / kilostep, 0.0153 * batch / kilostep
    lr_bias = 64 * lr
    norms = [p for k, p in net.named_parameters() if ".n" in k and p.requires_grad]
    others = [p for k, p in net.named_parameters() if ".n" not in k and p.requires_grad]
    optimizer = torch.optim.SGD(
        [
            {"params": norms, "lr": lr_bias, "weight_decay": decay / lr_bias},
            {"params": others, "lr": lr, "weight_decay": decay / lr},
        ],
        momentum=momentum,
        nesterov=True,
    )
    size = len(xtr_n)
    steps_per_epoch = size // batch
    total = math.ceil(steps_per_epoch * args.epochs)
    rates = np.interp(
        np.arange(1 + total), [0, int(0.23 * total), total], [0.2, 1, 0.07]
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda i: rates[i])
    alpha = 0.95**5 * (torch.arange(total + 1) / total) ** 3
    average = {k: v.clone() for k, v in net.state_dict().items()}

    def lookahead(keep: float) -> None:
        for held, value in zip(
            average.values(), net.state_dict().values(), strict=True
        ):
            if value.dtype.is_floating_point:
                held.lerp_(value, 1 - keep)
                value.copy_(held)

    loss_fn = nn.CrossEntropyLoss(label_smoothing=0.2, reduction="none")

    def translate(images: Any, pad: int = 2) -> Any:
        padded = F.pad(images, (pad,) * 4, "reflect")
        shifts = torch.randint(-pad, pad + 1, (len(images), 2))
        out = torch.empty_like(images)
        for dy in range(-pad, pad + 1):
            for dx in range(-pad, pad + 1):
                mask = (shifts[:, 0] == dy) & (shifts[:, 1] == dx)
                out[mask] = padded[
                    mask, :, pad + dy : pad + dy + 32, pad + dx : pad + dx + 32
                ]
        return out

    # Alternating flips: a random half mirrored once, everything mirrored in odd epochs.
    flipped = torch.rand(size) < 0.5
    base = torch.where(flipped.view(-1, 1, 1, 1), xtr_n.flip(-1), xtr_n)

    def accuracy(views: int) -> float:
        net.eval()
        outputs = []
        with torch.no_grad():
            for start in range(0, len(xva_n), 1000):
                x = xva_n[start : start + 1000]
                if views == 0:
                    logits = net(x)
                else:
                    logits = 0.5 * net(x) + 0.5 * net(x.flip(-1))
                    if views == 2:
                        padded = F.pad(x, (1,) * 4, "reflect")
                        shifted = [padded[:, :, 0:32, 0:32], padded[:, :, 2:34, 2:34]]
                        moved = [0.5 * net(z) + 0.5 * net(z.flip(-1)) for z in shifted]
                        logits = 0.5 * logits + 0.5 * torch.stack(moved).mean(0)
                outputs.append(logits)
        net.train()
        return float((torch.cat(outputs).argmax(1) == yva_t).float().mean())

    load_begin = list(os.getloadavg())
    step, start, history = 0, time.time(), []
    for epoch in range(math.ceil(args.epochs)):
        net.whiten.bias.requires_grad = epoch < 3
        images = translate(base)
        if epoch % 2 == 1:
            images = images.flip(-1)
        order = torch.randperm(size)
        net.train()
        correct = seen = 0
        for index in range(steps_per_epoch):
            rows = order[index * batch : (index + 1) * batch]
            outputs = net(images[rows])
            loss = loss_fn(outputs.float(), ytr_t[rows]).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            scheduler.step()
            correct += int((outputs.argmax(1) == ytr_t[rows]).sum())
            seen += len(rows)
            step += 1
            if step % 5 == 0:
                lookahead(float(alpha[step]))
            if step >= total:
                lookahead(1.0)
                break
        row = {
            "epoch": epoch + 1,
            "train_accuracy": correct / seen,
            "val_accuracy": accuracy(0),
            "elapsed": round(time.time() - start, 1),
            "load_average": round(os.getloadavg()[0], 2),
        }
        history.append(row)
        print(json.dumps(row), flush=True)
        if step >= total:
            break
    result = {
        "settings": vars(args) | {"split": Path(args.split).name},
        "train_images": size,
        "validation_images": len(xva_n),
        "val_accuracy": {
            "none": accuracy(0),
            "flip": accuracy(1),
            "flip_translate": accuracy(2),
        },
        "seconds": round(time.time() - start, 1),
        "history": history,
        "cpu_model": _cpu_model(),
        "torch": torch.__version__,
        "load_average_begin": load_begin,
        "load_average_end": list(os.getloadavg()),
        "command": "python benchmarks/airbench_torch.py " + " ".join(sys.argv[1:]),
    }
    result["settings"].pop("output", None)
    print(json.dumps(result["val_accuracy"]))
    if args.output is not None:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
