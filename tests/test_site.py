"""The website: a warning-free build that executes every chapter, pages with their figures,
launch and download buttons, and a Binder configuration that opens chapters as notebooks."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import jupytext
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"


def toc_files():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    files = [toc["root"]]
    for part in toc["parts"]:
        files += [c["file"] for c in part["chapters"]]
    return files


@pytest.fixture(scope="module")
def build():
    """Build the book exactly as the README's build command does (cached execution)."""
    jb = shutil.which("jupyter-book", path=str(Path(os.sys.executable).parent)) or "jupyter-book"
    proc = subprocess.run(
        [jb, "build", str(ROOT), "-n", "-W", "--keep-going"],
        capture_output=True, text=True, timeout=1800,
    )
    return proc


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


def test_every_page_is_rendered_and_free_of_errors(build):
    for f in toc_files():
        page = HTML / f"{f}.html"
        assert page.exists(), f"{page} was not built"
        text = page.read_text(encoding="utf-8")
        assert "output traceback" not in text and "Traceback (most recent call last)" not in text, f


def test_chapter_figures_are_images_with_alt_text(build):
    for f in [f for f in toc_files() if f.startswith("chapters/")]:
        html = (HTML / f"{f}.html").read_text(encoding="utf-8")
        images = [img for img in re.findall(r"<img [^>]*>", html) if "_images/" in img]
        assert len(images) >= 3, f"{f}: expected figures"
        for img in images:
            alt = re.search(r'alt="([^"]*)"', img)
            assert alt and len(alt.group(1)) > 20, f"{f}: figure without a useful alt text: {img[:120]}"
            src = re.search(r'src="([^"]+)"', img).group(1)
            assert (HTML / f).parent.joinpath(src).resolve().exists(), src


def test_pages_have_binder_launch_repository_and_download_buttons(build):
    html = (HTML / "chapters" / "01-regression.html").read_text(encoding="utf-8")
    assert "https://mybinder.org/v2/gh/mixed-models-neuro/course/main?urlpath=lab/tree/chapters/01-regression.md" in html
    assert "https://github.com/mixed-models-neuro/course" in html
    assert "btn-download-source-button" in html or "Download source file" in html


def test_chapter_numbers_and_references_are_rendered(build):
    html = (HTML / "chapters" / "01-regression.html").read_text(encoding="utf-8")
    text = re.sub(r"<[^>]+>", "", html)
    assert "251.4 ms on day 0" in text and "10.47 ms per day" in text
    assert "Belenky" in text and "Bates" in text  # the bibliography


def test_binder_pins_python_and_every_requirement():
    assert (ROOT / "runtime.txt").read_text().strip() == "python-3.11"
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and line != "-e .":
            assert re.fullmatch(r"[A-Za-z0-9_.\-\[\]]+==[\w.]+", line), f"not pinned exactly: {line}"
    assert "-e ." in (ROOT / "requirements.txt").read_text().splitlines()


def test_binder_postbuild_makes_jupytext_open_chapters_as_notebooks(tmp_path):
    post_build = ROOT / "postBuild"
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
