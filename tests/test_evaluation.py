"""Classification reports and their pictures (kerasimgcls.analysis.evaluation, plots)."""

from __future__ import annotations

import itertools
import json
import math

import keras
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import kerasimgcls as kic

# A case small enough to check by hand: 9 images, 3 classes.
LABELS = [0, 0, 0, 1, 1, 2, 2, 2, 2]
PROBABILITIES = [
    [0.6, 0.2, 0.2],  # 0 -> 0
    [0.3, 0.6, 0.1],  # 0 -> 1
    [0.6, 0.2, 0.2],  # 0 -> 0
    [0.2, 0.6, 0.2],  # 1 -> 1
    [0.2, 0.6, 0.2],  # 1 -> 1
    [0.2, 0.2, 0.6],  # 2 -> 2
    [0.6, 0.3, 0.1],  # 2 -> 0, the true class only third
    [0.2, 0.2, 0.6],  # 2 -> 2
    [0.1, 0.6, 0.3],  # 2 -> 1
]
NAMES = ["cat", "dog", "bird"]


@pytest.fixture
def report() -> kic.ClassificationReport:
    return kic.ClassificationReport.from_predictions(
        LABELS, PROBABILITIES, NAMES, top_k=2
    )


def test_report_matches_the_hand_computed_case(report) -> None:
    assert report.confusion_matrix.tolist() == [[2, 1, 0], [0, 2, 0], [1, 1, 2]]
    assert report.num_samples == 9
    assert report.accuracy == pytest.approx(6 / 9)
    np.testing.assert_allclose(report.precision, [2 / 3, 2 / 4, 2 / 2])
    np.testing.assert_allclose(report.recall, [2 / 3, 2 / 2, 2 / 4])
    np.testing.assert_allclose(report.f1, [2 / 3, 2 / 3, 2 / 3])
    assert report.support.tolist() == [3, 2, 4]
    assert report.top_k == 2
    assert report.top_k_accuracy == pytest.approx(8 / 9)
    expected_loss = -(6 * math.log(0.6) + 2 * math.log(0.3) + math.log(0.1)) / 9
    assert report.loss == pytest.approx(expected_loss, rel=1e-6)
    assert report.most_confused() == [
        ("cat", "dog", 1),
        ("bird", "cat", 1),
        ("bird", "dog", 1),
    ]
    assert report.most_confused(1) == [("cat", "dog", 1)]
    assert report.most_confused(min_count=2) == []
    assert report.top_losses(2).tolist() == [6, 1]


def test_report_to_json_and_save(report, tmp_path) -> None:
    payload = json.loads(report.to_json())
    assert payload == report.to_dict()
    assert payload["accuracy"] == pytest.approx(6 / 9)
    assert payload["per_class"][2] == {
        "class": "bird",
        "precision": 1.0,
        "recall": 0.5,
        "f1": pytest.approx(2 / 3),
        "support": 4,
    }
    assert payload["macro_avg"]["recall"] == pytest.approx((2 / 3 + 1 + 0.5) / 3)
    assert payload["weighted_avg"]["recall"] == pytest.approx(6 / 9)
    assert payload["most_confused"][0] == {
        "true": "cat",
        "predicted": "dog",
        "count": 1,
    }
    assert payload["confusion_matrix"] == [[2, 1, 0], [0, 2, 0], [1, 1, 2]]
    path = report.save(tmp_path / "out" / "report.json")
    assert json.loads(path.read_text()) == payload


def test_report_prints_as_a_table(report) -> None:
    text = str(report)
    lines = text.splitlines()
    assert lines[0].split() == ["class", "precision", "recall", "f1", "support"]
    assert lines[2].split() == ["cat", "0.667", "0.667", "0.667", "3"]
    assert lines[4].split() == ["bird", "1.000", "0.500", "0.667", "4"]
    assert "accuracy        0.6667  (9 images)" in text
    assert "top-2 accuracy  0.8889" in text
    assert "cat -> dog: 1" in text


def test_top_k_is_capped_at_the_number_of_classes() -> None:
    report = kic.ClassificationReport.from_predictions(LABELS, PROBABILITIES, top_k=5)
    assert report.top_k == 3 and report.top_k_accuracy == 1.0
    assert report.class_names == ("0", "1", "2")
    binary = kic.ClassificationReport.from_predictions([0, 1, 1], [[0.7, 0.3]] * 3)
    assert binary.top_k == 2 and binary.accuracy == pytest.approx(1 / 3)


