"""Checks of exercise 4 (LFP power): a hierarchical model with a per-mouse stimulation
effect written in NumPyro, the HDI of its effect, and the honest LME's estimate of the effect.

``ex4-model``
    ``collect`` traces the student's ``model(stim, mouse, n_mice, y=None)`` with NumPyro's
    handlers on inputs the check draws (site names, shapes, which sites are observed), then
    tests that every level of the hierarchy reaches the likelihood: with every other latent
    value held fixed (``handlers.substitute``), changing each of ``mu_alpha``,
    ``sigma_alpha``, ``beta``, ``sigma_beta`` and ``sigma`` must change the log density of
    the *other* sites (a ``sigma_alpha`` that never enters the model changes only its own
    prior term). Centred (``alpha``/``beta_mouse`` sampled) and non-centred
    (``deterministic``) parameterisations both pass. Then it runs a short NUTS (one chain,
    fixed seed) on data simulated with per-mouse effects the check draws, and returns the
    draws of ``beta``, ``sigma`` and ``sigma_beta`` and the posterior means of
    ``beta_mouse``. ``judge`` redraws the truth from the seed and checks that the true
    population effect lies in the 94% HDI (``numpyro.diagnostics.hpdi``), that sigma is
    recovered, and that the posterior per-mouse effects follow the true ones; no MCMC runs
    in ``judge``. A model with one effect for all mice fails with a hint on
    pseudo-replication.
``ex4-hdi``
    ``hdi(draws, prob)`` against ``numpyro.diagnostics.hpdi`` on skewed draws, at several
    values of ``prob``.
``ex4-lme``
    ``lme_effect(df)`` against ``course_lib.mixed.lmer("log_power ~ stim + (1 + stim |
    mouse)")`` (itself tested against lme4) on simulated LFP data sets; the random-intercept
    model fails with a hint on pseudo-replication.
"""

from __future__ import annotations

import numpy as np
import statsmodels.formula.api as smf

from course_lib.checks.legacy import (
    Case,
    Check,
    CheckFailure,
    FunctionCheck,
    Returned,
    close_to,
    compare_arrays,
    fmt,
    register,
)

PROB = 0.94


def _hpdi(draws, prob=PROB):
    from numpyro.diagnostics import hpdi  # imported here: checks import without jax

    return np.asarray(hpdi(np.asarray(draws, dtype=float), prob=prob), dtype=float)


# ---------------------------------------------------------------------------------------
# ex4-model: model(stim, mouse, n_mice, y=None), traced and fitted on drawn data


MODEL_SEED = 4401
SCALARS = ("mu_alpha", "sigma_alpha", "beta", "sigma_beta", "sigma")
PER_MOUSE = ("alpha", "beta_mouse")
PSEUDO_HINT = ("one beta for every mouse treats the trials as replicates of the effect "
               "(pseudo-replication): the unit of replication is the mouse. Give each mouse "
               "its own effect, beta_mouse = beta + sigma_beta * w with w ~ N(0, 1) in the "
               "plate of mice, and use beta_mouse[mouse] * stim in the mean.")
LEVEL_HINTS = {
    "mu_alpha": "mu_alpha never reaches the likelihood: the intercepts are alpha = mu_alpha "
                "+ sigma_alpha * z (or alpha ~ Normal(mu_alpha, sigma_alpha)).",
    "sigma_alpha": "sigma_alpha never reaches the likelihood: scale the mice's intercepts by "
                   "it, alpha = mu_alpha + sigma_alpha * z (or alpha ~ Normal(mu_alpha, "
                   "sigma_alpha)), and use alpha[mouse] in the mean.",
    "beta": "beta never reaches the likelihood: the per-mouse effects are centred on it, "
            "beta_mouse = beta + sigma_beta * w.",
    "sigma_beta": "sigma_beta never reaches the likelihood: scale the per-mouse effects by "
                  "it, beta_mouse = beta + sigma_beta * w (or beta_mouse ~ Normal(beta, "
                  "sigma_beta)), and use beta_mouse[mouse] * stim in the mean.",
    "sigma": "sigma never reaches the likelihood: it is the trial-to-trial spread, "
             "dist.Normal(mean, sigma) for y.",
}
BASE_VALUES = {"mu_alpha": 4.0, "sigma_alpha": 0.5, "beta": 0.2, "sigma_beta": 0.2,
               "sigma": 0.3}


