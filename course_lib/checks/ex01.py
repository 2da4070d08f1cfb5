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
    CheckFailure,
    FunctionCheck,
    Returned,
    close_to,
    compare_arrays,
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


def _wrong_order(got: Returned, expected, args):
    if close_to(got, np.asarray(expected)[::-1]):
        return "your coefficients are in reverse order: return them in the order of X's columns."


def _no_inverse(got: Returned, expected, args):
    X, y = args
    if close_to(got, X.T @ y):
        return "you returned Xᵀy: solve the normal equations (XᵀX) β = Xᵀy for β."


def _dropped_intercept(got: Returned, expected, args):
    X, y = args
    if close_to(got, _ols_params(X[:, 1:], y)):
        return "you fitted without the intercept column: X already holds it as its first column."


register(
    FunctionCheck(
        part="ex1-fit-ols",
        points=1,
        function="fit_ols",
        draw=_draw_regressions,
        reference=_ols_params,
        diagnoses=[_wrong_order, _no_inverse, _dropped_intercept],
        seed=101,
        success="{function} agrees with statsmodels' OLS on {n} data sets the check drew.",
    )
)

# ---------------------------------------------------------------------------------------
# ex1-standard-errors: ols_standard_errors(X, y) -> se


def _ols_se(X, y):
    return sm.OLS(y, X).fit().bse


def _divided_by_n(got: Returned, expected, args):
    n, p = args[0].shape
    if close_to(got, np.asarray(expected) * np.sqrt((n - p) / n)):
        return "you divided the residual sum of squares by n; divide by n − p, the residual degrees of freedom."


def _variances(got: Returned, expected, args):
    if close_to(got, np.asarray(expected) ** 2):
        return "these are variances: the standard errors are their square roots."


def _no_sigma(got: Returned, expected, args):
    X, _ = args
    if close_to(got, np.sqrt(np.diag(np.linalg.inv(X.T @ X)))):
        return "you left out the residual standard deviation σ̂: SE = σ̂ √diag((XᵀX)⁻¹)."


register(
    FunctionCheck(
        part="ex1-standard-errors",
        points=1,
        function="ols_standard_errors",
        draw=_draw_regressions,
        reference=_ols_se,
        diagnoses=[_divided_by_n, _variances, _no_sigma],
        seed=202,
        success="{function} agrees with statsmodels' standard errors on {n} data sets the check drew.",
    )
)

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


def _swapped(got: Returned, expected, args):
    beta, days = args
    if close_to(got, beta[1] + beta[0] * np.asarray(days)):
        return "beta[0] is the intercept (ms at Days = 0) and beta[1] the slope (ms per day): you swapped them."


def _slope_only(got: Returned, expected, args):
    beta, days = args
    if close_to(got, beta[1] * np.asarray(days)):
        return "you left out the intercept: the prediction at Days = 0 is beta[0] ms, not 0."


register(
    FunctionCheck(
        part="ex1-predict",
        points=0.5,
        function="predict_reaction",
        draw=lambda rng: _draw_lines(rng, with_days=True),
        reference=_predict,
        diagnoses=[_swapped, _slope_only],
        seed=303,
        success="{function} gives intercept + slope × days, in ms, on {n} inputs the check drew.",
    )
)


def _days_to_slow(beta, extra_ms):
    return extra_ms / beta[1]


def _used_intercept(got: Returned, expected, args):
    beta, extra = args
    if close_to(got, extra / beta[0]) or close_to(got, (extra - beta[0]) / beta[1]):
        return (
            "a change in reaction time depends on the slope alone: "
            "each day adds beta[1] ms, so it takes ms / beta[1] days."
        )


def _inverted(got: Returned, expected, args):
    beta, extra = args
    if close_to(got, beta[1] / extra) or close_to(got, beta[1] * extra):
        return "check the units: ms divided by (ms per day) gives days."


register(
    FunctionCheck(
        part="ex1-days-to-slow",
        points=0.5,
        function="days_to_slow_by",
        draw=lambda rng: _draw_lines(rng, with_days=False),
        reference=_days_to_slow,
        diagnoses=[_used_intercept, _inverted],
        seed=404,
        success="{function} turns ms into days with the slope, on {n} inputs the check drew.",
    )
)

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


def _compare_series(got: Returned, expected: pd.Series, what: str) -> None:
    if got.kind != "series":
        kind = "an array" if got.kind == "array" else f"a {got.type_name}"
        raise CheckFailure(
            f"type: {what} should be a pandas Series indexed by Subject, got {kind}"
        )
    want = {str(k): float(v) for k, v in expected.items()}
    if len(got.index) != len(want) or set(got.index) != set(want):
        raise CheckFailure(
            f"index: {what} should have one value for each of the {len(want)} subjects "
            f"{sorted(want)}, got {len(got.index)} values labelled {sorted(got.index)[:6]}"
        )
    got_aligned = Returned("array", array=np.array([got.array[got.index.index(k)] for k in want]))
    compare_arrays(got_aligned, list(want.values()), what, rtol=1e-6, atol=1e-6)


def _one_per_row(got: Returned, expected, args):
    data, _ = args
    if got.array is not None and got.array.size == len(data):
        return "you returned one residual per row: average them within each subject with groupby."


def _flipped_sign(got: Returned, expected, args):
    if got.kind == "series" and sorted(got.index) == sorted(map(str, expected.index)):
        want = np.array([expected[k] if k in expected.index else np.nan for k in got.index])
        if np.allclose(got.array, -want):
            return "a residual is observed − fitted (Reaction − prediction); yours has the opposite sign."


register(
    FunctionCheck(
        part="ex1-residuals-by-subject",
        points=1,
        function="residuals_by_subject",
        draw=_draw_subject_subsets,
        reference=_mean_residuals,
        compare=_compare_series,
        diagnoses=[_one_per_row, _flipped_sign],
        seed=505,
        success="{function} gives each subject's mean residual (ms) on {n} subsets the check drew.",
    )
)