def test_report_agrees_with_sklearn_on_random_predictions() -> None:
    from sklearn.metrics import classification_report as sk_report

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, 200)
    probabilities = rng.dirichlet(np.ones(5), 200)
    report = kic.ClassificationReport.from_predictions(labels, probabilities, top_k=3)
    expected = sk_report(
        labels, probabilities.argmax(1), output_dict=True, zero_division=0
    )
    for index in range(5):
        row = expected[str(index)]
        assert report.precision[index] == pytest.approx(row["precision"])
        assert report.recall[index] == pytest.approx(row["recall"])
        assert report.f1[index] == pytest.approx(row["f1-score"])
    assert report.to_dict()["macro_avg"]["f1"] == pytest.approx(
        expected["macro avg"]["f1-score"]
    )
    ranks = (-probabilities).argsort(1)[:, :3]
    assert report.top_k_accuracy == pytest.approx(
        np.mean([label in row for label, row in zip(labels, ranks, strict=True)])
    )


def test_from_predictions_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match=r"probabilities must have shape \(n, num"):
        kic.ClassificationReport.from_predictions([0], [0.5, 0.5])
    with pytest.raises(ValueError, match="labels must have one entry per row"):
        kic.ClassificationReport.from_predictions([0, 1], [[0.5, 0.5]])
    with pytest.raises(ValueError, match=r"labels must be in \[0, num_classes\)"):
        kic.ClassificationReport.from_predictions([2], [[0.5, 0.5]])
    with pytest.raises(ValueError, match="class_names must have one name per class"):
        kic.ClassificationReport.from_predictions([0], [[0.5, 0.5]], ["a"])
    with pytest.raises(TypeError, match="class_names must be a sequence of names"):
        kic.ClassificationReport.from_predictions([0], [[0.5, 0.5]], "ab")
    with pytest.raises(ValueError, match="top_k must be a positive integer"):
        kic.ClassificationReport.from_predictions([0], [[0.5, 0.5]], top_k=0)


def test_report_defaults_keys_names_and_edges() -> None:
    import warnings

    rng = np.random.default_rng(1)
    labels = rng.integers(0, 12, 60)
    report = kic.ClassificationReport.from_predictions(
        labels, rng.dirichlet(np.ones(12), 60)
    )
    assert report.top_k == 5 and report.probabilities.dtype == np.float32
    payload = report.to_dict()
    assert set(payload) == {
        "num_samples",
        "accuracy",
        "top_k",
        "top_k_accuracy",
        "loss",
        "macro_avg",
        "weighted_avg",
        "per_class",
        "most_confused",
        "class_names",
        "confusion_matrix",
    }
    assert (payload["top_k"], payload["top_k_accuracy"]) == (5, report.top_k_accuracy)
    assert payload["loss"] == report.loss
    assert payload["class_names"] == [str(i) for i in range(12)]
    assert payload["macro_avg"]["recall"] == pytest.approx(np.mean(report.recall))
    # Mistakes: most frequent first, ten by default (here there are more).
    every = report.most_confused(None)
    assert len(every) > 11 and len(report.most_confused()) == 10
    assert len(payload["most_confused"]) == 10
    counts = [count for _, _, count in every]
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1]
    losses = report.top_losses()
    assert len(losses) == 9 and losses.dtype == np.int64
    # Equal losses keep their order (a stable sort).
    equal = kic.ClassificationReport.from_predictions([0] * 12, np.full((12, 2), 0.5))
    assert equal.top_losses(12).tolist() == list(range(12))
    for call, name in (
        (lambda: report.most_confused(min_count=0), "min_count"),
        (lambda: report.most_confused(top=0), "top"),
        (lambda: report.top_losses(0), "k"),
    ):
        with pytest.raises(ValueError, match=f"^{name} must be a positive integer"):
            call()
    for bad in (np.zeros((0, 3)), np.zeros((2, 0))):
        with pytest.raises(ValueError, match=r"^probabilities must have shape"):
            kic.ClassificationReport.from_predictions(np.zeros(len(bad), int), bad)
    single = kic.ClassificationReport.from_predictions([0, 0], [[1.0], [1.0]])
    assert single.accuracy == 1.0
    # A class that is never predicted has precision 0, silently (no warning).
    from sklearn.exceptions import UndefinedMetricWarning

    with warnings.catch_warnings():
        warnings.simplefilter("error", UndefinedMetricWarning)
        never = kic.ClassificationReport.from_predictions([0, 1], [[0.9, 0.1]] * 2)
    assert never.precision.tolist() == [0.5, 0.0]
    # A true class given probability 0 has a large but finite loss.
    sure = kic.ClassificationReport.from_predictions([0, 1], [[0.0, 1.0], [0.0, 1.0]])
    assert np.isfinite(sure.loss) and sure.loss == pytest.approx(-np.log(1e-12) / 2)


