"""Tests of course_lib.lfp.simulate_lfp: layout, determinism, and the simulated effects.

Expected values come from the simulation's own parameters (the module docstring's model),
never from a previous run.
"""

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf

from course_lib.lfp import simulate_lfp, simulate_power

TRIAL_COLUMNS = ["mouse", "stim", "trial", "power", "log_power"]


@pytest.fixture(scope="module")
def default_data():
    return simulate_lfp(seed=3)


def test_default_shapes_are_480_trials_and_72000_samples(default_data):
    trials, samples = default_data
    assert trials.shape == (8 * 2 * 30, 5), trials.shape
    assert samples.shape == (8 * 2 * 30 * 150, 6), samples.shape
    assert list(trials.columns) == TRIAL_COLUMNS
    assert list(samples.columns) == ["mouse", "stim", "trial", "sample", "power", "log_power"]


def test_every_mouse_has_n_trials_per_condition_with_alternating_stim(default_data):
    trials, _ = default_data
    counts = trials.groupby(["mouse", "stim"]).size()
    assert (counts == 30).all(), counts
    assert set(trials["stim"]) == {0, 1}
    assert (trials["stim"] == trials["trial"] % 2).all(), "stim should be on on odd trials"
    assert not trials.duplicated(["mouse", "trial"]).any(), "trial should be unique in a mouse"


def test_parameters_change_sizes():
    trials, samples = simulate_lfp(n_mice=3, n_trials=4, seed=0, n_samples=7)
    assert len(trials) == 3 * 2 * 4 and len(samples) == 3 * 2 * 4 * 7
    assert samples.groupby(["mouse", "trial"]).size().eq(7).all()


def test_same_seed_gives_same_data_and_other_seed_differs():
    a_trials, a_samples = simulate_lfp(seed=11)
    b_trials, b_samples = simulate_lfp(seed=11)
    pd.testing.assert_frame_equal(a_trials, b_trials)
    pd.testing.assert_frame_equal(a_samples, b_samples)
    c_trials, _ = simulate_lfp(seed=12)
    assert not np.allclose(a_trials["power"], c_trials["power"]), "seed 12 repeated seed 11"


