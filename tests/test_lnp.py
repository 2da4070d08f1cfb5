"""Tests for course_lib.lnp (chapter 5: LNP receptive fields).

Reference numbers come from (a) statsmodels 0.15.0
``GLM(c, s, family=Poisson(), offset=log(dt * R)).fit()`` on the same data, (b) glum 3.4.1
``GeneralizedLinearRegressor(family="poisson", l1_ratio=0)`` for the ridge fit, (c) the
lasso's optimality (KKT) conditions, and (d) the true simulated parameters (seeds below).
Correlation bounds for the recorded-format neuron were measured on the shipped data
(seed 2024): spatial 0.851, temporal 0.9992; the bounds leave room below those.
"""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import optimize, stats

from course_lib import lnp

DT, R, V = 0.1, 50.0, 5.0  # the lab's setup: 0.1 s bins, 50 spikes/s, stimulus variance 5


@pytest.fixture(scope="module")
def lab_data():
    w = lnp.gaussian_rf(15, 2.0)
    c, r, s = lnp.sample_lnp(w, n_t=1000, dt=DT, R=R, v=V, seed=1)
    return w, c, r, s


@pytest.fixture(scope="module")
def recorded():
    rec = lnp.load_recorded_neuron()
    counts = lnp.bin_spikes(rec.spike_times, rec.trigger_times)
    W = lnp.fit_lagged(counts, rec.contrast, lags=range(5), dt=rec.frame_interval)
    return rec, counts, W


def _corr(a, b):
    return float(np.corrcoef(a, b)[0, 1])


# ----------------------------------------------------------------------------- model


def test_gaussian_rf_is_unit_norm_flattened_with_peak_at_center():
    w = lnp.gaussian_rf(15, 2.0)
    assert w.shape == (225,)
    assert np.isclose(np.linalg.norm(w), 1.0)
    assert np.unravel_index(np.argmax(w), (15, 15)) == (7, 7)
    w2 = lnp.gaussian_rf(15, 2.0, center=(3, 10))
    assert np.unravel_index(np.argmax(w2), (15, 15)) == (3, 10)


def test_gaussian_rf_sum_normalised_as_the_labs_code_gives_a_realistic_rate():
    # E[exp(w's)] = exp(v ||w||^2 / 2) for s ~ N(0, v I): with weights summing to 1 the
    # lab's neuron (R = 50, v = 5) fires about 53 spikes/s; with ||w|| = 1, about 600.
    w = lnp.gaussian_rf(15, 2.0, normalize="sum")
    assert np.isclose(w.sum(), 1.0) and np.unravel_index(np.argmax(w), (15, 15)) == (7, 7)
    np.testing.assert_allclose(w, lnp.gaussian_rf(15, 2.0) / lnp.gaussian_rf(15, 2.0).sum())
    for seed in range(20):
        c, _, _ = lnp.sample_lnp(w, n_t=1000, dt=DT, R=R, v=V, seed=seed)
        assert 45 < c.mean() / DT < 60 and c.max() <= 50, (seed, c.mean() / DT, c.max())
    c_unit, _, _ = lnp.sample_lnp(lnp.gaussian_rf(15, 2.0), n_t=1000, dt=DT, R=R, v=V, seed=1)
    assert c_unit.mean() / DT > 400 and c_unit.max() > 1000
    with pytest.raises(ValueError, match="normalize must be 'norm'.*or 'sum'.*got 'l1'"):
        lnp.gaussian_rf(15, 2.0, normalize="l1")


def test_fit_rf_at_the_realistic_rate_improves_with_bins_as_chapter_5_states():
    # chapter 5's sample-size claims, on seeds the chapter does not use
    w = lnp.gaussian_rf(15, 2.0, normalize="sum")
    for seed in (20, 21, 22):
        corrs = []
        for n_t in (1000, 10_000):
            c, _, s = lnp.sample_lnp(w, n_t=n_t, dt=DT, R=R, v=V, seed=seed)
            corrs.append(_corr(lnp.fit_rf(c, s, DT, R).w, w))
        assert 0.7 < corrs[0] < 0.85 and corrs[1] > 0.95, (seed, corrs)


