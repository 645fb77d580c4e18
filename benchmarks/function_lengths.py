"""List the functions in a source tree longer than a limit, longest first.

Usage::

    python benchmarks/function_lengths.py [ROOT] [--limit N]

A function's length is the number of lines from its ``def`` (decorators
excluded) to its last line, docstring included, as ``ast`` reports them.
"""

from __future__ import annotations

import argparse
import ast
from pathlib import Path


def function_lengths(root: Path) -> list[tuple[int, str]]:
    """Return ``(length, "path:line name")`` for every function under ``root``."""
    found: list[tuple[int, str]] = []
    for path in sorted(root.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                found.append((length, f"{path}:{node.lineno} {node.name}"))
    return sorted(found, reverse=True)


def main() -> None:
    """Print the functions over the limit."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("root", nargs="?", default="src")
    parser.add_argument("--limit", type=int, default=60)
    args = parser.parse_args()
    for length, where in function_lengths(Path(args.root)):
        if length > args.limit:
            print(f"{length:5d}  {where}")


if __name__ == "__main__":
    main()
