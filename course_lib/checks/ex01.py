"""Checks of exercise 1 (regression, y = Xβ + ε): least squares by hand, β̂ = (XᵀX)⁻¹Xᵀy, its standard
errors σ̂ √diag((XᵀX)⁻¹), reading the coefficients in the data's units, and residuals grouped by subject.
References: statsmodels and pandas on inputs drawn here; no expected number is typed in."""

import numpy as np
import statsmodels.api as sm

from course_lib.checks.core import Case, FunctionCheck, fmt, register
from course_lib.datasets import load_sleepstudy


def sleep_subset(rng: np.random.Generator, k: int, days=None, shuffle=True, until=lambda sub: True):
    """``k`` sleep-study subjects drawn until ``until(sub)``, their first ``rng.integers(*days)`` days, shuffled."""
    sleep = load_sleepstudy()
    while True:
        chosen = rng.choice(list(sleep["Subject"].cat.categories), size=k, replace=False)
        sub = sleep[sleep["Subject"].isin(chosen)]
        if days:
            sub = sub[sub["Days"] < sub["Subject"].map(dict(zip(chosen, rng.integers(*days, size=k)))).astype(int)]
        sub = sub.sample(frac=1.0, random_state=rng).reset_index(drop=True) if shuffle else sub
        sub = sub.assign(Subject=sub["Subject"].cat.remove_unused_categories())
        if until(sub):
            return sub


def residuals(data, beta):
    """Reaction − (beta[0] + beta[1] × Days), per row, in ms (also exercise 3's)."""
    return data["Reaction"] - (beta[0] + beta[1] * data["Days"])


def _draw_regressions(rng: np.random.Generator) -> list[Case]:
    """Four regressions: an intercept column and 1 to 3 regressors of drawn scales."""
    designs = (np.column_stack([np.ones(n), rng.normal(size=(n, p - 1)) * rng.uniform(1, 5, p - 1)])
               for n, p in [(12, 2), (40, 2), (25, 3), (60, 4)])  # a generator: each X is drawn, then its y
    return [Case((X, X @ rng.uniform(-10, 10, X.shape[1]) + rng.normal(scale=2.0, size=len(X))),
                 f"X of shape {X.shape} (first column ones)") for X in designs]


def _ols_params(X, y):
    return sm.OLS(y, X).fit().params


def _ols_se(X, y):
    return sm.OLS(y, X).fit().bse


register(FunctionCheck(
    part="ex1-fit-ols", points=1, function="fit_ols", seed=101, draw=_draw_regressions, reference=_ols_params,
    tolerance=(1e-4, 1e-4),  # float32 normal equations are off by up to ~1e-5 relative (the condition number squared)
    mistakes=[(lambda X, y: X.T @ y, "you returned Xᵀy: solve the normal equations (XᵀX) β = Xᵀy for β."),
              (lambda X, y: _ols_params(X[:, 1:], y), "you fitted without the intercept: X's first column holds it."),
              (lambda X, y: np.linalg.lstsq(X, y, rcond=None), "np.linalg.lstsq returns a tuple (solution, "
               "residuals, rank, singular values): return its first element, the coefficients.")],
    success="{function} agrees with statsmodels' OLS on {n} data sets the check drew."))

register(FunctionCheck(
    part="ex1-standard-errors", points=1, function="ols_standard_errors", seed=202, draw=_draw_regressions,
    reference=_ols_se,
    mistakes=[*[(lambda X, y, k=k: _ols_se(X, y) * np.sqrt((len(y) - X.shape[1]) / (len(y) - k)), "you divided the "
                 f"residual sum of squares by {n}; divide by n − p, the residual degrees of freedom.")
                for k, n in ((0, "n"), (1, "n − 1 (np.var's ddof=1)"))],
              (lambda X, y: _ols_se(X, y) ** 2, "these are variances: the standard errors are their square roots."),
              (lambda X, y: np.sqrt(np.diag(np.linalg.inv(X.T @ X))),
               "you left out the residual standard deviation σ̂: SE = σ̂ √diag((XᵀX)⁻¹).")],
    success="{function} agrees with statsmodels' standard errors on {n} data sets the check drew."))


