"""course_lib.release and the exercise format: student copies are generated, never drift,
raise in their stubs, and a wrong solution makes its check fail with a hint; the student
tree holds no solution and no check reference."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from course_lib import checks
from course_lib.release import (COLAB_BADGE_ID, COLAB_INSTALL_ID, chapter_notebook, make_student_notebook,
                                points_table, release, release_chapters, strip_solutions, student_tree)

ROOT = Path(__file__).resolve().parents[1]
INSTRUCTOR = sorted((ROOT / "exercises").glob("*.ipynb"))
STUDENT_DIR = ROOT / "exercises" / "student"


def execute(nb, timeout=300):
    """Run a notebook in a fresh kernel from the exercises folder, keeping errors as outputs."""
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", allow_errors=True,
        resources={"metadata": {"path": str(ROOT / "exercises")}},
    )
    client.execute()
    return nb


def text_of(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        parts.append(out.get("text", ""))
        parts.append(str(out.get("data", {}).get("text/plain", "")))
        parts.append(out.get("ename", "") + ": " + out.get("evalue", ""))
    return "\n".join(parts)


def graded_cells(nb, role):
    return [c for c in nb.cells if c.metadata.get("course", {}).get("role") == role]


def test_strip_solutions_keeps_indentation_and_code_outside_the_region():
    source = "def f(x):\n    '''doc'''\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\nprint(1)"
    assert strip_solutions(source, "ex-f") == (
        "def f(x):\n    '''doc'''\n"
        '    raise NotImplementedError("ex-f: replace this line with your solution")\nprint(1)'
    )
    assert strip_solutions("### BEGIN SOLUTION\nsecret\n### END SOLUTION", "p", "markdown") == "YOUR ANSWER HERE"


@pytest.mark.parametrize(
    "source,message",
    [
        ("### BEGIN SOLUTION\nx = 1", "never closed"),
        ("x = 1\n### END SOLUTION", "without"),
        ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "nested"),
    ],
)
def test_strip_solutions_rejects_unbalanced_markers(source, message):
    with pytest.raises(ValueError, match=message):
        strip_solutions(source, "p")


def test_make_student_notebook_requires_ids_and_parts():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("### BEGIN SOLUTION\n1\n### END SOLUTION")])
    nb.cells[0].id = "a"
    with pytest.raises(ValueError, match="no metadata.course.part"):
        make_student_notebook(nb)
    nb.cells.append(nbformat.v4.new_code_cell("2"))
    nb.cells[1].id = "a"
    nb.cells[0].metadata["course"] = {"part": "p", "role": "solution"}
    with pytest.raises(ValueError, match="cell id 'a' appears more than once"):
        make_student_notebook(nb)


def test_there_is_an_exercise_per_chapter_so_far():
    chapters = sorted(p.stem for p in (ROOT / "chapters").glob("*.md"))
    assert [p.stem for p in INSTRUCTOR] == chapters


@pytest.mark.parametrize("path", INSTRUCTOR, ids=lambda p: p.name)
def test_committed_student_copy_is_up_to_date(path):
    assert release(path, STUDENT_DIR, check_only=True), (
        f"exercises/student/{path.name} differs from what `python -m course_lib.release` makes"
    )


@pytest.mark.parametrize("path", INSTRUCTOR, ids=lambda p: p.name)
def test_instructor_notebook_is_well_formed(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    ids = [c.id for c in nb.cells]
    assert len(ids) == len(set(ids))
    solutions = {c.metadata["course"]["part"] for c in graded_cells(nb, "solution")}
    checked = {c.metadata["course"]["part"] for c in graded_cells(nb, "check")}
    assert solutions == checked, "every solution needs a check cell, and vice versa"
    for part, points in points_table(nb):
        assert checks.get_check(part).points == points, f"{part}: metadata points disagree with the check"
    for cell in graded_cells(nb, "check"):
        assert cell.id == cell.metadata["course"]["part"] + "-check"
        assert re.fullmatch(r'checks\.check\("[\w-]+", [\w, ]+\)', cell.source.strip()), cell.source


@pytest.mark.parametrize("path", INSTRUCTOR, ids=lambda p: p.name)
def test_student_copy_has_no_solutions_and_no_outputs(path):
    instructor = nbformat.read(path, as_version=4)
    student = nbformat.read(STUDENT_DIR / path.name, as_version=4)
    colab = {COLAB_BADGE_ID, COLAB_INSTALL_ID}  # the release's own cells (tests below)
    assert [c.id for c in student.cells if c.id not in colab] == [c.id for c in instructor.cells]
    text = "\n".join(c.source for c in student.cells)
    assert "### BEGIN SOLUTION" not in text and "### END SOLUTION" not in text
    region = re.compile(r"### BEGIN SOLUTION\n(.*?)\n\s*### END SOLUTION", re.S)
    instructor_text = "\n".join(c.source for c in instructor.cells)
    public_lines = {line.strip() for line in region.sub("", instructor_text).splitlines()}
    for cell in graded_cells(instructor, "solution"):
        for line in region.search(cell.source).group(1).splitlines():
            if line.strip() and line.strip() not in public_lines:
                assert line.strip() not in text, f"solution line leaked: {line.strip()!r}"
    assert all(not c.get("outputs") and c.get("execution_count") is None for c in student.cells if c.cell_type == "code")


@pytest.mark.parametrize("path", INSTRUCTOR, ids=lambda p: p.name)
def test_student_copy_raises_in_its_stubs_until_solved(path):
    nb = execute(nbformat.read(STUDENT_DIR / path.name, as_version=4))
    for cell in graded_cells(nb, "check"):
        part = cell.metadata["course"]["part"]
        assert f"✘ {part}" in text_of(cell) and "still raises NotImplementedError" in text_of(cell), text_of(cell)
    errors = [c for c in nb.cells if any(o.get("output_type") == "error" for o in c.get("outputs", []))]
    assert errors, "using a stubbed function outside its check should raise"
    # the first failure is a stub; later cells may fail only because it left names undefined
    assert "NotImplementedError" in text_of(errors[0]), text_of(errors[0])
    assert all(re.search(r"NotImplementedError|NameError", text_of(c)) for c in errors)


@pytest.mark.parametrize("path", INSTRUCTOR, ids=lambda p: p.name)
def test_every_check_fails_a_wrong_solution(path):
    """Replace every solution by a constant: every check must fail and say what it expected."""
    nb = nbformat.read(path, as_version=4)
    for cell in graded_cells(nb, "solution"):
        cell.source = re.sub(
            r"(?P<indent>[ \t]*)### BEGIN SOLUTION\n.*?### END SOLUTION",
            lambda m: f"{m['indent']}return 0.123",
            cell.source,
            flags=re.S,
        )
    nb = execute(nb)
    for cell in graded_cells(nb, "check"):
        part, output = cell.metadata["course"]["part"], text_of(cell)
        assert f"✘ {part}  0/" in output, output
        assert "should" in output, output


def test_wrong_standard_errors_in_the_notebook_get_a_failing_verdict_with_hint():
    nb = nbformat.read(ROOT / "exercises" / "01-regression.ipynb", as_version=4)
    cell = next(c for c in nb.cells if c.id == "ex1-standard-errors")
    cell.source = cell.source.replace("(n - p)", "n")
    assert "/ n\n" in cell.source
    nb = execute(nb)
    output = text_of(next(c for c in nb.cells if c.id == "ex1-standard-errors-check"))
    assert output.startswith("✘ ex1-standard-errors  0/1  values:"), output
    assert "Hint: you divided the residual sum of squares by n; divide by n − p" in output


def test_release_cli_reports_points_and_detects_drift(tmp_path):
    ok = subprocess.run(
        [sys.executable, "-m", "course_lib.release", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "01-regression.ipynb: up to date, 5 graded parts, 4 points" in ok.stdout
    stale_dir = tmp_path / "student"
    stale_dir.mkdir()
    (stale_dir / "01-regression.ipynb").write_text("{}")
    stale = subprocess.run(
        [sys.executable, "-m", "course_lib.release", "--check", "--out", str(stale_dir),
         str(ROOT / "exercises" / "01-regression.ipynb")],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert stale.returncode == 1 and "STALE" in stale.stdout


# ----------------------------------------------------------------------------------------
# The student tree: what a class's public repository may hold


PUBLIC_FOLDERS = ("chapters/", "_ext/")
REGION = re.compile(r"### BEGIN SOLUTION\n(.*?)\n\s*### END SOLUTION", re.S)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    dest = tmp_path_factory.mktemp("published") / "course"
    proc = subprocess.run(
        [sys.executable, "-m", "course_lib.release", "--student-tree", str(dest),
         "--repository", "some-university/rf-course-2026"],
        cwd=ROOT, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stderr
    return dest


def tree_files(tree: Path) -> dict[str, str]:
    return {p.relative_to(tree).as_posix(): p.read_text(encoding="utf-8", errors="replace")
            for p in tree.rglob("*") if p.is_file()}


def verbatim_public(tree: Path, rel: str) -> bool:
    """A chapter or a course_lib topic module copied unchanged: the course's public teaching
    material, which the tree publishes by design (chapter 5 teaches the SVD it asks for)."""
    src = ROOT / rel
    public = rel.startswith(PUBLIC_FOLDERS) or (
        rel.startswith("course_lib/") and not rel.startswith(("course_lib/checks/", "course_lib/grading/")))
    if public and rel.startswith("chapters/") and rel.endswith(".ipynb") and src.is_file():
        # a chapter's Colab notebook: made from its .md, its install cell retargeted
        return (tree / rel).read_text(encoding="utf-8") == src.read_text(encoding="utf-8").replace(
            "mixed-models-neuro/course", "some-university/rf-course-2026")
    return public and src.is_file() and src.read_bytes() == (tree / rel).read_bytes()


def solution_lines() -> set[str]:
    """Every line of every solution region that appears nowhere else in the notebooks."""
    notebooks = [nbformat.read(p, as_version=4) for p in INSTRUCTOR]
    public = {line.strip() for nb in notebooks for c in nb.cells for line in REGION.sub("", c.source).splitlines()}
    return {line.strip() for nb in notebooks for c in nb.cells for m in REGION.finditer(c.source)
            for line in m.group(1).splitlines() if len(line.strip()) >= 8 and line.strip() not in public}


def test_student_tree_holds_the_book_the_student_notebooks_and_the_package_only(tree):
    files = tree_files(tree)
    for rel in ("_config.yml", "_toc.yml", "intro.md", "exercises.md", "README.md", "references.bib",
                "requirements.txt", "binder/runtime.txt", "binder/postBuild", "binder/requirements.txt",
                "pyproject.toml",
                "course_lib/__init__.py", "course_lib/lnp.py", "course_lib/checks/__init__.py",
                "course_lib/data/sleepstudy.csv", "_ext/course_site.py"):
        assert rel in files, f"{rel} is missing from the tree"
    assert sorted(p for p in files if p.startswith("chapters/")) == sorted(
        p.relative_to(ROOT).as_posix() for p in (ROOT / "chapters").iterdir() if p.is_file())
    for path in INSTRUCTOR:  # the student copies, as committed (which a test keeps up to date),
        # with their Colab badge and install cell pointed at the published repository
        committed = (STUDENT_DIR / path.name).read_text(encoding="utf-8")
        assert files[f"exercises/{path.name}"] == committed.replace(
            "mixed-models-neuro/course", "some-university/rf-course-2026").replace("exercises/student/", "exercises/")
    # notebooks: the exercises, and the chapters' Colab notebooks beside their .md
    assert not [p for p in files if p.endswith(".ipynb") and not p.startswith("exercises/")
                and not (p.startswith("chapters/") and p[:-len(".ipynb")] + ".md" in files)]
    for absent in ("tests/", "benchmarks/", "scripts/", ".ci/", "instructors.md", "CONTRIBUTING.md",
                   "course_lib/grading/", "course_lib/release.py", "course_lib/checks/ex0",
                   "exercises/student/"):
        assert not [p for p in files if p.startswith(absent)], f"{absent} is in the student tree"
    # the book still links up: every page of its table of contents is there, none is the instructors'
    pages = re.findall(r"^(?:root|\s*- file):\s*(\S+)\s*$", files["_toc.yml"], flags=re.M)
    assert "instructors" not in pages and all(f"{page}.md" in files for page in pages)
    # the chapters' imports of course_lib are all in the tree
    for rel, text in files.items():
        if rel.startswith("chapters/"):
            for module in re.findall(r"course_lib\.(\w+)", text):
                assert {f"course_lib/{module}.py", f"course_lib/{module}/__init__.py"} & set(files), \
                    f"{rel} uses course_lib.{module}"
    # the links point at the published repository and at exercises/, not at the instructors' one
    assert "exercises/student/" not in files["exercises.md"]
    assert "https://mybinder.org/v2/gh/some-university/rf-course-2026/main?urlpath=lab/tree/exercises/05-" \
        in files["exercises.md"]
    assert "mixed-models-neuro/course" not in files["exercises.md"] + files["_config.yml"]
    assert "course-grade" not in files["pyproject.toml"] and "[project]" in files["pyproject.toml"]


def test_no_solution_region_survives_in_the_student_tree(tree):
    files = tree_files(tree)
    leaked = []
    secret = solution_lines()
    assert len(secret) > 100  # the test has teeth: every exercise's solutions are in it
    for rel, text in files.items():
        assert "### BEGIN SOLUTION" not in text and "### END SOLUTION" not in text, rel
        if verbatim_public(tree, rel):
            continue  # a chapter may show a method an exercise then asks for
        leaked += [f"{rel}: {line!r}" for line in secret if line in text]
    assert not leaked, "solution lines in the student tree:\n" + "\n".join(leaked)
    for path in INSTRUCTOR:  # and no copy of an instructor notebook under any name
        data = path.read_bytes()
        assert not [p for p in tree.rglob("*") if p.is_file() and p.read_bytes() == data]


def _string_literal(line: str) -> bool:
    """A line that is only a string (a hint or message the student is shown anyway)."""
    import ast

    try:
        node = ast.parse(line.rstrip(",").rstrip(")").lstrip("(") or "0", mode="eval").body
    except SyntaxError:
        return False
    return isinstance(node, (ast.Constant, ast.JoinedStr))


def test_no_check_reference_survives_in_the_student_tree(tree):
    """The exercises' check modules compute the reference answers (``_days_to_slow``:
    ``ms / beta[1]``) and recognise the mistakes: none of their code is in the tree (the
    hints they print, and the stored public cases, are meant for the student)."""
    files = tree_files(tree)
    public = "\n".join(text for rel, text in files.items() if verbatim_public(tree, rel))
    # the checks' shipped machinery (reading and comparing results) is no reference
    public += "\n".join(p.read_text(encoding="utf-8") for p in (ROOT / "course_lib" / "checks").glob("*.py")
                        if not re.fullmatch(r"ex\d+\.py", p.name))
    reference_lines = {
        line.strip() for path in (ROOT / "course_lib" / "checks").glob("ex*.py")
        for line in path.read_text(encoding="utf-8").splitlines()
        if len(line.strip()) >= 30 and line.strip() not in public and not _string_literal(line.strip())
        and not line.startswith(("from ", "import "))
    }
    assert len(reference_lines) > 300  # the test has teeth: every exercise module is in it
    for rel, text in files.items():
        found = [line for line in reference_lines if line in text]
        assert not found, f"{rel} holds check code: {found[:3]}"
    shipped = [p for p in files if p.startswith("course_lib/checks/")]
    assert {"course_lib/checks/__init__.py", "course_lib/checks/core.py", "course_lib/checks/public.json"} <= set(shipped)
    assert not [p for p in shipped if re.search(r"/ex\d+\.py$", p)]
    for rel in shipped:  # the shipped machinery reads and compares results: it computes no reference
        assert not re.search(r"import statsmodels|\bsm\.|course_lib\.mixed|\blmer\(|glmer\(", files[rel]), rel


def _wrong_in_tree() -> dict:
    """For each part whose check stores its public cases: a plausible wrong answer (source run in
    the student tree's notebook) and words of the hint it must get there, from the
    ``WRONG_IN_TREE`` of each check test module (``tests/test_checks*.py``)."""
    import importlib

    found = {}
    for path in sorted(Path(__file__).parent.glob("test_checks*.py")):
        if path.stem == "test_checks_hidden":  # (answers only, and it imports the grading corpus)
            continue
        found.update(getattr(importlib.import_module(path.stem), "WRONG_IN_TREE", {}))
    return found


WRONG_IN_TREE = _wrong_in_tree()


def test_student_tree_notebooks_give_a_verdict_at_once_right_and_wrong(tree):
    """In the tree, with the tree's course_lib first on the path, each student notebook's
    setup cell, then each part's answer and its check cell: the stub is reported; the
    instructor's answer gets ✔; a plausible wrong answer gets ✘ with its hint."""
    from course_grade.notebook import Assignment  # the grader's reading of each check cell's names

    names = {p.part: p.names for path in INSTRUCTOR for p in Assignment.load(path).parts}
    script = f"""
import json, course_lib, course_lib.checks as checks
from course_lib import datasets, lnp, lfp, mixed, pooling, regression
assert course_lib.__file__.startswith({str(tree)!r}), course_lib.__file__
wrong = {WRONG_IN_TREE!r}
names = {names!r}
out = {{}}
for name in {[p.name for p in INSTRUCTOR]!r}:
    solved = {{c.get("id"): "".join(c["source"]) for c in json.load(open(f"{str(ROOT / "exercises")}/{{name}}"))["cells"]}}
    for which in ("student", "solved", "wrong"):
        nb = json.load(open(f"exercises/{{name}}"))
        ns = {{}}
        for cell in nb["cells"]:
            role = cell["metadata"].get("course", {{}}).get("role")
            part = cell["metadata"].get("course", {{}}).get("part")
            if cell.get("id") == "setup":
                exec("".join(cell["source"]), ns)
            elif role == "solution":
                source = "".join(cell["source"]) if which == "student" else solved[cell["id"]]
                exec(wrong[part][0] if which == "wrong" and part in wrong else source, ns)
            elif role == "check":
                out[f"{{which}} {{part}}"] = str(checks.run(part, *[ns[n] for n in names[part]]))
print(json.dumps(out))
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=tree, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(tree)}, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    verdicts = json.loads(proc.stdout.splitlines()[-1])
    parts = [part for path in INSTRUCTOR for part, _ in points_table(nbformat.read(path, as_version=4))]
    assert len(verdicts) == 3 * len(parts)
    stored = set(checks_public_parts(tree))
    assert set(WRONG_IN_TREE) == stored == set(parts)  # every part gives ✔/✘ and its hint at once
    for part in parts:
        assert "still raises NotImplementedError" in verdicts[f"student {part}"], verdicts[f"student {part}"]
        assert verdicts[f"solved {part}"].startswith(f"✔ {part}  "), verdicts[f"solved {part}"]
        if part in WRONG_IN_TREE:
            got = verdicts[f"wrong {part}"]
            assert got.startswith(f"✘ {part}  0/") and "should" in got, got
            assert "Hint: " in got and WRONG_IN_TREE[part][1] in got, got


def checks_public_parts(tree: Path) -> list[str]:
    """The parts whose public cases the tree's checks store."""
    proc = subprocess.run([sys.executable, "-c", "import json, course_lib.checks as c; print(json.dumps(list(c.list_checks().index)))"],
                          cwd=tree, capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(tree)})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_student_tree_refuses_a_folder_in_use(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    with pytest.raises(ValueError, match="is not an empty folder"):
        student_tree(ROOT, tmp_path / "x")
    with pytest.raises(ValueError, match="inside the course"):
        student_tree(ROOT, ROOT / "published")
    with pytest.raises(ValueError, match="OWNER/NAME"):
        student_tree(ROOT, tmp_path / "y", repository="https://github.com/a/b")
    assert (tmp_path / "x" / "keep.txt").read_text() == "mine" and not (tmp_path / "y").exists()


# ----------------------------------------------------------------------------------------
# Colab: every student notebook opens with a badge and a Colab-only install cell


def colab_cells(nb):
    return ([c for c in nb.cells if c.id == COLAB_BADGE_ID], [c for c in nb.cells if c.id == COLAB_INSTALL_ID])


def run_install_cell(source: str, in_colab: bool, monkeypatch) -> list[list[str]]:
    """Run an install cell's code with subprocess.run recorded (nothing is installed)."""
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda args, **kw: calls.append(list(args)))
    if in_colab:
        monkeypatch.setitem(sys.modules, "google.colab", type(sys)("google.colab"))
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    exec(compile(source, "<install cell>", "exec"), {})
    return calls


