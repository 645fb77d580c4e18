"""List the functions in a source tree longer than a limit, longest first.

Usage::

    python benchmarks/function_lengths.py [ROOT] [--limit N] [--with-docstrings]

A function's length is the number of lines from its ``def`` (decorators
excluded) to its last line, as ``ast`` reports them, less the lines of its
docstring: the Google-style docstrings with examples that every public function
carries are documentation, not code to read. ``--with-docstrings`` counts them
too.
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path


def _docstring_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    first = node.body[0] if node.body else None
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        return (first.end_lineno or first.lineno) - first.lineno + 1
    return 0


def function_lengths(
    root: Path, *, with_docstrings: bool = False
) -> list[tuple[int, str]]:
    """Return ``(length, "path:line name")`` for every function under ``root``."""
    found: list[tuple[int, str]] = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if not with_docstrings:
                    length -= _docstring_lines(node)
                found.append((length, f"{path}:{node.lineno} {node.name}"))
    return sorted(found, reverse=True)


def main() -> None:
    """Print the functions over the limit."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default="src")
    parser.add_argument("--limit", type=int, default=60)
    parser.add_argument("--with-docstrings", action="store_true")
    args = parser.parse_args()
    lengths = function_lengths(Path(args.root), with_docstrings=args.with_docstrings)
    for length, where in lengths:
        if length > args.limit:
            print(f"{length:5d}  {where}")


if __name__ == "__main__":
    main()