def test_sample_lnp_draws_white_gaussian_stimulus_of_variance_v_and_poisson_counts(lab_data):
    w, c, r, s = lab_data
    assert s.shape == (1000, 225) and c.shape == r.shape == (1000,)
    assert abs(s.var() - V) < 0.05 * V, "each pixel should have variance v"
    assert abs(s.mean()) < 0.02
    corr = np.corrcoef(s[:, :20].T)[np.triu_indices(20, 1)]
    assert np.max(np.abs(corr)) < 0.15, "pixels should be uncorrelated"
    np.testing.assert_allclose(r, np.exp(s @ w) * DT * R)
    assert np.issubdtype(c.dtype, np.integer) and c.min() >= 0
    # Poisson: the counts' mean tracks r (sum of counts vs sum of expectations)
    assert abs(c.sum() - r.sum()) < 4 * np.sqrt(r.sum())
    c2, r2, s2 = lnp.sample_lnp(w, n_t=1000, dt=DT, R=R, v=V, seed=1)
    assert np.array_equal(c, c2) and np.array_equal(s, s2), "same seed, same draw"


# ---------------------------------------------------------------------- likelihood


def test_negloglik_gradient_matches_finite_differences_check_grad(lab_data):
    _, c, _, s = lab_data
    w0 = np.random.default_rng(3).normal(0, 0.05, s.shape[1])
    f = lambda w: lnp.negloglik(w, c, s, DT, R)[0]  # noqa: E731
    g = lambda w: lnp.negloglik(w, c, s, DT, R)[1]  # noqa: E731
    err = optimize.check_grad(f, g, w0)
    assert err < 1e-6 * np.linalg.norm(g(w0)), f"check_grad error {err}"


def test_negloglik_is_minus_poisson_loglik_up_to_the_dropped_constant(lab_data):
    w, c, _, s = lab_data
    w_test = 0.7 * w
    f, _ = lnp.negloglik(w_test, c, s, DT, R)
    full = stats.poisson.logpmf(c, np.exp(s @ w_test) * DT * R).sum()
    # dropped: -sum log c!  and  sum c log(dt R)
    const = -np.sum([np.sum(np.log(np.arange(1, k + 1))) for k in c]) + c.sum() * np.log(DT * R)
    assert np.isclose(f, -(full - const), rtol=1e-10)


def test_fit_rf_equals_statsmodels_poisson_glm_mle(lab_data):
    _, c, _, s = lab_data
    fit = lnp.fit_rf(c, s, DT, R)
    ref = sm.GLM(c, s, family=sm.families.Poisson(),
                 offset=np.full(c.size, np.log(DT * R))).fit(tol=1e-12)
    rel = np.linalg.norm(fit.w - ref.params) / np.linalg.norm(ref.params)
    assert fit.converged and rel < 1e-4, f"relative difference to statsmodels GLM {rel:.2e}"


def test_fit_rf_with_estimated_rate_equals_statsmodels_glm_with_intercept():
    w = lnp.gaussian_rf(8, 1.5)
    c, _, s = lnp.sample_lnp(w, n_t=800, dt=DT, R=R, v=V, seed=4)
    fit = lnp.fit_rf(c, s, DT, None)
    X = np.column_stack([s, np.ones(c.size)])
    ref = sm.GLM(c, X, family=sm.families.Poisson(),
                 offset=np.full(c.size, np.log(DT))).fit(tol=1e-12)
    rel = np.linalg.norm(fit.w - ref.params[:-1]) / np.linalg.norm(ref.params[:-1])
    assert rel < 1e-4
    assert np.isclose(fit.R, np.exp(ref.params[-1]), rtol=1e-4)


def test_fit_rf_estimate_correlates_with_true_rf_and_improves_as_n_t_grows():
    w = lnp.gaussian_rf(15, 2.0)
    corrs, errs = [], []
    for n_t in (400, 1000, 4000):
        c, _, s = lnp.sample_lnp(w, n_t=n_t, dt=DT, R=R, v=V, seed=0)
        w_hat = lnp.fit_rf(c, s, DT, R).w
        corrs.append(_corr(w_hat, w))
        errs.append(np.linalg.norm(w_hat - w))
    assert corrs[0] > 0.9 and corrs[-1] > 0.995, corrs
    assert corrs[0] < corrs[1] < corrs[2], f"correlation should grow with n_t: {corrs}"
    assert errs[0] > errs[1] > errs[2], f"error should shrink with n_t: {errs}"


