"""What ``course-grade grade`` writes: ``grades.csv``, ``results.json`` and one feedback page
per student (``feedback/<name>.md`` and the same page as self-contained HTML,
``feedback/<name>.html``), each written atomically (a temporary file in the same folder, then
``os.replace``), so that a reader or a killed batch never sees half a file.

A result is a plain dict (it is also what the resume cache stores)::

    {"submission": "alice.ipynb", "sha256": "...", "status": "graded", "reason": "",
     "total": 3.5, "max_total": 4.0, "elapsed": 7.9, "sandbox": "bwrap",
     "parts": [{"part": "ex1-fit-ols", "status": "passed", "points": 1.0,
                "max_points": 1.0, "message": "...", "hint": ""}, ...],
     "cell_errors": [{"cell": "apply", "error": "NameError: name 'beta' is not defined"}]}
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
import re
import tempfile
from pathlib import Path

#: Row statuses. ``pending`` only appears in files written while a batch is running.
STATUSES = ("graded", "timeout", "crashed", "invalid", "error", "pending")
#: Statuses whose ``total`` and part points are a score (the notebook ran, at least in part).
SCORED = ("graded", "timeout", "crashed")

_EXPLAIN = {
    "graded": "",
    "timeout": "**The notebook did not finish in time:** {reason}. Parts whose checks had "
               "not run when it was stopped get 0 points.",
    "crashed": "**The notebook did not finish:** {reason}. Parts whose checks had not run "
               "get 0 points.",
    "invalid": "**This notebook could not be graded:** {reason}. No part was run; ask your "
               "instructor to grade it again once it is fixed.",
    "error": "**The grader had a problem with this notebook:** {reason}. This is not your "
             "fault; your instructor will grade it again.",
}


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old or the new file, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def _fmt(points) -> str:
    return "" if points is None else f"{round(float(points), 6):g}"


def _cell_safe(text: str) -> str:
    """Neutralise spreadsheet formulas in a CSV field (a file named '=HYPERLINK(...)')."""
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def part_points(result: dict, parts: list[str]) -> list[str]:
    """The points of each of ``parts`` in a result, as ``grades.csv`` writes them: empty for
    a row that was not graded, 0 for a part whose check did not run."""
    if result["status"] not in SCORED:
        return [""] * len(parts)
    points = {p["part"]: p["points"] for p in result.get("parts", [])}
    return [_fmt(points.get(p, 0.0)) for p in parts]


def integrity_parts(result: dict) -> list[str]:
    """The parts of a result that got 0 for integrity."""
    return [p["part"] for p in result.get("parts", []) if p.get("status") == "integrity"]


def _manual_points(entry: dict | None) -> str:
    """A hand-graded part's points, or ``pending`` until a score is merged."""
    return "pending" if entry is None or entry.get("points") is None else _fmt(entry["points"])


def grades_csv(results: list[dict], parts: list[str], manual: list[str] = ()) -> str:
    """``grades.csv``: submission, status, total, max_total, one column per autograded part,
    one per part graded by hand, ``integrity``, then ``submission_id``.

    Invalid and errored rows leave ``total`` and the parts empty (nothing was graded);
    timed-out and crashed rows count the parts whose checks ran. A part graded by hand
    reads ``pending`` until its score is merged (``total`` counts only the points given).
    ``integrity`` lists the parts that got 0 for using the library's implementation of
    what they ask for. ``submission_id`` is the anonymous id of the written-answer review.
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["submission", "status", "total", "max_total", *parts, *manual,
                     "integrity", "submission_id"])
    for r in results:
        scored = r["status"] in SCORED
        by_hand = {m["part"]: m for m in r.get("manual") or []}
        writer.writerow([
            _cell_safe(r["submission"]), r["status"],
            _fmt(r.get("total")) if scored else "", _fmt(r["max_total"]),
            *part_points(r, parts),
            *((_manual_points(by_hand.get(m)) if scored else "") for m in manual),
            " ".join(integrity_parts(r)), r.get("submission_id", ""),
        ])
    return out.getvalue()


def results_json(results: list[dict], header: dict) -> str:
    """``results.json``: the batch's settings and every result in full."""
    return json.dumps({**header, "submissions": results}, indent=1, ensure_ascii=False) + "\n"


