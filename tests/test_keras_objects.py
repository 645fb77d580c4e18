"""Every Keras object of the library is registered whatever a process imported first,
and the command line's exit code says whose fault an error is."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from kerasimgcls._keras_objects import SERIALIZABLE_MODULES
from kerasimgcls.cli import EXIT_CODES, exit_code_of, main

SRC = Path(__file__).resolve().parents[1] / "src"


def _registered_in_source() -> dict[str, list[str]]:
    """Module -> names of the classes it registers with Keras (read from the AST)."""
    found: dict[str, list[str]] = {}
    for path in sorted((SRC / "kerasimgcls").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and any(
                "register_keras_serializable" in ast.unparse(decorator)
                for decorator in node.decorator_list
            ):
                module = ".".join(path.relative_to(SRC).with_suffix("").parts)
                found.setdefault(module, []).append(node.name)
    return found


def test_the_list_names_every_module_that_registers_an_object() -> None:
    assert set(_registered_in_source()) == set(SERIALIZABLE_MODULES)


def _fresh(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={"TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"},
        check=False,
    )


_CHECK = """
import json, keras
missing = [name for name in {names} if keras.saving.get_registered_object(name) is None]
print(json.dumps(missing))
"""


@pytest.mark.parametrize(
    "first",
    [
        "import kerasimgcls",  # then keras: the hook registers when keras loads
        "import keras, kerasimgcls",  # keras first: registered at once
        "import kerasimgcls.models",  # a module that defines objects, first
        "import kerasimgcls.training._fine_tune",
        "import kerasimgcls.serving._export",
        # A module that imports keras first: keras finishes while that module is
        # half imported, and registration waits until it has finished.
        "import kerasimgcls.models.blocks",
        "import kerasimgcls.models.layers",
        "from kerasimgcls.data import load_digits",
        "import kerasimgcls.training",
    ],
)
def test_every_object_is_registered_whatever_came_first(first: str) -> None:
    names = [
        f"kerasimgcls>{name}"
        for names in _registered_in_source().values()
        for name in names
    ]
    done = _fresh(first + "\n" + _CHECK.format(names=names))
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_importing_the_package_does_not_import_keras() -> None:
    done = _fresh("import sys, kerasimgcls; print('keras' in sys.modules)")
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False"


def test_the_exit_code_says_whose_fault_it_is() -> None:
    import keras
    import numpy as np

    from kerasimgcls._validation import check_positive_int

    with pytest.raises(ValueError) as ours:
        check_positive_int(-1, "epochs")
    assert exit_code_of(ours.value) == 2
    with pytest.raises(Exception) as theirs:  # raised inside Keras or TensorFlow
        keras.ops.reshape(np.zeros(3), (2,))
    assert exit_code_of(theirs.value) == 70
    assert exit_code_of(PermissionError(13, "read-only")) == 2
    assert exit_code_of(ModuleNotFoundError("No module named 'onnx'")) == 2
    assert exit_code_of(KeyError("a bug")) == 70
    assert set(EXIT_CODES) == {0, 1, 2, 70, 130}


def test_an_internal_error_is_one_line_that_asks_for_a_report(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import keras
    import numpy as np

    import kerasimgcls.cli._summary as summary

    def broken(args: object) -> int:
        keras.ops.reshape(np.zeros(3), (2,))
        return 0

    monkeypatch.setattr(summary, "run", broken)
    assert main(["summary"]) == 70
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1
    assert error.startswith("kerasimgcls summary: internal error: ")
    assert "not in your input" in error and "--verbose" in error
    with pytest.raises(Exception):  # noqa: B017 (--verbose shows the traceback)
        main(["--verbose", "summary"])
