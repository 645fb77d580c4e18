"""The documentation cannot rot: docstring examples run, every public name is in the
API reference, and every example script and page is wired into the Sphinx site."""

from __future__ import annotations

import doctest
import importlib
import re
from pathlib import Path

import pytest

import kerasimgcls

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCS = REPO_ROOT / "docs"
PACKAGE_DIR = REPO_ROOT / "src" / "kerasimgcls"
EXAMPLES = REPO_ROOT / "examples"

_DIRECTIVE = re.compile(
    r"^\.\.\s+(?:py:)?(?:auto)?(?:function|class|data|exception|module)::\s+"
    r"kerasimgcls\.(\w+)\s*$",
    re.MULTILINE,
)


def _module_names() -> list[str]:
    names = []
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
        if parts[-1] == "__main__":
            continue  # running it would start the command line
        if parts[-1] == "__init__":
            parts.pop()
        names.append(".".join(parts))
    return names


def _documented_names() -> set[str]:
    names: set[str] = set()
    for page in sorted((DOCS / "api").glob("*.rst")):
        names.update(_DIRECTIVE.findall(page.read_text(encoding="utf-8")))
    return names


def test_every_public_name_appears_in_the_api_reference() -> None:
    documented = _documented_names()
    missing = sorted(set(kerasimgcls.__all__) - documented)
    assert not missing, (
        f"add these public names to a page in docs/api/ (e.g. '.. autofunction:: "
        f"kerasimgcls.NAME'): {missing}"
    )


def test_the_api_reference_documents_only_names_that_exist() -> None:
    stale = sorted(
        name for name in _documented_names() if name not in kerasimgcls.__all__
    )
    assert not stale, f"docs/api/ documents names not in kerasimgcls.__all__: {stale}"


def test_the_module_list_finds_the_package() -> None:
    # Guards the doctest parametrisation below against silently running nothing.
    names = _module_names()
    assert "kerasimgcls" in names and "kerasimgcls.models.blocks" in names
    assert all(name.startswith("kerasimgcls") for name in names)


@pytest.mark.parametrize("module_name", _module_names())
def test_docstring_examples_run(module_name: str) -> None:
    module = importlib.import_module(module_name)
    finder = doctest.DocTestFinder(exclude_empty=True)
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    )
    failures: list[str] = []
    for test in finder.find(module, module_name):
        if test.examples and test.name.split(".")[-1] != "__builtins__":
            runner.run(test, out=failures.append, clear_globs=True)
    assert not failures, "".join(failures)


def test_a_failing_docstring_example_is_reported() -> None:
    # The doctest runner above must be able to fail.
    def broken() -> None:
        """Broken on purpose.

        >>> 1 + 1
        3
        """

    test = doctest.DocTestFinder().find(broken, "broken", globs={})[0]
    failures: list[str] = []
    result = doctest.DocTestRunner().run(test, out=failures.append)
    assert result.failed == 1 and "Expected" in "".join(failures)


def _toctree_entries(text: str) -> list[str]:
    entries = []
    for block in re.findall(
        r"```\{toctree\}\n(.*?)```|\.\. toctree::\n((?:[ \t]+[^\n]*\n|\n)+)",
        text,
        re.DOTALL,
    ):
        body = block[0] or block[1]
        for line in body.splitlines():
            line = line.strip()
            if line and not line.startswith(":"):
                entries.append(line)
    return entries


def test_every_page_is_in_a_toctree_and_every_toctree_entry_exists() -> None:
    pages = {
        path.relative_to(DOCS).with_suffix("").as_posix()
        for path in DOCS.rglob("*")
        if path.suffix in {".rst", ".md"} and "_build" not in path.parts
    }
    referenced: set[str] = set()
    for page in pages:
        source = next(DOCS.glob(f"{page}.*"))
        base = Path(page).parent
        for entry in _toctree_entries(source.read_text(encoding="utf-8")):
            referenced.add((base / entry).as_posix())
    assert referenced - pages == set(), (
        f"toctree entries without a page: {referenced - pages}"
    )
    orphans = pages - referenced - {"index"}
    assert not orphans, f"pages not reachable from the index: {sorted(orphans)}"


def test_every_example_script_is_included_in_the_docs() -> None:
    scripts = sorted(path.name for path in EXAMPLES.glob("*.py"))
    included: set[str] = set()
    for page in DOCS.rglob("*"):
        if page.suffix in {".rst", ".md"} and "_build" not in page.parts:
            text = page.read_text(encoding="utf-8")
            included.update(
                re.findall(r"literalinclude[}:]*\s+\S*examples/(\S+\.py)", text)
            )
    missing = sorted(set(scripts) - included)
    assert not missing, f"examples not shown in the docs (literalinclude): {missing}"
    assert not included - set(scripts), (
        f"docs include missing scripts: {included - set(scripts)}"
    )


def test_relative_links_between_pages_resolve() -> None:
    # Markdown links to other pages and files; Sphinx checks the {doc}/{ref} roles.
    link = re.compile(r"\]\((?!https?://|mailto:|#)([^)#\s]+)(?:#[^)]*)?\)")
    broken = []
    for page in DOCS.rglob("*.md"):
        if "_build" in page.parts:
            continue
        for target in link.findall(page.read_text(encoding="utf-8")):
            if not (page.parent / target).exists():
                broken.append(f"{page.relative_to(DOCS)} -> {target}")
    assert not broken, broken


# Pages whose Python code blocks run as they are, in order, in one namespace per
# page (in a temporary working directory). The value is a prelude providing what
# the page assumes from earlier context, and the heading where running stops.
RUNNABLE_PAGES = {
    "concepts.md": ("", None),
    "guide/models.md": (
        "import numpy as np\nuint8_images = np.zeros((2, 64, 64, 3), np.uint8)\n",
        None,
    ),
    "howto/extend-blocks.md": ("", "## A folder of larger colour images"),
}


@pytest.mark.parametrize("page", sorted(RUNNABLE_PAGES))
def test_code_blocks_on_pages_run(
    page: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kerasimgcls.models._registry as models

    prelude, stop = RUNNABLE_PAGES[page]
    text = (DOCS / page).read_text(encoding="utf-8")
    if stop is not None:
        text = text[: text.index(stop)]
    blocks = re.findall(r"```python\n(.*?)```", text, re.DOTALL)
    assert blocks, f"{page} has no python code block"
    # The pages register example models; keep the registry as it was.
    monkeypatch.setattr(models, "_REGISTRY", dict(models._REGISTRY))
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(prelude, f"{page}:prelude", "exec"), namespace)
    for index, block in enumerate(blocks):
        exec(compile(block, f"{page}:block{index}", "exec"), namespace)


def test_every_command_has_a_section_on_the_cli_page() -> None:
    import argparse

    from kerasimgcls.cli import build_parser

    parser = build_parser()
    commands = {
        name
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for name in action.choices
    }
    assert commands, "the parser has no commands"
    page = (DOCS / "guide" / "cli.md").read_text(encoding="utf-8")
    shown = set(re.findall(r"^```\{cli-help\} (\S+)$", page, re.MULTILINE))
    assert commands - shown == set(), (
        f"commands without a help section: {commands - shown}"
    )
    assert shown - commands == set(), (
        f"help sections for no command: {shown - commands}"
    )
