"""The checks of exercises 2 and 3: right answers pass, each known mistake fails with its own
hint, and a label answer (fixed or random) is judged from plain data only.

The reference answers inside the checks come from course_lib.mixed.lmer and
course_lib.pooling; the "student" functions here are written independently (numpy, statsmodels,
lmer's accessors)."""

import json
import re

import numpy as np
import scipy.stats
import pytest
import statsmodels.formula.api as smf

from course_lib import checks
from course_lib.mixed import anova, lmer
from verdicts import assert_fails_with_hint, assert_full_points  # tests/verdicts.py

FIT_2 = "Reaction ~ 1 + Days + (1 | Subject)"
FIT_4 = "Reaction ~ 1 + Days + (1 + Days | Subject)"


# ---- exercise 2 ----------------------------------------------------------------------------

def variance_components(data, REML=True):  # noqa: N803
    vc = lmer(FIT_4, data, REML=REML).VarCorr
    return vc.loc[vc["var2"].isna(), "sdcor"].to_numpy()


def typical_range(beta, tau):
    return np.array([beta - 1.959964 * tau, beta + 1.959964 * tau])


def fixed_or_random(design):
    if design["levels_are_question"] or not design["levels_are_sample"]:
        return "fixed"
    return "random" if design["n_levels"] >= 4 else "fixed"


def residual_sds(data):
    ols = smf.ols("Reaction ~ 1 + Days", data=data).fit()
    return np.array([np.sqrt(ols.scale), lmer(FIT_4, data).sigma])


def lrt_random_slopes(data):
    row = anova(lmer(FIT_2, data), lmer(FIT_4, data)).iloc[1]
    return np.array([row["Chisq"], row["Df"], row["Pr(>Chisq)"]])


def lrt_from_reml(data):
    """The REML likelihood-ratio test: valid, since both models have the same fixed effects."""
    chisq = lmer(FIT_2, data).REMLcrit - lmer(FIT_4, data).REMLcrit
    return np.array([chisq, 2.0, scipy.stats.chi2.sf(chisq, 2)])


def fit2_sds(data):
    vc = lmer(FIT_2, data).VarCorr
    return vc["sdcor"].to_numpy()


# ---- exercise 3 ----------------------------------------------------------------------------

def shrinkage_factor(n, tau2, sigma2):
    n = np.asarray(n, dtype=float)
    return n * tau2 / (n * tau2 + sigma2)


def _groups(data, beta):
    r = data["Reaction"] - beta[0] - beta[1] * data["Days"]
    return r.groupby(data["Subject"], observed=True)


def ranef_by_hand(data, beta, tau2, sigma2):
    g = _groups(data, beta)
    return shrinkage_factor(g.size(), tau2, sigma2) * g.mean()


def predict_held_out(train, test, method):
    if method == "complete":
        b = smf.ols("Reaction ~ 1 + Days", data=train).fit().params
        return (b["Intercept"] + b["Days"] * test["Days"]).to_numpy()
    if method == "no":
        out = np.empty(len(test))
        for k, (subject, day) in enumerate(zip(test["Subject"], test["Days"])):
            rows = train[train["Subject"] == subject]
            slope, intercept = np.polyfit(rows["Days"], rows["Reaction"], 1)
            out[k] = intercept + slope * day
        return out
    return lmer(FIT_4, train).predict(test).to_numpy()



def _ranef_float32(d, b, t, s):
    """ranef_by_hand in float32 throughout: valid within float32's precision (ms near 300 are ~3e-5 apart)."""
    r = d["Reaction"].astype("float32") - np.float32(b[0]) - np.float32(b[1]) * d["Days"].astype("float32")
    groups = r.groupby(d["Subject"], observed=True)
    return np.float32(t) / (np.float32(t) + np.float32(s) / groups.size().astype("float32")) * groups.mean()

CORRECT = {
    "ex2-variance-components": variance_components,
    "ex2-slope-range": typical_range,
    "ex2-fixed-or-random": fixed_or_random,
    "ex2-residual-sd": residual_sds,
    "ex2-lrt": lrt_random_slopes,
    "ex3-shrinkage-factor": shrinkage_factor,
    "ex3-ranef-by-hand": ranef_by_hand,
    "ex3-predict-held-out": predict_held_out,
}