def feedback_names(names: list[str]) -> dict[str, str]:
    """A safe, unique file name (``<name>.md``) for each submission name.

    Anything but letters, digits, ``.``, ``_`` and ``-`` becomes ``_``; leading dots go, so
    ``../../x.ipynb`` becomes ``x.ipynb.md`` inside the feedback folder.
    """
    taken: set[str] = set()
    mapping = {}
    for name in names:
        stem = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._-")[:120] or "submission"
        candidate, k = stem, 2
        while candidate.lower() in taken:
            candidate, k = f"{stem}-{k}", k + 1
        taken.add(candidate.lower())
        mapping[name] = candidate + ".md"
    return mapping


def _inline(text: str, limit: int = 300) -> str:
    """Student-controlled text as one safe line of Markdown."""
    text = " ".join(str(text).split())[:limit]
    return re.sub(r"([\\`*_\[\]<>|#])", r"\\\1", text)


def _block(text: str, limit: int = 2000) -> str:
    body = str(text)[:limit].replace("~~~", "～～～")
    return f"~~~text\n{body}\n~~~"


def feedback_markdown(result: dict, assignment_name: str) -> str:
    """The feedback page of one submission: status, score, and each part's verdict and hint.

    It shows verdict messages and hints only: never the checks' code, the restored cells
    or a traceback from the grader.
    """
    status = result["status"]
    lines = [f"# Feedback on {_inline(result['submission'])}", ""]
    scored = status in SCORED
    score = f"**{_fmt(result.get('total'))} / {_fmt(result['max_total'])}**" if scored else "not graded"
    lines += [f"Assignment: {_inline(assignment_name)} · Score: {score} · Status: {status}", ""]
    if _EXPLAIN.get(status):
        lines += [_EXPLAIN[status].format(reason=_inline(result.get("reason", ""), 500)), ""]
    parts = result.get("parts", [])
    by_hand = result.get("manual") or [] if scored else []
    pending = [m for m in by_hand if m.get("points") is None]
    if pending:
        lines += [f"The written answers ({', '.join(m['part'] for m in pending)}, "
                  f"{_fmt(sum(float(m['max_points']) for m in pending))} points) are graded by hand "
                  "and are not in the score yet.", ""]
    if parts or by_hand:
        lines += ["| part | points | verdict |", "|---|---|---|"]
        for p in parts:
            mark = "✔" if p["status"] == "passed" else "✘"
            lines.append(f"| {p['part']} | {_fmt(p['points'])} / {_fmt(p['max_points'])} "
                         f"| {mark} {p['status']} |")
        for m in by_hand:
            verdict = "graded by hand" if m.get("points") is not None else "to be graded by hand"
            lines.append(f"| {m['part']} | {_manual_points(m)} / {_fmt(m['max_points'])} | ✎ {verdict} |")
        lines.append("")
        for p in parts:
            mark = "✔" if p["status"] == "passed" else "✘"
            lines += [f"## {p['part']}: {_fmt(p['points'])} / {_fmt(p['max_points'])} {mark}", "",
                      _block(p.get("message", "")), ""]
            if p.get("hint"):
                lines += [f"**Hint:** {_inline(p['hint'], 600)}", ""]
        for m in by_hand:
            lines += [f"## {m['part']} (graded by hand): {_manual_points(m)} / {_fmt(m['max_points'])}", ""]
            if m.get("comment"):
                lines += [_block(m["comment"]), ""]
            elif m.get("points") is None:
                lines += ["Your instructor has not graded this answer yet.", ""]
    errors = result.get("cell_errors", [])
    if errors:
        lines += ["## Cells that raised an error", ""]
        for e in errors[:20]:
            lines.append(f"- cell {_inline(e['cell'], 80)}: {_inline(e['error'], 300)}")
        if len(errors) > 20:
            lines.append(f"- … and {len(errors) - 20} more")
        lines.append("")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------
# Reading an output folder back (report, export, status, review)


class OutputError(ValueError):
    """An output folder that cannot be read back: what is missing or broken, and what to do."""


#: Keys every row of ``results.json`` has; a scored row also has ``total`` and ``parts``.
_ROW_KEYS = ("submission", "status", "max_total")


