"""Tests of course_lib.neurons: the simulated population and its true parameters, the closed-form
poolings, held-out splits, and recovery of the true parameters by glmer and by NumPyro."""

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from course_lib import neurons as nr
from course_lib.mixed import glmer

FORMULA = "count ~ stim + (1 + stim | neuron) + offset(log(duration))"


@pytest.fixture(scope="module")
def population():
    return nr.simulate_population(seed=2)


def test_simulation_is_seeded_and_has_the_requested_layout(population):
    data, truth = population
    again, _ = nr.simulate_population(seed=2)
    other, _ = nr.simulate_population(seed=1)
    pd.testing.assert_frame_equal(data, again)
    assert not data["count"].equals(other["count"])
    sizes = data.groupby("neuron").size()
    assert len(sizes) == 60 and sorted(sizes.unique()) == [4, 40]
    assert (sizes == 4).sum() == 12 == truth["neurons"]["sparse"].sum()
    assert data["duration"].between(0.5, 2.0).all() and data["duration"].nunique() == len(data)
    rates = truth["neurons"][["rate0", "rate1"]]
    assert ((rates >= 1) & (rates <= 50)).all().all()
    assert (data.groupby(["neuron", "stim"]).size() == sizes.repeat(2).to_numpy() // 2).all()


def test_counts_follow_the_true_rates_times_duration(population):
    # For each well-sampled neuron, the spike total of a condition is Poisson with mean
    # rate * total duration: the standardised totals are about N(0, 1).
    data, truth = population
    cells = data.groupby(["neuron", "stim"])[["count", "duration"]].sum().reset_index()
    t = truth["neurons"]
    rate = np.where(cells["stim"] == 1, cells["neuron"].map(t["rate1"]),
                    cells["neuron"].map(t["rate0"]))
    mu = rate * cells["duration"]
    z = (cells["count"] - mu) / np.sqrt(mu)
    assert abs(z.mean()) < 3 / np.sqrt(len(z))
    assert 0.75 < z.std() < 1.25


def test_overdispersion_adds_trial_level_variance():
    plain, _ = nr.simulate_population(seed=3, n_neurons=40, n_sparse=0)
    noisy, _ = nr.simulate_population(seed=3, n_neurons=40, n_sparse=0, overdispersion=0.6)
    assert noisy["count"].var() > 1.5 * plain["count"].var()


@pytest.mark.parametrize("kwargs, match", [
    ({"n_trials": 5}, "even"),
    ({"n_sparse": 70}, "cannot exceed"),
    ({"sd_effect": 0.0}, "sd_effect must be positive"),
    ({"corr": 1.0}, "corr must lie"),
    ({"overdispersion": -0.1}, "overdispersion"),
    ({"duration": (0.0, 1.0)}, "duration"),
    ({"rate_range": (10, 50)}, "must contain baseline_rate"),
    ({"n_neurons": 1}, "n_neurons"),
])
def test_simulation_rejects_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        nr.simulate_population(**kwargs)


def test_no_pooling_equals_a_poisson_glm_per_neuron(population):
    data, _ = population
    mine = nr.no_pooling(data)
    for neuron in ["n03", "n17", mine.index[mine["n_trials"] == 4][0]]:
        rows = data[data["neuron"] == neuron]
        glm = sm.GLM(rows["count"], sm.add_constant(rows["stim"].astype(float)),
                     family=sm.families.Poisson(), offset=np.log(rows["duration"])).fit()
        np.testing.assert_allclose([mine.loc[neuron, "log_rate0"], mine.loc[neuron, "effect"]],
                                   glm.params.to_numpy(), rtol=1e-6)


def test_complete_pooling_equals_one_poisson_glm(population):
    data, _ = population
    glm = sm.GLM(data["count"], sm.add_constant(data["stim"].astype(float)),
                 family=sm.families.Poisson(), offset=np.log(data["duration"])).fit()
    mine = nr.complete_pooling(data)
    np.testing.assert_allclose([mine["log_rate0"], mine["effect"]], glm.params, rtol=1e-6)


def test_no_pooling_gives_minus_infinity_for_a_silent_condition():
    data = pd.DataFrame({"neuron": ["a"] * 4, "stim": [0, 1, 0, 1],
                         "duration": [1.0, 1.0, 1.0, 1.0], "count": [0, 3, 0, 2]})
    out = nr.no_pooling(data)
    assert out.loc["a", "log_rate0"] == -np.inf and out.loc["a", "rate1"] == 2.5


@pytest.mark.parametrize("change, match", [
    (lambda d: d.drop(columns="duration"), "duration"),
    (lambda d: d.assign(count=d["count"] - 100), "non-negative"),
    (lambda d: d.assign(count=d["count"] + 0.5), "whole numbers"),
    (lambda d: d.assign(duration=0.0), "positive"),
    (lambda d: d.assign(stim=2), "stim"),
])
def test_population_functions_reject_bad_data(population, change, match):
    with pytest.raises(ValueError, match=match):
        nr.no_pooling(change(population[0]))


def test_split_holds_out_one_trial_per_neuron_and_condition(population):
    data, _ = population
    train, test = nr.split_trials(data, held_out=1, seed=4)
    assert len(train) + len(test) == len(data)
    assert set(train["trial"]).isdisjoint(test["trial"])
    assert (test.groupby(["neuron", "stim"]).size() == 1).all()
    assert (train.groupby(["neuron", "stim"]).size() >= 1).all()
    again, _ = nr.split_trials(data, held_out=1, seed=4)
    pd.testing.assert_frame_equal(train, again)
    with pytest.raises(ValueError, match="no training trial"):
        nr.split_trials(data, held_out=2)


def test_predict_counts_is_rate_times_duration(population):
    data, _ = population
    rows = data.head(6)
    pooled = pd.Series({"rate0": 2.0, "rate1": 5.0})
    np.testing.assert_allclose(nr.predict_counts(pooled, rows),
                               np.where(rows["stim"] == 1, 5.0, 2.0) * rows["duration"])
    with pytest.raises(ValueError, match="no rates for neurons"):
        nr.predict_counts(pd.DataFrame({"rate0": [1.0], "rate1": [1.0]}, index=["x"]), rows)


def test_poisson_deviance_matches_statsmodels():
    y, mu = np.array([0, 1, 4, 9.0]), np.array([0.5, 2.0, 4.0, 3.0])
    expected = sm.families.Poisson().resid_dev(y, mu) ** 2
    np.testing.assert_allclose(nr.poisson_deviance(y, mu), expected)
    assert nr.poisson_deviance([2.0], [0.0])[0] == np.inf


def test_glmer_recovers_the_true_parameters_within_wald_intervals(population):
    data, truth = population
    fit = glmer(FORMULA, data)
    lo = fit.fixef - 1.96 * fit.fixef_se
    hi = fit.fixef + 1.96 * fit.fixef_se
    assert ((lo <= truth["beta"]) & (truth["beta"] <= hi)).all(), (lo, hi, truth["beta"])
    sd = fit.VarCorr["sdcor"].to_numpy()[:2]
    np.testing.assert_allclose(sd, truth["sd"], rtol=0.3)
    # partial pooling: the tuning of sparse neurons is closer to the truth than no pooling's
    t = truth["neurons"]
    part = nr.partial_pooling(fit)
    nop = nr.no_pooling(data)
    sparse = t.index[t["sparse"]]
    err_p = (part.loc[sparse, "effect"] - t.loc[sparse, "effect"]).abs().mean()
    err_n = (nop.loc[sparse, "effect"] - t.loc[sparse, "effect"]).abs().mean()
    assert err_p < err_n


def test_choices_recover_the_true_parameters():
    data, truth = nr.simulate_choices(seed=3)
    assert set(data["correct"]) == {0, 1} and data["session"].nunique() == 60
    fit = glmer("correct ~ contrast + (1 | mouse) + (1 | session)", data, family="binomial")
    z = (fit.fixef.to_numpy() - truth["beta"]) / fit.fixef_se.to_numpy()
    assert (np.abs(z) < 1.96).all(), z
    with pytest.raises(ValueError, match="sd_mouse"):
        nr.simulate_choices(sd_mouse=0)


@pytest.fixture(scope="module")
def numpyro_fit(population):
    data, _ = population
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return nr.fit_glmm_numpyro(data, num_warmup=500, num_samples=500, seed=0)


def test_numpyro_recovers_the_truth_and_agrees_with_glmer(numpyro_fit, population):
    data, truth = population
    s = numpyro_fit["summary"]
    assert (s["r_hat"] < 1.05).all(), s
    for name, value in zip(["beta0", "beta1", "sd0", "sd1"],
                           [*truth["beta"], *truth["sd"]], strict=True):
        assert s.loc[name, "2.5%"] <= value <= s.loc[name, "97.5%"], (name, value, s)
    fit = glmer(FORMULA, data)
    np.testing.assert_allclose(s.loc[["beta0", "beta1"], "mean"], fit.fixef, atol=0.03)


def test_posterior_predictive_dispersion_flags_only_overdispersed_counts(numpyro_fit,
                                                                         population):
    data, _ = population
    obs, rep = nr.posterior_predictive_dispersion(numpyro_fit, data, n_draws=100, seed=1)
    # Poisson data: the observed dispersion is typical of the replicated ones
    assert 0.05 < np.mean(rep >= obs) < 0.95
    noisy, _ = nr.simulate_population(seed=2, overdispersion=0.5)
    obs2, rep2 = nr.posterior_predictive_dispersion(numpyro_fit, noisy, n_draws=100, seed=1)
    assert np.mean(rep2 >= obs2) == 0.0 and obs2 > 2


def test_cell_dispersion_is_about_one_for_poisson_counts(population):
    data, _ = population
    rng = np.random.default_rng(0)
    values = [nr.cell_dispersion(data, rng.poisson(5 * data["duration"])) for _ in range(50)]
    assert abs(np.mean(values) - 1) < 0.02
    with pytest.raises(ValueError, match="one value per trial"):
        nr.cell_dispersion(data, [1, 2])


def test_fit_numpyro_rejects_an_unknown_family(population):
    with pytest.raises(ValueError, match="family"):
        nr.fit_glmm_numpyro(population[0], family="gaussian")


# --------------------------------------------------------------------------------------------
# The chapter's glmer fits against lme4 (tests/reference/engine/chapter6_reference.R)

REFERENCE = Path(__file__).parent / "reference" / "engine"
sys.path.insert(0, str(REFERENCE))
from chapter6_data import MODELS, chapter6_datasets  # noqa: E402

LME4 = json.loads((REFERENCE / "chapter6_reference.json").read_text(encoding="utf-8"))["fits"]


@pytest.fixture(scope="module")
def chapter_data():
    return chapter6_datasets()


def _sig3(got, expected):
    """Equal to 3 significant figures, read strictly: relative difference at most 1e-3."""
    np.testing.assert_allclose(got, expected, rtol=1e-3)


@pytest.mark.parametrize("name", list(MODELS))
def test_chapter_glmer_fits_equal_lme4_to_three_significant_figures(name, chapter_data):
    dataset, formula, family = MODELS[name]
    ref = LME4[name]
    assert ref["formula"] == formula and ref["messages"] is None and not ref["singular"]
    fit = glmer(formula, chapter_data[dataset], family=family)
    assert fit.nobs == ref["nobs"]
    names = list(ref["fixef"])
    _sig3(fit.fixef[names].to_numpy(), [ref["fixef"][k] for k in names])
    # standard errors: to 5e-4 against the exact Laplace SEs at lme4's optimum (the script's
    # glmer_laplace.R: numDeriv's Hessian of the Laplace deviance, PIRLS solved from zero at each
    # point); lme4's own vcov comes from a finite-difference Hessian over warm-started PIRLS
    # stopped at tolPwrss, which puts up to 0.15 % of noise in it (noisy_poisson's stim)
    np.testing.assert_allclose(fit.fixef_se[names].to_numpy(),
                               [ref["fixef_se_laplace"][k] for k in names], rtol=5e-4)
    np.testing.assert_allclose(fit.fixef_se[names].to_numpy(),
                               [ref["fixef_se"][k] for k in names], rtol=2e-3)
    ours = {(r.grp, r.var1, None if pd.isna(r.var2) else r.var2): r.sdcor
            for r in fit.VarCorr.itertuples()}
    theirs = {(v["grp"], v["var1"], v["var2"]): v["sdcor"] for v in ref["varcorr"]}
    assert set(ours) == set(theirs)
    keys = sorted(theirs, key=str)
    _sig3([ours[k] for k in keys], [theirs[k] for k in keys])
    _sig3(fit.logLik, ref["logLik"])
    _sig3(fit.overdispersion()["chisq"], ref["pearson_chisq"])