# ------------------------------------------------------------------------- binning


def test_bin_spikes_spike_just_after_trigger_k_lands_in_bin_k():
    triggers = np.array([1.0, 1.05, 1.10, 1.15])
    eps = 1e-6
    spikes = [1.05 + eps, 1.10 - eps, 1.10, 0.5, 1.15 + eps]
    counts = lnp.bin_spikes(spikes, triggers)
    # 1.05+eps -> frame 1; 1.10-eps -> frame 1; 1.10 exactly -> frame 2 (starts there);
    # 0.5 is before the first frame (dropped); 1.15+eps -> last frame (closed at +0.05)
    np.testing.assert_array_equal(counts, [0, 2, 1, 1])


def test_bin_spikes_last_frame_is_half_open_and_uses_given_duration():
    triggers = np.array([0.0, 1.0, 2.0])
    # 3.0 is exactly the end of the last frame: it belongs to no frame, although
    # np.histogram's last bin is closed on the right
    assert lnp.bin_spikes([2.5, 3.0], triggers).tolist() == [0, 0, 1]
    assert lnp.bin_spikes([2.5, 3.0, 3.4], triggers, last_frame_duration=1.5).tolist() == [0, 0, 3]


def test_bin_spikes_on_recorded_neuron_counts_only_spikes_inside_frames(recorded):
    rec, counts, _ = recorded
    assert counts.shape == (1500,)
    end = rec.trigger_times[-1] + np.median(np.diff(rec.trigger_times))
    inside = np.sum((rec.spike_times >= rec.trigger_times[0]) & (rec.spike_times < end))
    assert counts.sum() == inside


# ----------------------------------------------------------------- recorded neuron


def test_shipped_recorded_neuron_files_equal_a_regeneration(tmp_path):
    shipped = Path(lnp.__file__).parent / "data" / "recorded_neuron"
    for path in lnp.write_recorded_neuron(tmp_path, seed=lnp.RECORDED_SEED):
        assert path.read_bytes() == (shipped / path.name).read_bytes(), path.name
    total = sum(p.stat().st_size for p in shipped.iterdir())
    assert total < 1_000_000, f"shipped data are {total} bytes"


def test_load_recorded_neuron_has_the_lab_layout():
    rec = lnp.load_recorded_neuron()
    assert rec.stimulus.shape == (1500, 300) and rec.stimulus.dtype == np.uint8
    assert set(np.unique(rec.stimulus)) == {0, 1}
    steps = np.diff(rec.trigger_times)
    assert np.all(steps > 0) and abs(np.median(steps) - 0.05) < 1e-3 and steps.std() > 0
    assert np.all(np.diff(rec.spike_times) >= 0)
    assert np.isclose(np.linalg.norm(rec.true_spatial_rf), 1.0)
    assert np.isclose(np.linalg.norm(rec.true_temporal_kernel), 1.0)


def test_lagged_fits_recover_the_simulated_kernels_lag_structure(recorded):
    rec, _, W = recorded
    assert W.shape == (300, 5)
    # each lag's filter projected on the true spatial RF should follow gain * temporal[lag]
    proj = rec.true_spatial_rf @ W
    expected = rec.true_gain * rec.true_temporal_kernel
    assert _corr(proj, expected) > 0.99, (proj, expected)
    assert np.argmax(proj) == np.argmax(expected) == 1, "peak at lag 1 (frame t - 1)"
    assert np.all(np.sign(proj) == np.sign(expected)), "biphasic: lags 3-4 negative"
    np.testing.assert_allclose(proj, expected, atol=0.15)


def test_lag_direction_counts_shifted_one_frame_move_the_peak(recorded):
    rec, counts, _ = recorded
    # pair counts[t] with frames[t + 1] (the mistake "counts and frames misaligned by one"):
    # the peak now appears one lag later (lag 2), so the alignment test above would fail
    W_shift = lnp.fit_lagged(counts[:-1], rec.contrast[1:], lags=range(5), dt=0.05)
    proj = rec.true_spatial_rf @ W_shift
    assert np.argmax(proj) == 2


