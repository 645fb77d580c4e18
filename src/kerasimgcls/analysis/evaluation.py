"""How good is the model, per class, and where does it go wrong.

:func:`classification_report` predicts a split once and returns a
:class:`ClassificationReport`: accuracy, top-k accuracy, loss, per-class precision,
recall, F1 and support (computed by scikit-learn), the confusion matrix and the most
confused pairs. It prints as a table, saves as JSON and draws its pictures.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
from numpy.typing import ArrayLike, NDArray

from kerasimgcls._io import write_json_atomic
from kerasimgcls._validation import (
    check_labels,
    check_positive_int,
    resolve_class_names,
)
from kerasimgcls.analysis import plots
from kerasimgcls.data._dataset import Split
from kerasimgcls.inference._predict import predict_proba
from kerasimgcls.inference._scaling import InputScaling, check_input_scaling
from kerasimgcls.models.preprocessing import get_class_names

__all__ = ["ClassificationReport", "classification_report"]


@dataclass(frozen=True, eq=False)
class ClassificationReport:
    """Scores of a classifier on one split, overall and per class.

    Build one with :func:`classification_report` (from a model) or
    :meth:`from_predictions` (from labels and probabilities).

    Attributes:
        class_names: One name per class, in label order.
        num_samples: Number of images scored.
        accuracy: Fraction of images whose most probable class is the true one.
        top_k: The ``k`` of :attr:`top_k_accuracy` (at most the number of classes).
        top_k_accuracy: Fraction of images whose true class is among the ``k``
            most probable.
        loss: Mean categorical cross-entropy.
        precision: Per-class precision, array of shape ``(num_classes,)``.
        recall: Per-class recall.
        f1: Per-class F1 score.
        support: Per-class number of true images, int64.
        confusion_matrix: Counts of shape ``(num_classes, num_classes)``; rows are
            the true classes, columns the predicted ones.
        labels: The true labels, shape ``(num_samples,)`` (not saved to JSON).
        probabilities: The predicted probabilities, shape ``(num_samples,
            num_classes)`` (not saved to JSON).

    Example:
        >>> from kerasimgcls import ClassificationReport
        >>> report = ClassificationReport.from_predictions(
        ...     [0, 0, 1, 1], [[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.3, 0.7]],
        ...     class_names=["cat", "dog"])
        >>> report.accuracy, report.confusion_matrix.tolist()
        (0.75, [[1, 1], [0, 2]])
    """

    class_names: tuple[str, ...]
    num_samples: int
    accuracy: float
    top_k: int
    top_k_accuracy: float
    loss: float
    precision: NDArray[np.float64]
    recall: NDArray[np.float64]
    f1: NDArray[np.float64]
    support: NDArray[np.int64]
    confusion_matrix: NDArray[np.int64]
    labels: NDArray[np.int64] = field(repr=False)
    probabilities: NDArray[np.float32] = field(repr=False)

    @classmethod
    def from_predictions(
        cls,
        labels: ArrayLike,
        probabilities: ArrayLike,
        class_names: Sequence[str] | None = None,
        *,
        top_k: int = 5,
    ) -> ClassificationReport:
        """Score predicted probabilities against true labels.

        Args:
            labels: True class indices, shape ``(n,)``.
            probabilities: Predicted probabilities, shape ``(n, num_classes)``.
            class_names: One name per class (default: ``"0"``, ``"1"``, ...).
            top_k: ``k`` of the top-k accuracy; capped at the number of classes.

        Returns:
            The report.

        Raises:
            ValueError: If the shapes disagree, there are no samples, a label is
                out of range or ``class_names`` has the wrong length.

        Example:
            >>> from kerasimgcls import ClassificationReport
            >>> report = ClassificationReport.from_predictions(
            ...     [0, 1, 2], [[0.6, 0.3, 0.1], [0.5, 0.4, 0.1], [0.1, 0.2, 0.7]],
            ...     top_k=2)
            >>> round(report.accuracy, 3), report.top_k_accuracy
            (0.667, 1.0)
        """
        probs = np.asarray(probabilities, dtype=np.float32)
        if probs.ndim != 2 or probs.shape[0] == 0 or probs.shape[1] == 0:
            raise ValueError(
                "probabilities must have shape (n, num_classes) with n >= 1; "
                f"received shape {probs.shape}"
            )
        num_classes = int(probs.shape[1])
        truth = check_labels(
            labels, num_classes, "labels", rows=("probabilities", len(probs))
        )
        names = resolve_class_names(class_names, num_classes)
        top_k = min(check_positive_int(top_k, "top_k"), num_classes)
        return cls(
            class_names=names,
            num_samples=len(truth),
            **_scores(truth, probs, top_k),
            labels=truth,
            probabilities=probs,
        )

    def most_confused(
        self, top: int | None = 10, *, min_count: int = 1
    ) -> list[tuple[str, str, int]]:
        """Return the most frequent mistakes as ``(true, predicted, count)``.

        Args:
            top: How many pairs to return at most (``None``: all).
            min_count: Leave out pairs seen fewer times than this.

        Returns:
            Pairs of class names with their count, most frequent first (ties in
            class order).

        Example:
            >>> from kerasimgcls import ClassificationReport
            >>> report = ClassificationReport.from_predictions(
            ...     [0, 0, 1], [[0.2, 0.8], [0.3, 0.7], [0.1, 0.9]],
            ...     class_names=["cat", "dog"])
            >>> report.most_confused()
            [('cat', 'dog', 2)]
        """
        min_count = check_positive_int(min_count, "min_count")
        if top is not None:
            top = check_positive_int(top, "top")
        matrix = self.confusion_matrix.copy()
        np.fill_diagonal(matrix, 0)
        rows, columns = np.nonzero(matrix >= min_count)
        counts = matrix[rows, columns]
        order = np.lexsort((columns, rows, -counts))
        pairs = [
            (self.class_names[rows[i]], self.class_names[columns[i]], int(counts[i]))
            for i in order
        ]
        return pairs if top is None else pairs[:top]

    def top_losses(self, k: int = 9) -> NDArray[np.int64]:
        """Return the indices of the ``k`` samples with the highest loss.

        Args:
            k: How many indices (fewer if there are fewer samples).

        Returns:
            Indices into the scored split, highest loss first.

        Example:
            >>> from kerasimgcls import ClassificationReport
            >>> report = ClassificationReport.from_predictions(
            ...     [0, 1], [[0.9, 0.1], [0.8, 0.2]])
            >>> report.top_losses(1).tolist()
            [1]
        """
        k = check_positive_int(k, "k")
        losses = _sample_losses(self.labels, self.probabilities)
        return np.argsort(-losses, kind="stable")[:k].astype(np.int64)

    def to_dict(self) -> dict[str, Any]:
        """Return the report as plain JSON-ready Python values.

        Example:
            >>> from kerasimgcls import ClassificationReport
            >>> report = ClassificationReport.from_predictions([0, 1], [[1, 0], [0, 1]])
            >>> report.to_dict()["accuracy"]
            1.0
        """
        per_class = [
            {
                "class": name,
                "precision": float(self.precision[i]),
                "recall": float(self.recall[i]),
                "f1": float(self.f1[i]),
                "support": int(self.support[i]),
            }
            for i, name in enumerate(self.class_names)
        ]
        return {
            "num_samples": self.num_samples,
            "accuracy": self.accuracy,
            "top_k": self.top_k,
            "top_k_accuracy": self.top_k_accuracy,
            "loss": self.loss,
            "macro_avg": self._average(weighted=False),
            "weighted_avg": self._average(weighted=True),
            "per_class": per_class,
            "most_confused": [
                {"true": true, "predicted": predicted, "count": count}
                for true, predicted, count in self.most_confused(10)
            ],
            "class_names": list(self.class_names),
            "confusion_matrix": self.confusion_matrix.tolist(),
        }

    def _average(self, *, weighted: bool) -> dict[str, float]:
        total = int(self.support.sum())
        weights = (
            self.support / total
            if weighted and total
            else np.full(len(self.support), 1.0 / len(self.support))
        )
        return {
            "precision": float(np.dot(weights, self.precision)),
            "recall": float(np.dot(weights, self.recall)),
            "f1": float(np.dot(weights, self.f1)),
        }

    def to_json(self) -> str:
        """Return the report as a JSON string (see :meth:`to_dict`).

        Example:
            >>> from kerasimgcls import ClassificationReport
            >>> report = ClassificationReport.from_predictions([0, 1], [[1, 0], [0, 1]])
            >>> report.to_json().startswith("{")
            True
        """
        import json

        return json.dumps(self.to_dict(), indent=2)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the report as JSON to ``path`` (atomically).

        Args:
            path: The ``.json`` file to write.

        Returns:
            The path written.

        Example:
            >>> import json, tempfile
            >>> from kerasimgcls import ClassificationReport
            >>> report = ClassificationReport.from_predictions([0, 1], [[1, 0], [0, 1]])
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     saved = json.loads(report.save(f"{tmp}/report.json").read_text())
            >>> saved["accuracy"], saved["num_samples"]
            (1.0, 2)
        """
        return write_json_atomic(path, self.to_dict())

    def plot_confusion_matrix(self, path: str | os.PathLike[str]) -> Path:
        """Draw the confusion matrix (counts and row-normalised) to ``path``.

        See :func:`~kerasimgcls.analysis.plots.plot_confusion_matrix`.

        Example:
            >>> import tempfile
            >>> from kerasimgcls import ClassificationReport
            >>> report = ClassificationReport.from_predictions([0, 1], [[1, 0], [0, 1]])
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     path = report.plot_confusion_matrix(f"{tmp}/cm.png")
        """
        title = f"accuracy {self.accuracy:.3f} on {self.num_samples} images"
        return plots.plot_confusion_matrix(
            self.confusion_matrix, path, class_names=self.class_names, title=title
        )

    def plot_top_losses(
        self, images: ArrayLike, path: str | os.PathLike[str], *, k: int = 9
    ) -> Path:
        """Draw the misclassified images with the highest loss to ``path``.

        Args:
            images: The scored images, uint8 of shape ``(num_samples, height,
                width, channels)`` (``split.images``).
            path: The image file to write.
            k: How many images to show.

        Returns:
            The path written.

        Raises:
            ValueError: If ``images`` does not hold one image per scored sample.

        Example:
            >>> import tempfile
            >>> import numpy as np
            >>> from kerasimgcls import ClassificationReport
            >>> report = ClassificationReport.from_predictions([0, 1], [[1, 0], [1, 0]])
            >>> with tempfile.TemporaryDirectory() as tmp:
            ...     path = report.plot_top_losses(np.zeros((2, 8, 8, 1), np.uint8),
            ...                                   f"{tmp}/losses.png")
        """
        array = np.asarray(images)
        if array.ndim != 4 or len(array) != self.num_samples:
            raise ValueError(
                f"images must be the {self.num_samples} scored images, shape "
                f"({self.num_samples}, height, width, channels); received shape "
                f"{array.shape}"
            )
        return plots.plot_top_losses(
            Split(array, self.labels),
            self.probabilities,
            path,
            k=k,
            class_names=self.class_names,
        )

    def __str__(self) -> str:
        width = max(12, *(len(name) for name in self.class_names)) + 2
        header = f"{'class':<{width}}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}"
        lines = [header, "-" * len(header)]
        for i, name in enumerate(self.class_names):
            lines.append(
                f"{name:<{width}}{self.precision[i]:>10.3f}{self.recall[i]:>10.3f}"
                f"{self.f1[i]:>10.3f}{int(self.support[i]):>10d}"
            )
        lines.append("-" * len(header))
        for label, weighted in (("macro avg", False), ("weighted avg", True)):
            average = self._average(weighted=weighted)
            lines.append(
                f"{label:<{width}}{average['precision']:>10.3f}"
                f"{average['recall']:>10.3f}{average['f1']:>10.3f}"
                f"{self.num_samples:>10d}"
            )
        images = "image" if self.num_samples == 1 else "images"
        lines += [
            "",
            f"accuracy        {self.accuracy:.4f}  ({self.num_samples} {images})",
        ]
        # Top-k of k or more classes is always 1: not worth a line.
        if self.top_k < len(self.class_names):
            lines.append(f"top-{self.top_k} accuracy  {self.top_k_accuracy:.4f}")
        lines.append(f"loss            {self.loss:.4f}")
        confused = self.most_confused(5)
        if confused:
            lines.append("most confused (true -> predicted: count):")
            lines += [f"  {t} -> {p}: {c}" for t, p, c in confused]
        return "\n".join(lines)


