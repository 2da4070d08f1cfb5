"""Tests of course_lib.mixed: lmer's numbers against lme4, its formula syntax, its errors.

Reference numbers come from tests/reference/lme4_reference.json, written by
tests/reference/lme4_reference.R (R 4.2.2, lme4 1.1-31, nlme 3.1-162; every entry records
its R call and the file's "meta" block the versions and the tight optimiser control). The
tests do not need R. Simulated data name their true parameters.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from course_lib import mixed
from course_lib.datasets import load_machines, load_pixel, load_sleepstudy
from course_lib.mixed import anova, lmer, parse_formula
from course_lib.mixed.frame import _Design

REFERENCE = json.loads(
    (Path(__file__).parent / "reference" / "lme4_reference.json").read_text(encoding="utf-8"))
FITS = REFERENCE["fits"]

# 4 significant digits is the promise; the fits agree to ~2e-6 (the reference itself is
# converged to ~3e-6, see meta.cross_optimizer_max_rel_diff), so test a little tighter.
RTOL = 5e-5


@pytest.fixture(scope="module")
def data():
    return {"sleepstudy": load_sleepstudy(), "Pixel": load_pixel(),
            "Machines": load_machines()}


@pytest.fixture(scope="module")
def fits(data):
    """Every reference model fitted once; any warning (convergence, singular) fails."""
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for key, ref in FITS.items():
            out[key] = lmer(ref["formula"], data[ref["data"]], REML=ref["REML"])
    return out


def _varcorr_records(frame: pd.DataFrame) -> list[tuple]:
    return [tuple(None if pd.isna(v) else v for v in row)
            for row in frame[["grp", "var1", "var2"]].itertuples(index=False)]


# --------------------------------------------------------------------------------------------
# Numbers against lme4
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("key", list(FITS))
def test_fixef_names_order_and_values_match_lme4(fits, key):
    fit, ref = fits[key], FITS[key]
    assert list(fit.fixef.index) == ref["fixef_names"], ref["call"]
    expected = pd.Series(ref["fixef"])[ref["fixef_names"]]
    np.testing.assert_allclose(fit.fixef, expected, rtol=RTOL, err_msg=ref["call"])


@pytest.mark.parametrize("key", list(FITS))
def test_fixef_standard_errors_match_lme4(fits, key):
    fit, ref = fits[key], FITS[key]
    expected = pd.Series(ref["fixef_se"])[ref["fixef_names"]]
    np.testing.assert_allclose(fit.fixef_se, expected, rtol=RTOL, err_msg=ref["call"])


@pytest.mark.parametrize("key", list(FITS))
def test_varcorr_layout_matches_lme4_as_data_frame(fits, key):
    fit, ref = fits[key], FITS[key]
    assert list(fit.VarCorr.columns) == ["grp", "var1", "var2", "vcov", "sdcor"]
    expected = [(r["grp"], r["var1"], r["var2"]) for r in ref["varcorr"]]
    assert _varcorr_records(fit.VarCorr) == expected, ref["call"]
    assert fit.varcorr is fit.VarCorr


@pytest.mark.parametrize("key", list(FITS))
def test_variance_components_and_sigma_match_lme4(fits, key):
    fit, ref = fits[key], FITS[key]
    np.testing.assert_allclose(fit.VarCorr["vcov"], [r["vcov"] for r in ref["varcorr"]],
                               rtol=RTOL, err_msg=ref["call"])
    np.testing.assert_allclose(fit.VarCorr["sdcor"], [r["sdcor"] for r in ref["varcorr"]],
                               rtol=RTOL, err_msg=ref["call"])
    assert fit.sigma == pytest.approx(ref["sigma"], rel=RTOL)
    np.testing.assert_allclose(fit.theta, ref["theta"], rtol=RTOL, atol=1e-6)


@pytest.mark.parametrize("key", list(FITS))
def test_likelihood_and_information_criteria_match_lme4(fits, key):
    fit, ref = fits[key], FITS[key]
    assert fit.logLik == pytest.approx(ref["logLik"], rel=1e-8)
    assert fit.n_par == ref["df"]
    assert fit.AIC == pytest.approx(ref["AIC"], rel=1e-8)
    assert fit.BIC == pytest.approx(ref["BIC"], rel=1e-8)
    if ref["REML"]:
        assert fit.REMLcrit == pytest.approx(ref["REMLcrit"], rel=1e-8)
    else:
        assert fit.deviance == pytest.approx(ref["deviance"], rel=1e-8)
    assert fit.nobs == ref["nobs"]
    assert fit.ngrps == ref["ngrps"]
    assert list(fit.ngrps) == list(ref["ngrps"])  # lme4's order: most levels first


def test_fit4_reproduces_the_curriculum_variance_table(fits):
    # chapter 2's table (lme4, REML): 612.10 / 24.741, 35.07 / 5.922, residual 654.94 / 25.592
    vc = fits["sleep_correlated_reml"].VarCorr
    variances = vc[vc["var2"].isna()]

    def sig4(x):
        return float(f"{x:.4g}")

    assert [sig4(v) for v in variances["vcov"]] == [sig4(612.10), sig4(35.07), sig4(654.94)]
    assert [sig4(v) for v in variances["sdcor"]] == [sig4(24.741), sig4(5.922), sig4(25.592)]


def test_ranef_and_coef_match_lme4(fits):
    ref = REFERENCE["ranef"]
    fit = fits[ref["model"]]
    ranef = fit.ranef[ref["grp"]]
    assert list(ranef.index) == ref["levels"]
    assert list(ranef.columns) == ref["columns"]
    expected = pd.DataFrame(ref["ranef"], index=ref["levels"])[ref["columns"]]
    np.testing.assert_allclose(ranef, expected, rtol=1e-4, atol=1e-5)
    coef = fit.coef[ref["grp"]]
    np.testing.assert_allclose(coef, pd.DataFrame(ref["coef"], index=ref["levels"]),
                               rtol=1e-5)


def test_ranef_of_nested_machines_model_match_lme4_by_level(fits):
    fit = fits["machines_interaction_reml"]
    assert list(fit.ranef) == list(REFERENCE["ranef_machines"])
    for grp, expected in REFERENCE["ranef_machines"].items():
        got = fit.ranef[grp]["(Intercept)"]
        assert sorted(got.index) == sorted(expected)
        np.testing.assert_allclose(got[list(expected)], list(expected.values()), rtol=1e-4,
                                   atol=1e-6)


def test_uncorrelated_terms_on_one_factor_merge_in_ranef(fits):
    ranef = fits["sleep_uncorrelated_reml"].ranef
    assert list(ranef) == ["Subject"]
    assert list(ranef["Subject"].columns) == ["(Intercept)", "Days"]


def test_fitted_residuals_and_predictions_match_lme4(fits, data):
    ref = REFERENCE["predictions"]
    fit = fits["sleep_correlated_reml"]
    np.testing.assert_allclose(fit.fitted, ref["fitted"], rtol=1e-7)
    np.testing.assert_allclose(fit.resid(), ref["resid"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fit.resid(scaled=True), ref["resid_scaled"], rtol=1e-5,
                               atol=1e-6)
    newdata = pd.DataFrame({"Days": ref["newdata_Days"], "Subject": ref["newdata_Subject"]})
    np.testing.assert_allclose(fit.predict(newdata, re_form="NA"), ref["predict_population"],
                               rtol=1e-8)
    np.testing.assert_allclose(fit.predict(newdata, re_form=np.nan),
                               ref["predict_population"], rtol=1e-8)
    np.testing.assert_allclose(fit.predict(newdata.iloc[:3]), ref["predict_subject_308"],
                               rtol=1e-7)
    np.testing.assert_allclose(fit.predict(), fit.fitted, rtol=1e-12)
    # a new subject gets the population line only when asked for
    with_new = fit.predict(newdata, allow_new_levels=True)
    np.testing.assert_allclose(with_new.iloc[3:], ref["predict_population"][3:], rtol=1e-8)


@pytest.mark.parametrize("pair", list(REFERENCE["anova"]))
def test_anova_refits_with_ml_and_matches_lme4(fits, pair):
    ref = REFERENCE["anova"][pair]
    keys = {"sleep": ("sleep_intercept_reml", "sleep_correlated_reml"),
            "machines": ("machines_reml", "machines_interaction_reml")}[pair]
    # given in reverse order: anova sorts by the number of parameters, as lme4 does
    table = anova(fits[keys[1]], fits[keys[0]], names=["big", "small"])
    assert list(table.columns) == ref["columns"]
    assert list(table.index) == ["small", "big"]
    for row, expected in zip(table.to_dict("records"), ref["rows"], strict=True):
        for col in ref["columns"]:
            if expected[col] is None:
                assert np.isnan(row[col]), (ref["call"], col)
            else:
                assert row[col] == pytest.approx(expected[col], rel=1e-6), (ref["call"], col)


# --------------------------------------------------------------------------------------------
# Formula syntax
# --------------------------------------------------------------------------------------------

def test_slope_term_without_intercept_means_correlated_intercept_and_slope(data, fits):
    fit = lmer("Reaction ~ Days + (Days | Subject)", data["sleepstudy"])
    np.testing.assert_allclose(fit.VarCorr["vcov"], fits["sleep_correlated_reml"].VarCorr["vcov"],
                               rtol=1e-6)


def test_double_bar_means_uncorrelated_terms(data):
    fit = lmer("Reaction ~ 1 + Days + (1 + Days || Subject)", data["sleepstudy"])
    ref = FITS["sleep_uncorrelated_reml"]
    np.testing.assert_allclose(fit.VarCorr["vcov"], [r["vcov"] for r in ref["varcorr"]],
                               rtol=RTOL)


def test_nesting_slash_equals_interaction_term_named_inner_first_as_lme4(data):
    # lme4 1.1-31: lmer(score ~ Machine + (1 | Worker/Machine), Machines) is the model
    # (1 | Worker) + (1 | Worker:Machine), and names the nested term "Machine:Worker"
    # (lme4's expandSlash), its levels "A:1", ..., e.g. in as.data.frame(VarCorr(.))$grp.
    fit = lmer("score ~ Machine + (1 | Worker/Machine)", data["Machines"])
    ref = FITS["machines_interaction_reml"]
    renamed = {"Worker:Machine": "Machine:Worker"}
    assert _varcorr_records(fit.VarCorr) == [(renamed.get(r["grp"], r["grp"]), r["var1"], r["var2"])
                                            for r in ref["varcorr"]]
    assert "A:1" in fit.ranef["Machine:Worker"].index
    np.testing.assert_allclose(fit.VarCorr["vcov"], [r["vcov"] for r in ref["varcorr"]],
                               rtol=RTOL)


def test_caret_inside_I_is_a_power_not_xor():
    parsed = parse_formula("pixel ~ day + I(day^2) + (day | Dog) + (1 | Side:Dog)")
    assert "I(day**2)" in parsed.fixed
    assert [str(t) for t in parsed.random] == ["(day | Dog)", "(1 | Side:Dog)"]
    pixel = load_pixel()
    design, X = _Design.build(parsed.fixed, pixel)
    assert design.names == ["(Intercept)", "day", "I(day^2)"]
    np.testing.assert_array_equal(X[:, 2], pixel["day"].to_numpy() ** 2)


@pytest.mark.parametrize("case", REFERENCE["design_names"], ids=lambda c: c["rhs"])
def test_fixed_effect_names_and_order_match_r_model_matrix(data, case):
    design, X = _Design.build(case["rhs"].replace("^", "**"), data[case["data"]])
    assert design.names == case["names"], case["call"]
    assert X.shape[1] == len(case["names"])


def test_interaction_columns_hold_the_named_product():
    machines = load_machines()
    design, X = _Design.build("Machine * Worker", machines)
    column = X[:, design.names.index("MachineC:Worker4")]
    expected = (machines["Machine"] == "C") & (machines["Worker"] == "4")
    np.testing.assert_array_equal(column, expected.to_numpy(dtype=float))


def test_parse_formula_reads_intercept_removal_and_leading_minus():
    assert parse_formula("y ~ x - 1 + (1 | g)").fixed == "0 + x"
    assert parse_formula("y ~ -1 + x + (1 | g)").fixed == "0 + x"
    assert parse_formula("y ~ (1 | g)").fixed == "1"
    assert parse_formula("y ~ 1e-3 * x + (1|g)").fixed == "1e-3 * x"


def test_crossed_random_effects_recover_simulated_parameters():
    # true values: beta = (2.0, 0.5), sd(subject) = 1.5, sd(item) = 1.0, sigma = 0.7
    rng = np.random.default_rng(20241125)
    n_subj, n_item = 30, 20
    subj = np.repeat(np.arange(n_subj), n_item)
    item = np.tile(np.arange(n_item), n_subj)
    x = rng.normal(size=subj.size)
    y = (2.0 + 0.5 * x + rng.normal(0, 1.5, n_subj)[subj] + rng.normal(0, 1.0, n_item)[item]
         + rng.normal(0, 0.7, subj.size))
    frame = pd.DataFrame({"y": y, "x": x, "subject": [f"s{k}" for k in subj],
                          "item": [f"i{k}" for k in item]})
    fit = lmer("y ~ 1 + x + (1 | subject) + (1 | item)", frame)
    assert list(fit.VarCorr["grp"]) == ["subject", "item", "Residual"]
    z = (fit.fixef - [2.0, 0.5]) / fit.fixef_se
    assert np.all(np.abs(z) < 3), f"fixed effects {fit.fixef.to_dict()} off by z = {z}"
    sd = dict(zip(fit.VarCorr["grp"], fit.VarCorr["sdcor"], strict=True))
    assert sd["subject"] == pytest.approx(1.5, rel=0.35)
    assert sd["item"] == pytest.approx(1.0, rel=0.40)
    assert sd["Residual"] == pytest.approx(0.7, rel=0.08)
    # the ranef are shrunk towards zero but track the truth's ordering
    assert len(fit.ranef["subject"]) == n_subj and len(fit.ranef["item"]) == n_item


# --------------------------------------------------------------------------------------------
# Summary, laziness, convergence
# --------------------------------------------------------------------------------------------

def test_summary_prints_lme4_blocks_in_lme4_order(fits, capsys):
    summary = fits["sleep_correlated_reml"].summary()
    assert capsys.readouterr().out == ""  # returns an object, prints nothing itself
    text = str(summary)
    blocks = ["Linear mixed model fit by REML", "Formula: Reaction ~ 1 + Days + (1 + Days | "
              "Subject)", "REML criterion at convergence: 1743.6", "Scaled residuals:",
              "Random effects:", "Number of obs: 180, groups:  Subject, 18", "Fixed effects:",
              "Correlation of Fixed Effects:"]
    positions = [text.index(b) for b in blocks]
    assert positions == sorted(positions)
    assert "612.09" in text and "24.740" in text and "0.07" in text
    assert "251.405" in text and "6.825" in text


def test_ml_summary_shows_information_criteria(fits):
    text = str(fits["sleep_correlated_ml"].summary())
    assert "fit by maximum likelihood" in text
    assert "1763.9" in text and "1751.9" in text  # AIC and deviance, as lme4 prints them


def test_fit_computes_summaries_lazily(data):
    fit = lmer("Reaction ~ 1 + Days + (1 + Days | Subject)", data["sleepstudy"])
    lazy = ["_pls", "VarCorr", "ranef", "fixef_se", "vcov", "fitted", "logLik"]
    assert not [name for name in lazy if name in fit.__dict__]


def test_unconverged_fit_warns_with_gradient_and_tolerance(data, monkeypatch):
    monkeypatch.setitem(mixed.fit.OPTIMIZER, "maxeval", 8)
    with pytest.warns(ConvergenceWarning, match=r"max \|gradient\| .* \(tolerance 0.002\)"):
        lmer("Reaction ~ 1 + Days + (1 + Days | Subject)", data["sleepstudy"])


#: lme4::Dyestuff2 (Box & Tiao 1973): yields of 6 batches, 5 each, whose batch variance is
#: estimated as zero. lme4 1.1-31 (R 4.2.2), lmer(Yield ~ 1 + (1 | Batch), Dyestuff2,
#: control = lmerControl(optimizer = "bobyqa", optCtrl = list(rhoend = 1e-12))) prints only
#: "boundary (singular) fit" and gives these numbers.
DYESTUFF2 = pd.DataFrame({
    "Batch": list("AAAAABBBBBCCCCCDDDDDEEEEEFFFFF"),
    "Yield": [7.298, 3.846, 2.434, 9.566, 7.99, 5.22, 6.556, 0.608, 11.788, -0.892, 0.11, 10.386,
              13.434, 5.51, 8.166, 2.212, 4.852, 7.092, 9.288, 4.98, 0.282, 9.014, 4.458, 9.446,
              7.198, 1.722, 4.782, 8.106, 0.758, 3.758],
})
DYESTUFF2_LME4 = {True: {"fixef": 5.6656, "se": 0.678388031232524, "sigma2": 13.8063096275862,
                         "logLik": -80.9141389061442},
                  False: {"fixef": 5.6656, "se": 0.666985739644326, "sigma2": 13.3460993066667,
                          "logLik": -81.4365183269129}}


@pytest.mark.parametrize("reml", [True, False])
def test_boundary_fit_warns_only_that_it_is_singular_and_matches_lme4(reml):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = lmer("Yield ~ 1 + (1 | Batch)", DYESTUFF2, REML=reml)
    messages = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert len(messages) == 1 and "boundary (singular) fit" in messages[0], messages
    assert fit.is_singular
    want = DYESTUFF2_LME4[reml]
    vc = fit.VarCorr
    assert vc["vcov"].iloc[0] == pytest.approx(0.0, abs=1e-6)
    assert vc["vcov"].iloc[-1] == pytest.approx(want["sigma2"], rel=1e-6)
    assert fit.fixef.iloc[0] == pytest.approx(want["fixef"], rel=1e-9)
    assert fit.fixef_se.iloc[0] == pytest.approx(want["se"], rel=1e-6)
    assert fit.logLik == pytest.approx(want["logLik"], rel=1e-8)


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("formula, message", [
    ("Reaction ~ 1 + Days + (1 | Subject", r"'\(' is not closed"),
    ("Reaction ~ 1 + Days + 1 | Subject)", r"'\)' has no matching '\('"),
    ("Reaction 1 + Days + (1 | Subject)", r"exactly one '~'"),
    ("Reaction ~ Days ~ (1 | Subject)", r"exactly one '~'"),
    ("Reaction ~ 1 + Days + ( | Subject)", r"must read \(terms \| group\)"),
    ("Reaction ~ 1 + Days + (1 | )", r"must read \(terms \| group\)"),
    ("Reaction ~ 1 + + Days + (1 | Subject)", r"empty term"),
    ("Reaction ~ 1 + Days - (1 | Subject)", r"cannot be subtracted"),
    ("Reaction ~ Days + 1 | Subject", r"'\|' outside a random term"),
    (" ~ Days + (1 | Subject)", r"response or the terms are missing"),
])
def test_malformed_formula_raises_naming_the_problem(data, formula, message):
    with pytest.raises(ValueError, match=r"malformed formula .*" + message):
        lmer(formula, data["sleepstudy"])


def test_unknown_column_raises_listing_the_columns(data):
    expected = ("column 'Dayz' not found in data; columns are 'Reaction', 'Days', "
                "'Subject'")
    with pytest.raises(ValueError, match=expected):
        lmer("Reaction ~ 1 + Dayz + (1 | Subject)", data["sleepstudy"])
    with pytest.raises(ValueError, match="column 'Subjekt' not found"):
        lmer("Reaction ~ 1 + Days + (1 | Subjekt)", data["sleepstudy"])


def test_formula_without_random_term_points_to_ols(data):
    with pytest.raises(ValueError, match=r"no random-effects term.*statsmodels.*ols"):
        lmer("Reaction ~ 1 + Days", data["sleepstudy"])


def test_predictors_on_very_different_scales_warn_as_lme4_does(data):
    # lme4's check.scaleX: Days in millionths of a day; the sleepstudy fixture warns of nothing
    sleep = data["sleepstudy"]
    with pytest.warns(mixed.ScaleWarning, match=r"very different scales \(standard deviations: "
                                                r"Days 2\.88e\+06\)"):
        lmer("Reaction ~ Days + (1 | Subject)", sleep.assign(Days=sleep["Days"] * 1e6))


def test_a_cbind_response_points_to_glmer(data):
    with pytest.raises(ValueError, match=r"counts successes and failures: fit it with glmer\(.*binomial"):
        lmer("cbind(Days, 9 - Days) ~ 1 + (1 | Subject)", data["sleepstudy"])


def test_grouping_factor_with_one_level_raises(data):
    one = data["sleepstudy"][data["sleepstudy"]["Subject"] == "308"]
    with pytest.raises(ValueError, match=r"grouping factor 'Subject' .* has 1 level "
                                         r"\('308'\); .* at least 2"):
        lmer("Reaction ~ 1 + Days + (1 | Subject)", one)


def test_grouping_factor_with_a_level_per_row_raises(data):
    frame = data["sleepstudy"].assign(row=[str(k) for k in range(180)])
    with pytest.raises(ValueError, match=r"'row' .* 180 levels for 180 observations"):
        lmer("Reaction ~ 1 + Days + (1 | row)", frame)


def test_missing_values_in_a_used_column_drop_the_row_as_r_does(data):
    frame = data["sleepstudy"].copy()
    frame.loc[5, "Days"] = np.nan
    fit = lmer("Reaction ~ 1 + Days + (1 | Subject)", frame)
    assert fit.nobs == 179 and fit.n_omitted == 1
    assert 5 not in fit.data.index


@pytest.mark.parametrize("bad", [None, [1, 2, 3], {"Reaction": [1.0]}, np.ones((3, 3))])
def test_non_dataframe_data_raises(bad):
    with pytest.raises(ValueError, match="data must be a pandas DataFrame"):
        lmer("Reaction ~ 1 + Days + (1 | Subject)", bad)


@pytest.mark.parametrize("kwargs, message", [
    ({"formula": 42}, "formula must be a string, got int"),
    ({"REML": "yes"}, "REML must be True or False, got 'yes'"),
])
def test_bad_arguments_raise(data, kwargs, message):
    args = {"formula": "Reaction ~ 1 + Days + (1 | Subject)", "data": data["sleepstudy"]}
    with pytest.raises(ValueError, match=message):
        lmer(**{**args, **kwargs})


@pytest.mark.parametrize("response, shift", [("Reaction - 250", [250.0, 0.0]),
                                             ("Reaction - Days", [0.0, 1.0])])
def test_a_response_is_arithmetic_as_in_r_not_a_formula_of_terms(data, response, shift):
    # in patsy's formula language "Reaction - Days" would be the term Reaction without Days,
    # silently fitting Reaction; R evaluates it: the intercept or the slope moves by the shift
    ref = FITS["sleep_correlated_reml"]
    fit = lmer(f"{response} ~ 1 + Days + (1 + Days | Subject)", data["sleepstudy"])
    np.testing.assert_allclose(fit.fixef, np.subtract(list(ref["fixef"].values()), shift),
                               rtol=RTOL)
    np.testing.assert_allclose(fit.theta, ref["theta"], rtol=RTOL)


ENGINE = Path(__file__).parent / "reference" / "engine"
R_TERMS = json.loads((ENGINE / "r_terms_reference.json").read_text(encoding="utf-8"))["fits"]


def _r_terms_data(name: str) -> pd.DataFrame:
    if name == "cake":  # lme4's cake: temperature is an ordered factor, replicate a label
        cake = pd.read_csv(ENGINE / "data" / "cake.csv.gz")
        return cake.astype({"replicate": str, "temperature": pd.CategoricalDtype(
            sorted(cake["temperature"].unique()), ordered=True)})
    sleep = load_sleepstudy()
    return sleep.assign(fDays=pd.Categorical(sleep["Days"], categories=range(10), ordered=True))


@pytest.mark.parametrize("key", list(R_TERMS))
def test_poly_and_ordered_factors_are_coded_and_named_as_r_codes_them(key):
    # poly(x, d): R's orthogonal polynomials (and raw = TRUE); an ordered factor: contr.poly,
    # columns .L, .Q, .C, ^4, ...; 0 + factor(x): a column per level, named by level (not a
    # poly-like 1, 2, ...); the same fit as lme4's, and the same predictions at new x
    ref = R_TERMS[key]
    fit = lmer(ref["formula"], _r_terms_data(ref["data"]))
    assert list(fit.fixef.index) == list(ref["fixef"]), ref["call"]
    np.testing.assert_allclose(fit.fixef, list(ref["fixef"].values()), rtol=RTOL, atol=1e-6)
    np.testing.assert_allclose(fit.theta, ref["theta"], rtol=1e-4, atol=1e-5)
    assert fit.logLik == pytest.approx(ref["logLik"], rel=1e-9)
    if ref["new_x"]:
        new = pd.DataFrame({"Days": ref["new_x"], "Subject": "308"})
        np.testing.assert_allclose(fit.predict(new, re_form=np.nan), ref["predict"], rtol=1e-7)


@pytest.mark.parametrize("formula, message", [
    ("Reaction ~ poly(Days, 10) + (1 | Subject)", "less than the number of unique values of x"),
    ("Reaction ~ poly(Days, 0) + (1 | Subject)", "degree must be a positive whole number"),
])
def test_bad_poly_degrees_raise_naming_the_problem(data, formula, message):
    with pytest.raises(ValueError, match=message):
        lmer(formula, data["sleepstudy"])


def test_non_numeric_response_raises(data):
    with pytest.raises(ValueError, match="column 'Subject' of data must be numeric"):
        lmer("Subject ~ 1 + Days + (1 | Days)", data["sleepstudy"])


def test_predict_with_an_unseen_level_raises(fits):
    fit = fits["sleep_correlated_reml"]
    with pytest.raises(ValueError, match=r"level\(s\) \['999'\] of 'Subject' not seen"):
        fit.predict(pd.DataFrame({"Days": [1.0], "Subject": ["999"]}))
    with pytest.raises(ValueError, match="re_form must be None"):
        fit.predict(re_form="~(1 | Subject)")


def test_anova_rejects_bad_input(fits, data):
    with pytest.raises(ValueError, match="two or more fits, got 0"):
        anova()
    with pytest.raises(ValueError, match="must be an LmerFit"):
        anova(fits["machines_reml"], "fit")
    with pytest.raises(ValueError, match="different response or rows"):
        anova(fits["machines_reml"], fits["sleep_intercept_reml"])


# Fits on which BFGS from statsmodels' default start stalled far from the optimum (the
# engine before this one); lmer must reach lme4's optimum. Values:
# tests/reference/lme4_hard_starts.R (R 4.2.2, lme4 1.1-31, bobyqa rhoend = 1e-12): REMLcrit,
# fixef, as.data.frame(VarCorr(fit))$vcov.
HARD_STARTS = {
    "pixel_linear_slopes": (
        "pixel ~ 1 + day + (1 + day | Dog)", None,
        [900.1552709, 1092.307063, -0.02903777978, 1032.058522, 0.7841291212, -21.48479678, 307.9390595],
    ),
    "sleepstudy_eight_subjects": (
        "Reaction ~ 1 + Days + (1 + Days | Subject)",
        ["309", "331", "333", "335", "351", "369", "370", "371"],
        [728.3602984, 251.1309998, 7.351877273, 705.0526125, 34.61104545, -29.06172888, 361.4376171],
    ),
}


@pytest.mark.parametrize("name", sorted(HARD_STARTS))
def test_lmer_reaches_lme4_optimum_where_a_gradient_optimiser_stalled(name):
    from course_lib.datasets import load_pixel, load_sleepstudy

    formula, subjects, ref = HARD_STARTS[name]
    data = load_pixel() if subjects is None else load_sleepstudy().query("Subject in @subjects")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit = lmer(formula, data)
    got = [fit.REMLcrit, *fit.fixef, *fit.VarCorr["vcov"]]
    np.testing.assert_allclose(got, ref, rtol=5e-5)


def test_anova_without_refit_compares_reml_fits_with_the_same_fixed_effects(fits):
    # valid: same fixed effects, REML criteria (the chapter says so); lme4's refit = FALSE
    table = anova(fits["sleep_intercept_reml"], fits["sleep_correlated_reml"], refit=False)
    want = fits["sleep_intercept_reml"].REMLcrit - fits["sleep_correlated_reml"].REMLcrit
    assert table["Chisq"].iloc[1] == pytest.approx(want, rel=1e-12)


def test_anova_without_refit_refuses_reml_fits_with_different_fixed_effects(data):
    a = lmer("Reaction ~ 1 + (1 | Subject)", data["sleepstudy"])
    b = lmer("Reaction ~ Days + (1 | Subject)", data["sleepstudy"])
    with pytest.raises(ValueError, match="REML criteria compare only models with the same "
                                         "fixed effects"):
        anova(a, b, refit=False)