# (part, wrong answer, words the hint must contain)
MISTAKES = [
    ("ex2-variance-components", lambda d: variance_components(d) ** 2, "these are variances"),
    ("ex2-variance-components", lambda d: variance_components(d, REML=False), "maximum likelihood"),
    ("ex2-variance-components", lambda d: variance_components(d)[::-1], "wrong order"),
    ("ex2-variance-components", lambda d: np.insert(fit2_sds(d), 1, 0.0), "random-intercept model"),
    ("ex2-slope-range", lambda b, t: np.array([b - t, b + t]), "68%"),
    ("ex2-slope-range", lambda b, t: typical_range(b, np.sqrt(t)), "already a standard deviation"),
    ("ex2-slope-range", lambda b, t: typical_range(0.0, t), "centre the range on beta"),
    ("ex2-slope-range", lambda b, t: (b - 2 * t, b + 2 * t), "rule of thumb"),
    ("ex2-slope-range", lambda b, t: np.array([b - 1.645 * t, b + 1.645 * t]), "middle 90%"),
    ("ex2-fixed-or-random",
     lambda d: "random" if d["levels_are_sample"] and not d["levels_are_question"] else "fixed",
     "at least 4 levels"),
    ("ex2-fixed-or-random",
     lambda d: "random" if d["levels_are_sample"] and d["n_levels"] >= 4 else "fixed",
     "differences between the levels are the question"),
    ("ex2-fixed-or-random",
     lambda d: "fixed" if d["levels_are_question"] or d["n_levels"] < 4 else "random",
     "not a sample"),
    ("ex2-fixed-or-random", lambda d: "fixed", "sample of a larger population"),
    ("ex2-fixed-or-random", lambda d: fixed_or_random(d).upper(), "exactly 'fixed' or 'random'"),
    ("ex2-residual-sd", lambda d: residual_sds(d)[::-1], "wrong order"),
    ("ex2-residual-sd",
     lambda d: np.array([smf.ols("Reaction ~ 1 + Days", data=d).fit().resid.std(ddof=0),
                         lmer(FIT_4, d).sigma]), "n − 2"),
    ("ex2-residual-sd",
     lambda d: np.array([residual_sds(d)[0], lmer(FIT_4, d).resid().std()]), "fit.sigma"),
    ("ex2-fixed-or-random",  # the boundary: 4 levels are enough
     lambda d: "fixed" if d["levels_are_question"] or not d["levels_are_sample"] or d["n_levels"] <= 4
     else "random", "at least 4 sampled levels"),
    ("ex2-lrt", lambda d: np.array([lrt_random_slopes(d)[0], 1.0, scipy.stats.chi2.sf(lrt_random_slopes(d)[0], 1)]),
     "2 degrees of freedom"),
    ("ex2-lrt", lambda d: (lambda c: np.array([c, 2, scipy.stats.chi2.sf(c, 2)]))(-lrt_random_slopes(d)[0]),
     "it is positive"),  # fit_4's deviance minus fit_2's
    ("ex2-lrt", lambda d: np.abs(lrt_random_slopes(d) - np.array([0, 0, 1])), "upper tail"),  # the cdf, not sf
    ("ex2-variance-components", lambda d: lmer(FIT_4, d).VarCorr["sdcor"].to_numpy(), "correlation"),
    ("ex2-lrt", lambda d: lrt_random_slopes(d) * [1, 1, 0.5], "boundary"),  # p halved
    ("ex2-lrt", lambda d: (lambda c: np.array([c, 2, (scipy.stats.chi2.sf(c, 1) + scipy.stats.chi2.sf(c, 2)) / 2]))(
        lrt_random_slopes(d)[0]), "boundary"),  # the 50:50 mixture of chi2(1) and chi2(2)
    ("ex2-slope-range", lambda b, t: np.array([b - 2.576 * t, b + 2.576 * t]), ""),  # the middle 99%
    ("ex2-residual-sd", lambda d: np.array([np.sqrt(smf.ols("Reaction ~ 1 + Days", data=d).fit().scale),
                                            lmer(FIT_2, d).sigma]), ""),  # sigma of fit_2
    ("ex2-lrt", lambda d: np.array([lrt_random_slopes(d)[0] / 2, 2.0, scipy.stats.chi2.sf(lrt_random_slopes(d)[0] / 2, 2)]),
     ""),  # the log-likelihood difference, not twice it
    ("ex3-shrinkage-factor", lambda n, t, s: 1 - shrinkage_factor(n, t, s), "1 − w"),
    ("ex3-shrinkage-factor", lambda n, t, s: shrinkage_factor(np.ones(np.shape(n)), t, s),
     "sigma2 / n"),
    ("ex3-shrinkage-factor", lambda n, t, s: shrinkage_factor(n, t ** 2, s ** 2),
     "already variances"),
    ("ex3-ranef-by-hand", lambda d, b, t, s: _groups(d, b).mean(), "raw mean residuals"),
    ("ex3-ranef-by-hand",
     lambda d, b, t, s: (1 - shrinkage_factor(_groups(d, b).size(), t, s)) * _groups(d, b).mean(),
     "n_j that subject's number of rows"),
    ("ex3-ranef-by-hand", lambda d, b, t, s: -ranef_by_hand(d, b, t, s), "opposite sign"),
    ("ex3-ranef-by-hand", lambda d, b, t, s: d["Reaction"] - b[0] - b[1] * d["Days"],
     "not one per row"),
    ("ex3-predict-held-out",
     lambda tr, te, m: lmer(FIT_4, tr).predict(te, re_form="NA").to_numpy() if m == "partial"
     else predict_held_out(tr, te, m), "fixed effects only"),
    ("ex3-predict-held-out", lambda tr, te, m: predict_held_out(tr, te, "complete"),
     "'complete' pooling predictions"),
    ("ex3-predict-held-out",
     lambda tr, te, m: np.sort(predict_held_out(tr, te, m)), "wrong order"),
    # complete pooling as lmer's fixed effects: the least-squares line only where the training data are balanced
    ("ex3-predict-held-out", lambda tr, te, m: lmer(FIT_4, tr).predict(te, re_form="NA").to_numpy()
     if m == "complete" else predict_held_out(tr, te, m), ""),
    # lmer's own random intercepts, refitted: right only where the arguments are the fit's estimates
    ("ex3-ranef-by-hand", lambda d, b, t, s: lmer(FIT_2, d).ranef["Subject"]["(Intercept)"], "not by refitting"),
]


