"""``course-grade export``: a graded batch as a grade file a learning platform imports.

Usage::

    course-grade export grades-ex1 --format canvas|gradescope|csv --roster roster.csv
        [--output FILE] [--column NAME] [--force]

It reads ``DIR/results.json`` (written by ``course-grade grade``) and a **roster**, a CSV file that
maps each submission to a student: a ``submission`` column (the submission's name as in
``grades.csv``, e.g. ``alice.ipynb`` or ``alice/01-regression.ipynb``; the name without
``.ipynb``, or its first folder, also match) and a ``student_id`` column (the institution's
student id), with optional ``name``, ``email``, ``login`` (the LMS login, Canvas's
"SIS Login ID"), ``canvas_id`` (Canvas's numeric user "ID") and ``section``.

Formats (the score is ``total``, out of ``max_total``):

``canvas``
    A Canvas gradebook import file (Grades > Import): the columns ``Student``, ``ID``,
    ``SIS User ID``, ``SIS Login ID``, ``Section``, then one assignment column, and a
    ``Points Possible`` row, as Canvas's own gradebook export has. Canvas matches students
    by ``ID``, ``SIS User ID`` or ``SIS Login ID``. The assignment column is ``--column``:
    name it as in Canvas's export, ``Exercise 1 (12345)``, to fill an existing assignment
    (12345 is its id); a new name makes Canvas create a new assignment.
``gradescope``
    A file for Gradescope's "Upload grades" of an assignment: ``Name``, ``SID``, ``Email``
    and a ``Score`` column; Gradescope matches students by email or SID and asks which
    column holds the score.
``csv``
    Everyone, for your own records or another platform: ``student_id``, ``name``,
    ``email``, ``submission``, ``status``, ``total``, ``max_total`` and the points of each
    part, including the problem rows below (status ``missing`` for a student without a
    submission, an empty ``student_id`` for a submission without a roster entry).

Nothing is dropped silently. A submission missing from the roster, a roster entry with no
submission, a student with more than one submission, a roster name that matches several
submissions, a row that was not graded (``invalid``, ``error``, ``pending``) and a row
whose written answers are still to be graded by hand (its total would be partial) are
left out of the canvas and gradescope files, so that the platform keeps what it has, and
listed on stderr and in ``<output>-problems.csv``: those files carry only the scores that
are certain. ``timeout`` and ``crashed`` rows are graded rows: their score counts the
parts whose checks ran, as in ``grades.csv``.

Problems are named by roster line (a line repeated, an entry naming no submission, two
lines claiming one submission). Before anything is written, ``results.json`` is validated
(:func:`~course_grade.report.read_results`): a missing or corrupted file, or a batch with
submissions still pending, is an error that says what is missing, and nothing is written.
An existing grade file with other grades is kept unless ``--force``.

Exit status: 0 when every submission and every roster entry was matched and graded; 1 when
the grade file was written but problems are listed (look at them before you import); 2
when nothing was written (no, corrupted or unfinished ``results.json``, a roster without the
needed columns, an existing grade file without ``--force``).
"""

from __future__ import annotations

import csv
import io
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path

from course_grade.report import SCORED, _cell_safe, _fmt, atomic_write, part_points, read_results

FORMATS = ("canvas", "gradescope", "csv")

_ALIASES = {
    "submission": ("submission", "submission_id", "submission id", "file", "notebook"),
    "student_id": ("student_id", "student id", "sid", "sis user id", "sis_user_id", "id number"),
    "name": ("name", "student", "student name", "full name"),
    "email": ("email", "e-mail", "email address"),
    "login": ("login", "sis login id", "sis_login_id", "username"),
    "canvas_id": ("canvas_id", "canvas id", "canvas user id"),
    "section": ("section",),
}


@dataclass(frozen=True)
class Student:
    """One roster entry."""

    submission: str
    student_id: str
    name: str = ""
    email: str = ""
    login: str = ""
    canvas_id: str = ""
    section: str = ""
    line: int = field(default=0, compare=False)  # the roster's line (0: not from a file)


@dataclass(frozen=True)
class Problem:
    """Something the instructor must look at; the row was not exported as a score."""

    problem: str
    submission: str
    student_id: str
    status: str
    detail: str