def test_separate_space_time_recovers_true_spatial_rf_and_temporal_kernel(recorded):
    rec, _, W = recorded
    u, v, s1 = lnp.separate_space_time(W)
    assert u.shape == (300,) and v.shape == (5,)
    assert _corr(u, rec.true_spatial_rf) > 0.8  # measured 0.851
    assert _corr(v, rec.true_temporal_kernel) > 0.99  # measured 0.9992
    assert u @ rec.true_spatial_rf > 0, "sign convention: ON centre positive"
    assert 0.5 * rec.true_gain < s1 < 2 * rec.true_gain


def test_separate_space_time_sign_is_consistent_and_reconstructs_rank_one():
    rng = np.random.default_rng(0)
    u_true = lnp.gaussian_rf(6, 1.2)
    v_true = np.array([0.2, 1.0, -0.5, -0.7])
    v_true = v_true - v_true.mean()  # zero mean, so centring W leaves it rank one
    v_true /= np.linalg.norm(v_true)
    W = 3.0 * np.outer(u_true, v_true)
    u, v, s1 = lnp.separate_space_time(W)
    np.testing.assert_allclose(u, u_true, atol=1e-10)
    np.testing.assert_allclose(v, v_true, atol=1e-10)
    assert np.isclose(s1, 3.0)
    u_neg, v_neg, s_neg = lnp.separate_space_time(-W)
    np.testing.assert_allclose(u_neg, u_true, atol=1e-10)  # same spatial sign
    np.testing.assert_allclose(v_neg, -v_true, atol=1e-10)  # time course carries the flip
    Wn = W + 0.01 * rng.normal(size=W.shape)
    for M in (Wn, -Wn):
        u_m, _, _ = lnp.separate_space_time(M)
        assert u_m[np.argmax(np.abs(u_m))] > 0


def test_spike_triggered_average_points_along_true_rf(recorded):
    rec, counts, _ = recorded
    sta = lnp.spike_triggered_average(counts, rec.contrast, lags=range(5))
    assert sta.shape == (300, 5)
    assert _corr(sta[:, 1], rec.true_spatial_rf) > 0.6


def test_fit_joint_space_time_with_ridge_recovers_separable_filter():
    # small problem so the 4 * 36 weights fit quickly; counts drawn from the joint model
    rng = np.random.default_rng(5)
    u = lnp.gaussian_rf(6, 1.2)
    v = np.array([0.3, 1.0, -0.6, -0.4])
    v /= np.linalg.norm(v)
    frames = rng.choice([-1.0, 1.0], size=(3000, 36))
    X = lnp.lagged_design(frames, range(4))
    eta = X @ np.outer(u, v).T.ravel()
    counts = np.r_[np.zeros(3, int), rng.poisson(20.0 * np.exp(eta) * 0.05)]
    W = lnp.fit_joint(counts, frames, lags=range(4), dt=0.05, alpha=1.0)
    assert W.shape == (36, 4)
    assert _corr(W.ravel(), np.outer(u, v).ravel()) > 0.95


# ------------------------------------------------------------------ regularisation


def test_l1_gives_more_exact_zeros_than_l2_at_the_same_alpha(lab_data):
    w, c, _, s = lab_data
    l1 = lnp.fit_regularized(c, s, DT, R, alpha=100.0, penalty="l1")
    l2 = lnp.fit_regularized(c, s, DT, R, alpha=100.0, penalty="l2")
    n1, n2 = int(np.sum(l1.w == 0)), int(np.sum(l2.w == 0))
    assert n1 > n2 and n1 >= 20, (n1, n2)
    assert _corr(l1.w, w) > 0.99 and _corr(l2.w, w) > 0.99


def test_l1_fit_satisfies_the_lasso_optimality_conditions(lab_data):
    _, c, _, s = lab_data
    alpha = 100.0
    fit = lnp.fit_regularized(c, s, DT, R, alpha=alpha, penalty="l1")
    _, grad = lnp.negloglik(fit.w, c, s, DT, R)
    nz = fit.w != 0
    # nonzero weights: grad of -log L = -alpha * sign(w); zeros: |grad| <= alpha
    np.testing.assert_allclose(grad[nz], -alpha * np.sign(fit.w[nz]), atol=1e-4 * alpha)
    assert np.all(np.abs(grad[~nz]) <= alpha * (1 + 1e-4))


