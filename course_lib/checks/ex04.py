"""Checks of exercise 4 (LFP power): the NumPyro model with a per-mouse effect, read by
:mod:`course_lib.checks.models` and compared with the reference model's reading; the HDI, against
numpyro's ``hpdi``; the LME's effect, against ``course_lib.mixed.lmer`` (tested against lme4)."""

import functools

import numpy as np
import statsmodels.formula.api as smf

from course_lib.checks.core import Case, FunctionCheck, register
from course_lib.checks.ex02 import quiet_lmer
from course_lib.checks.models import PRIORS, SCALARS, compare_model, model_output
from course_lib.lfp import simulate_lfp


def _mice(rng: np.random.Generator, n: int) -> Case:
    """``n`` mice (4 to 6: a plate hard-coded to the notebook's 8 fails) × 120 trials (one shape of y: jax compiles its
    operations once), the scalars' values, and the u where the per-mouse values are set."""
    mouse, stim = np.divmod(np.arange(120) // (60 // n), 2)  # each mouse: 60 / n trials off, then 60 / n on
    values = dict(zip(SCALARS, rng.uniform([3.5, 0.3, -0.4, 0.1, 0.2], [4.5, 0.8, 0.4, 0.3, 0.4]).tolist()))
    y = values["mu_alpha"] + values["beta"] * stim + rng.normal(0.0, 0.6, 120)
    values["u"] = rng.uniform(0.05, 0.95, n)
    return Case((stim.astype(float), mouse, n, y, values), f"{n} mice × {120 // n} trials")


def _hierarchy(stim, mouse, n_mice, y=None, squared: str = ""):
    """The reference model, centred; with ``squared``, that standard deviation squared (a mistake)."""
    from numpyro import distributions as dist, plate, sample  # here: the checks import without jax

    p = {k: sample(k, getattr(dist, family)(*map(float, params))) ** (2 if k == squared else 1)
         for k, (family, *params) in PRIORS.items()}  # the task's priors, as the hints name them
    with plate("mice", n_mice):
        alpha = sample("alpha", dist.Normal(p["mu_alpha"], p["sigma_alpha"]))
        beta_mouse = sample("beta_mouse", dist.Normal(p["beta"], p["sigma_beta"]))
    sample("y", dist.Normal(alpha[mouse] + beta_mouse[mouse] * stim, p["sigma"]), obs=y)


register(FunctionCheck(
    part="ex4-model", points=2, function="model", seed=4401, reference=_hierarchy,
    draw=lambda rng: [_mice(rng, n) for n in rng.choice([4, 5, 6], size=2, replace=False).tolist()],
    output=model_output, compare=compare_model,
    mistakes=[(functools.partial(_hierarchy, squared=s), f"{s} is a standard deviation: use it as the scale, not "
               f"{s}**2.") for s in ("sigma", "sigma_alpha", "sigma_beta")],
    error_hints=[("out of bounds", 'one value per mouse: numpyro.plate("mice", n_mice), its size from n_mice.')],
    success="{function} has the task's sites, every level of its hierarchy reaches the likelihood, and its density is "
            "the hierarchical model's on {n} drawn data sets."))


def _hpdi(draws, prob=0.94):
    from numpyro.diagnostics import hpdi  # imported here: the checks import without jax

    return np.asarray(hpdi(np.asarray(draws, dtype=float), prob=prob), dtype=float)


def _draw_posteriors(rng: np.random.Generator) -> list[Case]:
    """Skewed and symmetric draws at prob 0.94 and three others; n = 100 k + 1 draws, so that prob · n is never
    whole and every count of the window (ceil(prob n), or numpyro's and arviz's floor(prob n) + 1) agrees."""
    probs = [0.94, *rng.choice([0.5, 0.8, 0.89, 0.9, 0.95, 0.99], size=3, replace=False).tolist()]
    draw = {"gamma": lambda n: rng.gamma(rng.uniform(1.5, 4), rng.uniform(0.5, 2), n),
            "lognormal": lambda n: rng.lognormal(rng.uniform(-1, 1), rng.uniform(0.4, 0.8), n),
            "normal": lambda n: rng.normal(rng.uniform(-1, 1), rng.uniform(0.1, 1), n)}
    return [Case((draw[k](n := 100 * int(rng.integers(10, 41)) + 1), p), f"{n} draws from a {k} posterior, prob = {p}")
            for k, p in zip(rng.permutation(["gamma", "lognormal", "normal", "gamma"]).tolist(), probs)]


register(FunctionCheck(
    part="ex4-hdi", points=1, function="hdi", seed=4402, draw=_draw_posteriors, reference=_hpdi,
    mistakes=[(lambda d, prob=0.94: np.quantile(d, [(1 - prob) / 2, (1 + prob) / 2]),
               "this is the equal-tailed interval (3% and 97% quantiles at prob 0.94); the HDI is the narrowest "
               "interval holding prob of the draws: slide a window of ceil(prob n) sorted draws, keep the narrowest."),
              *[(lambda d, prob=0.94, p=p: _hpdi(d, p), f"this is the {p:.0%} HDI: use the prob argument (the check "
                                                        "varies it).") for p in (0.94, 0.95, 0.89, 0.9)]],
    success="{function} agrees with numpyro's hpdi on {n} drawn skewed and symmetric posteriors, at 4 values of prob."))


def _lfp(rng: np.random.Generator, n_mice: int, n_trials: int) -> Case:
    """simulate_lfp's trials of ``n_mice`` × 2 ``n_trials`` at a drawn seed and noise, rows shuffled."""
    trials, _ = simulate_lfp(n_mice=n_mice, n_trials=n_trials, seed=(seed := int(rng.integers(0, 10_000))),
                             n_samples=5, baseline_sd=rng.uniform(0.3, 0.6), response_sd=rng.uniform(0.15, 0.25))
    return Case((trials.sample(frac=1.0, random_state=rng).reset_index(drop=True),),
                f"{n_mice} mice × {2 * n_trials} trials (simulate_lfp seed {seed}, rows shuffled)")


def _stim(df, formula: str = "log_power ~ stim + (1 + stim | mouse)") -> np.ndarray:
    fit = quiet_lmer(formula, df)  # (a singular fit is still the reference answer)
    return np.array([fit.fixef["stim"], fit.fixef_se["stim"]])


register(FunctionCheck(
    part="ex4-lme", points=1, function="lme_effect", seed=4403, reference=_stim, tolerance=(2e-3, 1e-6),
    draw=lambda rng: [_lfp(rng, n_mice, n_trials) for n_mice, n_trials in ((6, 10), (8, 15), (10, 8))],
    mistakes=[
        (lambda df: _stim(df, "log_power ~ stim + (1 | mouse)"), "(1 | mouse) gives all mice one effect, so the trials "
         "act as its replicates (pseudo-replication) and the SE is too small. Each mouse its own: (1 + stim | mouse)."),
        (lambda df: (lambda f: np.array([f.params["stim"], f.bse["stim"]]))(smf.ols("log_power ~ stim", df).fit()),
         "this is OLS, which ignores the mice: give each mouse its own intercept and effect, (1 + stim | mouse)."),
        (lambda df: _stim(df) ** [1, 2], "the second number should be the standard error, not its square."),
        (lambda df: _stim(df, "power ~ stim + (1 + stim | mouse)"), "the outcome is log_power, not power in µV².")],
    success="{function} agrees with lmer on log_power ~ stim + (1 + stim | mouse) on {n} drawn LFP data sets."))