@pytest.fixture(scope="module")
def digits_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 1))
    x = kic.conv_block(inputs, 8, pool_size=2, name="block1")
    outputs = kic.dense_head(x, 10, units=(), name="head")
    model = keras.Model(inputs, outputs)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    data = kic.load_digits(seed=0)
    model.fit(data.train.images / 255.0, data.train.labels, epochs=3, verbose=0)
    return model


def test_classification_report_of_a_model(digits_model, digits) -> None:
    report = kic.classification_report(digits_model, digits.test, top_k=3)
    probabilities = kic.predict_proba(digits_model, digits.test.images)
    expected = kic.ClassificationReport.from_predictions(
        digits.test.labels, probabilities, top_k=3
    )
    assert report.to_dict() == expected.to_dict()
    assert report.accuracy > 0.7  # three epochs of a small CNN (measured: 0.77)
    assert report.class_names == tuple(str(i) for i in range(10))
    assert int(report.confusion_matrix.sum()) == len(digits.test)


def test_classification_report_reads_class_names_from_an_exported_model(
    digits_model, digits
) -> None:
    names = [f"digit {i}" for i in range(10)]
    exported = kic.export_model(digits_model, names)
    report = kic.classification_report(exported, digits.test)
    plain = kic.classification_report(digits_model, digits.test, names)
    assert report.class_names == tuple(names)
    assert report.confusion_matrix.tolist() == plain.confusion_matrix.tolist()
    assert report.loss == pytest.approx(plain.loss, rel=1e-5)


def test_classification_report_rejects_bad_input(digits_model, digits) -> None:
    with pytest.raises(TypeError, match="split must be a kerasimgcls Split"):
        kic.classification_report(digits_model, digits)
    empty = kic.Split(np.zeros((0, 8, 8, 1), np.uint8), np.zeros(0, np.int64))
    with pytest.raises(ValueError, match="split is empty"):
        kic.classification_report(digits_model, empty)
    wrong_size = kic.Split(np.zeros((2, 4, 4, 1), np.uint8), np.array([0, 1]))
    with pytest.raises(ValueError, match=r"images must have shape \(n, 8, 8, 1\)"):
        kic.classification_report(digits_model, wrong_size)
    too_high = kic.Split(np.zeros((1, 8, 8, 1), np.uint8), np.array([10]))
    with pytest.raises(ValueError, match=r"split.labels must be in \[0, num_classes"):
        kic.classification_report(digits_model, too_high)
    with pytest.raises(ValueError, match="class_names must have one name per class"):
        kic.classification_report(digits_model, digits.test, ["a", "b"])


# ------------------------------------------------------------------- pictures


def _picture(path) -> tuple[int, int, np.ndarray]:
    with Image.open(path) as image:
        assert image.format == "PNG"
        pixels = np.asarray(image.convert("RGB"))
    assert pixels.std() > 5, "the picture is blank"
    return image.width, image.height, pixels


def test_confusion_matrix_picture(report, tmp_path) -> None:
    width, height, _ = _picture(report.plot_confusion_matrix(tmp_path / "cm.png"))
    assert 700 <= width <= 1500 and 350 <= height <= 800
    assert width > 1.6 * height  # counts and normalised side by side
    many = np.random.default_rng(0).integers(0, 9, (25, 25))
    width, height, _ = _picture(
        kic.plots.plot_confusion_matrix(many, tmp_path / "big.png")
    )
    assert width > 1500  # grows with the number of classes


