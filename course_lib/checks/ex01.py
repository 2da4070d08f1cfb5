"""Checks of exercise 1 (regression): least squares by hand, standard errors, reading the
coefficients in the data's units, and residuals grouped by subject.

Every reference answer comes from statsmodels or pandas on inputs drawn here; no expected
number is typed in.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import statsmodels.api as sm

from course_lib.checks.core import (
    Case,
    FunctionCheck,
    fmt,
    register,
)
from course_lib.datasets import load_sleepstudy

# ---------------------------------------------------------------------------------------
# ex1-fit-ols: fit_ols(X, y) -> beta


def _draw_regressions(rng: np.random.Generator) -> list[Case]:
    cases = []
    for n, p in [(12, 2), (40, 2), (25, 3), (60, 4)]:
        X = np.column_stack([np.ones(n), rng.normal(size=(n, p - 1)) * rng.uniform(1, 5, p - 1)])
        beta = rng.uniform(-10, 10, p)
        y = X @ beta + rng.normal(scale=2.0, size=n)
        cases.append(Case((X, y), f"X of shape {X.shape} (first column ones)"))
    return cases


def _ols_params(X, y):
    return sm.OLS(y, X).fit().params


register(FunctionCheck(
    part="ex1-fit-ols", points=1, function="fit_ols",
    seed=101, hidden=True, public="stored",
    draw=_draw_regressions, reference=_ols_params,
    mistakes=[
        (lambda X, y: _ols_params(X, y)[::-1],
         "your coefficients are in reverse order: return them in the order of X's columns."),
        (lambda X, y: X.T @ y, "you returned Xᵀy: solve the normal equations (XᵀX) β = Xᵀy for β."),
        (lambda X, y: _ols_params(X[:, 1:], y),
         "you fitted without the intercept column: X already holds it as its first column."),
    ],
    success="{function} agrees with statsmodels' OLS on {n} data sets the check drew.",
))

# ---------------------------------------------------------------------------------------
# ex1-standard-errors: ols_standard_errors(X, y) -> se


def _ols_se(X, y):
    return sm.OLS(y, X).fit().bse


register(FunctionCheck(
    part="ex1-standard-errors", points=1, function="ols_standard_errors",
    seed=202, hidden=True, public="stored",
    draw=_draw_regressions, reference=_ols_se,
    mistakes=[
        (lambda X, y: _ols_se(X, y) * np.sqrt((len(y) - X.shape[1]) / len(y)),
         "you divided the residual sum of squares by n; divide by n − p, the residual degrees of freedom."),
        (lambda X, y: _ols_se(X, y) ** 2, "these are variances: the standard errors are their square roots."),
        (lambda X, y: np.sqrt(np.diag(np.linalg.inv(X.T @ X))),
         "you left out the residual standard deviation σ̂: SE = σ̂ √diag((XᵀX)⁻¹)."),
    ],
    success="{function} agrees with statsmodels' standard errors on {n} data sets the check drew.",
))

# ---------------------------------------------------------------------------------------
# ex1-predict: predict_reaction(beta, days) -> ms ;  ex1-days-to-slow: days_to_slow_by(beta, ms)


def _draw_lines(rng: np.random.Generator, with_days: bool) -> list[Case]:
    cases = []
    for _ in range(4):
        beta = np.array([rng.uniform(200, 320), rng.uniform(2, 25)])
        if with_days:
            days = rng.integers(0, 10, size=int(rng.integers(3, 8))).astype(float)
            cases.append(Case((beta, days), f"beta = {fmt(beta)}, days = {fmt(days)}"))
        else:
            extra = float(rng.uniform(10, 150))
            cases.append(Case((beta, extra), f"beta = {fmt(beta)}, ms = {extra:.4g}"))
    return cases


def _predict(beta, days):
    return beta[0] + beta[1] * np.asarray(days, dtype=float)


register(FunctionCheck(
    part="ex1-predict", points=0.5, function="predict_reaction",
    seed=303, hidden=True, public="stored",
    draw=lambda rng: _draw_lines(rng, with_days=True), reference=_predict,
    mistakes=[
        (lambda beta, days: beta[1] + beta[0] * np.asarray(days),
         "beta[0] is the intercept (ms at Days = 0) and beta[1] the slope (ms per day): you swapped them."),
        (lambda beta, days: beta[1] * np.asarray(days),
         "you left out the intercept: the prediction at Days = 0 is beta[0] ms, not 0."),
    ],
    success="{function} gives intercept + slope × days, in ms, on {n} inputs the check drew.",
))


def _days_to_slow(beta, extra_ms):
    return extra_ms / beta[1]


_SLOPE_ALONE = ("a change in reaction time depends on the slope alone: "
                "each day adds beta[1] ms, so it takes ms / beta[1] days.")
_UNITS = "check the units: ms divided by (ms per day) gives days."
register(FunctionCheck(
    part="ex1-days-to-slow", points=0.5, function="days_to_slow_by",
    seed=404, hidden=True, public="stored",
    draw=lambda rng: _draw_lines(rng, with_days=False), reference=_days_to_slow,
    mistakes=[
        (lambda beta, ms: ms / beta[0], _SLOPE_ALONE),
        (lambda beta, ms: (ms - beta[0]) / beta[1], _SLOPE_ALONE),
        (lambda beta, ms: beta[1] / ms, _UNITS),
        (lambda beta, ms: beta[1] * ms, _UNITS),
    ],
    success="{function} turns ms into days with the slope, on {n} inputs the check drew.",
))

# ---------------------------------------------------------------------------------------
# ex1-residuals-by-subject: residuals_by_subject(data, beta) -> Series indexed by Subject


def _draw_subject_subsets(rng: np.random.Generator) -> list[Case]:
    sleep = load_sleepstudy()
    levels = list(sleep["Subject"].cat.categories)
    cases = []
    for k in (4, 7, 18):
        chosen = rng.choice(levels, size=k, replace=False)
        sub = sleep[sleep["Subject"].isin(chosen)].sample(frac=1.0, random_state=rng)
        sub = sub.assign(Subject=sub["Subject"].cat.remove_unused_categories())
        beta = np.array([rng.uniform(230, 270), rng.uniform(5, 15)])
        cases.append(Case((sub, beta), f"{k} subjects (rows shuffled), beta = {fmt(beta)}"))
    return cases


def _mean_residuals(data: pd.DataFrame, beta) -> pd.Series:
    resid = data["Reaction"] - (beta[0] + beta[1] * data["Days"])
    return resid.groupby(data["Subject"], observed=True).mean()


register(FunctionCheck(
    part="ex1-residuals-by-subject", points=1, function="residuals_by_subject",
    seed=505, hidden=True, public="stored",
    draw=_draw_subject_subsets, reference=_mean_residuals, tolerance=(1e-6, 1e-6),
    mistakes=[
        (lambda data, beta: data["Reaction"] - (beta[0] + beta[1] * data["Days"]),
         "you returned one residual per row: average them within each subject with groupby."),
        (lambda data, beta: -_mean_residuals(data, beta),
         "a residual is observed − fitted (Reaction − prediction); yours has the opposite sign."),
    ],
    success="{function} gives each subject's mean residual (ms) on {n} subsets the check drew.",
))