def _model_problem(seed: int = MODEL_SEED) -> dict:
    """True parameters and simulated data for the recovery test (deterministic in seed).

    Each mouse has its own intercept and its own stimulation effect. The spread of the
    intercepts (0.8-1.2) is larger than any plausible square root of sigma, so that a
    model without intercepts (sigma absorbs them) is not mistaken for sigma squared.
    """
    rng = np.random.default_rng(seed)
    n_mice, n_per = 10, 20  # 20 trials per mouse and condition
    truth = {
        "mu_alpha": float(rng.uniform(3.5, 4.5)),
        "sigma_alpha": float(rng.uniform(0.8, 1.2)),
        "beta": float(rng.uniform(0.2, 0.35) * rng.choice([-1, 1])),
        "sigma_beta": float(rng.uniform(0.2, 0.3)),
        "sigma": float(rng.uniform(0.2, 0.3)),
    }
    alpha = truth["mu_alpha"] + truth["sigma_alpha"] * rng.standard_normal(n_mice)
    beta_mouse = truth["beta"] + truth["sigma_beta"] * rng.standard_normal(n_mice)
    mouse = np.repeat(np.arange(n_mice), 2 * n_per)
    stim = np.tile(np.repeat([0, 1], n_per), n_mice)
    y = (alpha[mouse] + beta_mouse[mouse] * stim
         + truth["sigma"] * rng.standard_normal(mouse.size))
    truth["alpha"] = alpha.tolist()
    truth["beta_mouse"] = beta_mouse.tolist()
    return {"truth": truth, "stim": stim.astype(float), "mouse": mouse, "n_mice": n_mice,
            "y": y}


def _trace(model, stim, mouse, n_mice, y, values=None):
    import jax
    from numpyro import handlers

    m = handlers.seed(model, jax.random.PRNGKey(0))
    if values is not None:
        m = handlers.substitute(m, data=values)
    return handlers.trace(m).get_trace(stim, mouse, n_mice, y=y)


def _trace_sites(model, stim, mouse, n_mice, y) -> dict:
    out = {}
    for name, site in _trace(model, stim, mouse, n_mice, y).items():
        if site["type"] not in ("sample", "deterministic"):
            continue
        out[name] = {"shape": [int(s) for s in np.shape(site["value"])],
                     "observed": bool(site.get("is_observed", False)),
                     "type": site["type"]}
    return out


def _levels_reaching_likelihood(model, stim, mouse, n_mice, y) -> dict:
    """For each scalar of SCALARS: does changing it (all other latent values fixed) change
    the log density of the other sample sites? {name: bool}."""
    base = _trace(model, stim, mouse, n_mice, y)
    values = {k: v["value"] for k, v in base.items()
              if v["type"] == "sample" and not v.get("is_observed", False)}
    values.update({k: np.float32(v) for k, v in BASE_VALUES.items() if k in values})

    def others_logp(vals, skip):
        tr = _trace(model, stim, mouse, n_mice, y, vals)
        return float(sum(np.sum(np.asarray(site["fn"].log_prob(site["value"])))
                         for name, site in tr.items()
                         if site["type"] == "sample" and name != skip))

    out = {}
    for name in SCALARS:
        changed = dict(values, **{name: np.float32(1.5 * BASE_VALUES[name] + 0.1)})
        out[name] = bool(abs(others_logp(changed, name) - others_logp(values, name)) > 1e-3)
    return out