def _sample_losses(
    labels: NDArray[np.int64], probabilities: NDArray[np.float32]
) -> NDArray[np.float64]:
    picked = probabilities[np.arange(len(labels)), labels].astype(np.float64)
    return np.asarray(-np.log(np.clip(picked, 1e-12, 1.0)))


def _scores(
    labels: NDArray[np.int64], probabilities: NDArray[np.float32], top_k: int
) -> dict[str, Any]:
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        precision_recall_fscore_support,
        top_k_accuracy_score,
    )

    num_classes = probabilities.shape[1]
    classes = np.arange(num_classes)
    predicted = probabilities.argmax(axis=1)
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predicted, labels=classes, zero_division=0
    )
    if top_k >= num_classes:
        top_k_accuracy = 1.0
    elif num_classes == 2:
        # sklearn wants 1-D scores for two classes; top-1 is plain accuracy here.
        top_k_accuracy = float(accuracy_score(labels, predicted))
    else:
        top_k_accuracy = float(
            top_k_accuracy_score(labels, probabilities, k=top_k, labels=classes)
        )
    return {
        "accuracy": float(accuracy_score(labels, predicted)),
        "top_k": top_k,
        "top_k_accuracy": top_k_accuracy,
        "loss": float(np.mean(_sample_losses(labels, probabilities))),
        "precision": np.asarray(precision, dtype=np.float64),
        "recall": np.asarray(recall, dtype=np.float64),
        "f1": np.asarray(f1, dtype=np.float64),
        "support": np.asarray(support, dtype=np.int64),
        "confusion_matrix": np.asarray(
            confusion_matrix(labels, predicted, labels=classes), dtype=np.int64
        ),
    }


