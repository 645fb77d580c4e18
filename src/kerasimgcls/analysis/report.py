"""A run at a glance: one self-contained ``report.html`` for a browser.

The page holds the run's configuration and versions, its learning curves, the
per-class precision/recall/F1 table, the confusion matrix, the top losses, Grad-CAM
pictures of a few validation images and the run's timing. Every picture is embedded
as a ``data:`` URI, so the file can be mailed or archived alone; it loads nothing
from the network.
"""

from __future__ import annotations

import base64
import html
import json
import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import keras

from kerasimgcls._io import write_text_atomic
from kerasimgcls._validation import check_path_exists, check_positive_int
from kerasimgcls.analysis.evaluation import classification_report
from kerasimgcls.analysis.interpret import grad_cam
from kerasimgcls.data import ImageDataset
from kerasimgcls.inference._load import load_model
from kerasimgcls.training import History

__all__ = ["write_report"]

_STYLE = """
body { font: 15px/1.45 system-ui, sans-serif; margin: 0 auto; max-width: 1100px;
       padding: 1.5rem; color: #1d1d1f; background: #fff; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; }
h2 { font-size: 1.2rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem;
     margin-top: 2rem; }
.muted { color: #666; }
table { border-collapse: collapse; margin: .5rem 0; }
th, td { padding: .2rem .7rem; border-bottom: 1px solid #eee; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
img { max-width: 100%; height: auto; border: 1px solid #eee; }
.grid { display: flex; flex-wrap: wrap; gap: 1rem; align-items: flex-start; }
.grid figure { margin: 0; flex: 0 1 340px; }
.grid.wide figure { flex: 1 1 100%; }
.grid.wide img { max-width: 900px; }
figcaption { font-size: .85rem; color: #555; }
pre { background: #f6f8fa; padding: .6rem; overflow-x: auto; font-size: .8rem;
      white-space: pre-wrap; word-break: break-word; }
"""


def write_report(
    run_dir: str | os.PathLike[str],
    data: ImageDataset,
    *,
    model: keras.Model | None = None,
    split: str = "test",
    grad_cam_images: int = 4,
    top_losses: int = 9,
    batch_size: int = 256,
) -> Path:
    """Write ``run_dir/report.html``, the run at a glance, for a browser.

    Args:
        run_dir: A finished run directory (``run.json``, ``model.keras``).
        data: The run's dataset, the one it was trained on (its fingerprint is
            checked against ``run.json``).
        model: The run's model; ``None`` loads ``run_dir/model.keras``.
        split: The split scored for the table, the confusion matrix and the top
            losses: ``"test"`` (the validation split if there is no test split),
            ``"validation"`` or ``"train"``.
        grad_cam_images: How many validation images get a Grad-CAM picture (the
            first ones, so the report is the same each time).
        top_losses: How many misclassified images the top-losses picture shows.
        batch_size: Images per forward pass.

    Returns:
        The path of ``report.html``.

    Raises:
        FileNotFoundError: If ``run_dir`` or its ``run.json`` is missing.
        ValueError: If ``data`` is not the run's data, or the split is unknown or
            empty.

    Example:
        >>> import kerasimgcls as kic
        >>> data = kic.load_digits(seed=0)
        >>> path = kic.write_report("runs/digits-cifar_cnn-seed0", data)  # doctest: +SKIP
    """
    directory = check_path_exists(run_dir, "run_dir", kind="dir")
    run = _read_run(directory)
    _check_data(run, data, directory)
    grad_cam_images = check_positive_int(
        grad_cam_images, "grad_cam_images", allow_zero=True
    )
    top_losses = check_positive_int(top_losses, "top_losses")
    name, scored = _pick_split(data, split)
    model = model if model is not None else load_model(directory)
    report = classification_report(
        model, scored, data.class_names, batch_size=batch_size
    )
    sections = [
        _header(run, directory),
        _section("Learning curves", _curves(directory, run)),
        _section(
            f"Per-class scores ({name} split, {len(scored)} images)",
            _scores_table(report.to_dict()),
        ),
        _section(
            "Confusion matrix and top losses",
            _pictures(
                [
                    ("confusion matrix", lambda p: report.plot_confusion_matrix(p)),
                    (
                        f"the {top_losses} misclassified images with the highest loss",
                        lambda p: report.plot_top_losses(
                            scored.images, p, k=top_losses
                        ),
                    ),
                ],
                wide=True,
            ),
        ),
        _section(
            "Grad-CAM on validation images", _grad_cams(model, data, grad_cam_images)
        ),
        _section("Timing", _timing(run, directory)),
        _section("Configuration and versions", _configuration(run)),
    ]
    page = (
        "<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
        f"<title>{html.escape(_title(run, directory))}</title>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<style>{_STYLE}</style></head><body>\n"
        + "\n".join(sections)
        + "\n</body></html>\n"
    )
    return write_text_atomic(directory / "report.html", page)


