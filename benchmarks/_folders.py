"""The own-folder benchmark's folders: seeded, drawn by code, each with held-out images.

Every folder is written as ``ROOT/NAME/train/CLASS/*.png`` (what the user trains on)
and ``ROOT/NAME/heldout/CLASS/*.png`` (images drawn the same way, never seen in
training, scored only once at the end). The folders are fixed before any tuning:
their generators, seeds and sizes below are the benchmark, and ``KEPT_OUT`` names
the one that no tuning run may look at.

Not part of the library: ``benchmarks/own_folders.py`` imports it as a sibling
module.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

Draw = Callable[[int, np.random.Generator], Image.Image]

#: The folder measured only at the end, never in a tuning run.
KEPT_OUT = "clutter"

SHARED_CIFAR = Path(__file__).resolve().parents[2] / "shared" / "data" / "cifar10-jpg"


@dataclass(frozen=True)
class Folder:
    """One benchmark folder: how it is drawn and how many images it has."""

    name: str
    description: str
    classes: tuple[str, ...]
    train_per_class: int
    heldout_per_class: int
    seed: int
    draw: Draw | None = None  # None: drawn from the CIFAR-10 JPEGs

    def write(self, root: Path) -> Path:
        """Write ``root/name/{train,heldout}`` (once) and return ``root/name``."""
        folder = root / self.name
        if (folder / "complete").is_file():
            return folder
        if self.draw is None:
            _write_cifar(self, folder)
        else:
            for split, per_class, seed in (
                ("train", self.train_per_class, self.seed),
                ("heldout", self.heldout_per_class, self.seed + 1000),
            ):
                rng = np.random.default_rng(seed)
                for label, name in enumerate(self.classes):
                    target = folder / split / name
                    target.mkdir(parents=True, exist_ok=True)
                    for index in range(per_class):
                        self.draw(label, rng).save(target / f"{index:04d}.png")
        (folder / "complete").write_text("")
        return folder


def _write_cifar(spec: Folder, folder: Path) -> None:
    """A per-class subset of the CIFAR-10 JPEGs; held-out images are others."""
    rng = np.random.default_rng(spec.seed)
    for name in spec.classes:
        files = sorted((SHARED_CIFAR / "train" / name).glob("*.jpg"))
        chosen = rng.permutation(len(files))
        train = chosen[: spec.train_per_class]
        heldout = chosen[
            spec.train_per_class : spec.train_per_class + spec.heldout_per_class
        ]
        for split, indexes in (("train", train), ("heldout", heldout)):
            target = folder / split / name
            target.mkdir(parents=True, exist_ok=True)
            for index in indexes:
                (target / files[index].name).write_bytes(files[index].read_bytes())


def _colour(rng: np.random.Generator, low: int = 0, high: int = 256) -> tuple[int, ...]:
    return tuple(int(value) for value in rng.integers(low, high, 3))


def _noise(size: tuple[int, int], rng: np.random.Generator, scale: float) -> np.ndarray:
    return rng.normal(0.0, scale, (size[1], size[0], 3))


def _finish(image: Image.Image, rng: np.random.Generator, noise: float) -> Image.Image:
    pixels = np.asarray(image, np.float64) + _noise(image.size, rng, noise)
    return Image.fromarray(pixels.clip(0, 255).astype(np.uint8))


# --- textures: the class is the pattern, whatever its colours and scale ----------

TEXTURES = ("stripes", "checks", "dots", "waves", "grid", "speckle")


def draw_texture(label: int, rng: np.random.Generator) -> Image.Image:
    size = 48
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    angle = rng.uniform(0, math.pi)
    period = rng.uniform(5, 12)
    u = x * math.cos(angle) + y * math.sin(angle) + rng.uniform(0, period)
    v = -x * math.sin(angle) + y * math.cos(angle) + rng.uniform(0, period)
    kind = TEXTURES[label]
    if kind == "stripes":
        mask = (u % period) < period / 2
    elif kind == "checks":
        mask = ((u // (period / 2)) + (v // (period / 2))) % 2 == 0
    elif kind == "dots":
        mask = ((u % period) - period / 2) ** 2 + ((v % period) - period / 2) ** 2 < (
            period / 4
        ) ** 2
    elif kind == "waves":
        mask = ((u + 2.5 * np.sin(v * 2 * math.pi / period)) % period) < period / 2
    elif kind == "grid":
        mask = ((u % period) < 1.5) | ((v % period) < 1.5)
    else:  # speckle: random blobs, no period
        mask = rng.random((size, size)) < 0.3
    front, back = np.array(_colour(rng)), np.array(_colour(rng))
    pixels = np.where(mask[..., None], front, back).astype(np.float64)
    return _finish(Image.fromarray(pixels.astype(np.uint8)), rng, 12.0)


# --- colour: the class is the hue of the largest blob, among distractors ---------

HUES = ("red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink")
_HUE_RGB = {
    "red": (220, 30, 30),
    "orange": (240, 140, 20),
    "yellow": (230, 220, 40),
    "green": (40, 180, 50),
    "cyan": (40, 210, 220),
    "blue": (30, 50, 220),
    "purple": (130, 40, 190),
    "pink": (240, 130, 190),
}


def draw_colour(label: int, rng: np.random.Generator) -> Image.Image:
    size = 32
    image = Image.new("RGB", (size, size), _colour(rng, 60, 200))
    draw = ImageDraw.Draw(image)
    others = [hue for hue in HUES if hue != HUES[label]]
    for _ in range(3):  # small distractors of other hues
        hue = others[int(rng.integers(len(others)))]
        x, y = rng.integers(0, size - 6, 2)
        draw.ellipse([int(x), int(y), int(x) + 5, int(y) + 5], fill=_HUE_RGB[hue])
    radius = int(rng.integers(7, 11))
    cx, cy = rng.integers(radius, size - radius, 2)
    jitter = rng.integers(-25, 26, 3)
    fill = tuple(
        int(v) for v in np.clip(np.array(_HUE_RGB[HUES[label]]) + jitter, 0, 255)
    )
    draw.ellipse([int(cx) - radius, int(cy) - radius, int(cx) + radius, int(cy) + radius],
                 fill=fill)  # fmt: skip
    return _finish(image, rng, 10.0)


# --- clutter: where the one square is, among circles and lines ------------------

QUADRANTS = ("top_left", "top_right", "bottom_left", "bottom_right")


def draw_clutter(label: int, rng: np.random.Generator) -> Image.Image:
    size = 64
    image = Image.new("RGB", (size, size), _colour(rng, 0, 120))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(4, 9))):  # clutter: circles and lines
        x, y = (int(v) for v in rng.integers(0, size, 2))
        r = int(rng.integers(3, 8))
        if rng.random() < 0.5:
            draw.ellipse(
                [x - r, y - r, x + r, y + r], outline=_colour(rng, 120), width=2
            )
        else:
            x2, y2 = (int(v) for v in rng.integers(0, size, 2))
            draw.line([x, y, x2, y2], fill=_colour(rng, 120), width=2)
    side = int(rng.integers(8, 14))
    half = size // 2
    left = (label % 2) * half + int(rng.integers(2, half - side - 2))
    top = (label // 2) * half + int(rng.integers(2, half - side - 2))
    draw.rectangle([left, top, left + side, top + side], fill=_colour(rng, 150))
    return _finish(image, rng, 8.0)


# --- shapes of mixed sizes and aspect ratios ------------------------------------

SHAPES = ("circle", "triangle", "square", "cross", "star")


def draw_mixed_shape(label: int, rng: np.random.Generator) -> Image.Image:
    width = int(rng.integers(40, 161))
    aspect = float(np.exp(rng.uniform(math.log(0.6), math.log(1.7))))
    height = int(np.clip(round(width * aspect), 32, 200))
    image = Image.new("RGB", (width, height), _colour(rng, 0, 110))
    draw = ImageDraw.Draw(image)
    extent = min(width, height)
    radius = rng.uniform(0.25, 0.4) * extent
    cx = rng.uniform(radius, width - radius)
    cy = rng.uniform(radius, height - radius)
    fill = _colour(rng, 140)
    kind = SHAPES[label]
    if kind == "circle":
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=fill)
    elif kind == "square":
        draw.rectangle([cx - radius, cy - radius, cx + radius, cy + radius], fill=fill)
    elif kind == "triangle":
        draw.polygon([(cx, cy - radius), (cx - radius, cy + radius),
                      (cx + radius, cy + radius)], fill=fill)  # fmt: skip
    elif kind == "cross":
        bar = radius / 3
        draw.rectangle([cx - radius, cy - bar, cx + radius, cy + bar], fill=fill)
        draw.rectangle([cx - bar, cy - radius, cx + bar, cy + radius], fill=fill)
    else:
        points = [
            (
                cx
                + (radius if k % 2 == 0 else radius / 2.3) * math.cos(k * math.pi / 5),
                cy
                + (radius if k % 2 == 0 else radius / 2.3) * math.sin(k * math.pi / 5),
            )
            for k in range(10)
        ]
        draw.polygon(points, fill=fill)
    return _finish(image, rng, 10.0)


# --- counting: how many dots (2-20 classes: here 12) ----------------------------

COUNTS = tuple(f"n{count:02d}" for count in range(1, 13))


def draw_count(label: int, rng: np.random.Generator) -> Image.Image:
    size = 40
    image = Image.new("RGB", (size, size), _colour(rng, 0, 100))
    draw = ImageDraw.Draw(image)
    colour = _colour(rng, 150)
    placed: list[tuple[int, int]] = []
    while len(placed) < label + 1:
        x, y = (int(v) for v in rng.integers(3, size - 3, 2))
        if all((x - px) ** 2 + (y - py) ** 2 >= 36 for px, py in placed):
            placed.append((x, y))
            draw.ellipse([x - 2, y - 2, x + 2, y + 2], fill=colour)
    return _finish(image, rng, 6.0)


def draw_digit_factory() -> Draw:
    """The 8x8 digits of scikit-learn, drawn in order from a seeded permutation."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    by_label = {
        label: list(np.flatnonzero(digits.target == label)) for label in range(10)
    }

    def draw(label: int, rng: np.random.Generator) -> Image.Image:
        pool = by_label[label]
        index = pool.pop(int(rng.integers(len(pool))))
        pixels = (digits.images[index] * 16).clip(0, 255).astype(np.uint8)
        return Image.fromarray(pixels, "L")

    return draw