@pytest.mark.parametrize("part", sorted(CORRECT))
def test_correct_answer_gets_full_points(part):
    assert_full_points(part, CORRECT[part])


# valid alternatives: another method, another valid convention, another type
VALID = [
    ("ex2-lrt", lrt_from_reml),
    ("ex2-lrt", lambda d: list(lrt_random_slopes(d))),
    ("ex2-fixed-or-random",
     lambda d: "random" if d["levels_are_sample"] and not d["levels_are_question"]
     and d["n_levels"] > 3 else "fixed"),
    ("ex2-slope-range", lambda b, t: [b - 1.959964 * t, b + 1.959964 * t]),
    ("ex2-slope-range", lambda b, t: scipy.stats.norm(b, t).interval(0.95)),
    ("ex2-fixed-or-random", lambda d: ["fixed", "random"][int(
        bool(d["levels_are_sample"]) and not d["levels_are_question"] and d["n_levels"] >= 4)]),
    ("ex2-variance-components", lambda d: list(variance_components(d))),
    ("ex2-variance-components", lambda d: np.sqrt(
        lmer(FIT_4, d).VarCorr.query("var2 != var2")["vcov"].to_numpy())),
    ("ex2-residual-sd", lambda d: list(residual_sds(d))),
    ("ex2-residual-sd", lambda d: np.array([
        np.sqrt(np.sum(smf.ols("Reaction ~ Days", data=d).fit().resid ** 2) / (len(d) - 2)),
        lmer(FIT_4, d).sigma])),
    ("ex3-shrinkage-factor", lambda n, t, s: 1 / (1 + s / (t * np.asarray(n, dtype=float)))),
    ("ex3-shrinkage-factor", lambda n, t, s: np.asarray(shrinkage_factor(n, t, s), dtype=np.float32)),
    ("ex3-ranef-by-hand", lambda d, b, t, s: ranef_by_hand(d, b, t, s).sort_index(ascending=False)),
    ("ex3-ranef-by-hand", lambda d, b, t, s: _groups(d, b).sum() * t / (_groups(d, b).size() * t + s)),
    ("ex3-ranef-by-hand", lambda d, b, t, s: _ranef_float32(d, b, t, s)),
    ("ex3-predict-held-out", lambda tr, te, m: list(predict_held_out(tr, te, m))),
    ("ex3-predict-held-out", lambda tr, te, m: predict_held_out(tr, te, m).astype(np.float32)),
]