def read_roster(path: Path) -> list[Student]:
    """Read a roster CSV (UTF-8, with or without BOM; column names are case-insensitive).

    Raises
    ------
    ValueError
        If the file is missing or has no ``submission`` or no ``student_id`` column, or a
        row has an empty ``submission`` or ``student_id``.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"roster not found: {path}")
    reader = csv.DictReader(io.StringIO(path.read_text(encoding="utf-8-sig")))
    header = {(h or "").strip().lower(): h for h in reader.fieldnames or []}
    columns = {}
    for field, names in _ALIASES.items():
        found = next((header[n] for n in names if n in header), None)
        if found is not None:
            columns[field] = found
    for needed in ("submission", "student_id"):
        if needed not in columns:
            raise ValueError(
                f"roster {path} has no {needed!r} column (or one of "
                f"{', '.join(map(repr, _ALIASES[needed][1:]))}); its columns are "
                f"{', '.join(map(repr, reader.fieldnames or []))}"
            )
    students = []
    for line, row in enumerate(reader, start=2):
        values = {f: (row.get(c) or "").strip() for f, c in columns.items()}
        if not any(values.values()):
            continue  # a blank line
        for needed in ("submission", "student_id"):
            if not values[needed]:
                raise ValueError(f"roster {path}, line {line}: the {needed!r} column is empty")
        students.append(Student(**values, line=line))
    return students


def _keys(result: dict) -> set[str]:
    """The roster values that name a submission: its name, without ``.ipynb``, its folder,
    and its anonymous ``submission_id`` (written by the manual-grading merge)."""
    name = result["submission"]
    keys = {name, name.removesuffix(".ipynb")}
    if "/" in name:
        keys.add(name.split("/", 1)[0])
    if result.get("submission_id"):
        keys.add(str(result["submission_id"]))
    return keys


def _pending_manual(result: dict) -> list[str]:
    """Parts graded by hand whose score is not merged yet (the total would be partial)."""
    return [str(m.get("part")) for m in result.get("manual") or [] if m.get("points") is None]


def match(results: list[dict], roster: list[Student]):
    """Pair submissions with students.

    Returns
    -------
    pairs : list of (Student, dict)
        Each exported student with their one submission's result.
    problems : list of Problem
    """
    problems: list[Problem] = []
    by_key: dict[str, list[dict]] = {}
    for r in results:
        for key in _keys(r):
            by_key.setdefault(key, []).append(r)
    claimed: dict[str, list[Student]] = {}
    seen: dict[tuple[str, str], Student] = {}
    for s in roster:
        first = seen.setdefault((s.submission, s.student_id), s)
        if first is not s:  # the same line twice: reported, counted once
            problems.append(Problem("duplicate roster entry", s.submission, s.student_id, "",
                                    f"{_line(s)}repeats {_line(first).rstrip(': ') or 'an earlier entry'}"))
            continue
        found = by_key.get(s.submission, [])
        if len(found) > 1:
            problems.append(Problem("roster entry matches several submissions", s.submission, s.student_id,
                                    "", _line(s) + ", ".join(sorted(r["submission"] for r in found))[:500]))
        elif not found:
            problems.append(Problem("no submission", s.submission, s.student_id, "missing",
                                    _line(s) + "the roster names a submission that is not in this batch"))
        else:
            claimed.setdefault(found[0]["submission"], []).append(s)
    for name, students in claimed.items():
        if len({s.student_id for s in students}) > 1:
            lines = ", ".join(str(s.line) for s in students if s.line)
            problems.append(Problem("submission claimed by several students", name,
                                    ", ".join(sorted(s.student_id for s in students)), "",
                                    (f"roster lines {lines}: " if lines else "")
                                    + "fix the roster: one student per submission"))
    per_student: dict[str, list[tuple[Student, dict]]] = {}
    results_by_name = {r["submission"]: r for r in results}
    for name, students in claimed.items():
        if len({s.student_id for s in students}) == 1:
            per_student.setdefault(students[0].student_id, []).append((students[0], results_by_name[name]))
    pairs = []
    for sid, entries in per_student.items():
        if len(entries) > 1:
            problems.append(Problem("student has several submissions", ", ".join(sorted(r["submission"] for _, r in entries)),
                                    sid, "", "no score exported: keep one submission per student in the roster"))
            continue
        student, result = entries[0]
        if result["status"] not in SCORED:
            problems.append(Problem("not graded", result["submission"], sid, result["status"],
                                    str(result.get("reason", ""))[:500]))
        elif _pending_manual(result):
            problems.append(Problem("written answers not graded yet", result["submission"], sid,
                                    result["status"], "merge the hand-graded scores first: "
                                    + ", ".join(_pending_manual(result))))
        pairs.append((student, result))
    matched = set(claimed)
    for r in results:
        if r["submission"] not in matched:
            problems.append(Problem("no roster entry", r["submission"], "", r["status"],
                                    "the submission is in no roster row"))
    return pairs, problems


def _line(student: Student) -> str:
    return f"roster line {student.line}: " if student.line else ""


def _write_rows(header: list[str], rows: list[list]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell_safe(str(v)) for v in row])
    return out.getvalue()


def export(results: dict, roster: list[Student], fmt: str, column: str) -> tuple[str, list[Problem]]:
    """The grade file's text in format ``fmt``, and the problems to report.

    Parameters
    ----------
    results : dict
        The contents of ``results.json``.
    roster : list of Student
    fmt : {"canvas", "gradescope", "csv"}
    column : str
        The assignment column's name (Canvas).
    """
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    subs = results["submissions"]
    max_total = _fmt(results.get("max_total"))
    pairs, problems = match(subs, roster)
    scored = [(s, r) for s, r in pairs if r["status"] in SCORED and not _pending_manual(r)]
    if fmt == "canvas":
        rows = [["    Points Possible", "", "", "", "", max_total]]
        rows += [[s.name, s.canvas_id, s.student_id, s.login, s.section, _fmt(r["total"])] for s, r in scored]
        return _write_rows(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", column], rows), problems
    if fmt == "gradescope":
        rows = [[s.name, s.student_id, s.email, _fmt(r["total"])] for s, r in scored]
        return _write_rows(["Name", "SID", "Email", "Score"], rows), problems
    parts = [p["part"] for p in results.get("parts", [])]
    rows = [[s.student_id, s.name, s.email, r["submission"], r["status"],
             _fmt(r["total"]) if r["status"] in SCORED else "", max_total, *part_points(r, parts)]
            for s, r in pairs]
    by_sub = {r["submission"]: r for r in subs}
    for p in problems:
        if p.problem == "no roster entry":
            r = by_sub[p.submission]
            rows.append(["", "", "", r["submission"], r["status"],
                         _fmt(r["total"]) if r["status"] in SCORED else "", max_total, *part_points(r, parts)])
        elif p.problem == "no submission":
            s = next(s for s in roster if s.submission == p.submission and s.student_id == p.student_id)
            rows.append([s.student_id, s.name, s.email, s.submission, "missing", "", max_total, *[""] * len(parts)])
    header = ["student_id", "name", "email", "submission", "status", "total", "max_total", *parts]
    return _write_rows(header, rows), problems


def problems_csv(problems: list[Problem]) -> str:
    """The problems as CSV: ``problem``, ``submission``, ``student_id``, ``status``, ``detail``."""
    return _write_rows(["problem", "submission", "student_id", "status", "detail"],
                       [[p.problem, p.submission, p.student_id, p.status, p.detail] for p in problems])


def command(args) -> int:
    """``course-grade export OUT --format F --roster R [--output FILE] [--column NAME] [--force]``
    (``args`` from :mod:`course_grade.cli`); returns the exit status (module docstring).

    Everything is read and checked before anything is written: a missing, corrupted or
    unfinished ``results.json`` (:func:`~course_grade.report.read_results`) or a bad roster
    is an error (exit 2) that names what is wrong and writes nothing; an existing grade
    file with other contents is kept unless ``--force``.
    """
    try:
        results = read_results(args.dir)
        roster = read_roster(args.roster)
    except ValueError as err:
        print(f"course-grade export: error: {err}", file=sys.stderr)
        return 2
    column = args.column or Path(str(results.get("assignment", "assignment"))).stem
    text, problems = export(results, roster, args.format, column)
    output = args.output or args.dir / f"export-{args.format}.csv"
    report = output.with_name(output.stem + "-problems.csv")
    if (output.is_file() and output.read_text(encoding="utf-8", errors="replace") != text
            and not args.force):
        print(f"course-grade export: error: {output} exists with other grades; nothing was written "
              "(add --force to overwrite it, or choose another --output)", file=sys.stderr)
        return 2
    atomic_write(output, text)
    atomic_write(report, problems_csv(problems))
    exported = sum(1 for line in text.splitlines()[1:] if not line.startswith("    Points Possible"))
    print(f"wrote {output}: {exported} rows in {args.format} format")
    if not problems:
        print(f"every submission and roster entry matched and graded ({report} is empty)")
        return 0
    counts: dict[str, int] = {}
    for p in problems:
        counts[p.problem] = counts.get(p.problem, 0) + 1
    print(f"{len(problems)} problems, listed in {report} and below: "
          + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())), file=sys.stderr)
    for p in problems[:50]:
        who = f" (student {p.student_id})" if p.student_id else ""
        print(f"  {p.problem}: {p.submission}{who}{': ' + p.status if p.status else ''}"
              f"{' - ' + p.detail if p.detail else ''}", file=sys.stderr)
    if len(problems) > 50:
        print(f"  ... and {len(problems) - 50} more in {report}", file=sys.stderr)
    return 1