def _likelihood_facts(model, stim, mouse, n_mice, y) -> dict:
    """How the likelihood uses sigma and the intercepts, read off the traced site 'y'.

    ``sigma_squared``: with sigma = 0.3, the normal likelihood's scale is 0.09.
    ``uses_alpha``: shifting every mouse's intercept ``alpha`` (a sample or deterministic
    site) changes the log density of y.
    """
    base = _trace(model, stim, mouse, n_mice, y)
    values = {k: v["value"] for k, v in base.items()
              if v["type"] == "sample" and not v.get("is_observed", False)}
    values.update({k: np.float32(v) for k, v in BASE_VALUES.items() if k in values})
    site = _trace(model, stim, mouse, n_mice, y, values)["y"]
    fn = site["fn"]
    while hasattr(fn, "base_dist"):
        fn = fn.base_dist
    scale = np.asarray(getattr(fn, "scale", np.nan), dtype=float)
    sigma = BASE_VALUES["sigma"]
    alpha = np.asarray(_trace(model, stim, mouse, n_mice, y, values)["alpha"]["value"])
    shifted = _trace(model, stim, mouse, n_mice, y, dict(values, alpha=alpha + 1.0))["y"]
    return {
        "sigma_squared": bool(np.allclose(scale, sigma**2) and not np.allclose(scale, sigma)),
        "uses_alpha": bool(abs(float(np.sum(shifted["fn"].log_prob(shifted["value"])))
                               - float(np.sum(site["fn"].log_prob(site["value"])))) > 1e-3),
    }