def _read_run(directory: Path) -> dict[str, Any]:
    path = directory / "run.json"
    if not path.is_file():
        raise FileNotFoundError(
            f"run_dir has no run.json: {str(directory)!r} is not a kerasimgcls run"
        )
    try:
        run: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise ValueError(f"{str(path)!r} is not valid JSON: {err}") from err
    if not isinstance(run, dict):
        raise ValueError(f"{str(path)!r} is not a kerasimgcls run.json")
    check_not_running(run, directory)
    return run


def check_not_running(run: Mapping[str, Any], directory: Path) -> None:
    """Refuse a run whose ``run.json`` says it is still ``running``.

    Its model and history are not final: a report of it would describe a run
    that is not what it will be.

    Raises:
        ValueError: If ``run["status"]`` is ``"running"``.
    """
    if run.get("status") == "running":
        raise ValueError(
            f"run_dir {str(directory)!r} holds a run that is still running (run.json "
            "says status 'running'); report on it when it has finished (if no "
            "training is running, run the same train command again to finish it)"
        )


def _check_data(run: Mapping[str, Any], data: ImageDataset, directory: Path) -> None:
    if not isinstance(data, ImageDataset):
        raise TypeError(
            f"data must be a kerasimgcls ImageDataset; received {type(data).__name__}"
        )
    expected = run.get("data", {}).get("fingerprint")
    if expected and expected != data.fingerprint:
        raise ValueError(
            f"data is not the dataset the run {str(directory)!r} was trained on "
            "(fingerprint mismatch); load it as the run did (see run.json's data)"
        )


def _pick_split(data: ImageDataset, split: str) -> tuple[str, Any]:
    splits = data.splits()
    if split not in ("test", "validation", "train"):
        raise ValueError(
            f"split must be 'test', 'validation' or 'train'; received split={split!r}"
        )
    name = "validation" if split == "test" and splits.get("test") is None else split
    chosen = splits.get(name)
    if chosen is None or len(chosen) == 0:
        raise ValueError(f"the dataset has no {split} split to report on")
    return name, chosen


def _title(run: Mapping[str, Any], directory: Path) -> str:
    return f"{run.get('model_name', run.get('model', {}).get('name', 'model'))} on " + (
        f"{run.get('data', {}).get('name', '?')}: {directory.name}"
    )


def _header(run: Mapping[str, Any], directory: Path) -> str:
    final = run.get("final") or {}
    last = final.get("last_epoch") or {}
    facts = [
        f"status <b>{html.escape(str(run.get('status', '?')))}</b>",
        f"{final.get('epochs_completed', '?')} epochs",
        f"{run.get('model', {}).get('parameters', '?'):,} parameters"
        if isinstance(run.get("model", {}).get("parameters"), int)
        else "",
    ]
    if "val_accuracy" in last:
        facts.append(f"last validation accuracy {last['val_accuracy']:.4f}")
    command = " ".join(str(word) for word in run.get("command", []))
    return (
        f"<h1>{html.escape(_title(run, directory))}</h1>"
        f"<p class='muted'>{' · '.join(f for f in facts if f)}</p>"
        + (f"<pre>{html.escape(command)}</pre>" if command else "")
    )


def _section(title: str, body: str) -> str:
    return f"<section><h2>{html.escape(title)}</h2>\n{body}\n</section>"


def _data_uri(path: Path) -> str:
    encoded = base64.b64encode(path.read_bytes()).decode("ascii")
    return f"data:image/png;base64,{encoded}"