def test_every_check_of_exercises_2_and_3_has_three_wrong_answers_and_two_valid_ones():
    for part in CORRECT:
        assert sum(m[0] == part for m in MISTAKES) >= 3, part
        assert sum(v[0] == part for v in VALID) >= 2, part


@pytest.mark.parametrize("part,answer", VALID)
def test_valid_alternative_gets_full_points(part, answer):
    assert_full_points(part, answer)


@pytest.mark.parametrize("part,wrong,hint_words", MISTAKES)
def test_known_mistake_fails_with_specific_hint(part, wrong, hint_words):
    assert_fails_with_hint(part, wrong, hint_words)


def test_points_of_exercises_2_and_3():
    table = checks.list_checks()
    assert table.loc[[p for p in table.index if p.startswith("ex2-")], "points"].sum() == 4
    assert table.loc[[p for p in table.index if p.startswith("ex3-")], "points"].sum() == 3.5


def test_a_label_that_is_not_a_string_fails_saying_what_came_back():
    verdict = checks.run("ex2-fixed-or-random", lambda d: 1)
    assert verdict.status == "failed" and verdict.points == 0
    assert re.search(r"should be '(fixed|random)', got an array", verdict.message), verdict.message


def test_label_stub_reports_not_implemented():
    def stub(design):
        raise NotImplementedError("ex2-fixed-or-random: replace this line with your solution")

    verdict = checks.run("ex2-fixed-or-random", stub)
    assert verdict.status == "not-implemented"
    assert checks.run("ex2-fixed-or-random", "fixed").message == (
        "fixed_or_random should be a function, got str")


def test_label_judge_rebuilds_the_verdict_from_plain_json():
    chk = checks.get_check("ex2-fixed-or-random")
    collected = json.loads(json.dumps(chk.collect(fixed_or_random)))
    assert chk.judge(collected).passed
    for label in ("fixed", "random"):  # a forged record of one label for every design fails
        assert not chk.judge({"outputs": [{"kind": "text", "value": label}] * 8}).passed
    assert not chk.judge({"outputs": [{"kind": "array", "shape": [2], "values": [1.0, 1.0]}] * 8}).passed


def test_an_answer_that_is_always_fixed_is_told_so_not_blamed_for_the_4_level_boundary_on_any_seed():
    for seed in (None, *range(20)):
        verdict = checks.run("ex2-fixed-or-random", lambda d: "fixed", seed=seed)
        assert verdict.status == "failed" and "sample of a larger population" in verdict.hint, (seed, verdict)
        assert "4 levels are enough" not in verdict.hint, (seed, verdict)


def test_a_rule_with_a_condition_inverted_gets_no_misleading_hint():
    def inverted(d):  # random when the levels ARE the question
        return "random" if d["levels_are_sample"] and d["levels_are_question"] and d["n_levels"] >= 4 else "fixed"

    for seed in (None, *range(10)):
        verdict = checks.run("ex2-fixed-or-random", inverted, seed=seed)
        assert verdict.status == "failed" and verdict.hint == "", (seed, verdict)


def test_held_out_predictions_by_index_label_fail_where_labels_are_not_positions():
    def by_label(train, test, method):  # test.loc[k] for k in range(len(test)): labels taken for positions
        pred = predict_held_out(train, test, method)
        return np.array([pred[test.index.get_loc(k)] if k in test.index else np.nan for k in range(len(test))])

    assert checks.run("ex3-predict-held-out", by_label).status == "failed"