class ModelCheck(Check):
    """Trace the student's NumPyro model, test that each level of its hierarchy reaches
    the likelihood, then judge a short fit's recovery of known values."""

    part = "ex4-model"
    points = 2
    num_warmup, num_samples = 400, 600

    def collect(self, answer=None, *extra) -> dict:
        record: dict = {"part": self.part}
        if not callable(answer):
            record["error"] = f"model should be a function, got {type(answer).__name__}"
            return record
        prob = _model_problem()
        args = (prob["stim"], prob["mouse"], prob["n_mice"], prob["y"])
        try:
            # A small data set of another size first: shapes must follow the arguments.
            small = 5
            record["sites_small"] = _trace_sites(
                answer, prob["stim"][: small * 40], prob["mouse"][: small * 40], small,
                prob["y"][: small * 40])
            record["sites"] = _trace_sites(answer, *args)
        except NotImplementedError:
            record["not_implemented"] = True
            return record
        except Exception as err:  # the student's code may raise anything
            record["error"] = f"model raised {type(err).__name__}: {str(err)[:300]} when traced"
            return record
        if self._structure_problem(record["sites"], prob["n_mice"], len(prob["y"])):
            return record  # judge reports it; no point in sampling a wrong model
        try:
            record["levels"] = _levels_reaching_likelihood(answer, *args)
        except Exception as err:
            record["error"] = (f"evaluating your model's log density raised "
                               f"{type(err).__name__}: {str(err)[:300]}")
            return record
        if not all(record["levels"].values()):
            return record
        try:
            record["likelihood"] = _likelihood_facts(answer, *args)
        except Exception:  # a likelihood the check cannot read: hints only, no verdict
            record["likelihood"] = {}
        try:
            import jax
            from numpyro.infer import MCMC, NUTS

            mcmc = MCMC(NUTS(answer, target_accept_prob=0.9), num_warmup=self.num_warmup,
                        num_samples=self.num_samples, num_chains=1, progress_bar=False)
            mcmc.run(jax.random.PRNGKey(1), *args[:3], y=args[3])
            draws = mcmc.get_samples()
            for name in ("beta", "sigma", "sigma_beta"):
                record[name] = np.asarray(draws[name], dtype=float).ravel().tolist()
            record["beta_mouse_mean"] = np.asarray(draws["beta_mouse"], dtype=float).mean(
                axis=0).ravel().tolist()
        except Exception as err:
            record["error"] = f"fitting model with NUTS raised {type(err).__name__}: {str(err)[:300]}"
        return record

    @staticmethod
    def _structure_problem(sites, n_mice, n_obs):
        """(message, hint) for the first problem in the traced sites, or None."""
        if not isinstance(sites, dict):
            return ("the check's record of your model is malformed", "")
        observed = [k for k, v in sites.items() if isinstance(v, dict) and v.get("observed")]
        if not observed:
            return ("sites: the likelihood site 'y' should be observed, but no sample site of your "
                    "model is",
                    'pass the data to the likelihood: numpyro.sample("y", ..., obs=y).')
        if "y" not in observed:
            return (f"sites: the observed site should be called 'y', got {observed}",
                    'name the likelihood\'s site "y": numpyro.sample("y", ..., obs=y).')
        if sites["y"].get("shape") != [n_obs]:
            return (f"shape: the site 'y' should have shape ({n_obs},), one value per trial, "
                    f"got {tuple(sites['y'].get('shape', []))}",
                    "index the per-mouse values by mouse, alpha[mouse] + beta_mouse[mouse] * "
                    "stim, so that the mean has one entry per trial.")
        if "sigma_beta" not in sites and "beta_mouse" not in sites:
            return ("sites: your model has one stimulation effect for all mice (no "
                    "'sigma_beta', no 'beta_mouse')", PSEUDO_HINT)
        missing = [k for k in SCALARS + PER_MOUSE if k not in sites]
        if missing:
            hint = ""
            if "alpha" in missing or "beta_mouse" in missing:
                hint = ("name the per-mouse values: numpyro.deterministic(\"alpha\", ...) and "
                        "numpyro.deterministic(\"beta_mouse\", ...) when non-centred, or "
                        "sample them under those names when centred.")
            return (f"sites: your model should have the sites {sorted(SCALARS + PER_MOUSE)} "
                    f"and 'y'; {missing} missing", hint)
        for name in SCALARS:
            got = sites[name].get("shape")
            if got != []:
                return (f"shape: the site '{name}' should be a scalar, got shape "
                        f"{tuple(got or [])}",
                        f"{name} is one number for all mice: sample it outside any plate.")
        for name in PER_MOUSE:
            got = sites[name].get("shape")
            if got != [n_mice]:
                return (f"shape: the site '{name}' should have shape ({n_mice},), one value "
                        f"per mouse, got {tuple(got or [])}",
                        "use numpyro.plate(\"mice\", n_mice) and take its size from the "
                        "argument n_mice.")
        return None

    def judge(self, collected) -> Verdict:
        if not isinstance(collected, dict):
            return self.verdict("error", "the check could not read your results")
        if collected.get("not_implemented"):
            return self.verdict("not-implemented", "model still raises NotImplementedError: "
                                "replace the stub with your solution.")
        if collected.get("error"):
            return self.verdict("error", str(collected["error"])[:400])
        prob = _model_problem()
        for sites, n_mice in ((collected.get("sites_small"), 5),
                              (collected.get("sites"), prob["n_mice"])):
            problem = self._structure_problem(sites, n_mice, n_mice * 40)
            if problem:
                return self.verdict("failed", problem[0], problem[1])
        levels = collected.get("levels")
        if not isinstance(levels, dict) or set(levels) != set(SCALARS):
            return self.verdict("error", "the check could not read your results")
        for name in SCALARS:
            if not levels[name]:
                return self.verdict(
                    "failed", f"levels: changing '{name}' (with every other value fixed) "
                    "should change the density of the rest of the model, but it changes only "
                    f"its own prior: {name} is sampled but never used", LEVEL_HINTS[name])
        try:
            beta = np.asarray([float(v) for v in collected["beta"]])
            sigma = np.asarray([float(v) for v in collected["sigma"]])
            sigma_beta = np.asarray([float(v) for v in collected["sigma_beta"]])
            beta_mouse = np.asarray([float(v) for v in collected["beta_mouse_mean"]])
        except (KeyError, TypeError, ValueError):
            return self.verdict("error", "the check could not read your results")
        if (beta.size != self.num_samples or beta_mouse.size != prob["n_mice"]
                or not np.all(np.isfinite(beta))):
            return self.verdict("error", "the check could not read your model's draws")
        truth = prob["truth"]
        low, high = _hpdi(beta)
        mean = float(beta.mean())
        if not low <= truth["beta"] <= high:
            hint = ""
            if low <= -truth["beta"] <= high:
                hint = ("your effect has the wrong sign: the mean is alpha[mouse] + "
                        "beta_mouse[mouse] * stim.")
            return self.verdict(
                "failed",
                f"recovery: the true population effect {truth['beta']:.3f} should lie in the "
                f"94% HDI, but lies outside [{low:.3f}, {high:.3f}] of your posterior of beta "
                f"(mean {mean:.3f})", hint)
        med = float(np.median(sigma))
        if not 0.7 * truth["sigma"] < med < 1.3 * truth["sigma"]:
            facts = collected.get("likelihood") or {}
            if facts.get("sigma_squared"):
                hint = "sigma is a standard deviation: dist.Normal(loc, sigma), not sigma**2."
            elif facts.get("uses_alpha") is False:
                hint = ("sigma has soaked up the spread of the mice's baselines: the mean "
                        "needs each mouse's intercept, alpha[mouse] + ..., not mu_alpha alone.")
            else:
                hint = ""
            return self.verdict(
                "failed", f"recovery: the posterior median of sigma should be near the true "
                f"trial-to-trial spread {truth['sigma']:.3f}, got {med:.3f}", hint)
        r = float(np.corrcoef(beta_mouse, truth["beta_mouse"])[0, 1])
        if not r > 0.7:
            return self.verdict(
                "failed", f"recovery: the posterior means of beta_mouse should follow the "
                f"{prob['n_mice']} mice's true effects (correlation above 0.7), got {r:.2f}",
                "beta_mouse[j] is mouse j's own effect, beta + sigma_beta * w[j], and enters "
                "the mean as beta_mouse[mouse] * stim.")
        sb = float(np.median(sigma_beta))
        if not truth["sigma_beta"] / 3 < sb < 3 * truth["sigma_beta"]:
            return self.verdict(
                "failed", f"recovery: the posterior median of sigma_beta should be near the true "
                f"spread of the mice's effects {truth['sigma_beta']:.3f}, got {sb:.3f}",
                "sigma_beta is a standard deviation: beta + sigma_beta * w, not sigma_beta**2.")
        return self.verdict(
            "passed", "model has the right sites and shapes, every level reaches the "
            "likelihood, and it recovers the population effect, the trial spread and the "
            "per-mouse effects of a data set the check simulated.")


