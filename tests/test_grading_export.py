"""course_grade.export (``course-grade export``): the grade files Canvas and Gradescope
import, and a roster's loose ends reported, never dropped.

The formats are checked against what the platforms document: Canvas's gradebook import
reads ``Student``, ``ID``, ``SIS User ID``, ``SIS Login ID``, ``Section`` and then the
assignment columns (its own export has a ``Points Possible`` row, which the import skips);
Gradescope's "Upload grades" matches students by ``Email`` or ``SID`` and takes a score
column.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from course_grade.export import Student, export, match, read_roster

ROOT = Path(__file__).resolve().parents[1]


def result(name: str, status: str, total: float | None, parts=(1.0, 0.5), reason: str = "") -> dict:
    scored = status in ("graded", "timeout", "crashed")
    return {"submission": name, "status": status, "reason": reason, "total": total, "max_total": 2.0,
            "parts": [{"part": p, "points": v} for p, v in zip(("p1", "p2"), parts)] if scored else []}


RESULTS = {
    "assignment": "01-regression.ipynb",
    "max_total": 2.0,
    "parts": [{"part": "p1", "points": 1.0}, {"part": "p2", "points": 1.0}],
    "submissions": [
        result("alice/01-regression.ipynb", "graded", 1.5),
        result("bob.ipynb", "timeout", 1.0, (1.0, 0.0), "cell spin ran longer than 10 s"),
        result("carol.ipynb", "invalid", None, reason="the file is empty"),
        result("stray.ipynb", "graded", 2.0, (1.0, 1.0)),
    ],
}
ROSTER = [
    Student("alice", "S1", "Alice A", "alice@uni.edu", "aa1", "101", "A"),
    Student("bob.ipynb", "S2", "Bob B", "bob@uni.edu"),
    Student("carol", "S3", "Carol C", "carol@uni.edu"),
    Student("dave.ipynb", "S4", "Dave D", "dave@uni.edu"),
]


def table(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def test_canvas_file_has_canvas_columns_points_possible_and_only_certain_scores():
    text, _ = export(RESULTS, ROSTER, "canvas", "Exercise 1 (12345)")
    assert table(text) == [
        ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "Exercise 1 (12345)"],
        ["    Points Possible", "", "", "", "", "2"],
        ["Alice A", "101", "S1", "aa1", "A", "1.5"],
        ["Bob B", "", "S2", "", "", "1"],
    ]


def test_gradescope_file_has_name_sid_email_and_score():
    text, _ = export(RESULTS, ROSTER, "gradescope", "x")
    assert table(text) == [["Name", "SID", "Email", "Score"],
                           ["Alice A", "S1", "alice@uni.edu", "1.5"], ["Bob B", "S2", "bob@uni.edu", "1"]]


def test_every_unmatched_or_ungraded_row_is_reported():
    _, problems = export(RESULTS, ROSTER, "canvas", "x")
    assert {(p.problem, p.submission, p.student_id, p.status) for p in problems} == {
        ("not graded", "carol.ipynb", "S3", "invalid"),
        ("no submission", "dave.ipynb", "S4", "missing"),
        ("no roster entry", "stray.ipynb", "", "graded"),
    }
    assert next(p for p in problems if p.student_id == "S3").detail == "the file is empty"


def test_the_csv_format_keeps_everyone_with_their_status_and_parts():
    text, _ = export(RESULTS, ROSTER, "csv", "x")
    got = table(text)
    assert got[0] == ["student_id", "name", "email", "submission", "status", "total", "max_total", "p1", "p2"]
    assert got[1:] == [
        ["S1", "Alice A", "alice@uni.edu", "alice/01-regression.ipynb", "graded", "1.5", "2", "1", "0.5"],
        ["S2", "Bob B", "bob@uni.edu", "bob.ipynb", "timeout", "1", "2", "1", "0"],
        ["S3", "Carol C", "carol@uni.edu", "carol.ipynb", "invalid", "", "2", "", ""],
        ["S4", "Dave D", "dave@uni.edu", "dave.ipynb", "missing", "", "2", "", ""],
        ["", "", "", "stray.ipynb", "graded", "2", "2", "1", "1"],
    ]


def test_two_submissions_of_one_student_export_no_score_and_say_why():
    roster = [Student("alice", "S1"), Student("stray.ipynb", "S1")]
    pairs, problems = match(RESULTS["submissions"], roster)
    assert pairs == []
    assert any(p.problem == "student has several submissions" and p.student_id == "S1" for p in problems)


def test_a_roster_name_matching_two_submissions_is_ambiguous():
    subs = [result("x/a.ipynb", "graded", 1.0), result("x/b.ipynb", "graded", 2.0)]
    pairs, problems = match(subs, [Student("x", "S1")])
    assert pairs == [] and problems[0].problem == "roster entry matches several submissions"


def test_names_that_a_spreadsheet_would_run_are_defused():
    roster = [Student("alice", "S1", name="=HYPERLINK(\"http://evil\")")]
    text, _ = export(RESULTS, roster, "gradescope", "x")
    assert table(text)[1][0].startswith("'=")


def test_roster_columns_are_found_by_common_names_and_missing_ones_are_named(tmp_path):
    path = tmp_path / "roster.csv"
    path.write_text("\ufeffSubmission ID,SID,Email,Name\nalice,S1,a@x.org,Alice\n\n", encoding="utf-8")
    assert read_roster(path) == [Student("alice", "S1", "Alice", "a@x.org")]
    path.write_text("file,email\nalice,a@x.org\n")
    with pytest.raises(ValueError, match="has no 'student_id' column .* its columns are 'file', 'email'"):
        read_roster(path)
    path.write_text("submission,student_id\nalice,\n")
    with pytest.raises(ValueError, match="line 2: the 'student_id' column is empty"):
        read_roster(path)


def run_export(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "course_grade", "export", *args],
                          capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_the_export_command_writes_the_file_and_the_problems_and_exits_1(tmp_path):
    (tmp_path / "results.json").write_text(json.dumps(RESULTS))
    roster = tmp_path / "roster.csv"
    roster.write_text("submission,student_id,name,email\n"
                      + "".join(f"{s.submission},{s.student_id},{s.name},{s.email}\n" for s in ROSTER))
    proc = run_export(str(tmp_path), "--format", "canvas", "--roster", str(roster), "--column", "Ex 1")
    assert proc.returncode == 1, proc.stderr
    assert table((tmp_path / "export-canvas.csv").read_text())[0][-1] == "Ex 1"
    problems = table((tmp_path / "export-canvas-problems.csv").read_text())
    assert problems[0] == ["problem", "submission", "student_id", "status", "detail"] and len(problems) == 4
    assert "3 problems" in proc.stderr and "no submission: dave.ipynb (student S4)" in proc.stderr
    clean = tmp_path / "clean.csv"
    clean.write_text("submission,student_id\nalice,S1\nbob,S2\nstray,S5\n")
    RESULTS_OK = {**RESULTS, "submissions": [r for r in RESULTS["submissions"] if r["status"] != "invalid"]}
    (tmp_path / "results.json").write_text(json.dumps(RESULTS_OK))
    proc = run_export(str(tmp_path), "--format", "gradescope", "--roster", str(clean),
                      "--output", str(tmp_path / "gs.csv"))
    assert proc.returncode == 0, proc.stderr
    assert len(table((tmp_path / "gs.csv").read_text())) == 4
    assert (tmp_path / "gs-problems.csv").read_text().strip() == "problem,submission,student_id,status,detail"


def test_export_usage_errors_exit_2(tmp_path):
    proc = run_export(str(tmp_path), "--format", "canvas", "--roster", str(tmp_path / "r.csv"))
    assert proc.returncode == 2 and "results.json not found" in proc.stderr
    (tmp_path / "results.json").write_text(json.dumps(RESULTS))
    proc = run_export(str(tmp_path), "--format", "moodle", "--roster", "r.csv")
    assert proc.returncode == 2 and "invalid choice: 'moodle'" in proc.stderr


def test_anonymous_submission_ids_match_and_pending_written_answers_are_not_exported():
    subs = [dict(result("alice.ipynb", "graded", 1.5), submission_id="s1a2b3c4d5e",
                 manual=[{"part": "essay", "points": None, "max_points": 1.0}]),
            dict(result("bob.ipynb", "graded", 2.0), submission_id="s99",
                 manual=[{"part": "essay", "points": 1.0, "max_points": 1.0}])]
    text, problems = export({**RESULTS, "submissions": subs},
                            [Student("s1a2b3c4d5e", "S1"), Student("s99", "S2")], "gradescope", "x")
    assert table(text)[1:] == [["", "S2", "", "2"]]
    assert [(p.problem, p.student_id) for p in problems] == [("written answers not graded yet", "S1")]