def test_shrinkage_factor_of_a_list_as_the_notebook_passes_it_gets_a_hint():
    verdict = checks.run("ex3-shrinkage-factor", lambda n, tau2, sigma2: tau2 / (tau2 + sigma2 / n))
    assert verdict.status == "error" and "np.asarray(n)" in verdict.hint, verdict


def test_drawn_designs_cover_every_branch_of_the_rule():
    cases = checks.get_check("ex2-fixed-or-random").for_seed(99).cases()
    designs = [c.args[0] for c in cases]
    assert any(d["levels_are_question"] for d in designs)
    assert any(not d["levels_are_sample"] and not d["levels_are_question"] for d in designs)
    assert any(d["levels_are_sample"] and not d["levels_are_question"] and d["n_levels"] < 4
               for d in designs)
    assert {fixed_or_random(d) for d in designs} == {"fixed", "random"}
    sampled = [d["n_levels"] for d in designs if d["levels_are_sample"] and not d["levels_are_question"]]
    assert 3 in sampled and 4 in sampled  # both sides of the rule's boundary, on every seed


def test_checks_draw_only_converged_subsets():
    # the reference must be the optimum lme4 reports: no convergence warning in any draw
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for part in ("ex2-variance-components", "ex2-lrt", "ex3-ranef-by-hand"):
            for case in checks.get_check(part).cases():
                lmer(FIT_4 if part.startswith("ex2") else FIT_2, case.args[0])


#: A plausible wrong answer per part, run in the student tree's notebook, and words of its hint
#: there (tests/test_release.py).
WRONG_IN_TREE = {
    "ex2-variance-components": ("def variance_components(data):\n"
                                "    vc = lmer('Reaction ~ 1 + Days + (1 + Days | Subject)', data).VarCorr\n"
                                "    return vc.loc[vc['var2'].isna(), 'vcov'].to_numpy()\n", "these are variances"),
    "ex2-slope-range": ("def typical_range(beta, tau):\n"
                        "    return np.array([beta - tau, beta + tau])\n", "68%"),
    "ex2-fixed-or-random": ("def fixed_or_random(design):\n"
                            "    sampled = design['levels_are_sample'] and not design['levels_are_question']\n"
                            "    return 'random' if sampled and design['n_levels'] > 4 else 'fixed'\n",
                            "at least 4 sampled levels"),
    "ex2-residual-sd": ("def residual_sds(data):\n"
                        "    ols = smf.ols('Reaction ~ 1 + Days', data=data).fit()\n"
                        "    mixed = lmer('Reaction ~ 1 + Days + (1 + Days | Subject)', data)\n"
                        "    return np.array([np.std(ols.resid), mixed.sigma])\n", "n − 2"),
    "ex2-lrt": ("def lrt_random_slopes(data):\n"
                "    from scipy import stats\n"
                "    row = anova(lmer('Reaction ~ 1 + Days + (1 | Subject)', data),\n"
                "                lmer('Reaction ~ 1 + Days + (1 + Days | Subject)', data)).iloc[1]\n"
                "    return np.array([row['Chisq'], 1, stats.chi2.sf(row['Chisq'], 1)])\n", "2 degrees of freedom"),
    "ex3-shrinkage-factor": ("def shrinkage_factor(n, tau2, sigma2):\n"
                             "    return 1 - tau2 / (tau2 + sigma2 / np.asarray(n))\n", "1 − w"),
    "ex3-ranef-by-hand": ("def ranef_by_hand(data, beta, tau2, sigma2):\n"
                          "    r = data['Reaction'] - beta[0] - beta[1] * data['Days']\n"
                          "    return r.groupby(data['Subject'].astype(str), observed=True).mean()\n",
                          "raw mean residuals"),
    "ex3-predict-held-out": ("def predict_held_out(train, test, method):\n"
                             "    from course_lib import pooling\n"
                             "    return pooling.predict_held_out(train, test)['complete'].to_numpy()\n",
                             "'complete' pooling predictions"),
}
