"""Checks of exercise 2 (random effects): variance components of the formula ladder, their
reading in the data's units, fixed or random for a study design, residual sizes of lm and
lmer, and a likelihood-ratio test.

Every reference answer comes from ``course_lib.mixed.lmer`` (tested against lme4) or
statsmodels on inputs drawn here: subsets of the sleep study's subjects, numbers, and study
designs. No expected number is typed in.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.stats
import statsmodels.formula.api as smf

from course_lib.checks.legacy import (
    Case,
    CheckFailure,
    FunctionCheck,
    Returned,
    close_to,
    reference_cache,
    register,
)
from course_lib.datasets import load_sleepstudy
from course_lib.mixed import anova, lmer

FIT_2 = "Reaction ~ 1 + Days + (1 | Subject)"
FIT_4 = "Reaction ~ 1 + Days + (1 + Days | Subject)"


@reference_cache
def _lmer(formula: str, data: pd.DataFrame, REML: bool = True):  # noqa: N803
    # The check's own fits: a convergence message would only distract the student.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lmer(formula, data, REML=REML)


def _draw_sleep_subsets(rng: np.random.Generator, sizes=(8, 12, 18)) -> list[Case]:
    """Subsets of the sleep study's subjects (rows shuffled) for the ladder's fits."""
    sleep = load_sleepstudy()
    levels = list(sleep["Subject"].cat.categories)
    cases = []
    for k in sizes:
        while True:
            chosen = rng.choice(levels, size=k, replace=False)
            sub = sleep[sleep["Subject"].isin(chosen)].sample(frac=1.0, random_state=rng)
            sub = sub.assign(Subject=sub["Subject"].cat.remove_unused_categories())
            sub = sub.reset_index(drop=True)
            # keep subsets on which both mixed models converge cleanly (by REML and by ML, as
            # anova refits them), so that the reference is the optimum lme4 would report
            fits = [_lmer(FIT_2, sub, REML=reml) for reml in (True, False)]
            fits += [_lmer(FIT_4, sub, REML=reml) for reml in (True, False)]
            if all(f.max_abs_gradient < 1e-4 and not f.is_singular for f in fits):
                break
        cases.append(Case((sub,), f"{k} subjects of sleepstudy ({len(sub)} rows, shuffled)"))
    return cases


# ---------------------------------------------------------------------------------------
# ex2-variance-components: variance_components(data) -> [tau0, tau1, sigma]


def _sds(fit) -> np.ndarray:
    vc = fit.VarCorr
    return vc.loc[vc["var2"].isna(), "sdcor"].to_numpy()


def _fit4_sds(data):
    return _sds(_lmer(FIT_4, data))


def _variances(got: Returned, expected, args):
    if close_to(got, np.asarray(expected) ** 2, rtol=1e-3):
        return ("these are variances (the vcov column); the question asks for standard "
                "deviations, in ms and ms/day (the sdcor column).")


def _ml_fit(got: Returned, expected, args):
    if close_to(got, _sds(_lmer(FIT_4, args[0], REML=False)), rtol=1e-3):
        return "you fitted by maximum likelihood; lmer's default (and lme4's) is REML=True."


def _wrong_order(got: Returned, expected, args):
    e = np.asarray(expected)
    if got.array is not None and got.array.size == 3 and (
            close_to(got, e[[1, 0, 2]], rtol=1e-3) or close_to(got, e[::-1], rtol=1e-3)):
        return "return them in the order intercept (ms), slope (ms/day), residual (ms)."


def _intercept_only(got: Returned, expected, args):
    sds = _sds(_lmer(FIT_2, args[0]))
    if got.array is not None and got.array.size in (2, 3) and np.allclose(
            got.array.ravel()[[0, -1]], sds, rtol=1e-3):
        return ("these come from the random-intercept model (fit_2); fit_4 has a random "
                "intercept and a random slope: (1 + Days | Subject).")


register(
    FunctionCheck(
        part="ex2-variance-components", hidden=True,
        points=1,
        function="variance_components",
        draw=_draw_sleep_subsets,
        reference=_fit4_sds,
        tolerance=(1e-3, 1e-4), public="stored",
        diagnoses=[_variances, _ml_fit, _wrong_order, _intercept_only],
        seed=2101,
        success="{function} reads fit_4's standard deviations on {n} subsets the check drew.",
    )
)

# ---------------------------------------------------------------------------------------
# ex2-slope-range: typical_range(beta, tau) -> [low, high], the middle 95% of subjects


def _draw_slopes(rng: np.random.Generator) -> list[Case]:
    cases = []
    for _ in range(4):
        beta, tau = float(rng.uniform(-5, 20)), float(rng.uniform(1, 12))
        cases.append(Case((beta, tau), f"beta = {beta:.4g}, tau = {tau:.4g}"))
    return cases


def _typical_range(beta, tau):
    return beta + scipy.stats.norm.ppf([0.025, 0.975]) * tau


def _one_sd(got: Returned, expected, args):
    beta, tau = args
    if close_to(got, [beta - tau, beta + tau], rtol=1e-3):
        return "beta ± tau holds only about 68% of subjects; 95% lie within beta ± 1.96 tau."


def _sqrt_tau(got: Returned, expected, args):
    beta, tau = args
    if close_to(got, beta + scipy.stats.norm.ppf([0.025, 0.975]) * np.sqrt(tau), rtol=1e-3) \
            or close_to(got, beta + scipy.stats.norm.ppf([0.025, 0.975]) * tau ** 2, rtol=1e-3):
        return "tau is already a standard deviation (in the data's units): use it as it is."


def _around_zero(got: Returned, expected, args):
    beta, tau = args
    if close_to(got, scipy.stats.norm.ppf([0.025, 0.975]) * tau, rtol=1e-3):
        return "random effects are deviations from the population value: centre the range on beta."


register(
    FunctionCheck(
        part="ex2-slope-range", hidden=True,
        points=0.5,
        function="typical_range",
        draw=_draw_slopes,
        reference=_typical_range,
        tolerance=(1e-3, 1e-6), public="stored",
        diagnoses=[_one_sd, _sqrt_tau, _around_zero],
        seed=2202,
        success="{function} gives the middle 95% of the population on {n} inputs the check drew.",
    )
)

# ---------------------------------------------------------------------------------------
# ex2-fixed-or-random: fixed_or_random(design) -> "fixed" or "random"

#: Factors of neuroscience designs the check describes, with what their levels are.
_FACTORS = [
    ("site", "PET centres"), ("scanner", "MRI scanners"), ("subject", "participants"),
    ("mouse", "mice"), ("brain region", "regions"), ("electrode", "electrodes"),
    ("session", "recording sessions"), ("drug", "drug conditions"), ("hemisphere", "hemispheres"),
    ("litter", "litters"), ("genotype", "genotypes"), ("rater", "raters"),
]
_LABELS = {"fixed": 0.0, "random": 1.0}


def _rule(design: dict) -> str:
    """The chapter's rule: fixed when the levels are the question or are all there are, or
    when there are too few levels (< 4) to estimate a variance; random otherwise."""
    if design["levels_are_question"] or not design["levels_are_sample"]:
        return "fixed"
    return "random" if design["n_levels"] >= 4 else "fixed"


def _describe(d: dict) -> str:
    return (f"design {{factor: {d['factor']!r}, n_levels: {d['n_levels']}, "
            f"levels_are_sample: {d['levels_are_sample']}, "
            f"levels_are_question: {d['levels_are_question']}}}")


def _draw_designs(rng: np.random.Generator) -> list[Case]:
    # two designs of each kind, in a drawn order, so that every branch of the rule is tested,
    # and the rule's boundary: a sample of exactly 4 levels (random) and of 3 (fixed)
    kinds = ["question", "sample-many", "sample-few", "exhaustive", "question", "sample-4",
             "sample-3", "exhaustive"]
    cases = []
    for kind in rng.permutation(kinds):
        factor, _ = _FACTORS[int(rng.integers(len(_FACTORS)))]
        n_few, n_many = int(rng.integers(2, 4)), int(rng.integers(4, 40))
        n_few, n_many = {"sample-4": (n_few, 4), "sample-3": (3, n_many)}.get(str(kind), (n_few, n_many))
        kind = {"sample-4": "sample-many", "sample-3": "sample-few"}.get(str(kind), kind)
        design = {
            "question": {"levels_are_sample": bool(rng.integers(2)), "levels_are_question": True,
                         "n_levels": int(rng.integers(2, 12))},
            "sample-many": {"levels_are_sample": True, "levels_are_question": False,
                            "n_levels": n_many},
            "sample-few": {"levels_are_sample": True, "levels_are_question": False,
                           "n_levels": n_few},
            "exhaustive": {"levels_are_sample": False, "levels_are_question": False,
                           "n_levels": int(rng.integers(2, 8))},
        }[str(kind)]
        design = {"factor": factor, **design}
        cases.append(Case((design,), _describe(design)))
    return cases


def _label_reference(design):
    return np.array([_LABELS[_rule(design)], 1.0])


def _compare_label(got: Returned, expected, what: str) -> None:
    if got.array is None or got.array.shape != (2,):
        raise CheckFailure("the check's record of your result is malformed")
    code, is_text = got.array
    want = "fixed" if expected[0] == 0 else "random"
    if is_text == 0:
        raise CheckFailure(f"type: {what} should be the string 'fixed' or 'random', "
                           "got something that is not a string")
    if code not in (0.0, 1.0):
        raise CheckFailure(f"values: {what} should be 'fixed' or 'random', got another string")
    if code != expected[0]:
        raise CheckFailure(f"values: {what} should be '{want}', got "
                           f"'{'fixed' if code == 0 else 'random'}'")


def _few_levels(got: Returned, expected, args):
    d = args[0]
    if got.array[0] == 1.0 and d["levels_are_sample"] and not d["levels_are_question"] \
            and d["n_levels"] < 4:
        return (f"with only {d['n_levels']} levels a variance cannot be estimated well: a random "
                "effect needs at least 4 levels, so treat the factor as fixed.")


def _question(got: Returned, expected, args):
    d = args[0]
    if got.array[0] == 1.0 and d["levels_are_question"]:
        return "when the differences between the levels are the question, the factor is fixed."


def _exhaustive(got: Returned, expected, args):
    d = args[0]
    if got.array[0] == 1.0 and not d["levels_are_sample"] and not d["levels_are_question"]:
        return ("these levels are all the levels there are, not a sample from a larger "
                "population: a random effect would describe a population that does not exist.")


def _sampled(got: Returned, expected, args):
    d = args[0]
    if got.array[0] == 0.0 and expected[0] == 1.0 and d["n_levels"] == 4:
        return ("the 4 levels are a sample of a larger population and the question is "
                "elsewhere: model their spread with a random effect. 4 levels are enough: the "
                "rule is random for at least 4 sampled levels (n_levels >= 4, not > 4).")
    if got.array[0] == 0.0 and expected[0] == 1.0:
        return (f"the {d['n_levels']} levels are a sample of a larger population and the "
                "question is elsewhere: model their spread with a random effect.")


def _label_text(got: Returned, expected, args):
    if got.array[1] == 1.0 and got.array[0] not in (0.0, 1.0):
        return "return exactly 'fixed' or 'random' (lower case, no extra words)."


@dataclass
class LabelCheck(FunctionCheck):
    """A function check whose answer is a label: the student's string is encoded in the
    kernel as plain numbers, [code, is_text], before the judge sees it."""

    def collect(self, answer=None, *extra) -> dict:
        if not callable(answer):
            return super().collect(answer, *extra)

        def encoded(*args):
            out = answer(*args)
            if isinstance(out, str):
                return [_LABELS.get(out.strip().lower(), 2.0) if out == out.strip().lower()
                        else 2.0, 1.0]
            return [-1.0, 0.0]

        return super().collect(encoded, *extra)


register(
    LabelCheck(
        part="ex2-fixed-or-random", hidden=True,
        points=1,
        function="fixed_or_random",
        draw=_draw_designs,
        reference=_label_reference,
        compare=_compare_label,
        diagnoses=[_label_text, _few_levels, _question, _exhaustive, _sampled],
        seed=2303,
        success="{function} decides fixed or random correctly for {n} designs the check drew.",
    )
)

# ---------------------------------------------------------------------------------------
# ex2-residual-sd: residual_sds(data) -> [sigma of lm, sigma of lmer fit_4]


def _residual_sds(data):
    ols = smf.ols("Reaction ~ 1 + Days", data=data).fit()
    return np.array([np.sqrt(ols.scale), _lmer(FIT_4, data).sigma])


def _divided_by_n(got: Returned, expected, args):
    data = args[0]
    ols = smf.ols("Reaction ~ 1 + Days", data=data).fit()
    biased = np.sqrt(ols.ssr / len(data))
    if got.array is not None and got.array.size == 2 and np.isclose(
            got.array.ravel()[0], biased, rtol=1e-4):
        return ("np.std of the lm residuals divides by n; the residual standard error divides "
                "the residual sum of squares by n − 2 (use np.sqrt(fit.scale)).")


def _std_of_lmer_resid(got: Returned, expected, args):
    data = args[0]
    fit = _lmer(FIT_4, data)
    candidates = [fit.resid().std(ddof=0), fit.resid().std(ddof=1)]
    if got.array is not None and got.array.size == 2 and any(
            np.isclose(got.array.ravel()[1], c, rtol=1e-4) for c in candidates):
        return ("the standard deviation of lmer's residuals is smaller than σ̂, which also "
                "accounts for the random effects' uncertainty: report fit.sigma.")


def _swapped(got: Returned, expected, args):
    if close_to(got, np.asarray(expected)[::-1], rtol=1e-3):
        return "return the linear model's σ first, then the mixed model's."


register(
    FunctionCheck(
        part="ex2-residual-sd", hidden=True,
        points=0.5,
        function="residual_sds",
        draw=lambda rng: _draw_sleep_subsets(rng, sizes=(6, 10, 15)),
        reference=_residual_sds,
        tolerance=(1e-3, 1e-4), public="stored",
        diagnoses=[_swapped, _divided_by_n, _std_of_lmer_resid],
        seed=2404,
        success="{function} gives the residual standard deviations (ms) of lm and lmer on "
                "{n} subsets the check drew.",
    )
)

# ---------------------------------------------------------------------------------------
# ex2-lrt: lrt_random_slopes(data) -> [chisq, df, p] for fit_2 against fit_4


def _lrt(data):
    table = anova(_lmer(FIT_2, data), _lmer(FIT_4, data))
    row = table.iloc[1]
    return np.array([row["Chisq"], row["Df"], row["Pr(>Chisq)"]])


def _reml_lrt(data):
    """The REML likelihood-ratio test: valid here, since fit_2 and fit_4 have the same fixed
    effects (the chapter compares such models by their REML criteria)."""
    chisq = _lmer(FIT_2, data).REMLcrit - _lmer(FIT_4, data).REMLcrit
    return np.array([chisq, 2.0, scipy.stats.chi2.sf(chisq, 2)])


def _one_df(got: Returned, expected, args):
    e = np.asarray(expected)
    if got.array is not None and got.array.size == 3 and np.isclose(
            got.array.ravel()[1], 1.0) and np.isclose(got.array.ravel()[0], e[0], rtol=1e-3):
        return ("fit_4 has two more parameters than fit_2: the slope variance and the "
                "intercept–slope correlation, so the test has 2 degrees of freedom.")


register(
    FunctionCheck(
        part="ex2-lrt", hidden=True,
        points=1,
        function="lrt_random_slopes",
        draw=lambda rng: _draw_sleep_subsets(rng, sizes=(8, 12, 18)),
        reference=_lrt,
        tolerance=(2e-3, 1e-8), public="stored",
        diagnoses=[_one_df],
        valid=[_reml_lrt],
        seed=2505,
        success="{function} gives lme4's likelihood-ratio test on {n} subsets the check drew.",
    )
)