CIFAR_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip


def folders(*, with_cifar: bool) -> Iterator[Folder]:
    """Every benchmark folder, in the order they are run (CIFAR ones when present)."""
    if with_cifar:
        yield Folder("cifar100", "CIFAR-10 JPEGs, 100 per class", CIFAR_CLASSES,
                     100, 100, seed=1)  # fmt: skip
        yield Folder("cifar500", "CIFAR-10 JPEGs, 500 per class", CIFAR_CLASSES,
                     500, 200, seed=2)  # fmt: skip
    yield Folder("digits", "scikit-learn's 8x8 digits, grey", tuple(str(d) for d in range(10)),
                 120, 50, seed=3, draw=draw_digit_factory())  # fmt: skip
    yield Folder("textures", "6 textures, 48x48, any colours, scale and angle",
                 TEXTURES, 60, 40, seed=4, draw=draw_texture)  # fmt: skip
    yield Folder("colour", "8 hues of the largest blob among distractors, 32x32",
                 HUES, 40, 30, seed=5, draw=draw_colour)  # fmt: skip
    yield Folder("mixed_shapes", "5 shapes, 40-160 px wide, aspect 0.6-1.7",
                 SHAPES, 50, 30, seed=6, draw=draw_mixed_shape)  # fmt: skip
    yield Folder("counting", "1 to 12 dots, 40x40 (12 classes)", COUNTS, 40, 25,
                 seed=7, draw=draw_count)  # fmt: skip
    yield Folder(KEPT_OUT, "the square's quadrant among circles and lines, 64x64",
                 QUADRANTS, 40, 50, seed=8, draw=draw_clutter)  # fmt: skip
