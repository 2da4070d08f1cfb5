"""Make the student copies of the exercise notebooks from the instructor notebooks.

An instructor notebook (``exercises/NN-name.ipynb``) marks each solution between two
marker lines::

    ### BEGIN SOLUTION
    beta = np.linalg.solve(X.T @ X, X.T @ y)
    ### END SOLUTION

The student copy (``exercises/student/NN-name.ipynb``) replaces each marked region by a
stub at the same indentation,
``raise NotImplementedError("ex1-fit-ols: replace this line with your solution")``,
and clears every output and execution count. Graded cells keep their ids and their
``metadata.course`` record (``part``, ``role``, ``points``), which the checks and the
grader match on.

Every student copy opens with an "Open in Colab" badge and a cell that installs
``course_lib`` in Colab only (:func:`add_colab_cells`); ``chapters/NN-name.ipynb``, the
chapters as notebooks for Colab, are made from the MyST chapters (:func:`release_chapters`).

Run ``python -m course_lib.release`` to regenerate every student copy and chapter notebook, or
``python -m course_lib.release --check`` to fail when a committed copy has drifted.

``python -m course_lib.release --student-tree DIR [--repository OWNER/NAME]`` writes a
student-only copy of the whole course into ``DIR``, to publish as the public repository a
class launches in Binder (:func:`student_tree`): the book (chapters, pages, data, Binder
files) and the student notebooks, but no instructor notebook, no tests, no grader, and a
``course_lib.checks`` without its ``exNN`` modules (the declarations, whose reference
implementations *are* solutions). In their place ``course_lib/checks/public.json`` stores
each part's public cases with the outputs of the reference, the valid alternatives and the
known mistakes, made at release time (:func:`public_checks`); the checks' shipped machinery
judges a check cell's answer on them and prints ✔ or ✘ with the hint at once. The grader
judges every part on hidden cases of its own, so storing the public ones gives nothing away.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import shutil
import sys
from pathlib import Path

import nbformat

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
_MARKER = re.compile(r"^(?P<indent>[ \t]*)### (?P<which>BEGIN|END) SOLUTION[ \t]*$")

__all__ = ["strip_solutions", "make_student_notebook", "points_table", "release", "student_tree", "main",
           "course_repository", "add_colab_cells", "chapter_notebook", "release_chapters", "public_checks"]


def strip_solutions(source: str, part: str, cell_type: str = "code") -> str:
    """Replace each marked solution region of a cell's source by a stub.

    Parameters
    ----------
    source : str
        The cell's source.
    part : str
        The part id named in the stub's message.
    cell_type : {"code", "markdown"}
        Code regions become ``raise NotImplementedError(...)``; Markdown regions become
        the line ``YOUR ANSWER HERE``.

    Returns
    -------
    str
        The source without the solution.

    Raises
    ------
    ValueError
        If the markers are unbalanced or nested.
    """
    out: list[str] = []
    inside = False
    for lineno, line in enumerate(source.splitlines(), start=1):
        marker = _MARKER.match(line)
        if marker is None:
            if not inside:
                out.append(line)
            continue
        if marker["which"] == "BEGIN":
            if inside:
                raise ValueError(f"part {part!r}: nested '{BEGIN}' at line {lineno}")
            inside = True
            indent = marker["indent"]
            if cell_type == "code":
                out.append(
                    f'{indent}raise NotImplementedError("{part}: replace this line with your solution")'
                )
            else:
                out.append(f"{indent}YOUR ANSWER HERE")
        else:
            if not inside:
                raise ValueError(f"part {part!r}: '{END}' without '{BEGIN}' at line {lineno}")
            inside = False
    if inside:
        raise ValueError(f"part {part!r}: '{BEGIN}' is never closed by '{END}'")
    return "\n".join(out)


def make_student_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The student copy of an instructor notebook: solutions stubbed, outputs cleared.

    Raises
    ------
    ValueError
        If a cell has no id, ids repeat, markers are unbalanced, or a solution marker sits in
        a cell without a ``course`` part.
    """
    student = copy.deepcopy(nb)
    seen: set[str] = set()
    for cell in student.cells:
        cell_id = cell.get("id")
        if not cell_id:
            raise ValueError("every cell needs a stable id (nbformat 4.5); one has none")
        if cell_id in seen:
            raise ValueError(f"cell id {cell_id!r} appears more than once")
        seen.add(cell_id)
        has_marker = BEGIN in cell.source or END in cell.source
        part = cell.metadata.get("course", {}).get("part")
        if has_marker and not part:
            raise ValueError(f"cell {cell_id!r} has a solution region but no metadata.course.part")
        if has_marker:
            cell.source = strip_solutions(cell.source, part, cell.cell_type)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            cell.metadata.pop("execution", None)
    return student


