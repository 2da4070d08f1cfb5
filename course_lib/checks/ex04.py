"""Checks of exercise 4 (LFP power): the hierarchical NumPyro model with a per-mouse effect, the
HDI of a posterior, and the honest LME's estimate of the effect.

``ex4-model`` runs the model on drawn data with its scalars at drawn values and its per-mouse
values at fixed quantiles of their priors (:mod:`course_lib.checks.models`), and compares the
sites, the levels of the hierarchy that reach the likelihood, the per-mouse values and the log
density of y with the reference model's (centred and non-centred models describe the same).
``ex4-hdi`` compares with ``numpyro.diagnostics.hpdi`` at several values of prob, ``ex4-lme``
with ``course_lib.mixed.lmer`` (tested against lme4). No expected number is typed in.
"""

from __future__ import annotations

import warnings

import numpy as np
import statsmodels.formula.api as smf

from course_lib.checks.core import Case, FunctionCheck, reference_cache, register
from course_lib.checks.models import SCALARS, compare_model, model_output
from course_lib.lfp import simulate_lfp
from course_lib.mixed import lmer

# ---------------------------------------------------------------------------------------
# ex4-model: model(stim, mouse, n_mice, y=None)


def _draw_mice(rng: np.random.Generator) -> list[Case]:
    """Two data sets of different numbers of mice (fewer than the notebook's 8: a hard-coded
    plate fails), the scalars' values, and the quantiles u at which the per-mouse values are set."""
    cases = []
    for n_mice in rng.choice([4, 5, 6, 7], size=2, replace=False):
        n_per = int(rng.integers(3, 8))
        mouse = np.repeat(np.arange(int(n_mice)), 2 * n_per)
        stim = np.tile(np.repeat([0.0, 1.0], n_per), int(n_mice))
        lows, highs = np.array([3.5, 0.3, 0.1, 0.1, 0.2]), np.array([4.5, 0.8, 0.4, 0.3, 0.4])
        values = dict(zip(SCALARS, (rng.uniform(lows, highs) * [1, 1, rng.choice([-1, 1]), 1, 1]).tolist()))
        y = values["mu_alpha"] + rng.normal(0.0, 0.6, mouse.size) + values["beta"] * stim
        values["u"] = rng.uniform(0.05, 0.95, int(n_mice))
        cases.append(Case((stim, mouse, int(n_mice), y, values), f"{n_mice} mice × {2 * n_per} trials"))
    return cases


def _hierarchy(squared: str = ""):
    """The reference model (non-centred); with ``squared``, that standard deviation squared."""
    def hierarchy(stim, mouse, n_mice, y=None):
        import numpyro
        import numpyro.distributions as dist

        priors = (dist.Normal(4.0, 2.0), dist.HalfNormal(1.0), dist.Normal(0.0, 1.0), dist.HalfNormal(0.5),
                  dist.HalfNormal(1.0))
        p = {k: numpyro.sample(k, d) for k, d in zip(SCALARS, priors)}
        p[squared] = p.get(squared, 0.0) ** 2
        with numpyro.plate("mice", n_mice):
            z, w = numpyro.sample("z", dist.Normal(0.0, 1.0)), numpyro.sample("w", dist.Normal(0.0, 1.0))
        alpha = numpyro.deterministic("alpha", p["mu_alpha"] + p["sigma_alpha"] * z)
        beta_mouse = numpyro.deterministic("beta_mouse", p["beta"] + p["sigma_beta"] * w)
        with numpyro.plate("trials", len(stim)):
            numpyro.sample("y", dist.Normal(alpha[mouse] + beta_mouse[mouse] * stim, p["sigma"]), obs=y)
    return hierarchy


register(FunctionCheck(
    part="ex4-model", points=2, function="model", seed=4401,
    draw=_draw_mice, reference=_hierarchy(), output=model_output, compare=compare_model,
    mistakes=[(_hierarchy(s), f"{s} is a standard deviation: use it as the scale, not {s}**2.") for s in
              ("sigma", "sigma_alpha", "sigma_beta")],
    error_hints=[("out of bounds", "use numpyro.plate(\"mice\", n_mice): its size comes from the argument n_mice."),
                 ("quantiles of its prior", "the per-mouse values are Normal: dist.Normal(0, 1) for z and w.")],
    success="{function} has the task's sites, every level of its hierarchy reaches the likelihood, and its "
            "density equals the hierarchical model's on {n} data sets the check drew.",
))

# ---------------------------------------------------------------------------------------
# ex4-hdi: hdi(draws, prob=0.94) -> (low, high)


def _hpdi(draws, prob=0.94):
    from numpyro.diagnostics import hpdi  # imported here: checks import without jax

    return np.asarray(hpdi(np.asarray(draws, dtype=float), prob=prob), dtype=float)


