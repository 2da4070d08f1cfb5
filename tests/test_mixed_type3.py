"""Type III F tests of terms contained in interactions (course_lib.mixed.inference) against
lmerTest 3.1-3.

Reference: tests/reference/engine/type3_reference.json and the data sets
tests/reference/engine/data/type3_*.csv.gz, both written by
tests/reference/engine/type3_reference.R (R 4.2.2, lme4 1.1-31, lmerTest 3.1-3, pbkrtest,
tight bobyqa). The promise: F, NumDF, DenDF and p equal to lmerTest's ``anova(fit,
type = "III")`` to 2e-3 relative, with Satterthwaite's df and with Kenward-Roger's.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from course_lib.mixed import anova, lmer
from course_lib.mixed.inference import type3_contrasts

HERE = Path(__file__).parent / "reference" / "engine"
REF = json.loads((HERE / "type3_reference.json").read_text(encoding="utf-8"))["fits"]
RTOL = 2e-3
# the missing-cell design warns twice (lme4's rank deficiency, lmerTest's missing cells);
# test_missing_cell_is_said_as_lmertest_says_it checks the second
pytestmark = [pytest.mark.filterwarnings("ignore:fixed-effect model matrix is rank deficient"),
              pytest.mark.filterwarnings("ignore:Missing cells for")]


def _data(name: str, reverse: tuple[str, ...] = ()) -> pd.DataFrame:
    """A data set as R's read.csv(stringsAsFactors = TRUE) reads it: text columns become
    factors with sorted levels (reversed for the columns named in ``reverse``)."""
    frame = pd.read_csv(HERE / "data" / f"type3_{name}.csv.gz")
    for col in frame.columns:
        if not pd.api.types.is_numeric_dtype(frame[col]):
            levels = sorted(frame[col].unique())
            frame[col] = pd.Categorical(frame[col], categories=levels[::-1] if col in reverse
                                        else levels)
    return frame


@pytest.fixture(scope="module")
def fits():
    return {k: lmer(r["formula"], _data(r["data"], tuple(r["reverse"])), REML=r["REML"])
            for k, r in REF.items()}


def _compare(table, rows, key):
    assert list(table.index) == [r["term"] for r in rows]
    for row in rows:
        got = table.loc[row["term"]]
        assert got["NumDF"] == row["numdf"], (key, row)
        assert got["Sum Sq"] == pytest.approx(row["sumsq"], rel=RTOL), (key, row)
        assert got["DenDF"] == pytest.approx(row["dendf"], rel=RTOL), (key, row)
        assert got["F value"] == pytest.approx(row["F"], rel=RTOL), (key, row)
        assert got["Pr(>F)"] == pytest.approx(row["p"], rel=RTOL), (key, row)


@pytest.mark.parametrize("key", list(REF))
def test_fits_are_lmertests_fits(fits, key):
    fixef = fits[key].fixef
    for name, value in REF[key]["fixef"].items():
        assert fixef[name] == pytest.approx(value, rel=1e-5, abs=1e-7), (key, name)


@pytest.mark.parametrize("key", list(REF))
def test_type3_satterthwaite_table_matches_lmertest_for_terms_in_interactions(fits, key):
    _compare(anova(fits[key], ddf="Satterthwaite"), REF[key]["anova"], key)


@pytest.mark.parametrize("key", [k for k in REF if "anova_kr" in REF[k]])
def test_type3_kenward_roger_table_matches_lmertest(fits, key):
    _compare(anova(fits[key], ddf="Kenward-Roger"), REF[key]["anova_kr"], key)


@pytest.mark.parametrize("key, reverse", [("unbalanced_3x2", ("a", "b")),
                                          ("factor_by_numeric_slope", ("grp",)),
                                          ("crossed_threeway", ("a", "b", "c"))])
def test_type3_f_does_not_depend_on_the_reference_level(fits, key, reverse):
    # Reversing the level order changes every coefficient of a treatment-coded model (and a
    # test of a main effect's own coefficients would change with it); the type III
    # hypotheses, hence F, must not change. The Satterthwaite df of a multi-df F is not
    # invariant in lmerTest either (it depends on the basis of the hypothesis, as the
    # reference crossed_threeway_reversed shows); one-df tests keep theirs.
    r = REF[key]
    refit = lmer(r["formula"], _data(r["data"], reverse), REML=r["REML"])
    assert not np.allclose(refit.fixef.to_numpy(), fits[key].fixef.to_numpy(), rtol=1e-2)
    before, after = anova(fits[key]), anova(refit)
    np.testing.assert_array_equal(after["NumDF"], before["NumDF"])
    # (the two fits converge separately: agreement to the optimiser's tolerance)
    np.testing.assert_allclose(after["F value"], before["F value"], rtol=1e-5, atol=1e-6)
    one = before["NumDF"] == 1
    np.testing.assert_allclose(after["DenDF"][one], before["DenDF"][one], rtol=1e-5)
    np.testing.assert_allclose(after["DenDF"], before["DenDF"], rtol=RTOL)


def test_main_effect_hypothesis_is_not_its_own_coefficients_when_in_an_interaction(fits):
    # y ~ a * b: the type III hypothesis of a averages over b; testing a's coefficients
    # alone (a at the reference level of b) is a different, coding-dependent test.
    fit = fits["unbalanced_3x2"]
    L = type3_contrasts(fit)
    own = np.eye(len(fit.fixef))[[fit.fixef.index.get_loc(c) for c in ["aa2", "aa3"]]]
    assert L["a"].shape == (2, len(fit.fixef))
    assert np.linalg.matrix_rank(np.vstack([L["a"], own])) > 2
    assert np.allclose(L["a:b"], np.eye(len(fit.fixef))[-2:])


def test_numeric_covariate_contained_in_factor_by_numeric_interaction(fits):
    # SAS's containment: day is contained in grp:day (same covariate, more factors); grp is
    # not (grp:day has a covariate grp has not), so grp is tested at day = 0.
    fit = fits["factor_by_numeric_slope"]
    L = type3_contrasts(fit)
    names = list(fit.fixef.index)
    grp_own = np.eye(len(names))[[names.index("grpdrugA"), names.index("grpdrugB")]]
    assert np.allclose(L["grp"], grp_own)
    assert not np.allclose(L["day"], np.eye(len(names))[[names.index("day")]])


def test_type3_f_does_not_depend_on_the_contrast_coding():
    # sum-to-zero coding of a (patsy's C(a, Sum); R's contrasts(a) <- contr.sum(3), which
    # lmerTest maps back to treatment coding) tests the same hypotheses as lmerTest's table
    r = REF["unbalanced_3x2"]
    table = anova(lmer("y ~ C(a, Sum) * b + (1 | g)", _data("unbalanced")))
    assert list(table.index) == ["C(a,Sum)", "b", "C(a,Sum):b"]
    table.index = ["a", "b", "a:b"]
    _compare(table, r["anova"], "sum-coded")


def test_missing_cell_is_said_as_lmertest_says_it(fits):
    # the cell a3:b2 has no rows: lme4 drops aa3:bb2, lmerTest tests on and says so
    assert "aa3:bb2" not in fits["missing_cell"].fixef.index
    with pytest.warns(UserWarning, match=r"Missing cells for: aa3:bb2\. Interpret type III"):
        anova(fits["missing_cell"])
