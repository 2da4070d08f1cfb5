"""Time ``course_lib.mixed.lmer`` against statsmodels' own ``MixedLM`` in the same run.

    python benchmarks/bench_mixed.py [--repeats 30]

Both fit sleepstudy's ``Reaction ~ 1 + Days + (1 + Days | Subject)`` by REML from the same
data frame, formula parsing included, with the same optimiser settings
(``course_lib.mixed.OPTIMIZER``). ``lmer`` adds the lme4-formula translation, model matrices
with lme4's names and a convergence check (one gradient evaluation); its summaries are
computed lazily, so they are not part of the fit. For information it also times MixedLM
on ready-made arrays (the optimiser alone). The script prints the fastest of the repeats
for each and the ratios, and exits with status 1 when lmer takes more than 20% longer than
``MixedLM.from_formula(...).fit()``.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np
from statsmodels.regression.mixed_linear_model import MixedLM

from course_lib.datasets import load_sleepstudy
from course_lib.mixed import OPTIMIZER, lmer

FORMULA = "Reaction ~ 1 + Days + (1 + Days | Subject)"
BUDGET = 1.20


def fit_lmer(data):
    return lmer(FORMULA, data)


def fit_raw(data):
    model = MixedLM.from_formula("Reaction ~ 1 + Days", data, groups="Subject",
                                 re_formula="~Days")
    with warnings.catch_warnings():  # lmer silences the same optimiser hand-over warnings
        warnings.simplefilter("ignore")
        return model.fit(reml=True, **OPTIMIZER)


def fit_raw_arrays(data):
    """MixedLM from ready-made arrays: the optimiser alone, no formula processing."""
    exog = np.column_stack([np.ones(len(data)), data["Days"].to_numpy(float)])
    model = MixedLM(data["Reaction"].to_numpy(float), exog, data["Subject"].cat.codes,
                    exog_re=exog)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(reml=True, **OPTIMIZER)


def seconds(fn, data) -> float:
    start = time.perf_counter()
    fn(data)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30,
                        help="timed fits of each kind (default 30)")
    args = parser.parse_args(argv)
    data = load_sleepstudy()

    # Interleave the three, one fit each per round, so that a change in machine load hits all
    # alike; report the fastest of the repeats (as timeit does): on a shared machine the
    # spread of a single 100 ms fit is +-40%, and the minimum is the repeatable figure.
    for fn in (fit_raw, fit_raw_arrays, fit_lmer):
        fn(data)  # warm-up: imports and caches
    raw, arrays, wrapped = [], [], []
    for _ in range(args.repeats):
        raw.append(seconds(fit_raw, data))
        arrays.append(seconds(fit_raw_arrays, data))
        wrapped.append(seconds(fit_lmer, data))
    t_raw, t_arrays, t_lmer = min(raw), min(arrays), min(wrapped)
    ratio = t_lmer / t_raw

    fit = fit_lmer(data)
    raw_fit = fit_raw(data)
    same = abs(fit.fixef["Days"] - raw_fit.fe_params.iloc[1]) < 1e-8
    print(f"model: {FORMULA} (sleepstudy, REML)")
    print(f"optimiser: {OPTIMIZER}")
    print(f"statsmodels MixedLM.from_formula(...).fit(): {t_raw * 1e3:7.1f} ms (fastest)")
    print(f"statsmodels MixedLM(arrays).fit():           {t_arrays * 1e3:7.1f} ms (fastest)")
    print(f"course_lib.mixed.lmer(...):                  {t_lmer * 1e3:7.1f} ms (fastest)")
    print(f"ratio lmer / MixedLM.from_formula: {ratio:.3f} (budget {BUDGET:.2f}); "
          f"same estimates: {same}")
    print(f"ratio lmer / MixedLM on arrays:    {t_lmer / t_arrays:.3f} (for information: "
          f"includes lmer's formula parsing and model matrices)")
    return 0 if ratio <= BUDGET and same else 1


if __name__ == "__main__":
    sys.exit(main())