def test_l2_fit_equals_glum_ridge_poisson_glm(lab_data):
    from glum import GeneralizedLinearRegressor

    _, c, _, s = lab_data
    alpha = 100.0
    fit = lnp.fit_regularized(c, s, DT, R, alpha=alpha, penalty="l2")
    # glum minimises deviance/(2n) + a/2 ||w||^2, so a = 2 alpha / n
    ref = GeneralizedLinearRegressor(
        family="poisson", alpha=2 * alpha / c.size, l1_ratio=0.0, fit_intercept=False,
        gradient_tol=1e-10,
    ).fit(s, c, offset=np.full(c.size, np.log(DT * R)))
    rel = np.linalg.norm(fit.w - ref.coef_) / np.linalg.norm(ref.coef_)
    assert rel < 1e-4, rel
    assert np.linalg.norm(fit.w) < np.linalg.norm(lnp.fit_rf(c, s, DT, R).w), "ridge shrinks"


def test_cv_alpha_picks_a_finite_alpha_and_returns_a_tidy_table():
    w = lnp.gaussian_rf(8, 1.5)
    c, _, s = lnp.sample_lnp(w, n_t=300, dt=DT, R=R, v=V, seed=2)
    alphas = [1.0, 10.0, 100.0, 1e3, 1e4]
    cv = lnp.cv_alpha(c, s, DT, R, alphas, penalty="l2", n_folds=4, seed=0)
    assert isinstance(cv.table, pd.DataFrame) and len(cv.table) == len(alphas) * 4
    assert {"alpha", "fold", "heldout_loglik", "heldout_deviance"} <= set(cv.table.columns)
    assert np.all(np.isfinite(cv.table["heldout_loglik"]))
    assert cv.best_alpha in alphas and cv.best_alpha < max(alphas)
    best = cv.summary.set_index("alpha")["mean_heldout_loglik"]
    assert best[cv.best_alpha] > best[max(alphas)]
    again = lnp.cv_alpha(c, s, DT, R, alphas, penalty="l2", n_folds=4, seed=0)
    pd.testing.assert_frame_equal(cv.table, again.table)  # seeded folds


def test_cv_alpha_with_l1_counts_zeros_that_grow_with_alpha():
    w = lnp.gaussian_rf(6, 1.2)
    c, _, s = lnp.sample_lnp(w, n_t=300, dt=DT, R=R, v=V, seed=3)
    cv = lnp.cv_alpha(c, s, DT, R, [1.0, 100.0, 3000.0], penalty="l1", n_folds=3, seed=0)
    zeros = cv.summary["mean_n_zero"].to_numpy()
    assert zeros[0] < zeros[-1]
    assert np.isfinite(cv.best_alpha)


# ---------------------------------------------------------------------- grasshopper


@pytest.fixture(scope="module")
def grasshopper():
    rec = lnp.load_grasshopper(1)
    lags = np.arange(30)
    c, X, lag_times = lnp.temporal_design(rec.stimulus_db, rec.sampling_interval,
                                          rec.spike_times, 1e-3, lags, standardize=True)
    return rec, c, X, lag_times


def test_load_grasshopper_gives_seconds_and_20_khz_stimulus(grasshopper):
    rec, c, X, lag_times = grasshopper
    assert rec.sampling_interval == pytest.approx(50e-6)
    assert rec.stimulus.shape == (200_000,) and rec.duration == pytest.approx(10.0)
    assert rec.spike_times.size == 929
    assert 0 <= rec.spike_times.min() and rec.spike_times.max() < rec.duration
    assert rec.header["cut-off frequency (Hz)"] == "200"
    assert rec.stimulus_db.max() == pytest.approx(76.4286)
    # binned at 1 ms: refractoriness keeps counts at 0 or 1, and few spikes are lost
    assert c.max() == 1 and c.sum() >= 920
    assert X.shape == (c.size, 30) and lag_times[1] == pytest.approx(1e-3)