register(ModelCheck())

# ---------------------------------------------------------------------------------------
# ex4-hdi: hdi(draws, prob=0.94) -> (low, high)


def _draw_posteriors(rng: np.random.Generator) -> list[Case]:
    cases = []
    for kind, prob in (("gamma", PROB), ("lognormal", 0.89), ("normal", 0.5),
                       ("gamma", 0.8)):
        n = int(rng.choice([2000, 4000]))
        if kind == "gamma":
            draws = rng.gamma(rng.uniform(1.5, 4), rng.uniform(0.5, 2), n)
        elif kind == "lognormal":
            draws = rng.lognormal(rng.uniform(-1, 1), rng.uniform(0.4, 0.8), n)
        else:
            draws = rng.normal(rng.uniform(-1, 1), rng.uniform(0.1, 1), n)
        cases.append(Case((draws, prob), f"{n} draws from a {kind} posterior, prob = {prob}"))
    return cases


def _compare_interval(got: Returned, expected, what: str) -> None:
    spread = float(expected[1] - expected[0])
    compare_arrays(got, expected, what, rtol=0, atol=0.01 * spread)


def _equal_tailed(got: Returned, expected, args):
    draws, prob = args
    q = np.quantile(draws, [(1 - prob) / 2, (1 + prob) / 2])
    if close_to(got, q, rtol=0, atol=0.01 * np.ptp(q)):
        return ("this is the equal-tailed interval (3% and 97% quantiles); the HDI is the "
                "narrowest interval holding 94% of the draws: slide a window of "
                "ceil(0.94 n) sorted draws and keep the narrowest.")


def _wrong_prob(got: Returned, expected, args):
    draws, prob = args
    for p in (0.94, 0.95, 0.89, 0.9, 0.8, 0.5, 0.06):
        if abs(p - prob) < 1e-9:
            continue
        other = _hpdi(draws, p)
        if close_to(got, other, rtol=0, atol=0.01 * float(other[1] - other[0])):
            return f"this is the {p:.0%} HDI: use the prob argument ({prob} here)."


def _reversed(got: Returned, expected, args):
    if close_to(got, np.asarray(expected)[::-1], rtol=0, atol=0.01 * np.ptp(expected)):
        return "return (low, high), the lower bound first."


