"""How long ``course-grade report`` takes for a large class, against its 10 s target.

    python benchmarks/bench_report.py [--students 1000] [--repeat 3] [--seed 20261206]

It writes a synthetic ``results.json`` into a temporary folder, as ``course-grade grade``
writes it: ``--students`` submissions of exercise 1's parts (points drawn with a fixed seed,
a known mistake's hint on each failed part, 2 % of the files ``invalid``, 3 % ``timeout``)
and a written answer scored for half the class, then runs the real command,
``python -m course_grade report DIR``, ``--repeat`` times, each in a fresh process (import of
matplotlib included, as an instructor pays it).

It prints the wall time of each run, their median, the sizes of ``report.csv`` and
``report.html``, and the target: under 10 s for 1,000 students on 2 cores. The exit status
is 1 when the median misses it or a run fails.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

TARGET_S = 10.0
PARTS = {"ex1-fit-ols": 1.0, "ex1-standard-errors": 1.0, "ex1-predict": 0.5,
         "ex1-days-to-slow": 0.5, "ex1-residuals-by-subject": 1.0}
HINTS = {
    "ex1-fit-ols": ["the coefficients are in the wrong order", "you fitted without the intercept column"],
    "ex1-standard-errors": ["divide the residual sum of squares by n - p, not n"],
    "ex1-predict": ["intercept and slope are swapped: you swapped them.", "you left out the intercept"],
    "ex1-days-to-slow": ["solve slope * days = ms for days"],
    "ex1-residuals-by-subject": ["average the residuals within each subject"],
}


def synthetic_results(students: int, seed: int) -> dict:
    """A ``results.json`` of ``students`` submissions with known, seeded points."""
    rng = np.random.default_rng(seed)
    skill = rng.beta(4, 2, size=students)
    subs = []
    for i in range(students):
        status = rng.choice(["graded", "invalid", "timeout"], p=[0.95, 0.02, 0.03])
        row = {"submission": f"student-{i:05d}.ipynb", "sha256": f"{i:064x}", "status": str(status),
               "reason": "" if status == "graded" else "synthetic", "max_total": 4.5, "parts": [],
               "cell_errors": [], "submission_id": f"s{i:010x}"}
        if status != "invalid":
            for part, top in PARTS.items():
                ok = rng.random() < skill[i]
                hint = "" if ok or rng.random() < 0.3 else str(rng.choice(HINTS[part]))
                row["parts"].append({"part": part, "status": "passed" if ok else "failed",
                                     "points": top if ok else 0.0, "max_points": top,
                                     "message": "synthetic verdict", "hint": hint})
            scored = rng.random() < 0.5
            row["manual"] = [{"part": "ex1-judgement", "max_points": 1.0,
                              "points": float(rng.integers(0, 3)) / 2 if scored else None,
                              "status": "graded" if scored else "pending", "comment": ""}]
            row["total"] = sum(p["points"] for p in row["parts"]) + (row["manual"][0]["points"] or 0.0)
        else:
            row["total"] = None
        subs.append(row)
    return {"assignment": "01-regression.ipynb", "assignment_sha256": "0" * 64, "max_total": 5.5,
            "parts": [{"part": p, "points": v} for p, v in PARTS.items()],
            "manual": [{"part": "ex1-judgement", "points": 1.0}], "seed": seed, "submissions": subs}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--seed", type=int, default=20261206)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-report-") as tmp:
        out = Path(tmp)
        (out / "results.json").write_text(json.dumps(synthetic_results(args.students, args.seed)))
        times = []
        for k in range(args.repeat):
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "course_grade", "report", str(out)],
                                  capture_output=True, text=True)
            times.append(time.perf_counter() - start)
            if proc.returncode != 0:
                print(f"run {k + 1} failed:\n{proc.stderr[-3000:]}", file=sys.stderr)
                return 1
            print(f"run {k + 1}: {times[-1]:.2f} s")
        median = statistics.median(times)
        sizes = {name: (out / name).stat().st_size for name in ("report.csv", "report.html")}
        print(f"course-grade report, {args.students} students: median {median:.2f} s over {args.repeat} runs "
              f"(target < {TARGET_S:g} s); report.csv {sizes['report.csv']} B, "
              f"report.html {sizes['report.html'] / 1024:.0f} KB")
        return 0 if median < TARGET_S else 1


if __name__ == "__main__":
    sys.exit(main())
