"""course_lib.pooling: the three pooling estimators, the shrinkage formula (equal to lmer's
ranef, itself tested against lme4 in test_mixed.py), held-out prediction, and the NumPyro model
(posterior means close to lmer's REML estimates)."""

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from course_lib import pooling
from course_lib.datasets import load_sleepstudy
from course_lib.mixed import lmer


@pytest.fixture(scope="module")
def sleep():
    return load_sleepstudy()


@pytest.fixture(scope="module")
def fit4(sleep):
    return lmer("Reaction ~ 1 + Days + (1 + Days | Subject)", sleep)


def test_complete_pooling_is_the_ols_line_for_every_group(sleep):
    table = pooling.complete_pooling(sleep)
    ols = smf.ols("Reaction ~ 1 + Days", data=sleep).fit().params
    assert len(table) == 18 and (table["n"] == 10).all()
    np.testing.assert_allclose(table["intercept"], ols["Intercept"])
    np.testing.assert_allclose(table["slope"], ols["Days"])


def test_no_pooling_is_each_groups_own_ols_line(sleep):
    table = pooling.no_pooling(sleep)
    rows = sleep[sleep["Subject"] == "308"]
    own = smf.ols("Reaction ~ 1 + Days", data=rows).fit().params
    np.testing.assert_allclose(table.loc["308", ["intercept", "slope"]], own, rtol=1e-10)


def test_no_pooling_accepts_two_rows_and_rejects_one_distinct_x(sleep):
    two = sleep[sleep["Days"] < 2]
    assert (pooling.no_pooling(two)["n"] == 2).all()
    with pytest.raises(ValueError, match="group '308' of 'Subject' has 1 distinct value"):
        pooling.no_pooling(sleep[sleep["Days"] == 0])
    with pytest.raises(ValueError, match="column 'Days' has one distinct value"):
        pooling.complete_pooling(sleep[sleep["Days"] == 0])


def test_partial_pooling_is_lmer_coef(sleep, fit4):
    table = pooling.partial_pooling(sleep, fit=fit4)
    np.testing.assert_allclose(table[["intercept", "slope"]], fit4.coef["Subject"], rtol=1e-12)
    refit = pooling.partial_pooling(sleep)
    np.testing.assert_allclose(refit[["intercept", "slope"]], table[["intercept", "slope"]])


def test_pooling_table_puts_the_three_side_by_side(sleep, fit4):
    table = pooling.pooling_table(sleep, fit=fit4)
    assert list(table.columns) == ["n"] + [f"{m}_{c}" for m in pooling.METHODS
                                          for c in ("intercept", "slope")]
    assert table["partial_slope"].std() < table["no_slope"].std()


def test_missing_column_is_named(sleep):
    with pytest.raises(ValueError, match="column 'Rt' not found in data"):
        pooling.no_pooling(sleep, y="Rt")


def test_shrinkage_factor_formula_and_limits():
    w = pooling.shrinkage_factor(np.array([1, 2, 10, 1000]), tau2=100.0, sigma2=400.0)
    np.testing.assert_allclose(w, [100 / 500, 200 / 600, 1000 / 1400, 100000 / 100400])
    assert np.all(np.diff(w) > 0)
    assert pooling.shrinkage_factor([5], 0.0, 1.0)[0] == 0.0


@pytest.mark.parametrize(
    "args,message",
    [
        (([0, 2], 1.0, 1.0), "n must be positive counts, got minimum 0"),
        (([2], -1.0, 1.0), "tau2 must be a non-negative variance, got -1.0"),
        (([2], 1.0, 0.0), "sigma2 must be a positive variance, got 0.0"),
    ],
)
def test_shrinkage_factor_rejects_bad_input(args, message):
    with pytest.raises(ValueError, match=message):
        pooling.shrinkage_factor(*args)


def test_precision_weighted_intercepts_equal_lmer_ranef_on_unbalanced_data(sleep):
    sparse, kept = pooling.truncate_groups(sleep, n_groups=5, keep=(2, 3, 4), seed=11)
    fit = lmer("Reaction ~ 1 + Days + (1 | Subject)", sparse)
    resid = sparse["Reaction"] - fit.predict(sparse, re_form="NA")
    by_hand = pooling.precision_weighted_intercepts(
        resid, sparse["Subject"].astype(str), fit.VarCorr["vcov"].iloc[0], fit.sigma ** 2)
    ranef = fit.ranef["Subject"]["(Intercept)"]
    np.testing.assert_allclose(by_hand.loc[ranef.index].to_numpy(), ranef.to_numpy(),
                               rtol=1e-8, atol=1e-8)


def test_precision_weighted_intercepts_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match="residuals has 3 values but groups has 2"):
        pooling.precision_weighted_intercepts([1.0, 2.0, 3.0], ["a", "b"], 1.0, 1.0)


