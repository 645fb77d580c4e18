from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from kerasimgcls._io import atomic_path, write_json_atomic, write_text_atomic


def test_write_json_atomic_round_trips_and_leaves_no_temporary_files(
    tmp_path: Path,
) -> None:
    path = write_json_atomic(tmp_path / "sub" / "run.json", {"a": [1, 2]})
    assert json.loads(path.read_text()) == {"a": [1, 2]}
    assert sorted(p.name for p in path.parent.iterdir()) == ["run.json"]


def test_atomic_path_keeps_the_old_file_when_the_writer_fails(tmp_path: Path) -> None:
    target = write_text_atomic(tmp_path / "history.csv", "old\n")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half a fi")
        raise RuntimeError("crash while writing")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.csv"]


def test_atomic_files_get_the_usual_permissions(tmp_path: Path) -> None:
    previous = os.umask(0o022)
    try:
        path = write_text_atomic(tmp_path / "metrics.json", "{}")
    finally:
        os.umask(previous)
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
