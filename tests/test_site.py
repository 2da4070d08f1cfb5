"""The website: a warning-free build that executes every chapter, pages with their figures,
launch and download buttons, a glossary and a bibliography, the site's own copies of MathJax and
Vega, and a Binder configuration that repo2docker accepts and that opens chapters as notebooks.

The book is built once per session by the ``build`` fixture in ``conftest.py``; the browser
checks are in ``test_browser.py`` and the internal links in ``test_links.py``.
"""

import json
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import jupytext
import pytest
from conftest import ROOT, toc_files

sys.path.insert(0, str(ROOT / "_ext"))
import course_vendor  # noqa: E402 (the site's pinned JavaScript)

GLOSSARY_TERMS = [
    "fixed effect", "random effect", "mixed model", "variance component", "partial pooling",
    "shrinkage", "REML", "likelihood-ratio test", "HDI", "posterior", "pseudo-replication",
    "receptive field", "LNP model", "spike-triggered average", "regularisation", "cross-validation",
]


def test_book_builds_without_warnings(build):
    log = build.stdout + build.stderr
    warnings = [line for line in log.splitlines() if "WARNING" in line and "IPKernelApp" not in line]
    assert build.returncode == 0 and not warnings, "\n".join(warnings) or log[-3000:]


def test_toc_lists_existing_chapters_in_order():
    files = toc_files()
    chapters = [f for f in files if f.startswith("chapters/")]
    assert chapters == sorted(chapters) and chapters[0] == "chapters/01-regression"
    for f in files:
        assert (ROOT / f"{f}.md").exists(), f"{f}.md is in _toc.yml but does not exist"


def test_every_page_is_rendered_and_free_of_errors(html_dir):
    for f in toc_files():
        page = html_dir / f"{f}.html"
        assert page.exists(), f"{page} was not built"
        text = page.read_text(encoding="utf-8")
        assert "output traceback" not in text and "Traceback (most recent call last)" not in text, f


def test_chapter_figures_have_alt_text(html_dir):
    """Every chapter has figures (images or Altair charts); every image has a useful alt text.
    (A chart's description is checked in the browser, where Vega renders it.)"""
    for f in [f for f in toc_files() if f.startswith("chapters/")]:
        html = (html_dir / f"{f}.html").read_text(encoding="utf-8")
        images = [img for img in re.findall(r"<img [^>]*>", html) if "_images/" in img]
        charts = html.count('class="course-altair"')
        assert images or charts, f"{f}: expected figures"
        for img in images:
            alt = re.search(r'alt="([^"]*)"', img)
            assert alt and len(alt.group(1)) > 20, f"{f}: figure without a useful alt text: {img[:120]}"
            src = re.search(r'src="([^"]+)"', img).group(1)
            assert (html_dir / f).parent.joinpath(src).resolve().exists(), src


def test_figures_are_opaque_so_they_stay_legible_in_dark_mode(html_dir):
    from PIL import Image

    for png in sorted((html_dir / "_images").glob("*.png")):
        with Image.open(png) as im:
            rgba = im.convert("RGBA")
            corners = [rgba.getpixel((x, y)) for x in (0, rgba.width - 1) for y in (0, rgba.height - 1)]
        assert all(a == 255 and min(r, g, b) >= 200 for r, g, b, a in corners), (
            f"{png.name}: corners {corners}; a transparent or dark figure background disappears in "
            "dark mode (course_lib.plotting.set_style() sets a white one)")


def test_pages_have_binder_colab_repository_and_download_buttons(html_dir):
    html = (html_dir / "chapters" / "01-regression.html").read_text(encoding="utf-8")
    # both launch buttons open the chapter's notebook (chapters/*.ipynb, made by course_lib.release)
    assert "https://mybinder.org/v2/gh/mixed-models-neuro/course/main?urlpath=lab/tree/chapters/01-regression.ipynb" in html
    assert "https://colab.research.google.com/github/mixed-models-neuro/course/blob/main/chapters/01-regression.ipynb" in html
    assert "https://github.com/mixed-models-neuro/course" in html
    assert "btn-download-source-button" in html or "Download source file" in html


def test_chapter_numbers_and_references_are_rendered(html_dir):
    html = (html_dir / "chapters" / "01-regression.html").read_text(encoding="utf-8")
    text = re.sub(r"<[^>]+>", "", html)
    assert "251.4 ms on day 0" in text and "10.47 ms per day" in text
    assert "Belenky" in text and "Bates" in text  # the bibliography


def _pins(path: Path) -> dict[str, str]:
    """A requirements file's exact pins (name: version); fails on a line that is not one."""
    pins = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and line != "-e .":
            assert re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[\w.]+", line), f"{path.name}: not pinned exactly: {line}"
            name, version = line.split("==")
            pins[name.lower()] = version
    assert "-e ." in path.read_text().splitlines(), f"{path} does not install the course's package"
    return pins


