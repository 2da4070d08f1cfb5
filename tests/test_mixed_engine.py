"""The lme4-class engine of course_lib.mixed against lme4, on the designs real studies need.

Reference numbers: tests/reference/engine/engine_reference.json, written by
tests/reference/engine/lme4_engine_reference.R (R 4.2.2, lme4 1.1-31, bobyqa with
rhoend = 1e-10: its "meta" block and each fit's "call" say so). The simulated designs are
regenerated here from their seeds (tests/reference/engine/make_data.py), the lme4 data sets
read from tests/reference/engine/data/. The tests do not need R.

Promise: 4 significant figures in fixed effects, their SEs, every variance component and
logLik; correlations to 5e-4 absolute. The tolerances below are tighter where the engine is.
"""

from __future__ import annotations

import json
import warnings
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from course_lib.datasets import load_sleepstudy
from course_lib.designs import simulate_crossed
from mixed_data import dataset
from course_lib.mixed import RankDeficiencyWarning, lmer
from course_lib.mixed import pls as pls_module

HERE = Path(__file__).parent / "reference" / "engine"
REFERENCE = json.loads((HERE / "engine_reference.json").read_text(encoding="utf-8"))
FITS = REFERENCE["fits"]
RTOL = 1e-4          # 4 significant figures, the promise
CORR_ATOL = 5e-4

SLOW = {"crossed100k_slope_reml", "insteval_reml"}


@cache
def fitted(key: str):
    ref = FITS[key]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = lmer(ref["formula"], dataset(ref["data"]), REML=ref["REML"],
                   weights=ref.get("weights"))
    return fit, [w for w in caught if issubclass(w.category, Warning)]


KEYS = list(FITS)


@pytest.mark.parametrize("key", KEYS)
def test_fixed_effects_and_standard_errors_match_lme4(key):
    fit, _ = fitted(key)
    ref = FITS[key]
    assert list(fit.fixef.index) == list(ref["fixef"]), ref["call"]
    np.testing.assert_allclose(fit.fixef, list(ref["fixef"].values()), rtol=RTOL,
                               err_msg=ref["call"])
    np.testing.assert_allclose(fit.fixef_se, list(ref["fixef_se"].values()), rtol=RTOL,
                               err_msg=ref["call"])


@pytest.mark.parametrize("key", KEYS)
def test_every_variance_component_matches_lme4(key):
    fit, _ = fitted(key)
    ref = FITS[key]
    vc = fit.VarCorr
    assert len(vc) == len(ref["varcorr"]), ref["call"]
    rows = {(r.grp, None if pd.isna(r.var1) else r.var1, None if pd.isna(r.var2) else r.var2): r
            for r in vc.itertuples()}
    for want in ref["varcorr"]:
        row = rows[(want["grp"], want["var1"], want["var2"])]._asdict()
        if want["var2"] is None:
            assert row["vcov"] == pytest.approx(want["vcov"], rel=RTOL, abs=1e-10), want
            assert row["sdcor"] == pytest.approx(want["sdcor"], rel=RTOL, abs=1e-10), want
        else:
            assert row["sdcor"] == pytest.approx(want["sdcor"], abs=CORR_ATOL), want
    assert fit.sigma == pytest.approx(ref["sigma"], rel=RTOL)


@pytest.mark.parametrize("key", KEYS)
def test_likelihood_and_information_criteria_match_lme4(key):
    fit, _ = fitted(key)
    ref = FITS[key]
    assert fit.logLik == pytest.approx(ref["logLik"], rel=1e-7, abs=1e-6), ref["call"]
    assert fit.n_par == ref["df"]
    assert fit.AIC == pytest.approx(ref["AIC"], rel=1e-7)
    assert fit.BIC == pytest.approx(ref["BIC"], rel=1e-7)
    assert fit.nobs == ref["nobs"]
    assert fit.ngrps == ref["ngrps"]
    assert fit.is_singular == ref["singular"]


