"""Checks of exercise 4 (LFP power): a hierarchical model written in NumPyro, the 94% HDI of
its effect, and the LME's estimate of the same effect.

``ex4-model``
    ``collect`` traces the student's ``model(stim, mouse, n_mice, y=None)`` with NumPyro's
    handlers on inputs the check draws (site names, shapes, which sites are observed), then
    runs a short NUTS (one chain, fixed seed) on data simulated with parameters the check
    draws, and returns the sites' description and the draws of ``beta`` and ``sigma`` as
    plain lists. ``judge`` redraws the true parameters from the seed and checks that the
    true effect lies in the 94% HDI of the returned draws (computed in ``judge`` with
    ``numpyro.diagnostics.hpdi``) and that the posterior mean is close to it; no MCMC runs
    in ``judge``.
``ex4-hdi``
    ``hdi(draws, prob)`` against ``numpyro.diagnostics.hpdi`` on skewed draws.
``ex4-lme``
    ``lme_effect(df)`` against ``course_lib.mixed.lmer("log_power ~ stim + (1 | mouse)")``
    (itself tested against lme4) on simulated LFP data sets.
"""

from __future__ import annotations

import numpy as np
import statsmodels.formula.api as smf

from course_lib.checks.core import (
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
SITES = {"mu_alpha": (), "sigma_alpha": (), "z": ("n_mice",), "beta": (), "sigma": ()}


def _model_problem(seed: int = MODEL_SEED) -> dict:
    """True parameters and simulated data for the recovery test (deterministic in seed)."""
    rng = np.random.default_rng(seed)
    n_mice, n_per = 8, 20  # 20 trials per mouse and condition
    truth = {
        "mu_alpha": float(rng.uniform(3.5, 4.5)),
        "sigma_alpha": float(rng.uniform(0.3, 0.6)),
        "beta": float(rng.uniform(0.1, 0.3) * rng.choice([-1, 1])),
        "sigma": float(rng.uniform(0.2, 0.4)),
    }
    alpha = truth["mu_alpha"] + truth["sigma_alpha"] * rng.standard_normal(n_mice)
    mouse = np.repeat(np.arange(n_mice), 2 * n_per)
    stim = np.tile(np.repeat([0, 1], n_per), n_mice)
    y = alpha[mouse] + truth["beta"] * stim + truth["sigma"] * rng.standard_normal(mouse.size)
    truth["alpha"] = alpha.tolist()
    return {"truth": truth, "stim": stim.astype(float), "mouse": mouse, "n_mice": n_mice,
            "y": y}


def _trace_sites(model, stim, mouse, n_mice, y) -> dict:
    import jax
    from numpyro import handlers

    tr = handlers.trace(handlers.seed(model, jax.random.PRNGKey(0))).get_trace(
        stim, mouse, n_mice, y=y)
    out = {}
    for name, site in tr.items():
        if site["type"] != "sample":
            continue
        out[name] = {"shape": [int(s) for s in np.shape(site["value"])],
                     "observed": bool(site.get("is_observed", False))}
    return out


class ModelCheck(Check):
    """Trace the student's NumPyro model, then judge a short fit's recovery of known values."""

    part = "ex4-model"
    points = 2
    num_warmup, num_samples = 300, 500

    def collect(self, answer=None, *extra) -> dict:
        record: dict = {"part": self.part}
        if not callable(answer):
            record["error"] = f"model should be a function, got {type(answer).__name__}"
            return record
        prob = _model_problem()
        try:
            # A small data set of another size first: shapes must follow the arguments.
            small = 5
            record["sites_small"] = _trace_sites(
                answer, prob["stim"][: small * 40], prob["mouse"][: small * 40], small,
                prob["y"][: small * 40])
            record["sites"] = _trace_sites(answer, prob["stim"], prob["mouse"],
                                           prob["n_mice"], prob["y"])
        except NotImplementedError:
            record["not_implemented"] = True
            return record
        except Exception as err:  # the student's code may raise anything
            record["error"] = f"model raised {type(err).__name__}: {str(err)[:300]} when traced"
            return record
        if self._structure_problem(record["sites"], prob["n_mice"], len(prob["y"])):
            return record  # judge reports it; no point in sampling a wrong model
        try:
            import jax
            from numpyro.infer import MCMC, NUTS

            mcmc = MCMC(NUTS(answer), num_warmup=self.num_warmup,
                        num_samples=self.num_samples, num_chains=1, progress_bar=False)
            mcmc.run(jax.random.PRNGKey(1), prob["stim"], prob["mouse"], prob["n_mice"],
                     y=prob["y"])
            draws = mcmc.get_samples()
            record["beta"] = np.asarray(draws["beta"], dtype=float).ravel().tolist()
            record["sigma"] = np.asarray(draws["sigma"], dtype=float).ravel().tolist()
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
                    "index the intercepts by mouse, alpha[mouse], so that the mean has one "
                    "entry per trial.")
        if "alpha" in sites and "z" not in sites:
            return ("sites: your model samples 'alpha' directly (centred); it should sample 'z'",
                    "write it non-centred: z = numpyro.sample(\"z\", dist.Normal(0, 1)) in a "
                    "plate of n_mice, then alpha = mu_alpha + sigma_alpha * z.")
        missing = [k for k in SITES if k not in sites]
        if missing:
            hint = ""
            if "z" in missing or "sigma_alpha" in missing:
                hint = ("each mouse needs its own intercept: alpha_j = mu_alpha + sigma_alpha * "
                        "z_j with z_j ~ N(0, 1).")
            return (f"sites: your model should have the sample sites {sorted(SITES) + ['y']}; "
                    f"{missing} missing", hint)
        for name, shape in SITES.items():
            want = [n_mice if s == "n_mice" else s for s in shape]
            got = sites[name].get("shape")
            if got != want:
                hint = ("use numpyro.plate(\"mice\", n_mice) (or .expand([n_mice])) for z, and "
                        "take its size from the argument n_mice.") if name == "z" else (
                        f"{name} is one number for all mice: sample it outside any plate.")
                return (f"shape: the site '{name}' should have shape {tuple(want)}, got "
                        f"{tuple(got or [])}", hint)
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
        try:
            beta = np.asarray([float(v) for v in collected["beta"]])
            sigma = np.asarray([float(v) for v in collected["sigma"]])
        except (KeyError, TypeError, ValueError):
            return self.verdict("error", "the check could not read your results")
        if beta.size != self.num_samples or not np.all(np.isfinite(beta)):
            return self.verdict("error", "the check could not read your model's draws")
        truth = prob["truth"]
        low, high = _hpdi(beta)
        mean, sd = float(beta.mean()), float(beta.std())
        if sd > 0.5:  # the prior's sd is 1; data on 320 trials pin beta down to ~0.03
            return self.verdict(
                "failed", f"recovery: the posterior of beta should be narrow, but it is as wide as its "
                f"prior (sd {sd:.2f}): the data say nothing about it",
                "beta does not reach the likelihood: add beta * stim to the mean.")
        if not low <= truth["beta"] <= high:
            hint = ""
            if abs(mean + truth["beta"]) < 3 * sd:
                hint = "your effect has the wrong sign: the mean is alpha[mouse] + beta * stim."
            elif abs(mean) < 3 * sd and abs(truth["beta"]) > 3 * sd:
                hint = "beta does not reach the likelihood: add beta * stim to the mean."
            return self.verdict(
                "failed",
                f"recovery: the true effect {truth['beta']:.3f} should lie in the 94% HDI, but lies outside "
                f"[{low:.3f}, {high:.3f}] of your posterior of beta (mean {mean:.3f})", hint)
        if abs(mean - truth["beta"]) > 0.05:
            return self.verdict(
                "failed", f"recovery: the posterior mean of beta should be within 0.05 of the true "
                f"{truth['beta']:.3f}, got {mean:.3f}")
        if not 0.7 * truth["sigma"] < float(np.median(sigma)) < 1.3 * truth["sigma"]:
            hint = ("sigma is a standard deviation: dist.Normal(loc, sigma), not sigma**2."
                    if abs(np.median(sigma) - truth["sigma"] ** 0.5) < 0.1 else "")
            return self.verdict(
                "failed", f"recovery: the posterior median of sigma should be near the true trial-to-trial "
                f"spread {truth['sigma']:.3f}, got {np.median(sigma):.3f}", hint)
        return self.verdict(
            "passed", "model has the right sites and shapes, and recovers the true effect and "
            "spread of a data set the check simulated.")