def test_confusion_matrix_picture_rejects_bad_input(tmp_path) -> None:
    with pytest.raises(ValueError, match="confusion_matrix must be a square"):
        kic.plots.plot_confusion_matrix([[1, 2, 3]], tmp_path / "x.png")
    with pytest.raises(ValueError, match="non-negative counts"):
        kic.plots.plot_confusion_matrix([[1, -1], [0, 1]], tmp_path / "x.png")
    with pytest.raises(ValueError, match="class_names must have one name per class"):
        kic.plots.plot_confusion_matrix(
            [[1]], tmp_path / "x.png", class_names=["a", "b"]
        )
    with pytest.raises(ValueError, match="path must end in an image suffix"):
        kic.plots.plot_confusion_matrix([[1]], tmp_path / "x.txt")
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_top_losses_picture(digits, report, tmp_path) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (9, 8, 8, 1), dtype=np.uint8)
    path = report.plot_top_losses(images, tmp_path / "losses.png", k=4)
    width, height, _ = _picture(path)
    assert width > 300 and height > 300  # three misclassified images, 2x2 grid
    split = kic.Split(images, np.array(LABELS))
    all_right = np.eye(3)[LABELS]
    path = kic.plots.plot_top_losses(split, all_right, tmp_path / "none.png")
    _picture(path)
    with pytest.raises(ValueError, match="images must be the 9 scored images"):
        report.plot_top_losses(images[:3], tmp_path / "x.png")
    with pytest.raises(ValueError, match=r"probabilities must have shape \(9,"):
        kic.plots.plot_top_losses(split, all_right[:2], tmp_path / "x.png")
    with pytest.raises(TypeError, match="split must be a kerasimgcls Split"):
        kic.plots.plot_top_losses(images, all_right, tmp_path / "x.png")
    with pytest.raises(ValueError, match="k must be a positive integer"):
        kic.plots.plot_top_losses(split, all_right, tmp_path / "x.png", k=0)


def test_samples_picture(digits, tmp_path) -> None:
    path = kic.plots.plot_samples(
        digits.train, tmp_path / "samples.png", class_names=digits.class_names
    )
    width, height, _ = _picture(path)
    assert height > width  # ten rows of eight
    few = kic.Split(digits.train.images[:3], np.array([0, 2, 2]))
    _picture(kic.plots.plot_samples(few, tmp_path / "few.png", per_class=4))
    with pytest.raises(ValueError, match="per_class must be a positive integer"):
        kic.plots.plot_samples(digits.train, tmp_path / "x.png", per_class=0)
    empty = kic.Split(np.zeros((0, 8, 8, 1), np.uint8), np.zeros(0, np.int64))
    with pytest.raises(ValueError, match="split is empty"):
        kic.plots.plot_samples(empty, tmp_path / "x.png")
    with pytest.raises(TypeError, match="split must be a kerasimgcls Split"):
        kic.plots.plot_samples(digits, tmp_path / "x.png")


def test_samples_picture_in_colour(tmp_path) -> None:
    rng = np.random.default_rng(1)
    split = kic.Split(
        rng.integers(0, 256, (12, 16, 16, 3), np.uint8), np.arange(12) % 3
    )
    _, _, pixels = _picture(
        kic.plots.plot_samples(split, tmp_path / "rgb.png", per_class=3)
    )
    assert np.any(pixels[..., 0] != pixels[..., 1])  # colour is kept


@settings(max_examples=30, deadline=None)
@given(
    num_classes=st.integers(2, 6),
    num_samples=st.integers(1, 40),
    seed=st.integers(0, 2**16),
)
def test_report_invariants(num_classes, num_samples, seed) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, num_samples)
    probabilities = rng.dirichlet(np.ones(num_classes), num_samples)
    reports = [
        kic.ClassificationReport.from_predictions(labels, probabilities, top_k=k)
        for k in range(1, num_classes + 1)
    ]
    first = reports[0]
    matrix = first.confusion_matrix
    assert matrix.sum() == num_samples
    assert matrix.sum(axis=1).tolist() == first.support.tolist()
    assert first.accuracy == pytest.approx(np.trace(matrix) / num_samples)
    assert first.top_k_accuracy == pytest.approx(first.accuracy)
    accuracies = [report.top_k_accuracy for report in reports]
    assert all(a <= b + 1e-12 for a, b in itertools.pairwise(accuracies))
    assert accuracies[-1] == 1.0
    assert sum(count for _, _, count in first.most_confused(None)) == (
        num_samples - np.trace(matrix)
    )
    assert json.loads(first.to_json())["num_samples"] == num_samples
