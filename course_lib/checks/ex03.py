"""Checks of exercise 3 (partial pooling): the shrinkage factor w = tau2 / (tau2 + sigma2 / n), random intercepts
by hand as w_j × subject j's mean residual, and held-out prediction with complete, no and partial pooling.
References: ``course_lib.mixed.lmer`` (tested against lme4) and ``course_lib.pooling``, on inputs drawn here."""

import numpy as np
import pandas as pd

from course_lib import pooling
from course_lib.checks.core import Case, FunctionCheck, fmt, memo_call, register
from course_lib.checks.ex01 import residuals, sleep_subset
from course_lib.checks.ex02 import FIT_2, FIT_4, converged, quiet_lmer

_w = pooling.shrinkage_factor


def _draw_factors(rng: np.random.Generator) -> list[Case]:
    """Group sizes 1 to 29 and variances tau2, sigma2 over two orders of magnitude."""
    draws = [(rng.integers(1, 30, size=size), rng.uniform(10, 2000), rng.uniform(100, 1500)) for size in (3, 5, 8, 4)]
    return [Case((n.tolist() if k == 0 else n, t, s), f"n = {fmt(n)}{' (a list)' if k == 0 else ''}, tau2 = {t:.4g}, "
                 f"sigma2 = {s:.4g}") for k, (n, t, s) in enumerate(draws)]  # a list, as the notebook passes


register(FunctionCheck(
    part="ex3-shrinkage-factor", points=1, function="shrinkage_factor", seed=3101, draw=_draw_factors, reference=_w,
    error_hints=[("'list'", "n may come as a list (the notebook passes one): make it an array, np.asarray(n).")],
    mistakes=[(lambda n, t, s: 1 - _w(n, t, s), "you returned 1 − w, the weight of the population; w is the weight "
               "of the group's own data, and grows with n."),
              (lambda n, t, s: np.full(np.shape(n), t / (t + s)),
               "the variance of a group's mean is sigma2 / n, not sigma2: w = tau2 / (tau2 + sigma2 / n)."),
              *[(lambda n, t, s, f=f: _w(n, f(t), f(s)), "tau2 and sigma2 are already variances: use them as they are.")
                for f in (np.square, np.sqrt)]],
    success="{function} gives w = tau2 / (tau2 + sigma2 / n) on {n} inputs the check drew."))


def _random_intercepts(rng: np.random.Generator, k: int) -> Case:
    """``k`` subjects with their first 2 to 10 days (rows shuffled), fit_2 converging; its estimates."""
    sub = sleep_subset(rng, k, days=(2, 11), until=lambda s: converged(quiet_lmer(FIT_2, s)))
    fit = quiet_lmer(FIT_2, sub)
    beta, tau2, sigma2 = fit.fixef.to_numpy(), float(fit.VarCorr["vcov"].iloc[0]), float(fit.sigma ** 2)
    return Case((sub, beta, tau2, sigma2), f"{k} subjects with 2 to 10 days each ({len(sub)} rows, shuffled), "
                f"beta = {fmt(beta)}, tau2 = {tau2:.4g}, sigma2 = {sigma2:.4g}")


def _other_estimates(rng: np.random.Generator) -> Case:
    """A subset with a beta, tau2 and sigma2 other than its fit's: the answer must use the arguments."""
    sub, beta, tau2, sigma2 = _random_intercepts(rng, 8).args
    beta, tau2, sigma2 = beta + rng.uniform([-20, -3], [20, 3]), tau2 * rng.uniform(0.3, 3), sigma2 * rng.uniform(.5, 2)
    return Case((sub, beta, tau2, sigma2), f"8 subjects ({len(sub)} rows), beta = {fmt(beta)}, tau2 = {tau2:.4g}, "
                f"sigma2 = {sigma2:.4g}: not the estimates of lmer's fit to these rows")


def _shrunk(data, beta, weight):
    """Each subject's mean residual times ``weight(n_j)``."""
    groups = residuals(data, beta).groupby(data["Subject"].astype(str), observed=True)
    return groups.mean() * weight(groups.size())