def _figure(path: Path, caption: str) -> str:
    return (
        f"<figure><img src='{_data_uri(path)}' alt='{html.escape(caption)}'>"
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


def _pictures(
    drawings: Iterable[tuple[str, Callable[[Path], Path]]], *, wide: bool = False
) -> str:
    """Draw each picture into a temporary folder and embed it."""
    figures = []
    with tempfile.TemporaryDirectory() as tmp:
        for index, (caption, draw) in enumerate(drawings):
            figures.append(_figure(draw(Path(tmp) / f"{index}.png"), caption))
    kind = "grid wide" if wide else "grid"
    return f"<div class='{kind}'>{''.join(figures)}</div>"


def _curves(directory: Path, run: Mapping[str, Any]) -> str:
    history_file = directory / "history.json"
    if not history_file.is_file():
        return "<p class='muted'>No history.json in the run directory.</p>"
    history = History(json.loads(history_file.read_text(encoding="utf-8")))
    if not len(history):
        return "<p class='muted'>The run has no completed epoch.</p>"
    title = _title(run, directory)
    return _pictures(
        [("loss and accuracy per epoch", lambda p: history.plot(p, title=title))],
        wide=True,
    )


def _scores_table(report: Mapping[str, Any]) -> str:
    rows = [
        "<tr><th>class</th><th>precision</th><th>recall</th><th>F1</th>"
        "<th>support</th></tr>"
    ]
    for item in report["per_class"]:
        rows.append(
            f"<tr><td>{html.escape(str(item['class']))}</td>"
            + "".join(
                f"<td class='num'>{item[key]:.3f}</td>"
                for key in ("precision", "recall", "f1")
            )
            + f"<td class='num'>{item['support']}</td></tr>"
        )
    for label, key in (
        ("macro average", "macro_avg"),
        ("weighted average", "weighted_avg"),
    ):
        average = report.get(key) or {}
        if average:
            rows.append(
                f"<tr><th>{label}</th>"
                + "".join(
                    f"<td class='num'>{average.get(name, float('nan')):.3f}</td>"
                    for name in ("precision", "recall", "f1")
                )
                + f"<td class='num'>{report['num_samples']}</td></tr>"
            )
    summary = f"accuracy {report['accuracy']:.4f}"
    if report.get("loss") is not None:
        summary += f", loss {report['loss']:.4f}"
    return f"<p>{summary}</p><table>{''.join(rows)}</table>"


def _grad_cams(model: keras.Model, data: ImageDataset, count: int) -> str:
    split = data.validation if data.validation is not None else data.test
    if count == 0 or split is None or not len(split):
        return "<p class='muted'>No validation images.</p>"
    names = data.class_names
    drawings = []
    for index in range(min(count, len(split))):
        result = grad_cam(model, split.images[index])
        caption = (
            f"validation image {index}: true {names[int(split.labels[index])]}, "
            f"predicted {result.class_name} (p={result.probability:.2f})"
        )
        drawings.append((caption, result.save))
    return _pictures(drawings)


def _timing(run: Mapping[str, Any], directory: Path) -> str:
    history_file = directory / "history.json"
    rows_of_history = (
        json.loads(history_file.read_text(encoding="utf-8"))
        if history_file.is_file()
        else []
    )
    times = [
        float(row["epoch_time"]) for row in rows_of_history if row.get("epoch_time")
    ]
    resumes = ", ".join(
        f"after epoch {item['epoch']} at {item['at']}"
        for item in run.get("resumes", [])
    )
    rows = [
        ("started", run.get("started_at")),
        ("finished", run.get("finished_at")),
        ("resumed", resumes or "never"),
        ("training time (sum of epochs)", f"{sum(times):.1f} s" if times else None),
        ("mean epoch time", f"{sum(times) / len(times):.2f} s" if times else None),
    ]
    return _table(rows)


def _configuration(run: Mapping[str, Any]) -> str:
    versions = run.get("versions", {})
    hardware = run.get("hardware", {})
    rows = [(f"version of {name}", value) for name, value in versions.items()]
    rows += [(f"hardware: {name}", value) for name, value in hardware.items()]
    config = json.dumps(run.get("config", {}), indent=1, sort_keys=True)
    data = json.dumps(run.get("data", {}), indent=1, sort_keys=True)
    return (
        _table(rows)
        + f"<h3>Training configuration</h3><pre>{html.escape(config)}</pre>"
        + f"<h3>Data</h3><pre>{html.escape(data)}</pre>"
    )


def _table(rows: Iterable[tuple[str, Any]]) -> str:
    cells = "".join(
        f"<tr><th>{html.escape(str(key))}</th><td>{html.escape(str(value))}</td></tr>"
        for key, value in rows
        if value is not None
    )
    return f"<table>{cells}</table>"