def test_binder_pins_python_and_every_requirement():
    assert (ROOT / "binder" / "runtime.txt").read_text().strip() == "python-3.11"
    _pins(ROOT / "requirements.txt")
    binder = _pins(ROOT / "binder" / "requirements.txt")
    assert {"jupyterlab", "jupytext", "ipykernel"} <= set(binder)


def test_binder_is_lean_and_pinned_like_the_build():
    """binder/ (what Binder and scripts/lab.sh install) has the students' runtime only, at the
    versions the book is built and tested with."""
    full, binder = _pins(ROOT / "requirements.txt"), _pins(ROOT / "binder" / "requirements.txt")
    tooling = {"pytest", "nbval", "playwright", "jupyter-repo2docker", "jupyter-book", "sphinx", "myst-nb",
               "sphinx-book-theme", "sphinxcontrib-bibtex", "build", "nbclient", "dask", "distributed", "psutil"}
    assert not tooling & set(binder), f"test, build or grading tools in binder/: {tooling & set(binder)}"
    assert {n: v for n, v in binder.items() if n in full} == {n: full[n] for n in binder if n in full}
    # every runtime dependency course_lib declares is pinned there
    import tomllib

    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    names = {re.match(r"[A-Za-z0-9_.\-]+", d).group(0).lower() for d in declared}
    assert names - {"patsy"} <= set(binder), names - set(binder)  # patsy comes with statsmodels


def test_binder_postbuild_makes_jupytext_open_chapters_as_notebooks(tmp_path):
    post_build = ROOT / "binder" / "postBuild"
    assert os.access(post_build, os.X_OK)
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp_path), PATH=f"{Path(os.sys.executable).parent}:{os.environ['PATH']}")
    subprocess.run(["bash", str(post_build)], check=True, env=env, cwd=ROOT)
    settings = json.loads((tmp_path / "labconfig" / "default_setting_overrides.json").read_text())
    viewers = settings["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"]
    assert viewers["markdown"] == viewers["myst"] == "Jupytext Notebook"


@pytest.mark.parametrize("chapter", sorted((ROOT / "chapters").glob("*.md")), ids=lambda p: p.name)
def test_chapter_is_a_jupytext_notebook_with_a_python_kernel(chapter):
    nb = jupytext.read(chapter)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    assert sum(c.cell_type == "code" for c in nb.cells) >= 5


# ---- the site serves its own JavaScript ---------------------------------------------------

def _asset_urls(html: str) -> list[str]:
    scripts = re.findall(r"<script[^>]*\ssrc=\"([^\"]+)\"", html)
    styles = re.findall(r"<link[^>]*rel=\"stylesheet\"[^>]*href=\"([^\"]+)\"", html)
    return scripts + styles


def test_no_page_loads_a_script_or_stylesheet_from_another_site(html_dir):
    for page in sorted(html_dir.rglob("*.html")):
        if "_static" in page.parts or "_vendor" in page.parts:
            continue
        remote = [u for u in _asset_urls(page.read_text(encoding="utf-8")) if re.match(r"(https?:)?//", u)]
        assert not remote, f"{page.relative_to(html_dir)} loads {remote}"


def test_mathjax_and_vega_are_served_from_the_site(html_dir):
    html = (html_dir / "chapters" / "01-regression.html").read_text(encoding="utf-8")
    mathjax = [u for u in _asset_urls(html) if "mathjax" in u.lower()]
    assert [u.split("?")[0] for u in mathjax] == ["../_static/../_vendor/mathjax@3.2.2/es5/tex-chtml.js"], mathjax
    for package in course_vendor.PACKAGES:
        folder = html_dir / "_vendor" / package.folder
        assert (folder / ".integrity").read_text() == package.integrity, folder
        for pattern in package.keep:
            assert list(folder.glob(pattern)), f"{folder}: nothing matches {pattern}"
    assert len(list((html_dir / "_vendor/mathjax@3.2.2/es5/output/chtml/fonts/woff-v2").glob("*.woff"))) >= 20


def test_vendored_tarballs_are_checked_against_their_pinned_hash():
    import base64
    import hashlib

    data = b"not the real tarball"
    good = "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()
    course_vendor.verify(data, good)
    with pytest.raises(ValueError, match="integrity mismatch"):
        course_vendor.verify(data + b"!", good)
    with pytest.raises(ValueError, match="only sha512"):
        course_vendor.verify(data, "sha1-abc")


# ---- reader features ----------------------------------------------------------------------

def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_glossary_defines_the_course_terms_and_chapter_1_links_to_it(html_dir):
    html = (html_dir / "glossary.html").read_text(encoding="utf-8")
    defined = set(re.findall(r'<dt id="term-([^"]+)"', html))
    for term in GLOSSARY_TERMS:
        assert re.sub(r"[^A-Za-z0-9]+", "-", term) in defined, f"glossary lacks {term!r}: {sorted(defined)}"
    chapter = (html_dir / "chapters" / "01-regression.html").read_text(encoding="utf-8")
    assert len(set(re.findall(r'href="\.\./glossary\.html#(term-[^"]+)"', chapter))) >= 3


