"""Benchmark of course_lib.bayes on the chapter-4 LFP data: wall time, ESS/s, peak memory.

Each fit runs in a fresh Python process, so jax's start-up, tracing and compilation are
included, exactly as a reader meets them when a notebook kernel starts. Every case is run
twice against its own, initially empty, persistent compilation cache: "cold" (nothing
compiled yet, as on a new machine) and then "warm" (the cache filled by the cold run, as on
every later build).

Cases (4 chains x (1000 warmup + 1000 draws), defaults of ``fit_hierarchical``):

- ``trial``:  ``log_power ~ stim + (1 | mouse)`` on 480 trial rows; target <= 5 s.
- ``slopes``: the chapter's honest model, ``log_power ~ stim + (1 + stim | mouse)`` with the
  per-mouse intercepts and effects integrated out (``parameterisation="marginal"``), on the
  chapter's 480 trial rows; target <= 5 s.
- ``sample``: ``log_power ~ stim + (1 | mouse) + (1 | mouse:trial)`` on 72,000 sample rows;
  target <= 10 s.
- ``sweep`` (with ``--sweep``): ``false_positive_rate`` of the per-mouse-effect model over
  the chapter's 200 null data sets, 2 chains x (500 + 500) each; target < 60 s.

Reported per run: ``fit_s`` (wall time of the fit call: data reduction, tracing,
compilation and sampling), ``process_s`` (the whole child process, imports and data
simulation included), ``cpu_s`` (user + system CPU time of the child), ``ess`` and
``ess_per_s`` (bulk ESS of the stim effect over ``fit_s``), ``peak_mb`` (peak resident
memory of the child) and the 1-minute load average of the machine at the start, because
other processes on a shared machine slow every figure here.

Usage::

    python benchmarks/bench_bayes.py                 # trial and sample, cold and warm
    python benchmarks/bench_bayes.py --sweep         # also the false-positive sweep
    python benchmarks/bench_bayes.py --repeats 3     # warm runs repeated, median shown
    python benchmarks/bench_bayes.py --json out.json # also write the raw figures
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

TARGETS = {"trial": 5.0, "slopes": 5.0, "sample": 10.0, "sweep": 60.0}

CHILD = r"""
import json, os, resource, sys, time
t0 = time.perf_counter()
case = sys.argv[1]
import numpy as np
from course_lib.bayes import fit_hierarchical, false_positive_rate
from course_lib.lfp import simulate_lfp
t_import = time.perf_counter() - t0
if case == "sweep":
    data = [simulate_lfp(mouse_response_slope=0.0, baseline_sd=0.6, seed=1000 + s)[0]
            for s in range(200)]
    t1 = time.perf_counter()
    res = false_positive_rate(data, "log_power", "stim", "mouse", group_slopes=True,
                              parameterisation="marginal", prob=0.95, num_chains=2,
                              num_warmup=500, num_samples=500, seed=1)
    fit_s = time.perf_counter() - t1
    ess = float(res.table["ess"].sum())
    extra = {"rate": res.rate, "max_r_hat": float(res.table["max_r_hat"].max()),
             "sets_with_divergences": int((res.table["divergences"] > 0).sum())}
else:
    if case == "slopes":
        df = simulate_lfp(n_mice=8, n_trials=30, baseline_sd=0.6, seed=4)[0]
        kw = {"group_slopes": True, "parameterisation": "marginal"}
    else:
        trials, samples = simulate_lfp(seed=0)
        df = trials if case == "trial" else samples
        kw = {"nested": None if case == "trial" else "trial"}
    t1 = time.perf_counter()
    fit = fit_hierarchical(df, "log_power", "stim", "mouse", y_is_log=True, **kw)
    fit_s = time.perf_counter() - t1
    row = fit.summary(groups=False).loc["stim"]
    ess = float(row["ess"])
    extra = {"stim_mean": float(row["mean"]), "stim_sd": float(row["sd"]),
             "r_hat": float(row["r_hat"]), "divergences": fit.num_divergences,
             "chain_method": fit.timing["chain_method"], "n_rows": len(df)}
ru = resource.getrusage(resource.RUSAGE_SELF)
print("RESULT " + json.dumps({
    "fit_s": fit_s, "import_s": t_import, "process_s": time.perf_counter() - t0,
    "cpu_s": ru.ru_utime + ru.ru_stime, "ess": ess, "ess_per_s": ess / fit_s,
    "peak_mb": ru.ru_maxrss / 1024, **extra}))
"""


def run_child(case: str, cache_dir: str) -> dict:
    env = dict(os.environ, COURSE_LIB_JAX_CACHE=cache_dir)
    load = os.getloadavg()[0]
    start = time.perf_counter()
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    proc = subprocess.run([sys.executable, "-c", CHILD, case], env=env, capture_output=True,
                          text=True, cwd=repo)
    wall = time.perf_counter() - start
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"case {case} failed:\n{proc.stdout}\n{proc.stderr}")
    out = json.loads(lines[-1][len("RESULT "):])
    out.update(wall_s=wall, load_1min=load)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sweep", action="store_true", help="also benchmark the FPR sweep")
    parser.add_argument("--repeats", type=int, default=1, help="warm runs per case")
    parser.add_argument("--json", help="write all figures to this file")
    args = parser.parse_args(argv)

    cases = ["trial", "slopes", "sample"] + (["sweep"] if args.sweep else [])
    results = {}
    print(f"{'case':7} {'cache':5} {'fit s':>7} {'target':>7} {'ok':>3} {'process s':>9} "
          f"{'cpu s':>6} {'ESS':>6} {'ESS/s':>7} {'peak MB':>8} {'load':>5}")
    for case in cases:
        with tempfile.TemporaryDirectory(prefix=f"bench_{case}_") as cache:
            runs = {"cold": [run_child(case, cache)]}
            runs["warm"] = [run_child(case, cache) for _ in range(args.repeats)]
        results[case] = runs
        for kind, rs in runs.items():
            fit_s = statistics.median(r["fit_s"] for r in rs)
            r = rs[0]
            ok = "yes" if fit_s <= TARGETS[case] else "NO"
            print(f"{case:7} {kind:5} {fit_s:7.2f} {TARGETS[case]:7.1f} {ok:>3} "
                  f"{statistics.median(x['process_s'] for x in rs):9.2f} "
                  f"{statistics.median(x['cpu_s'] for x in rs):6.1f} {r['ess']:6.0f} "
                  f"{statistics.median(x['ess_per_s'] for x in rs):7.0f} "
                  f"{max(x['peak_mb'] for x in rs):8.0f} {r['load_1min']:5.1f}")
        detail = {k: v for k, v in runs["warm"][0].items()
                  if k in ("stim_mean", "stim_sd", "r_hat", "divergences", "chain_method",
                           "n_rows", "rate", "max_r_hat", "sets_with_divergences")}
        print(f"        {case} details: {detail}")
    print(f"{os.cpu_count()} CPU cores; targets: trial and slopes <= 5 s, sample <= 10 s, "
          "sweep <= 60 s (fit call, fresh process, compilation included)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