@pytest.mark.parametrize("key", KEYS)
def test_theta_matches_lme4_in_lme4s_order(key):
    fit, _ = fitted(key)
    want = np.atleast_1d(FITS[key]["theta"])
    np.testing.assert_allclose(fit.theta, want, rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("key", [k for k in FITS if k not in SLOW])
def test_only_singular_fits_warn_and_they_warn_that_they_are_singular(key):
    _, caught = fitted(key)
    conv = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    if FITS[key]["singular"]:
        assert len(conv) == 1 and "boundary (singular) fit" in conv[0], conv
    else:
        assert conv == []


def test_rows_with_missing_values_are_dropped_and_counted_as_r_does():
    fit, _ = fitted("sleep_na_reml")
    assert fit.n_omitted == FITS["sleep_na_reml"]["n_omitted"] == 180 - fit.nobs
    assert "deleted due to missingness" in str(fit.summary())


def test_rank_deficient_x_drops_the_later_column_with_lme4s_message():
    fit, caught = fitted("sleep_rankdef_reml")
    assert list(fit.fixef.index) == FITS["sleep_rankdef_reml"]["fixef_names"]
    messages = [str(w.message) for w in caught if issubclass(w.category, RankDeficiencyWarning)]
    assert messages and "rank deficient so dropping 1 column / coefficient (Days2)" in \
        messages[0]


def test_ranef_and_conditional_sds_of_the_crossed_maximal_model_match_lme4():
    fit, _ = fitted("crossed2k_maximal_reml")
    for group, ref in REFERENCE["ranef"].items():
        got = fit.ranef[group].loc[ref["levels"]].to_numpy()
        np.testing.assert_allclose(got, ref["values"], rtol=1e-3, atol=1e-3 * np.abs(
            ref["values"]).max())
        sd = fit.ranef_condsd[group].loc[ref["levels"]].to_numpy()
        np.testing.assert_allclose(sd, ref["condsd"], rtol=1e-3)


def test_predictions_of_the_crossed_maximal_model_match_lme4():
    fit, _ = fitted("crossed2k_maximal_reml")
    new = dataset("crossed2k").iloc[[0, 1, 2, 499, 1998]]
    np.testing.assert_allclose(fit.predict(new), REFERENCE["predictions"]["conditional"],
                               rtol=1e-6)
    np.testing.assert_allclose(fit.predict(new, re_form="NA"),
                               REFERENCE["predictions"]["population"], rtol=1e-6)


# --------------------------------------------------------------------------------------------
# The engine's own properties
# --------------------------------------------------------------------------------------------

@pytest.mark.filterwarnings("ignore::statsmodels.tools.sm_exceptions.ConvergenceWarning")
def test_one_deviance_evaluation_does_not_grow_with_n():
    # The same design replicated 20 times has 20x the rows and identical cross-product
    # sizes: the dense block and the first term's blocks have the same shapes.
    small, _ = simulate_crossed(n_subjects=10, n_items=8, seed=3)
    big = pd.concat([small] * 20, ignore_index=True)
    f = "y ~ cond + (1 + cond | subject) + (1 | item)"
    a, b = lmer(f, small).pls, lmer(f, big).pls
    assert (a.m, a.m1, a.q1) == (b.m, b.m1, b.q1)
    assert a.ARR.shape == b.ARR.shape


def test_crossed_maximal_model_recovers_simulated_truth():
    data, truth = simulate_crossed(n_subjects=60, n_items=60, seed=11)
    fit = lmer("y ~ cond + (1 + cond | subject) + (1 + cond | item)", data)
    lo = fit.fixef - 3 * fit.fixef_se
    hi = fit.fixef + 3 * fit.fixef_se
    assert np.all((lo <= truth["beta"]) & (truth["beta"] <= hi)), (fit.fixef, truth["beta"])
    assert fit.sigma == pytest.approx(truth["sigma"], rel=0.1)


def test_refit_with_a_new_response_equals_a_fresh_fit():
    data, _ = simulate_crossed(n_subjects=12, n_items=10, seed=5)
    f = "y ~ cond + (1 + cond | subject) + (1 | item)"
    fit = lmer(f, data)
    new = data.assign(y=data["y"][::-1].to_numpy())
    np.testing.assert_allclose(fit.refit(new["y"]).fixef, lmer(f, new).fixef, rtol=1e-6)


def test_scale_in_a_formula_uses_n_minus_1_as_r():
    sleep = load_sleepstudy()
    fit = lmer("Reaction ~ scale(Days) + (1 | Subject)", sleep)
    days = sleep["Days"]
    slope = lmer("Reaction ~ Days + (1 | Subject)", sleep).fixef["Days"]
    assert fit.fixef["scale(Days)"] == pytest.approx(slope * days.std(ddof=1), rel=1e-6)


def test_prior_weights_equal_to_one_change_nothing():
    sleep = load_sleepstudy()
    f = "Reaction ~ Days + (Days | Subject)"
    a, b = lmer(f, sleep), lmer(f, sleep, weights=np.ones(len(sleep)))
    assert a.logLik == pytest.approx(b.logLik, rel=1e-12)


def test_offset_in_formula_equals_subtracting_it_from_the_response():
    sleep = load_sleepstudy().assign(base=lambda d: 2.0 * d["Days"])
    a = lmer("Reaction ~ Days + offset(base) + (1 | Subject)", sleep)
    b = lmer("Reaction ~ Days + (1 | Subject)", sleep.assign(Reaction=sleep.Reaction - sleep.base))
    assert a.fixef["Days"] == pytest.approx(b.fixef["Days"], rel=1e-7)
    assert a.predict(sleep.iloc[:3]).to_numpy() == pytest.approx(
        (b.predict(sleep.iloc[:3]) + sleep.base.iloc[:3]).to_numpy(), rel=1e-9)


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, message", [
    ({"weights": -np.ones(180)}, "weights must be positive"),
    ({"weights": np.r_[np.nan, np.ones(179)]}, r"weights has 1 missing value\(s\)"),
    ({"weights": np.ones(5)}, r"weights must have one value per row of data \(180\)"),
    ({"weights": "nope"}, "column 'nope' not found"),
    ({"offset": "Subject"}, "column 'Subject' of data must be numeric"),
])
def test_bad_weights_and_offsets_raise_naming_the_problem(kwargs, message):
    with pytest.raises(ValueError, match=message):
        lmer("Reaction ~ Days + (1 | Subject)", load_sleepstudy(), **kwargs)


