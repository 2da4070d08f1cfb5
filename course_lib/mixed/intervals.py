r"""Confidence intervals for a linear mixed model: profile, Wald and parametric bootstrap.

Rows are named as lme4's ``confint(fit, oldNames = FALSE)`` names them: for each random
term, its standard deviations and correlations in theta's order (``sd_(Intercept)|Subject``,
``cor_Days.(Intercept)|Subject``, ``sd_Days|Subject``), then ``sigma``, then the fixed
effects.

Profile intervals (lme4's default)
----------------------------------
As lme4 does, a REML fit is first refitted by maximum likelihood. For a parameter psi, the
profile zeta(v) = sign(v - psi-hat) sqrt(d(v) - d-hat) uses the ML deviance minimised over
every other parameter with psi held at v; the interval is where zeta = -/+ z_(1-alpha/2).
For variance parameters the deviance is written in (standard deviations, correlations,
sigma), with beta profiled out,

.. math::  d(\phi) = \log|L_\theta|^2 - \textstyle\sum \log w + r^2(\theta)/\sigma^2
           + n \log(2\pi\sigma^2),

theta being the relative Cholesky factor of the covariance the SDs and correlations make;
for a fixed effect beta_j, its column becomes an offset X_j v and theta is re-optimised.
Here the ends are found by root finding on zeta itself, where lme4 interpolates a spline
through a grid of profile points.

Wald intervals are beta-hat -/+ z SE (none for variance parameters, as lme4). The parametric
bootstrap simulates responses from the fit, refits each (in ``n_jobs`` processes if asked,
with the same result), and takes percentiles.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import scipy.optimize
import scipy.stats

from course_lib.mixed.optimize import bobyqa
from course_lib.mixed.pls import BlockedPLS

_ZTOL = 1e-6


def parameter_names(fit) -> list[str]:
    """lme4's ``oldNames = FALSE`` names of the variance parameters, then sigma."""
    names, seen = [], {}
    for t in fit.terms:
        k = seen.get(t.term.group, 0)
        seen[t.term.group] = k + 1
        grp = t.term.group if k == 0 else f"{t.term.group}.{k}"
        rows, cols = t.theta_index
        for i, j in zip(rows, cols, strict=True):
            names.append(f"sd_{t.names[i]}|{grp}" if i == j
                         else f"cor_{t.names[i]}.{t.names[j]}|{grp}")
    return names + ["sigma"]


def _sdcor(fit) -> np.ndarray:
    """The variance parameters (SDs and correlations in theta's order) and sigma."""
    out = []
    for t, lam in zip(fit.terms, fit._lambda, strict=True):
        cov = fit.sigma ** 2 * lam @ lam.T
        sd = np.sqrt(np.diag(cov))
        rows, cols = t.theta_index
        for i, j in zip(rows, cols, strict=True):
            out.append(sd[i] if i == j else (cov[i, j] / (sd[i] * sd[j])
                                             if sd[i] * sd[j] > 0 else 0.0))
    return np.append(out, fit.sigma)


def _theta_of(fit, phi: np.ndarray) -> np.ndarray | None:
    """theta from (SDs, correlations, sigma); None if the correlations are not valid."""
    sigma = phi[-1]
    theta, start = [], 0
    for t in fit.terms:
        rows, cols = t.theta_index
        vals = phi[start:start + t.n_theta]
        start += t.n_theta
        sd = np.zeros(t.q)
        corr = np.eye(t.q)
        for v, i, j in zip(vals, rows, cols, strict=True):
            if i == j:
                sd[i] = v
            else:
                corr[i, j] = corr[j, i] = v
        cov = corr * np.outer(sd, sd) / sigma ** 2
        lam = _psd_cholesky(cov)
        if lam is None:
            return None
        theta.append(lam[rows, cols])
    return np.concatenate(theta)


def _psd_cholesky(cov: np.ndarray) -> np.ndarray | None:
    """Lower Cholesky factor of a positive semi-definite matrix (zero columns where a
    variance is zero), or None if it is not positive semi-definite."""
    q = len(cov)
    L = np.zeros_like(cov)
    for j in range(q):
        d = cov[j, j] - L[j, :j] @ L[j, :j]
        if d < -1e-10 * max(cov[j, j], 1e-300):
            return None
        L[j, j] = np.sqrt(max(d, 0.0))
        for i in range(j + 1, q):
            L[i, j] = (cov[i, j] - L[i, :j] @ L[j, :j]) / L[j, j] if L[j, j] > 0 else 0.0
    return L