@pytest.mark.parametrize("path", INSTRUCTOR, ids=lambda p: p.name)
def test_student_copy_opens_with_a_colab_badge_and_an_install_cell_before_any_code(path):
    nb = nbformat.read(STUDENT_DIR / path.name, as_version=4)
    (badge,), (install,) = colab_cells(nb)
    assert nb.cells[0] is badge
    assert ("(https://colab.research.google.com/github/mixed-models-neuro/course/blob/main/"
            f"exercises/student/{path.name})") in badge.source
    first_code = next(c for c in nb.cells if c.cell_type == "code")
    assert first_code is install and not install.outputs


def test_install_cell_installs_course_lib_from_the_configured_repository_in_colab_only(monkeypatch):
    nb = nbformat.read(STUDENT_DIR / INSTRUCTOR[0].name, as_version=4)
    (install,) = colab_cells(nb)[1]
    assert "https://github.com/mixed-models-neuro/course" in (ROOT / "_config.yml").read_text()
    assert run_install_cell(install.source, in_colab=False, monkeypatch=monkeypatch) == []
    (call,) = run_install_cell(install.source, in_colab=True, monkeypatch=monkeypatch)
    assert call[:4] == [sys.executable, "-m", "pip", "install"]
    assert call[-1] == "course_lib @ git+https://github.com/mixed-models-neuro/course@main"


