"""``course-grade report``: how the class did, part by part (``report.csv``, ``report.html``).

From a finished batch's ``results.json`` (:func:`~course_grade.report.read_results`), for
each part :math:`j` with :math:`p_{ij}` the points of submission :math:`i` out of
:math:`m_j`, over the :math:`n_j` submissions that have a score for it (rows ``graded``,
``timeout`` or ``crashed``, as in ``grades.csv``; a written answer counts once it is
scored)::

    mean_j      = (1 / n_j) * sum_i p_ij
    pass_rate_j = (1 / n_j) * #{i : p_ij = m_j}        (full points)
    hint_j      = the hint given most often to a submission without full points on j

``report.csv`` has one row per part: ``part``, ``max_points``, ``mean``, ``pass_rate``,
``n``, ``most_common_hint`` and ``hint_count`` (how many submissions got that hint).
``report.html`` is one self-contained page: the same table, a histogram of the totals, the
pass rate of each part and the hints students hit most, as inline SVG drawn by
matplotlib's SVG backend (text kept as text, no script, no link, no image file, nothing
loaded from anywhere). Both files are computed in memory first and written atomically,
so a failure leaves the earlier report (or none), never half of one.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from pathlib import Path

from course_grade.report import SCORED, _esc, _fmt, atomic_write, html_page, read_results

#: Hints shown in the report's chart (the table under it lists them in full).
TOP_HINTS = 10
_FULL = 1e-9  # points within this of the maximum are full points (sums of floats)


def part_rows(data: dict) -> list[dict]:
    """One summary per part (autograded parts, then those graded by hand).

    Parameters
    ----------
    data : dict
        A validated ``results.json`` (:func:`~course_grade.report.read_results`).

    Returns
    -------
    list of dict
        ``part``, ``max_points``, ``mean``, ``pass_rate``, ``n``, ``most_common_hint``,
        ``hint_count``, ``kind`` (``auto`` or ``manual``). ``mean`` and ``pass_rate`` are
        None when no submission has a score for the part (``n`` = 0).
    """
    scored = [r for r in data["submissions"] if r["status"] in SCORED]
    rows = []
    for spec in data.get("parts", []):
        part, top = spec["part"], float(spec["points"])
        points, hints = [], Counter()
        for r in scored:
            entry = next((p for p in r.get("parts", []) if p.get("part") == part), None)
            got = float(entry["points"]) if entry is not None else 0.0  # a check that never ran: 0
            points.append(got)
            if got < top - _FULL and entry is not None and entry.get("hint"):
                hints[str(entry["hint"])] += 1
        rows.append(_summary(part, top, points, hints, "auto"))
    for spec in data.get("manual", []) or []:
        part, top = spec["part"], float(spec["points"])
        points = [float(e["points"]) for r in scored for e in r.get("manual") or []
                  if e.get("part") == part and e.get("points") is not None]
        rows.append(_summary(part, top, points, Counter(), "manual"))
    return rows


def _summary(part: str, top: float, points: list[float], hints: Counter, kind: str) -> dict:
    n = len(points)
    hint, count = hints.most_common(1)[0] if hints else ("", 0)
    return {"part": part, "max_points": top, "n": n, "kind": kind,
            "mean": sum(points) / n if n else None,
            "pass_rate": sum(p >= top - _FULL for p in points) / n if n else None,
            "most_common_hint": hint, "hint_count": count}


def top_hints(data: dict, k: int = TOP_HINTS) -> list[tuple[str, str, int]]:
    """The ``k`` (part, hint) pairs given to the most submissions, most frequent first."""
    counts: Counter = Counter()
    for r in data["submissions"]:
        if r["status"] in SCORED:
            for p in r.get("parts", []):
                if p.get("hint") and float(p["points"]) < float(p.get("max_points", 0)) - _FULL:
                    counts[(str(p["part"]), str(p["hint"]))] += 1
    return [(part, hint, n) for (part, hint), n in counts.most_common(k)]


def report_csv(rows: list[dict]) -> str:
    """``report.csv`` from :func:`part_rows` (empty ``mean`` and ``pass_rate`` when ``n`` is 0)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["part", "max_points", "mean", "pass_rate", "n", "most_common_hint", "hint_count"])
    for r in rows:
        writer.writerow([r["part"], _fmt(r["max_points"]),
                         "" if r["mean"] is None else f"{r['mean']:.6g}",
                         "" if r["pass_rate"] is None else f"{r['pass_rate']:.6g}",
                         r["n"], r["most_common_hint"], r["hint_count"]])
    return out.getvalue()


# ----------------------------------------------------------------------------------------
# Charts: matplotlib's SVG backend, inlined


def _svg(fig, alt: str) -> str:
    """A figure as an inline ``<svg>`` element, with ``alt`` as its accessible name."""
    import matplotlib.pyplot as plt

    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight",
                metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    plt.close(fig)
    text = buf.getvalue()
    text = text[text.index("<svg"):]  # drop the XML declaration and the DOCTYPE (an external DTD)
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)
    # inline SVG in HTML needs no namespace declarations (the HTML parser knows svg and xlink):
    # dropped, so that the page holds no URL at all, not even an identifier never fetched
    text = re.sub(r'\s+xmlns(?::xlink)?="[^"]*"', "", text)
    return text.replace("<svg ", f'<svg role="img" aria-label="{_esc(alt, 500)}" ', 1)