def test_grasshopper_temporal_rf_matches_the_spike_triggered_average(grasshopper):
    rec, c, X, lag_times = grasshopper
    # X already holds the lagged stimulus, so the STA over the same rows is one product
    sta = (c @ (X - X.mean(axis=0))) / c.sum()  # SD units, lags 0-29 ms
    # one lag at a time: each fit is a 1-D Poisson regression on the stimulus at that lag
    one_lag = np.array([lnp.fit_rf(c, X[:, [j]], 1e-3, None).w[0] for j in range(X.shape[1])])
    assert _corr(one_lag, sta) > 0.99
    # all lags jointly, ridge-penalised (the lags are strongly correlated at 200 Hz cut-off)
    k = lnp.fit_regularized(c, X, 1e-3, None, alpha=100.0, penalty="l2").w
    assert np.argmax(k) == np.argmax(sta), "same latency of the peak"
    assert lag_times[np.argmax(sta)] == pytest.approx(6e-3)  # measured: 6 ms before the spike
    assert _corr(k, sta) > 0.95  # measured 0.972
    # the model's own prediction of the STA (stimulus covariance times filter) matches it
    assert _corr(np.cov(X.T) @ k, sta) > 0.99


# ----------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda c, s, w: lnp.negloglik(w, c, s[:-1], DT, R), "rows"),
        (lambda c, s, w: lnp.negloglik(w[:-1], c, s, DT, R), "pixels"),
        (lambda c, s, w: lnp.negloglik(w, c, s[:, 0], DT, R), "2-dimensional"),
        (lambda c, s, w: lnp.negloglik(w, np.r_[-1, c[1:]], s, DT, R), "negative"),
        (lambda c, s, w: lnp.negloglik(w, np.r_[0.5, c[1:]], s, DT, R), "whole-number"),
        (lambda c, s, w: lnp.negloglik(w, np.r_[np.nan, c[1:]], s, DT, R), "NaN"),
        (lambda c, s, w: lnp.negloglik(w, c, np.where(np.eye(*s.shape) > 0, np.nan, s), DT, R),
         "NaN"),
        (lambda c, s, w: lnp.fit_rf(c, np.where(np.eye(*s.shape) > 0, np.nan, s), DT, R), "NaN"),
        (lambda c, s, w: lnp.fit_rf(c, s, 0.0, R), "dt"),
        (lambda c, s, w: lnp.fit_rf(c, s, DT, -1.0), "R"),
        (lambda c, s, w: lnp.fit_regularized(c, s, DT, R, -1.0), "alpha"),
        (lambda c, s, w: lnp.fit_regularized(c, s, DT, R, 1.0, penalty="l3"), "penalty"),
        (lambda c, s, w: lnp.cv_alpha(c, s, DT, R, [1.0], n_folds=1), "n_folds"),
        (lambda c, s, w: lnp.fit_lagged(c, s[:-1], lags=[0]), "rows"),
        (lambda c, s, w: lnp.fit_lagged(c, s, lags=[-1, 0]), "lags"),
        (lambda c, s, w: lnp.sample_lnp(w, n_t=0), "n_t"),
        (lambda c, s, w: lnp.gaussian_rf(15, width=0.0), "width"),
    ],
)
def test_bad_input_raises_value_error_naming_the_problem(call, message):
    w = lnp.gaussian_rf(4, 1.0)
    c, _, s = lnp.sample_lnp(w, n_t=50, seed=0)
    with pytest.raises(ValueError, match=message):
        call(c, s, w)


def test_bin_spikes_rejects_non_increasing_triggers_and_nan_spikes():
    with pytest.raises(ValueError, match="strictly increasing"):
        lnp.bin_spikes([0.1], [0.0, 0.2, 0.2, 0.3])
    with pytest.raises(ValueError, match="strictly increasing"):
        lnp.bin_spikes([0.1], [0.0, 0.3, 0.2])
    with pytest.raises(ValueError, match="NaN"):
        lnp.bin_spikes([0.1, np.nan], [0.0, 0.2])
    with pytest.raises(ValueError, match="last_frame_duration"):
        lnp.bin_spikes([0.1], [0.0])


def test_grasshopper_loader_and_design_reject_bad_arguments():
    with pytest.raises(ValueError, match="recording"):
        lnp.load_grasshopper(3)
    with pytest.raises(ValueError, match="whole multiple"):
        lnp.temporal_design(np.zeros(100), 50e-6, [0.001], 1.2e-4, [0, 1])
