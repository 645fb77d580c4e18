"""Check a folder of images before training: what is broken, skipped, missing, skewed."""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from kerasimgcls._io import write_json_atomic
from kerasimgcls._validation import (
    check_path_exists,
    check_positive_int,
    check_scalar,
    printable,
)
from kerasimgcls.data._files import (
    decode_file,
    decode_many,
    default_workers,
    scan_folder,
)

__all__ = ["ImageFolderReport", "check_image_folder"]


@dataclass(frozen=True)
class ImageFolderReport:
    """What :func:`check_image_folder` found in a folder of images.

    Problems (``report.ok`` is ``False``, ``kerasimgcls doctor`` exits with 1):
    files that cannot be decoded, empty class folders, no image at all. Warnings
    (reported, not problems): class imbalance, files skipped for their extension,
    mixed image sizes.

    Attributes:
        root: The folder checked.
        class_names: Class folder names, in label order.
        class_counts: Decodable images per class, per split (``"train"``, and
            ``"test"``/``"validation"`` for a split layout).
        bad_files: ``{"path": ..., "reason": ...}`` for each file that cannot be
            decoded (truncated JPEG, text renamed ``.jpg``, empty file, ...).
        skipped_files: Paths ignored for their extension or as hidden files
            (``.DS_Store``, ``notes.txt``, ...).
        empty_classes: Class folders with no image file (``"train/cat"``).
        image_sizes: ``"HEIGHTxWIDTH"`` -> number of images, most common first.
        color_modes: Pillow mode (``"RGB"``, ``"L"``, ``"RGBA"``, ``"P"``, ...) ->
            number of images.
        file_formats: ``"JPEG"``, ``"PNG"``, ... -> number of images.
        imbalance_ratio: Largest over smallest training class count (non-empty
            classes), or ``None``.
        suggested_class_weights: ``n / (num_classes * count)`` per training class
            (scikit-learn's ``"balanced"``), for ``Trainer(class_weight=...)``.
        warnings: Human-readable warnings.
        problems: Human-readable problems.

    Example:
        >>> from kerasimgcls import check_image_folder
        >>> report = check_image_folder("pets/")  # doctest: +SKIP
        >>> print(report)  # doctest: +SKIP
        >>> report.save("pets-report.json")  # doctest: +SKIP
    """

    root: str
    class_names: tuple[str, ...]
    class_counts: dict[str, dict[str, int]]
    bad_files: tuple[dict[str, str], ...]
    skipped_files: tuple[str, ...]
    empty_classes: tuple[str, ...]
    image_sizes: dict[str, int]
    color_modes: dict[str, int]
    file_formats: dict[str, int]
    imbalance_ratio: float | None
    suggested_class_weights: dict[str, float]
    warnings: tuple[str, ...] = field(default=())
    problems: tuple[str, ...] = field(default=())

    @property
    def ok(self) -> bool:
        """``True`` if nothing needs fixing (warnings allowed)."""
        return not self.problems

    @property
    def num_images(self) -> int:
        """Number of decodable images in every split."""
        return sum(sum(counts.values()) for counts in self.class_counts.values())

    def to_dict(self) -> dict[str, Any]:
        """Return the report as a JSON-ready dict."""
        return {
            "root": self.root,
            "ok": self.ok,
            "num_images": self.num_images,
            "class_names": list(self.class_names),
            "class_counts": self.class_counts,
            "bad_files": list(self.bad_files),
            "skipped_files": list(self.skipped_files),
            "empty_classes": list(self.empty_classes),
            "image_sizes": self.image_sizes,
            "color_modes": self.color_modes,
            "file_formats": self.file_formats,
            "imbalance_ratio": self.imbalance_ratio,
            "suggested_class_weights": self.suggested_class_weights,
            "warnings": list(self.warnings),
            "problems": list(self.problems),
        }

    def to_json(self) -> str:
        """Return the report as indented JSON text."""
        return json.dumps(self.to_dict(), indent=2)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the report as JSON to ``path`` atomically; return the path."""
        return write_json_atomic(path, self.to_dict())

    def __str__(self) -> str:
        lines = [f"Image folder: {self.root}"]
        lines.append(
            f"  {self.num_images} decodable images, {len(self.class_names)} classes"
        )
        for split, counts in self.class_counts.items():
            lines.append(f"  {split}:")
            width = max((len(name) for name in counts), default=0)
            for name, count in counts.items():
                lines.append(f"    {name:<{width}}  {count:>7}")
        lines.append(f"  sizes (HxW): {_top(self.image_sizes)}")
        lines.append(f"  colour modes: {_top(self.color_modes)}")
        lines.append(f"  formats: {_top(self.file_formats)}")
        if self.imbalance_ratio is not None:
            lines.append(
                f"  imbalance (largest/smallest class): {self.imbalance_ratio:.2f}"
            )
        if self.bad_files:
            lines.append(f"  files that cannot be decoded ({len(self.bad_files)}):")
            lines.extend(f"    {b['path']}: {b['reason']}" for b in self.bad_files)
        if self.skipped_files:
            lines.append(f"  skipped for their extension ({len(self.skipped_files)}):")
            lines.extend(f"    {p}" for p in self.skipped_files[:20])
            if len(self.skipped_files) > 20:
                lines.append(f"    ... and {len(self.skipped_files) - 20} more")
        lines.extend(f"  warning: {w}" for w in self.warnings)
        lines.extend(f"  PROBLEM: {p}" for p in self.problems)
        lines.append("  OK" if self.ok else f"  {len(self.problems)} problem(s) found")
        # File and class names come from disk: a newline in one would forge a
        # line of the report, an escape code would clear the screen.
        return "\n".join(printable(line) for line in lines)


def _top(counts: dict[str, int], limit: int = 5) -> str:
    shown = [f"{key} ({value})" for key, value in list(counts.items())[:limit]]
    if len(counts) > limit:
        shown.append(f"... {len(counts) - limit} more")
    return ", ".join(shown) or "-"


def check_image_folder(
    path: str | os.PathLike[str],
    *,
    imbalance_threshold: float = 1.5,
    workers: int | None = None,
) -> ImageFolderReport:
    """Decode every image of a class-folder dataset once and report what is wrong.

    Reads the layouts :func:`load_image_folder` reads (``path/<class>/*``, or
    ``path/train/<class>/*`` with optional ``test/`` and ``validation/``). Files are
    only read, never moved or deleted. Unlike Keras'
    ``image_dataset_from_directory``, which fails in the middle of an epoch
    without naming the file, this lists every bad file with its path and reason.

    Args:
        path: The folder.
        imbalance_threshold: Warn when the largest training class has more than
            this many times the images of the smallest (must be >= 1).
        workers: Decoding threads; default: two per CPU core (at most 16).

    Returns:
        The report; ``print(report)`` for people, ``report.save(path)`` for JSON.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        NotADirectoryError: If ``path`` is not a folder.
        ValueError: If ``path`` has no class sub-folders or
            ``imbalance_threshold`` is below 1.
        TypeError: If ``imbalance_threshold`` is not a number.

    Example:
        >>> from kerasimgcls import check_image_folder
        >>> report = check_image_folder("pets/")  # doctest: +SKIP
        >>> report.ok, report.bad_files  # doctest: +SKIP
        (False, ({'path': 'pets/cat/0042.jpg', 'reason': 'image file is truncated'},))
    """
    from kerasimgcls.data._image_folder import split_layout

    root = check_path_exists(path, "path", kind="dir")
    imbalance_threshold = check_scalar(
        imbalance_threshold, "imbalance_threshold", min_val=1, expected="a number >= 1"
    )
    threads = (
        default_workers() if workers is None else check_positive_int(workers, "workers")
    )
    layout = split_layout(root) or {"train": root}
    train_scan = scan_folder(layout["train"])
    names = train_scan.class_names
    scans = {"train": train_scan}
    for split in ("validation", "test"):
        if split in layout:
            scans[split] = scan_folder(layout[split])
    return _build_report(root, names, scans, threads, float(imbalance_threshold))


def _build_report(
    root: Path,
    names: tuple[str, ...],
    scans: dict[str, Any],
    workers: int,
    imbalance_threshold: float,
) -> ImageFolderReport:
    class_counts: dict[str, dict[str, int]] = {}
    bad: list[dict[str, str]] = []
    skipped: list[str] = []
    empty: list[str] = []
    sizes: Counter[str] = Counter()
    modes: Counter[str] = Counter()
    formats: Counter[str] = Counter()
    prefix_splits = len(scans) > 1 or scans["train"].root != root
    for split, scan in scans.items():
        counts = dict.fromkeys(scan.class_names, 0)
        results = decode_many(scan.files, decode_file, workers=workers)
        for file, label, result in zip(
            scan.files, scan.labels.tolist(), results, strict=True
        ):
            if result.image is None:
                bad.append({"path": file, "reason": str(result.error)})
                continue
            counts[scan.class_names[label]] += 1
            height, width = result.original_size or (0, 0)
            sizes[f"{height}x{width}"] += 1
            modes[str(result.original_mode)] += 1
            formats[str(result.file_format)] += 1
        class_counts[split] = counts
        skipped.extend(scan.skipped)
        prefix = f"{split}/" if prefix_splits else ""
        empty.extend(f"{prefix}{name}" for name in scan.empty_classes)
        for name in scan.class_names:
            if name not in scan.empty_classes and counts[name] == 0:
                empty.append(f"{prefix}{name} (no decodable image)")
    ratio, weights = _balance(class_counts["train"])
    problems = _problems(bad, empty, class_counts)
    warnings = _warnings(
        class_counts["train"], ratio, imbalance_threshold, skipped, sizes
    )
    unknown = [s for s in scans if set(scans[s].class_names) - set(names)]
    if unknown:
        warnings.append(f"split(s) {unknown} have class folders that train/ lacks")
    return ImageFolderReport(
        root=str(root),
        class_names=names,
        class_counts=class_counts,
        bad_files=tuple(bad),
        skipped_files=tuple(skipped),
        empty_classes=tuple(empty),
        image_sizes=dict(sizes.most_common()),
        color_modes=dict(modes.most_common()),
        file_formats=dict(formats.most_common()),
        imbalance_ratio=ratio,
        suggested_class_weights=weights,
        warnings=tuple(warnings),
        problems=tuple(problems),
    )


def _problems(
    bad: list[dict[str, str]],
    empty: list[str],
    class_counts: dict[str, dict[str, int]],
) -> list[str]:
    """What must be fixed before training: bad files, empty classes, no image."""
    problems: list[str] = []
    if bad:
        problems.append(
            f"{len(bad)} file(s) cannot be decoded; fix or remove them, or load with "
            "on_error='skip'"
        )
    if empty:
        problems.append(f"empty class folder(s): {', '.join(empty)}")
    if not any(sum(c.values()) for c in class_counts.values()):
        problems.append("no decodable image at all")
    return problems


def _warnings(
    train_counts: dict[str, int],
    ratio: float | None,
    imbalance_threshold: float,
    skipped: list[str],
    sizes: Counter[str],
) -> list[str]:
    """What training copes with but the user should know: imbalance, skips, sizes."""
    warnings: list[str] = []
    if ratio is not None and ratio > imbalance_threshold:
        smallest = min((n for n in train_counts.values() if n), default=0)
        largest = max(train_counts.values(), default=0)
        warnings.append(
            f"classes are imbalanced: the largest has {largest} images, the smallest "
            f"{smallest} ({ratio:.2f}x); consider class_weight='balanced' (suggested "
            "weights are in the report)"
        )
    if skipped:
        warnings.append(
            f"{len(skipped)} file(s) skipped for their extension or as hidden files"
        )
    if len(sizes) > 1:
        warnings.append(
            f"images come in {len(sizes)} sizes; pass image_size=(height, width) to "
            "load_image_folder to resize them (choose_image_size(path) picks one "
            "from the folder)"
        )
    return warnings


def _balance(counts: dict[str, int]) -> tuple[float | None, dict[str, float]]:
    present = {name: n for name, n in counts.items() if n > 0}
    if not present:
        return None, {}
    from sklearn.utils.class_weight import compute_class_weight

    labels = np.repeat(np.arange(len(present)), list(present.values()))
    weights = compute_class_weight(
        "balanced", classes=np.arange(len(present)), y=labels
    )
    ratio = max(present.values()) / min(present.values())
    suggested = {
        name: round(float(w), 6) for name, w in zip(present, weights, strict=True)
    }
    return round(ratio, 6), suggested