def points_table(nb: nbformat.NotebookNode) -> list[tuple[str, float]]:
    """The graded parts of a notebook and their points, in notebook order."""
    rows = []
    for cell in nb.cells:
        course = cell.metadata.get("course", {})
        if course.get("role") == "check":
            rows.append((course["part"], float(course["points"])))
    return rows


def _serialise(nb: nbformat.NotebookNode) -> str:
    return json.dumps(nb, indent=1, ensure_ascii=False, sort_keys=True) + "\n"


# ----------------------------------------------------------------------------------------
# Colab: an "Open in Colab" badge and an install cell on every student notebook, and the
# chapters as notebooks Colab can open (it opens .ipynb only, not MyST Markdown)

#: Ids of the cells the release adds for Colab (the grader keeps them as student cells).
COLAB_BADGE_ID = "colab-badge"
COLAB_INSTALL_ID = "colab-install"
_COLAB_BADGE = ("[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
                "(https://colab.research.google.com/github/{repository}/blob/{branch}/{path})")
_COLAB_INSTALL = """\
# Google Colab: install the course's package (course_lib, with its data) from the course's
# repository. Elsewhere (Binder, your own JupyterLab, the grader) this cell does nothing.
import sys

if "google.colab" in sys.modules:
    import subprocess

    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet",
                    "course_lib @ git+https://github.com/{repository}@{branch}"], check=True)"""


def course_repository(root: Path) -> tuple[str, str]:
    """The GitHub repository (``owner/name``) and branch named by the book's ``_config.yml``.

    Raises
    ------
    ValueError
        If ``repository.url`` is not a ``https://github.com/owner/name`` address.
    """
    config = (Path(root) / "_config.yml").read_text(encoding="utf-8")
    url = re.search(r"^repository:\s*\n(?:[ \t]+.*\n)*?[ \t]+url:\s*(\S+)", config, re.M)
    branch = re.search(r"^repository:\s*\n(?:[ \t]+.*\n)*?[ \t]+branch:\s*(\S+)", config, re.M)
    match = re.fullmatch(r"https://github\.com/([\w.-]+/[\w.-]+?)(?:\.git)?/?", url.group(1) if url else "")
    if match is None:
        raise ValueError(f"_config.yml: repository.url must be https://github.com/OWNER/NAME, "
                         f"got {url.group(1) if url else 'nothing'}")
    return match.group(1), branch.group(1) if branch else "main"


def add_colab_cells(nb: nbformat.NotebookNode, path: str, repository: str, branch: str,
                    badge: bool = True) -> nbformat.NotebookNode:
    """Put an "Open in Colab" badge first and a Colab-only install cell before the first code cell.

    Parameters
    ----------
    nb : NotebookNode
        The notebook (changed in place, and returned).
    path : str
        The notebook's path in the repository, e.g. ``exercises/student/01-regression.ipynb``.
    repository, branch : str
        ``owner/name`` on GitHub and the branch (see :func:`course_repository`).
    badge : bool
        False for the install cell only (a chapter's page has the site's Colab button).
    """
    first_code = next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"), len(nb.cells))
    nb.cells.insert(first_code, nbformat.v4.new_code_cell(
        _COLAB_INSTALL.format(repository=repository, branch=branch), id=COLAB_INSTALL_ID))
    if badge:
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(
            _COLAB_BADGE.format(repository=repository, branch=branch, path=path), id=COLAB_BADGE_ID))
    return nb


def chapter_notebook(chapter: Path, root: Path) -> str:
    """The ``.ipynb`` that Colab (and the site's Colab button) opens for a MyST chapter:
    its cells without outputs, a Colab install cell before the first code cell, stable cell ids.

    The book builds from the ``.md`` (``_config.yml`` excludes ``chapters/*.ipynb``);
    sphinx-book-theme points a page's launch buttons at a same-named ``.ipynb`` when one exists.
    """
    import jupytext  # imported here: an author's tool, not a student's

    nb = jupytext.read(chapter)
    nb.metadata = nbformat.NotebookNode(kernelspec=nb.metadata["kernelspec"])
    for i, cell in enumerate(nb.cells):
        cell.id = f"{chapter.stem[:2]}-cell-{i}"
    add_colab_cells(nb, chapter.relative_to(root).with_suffix(".ipynb").as_posix(),
                    *course_repository(root), badge=False)
    nbformat.validate(nb)
    return _serialise(nb)