def test_trial_power_is_mean_of_its_sample_power(default_data):
    trials, samples = default_data
    means = samples.groupby(["mouse", "trial"])["power"].mean()
    got = trials.set_index(["mouse", "trial"])["power"]
    np.testing.assert_allclose(got.to_numpy(), means.loc[got.index].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(trials["log_power"], np.log(trials["power"]), rtol=1e-12)
    np.testing.assert_allclose(samples["log_power"], np.log(samples["power"]), rtol=1e-12)
    stim_of_sample = samples.groupby(["mouse", "trial"])["stim"].agg(["min", "max"])
    assert (stim_of_sample["min"] == stim_of_sample["max"]).all(), "stim varies within a trial"


def test_samples_vary_within_a_trial_with_the_set_coefficient_of_variation(default_data):
    _, samples = default_data
    cv = samples.groupby(["mouse", "trial"])["power"].agg(lambda p: p.std() / p.mean())
    # sample_shape = 16: coefficient of variation 1/sqrt(16) = 0.25 (simulation parameter)
    assert cv.min() > 0.1, f"samples barely vary: smallest within-trial CV {cv.min():.3f}"
    assert abs(cv.mean() - 0.25) < 0.01, f"mean within-trial CV {cv.mean():.3f}, expected 0.25"


def test_stimulation_raises_log_power_by_the_simulated_amount():
    # Truth: the mean of kappa (L - b_j) over the simulated mice, stored in attrs["truth"].
    diffs = []
    for seed in range(5):
        trials, _ = simulate_lfp(seed=seed)
        truth = trials.attrs["truth"]
        fit = smf.ols("log_power ~ C(mouse) + stim", trials).fit()
        diffs.append(fit.params["stim"] - truth["sample_mean_effect"])
        assert fit.params["stim"] > 0, f"seed {seed}: stimulation lowered power"
    assert abs(np.mean(diffs)) < 0.03, f"OLS stim effect off the truth by {np.mean(diffs):.3f}"


def test_population_mean_effect_is_slope_times_distance_to_ceiling():
    trials, _ = simulate_lfp(mouse_response_slope=0.5, response_sd=0.0, seed=0)
    truth = trials.attrs["truth"]
    assert truth["mean_effect"] == pytest.approx(0.5 * (4.6 - 4.0))
    np.testing.assert_allclose(truth["delta"], 0.5 * (4.6 - truth["b"]))


def test_default_mice_have_responses_of_their_own_not_tied_to_baseline():
    # delta_j = kappa (L - b_j) + tau eta_j with tau = 0.15 by default: the residual of the
    # effect on baseline has the spread tau (true parameters, 2,000 mice).
    trials, _ = simulate_lfp(n_mice=2000, n_trials=1, n_samples=1, seed=2)
    truth = trials.attrs["truth"]
    resid = truth["delta"] - 0.3 * (4.6 - truth["b"])
    assert truth["response_sd"] == 0.15
    assert abs(resid.std() / 0.15 - 1) < 0.05, resid.std()
    assert -0.99 < np.corrcoef(truth["b"], truth["delta"])[0, 1] < 0


def test_default_chapter_data_are_not_singular_under_random_slopes():
    # The chapter's data: (1 + stim | mouse) has an interior intercept-slope correlation and
    # a stim SD above zero (with response_sd = 0 the correlation is -1, a singular fit).
    from course_lib.mixed import lmer

    trials, _ = simulate_lfp(n_mice=8, n_trials=30, baseline_sd=0.6, seed=4)
    vc = lmer("log_power ~ stim + (1 + stim | mouse)", trials).VarCorr
    corr = vc.loc[vc["var2"].notna(), "sdcor"].iloc[0]
    sd_stim = vc.loc[(vc["var1"] == "stim") & vc["var2"].isna(), "sdcor"].iloc[0]
    assert -0.95 < corr < 0.95 and sd_stim > 0.05, vc


def test_mice_with_higher_baseline_respond_less():
    # Per-mouse response against per-mouse baseline: the slope should be -kappa = -0.3.
    slopes = []
    for seed in range(6):
        trials, _ = simulate_lfp(n_mice=20, n_trials=40, seed=seed)
        per = trials.groupby(["mouse", "stim"])["log_power"].mean().unstack()
        response = per[1] - per[0]
        slopes.append(np.polyfit(per[0], response, 1)[0])
        assert np.corrcoef(per[0], response)[0, 1] < 0, f"seed {seed}: no negative relation"
    assert abs(np.mean(slopes) + 0.3) < 0.1, f"mean slope {np.mean(slopes):.3f}, expected -0.3"


def test_slope_zero_and_no_own_response_gives_no_effect_in_any_mouse():
    trials, _ = simulate_lfp(mouse_response_slope=0.0, response_sd=0.0, seed=5)
    truth = trials.attrs["truth"]
    assert np.all(truth["delta"] == 0.0) and truth["mean_effect"] == 0.0
    # Over many null data sets the estimated effect averages zero.
    est = [smf.ols("log_power ~ C(mouse) + stim",
                   simulate_lfp(mouse_response_slope=0.0, response_sd=0.0,
                                seed=s)[0]).fit().params["stim"]
           for s in range(20)]
    # SE of one estimate ~ 0.3 * sqrt(2 / 240) = 0.027; of the mean of 20 ~ 0.006
    assert abs(np.mean(est)) < 0.02, f"null data show a mean effect of {np.mean(est):.4f}"


def test_slope_zero_keeps_the_other_draws_of_the_seed():
    null, _ = simulate_lfp(mouse_response_slope=0.0, seed=8)
    alt, _ = simulate_lfp(mouse_response_slope=0.3, seed=8)
    off = alt["stim"] == 0
    np.testing.assert_allclose(null.loc[off, "power"], alt.loc[off, "power"])


def test_slope_zero_is_null_on_average_over_mice():
    # Default response_sd: each mouse moves, the mean over 20 x 8 mice does not.
    deltas = np.concatenate([simulate_lfp(mouse_response_slope=0.0, seed=s, n_samples=1)[0]
                             .attrs["truth"]["delta"] for s in range(20)])
    # sd of the mean of 160 effects of sd 0.15: 0.012
    assert abs(deltas.mean()) < 0.04 and deltas.std() > 0.1, (deltas.mean(), deltas.std())


def test_response_sd_gives_zero_mean_but_varying_effects():
    trials, _ = simulate_lfp(mouse_response_slope=0.0, response_sd=0.2, seed=1)
    delta = trials.attrs["truth"]["delta"]
    assert trials.attrs["truth"]["mean_effect"] == 0.0
    assert delta.std() > 0.05, "response_sd did not spread the effects"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_mice": 1}, "n_mice must be at least 2"),
        ({"n_mice": 2.5}, "n_mice must be an integer"),
        ({"n_trials": 0}, "n_trials must be at least 1"),
        ({"n_samples": 0}, "n_samples must be at least 1"),
        ({"seed": -1}, "seed must be at least 0"),
        ({"seed": "a"}, "seed must be an integer"),
        ({"mouse_response_slope": float("nan")}, "mouse_response_slope must be a finite"),
        ({"mouse_response_slope": "0.3"}, "mouse_response_slope must be a finite"),
        ({"baseline_sd": -0.1}, "baseline_sd must be zero or positive"),
        ({"trial_sd": -1.0}, "trial_sd must be zero or positive"),
        ({"response_sd": -1.0}, "response_sd must be zero or positive"),
        ({"sample_shape": 0.0}, "sample_shape must be positive"),
    ],
)
def test_bad_arguments_raise_value_error_naming_them(kwargs, message):
    with pytest.raises(ValueError, match=message):
        simulate_lfp(**kwargs)