def read_results(out: Path, finished: bool = True) -> dict:
    """``out/results.json``, validated, for a command that reads a batch back.

    Parameters
    ----------
    out : Path
        The output folder of ``course-grade grade``.
    finished : bool
        Also require every submission to be graded (no ``pending`` row: the batch ran to
        its end), as a report or an export needs.

    Returns
    -------
    dict
        The file's data (``parts``, ``max_total``, ``submissions``, ...).

    Raises
    ------
    OutputError
        Naming everything missing or broken: no folder, no ``results.json``, a file that
        is not JSON or not a results file, rows without their keys or with an unknown
        status, points that are not numbers, and (``finished``) the pending submissions.
    """
    out = Path(out)
    path = out / "results.json"
    if not out.is_dir():
        raise OutputError(f"{out} is not a folder: give the --out folder of `course-grade grade`")
    if not path.is_file():
        raise OutputError(f"{path} not found: is {out} the output folder of `course-grade grade`? "
                          "(grade the submissions first)")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as err:
        raise OutputError(f"{path} is not valid JSON ({err}); it is corrupted: grade again "
                          "(`course-grade grade` rewrites it from its cache)") from None
    problems = []
    if not isinstance(data, dict) or not isinstance(data.get("submissions"), list):
        raise OutputError(f"{path} is not a course-grade results file (no 'submissions' list)")
    if not isinstance(data.get("parts", []), list) or not all(
            isinstance(p, dict) and isinstance(p.get("part"), str) and _number(p.get("points"))
            for p in data.get("parts", [])):
        problems.append("its 'parts' are not a list of {part, points}")
    pending = []
    for k, row in enumerate(data["submissions"]):
        if not isinstance(row, dict):
            problems.append(f"submission {k + 1} is not a record")
            continue
        name = row.get("submission", f"#{k + 1}")
        missing = [key for key in _ROW_KEYS if key not in row]
        if missing:
            problems.append(f"submission {name}: no {', '.join(missing)}")
            continue
        if row["status"] not in STATUSES:
            problems.append(f"submission {name}: unknown status {row['status']!r}")
        elif row["status"] == "pending":
            pending.append(str(name))
        elif row["status"] in SCORED:
            parts = row.get("parts")
            if not _number(row.get("total")) or not isinstance(parts, list) or not all(
                    isinstance(p, dict) and "part" in p and _number(p.get("points")) for p in parts):
                problems.append(f"submission {name}: its total or part points are missing or not numbers")
    if finished and pending:
        shown = ", ".join(pending[:20]) + (f" and {len(pending) - 20} more" if len(pending) > 20 else "")
        problems.append(f"{len(pending)} submission{'s are' if len(pending) > 1 else ' is'} not graded yet "
                        f"(pending: {shown}): the batch did not finish; run the same "
                        "`course-grade grade` command again to finish it")
    if problems:
        raise OutputError(f"{path} cannot be used; nothing was written:\n  " + "\n  ".join(problems))
    return data


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value == value


# ----------------------------------------------------------------------------------------
# The feedback page as HTML


