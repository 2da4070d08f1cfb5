"""Kenward-Roger's t tests (course_lib.mixed.kenward_roger) against lmerTest/pbkrtest.

Reference: tests/reference/engine/kenward_roger_reference.json, written by
tests/reference/engine/kenward_roger_reference.R (R 4.2.2, lme4 1.1-31, lmerTest 3.1-3,
pbkrtest): ``coef(summary(fit, ddf = "Kenward-Roger"))`` of tightly converged REML fits on
sleepstudy (slopes, intercepts, a 10-level factor; balanced, and unbalanced by missing values)
and Machines (nested, correlated slopes).
Also ``anova(fit, type = 3, ddf = "Kenward-Roger")``: F tests of 1, 2 and 9 numerator df.
The promise: 2e-3 relative in the standard errors, df, t, F and p (measured: 1e-5).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from course_lib.datasets import load_sleepstudy
from course_lib.mixed import anova, kenward_roger, lmer
from mixed_data import dataset

HERE = Path(__file__).parent / "reference" / "engine"
REF = json.loads((HERE / "kenward_roger_reference.json").read_text(encoding="utf-8"))["fits"]


@pytest.mark.parametrize("key", list(REF))
def test_kenward_roger_coefficient_table_matches_pbkrtest(key):
    ref = REF[key]
    table = lmer(ref["formula"], dataset(ref["data"])).coef_table(ddf="Kenward-Roger")
    assert list(table.index) == [row["term"] for row in ref["coef"]]
    for row in ref["coef"]:
        got = table.loc[row["term"]]
        np.testing.assert_allclose(
            [got["Estimate"], got["Std. Error"], got["df"], got["t value"], got["Pr(>|t|)"]],
            [row["estimate"], row["se"], row["df"], row["t"], row["p"]], rtol=2e-3,
            err_msg=f"{ref['call']}: {row['term']}")


@pytest.mark.parametrize("key", list(REF))
def test_kenward_roger_type3_f_tests_match_lmertest_including_multilevel_factors(key):
    ref = REF[key]
    table = anova(lmer(ref["formula"], dataset(ref["data"])), ddf="Kenward-Roger")
    assert list(table.index) == [row["term"] for row in ref["anova"]]
    for row in ref["anova"]:
        got = table.loc[row["term"]]
        assert got["NumDF"] == row["numdf"]
        np.testing.assert_allclose([got["DenDF"], got["F value"], got["Pr(>F)"]],
                                   [row["dendf"], row["F"], row["p"]], rtol=2e-3,
                                   err_msg=f"{ref['call']}: {row['term']}")


def test_kenward_roger_inflates_the_standard_errors_of_an_unbalanced_design_only():
    # Phi_A = Phi + 2 Phi U Phi: lme4's vcov plus the variance parameters' uncertainty,
    # which vanishes on a balanced design (all sleepstudy subjects have the same 10 days)
    balanced = lmer("Reaction ~ Days + (Days | Subject)", load_sleepstudy())
    np.testing.assert_allclose(balanced.coef_table(ddf="Kenward-Roger")["Std. Error"],
                               balanced.fixef_se, rtol=1e-8)
    unbalanced = lmer("Reaction ~ Days + (Days | Subject)", dataset("sleep_na"))
    ratio = unbalanced.coef_table(ddf="Kenward-Roger")["Std. Error"] / unbalanced.fixef_se
    assert np.all(ratio > 1 + 1e-4), ratio


def test_kenward_roger_refuses_ml_fits_weights_and_large_data():
    sleep = load_sleepstudy()
    with pytest.raises(ValueError, match="defined for REML fits"):
        lmer("Reaction ~ Days + (1 | Subject)", sleep, REML=False).coef_table(
            ddf="Kenward-Roger")
    weighted = lmer("Reaction ~ Days + (1 | Subject)", dataset("sleep"),
                    weights="w")
    with pytest.raises(ValueError, match="not available with prior weights"):
        weighted.coef_table(ddf="Kenward-Roger")
    big = lmer("y ~ cond + (1 | subject)", dataset("crossed2k"))
    assert big.nobs > kenward_roger.KR_MAX_ROWS
    with pytest.raises(ValueError, match="dense n x n matrices"):
        big.coef_table(ddf="Kenward-Roger")
