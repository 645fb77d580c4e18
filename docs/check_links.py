"""Check every internal link of the built HTML site: target page and anchor exist.

Sphinx's ``linkcheck`` builder checks external URLs but leaves links between pages
unchecked; this does the internal half, offline. Run it after building:

    sphinx-build -W --keep-going -b html docs docs/_build/html
    python docs/check_links.py docs/_build/html

It exits with status 1 and lists each broken link if there is one.
"""

from __future__ import annotations

import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for key in ("id", "name"):
            if values.get(key):
                self.ids.add(str(values[key]))
        if tag == "a" and values.get("href"):
            self.links.append(str(values["href"]))


def check(site: Path) -> list[str]:
    pages: dict[Path, _Page] = {}
    for path in sorted(site.rglob("*.html")):
        page = _Page()
        page.feed(path.read_text(encoding="utf-8"))
        pages[path.resolve()] = page
    broken = []
    for path, page in pages.items():
        if "_modules" in path.parts or "_sources" in path.parts:
            continue  # Sphinx's own source listings
        for href in page.links:
            parts = urlsplit(href)
            if parts.scheme or parts.netloc or href.startswith("mailto:"):
                continue  # external: Sphinx's linkcheck builder covers these
            target = (
                (path.parent / unquote(parts.path)).resolve() if parts.path else path
            )
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(
                    f"{path.relative_to(site.resolve())}: {href} (no such file)"
                )
            elif parts.fragment and target.suffix == ".html":
                ids = pages[target].ids if target in pages else set()
                if unquote(parts.fragment) not in ids:
                    broken.append(
                        f"{path.relative_to(site.resolve())}: {href} (no such anchor)"
                    )
    return broken


def main() -> int:
    site = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/_build/html")
    if not (site / "index.html").is_file():
        print(f"no built site at {site}; build it first", file=sys.stderr)
        return 2
    broken = check(site)
    count = sum(1 for _ in site.rglob("*.html"))
    for line in broken:
        print(line)
    print(f"{count} pages checked, {len(broken)} broken internal link(s)")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