def test_student_tree_notebooks_point_colab_at_the_published_repository(tree):
    for path in INSTRUCTOR:
        nb = nbformat.read(tree / "exercises" / path.name, as_version=4)
        (badge,), (install,) = colab_cells(nb)
        assert f"github/some-university/rf-course-2026/blob/main/exercises/{path.name})" in badge.source
        assert "git+https://github.com/some-university/rf-course-2026@main" in install.source
    for chapter in sorted((tree / "chapters").glob("*.ipynb")):
        source = "".join(c.source for c in nbformat.read(chapter, as_version=4).cells)
        assert "git+https://github.com/some-university/rf-course-2026@main" in source
        assert "mixed-models-neuro/course" not in source


def test_chapter_notebooks_for_colab_are_up_to_date_with_their_markdown():
    chapters = sorted((ROOT / "chapters").glob("*.md"))
    assert sorted((ROOT / "chapters").glob("*.ipynb")) == [c.with_suffix(".ipynb") for c in chapters]
    assert release_chapters(ROOT, check_only=True) == [], "run `python -m course_lib.release`"


def test_chapter_notebook_holds_the_chapters_cells_and_an_install_cell(tmp_path):
    import jupytext

    chapter = ROOT / "chapters" / "01-regression.md"
    nb = nbformat.reads(chapter_notebook(chapter, ROOT), as_version=4)
    (install,) = colab_cells(nb)[1]
    assert next(c for c in nb.cells if c.cell_type == "code") is install and not colab_cells(nb)[0]
    source = jupytext.read(chapter)
    assert [c.source for c in nb.cells if c.id != COLAB_INSTALL_ID] == [c.source for c in source.cells]
    assert nb.metadata["kernelspec"]["name"] == "python3" and "jupytext" not in nb.metadata
    assert len({c.id for c in nb.cells}) == len(nb.cells)


def test_colab_cells_refuse_a_repository_url_that_is_not_github(tmp_path):
    from course_lib.release import course_repository

    (tmp_path / "_config.yml").write_text("repository:\n  url: https://gitlab.com/a/b\n  branch: main\n")
    with pytest.raises(ValueError, match="repository.url must be https://github.com/OWNER/NAME, got https://gitlab.com/a/b"):
        course_repository(tmp_path)
    (tmp_path / "_config.yml").write_text("repository:\n  url: https://github.com/a/b.git\n  branch: dev\n")
    assert course_repository(tmp_path) == ("a/b", "dev")
    assert course_repository(ROOT) == ("mixed-models-neuro/course", "main")