def _bounds(fit) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = [], []
    for t in fit.terms:
        rows, cols = t.theta_index
        for i, j in zip(rows, cols, strict=True):
            lo.append(0.0 if i == j else -1.0)
            hi.append(np.inf if i == j else 1.0)
    return np.array(lo + [1e-12]), np.array(hi + [np.inf])


def _minimise(f, x0, lower, upper) -> float:
    # start strictly inside the bounds, where the profiled deviance is defined
    inside = np.clip(x0, lower + 1e-9 * np.isfinite(lower), upper - 1e-9 * np.isfinite(upper))
    return bobyqa(f, inside, lower, upper, ftol_abs=1e-10, xtol_rel=1e-9, maxeval=20_000)[1]


def _root(zeta, est: float, target: float, step: float, bound: float) -> float:
    """The value v beyond est (towards bound) where zeta(v) = target; the bound if the
    profile never gets there."""
    direction = np.sign(target)
    prev_v = est
    for _ in range(60):
        v = est + direction * step
        if (direction < 0 and v <= bound) or (direction > 0 and v >= bound):
            zb = zeta(bound)
            if (direction < 0 and zb > target) or (direction > 0 and zb < target):
                return bound
            return scipy.optimize.brentq(lambda x: zeta(x) - target, prev_v, bound,
                                         xtol=1e-10, rtol=1e-10)
        z = zeta(v)
        if (direction < 0 and z <= target) or (direction > 0 and z >= target):
            return scipy.optimize.brentq(lambda x: zeta(x) - target, prev_v, v,
                                         xtol=1e-10, rtol=1e-10)
        prev_v = v
        step *= 1.6
    raise ValueError("the profile did not reach the interval's end")


def profile_intervals(fit, level: float) -> pd.DataFrame:
    ml = fit.refit_ml()
    z = scipy.stats.norm.ppf(0.5 + level / 2)
    pls = ml.pls
    n = pls.n
    base = -2 * ml.logLik
    phi_hat = _sdcor(ml)
    lower, upper = _bounds(ml)

    def dev(phi):
        theta = _theta_of(ml, phi)
        if theta is None:
            return np.inf
        f = pls.factor(theta)
        if f is None:
            return np.inf
        s2 = phi[-1] ** 2
        return f.ldL2 - pls.sum_log_w + f.r2 / s2 + n * np.log(2 * np.pi * s2)

    rows = {}
    names = parameter_names(ml)
    for k, name in enumerate(names):
        others = np.delete(np.arange(len(phi_hat)), k)

        def zeta(v, k=k, others=others):
            def g(x):
                phi = phi_hat.copy()
                phi[k] = v
                phi[others] = x
                return dev(phi)
            d = _minimise(g, phi_hat[others], lower[others], upper[others])
            return np.sign(v - phi_hat[k]) * np.sqrt(max(d - base, 0.0))

        scale = max(abs(phi_hat[k]) * 0.1, 1e-3 if lower[k] == -1 else 1e-3 * phi_hat[-1])
        lo = _root(zeta, phi_hat[k], -z, scale, lower[k])
        hi = _root(zeta, phi_hat[k], z, scale, upper[k] if np.isfinite(upper[k]) else np.inf)
        rows[name] = (lo, hi)

    # fixed effects: beta_j's column becomes an offset, theta re-optimised by ML
    X, y = ml.X, ml.y - ml.frame.offset
    beta_hat, se = ml.fixef.to_numpy(), ml.fixef_se.to_numpy()
    for j, name in enumerate(ml.fixef.index):
        keep = np.delete(np.arange(X.shape[1]), j)
        sub = BlockedPLS(ml.terms, X[:, keep], y, ml.frame.weights)

        def zeta(v, j=j, sub=sub):
            sub.set_system(X[:, keep], y - X[:, j] * v, ml.frame.weights)
            d = _minimise(lambda th: sub.deviance(th, False), ml.theta, sub.lower,
                          np.full(len(ml.theta), np.inf))
            return np.sign(v - beta_hat[j]) * np.sqrt(max(d - base, 0.0))

        rows[name] = (_root(zeta, beta_hat[j], -z, se[j] * 0.5, -np.inf),
                      _root(zeta, beta_hat[j], z, se[j] * 0.5, np.inf))
    return _frame(rows, level)