def _charts(data: dict, rows: list[dict], hints: list[tuple[str, str, int]]) -> dict[str, str]:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    style = {"svg.fonttype": "none", "svg.hashsalt": "course-grade", "text.parse_math": False,
             "font.size": 10, "axes.spines.top": False, "axes.spines.right": False}
    charts = {}
    with plt.rc_context(style):
        totals = [float(r["total"]) for r in data["submissions"] if r["status"] in SCORED]
        top = float(data.get("max_total") or max(totals, default=1.0) or 1.0)
        fig, ax = plt.subplots(figsize=(7, 3))
        bins = min(40, max(10, int(round(top * 2))))
        ax.hist(totals, bins=bins, range=(0, top), color="#2f6fb3", edgecolor="white")
        ax.set(xlabel=f"total (points out of {top:g})", ylabel="submissions",
               title=f"Totals of {len(totals)} graded submissions")
        charts["totals"] = _svg(fig, f"Histogram of the totals of {len(totals)} graded submissions, "
                                     f"out of {top:g} points")
        rated = [r for r in rows if r["n"]]
        fig, ax = plt.subplots(figsize=(7, 0.8 + 0.32 * max(1, len(rated))))
        labels = [r["part"] + (" (by hand)" if r["kind"] == "manual" else "") for r in rated]
        rates = [100 * r["pass_rate"] for r in rated]
        ax.barh(range(len(rated)), rates, color=["#1a7f37" if v >= 70 else "#c9a227" if v >= 40 else "#b42318"
                                                  for v in rates])
        for y, v in enumerate(rates):
            ax.text(min(v + 1, 92), y, f"{v:.0f} %", va="center", fontsize=9)
        ax.set_yticks(range(len(rated)), labels)
        ax.invert_yaxis()
        ax.set(xlim=(0, 100), xlabel="submissions with full points (%)", title="Pass rate per part")
        charts["pass"] = _svg(fig, "Bar chart of the share of submissions with full points on each part")
        if hints:
            fig, ax = plt.subplots(figsize=(7, 0.8 + 0.36 * len(hints)))
            short = [f"{part}: {h[:60]}{'…' if len(h) > 60 else ''}" for part, h, _ in hints]
            ax.barh(range(len(hints)), [n for *_, n in hints], color="#c9a227")
            ax.set_yticks(range(len(hints)), short, fontsize=8)
            ax.invert_yaxis()
            ax.set(xlabel="submissions given the hint", title="The hints students hit most")
            charts["hints"] = _svg(fig, "Bar chart of the hints given to the most submissions")
    return charts


def report_html(data: dict, rows: list[dict], hints: list[tuple[str, str, int]]) -> str:
    """``report.html``: the table, the three charts and the hints in full; self-contained."""
    charts = _charts(data, rows, hints)
    counts = Counter(r["status"] for r in data["submissions"])
    body = [f"<h1>Class report: {_esc(data.get('assignment', ''), 300)}</h1>",
            '<p class="meta">' + ", ".join(f"{n} {_esc(s)}" for s, n in sorted(counts.items()))
            + f" · out of {_fmt(data.get('max_total'))} points · seed {_esc(data.get('seed', ''))}</p>",
            "<h2>Totals</h2>", f"<figure>{charts['totals']}</figure>",
            "<h2>Pass rate per part</h2>", f"<figure>{charts['pass']}</figure>",
            "<table><thead><tr><th>part</th><th>max</th><th>mean</th><th>pass rate</th><th>n</th>"
            "<th>most common hint (submissions)</th></tr></thead><tbody>"]
    for r in rows:
        mean = "" if r["mean"] is None else f"{r['mean']:.3g}"
        rate = "" if r["pass_rate"] is None else f"{100 * r['pass_rate']:.0f} %"
        hint = f"{_esc(r['most_common_hint'], 400)} ({r['hint_count']})" if r["hint_count"] else ""
        body.append(f"<tr><td>{_esc(r['part'])}{' (by hand)' if r['kind'] == 'manual' else ''}</td>"
                    f"<td>{_fmt(r['max_points'])}</td><td>{mean}</td><td>{rate}</td><td>{r['n']}</td>"
                    f"<td>{hint}</td></tr>")
    body.append("</tbody></table>")
    body.append("<h2>The hints students hit most</h2>")
    if hints:
        body += [f"<figure>{charts['hints']}</figure>", "<ol>"]
        body += [f"<li><strong>{_esc(part)}</strong> ({n} submissions): {_esc(h, 1000)}</li>"
                 for part, h, n in hints]
        body.append("</ol>")
    else:
        body.append("<p>No hint was given: every failing part failed without a known mistake, "
                    "or nothing failed.</p>")
    return html_page(f"Class report: {data.get('assignment', '')}", body)


def write_report(out: Path) -> tuple[list[Path], str]:
    """Write ``out/report.csv`` and ``out/report.html`` from ``out/results.json``.

    Returns
    -------
    written : list of Path
    summary : str
        One line for the terminal.

    Raises
    ------
    OutputError
        When ``results.json`` is missing, corrupted or the batch unfinished (the message
        names what); nothing is written then.
    """
    out = Path(out)
    data = read_results(out)
    rows = part_rows(data)
    hints = top_hints(data)
    csv_text, html_text = report_csv(rows), report_html(data, rows, hints)  # all before any write
    atomic_write(out / "report.csv", csv_text)
    atomic_write(out / "report.html", html_text)
    n = sum(r["status"] in SCORED for r in data["submissions"])
    return [out / "report.csv", out / "report.html"], f"report on {n} graded submissions, {len(rows)} parts"