def _draw_posteriors(rng: np.random.Generator) -> list[Case]:
    """Skewed and symmetric draws at prob 0.94 and three others; n = 100 k + 1 draws, so that
    prob · n is never whole and every way of counting the window (ceil(prob n) draws, or
    numpyro's and arviz's floor(prob n) + 1) gives the same interval."""
    probs = [0.94, *rng.choice([0.5, 0.8, 0.89, 0.9, 0.95, 0.99], size=3, replace=False).tolist()]
    cases = []
    for kind, prob in zip(rng.permutation(["gamma", "lognormal", "normal", "gamma"]), probs):
        n = 100 * int(rng.integers(10, 41)) + 1
        draws = {"gamma": lambda: rng.gamma(rng.uniform(1.5, 4), rng.uniform(0.5, 2), n),
                 "lognormal": lambda: rng.lognormal(rng.uniform(-1, 1), rng.uniform(0.4, 0.8), n),
                 "normal": lambda: rng.normal(rng.uniform(-1, 1), rng.uniform(0.1, 1), n)}[kind]()
        cases.append(Case((draws, prob), f"{n} draws from a {kind} posterior, prob = {prob}"))
    return cases


register(FunctionCheck(
    part="ex4-hdi", points=1, function="hdi", seed=4402, draw=_draw_posteriors, reference=_hpdi,
    mistakes=[
        (lambda d, prob=0.94: _hpdi(d, prob)[::-1], "return (low, high), the lower bound first."),
        (lambda d, prob=0.94: np.quantile(d, [(1 - prob) / 2, (1 + prob) / 2]),
         "this is the equal-tailed interval (3% and 97% quantiles at prob 0.94); the HDI is the narrowest "
         "interval holding prob of the draws: slide a window of ceil(prob n) sorted draws, keep the narrowest."),
        *[(lambda d, prob=0.94, p=p: _hpdi(d, p), f"this is the {p:.0%} HDI: use the prob argument (the check "
                                                  "varies it).") for p in (0.94, 0.95, 0.89, 0.9)],
    ],
    success="{function} agrees with numpyro's hpdi on {n} skewed and symmetric posteriors the check drew, "
            "at four values of prob.",
))

# ---------------------------------------------------------------------------------------
# ex4-lme: lme_effect(df) -> (estimate, SE) of stim in log_power ~ stim + (1 + stim | mouse)


def _draw_lfp(rng: np.random.Generator) -> list[Case]:
    cases = []
    for n_mice, n_trials in ((6, 10), (8, 15), (10, 8)):
        seed = int(rng.integers(0, 10_000))
        trials, _ = simulate_lfp(n_mice=n_mice, n_trials=n_trials, seed=seed, n_samples=5,
                                 baseline_sd=float(rng.uniform(0.3, 0.6)), response_sd=float(rng.uniform(0.15, 0.25)))
        cases.append(Case((trials.sample(frac=1.0, random_state=rng).reset_index(drop=True),),
                          f"{n_mice} mice × {2 * n_trials} trials (simulate_lfp seed {seed}, rows shuffled)"))
    return cases


@reference_cache
def _stim(formula: str, df):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a singular fit is still the reference answer
        fit = lmer(formula, df)
    return np.array([fit.fixef["stim"], fit.fixef_se["stim"]])


HONEST = "log_power ~ stim + (1 + stim | mouse)"
register(FunctionCheck(
    part="ex4-lme", points=1, function="lme_effect", seed=4403, draw=_draw_lfp,
    reference=lambda df: _stim(HONEST, df), tolerance=(2e-3, 1e-6),
    mistakes=[
        (lambda df: _stim("log_power ~ stim + (1 | mouse)", df),
         "this is log_power ~ stim + (1 | mouse): one effect for all mice, so the trials count as replicates of "
         "the effect (pseudo-replication) and the SE is too small. Give each mouse its own effect: (1 + stim | mouse)."),
        (lambda df: (lambda f: np.array([f.params["stim"], f.bse["stim"]]))(smf.ols("log_power ~ stim", df).fit()),
         "this is OLS, which ignores the mice: give each mouse its own intercept and effect, "
         "log_power ~ stim + (1 + stim | mouse)."),
        (lambda df: _stim(HONEST, df) ** [1, 2], "the second number should be the standard error, not its square."),
        (lambda df: _stim(HONEST.replace("log_power", "power"), df),
         "the outcome is log_power (the log of power), not power in µV²."),
    ],
    success="{function} agrees with lmer on log_power ~ stim + (1 + stim | mouse) on {n} simulated LFP data sets "
            "the check drew.",
))