def _frame(rows: dict, level: float) -> pd.DataFrame:
    a = (1 - level) / 2
    cols = [f"{100 * a:.3g} %", f"{100 * (1 - a):.3g} %"]
    return pd.DataFrame.from_dict(rows, orient="index", columns=cols)


def wald_intervals(fit, level: float) -> pd.DataFrame:
    z = scipy.stats.norm.ppf(0.5 + level / 2)
    rows = {name: (np.nan, np.nan) for name in parameter_names(fit)}
    for name, b, s in zip(fit.fixef.index, fit.fixef, fit.fixef_se, strict=True):
        rows[name] = (b - z * s, b + z * s)
    return _frame(rows, level)


def _boot_stats(fit, sims: np.ndarray) -> np.ndarray:
    """(SDs, correlations, sigma, beta) of the refit to each column of sims, one row each."""
    out = np.empty((sims.shape[1], len(parameter_names(fit)) + len(fit.fixef)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # singular refits are expected in a bootstrap
        for i in range(sims.shape[1]):
            refit = fit.refit(sims[:, i])
            out[i] = np.concatenate([_sdcor(refit), refit.fixef.to_numpy()])
    return out


_WORKER_FIT = None


def _worker_init(fit) -> None:
    global _WORKER_FIT
    _WORKER_FIT = fit


def _worker_stats(sims: np.ndarray) -> np.ndarray:
    return _boot_stats(_WORKER_FIT, sims)


#: Refits per task sent to a worker process: large enough that sending the responses and
#: the results costs little, small enough for the progress bar to move.
BOOT_CHUNK = 25


def boot_intervals(fit, level: float, nsim: int, seed: int, progress: bool,
                   n_jobs: int = 1) -> pd.DataFrame:
    """Percentile intervals from ``nsim`` refits to responses simulated from the fit.

    All responses are simulated first, from one generator seeded with ``seed``, and every
    refit starts at the fit's theta, so the intervals are the same whatever ``n_jobs``:
    the processes only share out the refits (``concurrent.futures``, each worker receiving
    the fit once). ``n_jobs=1`` runs in this process, and is the default because it was the
    faster on the course's 2 shared cores: 1,000 refits of sleepstudy's ``(Days | Subject)``
    took 8.5-11.5 s in one process and 9.6-16.1 s in two (4 comparisons at load 2.8-4.9;
    two won once; each worker first imports the package, and the other core was busy).
    More processes help on an idle machine with more cores, for larger models.
    """
    sims = fit.simulate(nsim, seed=seed)
    bar = None
    if progress:
        from tqdm.auto import tqdm
        bar = tqdm(total=nsim, desc="parametric bootstrap", unit="refit")
    chunks = [sims[:, a:a + BOOT_CHUNK] for a in range(0, nsim, BOOT_CHUNK)]
    results = [None] * len(chunks)
    if n_jobs == 1:
        for k, chunk in enumerate(chunks):
            results[k] = _boot_stats(fit, chunk)
            if bar is not None:
                bar.update(chunk.shape[1])
    else:
        import concurrent.futures as cf
        import multiprocessing
        # forkserver: a clean process per worker (no copy of this process's BLAS threads
        # or locks, which fork would inherit), cheaper than spawn after the first start
        ctx = multiprocessing.get_context("forkserver")
        with cf.ProcessPoolExecutor(max_workers=n_jobs, mp_context=ctx,
                                    initializer=_worker_init, initargs=(fit,)) as pool:
            futures = {pool.submit(_worker_stats, chunk): k for k, chunk in enumerate(chunks)}
            for fut in cf.as_completed(futures):
                results[futures[fut]] = fut.result()
                if bar is not None:
                    bar.update(len(results[futures[fut]]))
    if bar is not None:
        bar.close()
    stats = np.concatenate(results)
    a = (1 - level) / 2
    lo, hi = np.quantile(stats, [a, 1 - a], axis=0)
    names = parameter_names(fit) + list(fit.fixef.index)
    return _frame(dict(zip(names, zip(lo, hi, strict=True), strict=True)), level)
