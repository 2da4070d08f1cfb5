"""Time glmer, profile intervals and refits against lme4 in the same run.

    python benchmarks/bench_inference.py [--refits 1000] [--repeat 5]

- glmer (Laplace) on the five reference designs of tests/test_mixed_glmm.py (spike counts
  with a slope per neuron, the same with an exposure offset, choices as 0/1 and as
  proportions, crossed binary 3,000 rows, a singular three-factor Poisson), each against
  ``glmer`` with lme4's default control;
- ``confint(method = "profile")`` of sleepstudy's ``(Days | Subject)`` model;
- ``--refits`` refits of a chapter-4-sized model (8 mice x 60 trials, ``(1 + stim | mouse)``)
  to simulated responses: ``fit.refit`` against lme4's ``refit``.

Each side is timed in its own process (R with ``system.time``), each glmer fit and the
profile as the fastest of ``--repeat`` runs (the machine is shared: the fastest run is the
one least disturbed; R and Python alike), in wall-clock time and in CPU time (user + system
of the process: what the task itself cost, much less sensitive to other users' load on a
shared machine than the wall clock); the ratios are ours / lme4's. The designs marked
held out in the reference are timed too. Prints a table; needs ``Rscript`` with lme4 for
the lme4 column.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
REF = json.loads((ROOT / "tests/reference/engine/glmer_reference.json").read_text())["fits"]

R_CODE = textwrap.dedent("""
    suppressPackageStartupMessages(library(lme4))
    args <- commandArgs(trailingOnly = TRUE); dir <- args[1]; nref <- as.integer(args[2])
    nrep <- as.integer(args[3])
    fastest <- function(expr) {  # the expression re-evaluated each time (not a promise)
      e <- substitute(expr); env <- parent.frame()
      t <- replicate(nrep, system.time(eval(e, env)))
      list(wall = min(t["elapsed", ]), cpu = min(t["user.self", ] + t["sys.self", ]))
    }
    spec <- jsonlite::fromJSON(file.path(dir, "spec.json"), simplifyVector = FALSE)
    out <- list()
    for (m in spec$glmer) {
      d <- read.csv(file.path(dir, paste0(m$data, ".csv")), stringsAsFactors = TRUE)
      w <- if (is.null(m$weights)) NULL else d[[m$weights]]
      fam <- if (m$family == "poisson") poisson() else binomial()
      agq <- m$nAGQ
      out[[m$key]] <- fastest(suppressMessages(
        glmer(as.formula(m$formula), d, family = fam, weights = w, nAGQ = agq)))
    }
    fit <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy)
    out$profile <- fastest(suppressMessages(confint(fit, oldNames = FALSE)))
    d <- read.csv(file.path(dir, "ch4.csv")); d$mouse <- factor(d$mouse)
    fit <- lmer(y ~ stim + (1 + stim | mouse), d)
    sims <- simulate(fit, nref, seed = 1)
    t <- system.time(for (k in seq_len(nref)) suppressMessages(refit(fit, sims[[k]])))
    out$refits <- list(wall = t[["elapsed"]], cpu = t[["user.self"]] + t[["sys.self"]])
    cat(jsonlite::toJSON(out, auto_unbox = TRUE, digits = NA))
""")


def chapter4_data() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    mouse = np.repeat(np.arange(8), 60)
    stim = np.tile(np.repeat([0.0, 1.0], 30), 8)
    y = (1 + 0.2 * stim + rng.normal(0, 0.5, 8)[mouse] + rng.normal(0, 0.1, 8)[mouse] * stim
         + rng.normal(0, 0.3, 480))
    return pd.DataFrame({"y": y, "stim": stim, "mouse": pd.Categorical(mouse)})


def _fastest(f, repeat: int) -> dict:
    """The fastest of ``repeat`` runs of f, in wall-clock and in CPU seconds."""
    wall = cpu = np.inf
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        f()
        wall = min(wall, time.perf_counter() - t)
        cpu = min(cpu, time.process_time() - c)
    return {"wall": wall, "cpu": cpu}


def ours(refits: int, repeat: int) -> dict:
    from mixed_data import make_data
    from course_lib.datasets import load_sleepstudy
    from course_lib.mixed import glmer, lmer
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for key, ref in REF.items():
            data = make_data.simulated(ref["data"])

            def fit_once(ref=ref, data=data):
                glmer(ref["formula"], data, family=ref["family"], weights=ref["weights"],
                      nAGQ=ref["nAGQ"])

            out[key] = _fastest(fit_once, repeat)
        fit = lmer("Reaction ~ Days + (Days | Subject)", load_sleepstudy())
        out["profile"] = _fastest(fit.confint, repeat)
        fit = lmer("y ~ stim + (1 + stim | mouse)", chapter4_data())
        sims = fit.simulate(refits, seed=1)

        def refit_all():
            for k in range(refits):
                fit.refit(sims[:, k])

        out["refits"] = _fastest(refit_all, 1)
    return out


def lme4(refits: int, repeat: int) -> dict | None:
    if shutil.which("Rscript") is None:
        return None
    from mixed_data import make_data
    with tempfile.TemporaryDirectory() as tmp:
        spec = {"glmer": []}
        for key, ref in REF.items():
            make_data.simulated(ref["data"]).to_csv(Path(tmp) / f"{ref['data']}.csv",
                                                    index=False)
            spec["glmer"].append({"key": key, **{k: ref[k] for k in
                                                  ("data", "formula", "family", "weights",
                                                   "nAGQ")}})
        chapter4_data().to_csv(Path(tmp) / "ch4.csv", index=False)
        (Path(tmp) / "spec.json").write_text(json.dumps(spec))
        (Path(tmp) / "b.R").write_text(R_CODE)
        run = subprocess.run(["Rscript", str(Path(tmp) / "b.R"), tmp, str(refits), str(repeat)],
                             capture_output=True, text=True)
        if run.returncode:
            print("lme4 run failed:", run.stderr[-400:])
            return None
        return json.loads(run.stdout)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refits", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5,
                        help="runs of each glmer fit and profile; the fastest counts")
    args = parser.parse_args()
    theirs = lme4(args.refits, args.repeat)
    mine = ours(args.refits, args.repeat)
    print(f"{'':<38} {'wall clock':^28}  {'CPU':^28}")
    print(f"{'task':<38} " + 2 * f"{'course_lib':>10} {'lme4':>9} {'ratio':>6}  ")
    for key, t in mine.items():
        if key in REF:
            label = f"glmer {key}" + (" (held out)" if REF[key]["heldout"] else "")
        else:
            label = "confint profile" if key == "profile" else f"{args.refits} refits"
        line = f"{label:<38}"
        for kind in ("wall", "cpu"):
            line += f" {t[kind]:>9.3f}s"
            if theirs:
                r = theirs[key][kind]
                line += f" {r:>8.3f}s {t[kind] / r:>6.2f} "
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