def test_power_table_has_one_row_per_design_with_wilson_intervals():
    table = simulate_power(n_mice=[4, 8], n_trials=[5, 20, 40], n_sims=50, seed=1)
    assert list(table[["n_mice", "n_trials"]].itertuples(index=False, name=None)) == [
        (4, 5), (4, 20), (4, 40), (8, 5), (8, 20), (8, 40)]
    assert ((table["ci_low"] <= table["power"]) & (table["power"] <= table["ci_high"])).all()
    np.testing.assert_allclose(table["power"], table["rejections"] / 50)
    pd.testing.assert_frame_equal(table, simulate_power(n_mice=[4, 8], n_trials=[5, 20, 40],
                                                        n_sims=50, seed=1))


def test_power_of_null_data_is_the_test_level():
    # slope 0: the paired t-test on mouse differences is exact, so its rejection rate is
    # alpha = 0.05 (binomial sd over 2,000 data sets: 0.005)
    table = simulate_power(n_mice=[6], n_trials=[10], n_sims=2000, mouse_response_slope=0.0,
                           seed=2)
    assert abs(table["power"].iloc[0] - 0.05) < 0.017, table


def test_power_matches_the_paired_t_test_on_simulate_lfp_data():
    # The fast trial-level simulation against the full sample-level simulator: same power
    # (2 x 300 data sets; binomial sd of a difference ~0.04).
    from scipy import stats

    fast = simulate_power(n_mice=[6], n_trials=[5], n_sims=300, seed=3)["power"].iloc[0]
    hits = 0
    for s in range(300):
        trials, _ = simulate_lfp(n_mice=6, n_trials=5, n_samples=20, seed=s)
        per = trials.groupby(["mouse", "stim"])["log_power"].mean().unstack()
        hits += stats.ttest_1samp(per[1] - per[0], 0.0).pvalue < 0.05
    fast20 = simulate_power(n_mice=[6], n_trials=[5], n_sims=300, seed=3, n_samples=20)
    assert abs(fast20["power"].iloc[0] - hits / 300) < 0.12, (fast20, hits)
    assert 0.2 < fast < 0.95, fast


def test_more_mice_buy_more_power_than_more_trials():
    # Trial noise SE at 20 trials (0.3 * sqrt(2/20) = 0.095) is below the effects' spread
    # (sqrt(0.12^2 + 0.15^2) = 0.19): 4x the trials adds little, 4x the mice a lot.
    t = simulate_power(n_mice=[4, 16], n_trials=[20, 80], n_sims=400, seed=4).set_index(
        ["n_mice", "n_trials"])["power"]
    assert t[(16, 20)] - t[(4, 20)] > 3 * (t[(4, 80)] - t[(4, 20)]) and t[(16, 20)] > 0.6, t


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"n_mice": [1, 4]}, "n_mice must be at least 2"),
        ({"n_trials": []}, "n_trials is empty"),
        ({"n_trials": "ab"}, "n_trials must be an integer"),
        ({"n_sims": 5}, "n_sims must be at least 10"),
        ({"alpha": 1.5}, "alpha must be between 0 and 1"),
        ({"trial_sd": -1.0}, "trial_sd must be zero or positive"),
    ],
)
def test_simulate_power_bad_arguments_raise_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        simulate_power(**kwargs)