def classification_report(
    model: keras.Model,
    split: Split,
    class_names: Sequence[str] | None = None,
    *,
    top_k: int = 5,
    batch_size: int = 256,
    input_scaling: InputScaling = "auto",
) -> ClassificationReport:
    """Predict ``split`` with ``model`` and score the predictions, per class.

    Predictions go through :func:`predict_proba`, so every model is fed the raw
    pixels as it expects them (see :doc:`/guide/input`): an exported model (as
    saved in a run's ``model.keras``), one that scales its own input, or one that
    takes float images in ``[0, 1]``.

    Args:
        model: A classifier ending in a softmax.
        split: The images and true labels to score, such as ``data.test``.
        class_names: One name per class; default: the names stored in an exported
            model, else ``"0"``, ``"1"``, ...
        top_k: ``k`` of the top-k accuracy; capped at the number of classes.
        batch_size: Images per forward pass.
        input_scaling: ``"auto"``, ``"raw"`` or ``"unit"`` (see
            :func:`resolve_input_scaling`).

    Returns:
        The report: print it for a table, :meth:`~ClassificationReport.save` it as
        JSON.

    Raises:
        TypeError: If ``split`` is not a :class:`Split`.
        ValueError: If ``split`` is empty, its images do not fit the model, a label
            is out of range, ``class_names`` has the wrong length or
            ``input_scaling`` is not one of its choices.

    Example:
        >>> from kerasimgcls import build_cifar_cnn, classification_report, load_digits
        >>> data = load_digits(seed=0)
        >>> model = build_cifar_cnn(input_shape=(8, 8, 1), num_classes=10)
        >>> report = classification_report(model, data.test, data.class_names)
        >>> report.num_samples, report.confusion_matrix.shape
        (359, (10, 10))
    """
    if not isinstance(split, Split):
        raise TypeError(
            "split must be a kerasimgcls Split (such as data.test); "
            f"received {type(split).__name__}"
        )
    if len(split) == 0:
        raise ValueError("split is empty: there is nothing to evaluate")
    num_classes = int(model.output_shape[-1])
    if class_names is None:
        class_names = get_class_names(model)
    names = resolve_class_names(class_names, num_classes)
    check_labels(split.labels, num_classes, "split.labels")
    top_k = check_positive_int(top_k, "top_k")
    check_input_scaling(input_scaling)
    probabilities = predict_proba(
        model, split.images, batch_size=batch_size, input_scaling=input_scaling
    )
    return ClassificationReport.from_predictions(
        split.labels, probabilities, names, top_k=top_k
    )