def _student_with_colab(nb: nbformat.NotebookNode, source: Path) -> nbformat.NotebookNode:
    """The student copy of the instructor notebook ``source`` (``exercises/NN-name.ipynb``),
    with the Colab cells pointing at its committed copy in ``exercises/student/``."""
    root = Path(source).resolve().parents[1]
    return add_colab_cells(make_student_notebook(nb), f"exercises/student/{Path(source).name}",
                           *course_repository(root))


def release_chapters(root: Path, check_only: bool = False) -> list[Path]:
    """Write (or, with ``check_only``, compare) ``chapters/NN-name.ipynb`` for every chapter.

    Returns
    -------
    list of Path
        The chapters whose notebook was stale (``check_only``) or was (re)written.
    """
    changed = []
    for chapter in sorted((Path(root) / "chapters").glob("*.md")):
        text, target = chapter_notebook(chapter, Path(root)), chapter.with_suffix(".ipynb")
        if target.exists() and target.read_text(encoding="utf-8") == text:
            continue
        changed.append(chapter)
        if not check_only:
            target.write_text(text, encoding="utf-8")
    return changed


def release(source: Path, out_dir: Path, check_only: bool = False) -> bool:
    """Write (or, with ``check_only``, compare) the student copy of one notebook.

    Returns
    -------
    bool
        True when the student copy on disk is (now) up to date.
    """
    nb = nbformat.read(source, as_version=4)
    nbformat.validate(nb)
    text = _serialise(_student_with_colab(nb, source))
    target = out_dir / source.name
    if check_only:
        return target.exists() and target.read_text(encoding="utf-8") == text
    out_dir.mkdir(parents=True, exist_ok=True)
    target.write_text(text, encoding="utf-8")
    return True


# ----------------------------------------------------------------------------------------
# The student tree: a copy of the course to publish, without solutions or references

#: The repository the course's own links name (Binder, download, the book's buttons).
UPSTREAM = "mixed-models-neuro/course"
#: Files and folders copied as they are (when they exist).
TREE_FILES = ["references.bib", "requirements.txt", ".gitignore"]
TREE_FOLDERS = ["chapters", "_ext", "binder"]
#: Book pages only instructors need: left out of the tree and its table of contents.
INSTRUCTOR_PAGES = ["instructors"]
#: course_lib's instructor-side code, left out of the tree (and the checks' exNN modules).
PRIVATE_MODULES = ["grading", "release.py"]
#: Build output and caches, never copied.
_SKIPPED = {"__pycache__", ".ipynb_checkpoints", "_build", ".jupyter_cache"}

_STUDENT_README = """# {title}

The student copy of the course: the chapters, the exercise notebooks, the data and the
`course_lib` package they import.

- **Read** the book: build it with `jupyter-book build .` (after
  `pip install -r requirements.txt`), or open a chapter in `chapters/` as a notebook.
- **Work** on the exercises in `exercises/`: open them in Binder (the links are on the
  exercises page) or locally in JupyterLab. Fill in each function where it says
  `raise NotImplementedError(...)`; the check cell below it runs it on a few inputs and
  prints ✔ or ✘ with a hint. Written answers go in the cells that say `YOUR ANSWER HERE`.
- **Hand in** the `.ipynb` file itself, saved from Jupyter. Your instructor's grader runs it
  from scratch and sends you a feedback page for every part.

Use your own code for what an exercise asks you to write: a part whose answer uses the
`course_lib` function that does that job gets 0 points, with a message saying why.

Code: BSD-3-Clause. The data sets keep their own licences, listed in
[course_lib/data/README.md](course_lib/data/README.md).
"""

_EXERCISES_INTRO = """# Exercises

Each chapter has an exercise notebook. Open it in Binder, fill in each function where it says
`raise NotImplementedError(...)`, and run the check cell below it. The check runs your
function on a few stored inputs and prints ✔ or ✘ at once, with a hint for the common
mistakes. Your instructor's
grader judges every part again, on inputs of its own, when you hand in the notebook, and
sends you a feedback page with a verdict for every part:

```text
✔ ex1-fit-ols  1/1  fit_ols agrees with statsmodels' OLS on 4 data sets the check drew.
✘ ex1-predict  0/0.5  values: predict_reaction(…) on … should be [...], got [...]
  Hint: you left out the intercept: the prediction at Days = 0 is beta[0] ms, not 0.
```

Use your own code for what a part asks you to write: a part whose answer uses the
`course_lib` function that does that job gets 0 points, with a message saying why.

"""


