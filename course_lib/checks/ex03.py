"""Checks of exercise 3 (partial pooling): the shrinkage factor, random intercepts by hand as
precision-weighted averages, and held-out prediction with complete, no and partial pooling.

Reference answers come from ``course_lib.mixed.lmer`` (tested against lme4) and
``course_lib.pooling`` on inputs drawn here (numbers and unbalanced subsets of the sleep
study); no expected number is typed in.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from course_lib import pooling
from course_lib.checks.core import Case, FunctionCheck, fmt, reference_cache, register
from course_lib.datasets import load_sleepstudy
from course_lib.mixed import lmer

RANDOM_INTERCEPT = "Reaction ~ 1 + Days + (1 | Subject)"
RANDOM_BOTH = "Reaction ~ 1 + Days + (1 + Days | Subject)"


@reference_cache
def _lmer(formula: str, data: pd.DataFrame):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lmer(formula, data)


def _converged(fit) -> bool:
    return fit.max_abs_gradient < 1e-4 and not fit.is_singular


# ---------------------------------------------------------------------------------------
# ex3-shrinkage-factor: shrinkage_factor(n, tau2, sigma2) -> w


def _draw_factors(rng: np.random.Generator) -> list[Case]:
    cases = []
    for size in (3, 5, 8, 4):
        n = rng.integers(1, 30, size=size)
        tau2, sigma2 = float(rng.uniform(10, 2000)), float(rng.uniform(100, 1500))
        cases.append(Case((n, tau2, sigma2), f"n = {fmt(n)}, tau2 = {tau2:.4g}, "
                                              f"sigma2 = {sigma2:.4g}"))
    return cases


def _w(n, tau2, sigma2):
    return pooling.shrinkage_factor(n, tau2, sigma2)


_VARIANCES = "tau2 and sigma2 are already variances: use them as they are."
register(FunctionCheck(
    part="ex3-shrinkage-factor", points=1, function="shrinkage_factor", seed=3101,
    draw=_draw_factors, reference=_w,
    mistakes=[
        (lambda n, t, s: 1 - _w(n, t, s), "you returned 1 − w, the weight of the population; w is the "
                                          "weight of the group's own data, and grows with n."),
        (lambda n, t, s: np.full(np.shape(n), t / (t + s)),
         "the variance of a group's mean is sigma2 / n, not sigma2: w = tau2 / (tau2 + sigma2 / n)."),
        (lambda n, t, s: _w(n, t ** 2, s ** 2), _VARIANCES),
        (lambda n, t, s: _w(n, np.sqrt(t), np.sqrt(s)), _VARIANCES),
    ],
    success="{function} gives w = tau2 / (tau2 + sigma2 / n) on {n} inputs the check drew.",
))

# ---------------------------------------------------------------------------------------
# ex3-ranef-by-hand: ranef_by_hand(data, beta, tau2, sigma2) -> Series by Subject


def _unbalanced_subset(rng: np.random.Generator, k: int) -> pd.DataFrame:
    """k subjects of the sleep study, each keeping its first 2 to 10 days, rows shuffled."""
    sleep = load_sleepstudy()
    chosen = rng.choice(list(sleep["Subject"].cat.categories), size=k, replace=False)
    keep = dict(zip(chosen, rng.integers(2, 11, size=k), strict=True))
    sub = sleep[sleep["Subject"].isin(chosen)]
    sub = sub[sub["Days"] < sub["Subject"].map(keep).astype(int)]
    sub = sub.sample(frac=1.0, random_state=rng).reset_index(drop=True)
    return sub.assign(Subject=sub["Subject"].cat.remove_unused_categories())


def _draw_random_intercepts(rng: np.random.Generator) -> list[Case]:
    cases = []
    for k in (6, 10, 15):
        while True:
            sub = _unbalanced_subset(rng, k)
            fit = _lmer(RANDOM_INTERCEPT, sub)
            if _converged(fit):
                break
        beta = fit.fixef.to_numpy()
        tau2, sigma2 = float(fit.VarCorr["vcov"].iloc[0]), float(fit.sigma ** 2)
        cases.append(Case((sub, beta, tau2, sigma2),
                          f"{k} subjects with 2 to 10 days each ({len(sub)} rows, shuffled), "
                          f"beta = {fmt(beta)}, tau2 = {tau2:.4g}, sigma2 = {sigma2:.4g}"))
    return cases


def _ranef(data, beta, tau2, sigma2) -> pd.Series:
    # lme4's conditional modes from the fit that produced beta, tau2 and sigma2
    return _lmer(RANDOM_INTERCEPT, data).ranef["Subject"]["(Intercept)"].rename(index=str)


def _shrunk(data, beta, weight):
    """Each subject's mean residual times ``weight(n_j)``."""
    r = data["Reaction"] - beta[0] - beta[1] * data["Days"]
    groups = r.groupby(data["Subject"].astype(str), observed=True)
    return groups.mean() * weight(groups.size())


