"""Satterthwaite tests of fixed effects (course_lib.mixed.inference) against lmerTest.

Reference: tests/reference/engine/lmerTest_reference.json, written by
tests/reference/engine/lmerTest_reference.R (R 4.2.2, lme4 1.1-31, lmerTest 3.1-3, tight
bobyqa). The promise: df, F and p equal to lmerTest's to 2e-3 relative.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from course_lib.datasets import load_sleepstudy
from course_lib.designs import simulate_crossed
from mixed_data import dataset
from course_lib.mixed import anova, lmer

HERE = Path(__file__).parent / "reference" / "engine"
REF = json.loads((HERE / "lmerTest_reference.json").read_text(encoding="utf-8"))["fits"]
RTOL = 2e-3


_data = dataset


@pytest.fixture(scope="module")
def fits():
    return {k: lmer(r["formula"], _data(r["data"]), REML=r["REML"]) for k, r in REF.items()}


@pytest.mark.parametrize("key", list(REF))
def test_satterthwaite_coefficient_table_matches_lmertest(fits, key):
    table = fits[key].coef_table(ddf="Satterthwaite")
    for row in REF[key]["coef"]:
        got = table.loc[row["term"]]
        assert got["Estimate"] == pytest.approx(row["estimate"], rel=1e-5), row
        assert got["Std. Error"] == pytest.approx(row["se"], rel=1e-4), row
        assert got["df"] == pytest.approx(row["df"], rel=RTOL), (key, row)
        assert got["Pr(>|t|)"] == pytest.approx(row["p"], rel=RTOL), (key, row)


@pytest.mark.parametrize("key", list(REF))
def test_type3_f_tests_match_lmertest_including_multilevel_factors(fits, key):
    table = anova(fits[key], ddf="Satterthwaite")
    assert list(table.index) == [r["term"] for r in REF[key]["anova"]]
    for row in REF[key]["anova"]:
        got = table.loc[row["term"]]
        assert got["NumDF"] == row["numdf"]
        assert got["DenDF"] == pytest.approx(row["dendf"], rel=RTOL), (key, row)
        assert got["F value"] == pytest.approx(row["F"], rel=RTOL), (key, row)
        assert got["Pr(>F)"] == pytest.approx(row["p"], rel=RTOL), (key, row)


@pytest.mark.filterwarnings("ignore::statsmodels.tools.sm_exceptions.ConvergenceWarning")
def test_satterthwaite_t_test_holds_its_level_on_simulated_null_data():
    # 8 groups, a group-level effect: the Satterthwaite test should reject near 5%, where the
    # z-test would reject more. 150 null data sets; the 99% binomial interval of 5% is 1-10%.
    rejections = []
    for seed in range(150):
        data, _ = simulate_crossed(n_subjects=8, n_items=6, beta=(0.0, 0.0),
                                   subject_sd=(1.0, 1.0), item_sd=(0.5, 0.0), sigma=1.0,
                                   seed=seed)
        fit = lmer("y ~ cond + (1 + cond | subject) + (1 | item)", data)
        rejections.append(fit.coef_table().loc["cond", "Pr(>|t|)"] < 0.05)
    assert 0.01 <= np.mean(rejections) <= 0.10, np.mean(rejections)


def test_unknown_ddf_raises_and_terms_contained_in_interactions_are_tested():
    fit = lmer("Reaction ~ Days + (1 | Subject)", load_sleepstudy())
    with pytest.raises(ValueError, match="ddf must be 'Satterthwaite' or 'lme4'"):
        fit.coef_table(ddf="KR")
    # a numeric covariate beside its interaction with a factor: every term gets a finite F
    # (the numbers are checked against lmerTest in test_mixed_type3.py)
    sleep = load_sleepstudy().assign(late=lambda d: (d.Days > 4).astype(str))
    table = anova(lmer("Reaction ~ Days * late + (1 | Subject)", sleep))
    assert list(table.index) == ["Days", "late", "Days:late"]
    assert np.isfinite(table["F value"]).all() and (table["NumDF"] == 1).all()
