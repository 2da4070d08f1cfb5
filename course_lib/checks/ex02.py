"""Checks of exercise 2 (random effects, Reaction_ij = β0 + b0_j + (β1 + b1_j) Days_ij + ε_ij): fit_4's
standard deviations, one read in the data's units, fixed or random for a design, the residual sizes of lm and
lmer, a likelihood-ratio test. References: ``course_lib.mixed`` (tested against lme4), statsmodels, scipy."""

import warnings

import numpy as np
import scipy.stats
import statsmodels.formula.api as smf

from course_lib.checks.core import Case, FunctionCheck, reference_cache, register
from course_lib.checks.ex01 import sleep_subset
from course_lib.mixed import anova, lmer

FIT_2, FIT_4 = "Reaction ~ 1 + Days + (1 | Subject)", "Reaction ~ 1 + Days + (1 + Days | Subject)"


@reference_cache
def quiet_lmer(formula: str, data, REML: bool = True):  # noqa: N803
    """lmer without its convergence messages: the checks' own fits (also exercise 3's)."""
    with warnings.catch_warnings(action="ignore"):
        return lmer(formula, data, REML=REML)


def converged(*fits) -> bool:
    """Whether every fit converged cleanly: lme4 would report the same optimum."""
    return all(f.max_abs_gradient < 1e-4 and not f.is_singular for f in fits)


def _draw_sleep_subsets(rng: np.random.Generator) -> list[Case]:
    """6, 9 and 13 subjects (rows shuffled) on which fit_2 and fit_4 converge by REML and by ML (as anova refits)."""
    subs = [(k, sleep_subset(rng, k, until=lambda s: converged(
        *(quiet_lmer(f, s, reml) for f in (FIT_2, FIT_4) for reml in (True, False))))) for k in (6, 9, 13)]
    return [Case((sub,), f"{k} subjects of sleepstudy ({len(sub)} rows, shuffled)") for k, sub in subs]


def _sds(formula, data, reml=True):
    return quiet_lmer(formula, data, reml).VarCorr.loc[lambda vc: vc["var2"].isna(), "sdcor"].to_numpy()


_FIT_2 = "these come from the random-intercept model (fit_2); fit_4 has a random intercept and a random slope."
register(FunctionCheck(
    part="ex2-variance-components", points=1, function="variance_components", seed=2101,
    draw=_draw_sleep_subsets, reference=lambda d: _sds(FIT_4, d), tolerance=(1e-3, 1e-4),
    mistakes=[  # (values in another order get compare_data's order hint)
        (lambda d: _sds(FIT_4, d) ** 2, "these are variances (the vcov column); the question asks for standard "
         "deviations, in ms and ms/day (the sdcor column)."),
        (lambda d: _sds(FIT_4, d, False), "you fitted by maximum likelihood; lmer's default (as lme4's) is REML."),
        (lambda d: _sds(FIT_2, d), _FIT_2), (lambda d: np.insert(_sds(FIT_2, d), 1, 0.0), _FIT_2),
        (lambda d: quiet_lmer(FIT_4, d).VarCorr["sdcor"].to_numpy(), "the sdcor column also holds the intercept–slope "
         "correlation (its row has var2 set): keep the three standard deviations only.")],
    success="{function} reads fit_4's standard deviations on {n} subsets the check drew."))

_Z, _PM = (1.96, float(scipy.stats.norm.ppf(0.975))), np.array([-1.0, 1.0])  # z of 95%: rounded, exact
_SD = "tau is already a standard deviation (in the data's units): use it as it is."
register(FunctionCheck(
    part="ex2-slope-range", points=0.5, function="typical_range", seed=2202,
    draw=lambda rng: [Case((b, t), f"beta = {b:.4g}, tau = {t:.4g}")
                      for b, t in zip(rng.uniform(-5, 20, 4).tolist(), rng.uniform(2, 12, 4).tolist())],
    reference=lambda b, t: b + _Z[1] * t * _PM, tolerance=(1e-3, 1e-3),
    mistakes=[
        (lambda b, t: b + t * _PM, "beta ± tau holds only about 68% of subjects; 95% lie within beta ± 1.96 tau."),
        *[(lambda b, t, z=z: b + z * t * _PM, f"{why}: the middle 95% of a normal population lies within beta ± 1.96 "
           "tau, 1.96 = scipy.stats.norm.ppf(0.975).") for z, why in ((2.0, "2 is the rule of thumb"),
                                                                     (1.645, "1.645 gives the middle 90%"))],
        *[(lambda b, t, z=z, f=f: b + z * f(t) * _PM, _SD) for z in _Z for f in (np.sqrt, np.square)],
        *[(lambda b, t, z=z: z * t * _PM, "random effects are deviations from the population value: centre the "
           "range on beta.") for z in _Z]],
    success="{function} gives the middle 95% of the population on {n} inputs the check drew."))

_FACTORS = {True: "site scanner subject mouse electrode session litter rater".split(),  # levels sampled
            False: "hemisphere genotype drug sex region".split()}  # all the levels there are


