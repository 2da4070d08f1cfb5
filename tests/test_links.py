"""Internal links of the built website: every relative href and src resolves to a file of the
site, and every #anchor to an id on the target page.

External links are not checked here (CI has no internet): ``bash scripts/linkcheck.sh`` runs
Sphinx's linkcheck builder over them.
"""

from __future__ import annotations

import html.parser
import posixpath
from functools import lru_cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

SKIP_DIRS = {"_static", "_vendor", "_sources", "_images", "_downloads", "reports", "screenshots"}
URL_ATTRS = {"a": "href", "link": "href", "img": "src", "script": "src", "iframe": "src",
             "source": "src", "video": "src", "audio": "src"}


class _Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.ids: set[str] = set()
        self.urls: list[tuple[str, str]] = []  # (tag, url)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ("id", "name") if tag == "a" else ("id",):
            if attrs.get(key):
                self.ids.add(attrs[key])
        attr = URL_ATTRS.get(tag)
        if attr and attrs.get(attr):
            self.urls.append((tag, attrs[attr]))


@lru_cache(maxsize=None)
def parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8", errors="replace"))
    return page


def pages(html_dir: Path) -> list[Path]:
    return sorted(p for p in html_dir.rglob("*.html")
                  if not SKIP_DIRS.intersection(p.relative_to(html_dir).parts))


def broken_links(html_dir: Path, page_path: Path) -> list[str]:
    """The relative URLs on one page that point at no file, or at an anchor that is not there."""
    broken = []
    for tag, url in parse(page_path).urls:
        parts = urlsplit(url)
        if parts.scheme or parts.netloc:
            continue  # http(s), mailto, data, javascript: external, for scripts/linkcheck.sh
        if url == "#":
            continue  # a button, not a link
        target = page_path if not parts.path else (page_path.parent / unquote(parts.path))
        target = Path(posixpath.normpath(str(target)))
        if target.is_dir():
            target = target / "index.html"
        if not target.exists():
            broken.append(f"<{tag}> {url}: no such file")
            continue
        fragment = unquote(parts.fragment)
        if fragment and target.suffix == ".html" and fragment not in parse(target).ids:
            broken.append(f"<{tag}> {url}: no id {fragment!r} in {target.name}")
    return broken


def test_site_has_pages(html_dir):
    assert len(pages(html_dir)) >= 4


def test_every_relative_link_and_anchor_resolves(html_dir):
    problems = {}
    for page_path in pages(html_dir):
        broken = broken_links(html_dir, page_path)
        if broken:
            problems[str(page_path.relative_to(html_dir))] = broken
    assert not problems, "\n".join(f"{page}:\n  " + "\n  ".join(b) for page, b in problems.items())


def test_link_checker_finds_a_broken_link_and_a_missing_anchor(tmp_path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "index.html").write_text('<p id="top">x</p><a href="sub/page.html#here">ok</a>')
    (tmp_path / "sub" / "page.html").write_text(
        '<span id="here"></span><a href="../index.html#top">ok</a> <a href="../index.html#gone">anchor</a>'
        ' <img src="../_images/missing.png"> <a href="https://example.org/x">external</a> <a href="#">button</a>'
        ' <a href="#here">same page</a>')
    assert broken_links(tmp_path, tmp_path / "index.html") == []
    broken = broken_links(tmp_path, tmp_path / "sub" / "page.html")
    assert len(broken) == 2 and "no id 'gone'" in broken[0] and "missing.png" in broken[1], broken


@pytest.mark.parametrize("url", ["mailto:a@b.c", "https://mybinder.org/v2/gh/x", "javascript:void(0)"])
def test_external_urls_are_left_to_linkcheck(tmp_path, url):
    (tmp_path / "index.html").write_text(f'<a href="{url}">x</a>')
    assert broken_links(tmp_path, tmp_path / "index.html") == []
