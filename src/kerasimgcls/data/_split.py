"""Seeded, stratified, disjoint splits."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from kerasimgcls._validation import check_rate, check_seed
from kerasimgcls.data._dataset import Split

__all__ = ["stratified_indices", "train_validation_split"]


def stratified_indices(
    labels: NDArray[np.int64], fraction: float, seed: int
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Return ``(keep, held_out)`` index arrays; ``held_out`` is ``fraction`` per class.

    Each class contributes ``round(fraction * count)`` images to the held-out part
    (at least one when the class has two or more and ``fraction > 0``). The result
    depends only on the labels, ``fraction`` and ``seed``; both parts are sorted.
    """
    rng = np.random.default_rng(check_seed(seed, "seed"))
    held: list[NDArray[np.int64]] = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        count = round(fraction * members.size)
        if fraction > 0 and count == 0 and members.size > 1:
            count = 1
        count = min(count, members.size - 1) if members.size > 1 else 0
        held.append(rng.permutation(members)[:count])
    held_out = np.sort(np.concatenate(held)) if held else np.array([], np.int64)
    mask = np.ones(labels.shape[0], dtype=bool)
    mask[held_out] = False
    return np.flatnonzero(mask).astype(np.int64), held_out.astype(np.int64)


def train_validation_split(
    split: Split, validation_split: float, seed: int
) -> tuple[Split, Split | None]:
    """Carve a stratified validation split out of ``split``.

    Returns:
        ``(train, validation)``; ``validation`` is ``None`` when
        ``validation_split`` is 0.

    Raises:
        ValueError: If ``validation_split`` is outside ``[0, 1)``.
    """
    validation_split = check_rate(validation_split, "validation_split")
    if validation_split == 0.0:
        return split, None
    keep, held_out = stratified_indices(split.labels, validation_split, seed)
    return split.subset(keep), split.subset(held_out)
