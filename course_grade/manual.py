"""Parts graded by hand: collect the written answers, let the instructor score them, merge.

A part that code cannot judge (a derivation, a written answer) is a cell with
``metadata.course = {"part": ..., "role": "manual", "points": p}`` (Markdown or code). For
every submission, the grader takes the source of the student's cell *with that id* (cells
are matched by id, as for the checks; a missing cell gives an empty answer, flagged) and
stores it in the result::

    "manual": [{"part": "ex5-derivation", "max_points": 2.0, "points": null,
                "status": "pending", "answer": "...", "answer_sha256": "...",
                "flag": "", "comment": ""}]

``course-grade`` then writes, next to ``grades.csv``:

``manual/<part>.html``
    one review page per question: the question, the model answer, and every submission's
    answer under its anonymous id (``submission_id``, a hash of the submission's name;
    ``grades.csv`` and ``results.json`` map it back to the name). Answers are rendered
    from Markdown with raw HTML disabled, so nothing a student writes runs in the page.
``manual.csv``
    the template the instructor fills in: ``submission_id, part, max_points, points,
    comment, flag``, one row per graded submission and question. It is written only when
    it does not exist (a fresh copy is always in ``manual/manual-template.csv``).

``course-grade review DIR --merge manual.csv`` validates the whole file (points within
``0..max_points``, known submission ids, manual parts only, no duplicate rows) and only
then records the scores in ``DIR/manual.json`` and rewrites ``grades.csv``,
``results.json`` and the feedback, without running any notebook. A row with blank points
leaves that answer pending; a row the file does not list keeps its earlier score. A
score applies to the answer it was given for: if a resubmitted notebook changes the
answer, the score is dropped and the answer is pending again.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import html
import io
import json
import math
import sys
from collections.abc import Iterable
from pathlib import Path

from course_grade.report import (
    SCORED,
    atomic_write,
    feedback_names,
    OutputError,
    grades_csv,
    read_results,
    results_json,
    write_feedback,
)

__all__ = [
    "ManualError",
    "submission_id",
    "attach_answers",
    "review",
    "apply_scores",
    "template_csv",
    "review_html",
    "write_review",
    "read_scores",
    "merge",
    "main",
]

#: Longest answer kept, in characters.
MAX_ANSWER_CHARS = 20_000
#: The text the release puts where a written answer goes.
STUB = "YOUR ANSWER HERE"
COLUMNS = ("submission_id", "part", "max_points", "points", "comment", "flag")


class ManualError(ValueError):
    """A manual-scores file that cannot be merged; the message lists every problem."""


def submission_id(name: str) -> str:
    """The anonymous id of a submission: ``s`` and 10 hex digits of the SHA-256 of its name.

    Stable across runs (a resubmitted notebook keeps its id) and the same on every
    machine; ``grades.csv`` maps it back to the name.
    """
    return "s" + hashlib.sha256(name.encode("utf-8")).hexdigest()[:10]


# ----------------------------------------------------------------------------------------
# Collecting the answers (in the grader, from the validated submission)


def attach_answers(result: dict, assignment, plan) -> dict:
    """Add the submission's answer to each manual part of the assignment to a result.

    Parameters
    ----------
    result : dict
        A grading result; not modified.
    assignment : Assignment
    plan : RunPlan
        The submission's plan; its ``answers`` hold the sources of the manual cells.

    Returns
    -------
    dict
        The result with ``manual``: one pending entry per manual part (empty for a row
        that was not graded).
    """
    result = dict(result)
    if result.get("status") not in SCORED or not assignment.manual:
        result["manual"] = []
        return result
    entries = []
    for m in assignment.manual:
        sources = plan.answers.get(m.cell_id, [])
        answer = sources[-1] if sources else ""
        flag = ""
        if not sources:
            flag = f"missing: the notebook has no cell with id {m.cell_id!r} (deleted, or retyped in a new cell)"
        elif len(sources) > 1:
            flag = f"the notebook has {len(sources)} cells with id {m.cell_id!r}; the last one is the answer"
        body = answer.replace(STUB, "").replace("**Answer.**", "").strip()
        if sources and not body:
            flag = "empty: no answer was written" if STUB not in answer else "unchanged: still says YOUR ANSWER HERE"
        if len(answer) > MAX_ANSWER_CHARS:
            answer = answer[:MAX_ANSWER_CHARS]
            flag = (flag + "; " if flag else "") + f"cut to its first {MAX_ANSWER_CHARS} characters"
        entries.append({
            "part": m.part, "max_points": m.points, "points": None, "status": "pending",
            "answer": answer, "answer_sha256": hashlib.sha256(answer.encode("utf-8")).hexdigest(),
            "flag": flag, "comment": "",
        })
    result["manual"] = entries
    return result


def review(result: dict, assignment, plan) -> dict:
    """What the grader adds to a judged result, in its own process: the integrity verdicts
    (:mod:`~course_grade.integrity`) and the answers graded by hand."""
    from course_grade import integrity

    if result.get("status") in SCORED:  # the checks' own code is out of bounds everywhere
        targets = sorted({t for names in assignment.writes.values() for t in names})
        code = [(c.cell_id or f"#{k + 1}", c.source) for k, c in enumerate(plan.cells) if c.part is None]
        result = integrity.apply_findings(result, integrity.analyse(code, targets), assignment.writes)
    return attach_answers(result, assignment, plan)


# ----------------------------------------------------------------------------------------
# Applying recorded scores to results


def apply_scores(rows: list[dict], scores: dict) -> list[dict]:
    """Results with their anonymous id, their recorded manual scores, and their totals.

    Parameters
    ----------
    rows : list of dict
        Grading results (from the cache or ``results.json``); not modified.
    scores : dict
        ``manual.json``'s ``scores``: ``{submission_id: {part: {"points", "comment",
        "answer_sha256"}}}``.

    Returns
    -------
    list of dict
        Each result with ``submission_id``; each manual entry ``graded`` with its points
        and comment when a score was recorded for this answer, else ``pending`` (with a
        note when the answer changed after it was scored); ``total`` = autograded points
        plus the manual points given.
    """
    out = []
    for row in rows:
        row = dict(row)
        sid = submission_id(str(row.get("submission", "")))
        row["submission_id"] = sid
        given = scores.get(sid, {})
        entries = []
        for e in row.get("manual") or []:
            e = {**e, "points": None, "status": "pending", "comment": ""}
            e["flag"] = e.get("flag", "").replace(_CHANGED, "").strip("; ")
            score = given.get(e["part"])
            if score is not None and score.get("points") is not None:
                if score.get("answer_sha256") == e.get("answer_sha256"):
                    e.update(points=float(score["points"]), status="graded", comment=str(score.get("comment", "")))
                else:
                    e["flag"] = (e["flag"] + "; " if e["flag"] else "") + _CHANGED
            entries.append(e)
        if "manual" in row:
            row["manual"] = entries
        if row.get("status") in SCORED:
            auto = sum(float(p.get("points") or 0) for p in row.get("parts", []))
            row["total"] = round(auto + sum(e["points"] for e in entries if e["points"] is not None), 6)
        out.append(row)
    return out


_CHANGED = "the answer changed after it was scored: score it again"


# ----------------------------------------------------------------------------------------
# Review pages and the template


def template_csv(rows: list[dict], scores: dict | None = None) -> str:
    """``manual.csv``: one row per graded submission and manual part, points blank unless
    a score is already recorded (then the file round-trips)."""
    scores = scores or {}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in apply_scores(rows, scores):
        for e in row.get("manual") or []:
            points = "" if e["points"] is None else f"{e['points']:g}"
            writer.writerow([row["submission_id"], e["part"], f"{float(e['max_points']):g}", points,
                             e.get("comment", ""), e.get("flag", "")])
    return out.getvalue()


def _render_markdown(text: str) -> str:
    """A student's Markdown as HTML, with raw HTML escaped and math left as TeX."""
    from markdown_it import MarkdownIt
    from mdit_py_plugins.dollarmath import dollarmath_plugin

    md = MarkdownIt("commonmark", {"html": False}).use(dollarmath_plugin)
    return md.render(text)