def test_constant_response_raises():
    sleep = load_sleepstudy().assign(Reaction=1.0)
    with pytest.raises(ValueError, match="response 'Reaction' is constant"):
        lmer("Reaction ~ Days + (1 | Subject)", sleep)


def test_as_many_random_effects_as_observations_raises_as_lme4():
    sleep = load_sleepstudy().iloc[:36]  # 4 subjects x 9 days: (Days | Subject) has 8 < 36
    sleep = sleep.assign(obs=np.arange(36) // 2)  # 18 levels x 2 = 36 effects for 36 rows
    with pytest.raises(ValueError, match=r"number of observations \(36\) <= number of random "
                                         r"effects \(36\)"):
        lmer("Reaction ~ Days + (Days | obs)", sleep)


def test_a_dense_block_too_large_for_memory_is_refused_with_the_memory_needed(monkeypatch):
    monkeypatch.setattr(pls_module, "MAX_DENSE_BYTES", 10_000)
    data, _ = simulate_crossed(n_subjects=30, n_items=20, seed=1)
    with pytest.raises(ValueError, match=r"dense block has 23 columns .* needs about "
                                         r"0\.0 GB"):
        lmer("y ~ cond + (1 | subject) + (1 | item)", data)


def test_unknown_function_in_formula_raises_naming_it():
    with pytest.raises(ValueError, match="cannot build a model matrix.*frobnicate"):
        lmer("Reaction ~ frobnicate(Days) + (1 | Subject)", load_sleepstudy())
