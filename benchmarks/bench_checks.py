"""Benchmark of the exercise checks: the time each check cell takes, slowest first.

For every registered part with an answer in the check tests (the instructor-independent
answers of ``tests/test_checks*.py``), time what a check cell does in a notebook,
``checks.run(part, answer)`` (collect: the answer on the drawn cases; judge: the
reference and the comparison), on the public cases, then on the hidden cases of a grading
run's seed (what ``course-grade`` does: the same two steps, on new draws). The first call
of a part includes drawing its cases and computing its references (the grader pays that
once per batch: both are cached per process); a second call shows the cached cost.

Targets (issue 22): a check cell within 2 s on 2 cores, a check that runs MCMC within 30 s.

Usage::

    python benchmarks/bench_checks.py            # every part, slowest first
    python benchmarks/bench_checks.py --top 5    # the five slowest
    python benchmarks/bench_checks.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

#: The check tests whose ``CORRECT`` answers are timed.
ANSWER_MODULES = ["test_checks", "test_checks_ex02_ex03", "test_checks_ex04", "test_checks_ex05", "test_checks_ex06"]
TARGET_S = 2.0


def answers() -> dict:
    import importlib

    found = {}
    for name in ANSWER_MODULES:
        found.update(importlib.import_module(name).CORRECT)
    return found


def time_part(part: str, answer, seed: int) -> dict:
    from course_lib import checks

    row = {"part": part}
    for label, run_seed in (("public", None), ("hidden", seed)):
        for attempt in ("first", "cached"):
            start = time.perf_counter()
            verdict = checks.run(part, answer, seed=run_seed)
            row[f"{label}_{attempt}_s"] = round(time.perf_counter() - start, 3)
            row[f"{label}_passed"] = verdict.passed
    row["worst_s"] = max(v for k, v in row.items() if k.endswith("_s"))
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--top", type=int, default=None, help="show only the N slowest checks")
    parser.add_argument("--seed", type=int, default=20261205, help="the grading run's seed for the hidden cases")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    os.environ.setdefault("MPLBACKEND", "Agg")
    rows = [time_part(part, answer, args.seed) for part, answer in answers().items()]
    rows.sort(key=lambda r: r["worst_s"], reverse=True)
    shown = rows[: args.top] if args.top else rows
    print(f"{'part':28s} {'public 1st':>10s} {'cached':>7s} {'hidden 1st':>10s} {'cached':>7s}  ok   (target {TARGET_S:g} s)")
    for r in shown:
        ok = "yes" if r["public_passed"] and r["hidden_passed"] else "NO"
        slow = "  > target" if r["worst_s"] > TARGET_S else ""
        print(f"{r['part']:28s} {r['public_first_s']:10.2f} {r['public_cached_s']:7.2f} "
              f"{r['hidden_first_s']:10.2f} {r['hidden_cached_s']:7.2f}  {ok:4s}{slow}")
    print(f"load average at the end: {os.getloadavg()[0]:.2f} (other work on the machine slows every figure)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))
    return 0 if all(r["public_passed"] and r["hidden_passed"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