def _private_check_module(rel: Path) -> bool:
    """A module of ``course_lib/checks`` that stays with the instructor: the ``exNN``
    declarations (their references are solutions)."""
    return rel.parts[0] == "checks" and re.fullmatch(r"ex\d+\.py", rel.name) is not None


def public_checks(notebooks: list[Path]) -> dict:
    """What a student tree's ``course_lib/checks/public.json`` holds: for each graded part of the
    notebooks, its public cases with the outputs of the reference, the valid alternatives and the
    known mistakes, computed here with the checks' code (:func:`course_lib.checks.core.stored_record`)."""
    from course_lib import checks
    from course_lib.checks.core import stored_record

    return {cell.metadata["course"]["part"]: stored_record(checks.get_check(cell.metadata["course"]["part"]))
            for path in notebooks for cell in nbformat.read(path, as_version=4).cells
            if cell.metadata.get("course", {}).get("role") == "check"}


def _retarget(text: str, repository: str | None) -> str:
    """The course's links, pointed at the published tree (``exercises/`` holds the students'
    notebooks; ``repository`` replaces the upstream repository)."""
    text = text.replace("exercises/student/", "exercises/")
    return text.replace(UPSTREAM, repository) if repository else text


def student_tree(root: Path, dest: Path, repository: str | None = None) -> list[Path]:
    """Write a student-only copy of the course into ``dest``.

    What it holds: ``_config.yml``, ``_toc.yml`` and the book's pages without the
    instructors' page; ``chapters/`` and ``_ext/``; the student notebooks, made afresh
    from the instructor notebooks, as ``exercises/``; ``course_lib`` with every topic
    module and its data, but without ``grading``, ``release`` and the checks' modules
    (``public.json`` holds what the checks judge on instead, :func:`public_checks`); the Binder
    files; ``pyproject.toml`` without the instructors' commands; a student README.

    The topic modules stay because the chapters use them, and some implement what an
    exercise asks for (``course_lib.lnp.negloglik``); the grader gives 0 to a part whose
    answer uses them (:mod:`course_grade.integrity`).

    Parameters
    ----------
    root : Path
        The course repository (with ``_toc.yml``, ``chapters/``, ``exercises/``).
    dest : Path
        A new or empty folder.
    repository : str or None
        ``owner/name`` of the repository the tree will be published as: the Binder and
        download links and the book's repository button are pointed at it.

    Returns
    -------
    list of Path
        Every file written.

    Raises
    ------
    ValueError
        If ``dest`` is not an empty folder, is inside the course, ``repository`` is not
        ``owner/name``, or an instructor notebook has unbalanced solution markers.
    """
    root, dest = Path(root).resolve(), Path(dest).resolve()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ValueError(f"--student-tree {dest} is not an empty folder; choose a new one")
    if dest == root or root in dest.parents:
        raise ValueError(f"--student-tree {dest} is inside the course {root}; choose a folder outside it")
    if repository is not None and not re.fullmatch(r"[\w.-]+/[\w.-]+", repository):
        raise ValueError(f"--repository must be OWNER/NAME as on GitHub, got {repository!r}")
    instructor = sorted((root / "exercises").glob("*.ipynb"))
    if not instructor:
        raise ValueError(f"no instructor notebooks in {root / 'exercises'}")
    students = {}
    for path in instructor:  # first, so that a bad notebook leaves nothing half-written
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        students[path.name] = _retarget(_serialise(_student_with_colab(nb, path)), repository)
    written: list[Path] = []

    def write(rel: str, text: str) -> None:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(target)

    def copy_file(src: Path, rel: str) -> None:
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target)
        written.append(target)

    def published(src: Path, rel: Path) -> bool:  # a source file, not a build or cache
        return src.is_file() and not _SKIPPED & set(rel.parts) and src.suffix != ".pyc"

    for name in TREE_FILES:
        if (root / name).is_file():
            copy_file(root / name, name)
    for folder in TREE_FOLDERS:
        for src in sorted((root / folder).rglob("*")) if (root / folder).is_dir() else []:
            if published(src, src.relative_to(root)):
                copy_file(src, src.relative_to(root).as_posix())
    for chapter in sorted((dest / "chapters").glob("*.ipynb")):  # their Colab install cell
        chapter.write_text(_retarget(chapter.read_text(encoding="utf-8"), repository), encoding="utf-8")
    # the book: its configuration, table of contents and pages, without the instructors'
    write("_config.yml", _retarget((root / "_config.yml").read_text(encoding="utf-8"), repository))
    toc = [line for line in (root / "_toc.yml").read_text(encoding="utf-8").splitlines(keepends=True)
           if not any(re.fullmatch(rf"\s*- file: {page}\s*", line) for page in INSTRUCTOR_PAGES)]
    write("_toc.yml", "".join(toc))
    for page in re.findall(r"^(?:root|\s*- file):\s*(\S+)\s*$", "".join(toc), flags=re.M):
        if page.startswith("chapters/"):
            continue
        text = _retarget((root / f"{page}.md").read_text(encoding="utf-8"), repository)
        if page == "exercises":
            _, sep, table = text.partition("| exercise |")
            if not sep:
                raise ValueError("exercises.md has no table starting '| exercise |' to keep")
            text = _EXERCISES_INTRO + sep + table
        write(f"{page}.md", text)
    title = re.search(r"^title:\s*(.+)$", (root / "_config.yml").read_text(encoding="utf-8"), re.M)
    write("README.md", _STUDENT_README.format(title=title.group(1).strip() if title else "The course"))
    # pyproject: the package, without the instructors' commands and the test settings
    pyproject = (root / "pyproject.toml").read_text(encoding="utf-8")
    pyproject = re.sub(r"^\[(?:project\.scripts|tool\.pytest\.ini_options)\]\n(?:(?!\[).*\n?)*", "",
                       pyproject, flags=re.M)
    write("pyproject.toml", pyproject.rstrip() + "\n")
    # course_lib: every topic module and the data; checks without references; no grader
    package = root / "course_lib"
    for src in sorted(package.rglob("*")):
        rel = src.relative_to(package)
        if rel.parts[0] not in PRIVATE_MODULES and not _private_check_module(rel) and published(src, rel):
            copy_file(src, f"course_lib/{rel.as_posix()}")
    init = (package / "__init__.py").read_text(encoding="utf-8")
    write("course_lib/__init__.py", "".join(
        line for line in init.splitlines(keepends=True) if not re.match(r"(release|grading)\s{2,}", line)))
    write("course_lib/checks/public.json", json.dumps(public_checks(instructor), ensure_ascii=False))
    for name, text in students.items():
        write(f"exercises/{name}", text)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m course_lib.release",
        description="Generate the student copies of the exercise notebooks.",
    )
    parser.add_argument(
        "notebooks", nargs="*", type=Path, help="instructor notebooks (default: exercises/*.ipynb)"
    )
    parser.add_argument("--out", type=Path, default=Path("exercises/student"))
    parser.add_argument(
        "--check", action="store_true", help="only compare; exit 1 if a student copy is stale"
    )
    parser.add_argument("--student-tree", type=Path, metavar="DIR",
                        help="write a student-only copy of the course into DIR (a new folder), to "
                             "publish as the repository a class launches in Binder")
    parser.add_argument("--repository", metavar="OWNER/NAME",
                        help="with --student-tree: the GitHub repository the tree is published as "
                             "(its Binder and download links point there)")
    args = parser.parse_args(argv)
    if args.student_tree is not None:
        try:
            files = student_tree(Path.cwd(), args.student_tree, args.repository)
        except (ValueError, OSError) as err:
            parser.error(str(err))
        print(f"student tree: {len(files)} files in {args.student_tree}")
        if args.repository is None:
            print(f"note: its links still name {UPSTREAM}; pass --repository OWNER/NAME to point "
                  "them at the repository you publish it as", file=sys.stderr)
        return 0
    notebooks = args.notebooks or sorted(Path("exercises").glob("*.ipynb"))
    if not notebooks:
        parser.error("no instructor notebooks found in exercises/")
    stale = []
    for path in notebooks:
        ok = release(path, args.out, check_only=args.check)
        nb = nbformat.read(path, as_version=4)
        parts = points_table(nb)
        total = sum(p for _, p in parts)
        state = ("up to date" if ok else "STALE") if args.check else "written"
        print(f"{path.name}: {state}, {len(parts)} graded parts, {total:g} points")
        for part, points in parts:
            print(f"  {part:<32} {points:g}")
        if not ok:
            stale.append(path.name)
    if not args.notebooks and Path("chapters").is_dir():  # the chapters' notebooks for Colab
        chapters = release_chapters(Path.cwd(), check_only=args.check)
        print(f"chapters/*.ipynb: {len(chapters)} {'STALE' if args.check else 'written'}")
        stale += [f"chapters/{c.with_suffix('.ipynb').name}" for c in chapters] if args.check else []
    if stale:
        print(
            f"stale copies: {', '.join(stale)}; run `python -m course_lib.release`",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