def test_bibliography_page_lists_every_reference(html_dir):
    from pybtex.database import parse_file  # sphinxcontrib-bibtex's own parser

    entries = parse_file(str(ROOT / "references.bib")).entries
    html = (html_dir / "bibliography.html").read_text(encoding="utf-8")
    assert html.count('role="doc-biblioentry"') == len(entries) > 0
    text = _text(html)
    for key, entry in entries.items():
        assert entry.fields["year"] in text, f"bibliography page lacks {key}"
        if "doi" in entry.fields:
            assert entry.fields["doi"] in html, f"bibliography page lacks the DOI of {key}"


def test_issue_button_prefills_a_report_naming_the_page(html_dir):
    from urllib.parse import parse_qs, urlsplit

    html = (html_dir / "chapters" / "01-regression.html").read_text(encoding="utf-8")
    url = re.search(r'href="(https://github\.com/mixed-models-neuro/course/issues/new\?[^"]+)"', html).group(1)
    query = parse_qs(urlsplit(url.replace("&amp;", "&")).query)
    assert query["title"][0].startswith("[chapters/01-regression]")
    body = query["body"][0]
    assert "chapters/01-regression.md" in body and "1. Regression" in body
    assert "What is wrong" in body and "What did you expect" in body


# ---- Binder -------------------------------------------------------------------------------

def _repo2docker(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "repo2docker"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=120, cwd=ROOT)


def test_binder_configuration_validates_with_repo2docker():
    """repo2docker --no-build renders the Dockerfile Binder would build, without Docker."""
    proc = _repo2docker("--no-build", "--debug", str(ROOT))
    assert proc.returncode == 0, proc.stderr[-3000:]
    dockerfile, log = proc.stdout, proc.stderr
    assert "Building conda environment for python=3.11" in log, log[-2000:]
    # the frozen base environment for Python 3.11 (file names are escaped: "." is "-2e")
    assert re.search(r"environment(\.|-2e)py(-|-2d)3(\.|-2e)11", dockerfile)
    # binder/ is read instead of the root: binder/requirements.txt goes into the environment that
    # runs JupyterLab (jupytext's viewer works); the root's requirements.txt (tests, build) is not
    assert "ENV KERNEL_PYTHON_PREFIX=${NB_PYTHON_PREFIX}" in dockerfile
    lines = dockerfile.splitlines()
    copy_repo = next(i for i, l in enumerate(lines) if re.match(r"COPY .* src/ \$\{REPO_DIR\}/", l))
    install = next(i for i, l in enumerate(lines) if 'pip install --no-cache-dir -r "binder/requirements.txt"' in l)
    post_build = next(i for i, l in enumerate(lines) if l.strip() == "RUN ./binder/postBuild")
    assert '-r "requirements.txt"' not in dockerfile
    assert copy_repo < install < post_build, "requirements (with -e .) need the repository copied first"


@pytest.mark.filterwarnings("ignore::DeprecationWarning:pythonjsonlogger")  # repo2docker's logger
def test_repo2docker_picks_the_python_buildpack_with_the_pinned_python(monkeypatch):
    from repo2docker.app import Repo2Docker
    from repo2docker.buildpacks import PythonBuildPack

    monkeypatch.chdir(ROOT)
    app = Repo2Docker()
    picked = next(bp for bp in (BP(base_image=app.base_image) for BP in app.buildpacks) if bp.detect())
    assert type(picked) is PythonBuildPack
    assert picked.python_version == "3.11"
    lock = Path(sys.modules["repo2docker.buildpacks.conda"].__file__).parent / "environment.py-3.11-linux-64.lock"
    assert re.search(r"/jupyterlab-4\.", lock.read_text()), "Binder's JupyterLab should be version 4"


def test_jupytext_ships_the_jupyterlab_extension_that_opens_md_as_notebooks():
    files = {str(f) for f in metadata.files("jupytext")}
    assert any(f.endswith("share/jupyter/labextensions/jupyterlab-jupytext/package.json") for f in files)


def test_chapters_citing_the_same_work_and_an_altair_chart_build_without_warnings(mini_book):
    """Chapters 2-5 will cite works chapter 1 cites, and chapter 4 draws Altair charts: a small
    book with the course's configuration shows that both stay warning-free."""
    log = mini_book.stdout + mini_book.stderr
    warnings = [line for line in log.splitlines() if "WARNING" in line and "IPKernelApp" not in line]
    assert mini_book.returncode == 0 and not warnings, "\n".join(warnings) or log[-3000:]
    a = (mini_book.html / "chapters" / "a.html").read_text(encoding="utf-8")
    b = (mini_book.html / "chapters" / "b.html").read_text(encoding="utf-8")
    assert 'class="course-altair"' in a
    # each chapter's citation links to its own reference list
    for html in (a, b):
        target = re.search(r'<a class="reference internal" href="([^"]*)#id\d+"[^>]*>[^<]*Bates', html)
        assert target and target.group(1) == "", target and target.group(0)
