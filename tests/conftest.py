"""Shared fixtures: the repository root, and the website, built once per test session.

The book is built exactly as the README's build command does (``jupyter-book build . -n -W
--keep-going``, cached execution), once per session, and shared by ``test_site.py``,
``test_links.py`` and ``test_browser.py``.

Environment variables:

- ``COURSE_BUILD_DIR``: build into ``$COURSE_BUILD_DIR/_build`` (``--path-output``) instead of
  the repository's ``_build`` (the default, so that a second run reuses the execution cache).
- ``COURSE_SKIP_BUILD=1``: test the site already built there, without building it again.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BUILD_ROOT = Path(os.environ.get("COURSE_BUILD_DIR") or ROOT).resolve()
HTML = BUILD_ROOT / "_build" / "html"


def toc_files() -> list[str]:
    """Every page of the book, in the order of ``_toc.yml`` (root first), without suffix."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))

    for part in toc.get("parts", []):
        walk(part.get("chapters"))
    walk(toc.get("chapters"))
    return files


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def build() -> subprocess.CompletedProcess:
    """Build the book once per session; the completed process carries the log."""
    if os.environ.get("COURSE_SKIP_BUILD") == "1":
        if not (HTML / "index.html").exists():
            pytest.fail(f"COURSE_SKIP_BUILD=1 but there is no built site in {HTML}")
        return subprocess.CompletedProcess([], 0, stdout="", stderr="")
    jb = shutil.which("jupyter-book", path=str(Path(sys.executable).parent)) or "jupyter-book"
    command = [jb, "build", str(ROOT), "-n", "-W", "--keep-going"]
    if BUILD_ROOT != ROOT:
        command += ["--path-output", str(BUILD_ROOT)]
    return subprocess.run(command, capture_output=True, text=True, timeout=1800, cwd=ROOT)


@pytest.fixture(scope="session")
def html_dir(build) -> Path:
    """The built website (``<build dir>/_build/html``).

    A build that only warned still wrote its pages (``--keep-going``): they are tested, and
    ``test_book_builds_without_warnings`` fails on the warnings.
    """
    if not (HTML / "index.html").exists():
        pytest.fail(f"the book did not build:\n{(build.stdout + build.stderr)[-3000:]}")
    return HTML


MINI_PAGE_HEADER = """---
jupytext:
  text_representation: {extension: .md, format_name: myst, format_version: 0.13}
kernelspec: {display_name: Python 3 (ipykernel), language: python, name: python3}
---
"""


@pytest.fixture(scope="session")
def mini_book(tmp_path_factory) -> subprocess.CompletedProcess:
    """A two-chapter book built with the course's configuration and extension, for what the
    chapters cannot show yet: two chapters citing the same work, an executed Altair chart.

    ``mini_book.html`` is its built site.
    """
    book = tmp_path_factory.mktemp("mini-book")
    shutil.copy(ROOT / "_config.yml", book)
    shutil.copy(ROOT / "references.bib", book)
    shutil.copytree(ROOT / "_ext", book / "_ext", ignore=shutil.ignore_patterns("__pycache__"))
    (book / "chapters").mkdir()
    (book / "_toc.yml").write_text(
        "format: jb-book\nroot: intro\nparts:\n  - caption: Chapters\n    chapters:\n"
        "      - file: chapters/a\n      - file: chapters/b\n  - caption: Reference\n"
        "    chapters:\n      - file: bibliography\n")
    (book / "intro.md").write_text("# Mini book\n\n```{tableofcontents}\n```\n")
    shutil.copy(ROOT / "bibliography.md", book)
    refs = "\n## References\n\n```{bibliography}\n:filter: docname in docnames\n```\n"
    (book / "chapters" / "a.md").write_text(MINI_PAGE_HEADER + """
# A chart

Reaction time rises {cite}`bates2015`, as $y = \\beta_0 + \\beta_1 x$ says.

```{code-cell} ipython3
import altair as alt
import pandas as pd
from course_lib.plotting import set_style

set_style()
data = pd.DataFrame({"day": [0, 3, 6, 9], "ms": [250.0, 280.0, 310.0, 340.0]})
alt.Chart(data, title="Reaction time", description="Four points rising from 250 to 340 ms").mark_point(
    size=300, filled=True).encode(x="day:Q", y="ms:Q", tooltip=["day", "ms"]).interactive()
```
""" + refs)
    (book / "chapters" / "b.md").write_text(MINI_PAGE_HEADER + """
# The same work again

Cited here too {cite}`bates2015` {cite}`belenky2003`.

```{code-cell} ipython3
1 + 1
```
""" + refs)
    jb = shutil.which("jupyter-book", path=str(Path(sys.executable).parent)) or "jupyter-book"
    proc = subprocess.run([jb, "build", str(book), "-n", "-W", "--keep-going"],
                          capture_output=True, text=True, timeout=900, cwd=book)
    proc.html = book / "_build" / "html"
    return proc