_STYLE = """
body { font-family: system-ui, sans-serif; max-width: 52rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.5; }
section { border-top: 1px solid #ccc; padding: .5rem 0 1rem; }
.flag { color: #a40; font-weight: bold; }
.model { background: #f4f8f4; padding: .5rem 1rem; }
pre { background: #f6f6f6; padding: .5rem; overflow-x: auto; white-space: pre-wrap; }
"""


def review_html(part, rows: list[dict], assignment_name: str) -> str:
    """The review page of one manual part: question, model answer, every answer by id.

    Parameters
    ----------
    part : ManualPart
    rows : list of dict
        Results after :func:`apply_scores` (they carry ``submission_id``).
    assignment_name : str
    """
    esc = html.escape
    answers = [(r["submission_id"], e) for r in rows for e in r.get("manual") or [] if e["part"] == part.part]
    lines = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(part.part)}: written answers</title>",
        # MathJax renders the TeX when the page is online; offline it stays readable source
        # ui/safe: MathJax's filter of \href, \style and the like in the students' TeX
        '<script>window.MathJax = {loader: {load: ["ui/safe"]}, tex: {inlineMath: [["$", "$"]]}};</script>',
        '<script async src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"></script>',
        f"<style>{_STYLE}</style></head><body>",
        f"<h1>{esc(part.part)} ({part.points:g} points, graded by hand)</h1>",
        f"<p>{esc(assignment_name)}: {len(answers)} answers. Score each in <code>manual.csv</code> "
        "by its submission id; then run <code>course-grade review DIR --merge manual.csv</code>.</p>",
        "<h2>The question</h2>", _render_markdown(part.question),
    ]
    if part.model_answer:
        lines += ['<h2>Model answer</h2><div class="model">', _render(part.model_answer, part.cell_type), "</div>"]
    for sid, e in answers:
        lines.append(f'<section id="{esc(sid)}"><h2>{esc(sid)}</h2>')
        if e.get("flag"):
            lines.append(f'<p class="flag">{esc(e["flag"])}</p>')
        if e["points"] is not None:
            lines.append(f"<p>Scored {e['points']:g} / {float(e['max_points']):g}"
                         + (f": {esc(e['comment'])}" if e.get("comment") else "") + "</p>")
        lines.append(_render(e.get("answer", ""), part.cell_type))
        lines.append(f"<details><summary>source</summary><pre>{esc(e.get('answer', ''))}</pre></details></section>")
    lines.append("</body></html>")
    return "\n".join(lines) + "\n"


