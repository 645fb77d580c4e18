"""Sphinx configuration for the kerasimgcls documentation."""

from __future__ import annotations

import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import kerasimgcls

project = "kerasimgcls"
author = "The kerasimgcls developers"
copyright = "2026, The kerasimgcls developers"
release = kerasimgcls.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.intersphinx",
    "sphinx.ext.viewcode",
    "sphinx.ext.doctest",
    "myst_parser",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build"]

autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_rtype = False


def _online(host: str) -> bool:
    """Whether ``host`` resolves: intersphinx inventories are fetched only online."""
    import socket

    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        return False
    return True


# Offline (as in CI), cross-references to Python and NumPy render as plain text
# instead of failing the build.
_INVENTORIES = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable", None),
}
intersphinx_mapping = {
    key: value for key, value in _INVENTORIES.items() if _online(value[0].split("/")[2])
}
intersphinx_timeout = 5

# Every cross-reference inside kerasimgcls must resolve. References to other
# projects resolve only when their inventories are fetched (online; Python and NumPy
# only), so they are exempt: offline builds, as in CI, must pass too.
nitpicky = True
_EXTERNAL = (
    r"(numpy|np|os|pathlib|collections|typing|abc|random|pickle|_pickle|keras|tf|"
    r"tensorflow|sklearn|pandas|PIL|matplotlib)(\..+)?"
)
nitpick_ignore_regex = [
    (r"py:.*", _EXTERNAL),
    # Type aliases and type variables that appear in rendered signatures.
    (
        r"py:class",
        r"(Path|ModelOrFactory|Column|InputScaling|ArrayLike|kerasimgcls\.models\.(_registry\.)?_F|"
        r"(kerasimgcls\.(analysis\.)?plots\.)?_(GradCam|SimilarImages|LearningRateCurve)Like)",
    ),
    # Helpers named in docstrings that are not part of the public API.
    (r"py:func", r"(default_cache_dir|make_schedule)"),
]
html_theme = "furo"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_title = f"kerasimgcls {release}"
myst_heading_anchors = 3


# ``.. cli-help:: COMMAND`` renders ``kerasimgcls COMMAND --help`` from the parser
# itself, so the command-line reference cannot drift from the code.
def _cli_help(command: str | None) -> str:
    import argparse

    from kerasimgcls.cli import build_parser

    os.environ["COLUMNS"] = "88"
    parser = build_parser()
    if command:
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                if command not in action.choices:
                    raise ValueError(f"cli-help: unknown command {command!r}")
                parser = action.choices[command]
    return parser.format_help()


def setup(app):
    from docutils import nodes
    from sphinx.util.docutils import SphinxDirective

    class CliHelp(SphinxDirective):
        optional_arguments = 1

        def run(self):
            text = _cli_help(self.arguments[0] if self.arguments else None)
            node = nodes.literal_block(text, text)
            node["language"] = "text"
            return [node]

    class RecipeList(SphinxDirective):
        """``.. recipe-list::``: each registered recipe and its description."""

        def run(self):
            from kerasimgcls import get_recipe, list_recipes

            items = nodes.bullet_list()
            for name in list_recipes():
                paragraph = nodes.paragraph()
                paragraph += nodes.literal(name, name)
                paragraph += nodes.Text(f": {get_recipe(name).description}")
                item = nodes.list_item()
                item += paragraph
                items += item
            return [items]

    app.add_directive("cli-help", CliHelp)
    app.add_directive("recipe-list", RecipeList)
