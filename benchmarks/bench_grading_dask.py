"""What grading on a Dask cluster costs: ``course-grade grade --scheduler local:N`` against the
local backend (``--jobs N``), on the same machine, in the same run.

    python benchmarks/bench_grading_dask.py [ASSIGNMENT] [--copies 200] [--workers 2]

ASSIGNMENT defaults to ``exercises/01-regression.ipynb`` (the cheapest exercise, so that the
grader's own cost shows). The benchmark grades ``--copies`` copies of the instructor notebook
(each must get full marks on its autograded parts) twice, through the real command line: with the local backend and
``--jobs N``, then on a ``LocalCluster`` of N single-threaded workers (``--scheduler
local:N``, cluster start-up included). It prints, for both:

* submissions per second (wall time of the whole command);
* the time per submission and job slot (wall time x N / copies) and the median time the
  grader measured per submission (``elapsed`` in ``results.json``);
* the **distributed overhead per submission**: the difference of the per-slot times
  (budget: 0.5 s), and of the medians;
* from the distributed per-slot time, the estimated wall time of 5,000 submissions on 50
  such workers (the time one slot spends per submission is what a worker spends on a
  cluster; the estimate assumes the scheduler keeps 50 workers busy, which Dask does easily
  at a few tasks a second).

The exit status is 1 when the overhead is over budget or a copy misses full marks.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_grading import full_marks, make_copies  # benchmarks/bench_grading.py

ROOT = Path(__file__).resolve().parents[1]
BUDGET_SECONDS = 0.5
CLASS_SIZE, CLUSTER_WORKERS = 5000, 50


def run(assignment: Path, folder: Path, out: Path, extra: list[str]) -> tuple[float, dict]:
    """Grade ``folder`` with ``extra`` options; wall seconds and results.json."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "course_grade", "grade", str(assignment), str(folder), "--out", str(out),
         "--no-progress", *extra],
        capture_output=True, text=True, cwd=ROOT,
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"course-grade {' '.join(extra)} failed:\n{proc.stderr[-3000:]}")
    return wall, json.loads((out / "results.json").read_text())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignment", nargs="?", type=Path, default=ROOT / "exercises" / "01-regression.ipynb")
    parser.add_argument("--copies", type=int, default=200, help="submissions to grade (default 200)")
    parser.add_argument("--workers", type=int, default=2,
                        help="local:N workers, and --jobs of the local run (default 2)")
    args = parser.parse_args(argv)
    assignment = args.assignment.resolve()
    n = args.workers
    print(f"assignment: {assignment.relative_to(ROOT)}; {args.copies} copies; local backend "
          f"--jobs {n} vs --scheduler local:{n}; {os.cpu_count()} cores; load average before: "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}")
    figures = {}
    with tempfile.TemporaryDirectory(prefix="bench-grading-dask-") as tmp:
        tmp = Path(tmp)
        folder = tmp / "submissions"
        make_copies(assignment, folder, args.copies)
        for label, extra in (("local", ["--jobs", str(n)]), ("dask", ["--scheduler", f"local:{n}"])):
            wall, results = run(assignment, folder, tmp / label, extra)
            full = full_marks(results)
            figures[label] = {
                "wall": wall,
                "rate": args.copies / wall,
                "per_slot": wall * n / args.copies,
                "median": statistics.median(r["elapsed"] for r in results["submissions"]),
                "full": full,
            }
    for label, f in figures.items():
        print(f"{label:>5}: {args.copies} submissions in {f['wall']:.1f} s = {f['rate']:.3f} submissions/s; "
              f"{f['per_slot']:.2f} s per submission and slot; median graded time {f['median']:.2f} s; "
              f"full marks {f['full']}/{args.copies}")
    local, dask = figures["local"], figures["dask"]
    overhead = dask["per_slot"] - local["per_slot"]
    print(f"distributed overhead per submission: {overhead:+.2f} s (per slot, cluster start-up "
          f"included), {dask['median'] - local['median']:+.2f} s (medians); budget {BUDGET_SECONDS:.1f} s")
    estimate = CLASS_SIZE * dask["per_slot"] / CLUSTER_WORKERS
    print(f"estimate: {CLASS_SIZE} submissions on {CLUSTER_WORKERS} workers take about "
          f"{estimate / 60:.1f} min ({CLASS_SIZE} x {dask['per_slot']:.2f} s / {CLUSTER_WORKERS}), "
          f"against {CLASS_SIZE * local['per_slot'] / n / 3600:.1f} h on this machine's {n} slots")
    ok = overhead <= BUDGET_SECONDS and all(f["full"] == args.copies for f in figures.values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