def _render(text: str, cell_type: str) -> str:
    if cell_type == "code":
        return f"<pre><code>{html.escape(text)}</code></pre>"
    return _render_markdown(text)


def write_review(out: Path, rows: list[dict], assignment) -> list[Path]:
    """Write ``manual/<part>.html``, ``manual/manual-template.csv`` and, if absent,
    ``manual.csv`` into ``out``; returns the files written (nothing without manual parts)."""
    if not assignment.manual:
        return []
    scores = load_scores(out)
    rows = apply_scores(rows, scores)
    written = []
    for m in assignment.manual:
        path = out / "manual" / f"{m.part}.html"
        atomic_write(path, review_html(m, rows, assignment.path.name))
        written.append(path)
    template = template_csv(rows, scores)
    atomic_write(out / "manual" / "manual-template.csv", template)
    written.append(out / "manual" / "manual-template.csv")
    if not (out / "manual.csv").exists():
        atomic_write(out / "manual.csv", template)
        written.append(out / "manual.csv")
    return written


# ----------------------------------------------------------------------------------------
# Reading and merging the instructor's scores


def load_scores(out: Path) -> dict:
    """The scores recorded by earlier merges (``out/manual.json``), or none."""
    path = Path(out) / "manual.json"
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return data.get("scores", {}) if isinstance(data, dict) else {}


