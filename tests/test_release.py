"""course_lib.release and the exercise format: student copies are generated, never drift,
raise in their stubs, and a wrong solution makes its check fail with a hint."""

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from course_lib import checks
from course_lib.release import make_student_notebook, points_table, release, strip_solutions

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
    assert [c.id for c in student.cells] == [c.id for c in instructor.cells]
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