register(
    FunctionCheck(
        part="ex4-hdi",
        points=1,
        function="hdi",
        draw=_draw_posteriors,
        reference=_hpdi,
        compare=_compare_interval,
        diagnoses=[_reversed, _equal_tailed, _wrong_prob],
        seed=4402,
        success="{function} agrees with numpyro's hpdi on {n} skewed and symmetric posteriors "
                "the check drew, at four values of prob.",
    )
)

# ---------------------------------------------------------------------------------------
# ex4-lme: lme_effect(df) -> (estimate, SE) of stim in log_power ~ stim + (1 + stim | mouse)


def _draw_lfp(rng: np.random.Generator) -> list[Case]:
    from course_lib.lfp import simulate_lfp

    cases = []
    for n_mice, n_trials in ((6, 10), (8, 15), (10, 8)):
        seed = int(rng.integers(0, 10_000))
        trials, _ = simulate_lfp(n_mice=n_mice, n_trials=n_trials, seed=seed, n_samples=5,
                                 baseline_sd=float(rng.uniform(0.3, 0.6)),
                                 response_sd=float(rng.uniform(0.15, 0.25)))
        trials = trials.sample(frac=1.0, random_state=rng).reset_index(drop=True)
        cases.append(Case((trials,), f"{n_mice} mice × {2 * n_trials} trials "
                                     f"(simulate_lfp seed {seed}, rows shuffled)"))
    return cases


HONEST = "log_power ~ stim + (1 + stim | mouse)"


def _lmer_stim(formula, df):
    import warnings

    from course_lib.mixed import lmer

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a singular fit is still the reference answer
        fit = lmer(formula, df)
    return np.array([fit.fixef["stim"], fit.fixef_se["stim"]])


def _lme_reference(df):
    return _lmer_stim(HONEST, df)


def _compare_effect(got: Returned, expected, what: str) -> None:
    compare_arrays(got, expected, what, rtol=2e-3, atol=1e-6)


def _intercept_only(got: Returned, expected, args):
    if close_to(got, _lmer_stim("log_power ~ stim + (1 | mouse)", args[0]), rtol=2e-3):
        return ("this is log_power ~ stim + (1 | mouse): one effect for all mice, so the "
                "trials count as replicates of the effect (pseudo-replication) and the SE is "
                "too small. Give each mouse its own effect: (1 + stim | mouse).")


def _ols(got: Returned, expected, args):
    fit = smf.ols("log_power ~ stim", args[0]).fit()
    if close_to(got, [fit.params["stim"], fit.bse["stim"]], rtol=2e-3):
        return ("this is OLS, which ignores the mice: give each mouse its own intercept and "
                "effect, log_power ~ stim + (1 + stim | mouse).")


def _power_scale(got: Returned, expected, args):
    if got.array is not None and got.array.size == 2 and abs(got.array[0]) > 1:
        return "the outcome is log_power (the log of power), not power in µV²."


def _statsmodels_se(got: Returned, expected, args):
    if (got.array is not None and got.array.size == 2
            and np.isclose(got.array[0], expected[0], rtol=2e-3)
            and not np.isclose(got.array[1], expected[1], rtol=2e-3)):
        return ("the estimate is right but the SE is not lme4's (statsmodels' MixedLM.bse_fe "
                "differs): use course_lib.mixed.lmer and fit.fixef_se['stim'].")


def _se_as_variance(got: Returned, expected, args):
    if close_to(got, [expected[0], expected[1] ** 2], rtol=2e-3):
        return "the second number should be the standard error, not its square."


register(
    FunctionCheck(
        part="ex4-lme",
        points=1,
        function="lme_effect",
        draw=_draw_lfp,
        reference=_lme_reference,
        compare=_compare_effect,
        diagnoses=[_intercept_only, _ols, _power_scale, _se_as_variance, _statsmodels_se],
        seed=4403,
        success="{function} agrees with lmer(log_power ~ stim + (1 + stim | mouse)) on {n} "
                "simulated LFP data sets the check drew.",
    )
)

__all__ = ["ModelCheck", "fmt", "CheckFailure"]