def _draw_lines(rng: np.random.Generator, with_days: bool = True) -> list[Case]:
    """Four lines beta = [intercept (ms), slope (ms/day)], each with 3 to 7 days (the first as a list, as the
    notebook passes them) or with a number of ms."""
    cases = []
    for k in range(4):
        beta = np.array([rng.uniform(200, 320), rng.uniform(2, 25)])
        if with_days:
            days = rng.integers(0, 10, size=int(rng.integers(3, 8))).astype(float)
            cases.append(Case((beta, days.tolist() if k == 0 else days),
                              f"beta = {fmt(beta)}, days = {fmt(days)}{' (a list)' if k == 0 else ''}"))
        else:
            ms = rng.uniform(10, 150)
            cases.append(Case((beta, ms), f"beta = {fmt(beta)}, ms = {ms:.4g}"))
    return cases


register(FunctionCheck(
    part="ex1-predict", points=0.5, function="predict_reaction", seed=303, draw=_draw_lines,
    error_hints=[("sequence", "days may come as a list (as in the notebook): make it an array, np.asarray(days).")],
    reference=lambda beta, days: beta[0] + beta[1] * np.asarray(days, dtype=float),
    mistakes=[(lambda beta, days: beta[1] + beta[0] * np.asarray(days), "beta[0] is the intercept (ms at Days = 0) "
               "and beta[1] the slope (ms per day): you swapped them."),
              (lambda beta, days: beta[1] * np.asarray(days),
               "you left out the intercept: the prediction at Days = 0 is beta[0] ms, not 0.")],
    success="{function} gives intercept + slope × days, in ms, on {n} inputs the check drew."))

register(FunctionCheck(
    part="ex1-days-to-slow", points=0.5, function="days_to_slow_by", seed=404,
    draw=lambda rng: _draw_lines(rng, with_days=False), reference=lambda beta, ms: ms / beta[1],
    mistakes=[*[(f, "a change in reaction time depends on the slope alone: each day adds beta[1] ms, so it takes "
                 "ms / beta[1] days.") for f in (lambda b, ms: ms / b[0], lambda b, ms: (ms - b[0]) / b[1])],
              *[(f, "check the units: ms divided by (ms per day) gives days.")
                for f in (lambda b, ms: b[1] / ms, lambda b, ms: b[1] * ms)]],
    success="{function} turns ms into days with the slope, on {n} inputs the check drew."))


def _draw_subject_subsets(rng: np.random.Generator) -> list[Case]:
    """4, 7 and 18 subjects of the sleep study (rows shuffled, their index kept), each with a line beta."""
    draws = [(k, sleep_subset(rng, k, shuffle=False).sample(frac=1.0, random_state=rng),
              np.array([rng.uniform(230, 270), rng.uniform(5, 15)])) for k in (4, 7, 18)]
    return [Case((sub, beta), f"{k} subjects (rows shuffled), beta = {fmt(beta)}") for k, sub, beta in draws]


def _mean_residuals(data, beta):
    return residuals(data, beta).groupby(data["Subject"], observed=True).mean()


register(FunctionCheck(
    part="ex1-residuals-by-subject", points=1, function="residuals_by_subject", seed=505,
    draw=_draw_subject_subsets, reference=_mean_residuals, tolerance=(1e-5, 1e-3),  # float32 ms: ~3e-5 apart
    mistakes=[(residuals, "you returned one residual per row: average them within each subject with groupby."),
              (lambda data, beta: -_mean_residuals(data, beta),
               "a residual is observed − fitted (Reaction − prediction); yours has the opposite sign.")],
    success="{function} gives each subject's mean residual (ms) on {n} subsets the check drew."))
