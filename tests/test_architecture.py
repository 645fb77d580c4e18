"""The shape the architecture page promises: floors that import only downward, no
import cycle, a short Trainer and short functions.

Every import counts: at module level, inside a function or a class, and under
``TYPE_CHECKING`` (``ast.walk`` over the whole module, not only its body).
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: The floors of the library, lowest first (docs/contributing/architecture.md). A
#: module may import its own floor and the floors below it, never one above.
FLOORS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("core", ("_version", "_lazy", "_validation", "_io")),
    ("data", ("data",)),
    ("models", ("models",)),
    ("inference", ("inference",)),
    ("training", ("training",)),
    ("serving and analysis", ("serving", "analysis")),
    ("cli", ("cli", "__main__")),
    ("package", ("", "_keras_objects")),
)


def _modules() -> dict[str, Path]:
    modules: dict[str, Path] = {}
    for path in SRC.rglob("*.py"):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    return modules


def _module_graph() -> dict[str, set[str]]:
    """Each module and the modules of the library it imports, anywhere in it."""
    modules = _modules()
    graph = {}
    for name, path in modules.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                submodules = {f"{node.module}.{alias.name}" for alias in node.names}
                found.update(submodules & modules.keys())
                # `from package import submodule` runs the package's __init__
                # as every import of a submodule does: not an arrow of its own.
                if not submodules <= modules.keys():
                    found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
        graph[name] = {dep for dep in found if dep in modules and dep != name}
    return graph


def floor_of(module: str) -> int:
    """The index in :data:`FLOORS` of ``module`` (``"kerasimgcls.data._files"``)."""
    rest = module.removeprefix("kerasimgcls").removeprefix(".")
    room = rest.split(".")[0]
    for index, (_, rooms) in enumerate(FLOORS):
        if room in rooms:
            return index
    raise AssertionError(f"{module} is on no floor; add its room to FLOORS")


def _upward(graph: dict[str, set[str]]) -> list[str]:
    arrows = []
    for module, deps in sorted(graph.items()):
        for dep in sorted(deps):
            # A package's own __init__ is imported with any of its modules.
            if module.startswith(dep + ".") and floor_of(dep) == floor_of(module):
                continue
            if floor_of(dep) > floor_of(module):
                arrows.append(f"{module} -> {dep}")
    return arrows


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """Return one cycle of ``graph`` (a depth-first search), or ``None``."""
    state: dict[str, int] = {}  # 1 on the path, 2 done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                return [*path[path.index(dep) :], dep]
            if dep not in state and (found := visit(dep)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle_in_src() -> None:
    graph = _module_graph()
    assert "kerasimgcls.training._trainer" in graph
    assert _cycle(graph) is None, " -> ".join(_cycle(graph) or [])


def test_every_module_is_on_a_floor() -> None:
    for module in _modules():
        floor_of(module)


def test_no_module_imports_a_floor_above_its_own() -> None:
    assert _upward(_module_graph()) == []


def test_function_level_imports_are_seen() -> None:
    graph = _module_graph()
    # cli/_train.py imports the Trainer inside a function only.
    assert "kerasimgcls.training" in graph["kerasimgcls.cli._train"]


def test_the_floor_check_finds_an_upward_arrow() -> None:
    graph = {
        "kerasimgcls.models._registry": {"kerasimgcls.models.transfer"},
        "kerasimgcls.models.transfer": {"kerasimgcls.inference._load"},
    }
    assert _upward(graph) == [
        "kerasimgcls.models.transfer -> kerasimgcls.inference._load"
    ]
    with pytest.raises(AssertionError, match="on no floor"):
        floor_of("kerasimgcls.nowhere")


def test_the_registry_imports_no_architecture() -> None:
    assert _module_graph()["kerasimgcls.models._registry"] <= {
        "kerasimgcls._validation"
    }


def test_what_a_model_file_names_is_registered_below_inference() -> None:
    """``load_model`` registers by importing the models that define the objects;
    only checkpoints name training's objects (registered by ``import kerasimgcls``)."""
    from kerasimgcls._keras_objects import SERIALIZABLE_MODULES

    reader = _module_graph()["kerasimgcls.models._file"]
    for module in SERIALIZABLE_MODULES:
        if floor_of(module) <= floor_of("kerasimgcls.models"):
            assert module in reader, module


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_trainer_and_functions_are_short(
    load_benchmark: Callable[[str], ModuleType],
) -> None:
    trainer = SRC / "kerasimgcls" / "training" / "_trainer.py"
    assert len(trainer.read_text(encoding="utf-8").splitlines()) < 400
    lengths = load_benchmark("function_lengths").function_lengths(SRC)
    too_long = [(length, where) for length, where in lengths if length > 60]
    assert not too_long, too_long