_PAGE_STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:52rem;margin:2rem auto;
padding:0 1rem;color:#1b1b1b;line-height:1.45}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin:1.6rem 0 .4rem}
.meta{color:#555}.score{font-size:1.25rem;font-weight:600}
table{border-collapse:collapse;width:100%;margin:.8rem 0}th,td{text-align:left;padding:.35rem .5rem;
border-bottom:1px solid #ddd;vertical-align:top}th{background:#f4f4f4}
.passed{color:#1a7f37}.failed,.error,.integrity,.not-run{color:#b42318}.pending{color:#8a6d00}
pre{white-space:pre-wrap;background:#f6f8fa;padding:.6rem;border-radius:4px;font-size:.9rem}
.hint{background:#fff8e1;border-left:4px solid #f0b400;padding:.4rem .7rem}
.note{background:#fdecea;border-left:4px solid #b42318;padding:.4rem .7rem}
.bar-bg{display:inline-block;width:6rem;height:.7rem;background:#e6e6e6;vertical-align:middle}
.bar{display:block;height:100%;background:#2f6fb3}
figure{margin:.5rem 0}figure svg{max-width:100%;height:auto}
"""


def _esc(text, limit: int = 2000) -> str:
    return html.escape(str(text)[:limit], quote=True)


def html_page(title: str, body: list[str]) -> str:
    """A self-contained HTML page: inline style, no script, no external resource."""
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{_esc(title, 200)}</title>\n<style>{_PAGE_STYLE}</style>\n</head>\n<body>\n"
            + "\n".join(body) + "\n</body>\n</html>\n")


def _share_bar(points, max_points) -> str:
    try:
        share = max(0.0, min(1.0, float(points) / float(max_points)))
    except (TypeError, ValueError, ZeroDivisionError):
        share = 0.0
    return (f'<span class="bar-bg" role="img" aria-label="{share:.0%} of the points">'
            f'<span class="bar" style="width:{share * 100:.0f}%"></span></span>')


def feedback_html(result: dict, assignment_name: str) -> str:
    """The feedback page of one submission as a self-contained HTML page: the score, every
    part's verdict, points, message and hint, and the written answers' scores and comments
    once reviewed. Everything the student or a check wrote is escaped: nothing in the
    page runs, and it loads nothing (no script, no link, no image)."""
    status = result["status"]
    scored = status in SCORED
    body = [f"<h1>Feedback on {_esc(result['submission'], 300)}</h1>",
            f'<p class="meta">Assignment: {_esc(assignment_name, 300)} · Status: {_esc(status)}</p>']
    if scored:
        body.append(f'<p class="score">Score: {_fmt(result.get("total"))} / {_fmt(result["max_total"])} '
                    f'{_share_bar(result.get("total"), result["max_total"])}</p>')
    else:
        body.append('<p class="score">Not graded</p>')
    if _EXPLAIN.get(status):
        text = _EXPLAIN[status].format(reason=_esc(result.get("reason", ""), 500))
        body.append('<p class="note">' + re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text) + "</p>")
    parts = result.get("parts", [])
    by_hand = (result.get("manual") or []) if scored else []
    pending = [m for m in by_hand if m.get("points") is None]
    if pending:
        body.append(f"<p>The written answers ({_esc(', '.join(m['part'] for m in pending))}, "
                    f"{_fmt(sum(float(m['max_points']) for m in pending))} points) are graded by hand "
                    "and are not in the score yet.</p>")
    if parts or by_hand:
        rows = []
        for p in parts:
            mark = "✔" if p["status"] == "passed" else "✘"
            rows.append(f'<tr><td><a href="#{_esc(p["part"])}">{_esc(p["part"])}</a></td>'
                        f"<td>{_fmt(p['points'])} / {_fmt(p['max_points'])} "
                        f"{_share_bar(p['points'], p['max_points'])}</td>"
                        f'<td class="{_esc(p["status"])}">{mark} {_esc(p["status"])}</td></tr>')
        for m in by_hand:
            done = m.get("points") is not None
            rows.append(f'<tr><td><a href="#{_esc(m["part"])}">{_esc(m["part"])}</a></td>'
                        f"<td>{_manual_points(m)} / {_fmt(m['max_points'])}</td>"
                        f'<td class="{"passed" if done else "pending"}">✎ '
                        f'{"graded by hand" if done else "to be graded by hand"}</td></tr>')
        body += ["<table>", "<thead><tr><th>part</th><th>points</th><th>verdict</th></tr></thead>",
                 "<tbody>", *rows, "</tbody></table>"]
        for p in parts:
            mark = "✔" if p["status"] == "passed" else "✘"
            body += [f'<h2 id="{_esc(p["part"])}">{_esc(p["part"])}: {_fmt(p["points"])} / '
                     f'{_fmt(p["max_points"])} <span class="{_esc(p["status"])}">{mark}</span></h2>',
                     f"<pre>{_esc(p.get('message', ''))}</pre>"]
            if p.get("hint"):
                body.append(f'<p class="hint"><strong>Hint:</strong> {_esc(p["hint"], 600)}</p>')
        for m in by_hand:
            body.append(f'<h2 id="{_esc(m["part"])}">{_esc(m["part"])} (graded by hand): '
                        f"{_manual_points(m)} / {_fmt(m['max_points'])}</h2>")
            if m.get("comment"):
                body.append(f"<p><strong>Comment:</strong></p><pre>{_esc(m['comment'])}</pre>")
            elif m.get("points") is None:
                body.append("<p>Your instructor has not graded this answer yet.</p>")
    errors = result.get("cell_errors", [])
    if errors:
        body.append("<h2>Cells that raised an error</h2><ul>")
        body += [f"<li>cell {_esc(e['cell'], 80)}: <code>{_esc(e['error'], 300)}</code></li>" for e in errors[:20]]
        if len(errors) > 20:
            body.append(f"<li>… and {len(errors) - 20} more</li>")
        body.append("</ul>")
    return html_page(f"Feedback on {result['submission']}", body)


def write_feedback(folder: Path, name: str, result: dict, assignment_name: str) -> None:
    """Write ``folder/<name>`` (Markdown, ``name`` from :func:`feedback_names`) and the same
    page as HTML beside it (``.md`` replaced by ``.html``), each atomically."""
    atomic_write(folder / name, feedback_markdown(result, assignment_name))
    atomic_write(folder / (name.removesuffix(".md") + ".html"), feedback_html(result, assignment_name))