register(ModelCheck())

# ---------------------------------------------------------------------------------------
# ex4-hdi: hdi(draws, prob=0.94) -> (low, high)


def _draw_posteriors(rng: np.random.Generator) -> list[Case]:
    cases = []
    for kind in ("gamma", "lognormal", "normal", "gamma"):
        n = int(rng.choice([2000, 4000]))
        if kind == "gamma":
            draws = rng.gamma(rng.uniform(1.5, 4), rng.uniform(0.5, 2), n)
        elif kind == "lognormal":
            draws = rng.lognormal(rng.uniform(-1, 1), rng.uniform(0.4, 0.8), n)
        else:
            draws = rng.normal(rng.uniform(-1, 1), rng.uniform(0.1, 1), n)
        cases.append(Case((draws, PROB), f"{n} draws from a {kind} posterior, prob = {PROB}"))
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
    draws, _ = args
    for p in (0.95, 0.89, 0.9, 0.5, 0.06):
        other = _hpdi(draws, p)
        if close_to(got, other, rtol=0, atol=0.01 * float(other[1] - other[0])):
            return f"this is the {p:.0%} HDI: use the prob argument (0.94 here)."


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
                "the check drew.",
    )
)

# ---------------------------------------------------------------------------------------
# ex4-lme: lme_effect(df) -> (estimate, SE) of stim in log_power ~ stim + (1 | mouse)


