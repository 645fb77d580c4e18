"""The per-epoch record of a run: CSV, JSON, a DataFrame and learning curves."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from kerasimgcls._io import atomic_path, write_json_atomic, write_text_atomic
from kerasimgcls._validation import check_path_exists

__all__ = ["History"]

# Columns written first, in this order, when present; any other metric follows.
_LEADING = (
    "epoch",
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "learning_rate",
    "epoch_time",
)


def _clean(value: Any) -> Any:
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, int):
        return value
    number = float(value)
    return number if math.isfinite(number) else None


class History:
    """The metrics of a training run, one row (a dict) per completed epoch.

    Rows hold ``epoch`` (1-based), ``loss``, ``accuracy``, ``val_loss`` and
    ``val_accuracy`` (when there is a validation split), ``learning_rate`` at the
    end of the epoch, ``epoch_time`` in seconds, and any other compiled metric.

    Args:
        rows: The rows, oldest first.

    Example:
        >>> from kerasimgcls import History
        >>> history = History([{"epoch": 1, "loss": 0.9}, {"epoch": 2, "loss": 0.5}])
        >>> history.column("loss")
        [0.9, 0.5]
        >>> print(history.to_csv_string(), end="")
        epoch,loss
        1,0.9
        2,0.5
    """

    def __init__(self, rows: Iterable[Mapping[str, Any]] = ()) -> None:
        self.rows: list[dict[str, Any]] = [
            {str(key): _clean(value) for key, value in row.items()} for row in rows
        ]

    def __len__(self) -> int:
        return len(self.rows)

    def __repr__(self) -> str:
        return f"History({len(self.rows)} epochs, columns={self.columns})"

    @property
    def columns(self) -> list[str]:
        """Column names, the standard ones first, then other metrics sorted."""
        seen = {key for row in self.rows for key in row}
        leading = [name for name in _LEADING if name in seen]
        return leading + sorted(seen.difference(_LEADING))

    def column(self, name: str) -> list[Any]:
        """Return the values of column ``name``, one per epoch (``None`` if absent).

        Raises:
            KeyError: If no row has a column ``name``.
        """
        if name not in self.columns:
            raise KeyError(f"no column {name!r}; available: {self.columns}")
        return [row.get(name) for row in self.rows]

    def append(self, row: Mapping[str, Any]) -> None:
        """Add one epoch's row."""
        self.rows.append({str(key): _clean(value) for key, value in row.items()})

    def to_csv_string(self) -> str:
        """Return the history as CSV text with a header line."""
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=self.columns, lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            writer.writerow(
                {key: "" if value is None else value for key, value in row.items()}
            )
        return buffer.getvalue()

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write the history as CSV (atomically) and return the path."""
        return write_text_atomic(path, self.to_csv_string())

    def to_json(self, path: str | os.PathLike[str]) -> Path:
        """Write the history as a JSON list of rows (atomically) and return the path."""
        return write_json_atomic(path, self.rows)

    def to_dataframe(self) -> Any:
        """Return the history as a :class:`pandas.DataFrame` indexed by epoch.

        Raises:
            ImportError: If pandas is not installed.
        """
        try:
            import pandas as pd
        except ImportError as err:
            raise ImportError(
                "History.to_dataframe needs pandas; install it with "
                "`pip install pandas`, or use History.rows"
            ) from err
        frame = pd.DataFrame(self.rows, columns=self.columns)
        return frame.set_index("epoch") if "epoch" in frame else frame

    def plot(self, path: str | os.PathLike[str], *, title: str | None = None) -> Path:
        """Draw the learning curves (loss and accuracy, train and validation) to PNG.

        Args:
            path: Where to write the PNG (atomically).
            title: A title above the plots.

        Returns:
            The path of the image.

        Raises:
            ValueError: If the history is empty.
        """
        if not self.rows:
            raise ValueError("the history is empty: there is nothing to plot")
        from matplotlib.figure import Figure

        epochs = (
            self.column("epoch")
            if "epoch" in self.columns
            else list(range(1, len(self.rows) + 1))
        )
        panels = [name for name in ("loss", "accuracy") if name in self.columns]
        figure = Figure(figsize=(5.5 * max(len(panels), 1), 4.0), dpi=100)
        axes = figure.subplots(1, max(len(panels), 1), squeeze=False)[0]
        for axis, name in zip(axes, panels, strict=False):
            axis.plot(epochs, self.column(name), marker="o", label=f"train {name}")
            if f"val_{name}" in self.columns:
                axis.plot(
                    epochs,
                    self.column(f"val_{name}"),
                    marker="o",
                    label=f"validation {name}",
                )
            axis.set_xlabel("epoch")
            axis.set_ylabel(name)
            axis.grid(True, alpha=0.3)
            axis.legend()
        if title:
            figure.suptitle(title)
        figure.tight_layout()
        with atomic_path(path) as tmp:
            figure.savefig(tmp, format="png")
        return Path(path)

    @classmethod
    def from_json(cls, path: str | os.PathLike[str]) -> History:
        """Read a history written by :meth:`to_json`.

        Raises:
            FileNotFoundError: If ``path`` does not exist.
            ValueError: If the file is not a JSON list of objects.
        """
        resolved = check_path_exists(path, "path", kind="file")
        rows = json.loads(resolved.read_text(encoding="utf-8"))
        if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
            raise ValueError(f"{str(resolved)!r} is not a JSON list of history rows")
        return cls(rows)

    @classmethod
    def from_csv(cls, path: str | os.PathLike[str]) -> History:
        """Read a history written by :meth:`to_csv` (numbers parsed, blanks ``None``).

        Raises:
            FileNotFoundError: If ``path`` does not exist.
        """
        resolved = check_path_exists(path, "path", kind="file")
        with open(resolved, newline="", encoding="utf-8") as handle:
            rows = [
                {key: _parse_cell(key, value) for key, value in row.items()}
                for row in csv.DictReader(handle)
            ]
        return cls(rows)

    @classmethod
    def from_run(cls, run_dir: str | os.PathLike[str]) -> History:
        """Read the history of a run directory (``history.json``, else ``history.csv``).

        Raises:
            FileNotFoundError: If the directory has neither file.

        Example:
            >>> from kerasimgcls import History
            >>> History.from_run("runs/digits").column("val_accuracy")  # doctest: +SKIP
            [0.71, 0.86, 0.91]
        """
        directory = check_path_exists(run_dir, "run_dir", kind="dir")
        if (directory / "history.json").is_file():
            return cls.from_json(directory / "history.json")
        if (directory / "history.csv").is_file():
            return cls.from_csv(directory / "history.csv")
        raise FileNotFoundError(
            f"run_dir has no history.json or history.csv: {str(directory)!r}"
        )


def _parse_cell(key: str, text: str) -> Any:
    if text == "":
        return None
    if key == "epoch":
        return int(text)
    try:
        return float(text)
    except ValueError:
        return text
