"""course_grade.cli (``course-grade``): one command with six subcommands, old command lines
answered with the new form, the class report, the HTML feedback, and nothing lost on bad
input (a missing, corrupted or unfinished output folder; a bad roster; grades overwritten
only with ``--force``).

The end-to-end test grades a small batch of exercise 1 with ``course-grade grade`` (in the
sandbox, so it needs root and bubblewrap as CI has) and checks ``report.csv`` against
``grades.csv``, computed here from the CSV file, not by the code under test.
"""

from __future__ import annotations

import copy
import csv
import importlib.util
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from course_grade.classreport import part_rows, report_csv
from course_grade.export import match, read_roster
from course_grade.report import feedback_html

ROOT = Path(__file__).resolve().parents[1]
ASSIGNMENT = ROOT / "exercises" / "01-regression.ipynb"
STUDENT = ROOT / "exercises" / "student" / "01-regression.ipynb"
COMMANDS = ("release", "grade", "review", "report", "export", "status")

_spec = importlib.util.spec_from_file_location("grading_corpus", ROOT / "tests" / "grading_corpus" / "corpus.py")
corpus = sys.modules.get("grading_corpus")  # test_grading's copy, when it was imported first
if not hasattr(corpus, "PREDICT_SWAPPED"):  # (not tests/grading_corpus the namespace package)
    corpus = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(corpus)

SANDBOXED = os.geteuid() == 0 and shutil.which("bwrap") is not None
needs_sandbox = pytest.mark.skipif(not SANDBOXED, reason="needs root and bubblewrap (apt-get install bubblewrap), as in CI")
EXTERNAL = re.compile(r"""(?:src|href|xlink:href|action)\s*=\s*["']?\s*(?:https?:)?//|<script|@import|url\(\s*["']?(?:https?:)?//""",
                      re.I)


def course_grade(*args: str, module: str = "course_grade", timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=timeout)


def rows_of(text: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(text)))


# ----------------------------------------------------------------------------------------
# The command line