def _draw_lfp(rng: np.random.Generator) -> list[Case]:
    from course_lib.lfp import simulate_lfp

    cases = []
    for n_mice, n_trials in ((6, 10), (8, 15), (10, 8)):
        seed = int(rng.integers(0, 10_000))
        trials, _ = simulate_lfp(n_mice=n_mice, n_trials=n_trials, seed=seed, n_samples=5,
                                 baseline_sd=float(rng.uniform(0.3, 0.6)))
        trials = trials.sample(frac=1.0, random_state=rng).reset_index(drop=True)
        cases.append(Case((trials,), f"{n_mice} mice × {2 * n_trials} trials "
                                     f"(simulate_lfp seed {seed}, rows shuffled)"))
    return cases


def _lme_reference(df):
    from course_lib.mixed import lmer

    fit = lmer("log_power ~ stim + (1 | mouse)", df)
    return np.array([fit.fixef["stim"], fit.fixef_se["stim"]])


def _compare_effect(got: Returned, expected, what: str) -> None:
    compare_arrays(got, expected, what, rtol=2e-3, atol=1e-6)


def _ols(got: Returned, expected, args):
    fit = smf.ols("log_power ~ stim", args[0]).fit()
    if close_to(got, [fit.params["stim"], fit.bse["stim"]], rtol=2e-3):
        return ("this is OLS, which ignores the mice: add a random intercept per mouse, "
                "log_power ~ stim + (1 | mouse).")


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
        diagnoses=[_ols, _power_scale, _se_as_variance, _statsmodels_se],
        seed=4403,
        success="{function} agrees with lmer(log_power ~ stim + (1 | mouse)) on {n} simulated "
                "LFP data sets the check drew.",
    )
)

__all__ = ["ModelCheck", "fmt", "CheckFailure"]