def read_scores(text: str, rows: list[dict], manual_parts: dict[str, float],
                auto_parts: Iterable[str], source: str = "manual.csv") -> dict:
    """Validate a filled-in ``manual.csv``; the scores it sets.

    Parameters
    ----------
    text : str
        The file's text (a spreadsheet's BOM, and ``;`` or tab separators, are accepted).
    rows : list of dict
        The results the scores are for (after :func:`apply_scores`).
    manual_parts : dict of str to float
        Each manual part and its points.
    auto_parts : iterable of str
        The autograded parts (which this file cannot change).
    source : str
        The file's name, for the messages.

    Returns
    -------
    dict
        ``{submission_id: {part: {"points": float or None, "comment": str,
        "answer_sha256": str}}}``; ``points`` None for a blank (still pending).

    Raises
    ------
    ManualError
        Listing every bad row by line number: points above the part's points, negative or
        not a number; an unknown submission id or part; an autograded part; a duplicate
        (submission, part) row; a submission that was not graded; missing columns.
    """
    text = text.lstrip("\ufeff")
    if not text.strip():
        raise ManualError(f"{source} is empty: expected the columns {', '.join(COLUMNS[:5])}")
    try:
        dialect = csv.Sniffer().sniff(text.splitlines()[0], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    header = [h.strip() for h in reader.fieldnames or []]
    reader.fieldnames = header
    missing = [c for c in ("submission_id", "part", "points") if c not in header]
    if missing:
        raise ManualError(f"{source}: missing column(s) {', '.join(missing)}; the header is "
                          f"{', '.join(header) or '(empty)'}; expected {', '.join(COLUMNS[:5])}")
    by_id = {r["submission_id"]: r for r in rows}
    auto = set(auto_parts)
    problems: list[str] = []
    seen: dict[tuple[str, str], int] = {}
    scores: dict = {}
    for row in reader:
        line = reader.line_num
        sid = (row.get("submission_id") or "").strip()
        part = (row.get("part") or "").strip()
        raw = (row.get("points") or "").strip()
        comment = (row.get("comment") or "").strip()
        if not sid and not part and not raw:
            continue  # a blank line
        where = f"{source}, line {line}"
        if None in row:
            problems.append(f"{where}: more fields than columns (put a comment that contains "
                            "commas in double quotes)")
            continue
        key = (sid, part)
        if key in seen:
            problems.append(f"{where}: duplicate row for submission {sid} and part {part} "
                            f"(first on line {seen[key]}); keep one")
            continue
        seen[key] = line
        if part in auto:
            problems.append(f"{where}: part {part!r} is autograded; its points cannot be changed "
                            "through this file (only the parts graded by hand: "
                            f"{', '.join(manual_parts)})")
            continue
        if part not in manual_parts:
            problems.append(f"{where}: unknown part {part!r}; the parts graded by hand are "
                            f"{', '.join(manual_parts) or '(none)'}")
            continue
        result = by_id.get(sid)
        if result is None:
            problems.append(f"{where}: unknown submission id {sid!r} (ids are in grades.csv and "
                            "the template manual/manual-template.csv)")
            continue
        if result.get("status") not in SCORED:
            problems.append(f"{where}: submission {sid} ({result.get('status')}) was not graded, "
                            "so it has no answer to score; grade it first")
            continue
        maximum = float(manual_parts[part])
        if "max_points" in header and (row.get("max_points") or "").strip():
            try:
                stated = float(row["max_points"].strip())
            except ValueError:
                stated = math.nan
            if stated != maximum:
                problems.append(f"{where}: max_points is {row['max_points'].strip()!r} but part {part} "
                                f"is worth {maximum:g} points (set by the exercise, not by this file)")
                continue
        points = None
        if raw:
            try:
                points = float(raw)
            except ValueError:
                problems.append(f"{where}: points {raw!r} is not a number (use a dot for decimals, "
                                "or leave it blank while the answer is not graded)")
                continue
            if not math.isfinite(points) or points < 0:
                problems.append(f"{where}: points {raw!r} must be between 0 and {maximum:g}")
                continue
            if points > maximum:
                problems.append(f"{where}: points {raw} is more than part {part} is worth ({maximum:g})")
                continue
        entry = next((e for e in result.get("manual") or [] if e["part"] == part), None)
        if entry is None:
            problems.append(f"{where}: submission {sid} has no answer to part {part} in the results")
            continue
        scores.setdefault(sid, {})[part] = {"points": points, "comment": comment[:2000],
                                            "answer_sha256": entry.get("answer_sha256")}
    if problems:
        shown = problems[:50] + ([f"... and {len(problems) - 50} more"] if len(problems) > 50 else [])
        raise ManualError(f"{source} was not merged ({len(problems)} problem"
                          f"{'s' if len(problems) > 1 else ''}; nothing was changed):\n  " + "\n  ".join(shown))
    return scores


def merge(out: Path, manual_csv: Path, assignment=None, force: bool = False) -> dict:
    """Merge a filled-in ``manual.csv`` into the results in ``out``; no notebook is run.

    Everything is validated before anything is written. Then ``out/manual.json`` records
    the scores (earlier scores of rows the file does not list are kept; a blank clears
    one), and ``grades.csv``, ``results.json`` and ``feedback/`` are rewritten, each file
    atomically.

    Parameters
    ----------
    out : Path
        The output folder of an earlier ``course-grade`` run (it has ``results.json``).
    manual_csv : Path
        The instructor's scores.
    assignment : Assignment or None
        If given, it must be the notebook the results were graded against.
    force : bool
        Let the file change (or clear) a score merged earlier; without it, such rows are
        refused, each named, and nothing is written.

    Returns
    -------
    dict
        Counts: ``scored`` and ``pending`` answers, ``submissions``.

    Raises
    ------
    ManualError
        If the results or the file cannot be used (the message says why).
    """
    out = Path(out)
    try:
        data = read_results(out, finished=False)
    except OutputError as err:
        raise ManualError(str(err)) from None
    if assignment is not None and data.get("assignment_sha256") != assignment.sha256:
        raise ManualError(f"the results in {out} were graded against another version of "
                          f"{data.get('assignment')}, not {assignment.path}: grade again first")
    manual_parts = {m["part"]: float(m["points"]) for m in data.get("manual", [])}
    if not manual_parts:
        raise ManualError(f"{data.get('assignment')} has no parts graded by hand; nothing to merge")
    rows = [r for r in data.get("submissions", [])]
    if any(r.get("status") == "pending" for r in rows):
        raise ManualError(f"the batch in {out} did not finish (some submissions are pending): "
                          "run the grading command again first")
    try:
        text = Path(manual_csv).read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as err:
        raise ManualError(f"cannot read {manual_csv}: {err}") from None
    previous = load_scores(out)
    rows = apply_scores(rows, previous)
    new = read_scores(text, rows, manual_parts, [p["part"] for p in data.get("parts", [])],
                      source=Path(manual_csv).name)
    changed = [f"submission {sid}, part {part}: {_fmt_points(previous[sid][part])} merged earlier, "
               f"{_fmt_points(score)} in {Path(manual_csv).name}"
               for sid, parts in new.items() for part, score in parts.items()
               if previous.get(sid, {}).get(part, {}).get("points") is not None
               and previous[sid][part].get("answer_sha256") == score.get("answer_sha256")
               and (score["points"] != previous[sid][part]["points"]
                    or score.get("comment", "") != previous[sid][part].get("comment", ""))]
    if changed and not force:
        raise ManualError(f"{Path(manual_csv).name} would change {len(changed)} score"
                          f"{'s' if len(changed) > 1 else ''} merged earlier (nothing was changed; "
                          "add --force to overwrite them):\n  " + "\n  ".join(changed[:50]))
    scores = {sid: dict(parts) for sid, parts in previous.items()}
    for sid, parts in new.items():
        for part, score in parts.items():
            if score["points"] is None:
                scores.get(sid, {}).pop(part, None)
            else:
                scores.setdefault(sid, {})[part] = score
    scores = {sid: parts for sid, parts in scores.items() if parts}
    rows = apply_scores(data["submissions"], scores)

    atomic_write(out / "manual.json", json.dumps({"assignment": data.get("assignment"),
                                                  "scores": scores}, indent=1, ensure_ascii=False) + "\n")
    header = {k: v for k, v in data.items() if k != "submissions"}
    atomic_write(out / "grades.csv", grades_csv(rows, [p["part"] for p in data.get("parts", [])],
                                                list(manual_parts)))
    atomic_write(out / "results.json", results_json(rows, header))
    names = feedback_names([r["submission"] for r in rows])
    for r in rows:
        write_feedback(out / "feedback", names[r["submission"]], r, str(data.get("assignment")))
    entries = [e for r in rows for e in r.get("manual") or []]
    return {"submissions": len(rows), "scored": sum(e["status"] == "graded" for e in entries),
            "pending": sum(e["status"] == "pending" for e in entries)}


def _fmt_points(score: dict) -> str:
    return "blank" if score.get("points") is None else f"{float(score['points']):g} points"
