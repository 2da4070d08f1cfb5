"""Time ``course_lib.mixed.lmer`` against lme4's ``lmer`` in the same run, with peak memory.

    python benchmarks/bench_mixed.py [--repeats 20] [--designs sleepstudy,crossed2k,...]

Designs (the engine issue's targets on 2 cores):

=============  =====================================================  ======================
design         model                                                  target
=============  =====================================================  ======================
sleepstudy     Reaction ~ Days + (Days | Subject), 180 rows            no slower than lme4
crossed2k      y ~ cond + (1 + cond | subject) + (1 + cond | item)     no slower than lme4
crossed100k    y ~ cond + (1 + cond | subject) + (1 | item), 100k      <= 0.5 x lme4, <= 1 GB
insteval       y ~ service + (1 | s) + (1 | d) + (1 | dept), 73,421    <= 0.5 x lme4, <= 1 GB
=============  =====================================================  ======================

Each Python fit runs in a fresh process (the formula, model frame and convergence check
included; data loading and imports not), which reports its time and its peak resident
memory. lme4 fits the same data (written to CSV once) with its default control in one
Rscript run, timed with ``system.time`` around ``lmer`` alone, when ``Rscript`` with lme4
is on the PATH. Small designs report the fastest of ``--repeats`` fits on each side.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DESIGNS = {
    "sleepstudy": ("Reaction ~ Days + (Days | Subject)", "sleepstudy", 1.0),
    "crossed2k": ("y ~ cond + (1 + cond | subject) + (1 + cond | item)", "crossed2k", 1.0),
    "crossed100k": ("y ~ cond + (1 + cond | subject) + (1 | item)", "crossed100k", 0.5),
    "insteval": ("y ~ service + (1 | s) + (1 | d) + (1 | dept)", "InstEval", 0.5),
}
LARGE = {"crossed100k", "insteval"}
MEMORY_BUDGET_MB = 1024

CHILD = textwrap.dedent("""
    import json, resource, sys, time, warnings
    sys.path.insert(0, {tests!r})
    from mixed_data import dataset
    from course_lib.mixed import lmer
    name, formula, repeats = sys.argv[1], sys.argv[2], int(sys.argv[3])
    data = dataset(name)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = lmer(formula, data)
        times.append(time.perf_counter() - t)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({{"seconds": min(times), "peak_mb": peak, "base_mb": base,
                      "logLik": fit.logLik, "evals": fit.n_evals}}))
""")

R_SCRIPT = textwrap.dedent("""
    suppressPackageStartupMessages(library(lme4))
    args <- commandArgs(trailingOnly = TRUE)
    dir <- args[1]; reps <- as.integer(args[2])
    designs <- jsonlite::fromJSON(file.path(dir, "designs.json"))
    out <- list()
    for (name in names(designs)) {{
      d <- designs[[name]]
      data <- read.csv(file.path(dir, paste0(d$data, ".csv")), stringsAsFactors = TRUE)
      for (col in d$factors) data[[col]] <- factor(data[[col]])
      f <- as.formula(d$formula)
      best <- Inf
      for (i in seq_len(d$repeats)) {{
        t <- system.time(fit <- suppressMessages(lmer(f, data)))[["elapsed"]]
        best <- min(best, t)
      }}
      out[[name]] <- list(seconds = best, logLik = as.numeric(logLik(fit)))
    }}
    cat(jsonlite::toJSON(out, auto_unbox = TRUE, digits = NA))
""")


def python_fit(name: str, repeats: int) -> dict:
    formula, data, _ = DESIGNS[name]
    code = CHILD.format(tests=str(ROOT / "tests"))
    out = subprocess.run([sys.executable, "-c", code, data, formula, str(repeats)],
                         capture_output=True, text=True, cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def r_fits(names: list[str], repeats: int) -> dict | None:
    if shutil.which("Rscript") is None:
        return None
    sys.path.insert(0, str(ROOT / "tests"))
    from mixed_data import dataset
    with tempfile.TemporaryDirectory() as tmp:
        spec = {}
        for name in names:
            formula, data, _ = DESIGNS[name]
            frame = dataset(data)
            frame.to_csv(Path(tmp) / f"{data}.csv", index=False)
            factors = [c for c in frame.columns if str(frame[c].dtype) == "category"]
            spec[name] = {"formula": formula, "data": data, "factors": factors,
                          "repeats": 1 if name in LARGE else repeats}
        (Path(tmp) / "designs.json").write_text(json.dumps(spec))
        script = Path(tmp) / "bench.R"
        script.write_text(R_SCRIPT.format())
        run = subprocess.run(["Rscript", str(script), tmp, str(repeats)], capture_output=True,
                             text=True)
        if run.returncode != 0:
            print("lme4 run failed:", run.stderr[-500:])
            return None
        return json.loads(run.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--designs", default=",".join(DESIGNS))
    args = parser.parse_args()
    names = args.designs.split(",")
    lme4 = r_fits(names, args.repeats)
    failed = False
    print(f"{'design':<12} {'course_lib':>11} {'lme4':>9} {'ratio':>7} {'target':>7} "
          f"{'peak MB':>8} {'|dlogLik|':>10}")
    for name in names:
        ours = python_fit(name, 1 if name in LARGE else args.repeats)
        target = DESIGNS[name][2]
        line = f"{name:<12} {ours['seconds']:>10.3f}s"
        if lme4:
            theirs = lme4[name]
            ratio = ours["seconds"] / theirs["seconds"]
            ok = ratio <= target
            failed |= not ok
            line += (f" {theirs['seconds']:>8.3f}s {ratio:>7.2f} {target:>6.1f}x "
                     f"{ours['peak_mb']:>8.0f} {abs(ours['logLik'] - theirs['logLik']):>10.2e}"
                     f"{'' if ok else '  OVER TARGET'}")
        else:
            line += f" {'(no R)':>9} {'':>7} {target:>6.1f}x {ours['peak_mb']:>8.0f}"
        if name in LARGE and ours["peak_mb"] > MEMORY_BUDGET_MB:
            line += "  OVER MEMORY"
            failed = True
        print(line, flush=True)
    print("lme4 default control (nloptwrap/bobyqa); course_lib BOBYQA with tight tolerances;"
          " peak MB is the fitting process's peak resident memory, data and imports included.")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
