"""How much time ``course-grade`` adds to each submission, and whether a batch uses every core.

    python benchmarks/bench_grading.py [ASSIGNMENT] [--copies 100] [--jobs N] [--baseline 10]

ASSIGNMENT defaults to ``exercises/05-lnp-receptive-fields.ipynb`` when it exists, else
``exercises/01-regression.ipynb``. The benchmark grades ``--copies`` copies of the instructor
notebook (each must get full marks on its autograded parts) with ``--jobs`` jobs, and
compares with the notebook's own run time: ``--baseline`` copies executed by plain nbclient
(no sandbox, no grader, but the sandbox's thread and matplotlib settings), ``--jobs`` at a
time, each in a fresh process and a fresh kernel, as ``benchmarks/notebooks.py`` does.

It prints:

* the notebook's own run time (median, kernel start included) and the graded time per
  submission as the grader measures it (sandbox, runner, kernel, cells, judging);
* the grader's **overhead per submission**: the difference of the two medians, and the
  batch's wall time per submission and job slot minus the notebook's own run time (this one
  also counts the batch's start-up and bookkeeping);
* the mean utilisation of each core during the batch (the machine may be shared: the
  figures of other processes are included).

Targets: overhead ≤ 1 s per submission, and every core busy. The exit status is 1 when a
target is missed or a copy does not get full marks.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
BUDGET_SECONDS = 1.0

_CHILD = r"""
import json, sys, time
import nbformat
from nbclient import NotebookClient
nb = nbformat.read(sys.argv[1], as_version=4)
start = time.perf_counter()
NotebookClient(nb, timeout=1200, kernel_name="python3", allow_errors=True,
               resources={"metadata": {"path": sys.argv[2]}}).execute()
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


def default_assignment() -> Path:
    five = ROOT / "exercises" / "05-lnp-receptive-fields.ipynb"
    return five if five.exists() else ROOT / "exercises" / "01-regression.ipynb"


def make_copies(assignment: Path, folder: Path, n: int) -> None:
    """``n`` copies of the instructor notebook in ``folder`` (a new folder), as submissions."""
    folder.mkdir()
    for k in range(n):
        shutil.copyfile(assignment, folder / f"student-{k:04d}.ipynb")


def full_marks(results: dict) -> int:
    """Submissions with full marks on every autograded part (written answers stay pending
    until an instructor scores them, so the total cannot reach max_total here)."""
    return sum(r["status"] == "graded" and bool(r["parts"])
               and all(p["points"] == p["max_points"] for p in r["parts"])
               for r in results["submissions"])


def plain_run(path: Path, workdir: Path) -> float:
    """Seconds to execute one notebook with plain nbclient, kernel start included."""
    # The sandbox's settings that change the run time: one BLAS thread per kernel, and
    # matplotlib's Agg backend (the inline backend's PNG rendering costs ~1.5 s here).
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(path), str(workdir)],
                          capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"{path} failed to execute:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])["seconds"]


class CoreSampler(threading.Thread):
    """Samples each core's utilisation once a second."""

    def __init__(self):
        super().__init__(daemon=True)
        self.samples: list[list[float]] = []
        self._halt = threading.Event()
        psutil.cpu_percent(percpu=True)

    def run(self):
        while not self._halt.wait(1.0):
            self.samples.append(psutil.cpu_percent(percpu=True))

    def stop(self) -> list[float]:
        self._halt.set()
        self.join()
        return [statistics.mean(core) for core in zip(*self.samples)] if self.samples else []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("assignment", nargs="?", type=Path, default=default_assignment())
    parser.add_argument("--copies", type=int, default=100, help="submissions to grade (default 100)")
    parser.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)),
                        help="jobs at once, for both runs (default: the number of cores)")
    parser.add_argument("--baseline", type=int, default=10,
                        help="plain runs for the notebook's own run time (default 10)")
    args = parser.parse_args(argv)
    assignment = args.assignment.resolve()
    print(f"assignment: {assignment.relative_to(ROOT)}; {args.copies} copies, {args.jobs} jobs, "
          f"{psutil.cpu_count()} cores; load average before: "
          f"{', '.join(f'{x:.1f}' for x in os.getloadavg())}")

    with tempfile.TemporaryDirectory(prefix="bench-grading-") as tmp:
        tmp = Path(tmp)
        work = tmp / "plain"
        work.mkdir()
        with ThreadPoolExecutor(args.jobs) as pool:
            plain = list(pool.map(lambda _: plain_run(assignment, work), range(args.baseline)))
        own = statistics.median(plain)

        folder = tmp / "submissions"
        make_copies(assignment, folder, args.copies)
        out = tmp / "out"
        sampler = CoreSampler()
        sampler.start()
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-m", "course_grade", "grade", str(assignment), str(folder),
             "--out", str(out), "--jobs", str(args.jobs), "--no-progress"],
            capture_output=True, text=True, cwd=ROOT,
        )
        wall = time.perf_counter() - start
        cores = sampler.stop()
        if proc.returncode != 0:
            print(proc.stderr[-3000:], file=sys.stderr)
            return 1
        results = json.loads((out / "results.json").read_text())

    graded = statistics.median(r["elapsed"] for r in results["submissions"])
    full = full_marks(results)
    per_slot = wall * args.jobs / args.copies
    overhead, overhead_batch = graded - own, per_slot - own
    print(f"notebook's own run time (plain nbclient, {args.jobs} at a time): median {own:.2f} s "
          f"(min {min(plain):.2f}, max {max(plain):.2f})")
    print(f"graded, per submission (sandbox + runner + kernel + cells + judge): median {graded:.2f} s")
    print(f"batch: {args.copies} submissions in {wall:.1f} s = {per_slot:.2f} s per submission "
          f"and job slot ({args.copies / wall * 60:.1f} submissions a minute)")
    print(f"grader overhead per submission: {overhead:+.2f} s (medians), "
          f"{overhead_batch:+.2f} s (batch, start-up included); budget {BUDGET_SECONDS:.1f} s")
    print("mean utilisation per core during the batch: "
          + ", ".join(f"{c:.0f}%" for c in cores))
    print(f"full marks: {full}/{args.copies}; sandbox: {results['sandbox']}")
    ok = overhead <= BUDGET_SECONDS and full == args.copies and all(c > 50 for c in cores)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