def test_truncate_groups_keeps_first_rows_of_chosen_groups(sleep):
    sparse, kept = pooling.truncate_groups(sleep, n_groups=4, keep=(2, 3), seed=5)
    again, kept_again = pooling.truncate_groups(sleep, n_groups=4, keep=(2, 3), seed=5)
    pd.testing.assert_frame_equal(sparse, again)
    assert len(kept) == 4 and set(kept) <= {2, 3}
    counts = sparse.groupby("Subject", observed=True).size()
    for subject, k in kept.items():
        assert counts[subject] == k
        assert sorted(sparse.loc[sparse["Subject"] == subject, "Days"]) == list(range(k))
    assert (counts.drop(index=kept.index) == 10).all()


@pytest.mark.parametrize(
    "kwargs,message",
    [({"n_groups": 0}, "n_groups must be between 1 and the 18 groups, got 0"),
     ({"n_groups": 19}, "n_groups must be between 1 and the 18 groups, got 19"),
     ({"keep": ()}, "keep must list row counts of at least 1"),
     ({"keep": (0, 2)}, "keep must list row counts of at least 1")],
)
def test_truncate_groups_rejects_bad_arguments(sleep, kwargs, message):
    with pytest.raises(ValueError, match=message):
        pooling.truncate_groups(sleep, **kwargs)


def test_held_out_split_takes_each_groups_first_days(sleep):
    train, test = pooling.held_out_split(sleep.sample(frac=1, random_state=0), n_train=4)
    assert set(train["Days"]) == {0, 1, 2, 3} and set(test["Days"]) == set(range(4, 10))
    assert len(train) == 72 and len(test) == 108
    with pytest.raises(ValueError, match="n_train must be an integer >= 2, got 1"):
        pooling.held_out_split(sleep, n_train=1)
    with pytest.raises(ValueError, match="n_train=10 leaves no rows to test"):
        pooling.held_out_split(sleep, n_train=10)


def test_predict_held_out_matches_each_method_and_partial_wins_at_six_days(sleep):
    train, test = pooling.held_out_split(sleep, n_train=6)
    preds = pooling.predict_held_out(train, test)
    assert list(preds.columns) == ["Reaction", *pooling.METHODS]
    assert preds.index.equals(test.index)
    ols = smf.ols("Reaction ~ 1 + Days", data=train).fit()
    np.testing.assert_allclose(preds["complete"], ols.predict(test))
    fit = lmer("Reaction ~ 1 + Days + (1 + Days | Subject)", train)
    np.testing.assert_allclose(preds["partial"], fit.predict(test))
    rmse = pooling.prediction_error(preds)
    assert rmse["partial"] < rmse["no"] < rmse["complete"]
    manual = np.sqrt(((preds["no"] - preds["Reaction"]) ** 2).mean())
    assert rmse["no"] == pytest.approx(manual)


def test_predict_held_out_rejects_unseen_groups(sleep):
    train = sleep[sleep["Subject"] != "308"]
    with pytest.raises(ValueError, match=r"test has group\(s\) \['308'\] of 'Subject'"):
        pooling.predict_held_out(train, sleep[sleep["Subject"] == "308"])


def test_prediction_error_needs_every_method_column():
    with pytest.raises(ValueError, match="column 'complete' not found in predictions"):
        pooling.prediction_error(pd.DataFrame({"Reaction": [1.0]}))


@pytest.mark.parametrize(
    "kwargs,message",
    [({"num_chains": 0}, "num_chains must be a positive integer, got 0"),
     ({"num_samples": 2.5}, "num_samples must be a positive integer, got 2.5")],
)
def test_fit_numpyro_rejects_bad_counts(sleep, kwargs, message):
    with pytest.raises(ValueError, match=message):
        pooling.fit_numpyro(sleep, **kwargs)


def test_numpyro_posterior_means_are_close_to_lmer(sleep, fit4):
    bayes = pooling.fit_numpyro(sleep, num_chains=2, num_warmup=500, num_samples=1000, seed=1)
    assert bayes.n_divergent == 0 and (bayes.r_hat < 1.01).all(), bayes.r_hat
    post = bayes.params["mean"]
    np.testing.assert_allclose(post[["(Intercept)", "Days"]], fit4.fixef, rtol=0.02)
    vc = fit4.VarCorr
    np.testing.assert_allclose(post[["sd (Intercept)", "sd Days", "sigma"]],
                               [vc["sdcor"][0], vc["sdcor"][1], fit4.sigma], rtol=0.2)
    coef = fit4.coef["Subject"].to_numpy()
    assert np.abs(bayes.coef.to_numpy() - coef).max(axis=0)[0] < 2.0   # ms
    assert np.abs(bayes.coef.to_numpy() - coef).max(axis=0)[1] < 0.5   # ms/day
    assert bayes.samples["corr"].min() >= -1 and bayes.samples["corr"].max() <= 1