_N_J = ("the weight of a subject's own mean is w_j = tau2 / (tau2 + sigma2 / n_j), with n_j that subject's "
        "number of rows.")
register(FunctionCheck(
    part="ex3-ranef-by-hand", points=1, function="ranef_by_hand", seed=3202,
    draw=_draw_random_intercepts, reference=_ranef, tolerance=(1e-6, 1e-6),
    mistakes=[
        (lambda d, b, t, s: _shrunk(d, b, lambda n: 1.0),
         "these are the raw mean residuals, the no-pooling estimates: multiply each by its shrinkage factor w_j."),
        (lambda d, b, t, s: _shrunk(d, b, lambda n: 1 - _w(n.to_numpy(), t, s)), _N_J),
        (lambda d, b, t, s: _shrunk(d, b, lambda n: t / (t + s)), _N_J),
        (lambda d, b, t, s: d["Reaction"] - b[0] - b[1] * d["Days"],
         "return one value per subject (a Series indexed by Subject), not one per row."),
        (lambda d, b, t, s: -_ranef(d, b, t, s),
         "a residual is Reaction − (beta[0] + beta[1] × Days); yours has the opposite sign."),
    ],
    success="{function} equals lmer's random intercepts on {n} unbalanced subsets the check drew.",
))

# ---------------------------------------------------------------------------------------
# ex3-predict-held-out: predict_held_out(train, test, method) -> predictions for test rows


def _draw_splits(rng: np.random.Generator) -> list[Case]:
    sleep = load_sleepstudy()
    cases = []
    for k, n_train in ((10, 4), (18, 6)):
        while True:
            chosen = rng.choice(list(sleep["Subject"].cat.categories), size=k, replace=False)
            sub = sleep[sleep["Subject"].isin(chosen)]
            sub = sub.assign(Subject=sub["Subject"].cat.remove_unused_categories())
            train, test = pooling.held_out_split(sub, "Subject", "Days", n_train=n_train)
            if _converged(_lmer(RANDOM_BOTH, train)):
                break
        train = train.sample(frac=1.0, random_state=rng).reset_index(drop=True)
        test = test.sample(frac=1.0, random_state=rng).reset_index(drop=True)
        for method in pooling.METHODS:
            cases.append(Case((train, test, method),
                              f"method '{method}', {k} subjects, days 0-{n_train - 1} to fit "
                              f"({len(train)} rows), {len(test)} test rows (shuffled)"))
    return cases


def _predict(train, test, method):
    return pooling.predict_held_out(train, test)[method].to_numpy()


def _as(other):
    """The predictions of another pooling method (a mistake where ``method`` differs)."""
    def wrong(train, test, method):
        if other == method:
            raise ValueError("not a mistake on this case")
        return _predict(train, test, other)
    return wrong


def _on_all(train, test, method):
    both = pd.concat([train, test], ignore_index=True)
    if method == "partial":
        return _lmer(RANDOM_BOTH, both).predict(test).to_numpy()
    table = (pooling.complete_pooling if method == "complete" else pooling.no_pooling)(both).rename(index=str)
    keys = test["Subject"].astype(str)
    return table.loc[keys, "intercept"].to_numpy() + table.loc[keys, "slope"].to_numpy() * test["Days"].to_numpy()


def _population_only(train, test, method):
    if method != "partial":  # (balanced days: the population line is complete pooling's)
        raise ValueError("not a mistake on this case")
    return _lmer(RANDOM_BOTH, train).predict(test, re_form="NA").to_numpy()


register(FunctionCheck(
    part="ex3-predict-held-out", points=1.5, function="predict_held_out", seed=3303,
    draw=_draw_splits, reference=_predict, tolerance=(1e-5, 1e-4),
    mistakes=[
        (_population_only, "you predicted with the fixed effects only (re_form=NA); partial pooling "
                           "uses each subject's own line: fit.predict(test)."),
        *[(_as(m), f"these are the '{m}' pooling predictions: use the method the argument names.")
          for m in pooling.METHODS],
        (_on_all, "you fitted on the test rows too: fit on train only, then predict test."),
    ],
    success="{function} predicts held-out days with each pooling method on {n} inputs the check drew.",
))
