"""Pictures a person would rather look at than read, written as image files.

Every function draws on its own :class:`matplotlib.figure.Figure` (never
``pyplot``, so nothing opens a window and no global state leaks between calls),
writes the file atomically and returns its path. The format follows the file's
suffix (``.png`` unless you ask for another one matplotlib knows). Learning
curves are drawn by :meth:`History.plot`.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from matplotlib.figure import Figure
from numpy.typing import ArrayLike, NDArray

from kerasimgcls._io import atomic_path
from kerasimgcls._validation import (
    check_choice,
    check_finite,
    check_labels,
    check_positive_int,
    resolve_class_names,
)
from kerasimgcls.data._dataset import Split

if TYPE_CHECKING:
    from matplotlib.axes import Axes

__all__ = [
    "plot_confusion_matrix",
    "plot_embeddings",
    "plot_grad_cam",
    "plot_learning_rate_finder",
    "plot_samples",
    "plot_similar_images",
    "plot_top_losses",
]


# What the drawing functions read from the results of grad_cam, similar_images and
# find_learning_rate. plots depends on nothing above it (interpret and lr_finder
# import plots), so it names the attributes it needs, not those classes.
class _GradCamLike(Protocol):
    @property
    def image(self) -> NDArray[np.uint8]: ...
    @property
    def heatmap(self) -> NDArray[np.float32]: ...
    @property
    def overlay(self) -> NDArray[np.uint8]: ...
    @property
    def class_name(self) -> str: ...
    @property
    def probability(self) -> float: ...
    @property
    def layer_name(self) -> str: ...
    @property
    def method(self) -> str: ...


class _SimilarImagesLike(Protocol):
    @property
    def query(self) -> NDArray[np.uint8]: ...
    @property
    def indices(self) -> NDArray[np.int64]: ...
    @property
    def similarities(self) -> NDArray[np.float32]: ...
    @property
    def images(self) -> NDArray[np.uint8]: ...
    @property
    def labels(self) -> NDArray[np.int64] | None: ...


class _LearningRateCurveLike(Protocol):
    @property
    def learning_rates(self) -> NDArray[np.float64]: ...
    @property
    def losses(self) -> NDArray[np.float64]: ...
    @property
    def smoothed_losses(self) -> NDArray[np.float64]: ...
    @property
    def suggestion(self) -> float: ...


_DPI = 100


def _save_figure(figure: Figure, path: str | os.PathLike[str]) -> Path:
    final = Path(path)
    suffix = final.suffix.lower().lstrip(".") or "png"
    supported = figure.canvas.get_supported_filetypes()
    if suffix not in supported:
        raise ValueError(
            f"path must end in an image suffix matplotlib can write, such as .png; "
            f"received {str(final)!r} (supported: {sorted(supported)})"
        )
    with atomic_path(final) as tmp:
        figure.savefig(tmp, format=suffix, dpi=_DPI, bbox_inches="tight")
    return final


def _check_counts(confusion_matrix: ArrayLike) -> NDArray[np.int64]:
    """``confusion_matrix`` as int64 counts, square, finite and non-negative."""
    matrix = np.asarray(confusion_matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.size == 0:
        raise ValueError(
            "confusion_matrix must be a square 2-D array of counts; "
            f"received shape {matrix.shape}"
        )
    check_finite(matrix, "confusion_matrix")
    if np.any(matrix < 0) or np.any(matrix != np.round(matrix)):
        raise ValueError(
            "confusion_matrix must hold non-negative counts, whole numbers"
        )
    return matrix.astype(np.int64)


def _show_image(axes: Axes, image: NDArray[Any], title: str | None = None) -> None:
    array = np.asarray(image)
    if array.ndim == 3 and array.shape[-1] == 1:
        axes.imshow(array[..., 0], cmap="gray", vmin=0, vmax=255)
    else:
        axes.imshow(array, vmin=0, vmax=255)
    axes.set_xticks([])
    axes.set_yticks([])
    if title is not None:
        axes.set_title(title, fontsize=8)


def _grid(count: int, columns: int) -> tuple[int, int]:
    columns = max(1, min(columns, count))
    return math.ceil(count / columns), columns


def _check_probabilities(
    probabilities: ArrayLike, num_samples: int
) -> NDArray[np.float64]:
    array = np.asarray(probabilities, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] != num_samples:
        raise ValueError(
            f"probabilities must have shape ({num_samples}, num_classes), one row "
            f"per image; received shape {array.shape}"
        )
    return array


def plot_confusion_matrix(
    confusion_matrix: ArrayLike,
    path: str | os.PathLike[str],
    *,
    class_names: Sequence[str] | None = None,
    title: str | None = None,
) -> Path:
    """Draw a confusion matrix twice: counts, and normalised by row (recall).

    Rows are the true classes, columns the predicted ones, as in
    :func:`sklearn.metrics.confusion_matrix`.

    Args:
        confusion_matrix: Square array of counts, shape ``(num_classes, num_classes)``.
        path: The image file to write (``.png``).
        class_names: Axis labels, one per class (default: the class indices).
        title: A title above both panels.

    Returns:
        The path written.

    Raises:
        ValueError: If the matrix is not square and non-negative, or
            ``class_names`` has the wrong length.

    Example:
        >>> import tempfile
        >>> from kerasimgcls.analysis.plots import plot_confusion_matrix
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = plot_confusion_matrix([[5, 1], [2, 4]], f"{tmp}/cm.png",
        ...                                  class_names=["cat", "dog"])
        ...     path.name
        'cm.png'
    """
    matrix = _check_counts(confusion_matrix)
    names = resolve_class_names(class_names, matrix.shape[0])
    totals = matrix.sum(axis=1, keepdims=True)
    normalised = np.divide(
        matrix, totals, out=np.zeros(matrix.shape, dtype=np.float64), where=totals > 0
    )
    # Grow with the number of classes, but keep 100 classes (CIFAR-100) drawable.
    size = min(max(4.0, 0.45 * len(names) + 2.0), 20.0)
    tick_size = 8 if len(names) <= 30 else 5
    figure = Figure(figsize=(2 * size + 1.5, size))
    panels = (
        (matrix, "counts", "d"),
        (normalised, "normalised by true class", ".2f"),
    )
    for position, (values, subtitle, fmt) in enumerate(panels, start=1):
        axes = figure.add_subplot(1, 2, position)
        image = axes.imshow(values, cmap="Blues", vmin=0)
        figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04)
        ticks = np.arange(len(names))
        axes.set_xticks(
            ticks,
            labels=names,
            rotation=90 if len(names) > 6 else 0,
            fontsize=tick_size,
        )
        axes.set_yticks(ticks, labels=names, fontsize=tick_size)
        axes.set_xlabel("predicted")
        axes.set_ylabel("true")
        axes.set_title(subtitle)
        if len(names) <= 20:
            threshold = float(values.max()) / 2 if values.max() > 0 else 0.5
            for row, column in np.ndindex(values.shape):
                value = values[row, column]
                axes.text(
                    column,
                    row,
                    format(value, fmt),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if value > threshold else "black",
                )
    if title:
        figure.suptitle(title)
    return _save_figure(figure, path)


def plot_top_losses(
    split: Split,
    probabilities: ArrayLike,
    path: str | os.PathLike[str],
    *,
    k: int = 9,
    class_names: Sequence[str] | None = None,
    misclassified_only: bool = True,
) -> Path:
    """Draw the ``k`` images with the highest loss, with predicted and true class.

    The loss of an image is the cross-entropy ``-log p(true class)``. Each tile is
    titled ``predicted / true`` with the predicted class's probability and the
    loss, as fastai's ``plot_top_losses`` does.

    Args:
        split: The images and their true labels.
        probabilities: Predicted class probabilities, shape ``(len(split),
            num_classes)``, such as :func:`~kerasimgcls.predict_proba` returns.
        path: The image file to write (``.png``).
        k: How many images to show (fewer if fewer qualify).
        class_names: One name per class (default: the class indices).
        misclassified_only: Show only images whose predicted class is wrong.

    Returns:
        The path written.

    Raises:
        TypeError: If ``split`` is not a :class:`~kerasimgcls.Split`.
        ValueError: If ``probabilities`` does not match ``split`` or ``k`` is not
            positive.

    Example:
        >>> import tempfile
        >>> import numpy as np
        >>> from kerasimgcls import Split
        >>> from kerasimgcls.analysis.plots import plot_top_losses
        >>> split = Split(np.zeros((2, 8, 8, 1), np.uint8), np.array([0, 1]))
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = plot_top_losses(split, [[0.9, 0.1], [0.8, 0.2]],
        ...                            f"{tmp}/losses.png")
    """
    _check_split(split)
    probs = _check_probabilities(probabilities, len(split))
    k = check_positive_int(k, "k")
    names = resolve_class_names(class_names, probs.shape[1])
    labels = check_labels(split.labels, probs.shape[1], "split.labels")
    predicted = probs.argmax(axis=1)
    losses = -np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, 1.0))
    candidates = np.argsort(-losses, kind="stable")
    if misclassified_only:
        candidates = candidates[predicted[candidates] != labels[candidates]]
    chosen = candidates[:k]
    rows, columns = _grid(max(len(chosen), 1), math.ceil(math.sqrt(k)))
    figure = Figure(figsize=(2.4 * columns, 2.6 * rows))
    for position, index in enumerate(chosen, start=1):
        axes = figure.add_subplot(rows, columns, position)
        guess = int(predicted[index])
        title = (
            f"{names[guess]} / {names[int(labels[index])]}\n"
            f"p={probs[index, guess]:.2f} loss={losses[index]:.2f}"
        )
        _show_image(axes, split.images[index], title)
    if not len(chosen):
        axes = figure.add_subplot(1, 1, 1)
        axes.axis("off")
        axes.text(0.5, 0.5, "no misclassified images", ha="center", va="center")
    figure.suptitle("top losses: predicted / true, probability, loss")
    return _save_figure(figure, path)


def _check_split(split: object) -> None:
    if not isinstance(split, Split):
        raise TypeError(
            "split must be a kerasimgcls Split (such as data.test); "
            f"received {type(split).__name__}"
        )


def plot_samples(
    split: Split,
    path: str | os.PathLike[str],
    *,
    class_names: Sequence[str] | None = None,
    per_class: int = 8,
    seed: int = 0,
) -> Path:
    """Draw a grid of random sample images, one row per class.

    Look at the data before training on it: mislabelled classes, wrong colour
    channels or a bad resize show at a glance.

    Args:
        split: The images and labels to sample from, such as ``data.train``.
        path: The image file to write (``.png``).
        class_names: Row labels, one per class (default: the class indices; the
            number of classes is then one more than the largest label).
        per_class: Images per row (fewer if a class has fewer).
        seed: Seed of the random choice of images.

    Returns:
        The path written.

    Raises:
        TypeError: If ``split`` is not a :class:`~kerasimgcls.Split`.
        ValueError: If ``split`` is empty or ``per_class`` is not positive.

    Example:
        >>> import tempfile
        >>> from kerasimgcls import load_digits
        >>> from kerasimgcls.analysis.plots import plot_samples
        >>> data = load_digits(seed=0)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = plot_samples(data.train, f"{tmp}/samples.png",
        ...                         class_names=data.class_names, per_class=4)
    """
    _check_split(split)
    if len(split) == 0:
        raise ValueError("split is empty: there are no images to draw")
    per_class = check_positive_int(per_class, "per_class")
    num_classes = (
        len(class_names) if class_names is not None else int(split.labels.max()) + 1
    )
    names = resolve_class_names(class_names, num_classes)
    labels = check_labels(split.labels, num_classes, "split.labels")
    generator = np.random.default_rng(seed)
    figure = Figure(figsize=(1.2 * per_class + 1.2, 1.2 * num_classes))
    for row, name in enumerate(names):
        members = np.flatnonzero(labels == row)
        if len(members) > per_class:
            members = np.sort(generator.choice(members, per_class, replace=False))
        for column in range(per_class):
            axes = figure.add_subplot(
                num_classes, per_class, row * per_class + column + 1
            )
            axes.set_xticks([])
            axes.set_yticks([])
            if column < len(members):
                _show_image(axes, split.images[members[column]])
            else:
                axes.axis("off")
            if column == 0:
                axes.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=9)
    figure.suptitle(f"{per_class} random samples per class")
    return _save_figure(figure, path)


def _project(features: NDArray[np.float64], method: str, seed: int) -> NDArray[Any]:
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    if features.shape[1] < 2:
        return np.column_stack([features[:, 0], np.zeros(len(features))])
    if method == "pca":
        return np.asarray(
            PCA(n_components=2, random_state=seed).fit_transform(features)
        )
    perplexity = float(min(30.0, max(2.0, (len(features) - 1) / 3)))
    tsne = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed)
    return np.asarray(tsne.fit_transform(features))


def plot_embeddings(
    features: ArrayLike,
    labels: ArrayLike,
    path: str | os.PathLike[str],
    *,
    methods: Sequence[str] = ("pca", "tsne"),
    class_names: Sequence[str] | None = None,
    seed: int = 0,
) -> Path:
    """Draw 2-D maps of embeddings, coloured by class: PCA and/or t-SNE.

    Args:
        features: Array of shape ``(n, dim)``, such as :func:`~kerasimgcls.embeddings` returns.
        labels: The class index of each row, shape ``(n,)``.
        path: The image file to write (``.png``).
        methods: Projections to draw side by side: ``"pca"`` and/or ``"tsne"``
            (scikit-learn's :class:`~sklearn.decomposition.PCA` and
            :class:`~sklearn.manifold.TSNE`).
        class_names: Legend entries, one per class (default: the class indices).
        seed: Seed of the projections.

    Returns:
        The path written.

    Raises:
        ValueError: If ``features`` is not 2-D with at least 3 rows, ``labels``
            does not match it, or a method is unknown.

    Example:
        >>> import tempfile
        >>> import numpy as np
        >>> from kerasimgcls.analysis.plots import plot_embeddings
        >>> features = np.random.default_rng(0).normal(size=(20, 5))
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = plot_embeddings(features, np.arange(20) % 2, f"{tmp}/map.png",
        ...                            methods=["pca"])
    """
    array = np.asarray(features, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] < 3:
        raise ValueError(
            "features must be a 2-D array of shape (n, dim) with n >= 3; "
            f"received shape {array.shape}"
        )
    if isinstance(methods, str) or not methods:
        raise ValueError(
            f"methods must be a non-empty list such as ['pca', 'tsne']; "
            f"received methods={methods!r}"
        )
    for method in methods:
        check_choice(method, "methods", ("pca", "tsne"))
    raw_labels = np.asarray(labels)
    num_classes = (
        len(class_names)
        if class_names is not None
        else int(raw_labels.max()) + 1
        if raw_labels.size
        else 1
    )
    classes = check_labels(
        raw_labels, num_classes, "labels", rows=("features", len(array))
    )
    names = resolve_class_names(class_names, num_classes)
    colours = _colours(num_classes)
    figure = Figure(figsize=(5.5 * len(methods) + 1.5, 5.0))
    titles = {"pca": "PCA", "tsne": "t-SNE"}
    for position, method in enumerate(methods, start=1):
        points = _project(array, method, seed)
        axes = figure.add_subplot(1, len(methods), position)
        for index, name in enumerate(names):
            mask = classes == index
            if mask.any():
                axes.scatter(
                    points[mask, 0],
                    points[mask, 1],
                    s=8,
                    color=colours[index],
                    label=name,
                )
        axes.set_title(titles[method])
        axes.set_xticks([])
        axes.set_yticks([])
    handles, legend_labels = figure.axes[-1].get_legend_handles_labels()
    figure.legend(handles, legend_labels, loc="center right", fontsize=8, markerscale=2)
    figure.subplots_adjust(right=0.85)
    return _save_figure(figure, path)


def _colours(count: int) -> list[Any]:
    from matplotlib import colormaps

    cmap = colormaps["tab10" if count <= 10 else "tab20" if count <= 20 else "turbo"]
    if count <= 20:
        return [cmap(index % cmap.N) for index in range(count)]
    return [cmap(index / max(count - 1, 1)) for index in range(count)]


def plot_grad_cam(
    results: _GradCamLike | Sequence[_GradCamLike],
    path: str | os.PathLike[str],
    *,
    titles: Sequence[str] | None = None,
) -> Path:
    """Draw Grad-CAM results: one row per image with image, heatmap and overlay.

    Args:
        results: One or more results of :func:`~kerasimgcls.grad_cam`.
        path: The image file to write (``.png``).
        titles: A title per row (default: the explained class and its
            probability).

    Returns:
        The path written.

    Raises:
        ValueError: If ``results`` is empty or ``titles`` has the wrong length.

    Example:
        >>> import tempfile
        >>> import numpy as np
        >>> from kerasimgcls import build_cifar_cnn, grad_cam
        >>> from kerasimgcls.analysis.plots import plot_grad_cam
        >>> model = build_cifar_cnn(input_shape=(8, 8, 1), num_classes=2)
        >>> image = np.random.default_rng(0).integers(0, 256, (8, 8, 1), np.uint8)
        >>> result = grad_cam(model, image)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = plot_grad_cam(result, f"{tmp}/cam.png")
    """
    items = [results] if not isinstance(results, Sequence) else list(results)
    if not items:
        raise ValueError("results is empty: pass at least one grad_cam result")
    if titles is not None and len(titles) != len(items):
        raise ValueError(
            f"titles must have one entry per result ({len(items)}); "
            f"received {len(titles)}"
        )
    figure = Figure(figsize=(7.5, 2.6 * len(items)))
    for row, result in enumerate(items):
        label = (
            titles[row]
            if titles is not None
            else f"{result.class_name} (p={result.probability:.2f})"
        )
        axes = figure.add_subplot(len(items), 3, 3 * row + 1)
        _show_image(axes, result.image, label)
        axes = figure.add_subplot(len(items), 3, 3 * row + 2)
        axes.imshow(result.heatmap, cmap="jet", vmin=0.0, vmax=1.0)
        axes.set_xticks([])
        axes.set_yticks([])
        axes.set_title(f"{result.method} @ {result.layer_name}", fontsize=8)
        axes = figure.add_subplot(len(items), 3, 3 * row + 3)
        _show_image(axes, result.overlay, "overlay")
    return _save_figure(figure, path)


def plot_similar_images(
    result: _SimilarImagesLike,
    path: str | os.PathLike[str],
    *,
    class_names: Sequence[str] | None = None,
) -> Path:
    """Draw a query image and its nearest neighbours with their similarities.

    Args:
        result: What :func:`~kerasimgcls.similar_images` returned.
        path: The image file to write (``.png``).
        class_names: Names for the neighbours' labels, when the gallery had labels.

    Returns:
        The path written.

    Example:
        >>> import tempfile
        >>> from kerasimgcls import (build_cifar_cnn, load_digits,
        ...                          plot_similar_images, similar_images)
        >>> data = load_digits(seed=0)
        >>> model = build_cifar_cnn(input_shape=(8, 8, 1), num_classes=10)
        >>> result = similar_images(model, data.test.images[0], data.test, k=3)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = plot_similar_images(result, f"{tmp}/similar.png")
    """
    count = len(result.indices) + 1
    figure = Figure(figsize=(2.0 * count, 2.5))
    axes = figure.add_subplot(1, count, 1)
    _show_image(axes, result.query, "query")
    for position, (index, image, similarity) in enumerate(
        zip(result.indices, result.images, result.similarities, strict=True), start=2
    ):
        title = f"#{int(index)}  cos={similarity:.3f}"
        if result.labels is not None:
            label = int(result.labels[position - 2])
            name = class_names[label] if class_names is not None else str(label)
            title += f"\n{name}"
        axes = figure.add_subplot(1, count, position)
        _show_image(axes, image, title)
    return _save_figure(figure, path)


def plot_learning_rate_finder(
    result: _LearningRateCurveLike, path: str | os.PathLike[str]
) -> Path:
    """Draw the loss against the learning rate of a range test, with the suggestion.

    Args:
        result: What :func:`~kerasimgcls.find_learning_rate` returned.
        path: The image file to write (``.png``).

    Returns:
        The path written.

    Example:
        >>> import tempfile
        >>> import numpy as np
        >>> from kerasimgcls import LearningRateFinderResult
        >>> from kerasimgcls.analysis.plots import plot_learning_rate_finder
        >>> result = LearningRateFinderResult(
        ...     np.array([1e-3, 1e-2, 1e-1]), np.array([2.3, 1.5, 3.0]),
        ...     np.array([2.3, 1.9, 2.3]), 1e-2, 1e-2, False)
        >>> with tempfile.TemporaryDirectory() as tmp:
        ...     path = plot_learning_rate_finder(result, f"{tmp}/lr.png")
    """
    figure = Figure(figsize=(6.0, 4.0))
    axes = figure.add_subplot(1, 1, 1)
    axes.plot(result.learning_rates, result.losses, alpha=0.3, label="loss")
    axes.plot(result.learning_rates, result.smoothed_losses, label="smoothed loss")
    axes.axvline(
        result.suggestion,
        color="red",
        linestyle="--",
        label=f"suggestion {result.suggestion:.2e}",
    )
    axes.set_xscale("log")
    axes.set_xlabel("learning rate")
    axes.set_ylabel("loss")
    finite = np.concatenate([result.smoothed_losses, result.losses])
    finite = finite[np.isfinite(finite)]
    low = float(finite.min()) if finite.size else 0.0
    high = float(result.smoothed_losses[0])
    if np.isfinite(low) and np.isfinite(high) and high > low:
        axes.set_ylim(low - 0.1 * (high - low), high + 0.5 * (high - low))
    axes.grid(alpha=0.3)
    axes.legend()
    axes.set_title("learning-rate range test")
    return _save_figure(figure, path)
