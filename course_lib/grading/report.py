"""What ``course-grade`` writes: ``grades.csv``, ``results.json`` and one feedback page per
student, each written atomically (a temporary file in the same folder, then
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