def _draw_designs(rng: np.random.Generator) -> list[Case]:
    """Each branch of the rule twice and its boundary (4 sampled levels, 3), as (sample, question, levels)."""
    kinds = [(True, True, rng.integers(4, 12)), (bool(rng.integers(2)), True, rng.integers(2, 12)),
             (True, False, rng.integers(5, 40)), (True, False, rng.integers(2, 4)), (True, False, 4),
             (True, False, 3), (False, False, rng.integers(4, 8)), (False, False, rng.integers(2, 8))]
    designs = [{"factor": str(rng.choice(_FACTORS[s])), "n_levels": int(n), "levels_are_sample": s,
                "levels_are_question": q} for s, q, n in kinds]
    return [Case((designs[i],), f"design {designs[i]}") for i in rng.permutation(len(designs))]


def _rule(d: dict) -> str:
    """The chapter's rule: random only for a sample of at least 4 levels that are not the question."""
    return "random" if d["levels_are_sample"] and not d["levels_are_question"] and d["n_levels"] >= 4 else "fixed"


_TEXT = "return exactly 'fixed' or 'random' (lower case, no extra words)."
_RANDOM = "the levels are a sample of a larger population, not the question: model their spread with a random effect."
register(FunctionCheck(
    part="ex2-fixed-or-random", points=1, function="fixed_or_random", seed=2303, draw=_draw_designs, reference=_rule,
    mistakes=[  # the rule with one of its conditions changed
        (lambda d: _rule({**d, "n_levels": d["n_levels"] - 1}),
         _RANDOM + " 4 levels are enough: the rule is random for at least 4 sampled levels (>= 4, not > 4)."),
        (lambda d: "fixed", _RANDOM),
        (lambda d: _rule({**d, "n_levels": 4}), "with fewer than 4 levels a variance cannot be estimated well: a "
         "random effect needs at least 4 levels, so treat the factor as fixed."),
        (lambda d: _rule({**d, "levels_are_question": False}),
         "when the differences between the levels are the question, the factor is fixed."),
        (lambda d: _rule({**d, "levels_are_sample": True}), "these levels are all the levels there are, not a sample "
         "from a larger population: a random effect would describe a population that does not exist."),
        *[(lambda d, f=f: f(_rule(d)), _TEXT) for f in (str.upper, str.title, lambda s: s + " effect")]],
    success="{function} decides fixed or random correctly for {n} designs the check drew."))


def _residual_sds(data, lm=lambda fit: np.sqrt(fit.scale), mixed=lambda fit: fit.sigma):
    """[lm's, lmer's (fit_4)] residual standard deviation, each as ``lm`` and ``mixed`` read it from the fit."""
    return np.array([lm(smf.ols("Reaction ~ 1 + Days", data=data).fit()), mixed(quiet_lmer(FIT_4, data))])


register(FunctionCheck(
    part="ex2-residual-sd", points=0.5, function="residual_sds", seed=2404, draw=_draw_sleep_subsets,
    reference=_residual_sds, tolerance=(1e-3, 1e-4),
    mistakes=[
        (lambda d: _residual_sds(d, lm=lambda f: np.std(f.resid)), "np.std of the lm residuals divides by n; the "
         "residual standard error divides the residual sum of squares by n − 2 (use np.sqrt(fit.scale))."),
        *[(lambda d, k=k: _residual_sds(d, mixed=lambda f: np.std(f.resid(), ddof=k)), "the SD of lmer's residuals is "
           "smaller than σ̂, which also counts the random effects' uncertainty: report fit.sigma.") for k in (0, 1)]],
    success="{function} gives the residual standard deviations (ms) of lm and lmer on {n} subsets the check drew."))


def _lrt(data, reml=False, df=None, sign=1.0, mix=(0.0, 1.0)):
    """[chisq, df, p] of anova(fit_2, fit_4) by ML or REML, or at another df, sign or mix of chi2(1), chi2(df) tails."""
    row = anova(quiet_lmer(FIT_2, data, reml), quiet_lmer(FIT_4, data, reml), refit=False).iloc[1]
    chisq, df = sign * row["Chisq"], row["Df"] if df is None else df
    return np.array([chisq, df, np.dot(mix, scipy.stats.chi2.sf(chisq, [1, df]))])


register(FunctionCheck(
    part="ex2-lrt", points=1, function="lrt_random_slopes", seed=2505, draw=_draw_sleep_subsets,
    reference=_lrt, valid=[lambda d: _lrt(d, reml=True)], tolerance=(2e-3, 1e-8),
    mistakes=[(lambda d: _lrt(d, df=1), "fit_4 has two more parameters than fit_2: the slope variance and the "
               "intercept–slope correlation, so the test has 2 degrees of freedom."),
              (lambda d: _lrt(d, sign=-1.0), "the statistic is deviance(fit_2) − deviance(fit_4), twice the gain in "
               "log-likelihood of the larger model: it is positive."),
              (lambda d: _lrt(d) * [1, 1, -1] + [0, 0, 1],
               "this is the lower tail (the cdf): the p-value is the upper tail, chi2.sf(chisq, df)."),
              *[(lambda d, mix=mix: _lrt(d, mix=mix), "you corrected p for the variance's boundary at 0 (the "
                 "question under 'To think about'); this part asks for p as lme4's anova reports it, "
                 "chi2.sf(chisq, 2).") for mix in ((0.0, 0.5), (0.5, 0.5))]],  # p halved; the chi2(1):chi2(2) mixture
    success="{function} gives lme4's likelihood-ratio test on {n} subsets the check drew."))