def test_help_lists_the_six_subcommands_one_line_each():
    proc = course_grade("--help")
    assert proc.returncode == 0 and proc.stdout.startswith("usage: course-grade"), proc.stderr
    block = proc.stdout.split("  <command>\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert [re.match(r"    (\w+)\s{2,}\S", line).group(1) for line in block] == list(COMMANDS), proc.stdout


@pytest.mark.parametrize("command", COMMANDS)
def test_each_subcommand_has_its_own_help_with_examples(command):
    proc = course_grade(command, "--help")
    assert proc.returncode == 0 and proc.stdout.startswith(f"usage: course-grade {command}"), proc.stderr
    examples = proc.stdout.split("examples:\n", 1)[1]
    assert f"course-grade {command}" in examples, proc.stdout


def test_grade_keeps_every_flag_of_the_old_command():
    text = course_grade("grade", "--help").stdout
    for flag in ("--out", "--jobs", "--cell-timeout", "--timeout", "--memory", "--sandbox",
                 "--progress", "--seed", "--scheduler", "--force"):
        assert flag in text, flag


def test_the_old_batch_command_line_says_the_new_one_and_runs_nothing(tmp_path):
    out = tmp_path / "grades"
    proc = course_grade(str(ASSIGNMENT), "subs/", "--out", str(out), "--jobs", "2")
    assert proc.returncode == 2
    assert f"course-grade grade {ASSIGNMENT} subs/ --out {out} --jobs 2" in proc.stderr, proc.stderr
    assert not out.exists()


def test_the_old_manual_merge_says_the_review_command(tmp_path):
    proc = course_grade("--manual", "scores.csv", "--out", "grades-ex5", "exercises/05-lnp-receptive-fields.ipynb")
    assert proc.returncode == 2
    assert ("course-grade review grades-ex5 --merge scores.csv --assignment "
            "exercises/05-lnp-receptive-fields.ipynb") in proc.stderr, proc.stderr


def test_python_m_course_lib_grading_says_where_the_grader_went():
    proc = course_grade("exercises/01-regression.ipynb", "subs", "--out", "g", module="course_lib.grading")
    assert proc.returncode == 2
    assert "course_grade" in proc.stderr and "python -m course_grade exercises/01-regression.ipynb subs --out g" \
        in proc.stderr, proc.stderr
    with pytest.raises(ImportError, match="course_grade instead of course_lib.grading"):
        from course_lib.grading import batch  # noqa: F401


def test_the_old_export_command_line_is_the_new_one(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps(SYNTHETIC))
    (tmp_path / "roster.csv").write_text("submission,student_id\na,S1\nb,S2\nc,S3\nd,S4\n")
    proc = course_grade("export", str(tmp_path), "--format", "csv", "--roster", str(tmp_path / "roster.csv"))
    assert proc.returncode == 1, proc.stderr  # d.ipynb was not graded: listed as a problem
    assert len(rows_of((tmp_path / "export-csv.csv").read_text())) == 4


def test_release_wraps_course_lib_release():
    proc = course_grade("release", "--check", timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "01-regression.ipynb: up to date" in proc.stdout


# ----------------------------------------------------------------------------------------
# The report, on results whose numbers are known


def _row(name, status, parts, manual=None, hints=None):
    hints = hints or {}
    scored = status in ("graded", "timeout", "crashed")
    r = {"submission": name, "status": status, "reason": "" if scored else "the file is empty",
         "total": sum(parts.values()) + sum(v for v in (manual or {}).values() if v is not None) if scored else None,
         "max_total": 3.0,
         "parts": [{"part": p, "points": v, "max_points": {"p1": 1.0, "p2": 1.5}[p],
                    "status": "passed" if v == {"p1": 1.0, "p2": 1.5}[p] else "failed",
                    "message": "m", "hint": hints.get(p, "")} for p, v in parts.items()] if scored else []}
    if manual is not None:
        r["manual"] = [{"part": "essay", "points": v, "max_points": 0.5} for v in manual.values()]
    return r


SYNTHETIC = {
    "assignment": "01-regression.ipynb", "max_total": 3.0, "seed": 7,
    "parts": [{"part": "p1", "points": 1.0}, {"part": "p2", "points": 1.5}],
    "manual": [{"part": "essay", "points": 0.5}],
    "submissions": [
        _row("a.ipynb", "graded", {"p1": 1.0, "p2": 1.5}, {"essay": 0.5}),
        _row("b.ipynb", "graded", {"p1": 0.0, "p2": 1.5}, {"essay": None}, {"p1": "you swapped them"}),
        _row("c.ipynb", "timeout", {"p1": 0.0, "p2": 0.0}, {"essay": 0.25},
             {"p1": "you swapped them", "p2": "divide by n - p"}),
        _row("d.ipynb", "invalid", {}),
    ],
}


def test_report_rows_give_mean_pass_rate_and_the_commonest_hint_over_scored_submissions():
    rows = {r["part"]: r for r in part_rows(SYNTHETIC)}
    # by hand: p1 = (1, 0, 0) over a, b, c (d is invalid); p2 = (1.5, 1.5, 0); essay: a and c scored
    assert rows["p1"]["n"] == 3 and rows["p1"]["mean"] == pytest.approx(1 / 3)
    assert rows["p1"]["pass_rate"] == pytest.approx(1 / 3) and rows["p1"]["most_common_hint"] == "you swapped them"
    assert rows["p1"]["hint_count"] == 2
    assert rows["p2"]["mean"] == pytest.approx(1.0) and rows["p2"]["pass_rate"] == pytest.approx(2 / 3)
    assert rows["essay"]["n"] == 2 and rows["essay"]["mean"] == pytest.approx(0.375)
    assert rows["essay"]["pass_rate"] == pytest.approx(0.5)
    table = rows_of(report_csv(part_rows(SYNTHETIC)))
    assert list(table[0]) == ["part", "max_points", "mean", "pass_rate", "n", "most_common_hint", "hint_count"]
    assert [r["part"] for r in table] == ["p1", "p2", "essay"]


def test_the_report_page_has_three_charts_and_loads_nothing(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps(SYNTHETIC))
    proc = course_grade("report", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    page = (tmp_path / "report.html").read_text()
    assert page.count("<svg ") == 3 and "Histogram of the totals" in page and "Pass rate per part" in page
    assert "The hints students hit most" in page and "you swapped them" in page
    assert not EXTERNAL.search(page), EXTERNAL.search(page)


# ----------------------------------------------------------------------------------------
# Bad input: say what is wrong, write nothing


@pytest.mark.parametrize("break_it,words", [
    (lambda d: None, "results.json not found"),
    (lambda d: (d / "results.json").write_text('{"submissions": [ {"subm'), "is not valid JSON"),
    (lambda d: (d / "results.json").write_text(json.dumps(
        {**SYNTHETIC, "submissions": SYNTHETIC["submissions"] + [
            {"submission": "late.ipynb", "status": "pending", "max_total": 3.0}]})),
     "1 submission is not graded yet (pending: late.ipynb)"),
    (lambda d: (d / "results.json").write_text(json.dumps(
        {**SYNTHETIC, "submissions": [{**SYNTHETIC["submissions"][0], "total": "lots"}]})),
     "submission a.ipynb: its total or part points are missing or not numbers"),
    (lambda d: (d / "results.json").write_text(json.dumps(
        {**SYNTHETIC, "submissions": [{"submission": "x.ipynb"}]})), "submission x.ipynb: no status, max_total"),
])
@pytest.mark.parametrize("command", ["report", "export"])
def test_report_and_export_over_a_broken_or_unfinished_folder_name_it_and_write_nothing(
        tmp_path, break_it, words, command):
    out = tmp_path / "out"
    out.mkdir()
    break_it(out)
    (tmp_path / "roster.csv").write_text("submission,student_id\na,S1\n")
    before = sorted(p.name for p in out.iterdir())
    extra = ["--format", "canvas", "--roster", str(tmp_path / "roster.csv")] if command == "export" else []
    proc = course_grade(command, str(out), *extra)
    assert proc.returncode == 2 and words in proc.stderr, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == before, "something was written"


def test_export_never_overwrites_another_grade_file_without_force(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps(SYNTHETIC))
    (tmp_path / "roster.csv").write_text("submission,student_id\na,S1\nb,S2\n")
    (tmp_path / "export-gradescope.csv").write_text("Name,SID,Email,Score\nA,S1,,99\n")
    args = [str(tmp_path), "--format", "gradescope", "--roster", str(tmp_path / "roster.csv")]
    proc = course_grade("export", *args)
    assert proc.returncode == 2 and "--force" in proc.stderr
    assert (tmp_path / "export-gradescope.csv").read_text().endswith(",99\n")
    proc = course_grade("export", *args, "--force")
    assert proc.returncode == 1 and ",99" not in (tmp_path / "export-gradescope.csv").read_text()


def test_a_roster_with_unknown_and_duplicate_students_is_reported_line_by_line(tmp_path):
    path = tmp_path / "roster.csv"
    path.write_text("submission,student_id\na,S1\na,S1\nzed,S9\nb,S2\nb,S3\n")
    _, problems = match(SYNTHETIC["submissions"], read_roster(path))
    said = {(p.problem, p.detail.split(":")[0]) for p in problems}
    assert ("duplicate roster entry", "roster line 3") in said
    assert ("no submission", "roster line 4") in said
    assert ("submission claimed by several students", "roster lines 5, 6") in said


def test_grade_never_overwrites_the_grades_of_another_assignment_without_force(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    earlier = {**SYNTHETIC, "assignment_sha256": "0" * 64}
    (out / "results.json").write_text(json.dumps(earlier))
    sub = tmp_path / "alice.ipynb"
    shutil.copy(STUDENT, sub)
    proc = course_grade("grade", str(ASSIGNMENT), str(sub), "--out", str(out))
    assert proc.returncode == 2 and "already holds grades" in proc.stderr and "--force" in proc.stderr, proc.stderr
    assert json.loads((out / "results.json").read_text()) == earlier
    assert sorted(p.name for p in out.iterdir()) == ["results.json"]


def test_status_says_what_is_graded_pending_and_failed_and_why(tmp_path):
    data = {**SYNTHETIC, "submissions": SYNTHETIC["submissions"] + [
        {"submission": "late.ipynb", "status": "pending", "max_total": 3.0, "reason": "not graded yet"}]}
    (tmp_path / "results.json").write_text(json.dumps(data))
    proc = course_grade("status", str(tmp_path))
    assert proc.returncode == 1, proc.stderr
    assert "graded: 2" in proc.stdout and "pending: 1" in proc.stdout and "late.ipynb" in proc.stdout
    assert "failed: 2" in proc.stdout and "c.ipynb: timeout" in proc.stdout
    assert "d.ipynb: invalid: the file is empty" in proc.stdout
    assert "written answers to score: 1" in proc.stdout


def test_html_feedback_shows_every_part_and_escapes_what_a_student_wrote():
    result = {**SYNTHETIC["submissions"][1], "submission": "<img src=x onerror=alert(1)>.ipynb",
              "cell_errors": [{"cell": "c1", "error": "NameError: <script>alert(1)</script>"}]}
    result["manual"] = [{"part": "essay", "points": 0.25, "max_points": 0.5, "comment": "see <b>me</b>"}]
    page = feedback_html(result, "01-regression.ipynb")
    for part in ("p1", "p2", "essay"):
        assert f'id="{part}"' in page
    assert "you swapped them" in page and "see &lt;b&gt;me&lt;/b&gt;" in page
    assert "<img" not in page and "<script" not in page and not EXTERNAL.search(page)


# ----------------------------------------------------------------------------------------
# End to end: grade a small batch, then report


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    if not SANDBOXED:
        pytest.skip("needs root and bubblewrap (apt-get install bubblewrap), as in CI")
    base = tmp_path_factory.mktemp("cli")
    folder, out = base / "subs", base / "out"
    folder.mkdir()
    solved = json.loads(ASSIGNMENT.read_text())

    def write(name, nb):
        (folder / name).write_text(json.dumps(nb))

    write("right.ipynb", solved)
    write("swapped.ipynb", corpus._set(copy.deepcopy(solved), "ex1-predict", corpus.PREDICT_SWAPPED))
    write("swapped-too.ipynb", corpus._set(copy.deepcopy(solved), "ex1-predict", corpus.PREDICT_SWAPPED))
    write("reversed.ipynb", corpus._set(copy.deepcopy(solved), "ex1-fit-ols", corpus.REVERSED_BETA))
    shutil.copy(STUDENT, folder / "stubs.ipynb")
    (folder / "broken.ipynb").write_text("{ not a notebook")
    proc = course_grade("grade", str(ASSIGNMENT), str(folder), "--out", str(out), "--jobs", "2",
                        "--cell-timeout", "30", "--timeout", "120")
    report = course_grade("report", str(out))
    return SimpleNamespace(out=out, grade=proc, report=report, names=sorted(p.name for p in folder.iterdir()))


@needs_sandbox
def test_report_csv_agrees_with_grades_csv(graded):
    assert graded.grade.returncode == 0, graded.grade.stderr[-3000:]
    assert graded.report.returncode == 0, graded.report.stderr[-3000:]
    grades = rows_of((graded.out / "grades.csv").read_text())
    scored = [g for g in grades if g["status"] in ("graded", "timeout", "crashed")]
    assert len(grades) == 6 and len(scored) == 5  # broken.ipynb is invalid
    report = {r["part"]: r for r in rows_of((graded.out / "report.csv").read_text())}
    columns = list(grades[0])
    parts = columns[columns.index("max_total") + 1:columns.index("integrity")]  # autograded, then by hand
    assert list(report) == parts and parts[:len(corpus.FULL)] == list(corpus.FULL)
    maxima = {p["part"]: p["points"] for key in ("parts", "manual")
              for p in json.loads((graded.out / "results.json").read_text())[key]}
    for part in parts:
        points = [float(g[part]) for g in scored if g[part] not in ("", "pending")]  # pending: not scored yet
        assert int(report[part]["n"]) == len(points)
        assert float(report[part]["max_points"]) == maxima[part]
        if not points:  # the written answer, not reviewed: no mean, no pass rate
            assert report[part]["mean"] == report[part]["pass_rate"] == "", report[part]
            continue
        top = maxima[part]
        assert float(report[part]["mean"]) == pytest.approx(sum(points) / len(points), abs=1e-6)
        assert float(report[part]["pass_rate"]) == pytest.approx(sum(p == top for p in points) / len(points), abs=1e-6)
    assert int(report["ex1-fit-ols"]["n"]) == 5
    # the chapter's mistake, made twice, is the commonest hint of its part
    assert report["ex1-predict"]["pass_rate"] == "0.4" and "swapped" in report["ex1-predict"]["most_common_hint"]
    assert int(report["ex1-predict"]["hint_count"]) == 2


@needs_sandbox
def test_report_html_has_its_charts_and_no_external_url(graded):
    page = (graded.out / "report.html").read_text()
    assert page.count("<svg ") == 3
    for chart in ("Histogram of the totals of 5 graded submissions", "Pass rate per part",
                  "The hints students hit most"):
        assert chart in page, chart
    assert not EXTERNAL.search(page), EXTERNAL.search(page)
    assert not re.search(r"""(?:src|href)\s*=\s*["']?[^"'#\s>]*https?://""", page)
    assert "http://" not in page and "https://" not in page  # not even an XML namespace


@needs_sandbox
def test_every_submission_has_html_feedback_with_every_part(graded):
    feedback = graded.out / "feedback"
    results = json.loads((graded.out / "results.json").read_text())["submissions"]
    for name in graded.names:
        page = (feedback / f"{name}.html").read_text()
        assert (feedback / f"{name}.md").is_file()
        assert not EXTERNAL.search(page)
        result = next(r for r in results if r["submission"] == name)
        if result["status"] == "invalid":
            assert "Not graded" in page and "could not be graded" in page
            continue
        for part, top in corpus.FULL.items():
            got = next(p for p in result["parts"] if p["part"] == part)
            assert f'id="{part}"' in page and f"{part}: {got['points']:g} / {top:g}" in page, (name, part)
    assert "Hint:" in (feedback / "swapped.ipynb.html").read_text()


@needs_sandbox
def test_status_of_the_finished_batch_lists_the_invalid_file(graded):
    proc = course_grade("status", str(graded.out))
    assert proc.returncode == 1 and "pending: 0" in proc.stdout and "broken.ipynb: invalid" in proc.stdout


def test_review_says_what_is_left_to_score_and_a_merge_into_no_batch_is_refused(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps(SYNTHETIC))
    proc = course_grade("review", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert "essay (0.5 points): 2 of 3 answers scored" in proc.stdout  # a and c scored, b pending
    assert f"course-grade review {tmp_path} --merge {tmp_path / 'manual.csv'}" in proc.stdout
    proc = course_grade("review", str(tmp_path / "nowhere"), "--merge", str(tmp_path / "m.csv"))
    assert proc.returncode == 2 and "is not a folder" in proc.stderr, proc.stderr
