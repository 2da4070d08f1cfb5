"""Checks of exercise 6 (many neurons): the stimulus effect of a Poisson GLMM as a rate ratio with its 95% Wald
interval, exp(b ± 1.96 se), against ``course_lib.mixed.glmer`` (tested against lme4); the mean Poisson deviance
2 mean[y log(y/μ) − (y − μ)]; Pearson's dispersion Σ (y − μ)²/μ / (n − n_params)."""

import numpy as np
from scipy import special, stats

from course_lib import neurons
from course_lib.checks.core import Case, FunctionCheck, reference_cache, register
from course_lib.mixed import glmer


def _population(seed: int, overdispersion: float = 0.0) -> Case:
    data, _ = neurons.simulate_population(n_neurons=40, n_trials=20, n_sparse=8, overdispersion=overdispersion,
                                          seed=seed)
    return Case((data,), f"a population of 40 neurons ({len(data)} trials, simulate_population seed {seed}, "
                         f"overdispersion {overdispersion:g})")


def _wald(b, se) -> np.ndarray:
    return np.exp(b + np.array([0.0, -1.96, 1.96]) * se)


@reference_cache
def _ratio(data, formula: str = "count ~ stim + (1 + stim | neuron) + offset(log(duration))") -> np.ndarray:
    fit = glmer(formula, data)
    return _wald(fit.fixef["stim"], fit.fixef_se["stim"])


def _no_pooling_mean(data) -> np.ndarray:
    own = neurons.no_pooling(data)["effect"].replace([np.inf, -np.inf], np.nan).dropna()
    return _wald(own.mean(), stats.sem(own))


register(FunctionCheck(
    part="ex6-rate-ratio", points=1, function="stim_rate_ratio", seed=6101, tolerance=(1e-4, 1e-8),
    draw=lambda rng: [_population(int(rng.integers(0, 2**31)), od) for od in (0.0, 0.4)], reference=_ratio,
    mistakes=[(lambda d: np.log(_ratio(d)), "these are log rate ratios (glmer's coefficient on the log scale): "
               "exponentiate the estimate and both ends of the interval."),
              (lambda d: _ratio(d, "count ~ stim + (1 + stim | neuron)"), "the model has no exposure offset: trials "
               "last 0.5 to 2 s, so add offset(log(duration)) to the formula to model rates, not counts."),
              (_no_pooling_mean, "this averages per-neuron fits (no pooling): sparse neurons' noisy effects count as "
               "much as the others'. Fit the GLMM count ~ stim + (1 + stim | neuron) + offset(log(duration)).")],
    success="{function} gives exp(beta_stim) and its 95% Wald interval from the Poisson GLMM on {n} drawn "
            "populations."))


def _counts(rng: np.random.Generator, n: int) -> Case:
    """``n`` counts at low rates, so that every case has zero counts (integers for n = 60, as the notebook's); their
    means; and n_params."""
    mu = rng.gamma(2.0, rng.uniform(0.5, 3.0), size=n) + 0.05
    y = rng.poisson(mu * rng.gamma(3.0, 1 / 3.0, size=n)).astype(int if n == 60 else float)
    y[rng.integers(n)] = 0
    return Case((y, mu, int(rng.integers(2, 9))), f"{n} counts ({int((y == 0).sum())} zeros), mean {y.mean():.3g}")


def _deviance(y, mu):
    return float(np.mean(2 * (special.xlogy(y, y / mu) - (y - mu))))


register(FunctionCheck(
    part="ex6-deviance", points=0.5, function="mean_poisson_deviance", seed=6202, tolerance=(1e-5, 1e-8),
    draw=lambda rng: [Case(c.args[:2], c.label) for c in (_counts(rng, n) for n in (12, 60, 250))], reference=_deviance,
    mistakes=[
        (np.errstate(divide="ignore", invalid="ignore")(lambda y, mu: np.mean(2 * (y * np.log(y / mu) - (y - mu)))),
         "y log(y/μ) is 0 where y = 0 (its limit): use scipy.special.xlogy(y, y / mu)."),
        (lambda y, mu: _deviance(y, mu) / 2, "the deviance has a factor 2: 2 [y log(y/μ) − (y − μ)]."),
        (lambda y, mu: _deviance(y, mu) * len(y), "return the mean over counts, not the sum."),
        (lambda y, mu: float(np.mean(2 * special.xlogy(y, y / mu))),
         "you left out −(y − μ): on held-out counts it does not cancel."),
        (lambda y, mu: float(-np.mean(stats.poisson.logpmf(y, mu))),
         "this is the negative log-likelihood; the deviance compares it with the saturated model's.")],
    success="{function} gives the mean Poisson deviance, zero counts included, on {n} inputs the check drew."))


def _dispersion(y, mu, n_params):
    return float(np.sum((y - mu) ** 2 / mu) / (len(y) - n_params))


register(FunctionCheck(
    part="ex6-dispersion", points=0.5, function="pearson_dispersion", seed=6303, tolerance=(1e-5, 1e-8),
    draw=lambda rng: [_counts(rng, n) for n in (12, 60, 250)], reference=_dispersion,
    mistakes=[
        (lambda y, mu, p: _dispersion(y, mu, 0), "divide by the residual degrees of freedom, n − n_params, not by n."),
        (lambda y, mu, p: _dispersion(y, mu, p) * (len(y) - p),
         "this is Pearson's χ²: divide it by its degrees of freedom, n − n_params."),
        (lambda y, mu, p: float(np.sum((y - mu) ** 2) / (len(y) - p)),
         "a Pearson residual divides by the Poisson SD: (y − μ)² / μ."),
        (lambda y, mu, p: _deviance(y, mu) * len(y) / (len(y) - p),
         "this is the deviance over df; the part asks for Pearson's χ², Σ (y − μ)² / μ.")],
    success="{function} gives Pearson's χ² / (n − n_params) on {n} inputs the check drew."))
