"""course_lib.regression against statsmodels' OLS and the R reference of chapter 1.

Reference: R 4.2.2, summary(lm(Reaction ~ 1 + Days, data = sleepstudy)):
(Intercept) 251.405 (SE 6.610), Days 10.467 (SE 1.238), residual standard error 47.71.
"""

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from course_lib import datasets, regression


@pytest.fixture(scope="module")
def sleep():
    return datasets.load_sleepstudy()


def test_ols_reproduces_r_lm_on_sleepstudy(sleep):
    fit = regression.ols(regression.design_matrix(sleep, "Days"), sleep["Reaction"])
    assert fit.names == ("(Intercept)", "Days")
    np.testing.assert_allclose(fit.coef, [251.405, 10.467], atol=5e-4)
    np.testing.assert_allclose(fit.se, [6.610, 1.238], atol=5e-4)
    assert fit.sigma == pytest.approx(47.71, abs=5e-3)
    assert fit.df_resid == 178
    table = fit.table()
    assert list(table.columns) == ["estimate", "std_error", "t"]
    assert table.loc["Days", "t"] == pytest.approx(8.454, abs=5e-4)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ols_equals_statsmodels_on_random_designs(seed):
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(50), rng.normal(size=(50, 3))])
    y = X @ rng.normal(size=4) + rng.normal(size=50)
    ours, ref = regression.ols(X, y), sm.OLS(y, X).fit()
    np.testing.assert_allclose(ours.coef, ref.params, rtol=1e-10)
    np.testing.assert_allclose(ours.se, ref.bse, rtol=1e-10)
    assert ours.sigma == pytest.approx(np.sqrt(ref.scale), rel=1e-12)
    assert ours.names == ("x0", "x1", "x2", "x3")


def test_ols_rejects_bad_input_with_clear_errors():
    X = np.column_stack([np.ones(5), np.arange(5.0)])
    with pytest.raises(ValueError, match="X has 5 rows but y has 4 values"):
        regression.ols(X, np.ones(4))
    with pytest.raises(ValueError, match="linearly dependent"):
        regression.ols(np.column_stack([X, 2 * X[:, 1]]), np.arange(5.0))
    with pytest.raises(ValueError, match="more observations than coefficients"):
        regression.ols(X[:2], np.ones(2))
    with pytest.raises(ValueError, match="y contains 1 NaN"):
        regression.ols(X, np.array([1, 2, np.nan, 4, 5.0]))
    with pytest.raises(ValueError, match="X must be 2-dimensional"):
        regression.ols(np.ones(5), np.ones(5))
    with pytest.raises(ValueError, match="X must be numeric"):
        regression.ols([["a", "b"]] * 5, np.ones(5))


def test_design_matrix_names_the_missing_column(sleep):
    with pytest.raises(ValueError, match="column 'Dayz' not found in data; columns are 'Reaction', 'Days', 'Subject'"):
        regression.design_matrix(sleep, "Dayz")
    with pytest.raises(ValueError, match="column 'Subject' of data must be numeric"):
        regression.design_matrix(sleep, ["Days", "Subject"])
    with pytest.raises(ValueError, match="must be a pandas DataFrame"):
        regression.design_matrix(sleep.to_numpy(), "Days")
    with_nan = sleep.assign(Days=sleep["Days"].astype(float))
    with_nan.loc[3, "Days"] = np.nan
    with pytest.raises(ValueError, match=r"column 'Days' of data has 1 missing value\(s\) \(first at row\(s\) \[3\]\)"):
        regression.design_matrix(with_nan, "Days")
    X = regression.design_matrix(sleep, ["Days"], intercept=False)
    assert list(X.columns) == ["Days"]


def test_lines_by_group_match_separate_statsmodels_fits(sleep):
    lines = regression.lines_by_group(sleep, "Reaction", "Days", "Subject")
    assert lines.shape == (18, 4)
    one = sleep[sleep["Subject"] == "308"]
    ref = sm.OLS(one["Reaction"], sm.add_constant(one["Days"])).fit()
    np.testing.assert_allclose(lines.loc["308", ["intercept", "slope"]], ref.params, rtol=1e-10)
    assert lines.loc["308", "rss"] == pytest.approx(ref.ssr, rel=1e-10)
    # balanced design: the mean of the per-subject lines is the pooled OLS line
    assert lines["slope"].mean() == pytest.approx(10.467286, abs=1e-6)


def test_lines_by_group_rejects_groups_without_a_line():
    df = pd.DataFrame({"y": [1.0, 2, 3, 4, 5], "x": [0, 1, 2, 3, 3], "g": ["a", "a", "a", "b", "b"]})
    with pytest.raises(ValueError, match="group 'b' of 'g' has 2 row"):
        regression.lines_by_group(df, "y", "x", "g")


def test_variance_partition_adds_up_and_matches_eta_squared(sleep):
    parts = regression.variance_partition(sleep["Reaction"], sleep["Subject"])
    assert parts["between"] + parts["within"] == pytest.approx(parts["total"])
    assert parts["total"] == pytest.approx(sleep["Reaction"].var(ddof=0))
    anova = sm.stats.anova_lm(sm.formula.ols("Reaction ~ Subject", sleep).fit())
    eta2 = anova.loc["Subject", "sum_sq"] / anova["sum_sq"].sum()
    assert parts["share_between"] == pytest.approx(eta2, rel=1e-10)
    with pytest.raises(ValueError, match="values has shape"):
        regression.variance_partition([1.0, 2.0], ["a"])