def _ranef(data, beta, tau2, sigma2) -> pd.Series:
    """w_j × subject j's mean residual: lme4's conditional modes when beta, tau2, sigma2 are its fit's estimates."""
    return _shrunk(data, beta, lambda n: _w(n.to_numpy(), tau2, sigma2))


_N_J = "a subject's own mean weighs w_j = tau2 / (tau2 + sigma2 / n_j), with n_j that subject's number of rows."
register(FunctionCheck(
    part="ex3-ranef-by-hand", points=1, function="ranef_by_hand", seed=3202,
    draw=lambda rng: [*(_random_intercepts(rng, k) for k in (6, 10, 15)), _other_estimates(rng)], reference=_ranef,
    tolerance=(1e-5, 1e-3),  # float32 ms: ~3e-5 apart
    mistakes=[(lambda d, b, t, s: _shrunk(d, b, lambda n: 1.0), "these are the raw mean residuals, the no-pooling "
               "estimates: multiply each by its shrinkage factor w_j."),
              (lambda d, b, t, s: _shrunk(d, b, lambda n: 1 - _w(n.to_numpy(), t, s)), _N_J),
              (lambda d, b, t, s: _shrunk(d, b, lambda n: t / (t + s)), _N_J),
              (lambda d, b, t, s: residuals(d, b), "one per subject (a Series indexed by Subject), not one per row."),
              (lambda d, b, t, s: -_ranef(d, b, t, s),
               "a residual is Reaction − (beta[0] + beta[1] × Days); yours has the opposite sign."),
              (lambda d, b, t, s: quiet_lmer(FIT_2, d).ranef["Subject"]["(Intercept)"].rename(index=str),
               "use the beta, tau2 and sigma2 you are given: compute w_j × mean residual by hand, not by refitting.")],
    success="{function} gives w_j × mean residual, lmer's random intercepts, on {n} unbalanced subsets the check "
            "drew."))


def _splits(rng: np.random.Generator, k: int, n: int, drop: float = 0.0) -> list[Case]:
    """``k`` subjects split into their first ``n`` days and the rest, once for each method; ``drop``: that share of
    the training days from day 2 on left out (unbalanced: lmer's fixed effects are not the least-squares line)."""
    while True:
        train, test = pooling.held_out_split(sleep_subset(rng, k, shuffle=False), n_train=n)
        train = train[(train["Days"] < 2) | (rng.random(len(train)) >= drop)]
        if converged(quiet_lmer(FIT_4, train)):
            break
    train, test = (x.sample(frac=1.0, random_state=rng) for x in (train, test))  # index kept: labels, not positions
    return [Case((train, test, m), f"method '{m}', {k} subjects, {len(train)} rows of days 0-{n - 1} to fit"
                 f"{' (unbalanced)' if drop else ''}, {len(test)} test rows (shuffled)") for m in pooling.METHODS]


def _predict(train, test, method):
    return memo_call(pooling.predict_held_out, train, test)[method].to_numpy()  # the three methods fitted once


register(FunctionCheck(
    part="ex3-predict-held-out", points=1.5, function="predict_held_out", seed=3303, tolerance=(1e-5, 1e-4),
    draw=lambda rng: [*_splits(rng, 10, 4), *_splits(rng, 18, 6, drop=0.3)], reference=_predict,
    mistakes=[  # (on a case a mistake does not concern, it returns the reference's output: it never matches there)
        (lambda tr, te, m: quiet_lmer(FIT_4, tr).predict(te, re_form="NA").to_numpy() if m == "partial"
         else _predict(tr, te, m), "you predicted with the fixed effects only (re_form=NA); partial pooling uses "
         "each subject's own line: fit.predict(test)."),
        *[(lambda tr, te, m, o=o: _predict(tr, te, o), f"these are the '{o}' pooling predictions: use the method "
           "the argument names.") for o in pooling.METHODS],
        (lambda tr, te, m: _predict(pd.concat([tr, te], ignore_index=True), te, m),
         "you fitted on the test rows too: fit on train only, then predict test.")],
    success="{function} predicts held-out days with each pooling method on {n} inputs the check drew."))
