"""Checks of exercise 5 (LNP receptive fields): right answers pass with full points, and
each of the chapter's ten common mistakes fails with its own hint.

The "student" answers here are written independently with numpy and scipy; the checks'
references come from scipy's Poisson log-pmf, statsmodels' Poisson GLM and numpy's SVD.
"""

import json

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from scipy import optimize, special, stats  # noqa: E402

from course_lib import checks, lnp  # noqa: E402
from verdicts import assert_fails_with_hint, assert_full_points  # noqa: E402  # tests/verdicts.py

W_TRUE = lnp.gaussian_rf(15, 2.0)  # the notebook's global true receptive field


# ------------------------------------------------------------------ correct answers


def sample_lnp(w, n_t, dt, R, v, seed):
    rng = np.random.default_rng(seed)
    s = rng.normal(0.0, np.sqrt(v), size=(n_t, w.size))
    r = np.exp(s @ w) * dt * R
    return rng.poisson(r), r, s


def negloglik(w, c, s, dt, R):
    eta = s @ w
    r = np.exp(eta) * dt * R
    return r.sum() - c @ eta, s.T @ (r - c)


def fit_rf(c, s, dt, R):
    res = optimize.minimize(negloglik, np.zeros(s.shape[1]), args=(c, s, dt, R), jac=True,
                            method="L-BFGS-B")
    return res.x


def plot_response(ax, c, r, dt):
    t = np.arange(len(c)) * dt
    ax.plot(t, c, label="observed count")
    ax.plot(t, r, label="expected count")
    ax.set(xlabel="time (s)", ylabel="spikes per bin", title="Response")
    ax.legend()


def plot_rf(ax, w, shape):
    m = np.abs(w).max()
    ax.imshow(np.reshape(w, shape), cmap="RdBu_r", vmin=-m, vmax=m)
    ax.set(title="receptive field", xlabel="column", ylabel="row")


def bin_counts(spike_times, trigger_times, frame_duration):
    edges = np.append(trigger_times, trigger_times[-1] + frame_duration)
    return np.histogram(spike_times[spike_times < edges[-1]], bins=edges)[0]


def fit_lags(counts, frames, lags, dt):
    m, n = max(lags), len(counts)
    cols = []
    for L in lags:
        X = np.column_stack([frames[m - L: n - L], np.ones(n - m)])
        cols.append(fit_rf(counts[m:], X, dt, 1.0)[:-1])
    return np.column_stack(cols)


def plot_lagged_filters(W, frame_shape, lags):
    fig, axes = plt.subplots(1, len(lags))
    for j, (ax, lag) in enumerate(zip(axes, lags)):
        ax.imshow(W[:, j].reshape(frame_shape))
        ax.set_title(f"lag {lag}")
    return fig


def space_time_svd(W):
    U, S, Vt = np.linalg.svd(W - W.mean(), full_matrices=False)
    u, v = U[:, 0], Vt[0]
    if u[np.argmax(np.abs(u))] < 0:
        u, v = -u, -v
    return u, v, S[0]


def plot_space_time(u, v, frame_shape, lag_times):
    fig, (a1, a2) = plt.subplots(1, 2)
    a1.imshow(u.reshape(frame_shape))
    a2.plot(lag_times, v)
    a2.set(title="time course", xlabel="lag (s)", ylabel="weight")
    return fig


def fit_ridge(c, s, dt, R, alpha):
    def cost(w):
        f, g = negloglik(w, c, s, dt, R)
        return f + alpha * w @ w, g + 2 * alpha * w

    return optimize.minimize(cost, np.zeros(s.shape[1]), jac=True, method="L-BFGS-B").x


def glum_ridge(c, s, dt, R, alpha):
    """A ridge fit by glum with the exercise's alpha passed as glum's own (glum divides −log L by n)."""
    import glum

    model = glum.GeneralizedLinearRegressor(family="poisson", alpha=alpha, l1_ratio=0, fit_intercept=False)
    return model.fit(s, c, offset=np.full(len(c), np.log(dt * R))).coef_


def plot_filters_by_alpha(ws, alphas, frame_shape):
    m = max(np.abs(w).max() for w in ws)  # one scale: the shrinkage shows
    fig, axes = plt.subplots(1, len(alphas))
    for ax, w, a in zip(axes, ws, alphas):
        ax.imshow(np.reshape(w, frame_shape), cmap="coolwarm", vmin=-m, vmax=m)
        ax.set_title(f"α = {a:g}")
    return fig


CORRECT = {
    "ex5-sampler": sample_lnp,
    "ex5-negloglik": negloglik,
    "ex5-fit": fit_rf,
    "ex5-response-plot": plot_response,
    "ex5-rf-plot": plot_rf,
    "ex5-binning": bin_counts,
    "ex5-lagged": fit_lags,
    "ex5-lagged-plots": plot_lagged_filters,
    "ex5-svd": space_time_svd,
    "ex5-space-time-plots": plot_space_time,
    "ex5-ridge": fit_ridge,
    "ex5-alpha-plots": plot_filters_by_alpha,
}


# ------------------------------------------------------------------ the ten mistakes


def sampler_elementwise(w, n_t, dt, R, v, seed):  # mistake 1
    rng = np.random.default_rng(seed)
    s = rng.normal(0.0, np.sqrt(v), size=(n_t, w.size))
    r = np.exp((w * s).mean(axis=1)) * dt * R
    return rng.poisson(r), r, s


def negloglik_elementwise(w, c, s, dt, R):  # mistake 1
    eta = (w * s).mean(axis=1)
    r = np.exp(eta) * dt * R
    return r.sum() - c @ eta, s.T @ (r - c)


def sampler_scaled_frames(w, n_t, dt, R, v, seed):  # mistake 2
    rng = np.random.default_rng(seed)
    s = rng.normal(0.0, np.sqrt(v), size=(n_t, w.size)) * rng.uniform(0.5, 1.5, size=(n_t, 1))
    r = np.exp(s @ w) * dt * R
    return rng.poisson(r), r, s


def negloglik_sign(w, c, s, dt, R):  # mistake 3
    f, g = negloglik(w, c, s, dt, R)
    return f, -g


def negloglik_factorial(w, c, s, dt, R):  # mistake 4, overflowing
    eta = s @ w
    r = np.exp(eta) * dt * R
    with np.errstate(all="ignore"):
        return r.sum() - c @ eta + np.log(special.factorial(c)).sum(), s.T @ (r - c)


def negloglik_keeps_log_factorial(w, c, s, dt, R):  # mistake 4, kept in the objective
    f, g = negloglik(w, c, s, dt, R)
    return f + special.gammaln(c + 1).sum(), g


def fit_returns_jac(c, s, dt, R):  # mistake 5
    return optimize.minimize(negloglik, np.zeros(s.shape[1]), args=(c, s, dt, R), jac=True,
                             method="L-BFGS-B").jac


def fit_starts_at_truth(c, s, dt, R):  # mistake 6 (W_TRUE is a global, as in the notebook)
    return optimize.minimize(negloglik, W_TRUE.copy(), args=(c, s, dt, R), jac=True,
                             method="L-BFGS-B").x


def fit_starts_at_the_notebooks_truth(c, s, dt, R):  # mistake 6, the notebook's w_true (it sums to 1)
    w_true = lnp.gaussian_rf(15, width=2.0, normalize="sum")
    return optimize.minimize(negloglik, w_true, args=(c, s, dt, R), jac=True, method="L-BFGS-B").x


def fit_normalised_by_sum(c, s, dt, R):  # mistake 7
    w = fit_rf(c, s, dt, R)
    return w / w.sum()


def bin_counts_misaligned(spike_times, trigger_times, frame_duration):  # mistake 8
    counts = np.histogram(spike_times, bins=trigger_times)[0]  # n - 1 counts ...
    return np.r_[0, counts]  # ... padded at the front: every count one frame late


def fit_lags_wrong_direction(counts, frames, lags, dt):  # mistake 8
    m, n = max(lags), len(counts)
    cols = []
    for L in lags:
        X = np.column_stack([frames[L: n - m + L], np.ones(n - m)])
        cols.append(fit_rf(counts[: n - m], X, dt, 1.0)[:-1])
    return np.column_stack(cols)


def svd_second_vector(W):  # mistake 9
    U, S, Vt = np.linalg.svd(W - W.mean(), full_matrices=False)
    return U[:, 1], Vt[1], S[1]


def svd_column_of_vt(W):  # mistake 9
    U, S, Vt = np.linalg.svd(W - W.mean(), full_matrices=False)
    u, v = U[:, 0], Vt[:, 0]
    if u[np.argmax(np.abs(u))] < 0:
        u, v = -u, -v
    return u, v, S[0]


def negloglik_global_w(w, c, s, dt, R):  # mistake 10
    return negloglik(W_TRUE, c, s, dt, R)


# (mistake number, part, wrong answer, words the hint must contain)
MISTAKES = [
    (1, "ex5-sampler", sampler_elementwise, "dot product"),
    (1, "ex5-negloglik", negloglik_elementwise, "dot product"),
    (2, "ex5-sampler", sampler_scaled_frames, "independent draw from N(0, v)"),
    (3, "ex5-negloglik", negloglik_sign, "gradient of log L, not of −log L"),
    (4, "ex5-negloglik", negloglik_factorial, "log(factorial(c)) overflows"),
    (4, "ex5-negloglik", negloglik_keeps_log_factorial, "you kept Σ_t log c_t! in the objective"),
    (5, "ex5-fit", fit_returns_jac, "the estimate is res.x"),
    (6, "ex5-fit", fit_starts_at_truth, "start from zeros"),
    (6, "ex5-fit", fit_starts_at_the_notebooks_truth, "start from zeros"),
    (7, "ex5-fit", fit_normalised_by_sum, "normalised the estimate by its sum"),
    (8, "ex5-binning", bin_counts_misaligned, "shifted by one frame"),
    (8, "ex5-lagged", fit_lags_wrong_direction, "lags go the wrong way"),
    (9, "ex5-svd", svd_second_vector, "second singular vector"),
    (9, "ex5-svd", svd_column_of_vt, "column of Vᵀ"),
    (10, "ex5-negloglik", negloglik_global_w, "ignores its argument w"),
]


@pytest.mark.parametrize("part", sorted(CORRECT))
def test_correct_answer_gets_full_points(part):
    assert_full_points(part, CORRECT[part])


@pytest.mark.parametrize("number,part,wrong,hint_words", MISTAKES,
                         ids=[f"mistake{m[0]}-{m[2].__name__}" for m in MISTAKES])
def test_common_mistake_fails_with_its_specific_hint(number, part, wrong, hint_words):
    assert_fails_with_hint(part, wrong, hint_words)


def test_all_ten_mistakes_are_covered():
    assert {m[0] for m in MISTAKES} == set(range(1, 11))


# ------------------------------------------------------------------ other wrong answers


def test_plot_checks_read_the_axes_not_the_picture():
    transposed = checks.run("ex5-rf-plot", lambda ax, w, shape: (
        ax.imshow(np.reshape(w, shape).T, vmin=-9, vmax=9), ax.set(title="t", xlabel="x", ylabel="y")))
    assert transposed.status == "failed" and "transposed" in transposed.hint
    unlabelled = checks.run("ex5-rf-plot", lambda ax, w, shape: ax.imshow(
        np.reshape(w, shape), cmap="RdBu_r", vmin=-9, vmax=9))
    assert unlabelled.status == "failed" and "a title and both axis labels" in unlabelled.message
    uncentred = checks.run("ex5-rf-plot", lambda ax, w, shape: (
        ax.imshow(np.reshape(w, shape)), ax.set(title="t", xlabel="x", ylabel="y")))
    assert uncentred.status == "failed" and "centred on zero" in uncentred.message
    in_bins = checks.run("ex5-response-plot", lambda ax, c, r, dt: (
        ax.plot(c, label="c"), ax.plot(r, label="r"), ax.legend(),
        ax.set(title="t", xlabel="bin", ylabel="count")))
    assert in_bins.status == "failed" and "time in seconds" in in_bins.hint
    not_a_figure = checks.run("ex5-lagged-plots", lambda W, shape, lags: None)
    assert not_a_figure.status == "failed" and "Figure" in not_a_figure.message
    assert plt.get_fignums() == [], "the checks close the figures they make"


def test_sampler_with_standard_deviation_v_and_without_poisson_noise_get_hints():
    def sd_v(w, n_t, dt, R, v, seed):
        rng = np.random.default_rng(seed)
        s = rng.normal(0.0, v, size=(n_t, w.size))
        r = np.exp(s @ w) * dt * R
        return rng.poisson(r), r, s

    verdict = checks.run("ex5-sampler", sd_v)
    assert verdict.status == "failed" and "standard deviation" in verdict.hint

    def no_noise(w, n_t, dt, R, v, seed):
        c, r, s = sample_lnp(w, n_t, dt, R, v, seed)
        return np.round(r), r, s

    verdict = checks.run("ex5-sampler", no_noise)
    assert verdict.status == "failed" and "rng.poisson" in verdict.hint

    def unseeded(w, n_t, dt, R, v, seed):
        return sample_lnp(w, n_t, dt, R, v, np.random.default_rng().integers(10**6))

    verdict = checks.run("ex5-sampler", unseeded)
    assert verdict.status == "failed" and "default_rng(seed)" in verdict.hint

    def fixed_seed(w, n_t, dt, R, v, seed):  # the seed argument ignored: every call the same draw
        return sample_lnp(w, n_t, dt, R, v, 0)

    verdict = checks.run("ex5-sampler", fixed_seed)
    assert verdict.status == "failed" and "from the seed argument" in verdict.hint

    def normalised(w, n_t, dt, R, v, seed):  # w made a unit vector inside
        return sample_lnp(w / np.linalg.norm(w), n_t, dt, R, v, seed)

    verdict = checks.run("ex5-sampler", normalised)
    assert verdict.status == "failed" and "don't normalise it" in verdict.hint


def test_binning_without_the_last_edge_and_ridge_without_penalty_get_hints():
    verdict = checks.run("ex5-binning", lambda sp, tr, d: np.histogram(sp, bins=tr)[0])
    assert verdict.status == "failed" and "append the end of the last frame" in verdict.hint
    verdict = checks.run("ex5-ridge", lambda c, s, dt, R, alpha: fit_rf(c, s, dt, R))
    assert verdict.status == "failed" and "unpenalised" in verdict.hint

    def half_gradient(c, s, dt, R, alpha):
        return fit_ridge(c, s, dt, R, alpha / 2)

    verdict = checks.run("ex5-ridge", half_gradient)
    assert verdict.status == "failed" and "2 * alpha * w" in verdict.hint


def test_svd_with_unfixed_sign_gets_a_hint():
    def flipped(W):
        u, v, s = space_time_svd(W)
        return -u, -v, s

    verdict = checks.run("ex5-svd", flipped)
    assert verdict.status == "failed" and "fix the sign" in verdict.hint


def test_stub_and_errors_are_reported():
    def stub(*args):
        raise NotImplementedError("ex5-fit: replace this line with your solution")

    assert checks.run("ex5-fit", stub).status == "not-implemented"
    assert checks.run("ex5-response-plot", stub).status == "not-implemented"

    def overflow(w, c, s, dt, R):
        import math
        return sum(math.log(math.factorial(int(k))) for k in c) * 1.0, s.T @ c

    verdict = checks.run("ex5-negloglik", overflow)
    assert verdict.status in ("error", "failed")


@pytest.mark.parametrize("part", ["ex5-sampler", "ex5-fit", "ex5-rf-plot", "ex5-svd"])
def test_collect_returns_plain_json_and_judge_rebuilds_the_verdict(part):
    chk = checks.get_check(part)
    again = json.loads(json.dumps(chk.collect(CORRECT[part])))
    assert chk.judge(again).passed


@pytest.mark.parametrize("forged", [None, "passed", {"records": "ok"}, {"records": [{}] * 2},
                                    {"records": [{"out": {"kind": "tuple", "items": [1, 2]}}] * 2}])
def test_judge_never_passes_forged_records(forged):
    for part in ("ex5-sampler", "ex5-negloglik", "ex5-svd", "ex5-rf-plot"):
        verdict = checks.get_check(part).judge(forged)
        assert not verdict.passed and verdict.points == 0


def test_points_of_exercise_5_add_up_to_the_labs_auto_graded_points():
    table = checks.list_checks()
    ex5 = table.loc[[p for p in table.index if p.startswith("ex5-")], "points"]
    # 10 points in the lab, less the derivation (2) and the written answer (0.5), graded by hand
    assert ex5.sum() == 7.5


# ------------------------------------------------------------------ verdicts the issue found wrong


def _sampler_with(pixels):
    def sampler(w, n_t, dt, R, v, seed):
        rng = np.random.default_rng(seed)
        s = pixels(rng, v, (n_t, w.size))
        r = np.exp(s @ w) * dt * R
        return rng.poisson(r), r, s
    return sampler


@pytest.mark.parametrize("name,pixels", [
    ("uniform", lambda rng, v, size: rng.uniform(-np.sqrt(3 * v), np.sqrt(3 * v), size)),
    ("binary", lambda rng, v, size: np.sqrt(v) * rng.choice([-1.0, 1.0], size)),
    ("laplace", lambda rng, v, size: rng.laplace(0.0, np.sqrt(v / 2), size)),
])
def test_sampler_with_the_right_variance_but_not_gaussian_fails_with_its_hint(name, pixels):
    assert_fails_with_hint("ex5-sampler", _sampler_with(pixels), "N(0, v)")


def test_sampler_alternatives_pass():
    # another generator call (standard normal scaled), float32 stimulus, lists
    assert_full_points("ex5-sampler", _sampler_with(
        lambda rng, v, size: np.sqrt(v) * rng.standard_normal(size)))
    assert_full_points("ex5-sampler", _sampler_with(
        lambda rng, v, size: rng.normal(0, np.sqrt(v), size).astype(np.float32).astype(float)))


def test_negloglik_in_float32_and_as_lists_passes():
    def float32(w, c, s, dt, R):
        w, c, s = (np.asarray(a, dtype=np.float32) for a in (w, c, s))
        eta = s @ w
        r = np.exp(eta) * np.float32(dt * R)
        return np.float32(r.sum() - c @ eta), s.T @ (r - c)

    assert_full_points("ex5-negloglik", float32)
    assert_full_points("ex5-negloglik", lambda *a: (float(negloglik(*a)[0]), list(negloglik(*a)[1])))


def test_response_plot_at_bin_centres_passes():
    def centres(ax, c, r, dt):
        t = (np.arange(len(c)) + 0.5) * dt
        ax.step(t, c, where="mid", label="c")
        ax.plot(t, r, label="r")
        ax.set(title="t", xlabel="time (s)", ylabel="count")
        ax.legend()

    assert_full_points("ex5-response-plot", centres)


def test_response_plot_with_a_figure_legend_passes():
    def figure_legend(ax, c, r, dt):
        t = np.arange(len(c)) * dt
        ax.plot(t, c, label="observed")
        ax.plot(t, r, label="expected")
        ax.set(title="t", xlabel="time (s)", ylabel="count")
        ax.figure.legend()

    assert_full_points("ex5-response-plot", figure_legend)


@pytest.mark.parametrize("cmap", ["viridis", "gray", "jet"])
def test_rf_plot_without_a_diverging_colormap_fails_with_its_hint(cmap):
    def plot(ax, w, shape):
        m = np.abs(w).max()
        ax.imshow(np.reshape(w, shape), cmap=cmap, vmin=-m, vmax=m)
        ax.set(title="rf", xlabel="x", ylabel="y")

    assert_fails_with_hint("ex5-rf-plot", plot, "diverging colormap")


@pytest.mark.parametrize("cmap", ["coolwarm", "seismic", "PuOr", "bwr"])
def test_rf_plot_with_other_diverging_colormaps_passes(cmap):
    def plot(ax, w, shape):
        m = 1.5 * np.abs(w).max()  # any symmetric range covering w
        ax.imshow(np.reshape(w, shape), cmap=cmap, vmin=-m, vmax=m)
        ax.set(title="rf", xlabel="x", ylabel="y")

    assert_full_points("ex5-rf-plot", plot)


def _alpha_plots(cmap, shared):
    def plot(ws, alphas, frame_shape):
        fig, axes = plt.subplots(1, len(alphas))
        for ax, w, a in zip(axes, ws, alphas):
            m = max(np.abs(v).max() for v in ws) if shared else np.abs(w).max()
            ax.imshow(np.reshape(w, frame_shape), cmap=cmap, vmin=-m, vmax=m)
            ax.set_title(f"α = {a:g}")
        return fig
    return plot


@pytest.mark.parametrize("cmap,shared,hint", [
    ("RdBu_r", False, "every panel the same scale"),
    ("viridis", True, "diverging colormap"),
    ("viridis", False, "every panel the same scale"),
])
def test_alpha_plots_with_a_scale_per_panel_or_not_diverging_fail_with_their_hint(cmap, shared, hint):
    assert_fails_with_hint("ex5-alpha-plots", _alpha_plots(cmap, shared), hint)


def test_alpha_plots_with_one_diverging_scale_pass():
    assert_full_points("ex5-alpha-plots", _alpha_plots("RdBu", True))
    assert_full_points("ex5-alpha-plots", _alpha_plots("PiYG", True))


@pytest.mark.parametrize("alpha", [10.0, 100.0])
def test_a_ridge_fit_is_not_the_maximum_likelihood_fit(alpha):
    assert_fails_with_hint("ex5-fit", lambda c, s, dt, R: fit_ridge(c, s, dt, R, alpha), "penalised (ridge) fit")


def test_a_fit_started_at_the_spike_triggered_average_passes():  # informed by the data, not by the truth
    def sta_start(c, s, dt, R):
        sta = s.T @ c / c.sum()
        return optimize.minimize(negloglik, sta, args=(c, s, dt, R), jac=True, method="L-BFGS-B").x

    assert_full_points("ex5-fit", sta_start)


def test_a_fit_on_a_float32_objective_passes_public_and_hidden_cases():
    # L-BFGS-B stops within ~5e-3 nats of the maximum on a float32 −log L (its rel. distance reaches 6e-3):
    # statistically the maximum, and ex5-negloglik accepts that objective, so every draw must pass it
    def negloglik32(w, c, s, dt, R):
        w, c, s = (np.asarray(a, dtype=np.float32) for a in (w, c, s))
        r = np.exp(s @ w) * np.float32(dt * R)
        return np.float32(r.sum() - c @ (s @ w)), s.T @ (r - c)

    def fit32(c, s, dt, R):
        return optimize.minimize(negloglik32, np.zeros(s.shape[1]), args=(c, s, dt, R), jac=True,
                                 method="L-BFGS-B").x

    assert_full_points("ex5-fit", fit32)
    for seed in range(1, 9):
        assert checks.run("ex5-fit", fit32, seed=seed).passed, seed


def test_fit_by_another_optimiser_passes():
    assert_full_points("ex5-fit", lambda c, s, dt, R: optimize.minimize(
        negloglik, np.zeros(s.shape[1]), args=(c, s, dt, R), jac=True, method="BFGS").x)
    assert_full_points("ex5-fit", lambda c, s, dt, R: list(fit_rf(c, s, dt, R)))


# ------------------------------------------------------------------ more wrong and valid answers


def _fails(part, wrong):
    verdict = checks.run(part, wrong)
    assert verdict.status in ("failed", "error") and verdict.points == 0, verdict
    return verdict


def bin_counts_searchsorted(spike_times, trigger_times, frame_duration):
    end = trigger_times[-1] + frame_duration
    idx = np.searchsorted(trigger_times, spike_times[spike_times < end], side="right") - 1
    return np.bincount(idx[idx >= 0], minlength=len(trigger_times))


@pytest.mark.parametrize("part,answer", [
    ("ex5-binning", bin_counts_searchsorted),
    ("ex5-binning", lambda sp, tr, d: list(bin_counts(sp, tr, d))),
    ("ex5-ridge", lambda c, s, dt, R, alpha: optimize.minimize(
        lambda w: (negloglik(w, c, s, dt, R)[0] + alpha * w @ w,
                   negloglik(w, c, s, dt, R)[1] + 2 * alpha * w),
        np.zeros(s.shape[1]), jac=True, method="BFGS").x),
    ("ex5-ridge", lambda c, s, dt, R, alpha: list(fit_ridge(c, s, dt, R, alpha))),
    ("ex5-svd", lambda W: tuple(map(np.asarray, space_time_svd(W)))),
    ("ex5-svd", lambda W: [list(x) if np.ndim(x) else float(x) for x in space_time_svd(W)]),
    ("ex5-lagged", lambda counts, frames, lags, dt: fit_lags(counts, frames, list(lags), dt).tolist()),
    ("ex5-response-plot", plot_response),
])
def test_more_valid_alternatives_pass(part, answer):
    assert_full_points(part, answer)


@pytest.mark.parametrize("part,wrong", [
    ("ex5-binning", lambda sp, tr, d: np.histogram(sp, bins=len(tr))[0]),  # equal-width bins
    ("ex5-binning", lambda sp, tr, d: bin_counts(sp, tr, d) / d),  # rates, not counts
    ("ex5-binning", lambda sp, tr, d: bin_counts(sp, tr, 0.05)),  # the notebook's frame duration hard-coded
    ("ex5-ridge", lambda c, s, dt, R, alpha: fit_ridge(c, s, dt, R, 2 * alpha)),
    ("ex5-ridge", lambda c, s, dt, R, alpha: fit_ridge(c, s, dt, R, alpha) / np.abs(fit_ridge(c, s, dt, R, alpha)).max()),
    ("ex5-svd", lambda W: (np.linalg.svd(W - W.mean())[0][:, 0] * 2, np.linalg.svd(W - W.mean())[2][0], 1.0)),
    ("ex5-lagged", lambda counts, frames, lags, dt: -fit_lags(counts, frames, lags, dt)),
    ("ex5-lagged", lambda counts, frames, lags, dt: fit_lags(counts, frames, lags, dt)[:, ::-1]),
    ("ex5-response-plot", lambda ax, c, r, dt: (ax.plot(np.arange(len(c)) * dt, c, label="c"),
                                                 ax.set(title="t", xlabel="time (s)", ylabel="n"), ax.legend())),
    ("ex5-response-plot", lambda ax, c, r, dt: (ax.plot(np.arange(len(c)) * dt, c), ax.plot(np.arange(len(c)) * dt, r),
                                                 ax.set(title="t", xlabel="time (s)", ylabel="n"))),
])
def test_more_wrong_answers_fail(part, wrong):
    _fails(part, wrong)


# ------------------------------------------------------------------ every part: its reference passes, and
# at least three wrong and two valid answers for the parts not covered above


def test_each_parts_reference_passes_its_own_check():
    for part in CORRECT:
        chk = checks.get_check(part)
        assert chk.judge(chk.collect(chk.reference)).passed, part


def fit_lags_bfgs_with_intercept(counts, frames, lags, dt):  # another optimiser, the rate as log R
    m, n = max(lags), len(counts)
    y, cols = counts[m:], []
    for L in lags:
        X = np.column_stack([frames[m - L: n - L], np.ones(n - m)])

        def f(b):
            eta = X @ b + np.log(dt)
            return np.exp(eta).sum() - y @ eta, X.T @ (np.exp(eta) - y)

        cols.append(optimize.minimize(f, np.zeros(X.shape[1]), jac=True, method="BFGS").x[:-1])
    return np.column_stack(cols)


def _figure_of_panels(ws, titles, shape, transpose=False, cmap="RdBu_r"):
    fig, axes = plt.subplots(1, len(ws))
    for ax, w, title in zip(np.atleast_1d(axes), ws, titles):
        img = np.reshape(w, shape)
        ax.imshow(img.T if transpose else img, cmap=cmap)
        ax.set_title(title)
    return fig


def _space_time(x_of_v=lambda lag_times, v: lag_times, label=True, vertical=False):
    def plot(u, v, frame_shape, lag_times):
        fig, (a1, a2) = plt.subplots(2 if vertical else 1, 1 if vertical else 2)
        a1.imshow(u.reshape(frame_shape), cmap="RdBu_r")
        a2.plot(x_of_v(lag_times, v), v, marker="o")
        a2.axhline(0, color="grey")
        if label:
            a2.set(title="time course", xlabel="lag (s)", ylabel="weight")
        return fig
    return plot


@pytest.mark.parametrize("part,answer", [
    ("ex5-lagged", fit_lags_bfgs_with_intercept),
    ("ex5-response-plot", lambda ax, c, r, dt: (
        ax.step(np.arange(len(c)) * dt, c, where="post", label="c"), ax.plot(np.arange(len(c)) * dt, r, "k--", label="r"),
        ax.legend(), ax.set(title="t", xlabel="time (s)", ylabel="count"))),
    ("ex5-lagged-plots", lambda W, shape, lags: _figure_of_panels(list(W.T), [f"lag = {L} frames" for L in lags], shape)),
    ("ex5-lagged-plots", lambda W, shape, lags: (lambda fig: (fig.colorbar(fig.axes[0].images[0], ax=fig.axes), fig)[1])(
        _figure_of_panels(list(W.T), [f"L{L}" for L in lags], shape, cmap="gray"))),
    ("ex5-space-time-plots", _space_time(vertical=True)),
    ("ex5-space-time-plots", lambda u, v, shape, lag_times: (lambda fig: (fig.axes[1].set_xlim(-0.1, 1), fig)[1])(
        _space_time()(u, v, shape, list(lag_times)))),
])
def test_other_valid_answers_pass(part, answer):
    assert_full_points(part, answer)


def svd_uncentred(W):
    U, S, Vt = np.linalg.svd(W, full_matrices=False)
    sign = np.sign(U[np.argmax(np.abs(U[:, 0])), 0])
    return sign * U[:, 0], sign * Vt[0], S[0]


@pytest.mark.parametrize("part,wrong,hint_words", [
    ("ex5-lagged-plots", lambda W, shape, lags: _figure_of_panels(list(W.T), [f"lag {L}" for L in lags], shape,
                                                                  transpose=True), "transposed"),
    ("ex5-lagged-plots", lambda W, shape, lags: _figure_of_panels(list(W.T), ["" for L in lags], shape), "title each panel"),
    ("ex5-lagged-plots", lambda W, shape, lags: _figure_of_panels(list(W.T)[:-1], [f"lag {L}" for L in lags], shape),
     "one Axes per lag"),
    ("ex5-space-time-plots", _space_time(x_of_v=lambda lag_times, v: np.arange(len(v))), "ax.plot(lag_times, v1)"),
    ("ex5-space-time-plots", _space_time(label=False), "axis labels"),
    ("ex5-space-time-plots", lambda u, v, shape, lag_times: _space_time()(u, v, shape[::-1], lag_times), "reshape"),
    ("ex5-alpha-plots", lambda ws, alphas, shape: _alpha_plots("RdBu_r", True)(ws[::-1], alphas, shape), ""),
    ("ex5-ridge", lambda c, s, dt, R, alpha: fit_ridge(c, s, dt, R, 0.0), "unpenalised"),
    ("ex5-ridge", lambda c, s, dt, R, alpha: fit_ridge(c, s, dt, R, 2 * alpha), "twice too strong"),
    ("ex5-ridge", lambda c, s, dt, R, alpha: glum_ridge(c, s, dt, R, alpha), "2 * alpha / n"),  # glum's own alpha
    ("ex5-lagged", lambda counts, frames, lags, dt: fit_lags(counts, frames, lags, dt).T, "np.column_stack"),
    ("ex5-negloglik", lambda w, c, s, dt, R: tuple(-x for x in negloglik(w, c, s, dt, R)), "you returned log L"),
    ("ex5-negloglik",  # the gradient of a rate per second: r_t without dt·R
     lambda w, c, s, dt, R: (negloglik(w, c, s, dt, R)[0], s.T @ (np.exp(s @ w) - c)), "keep dt·R"),
    ("ex5-svd", lambda W: (*space_time_svd(W)[:2], space_time_svd(W)[2] ** 2), ""),
    ("ex5-svd", svd_uncentred, "subtract the mean"),
])
def test_other_wrong_answers_fail_with_their_hint(part, wrong, hint_words):
    assert_fails_with_hint(part, wrong, hint_words)


def _rf(layout=lambda img: img, cmap="RdBu_r", labelled=True):
    def plot(ax, w, shape):
        m = np.abs(w).max()
        ax.imshow(layout(np.reshape(w, shape)), cmap=cmap, vmin=-m, vmax=m)
        if labelled:
            ax.set(title="rf", xlabel="column", ylabel="row")
    return plot


@pytest.mark.parametrize("part,wrong,hint_words", [  # no declared mistakes: a plot gets the hint of its first fault
    ("ex5-rf-plot", _rf(lambda img: img.T, cmap="viridis", labelled=False), "transposed"),
    ("ex5-rf-plot", _rf(lambda img: np.reshape(img.ravel(), img.shape, order="F")), "C (row-major) order"),
    ("ex5-rf-plot", _rf(lambda img: img.reshape(img.shape[::-1]), labelled=False), "reshape the flat vector"),
    ("ex5-rf-plot", _rf(cmap="gray", labelled=False), "diverging colormap"),
    ("ex5-rf-plot", lambda ax, w, shape: ax.plot(w), "draw it on the Axes given"),
    ("ex5-lagged-plots", lambda W, shape, lags: _figure_of_panels(list(W.T)[:-1], ["" for L in lags], shape,
                                                                  transpose=True), "one Axes per lag"),
    ("ex5-alpha-plots", lambda ws, alphas, shape: (lambda fig: (fig.axes[0].set_title(""), fig)[1])(
        _alpha_plots("viridis", False)(ws, alphas, shape)), "every panel the same scale"),
    ("ex5-alpha-plots", lambda ws, alphas, shape: _figure_of_panels(ws, [f"α = {a:g}" for a in alphas], shape),
     "every panel the same scale"),
    ("ex5-rf-plot", lambda ax, w, shape: (ax.imshow(np.reshape(w, shape), cmap="gray"), ax.set(title="t", xlabel="x")),
     "(np.abs(w).max()"),
    ("ex5-space-time-plots", _space_time(x_of_v=lambda lag_times, v: np.arange(len(v)), label=False),
     "ax.plot(lag_times, v1)"),
    ("ex5-space-time-plots", lambda u, v, shape, lag_times: (lambda fig: (fig.axes[0].images[0].remove(), fig)[1])(
        _space_time()(u, v, shape, lag_times)), "ax.imshow(u1.reshape(frame_shape))"),
    ("ex5-response-plot", lambda ax, c, r, dt: ax.plot(np.arange(len(c)) * dt, c), "against time in seconds"),
])
def test_any_combination_of_plot_faults_gets_the_hint_of_its_first(part, wrong, hint_words):
    assert_fails_with_hint(part, wrong, hint_words)


#: A plausible wrong answer per part, run in the student tree's notebook (after its setup cell,
#: with every other part's wrong answer too, so each is self-contained), and words of its hint there.
WRONG_IN_TREE = {
    "ex5-sampler": ("def sample_lnp(w, n_t, dt, R, v, seed):\n"
                    "    rng = np.random.default_rng(seed)\n"
                    "    s = rng.normal(0.0, v, size=(n_t, len(w)))\n"
                    "    r = np.exp(s @ w) * dt * R\n"
                    "    return rng.poisson(r), r, s\n", "standard deviation"),
    "ex5-response-plot": ("def plot_response(ax, c, r, dt):\n"
                          "    ax.plot(c, label='c'); ax.plot(r, label='r'); ax.legend()\n"
                          "    ax.set(title='response', xlabel='bin', ylabel='count')\n", "time in seconds"),
    "ex5-negloglik": ("def negloglik(w, c, s, dt, R):\n"
                      "    eta = s @ w\n"
                      "    r = np.exp(eta) * dt * R\n"
                      "    return r.sum() - c @ eta, s.T @ (c - r)\n", "gradient of log L"),
    "ex5-fit": ("def fit_rf(c, s, dt, R):\n"
                "    def f(w):\n"
                "        r = np.exp(s @ w) * dt * R\n"
                "        return r.sum() - c @ (s @ w), s.T @ (r - c)\n"
                "    return optimize.minimize(f, np.zeros(s.shape[1]), jac=True, method='L-BFGS-B').jac\n",
                "the estimate is res.x"),
    "ex5-rf-plot": ("def plot_rf(ax, w, shape):\n"
                    "    m = np.abs(w).max()\n"
                    "    ax.imshow(np.reshape(w, shape), cmap='viridis', vmin=-m, vmax=m)\n"
                    "    ax.set(title='rf', xlabel='column', ylabel='row')\n", "diverging colormap"),
    "ex5-binning": ("def bin_counts(spike_times, trigger_times, frame_duration):\n"
                    "    return np.r_[0, np.histogram(spike_times, bins=trigger_times)[0]]\n", "shifted by one frame"),
    "ex5-lagged": ("def fit_lags(counts, frames, lags, dt):\n"
                   "    m, n = max(lags), len(counts)\n"
                   "    return np.column_stack([lnp.fit_rf(counts[: n - m], frames[L: n - m + L], dt, None).w\n"
                   "                            for L in lags])\n", "lags go the wrong way"),
    "ex5-lagged-plots": ("def plot_lagged_filters(W, frame_shape, lags):\n"
                         "    fig, axes = plt.subplots(1, len(lags))\n"
                         "    for ax, w in zip(axes, W.T):\n"
                         "        ax.imshow(w.reshape(frame_shape).T)\n"
                         "        ax.set_title('a lag')\n"
                         "    return fig\n", "transposed"),
    "ex5-svd": ("def space_time_svd(W):\n"
                "    U, S, Vt = np.linalg.svd(W - W.mean(), full_matrices=False)\n"
                "    return U[:, 1], Vt[1], S[1]\n", "second singular vector"),
    "ex5-space-time-plots": ("def plot_space_time(u, v, frame_shape, lag_times):\n"
                             "    fig, (a, b) = plt.subplots(1, 2)\n"
                             "    a.imshow(u.reshape(frame_shape))\n"
                             "    b.plot(v)\n"
                             "    return fig\n", "ax.plot(lag_times, v1)"),
    "ex5-ridge": ("def fit_ridge(c, s, dt, R, alpha):\n"
                  "    def f(w):\n"
                  "        r = np.exp(s @ w) * dt * R\n"
                  "        return r.sum() - c @ (s @ w) + alpha * w @ w, s.T @ (r - c) + alpha * w\n"
                  "    return optimize.minimize(f, np.zeros(s.shape[1]), jac=True, method='L-BFGS-B').x\n",
                  "you used half of it"),
    "ex5-alpha-plots": ("def plot_filters_by_alpha(ws, alphas, frame_shape):\n"
                        "    fig, axes = plt.subplots(1, len(alphas))\n"
                        "    for ax, w, a in zip(axes, ws, alphas):\n"
                        "        m = np.abs(w).max()\n"
                        "        ax.imshow(np.reshape(w, frame_shape), cmap='RdBu_r', vmin=-m, vmax=m)\n"
                        "        ax.set_title(f'alpha = {a:g}')\n"
                        "    return fig\n", "every panel the same scale"),
}


def test_every_part_has_a_wrong_answer_for_the_student_tree():
    assert set(WRONG_IN_TREE) == set(CORRECT)


@pytest.mark.parametrize("part", sorted(WRONG_IN_TREE))
def test_the_student_trees_wrong_answers_fail_with_their_hint_here_too(part):
    namespace = {"np": np, "plt": plt, "optimize": optimize, "lnp": lnp}
    exec(WRONG_IN_TREE[part][0], namespace)
    name = checks.get_check(part).function
    assert_fails_with_hint(part, namespace[name], WRONG_IN_TREE[part][1])


@pytest.mark.parametrize("part,valid,wrong,hint_words", [
    ("ex5-fit", lambda c, s, dt, R: optimize.minimize(negloglik, np.zeros(s.shape[1]), args=(c, s, dt, R), jac=True,
                                                       method="BFGS").x,
     lambda c, s, dt, R: fit_ridge(c, s, dt, R, 10.0), "penalised (ridge) fit"),
    ("ex5-ridge", lambda c, s, dt, R, alpha: list(fit_ridge(c, s, dt, R, alpha)),
     lambda c, s, dt, R, alpha: fit_ridge(c, s, dt, R, alpha / 2), "you used half of it"),
    ("ex5-lagged", fit_lags_bfgs_with_intercept, fit_lags_wrong_direction, "lags go the wrong way"),
])
def test_fits_judge_the_hidden_cases_of_many_seeds_as_the_public_ones(part, valid, wrong, hint_words):
    # tests/test_checks_hidden.py runs fits on 3 seeds; these checks take ~0.05 s, so 20 here
    for seed in range(20):
        for answer in (CORRECT[part], valid):
            assert checks.run(part, answer, seed=seed).passed, (seed, checks.run(part, answer, seed=seed))
        verdict = checks.run(part, wrong, seed=seed)
        assert not verdict.passed and hint_words in verdict.hint, (seed, verdict)


@pytest.mark.parametrize("part", sorted(CORRECT))
@pytest.mark.parametrize("bad", [lambda *a: None, lambda *a: np.nan, lambda *a: (np.nan,) * 3, lambda *a: "w",
                                 lambda *a: {"w": 1}, lambda *a: 1 / 0],
                         ids=["None", "nan", "nan-tuple", "str", "dict", "raises"])
def test_bad_answers_get_a_verdict_never_a_traceback(part, bad):
    verdict = checks.run(part, bad)
    assert verdict.status in ("failed", "error") and verdict.points == 0 and verdict.message, verdict
    assert plt.get_fignums() == []


def _labelled_response(draw):
    """A response plot whose two lines ``draw(ax, c, r, dt)`` makes, with a title, axis labels and a legend."""
    def plot(ax, c, r, dt):
        draw(ax, c, r, dt)
        ax.set(title="response", xlabel="time (s)", ylabel="spikes per bin")
        ax.legend(["c", "r"])
    return plot


def _rf_image(**imshow):
    """plot_rf drawing w.reshape(shape) on a centred diverging scale, with the given imshow options."""
    def plot(ax, w, shape):
        m = np.abs(w).max()
        ax.imshow(np.asarray(w).reshape(shape), cmap="RdBu_r", vmin=-m, vmax=m, **imshow)
        ax.set(title="w", xlabel="column", ylabel="row")
    return plot


def _titled_alphas(title):
    """plot_filters_by_alpha with each panel titled ``title(alpha, alphas)``, on one centred diverging scale."""
    def plot(ws, alphas, shape):
        fig, axes = plt.subplots(1, len(ws), squeeze=False)
        m = max(np.abs(w).max() for w in ws)
        for ax, w, alpha in zip(axes[0], ws, alphas):
            ax.imshow(np.reshape(w, shape), cmap="RdBu_r", vmin=-m, vmax=m)
            ax.set_title(title(alpha, alphas))
        return fig
    return plot


@pytest.mark.parametrize("part,answer", [
    # step plots at the bins' ends, or over their n + 1 edges
    ("ex5-response-plot", _labelled_response(lambda ax, c, r, dt: ax.step(
        (np.arange(len(c)) + 1) * dt, np.c_[c, r], where="pre"))),
    ("ex5-response-plot", _labelled_response(lambda ax, c, r, dt: ax.step(
        np.arange(len(c) + 1) * dt, np.r_[np.c_[c, r], np.c_[c, r][-1:]], where="post"))),
    # the same picture: the array flipped and drawn from the bottom, or the y axis turned back
    ("ex5-rf-plot", lambda ax, w, shape: _rf_image(origin="lower")(ax, np.flipud(np.reshape(w, shape)).ravel(), shape)),
    ("ex5-rf-plot", lambda ax, w, shape: (_rf_image(origin="lower")(ax, w, shape), ax.invert_yaxis())),
    ("ex5-rf-plot", lambda ax, w, shape: _rf_image(extent=(0, shape[1], shape[0], 0))(ax, w, shape)),
    # alpha written as 1e+03 or 1,000
    ("ex5-alpha-plots", _titled_alphas(lambda a, alphas: f"α = {a:.2g}")),
    ("ex5-alpha-plots", _titled_alphas(lambda a, alphas: f"alpha = {a:,.0f}")),
])
def test_plots_drawn_another_valid_way_pass(part, answer):
    assert_full_points(part, answer)


@pytest.mark.parametrize("part,wrong,hint_words", [
    # pyplot's current Axes, not the one given: in the notebook, the other panel gets the plot
    ("ex5-response-plot", lambda ax, c, r, dt: (plt.plot(np.arange(len(c)) * dt, np.c_[c, r]), plt.title("t"),
                                                 plt.xlabel("time (s)"), plt.ylabel("n"), plt.legend(["c", "r"])),
     "not plt.plot"),
    ("ex5-rf-plot", lambda ax, w, shape: _rf_image()(plt.gca(), w, shape), "not plt.imshow"),
    ("ex5-rf-plot", _rf_image(origin="lower"), "upside down"),
    ("ex5-alpha-plots", _titled_alphas(lambda a, alphas: f"α in {list(alphas)}"), "title each panel with its alpha"),
])
def test_plots_on_the_wrong_axes_upside_down_or_titled_with_every_value_fail(part, wrong, hint_words):
    assert_fails_with_hint(part, wrong, hint_words)


def _ridge_of_norm(c, s, dt, R, alpha):
    """A penalty alpha * ‖w‖, without the square: near ‖w‖ = 1 it pulls as alpha ‖w‖² / 2 does."""
    def cost(w):
        f, grad = negloglik(w, c, s, dt, R)
        norm = np.sqrt(w @ w + 1e-12)
        return f + alpha * norm, grad + alpha * w / norm
    return optimize.minimize(cost, np.zeros(s.shape[1]), jac=True, method="L-BFGS-B").x


@pytest.mark.parametrize("part,wrong,hint_words", [
    ("ex5-svd", lambda W: (lambda u, v, s: (u, -v, s))(*space_time_svd(W)), "flip u1 and v1 together"),
    ("ex5-negloglik", lambda w, c, s, dt, R: (-stats.poisson.logpmf(c, np.exp(s @ w) * dt * R).sum(),
                                              negloglik(w, c, s, dt, R)[1]), "you kept both constants"),
    ("ex5-ridge", _ridge_of_norm, "without the square"),
    # each lag on its own rows (counts[L:] with frames[:n - L]); the rate taken as known, R = 1, no column of ones
    ("ex5-lagged", lambda counts, frames, lags, dt: np.column_stack([fit_rf(
        counts[L:], np.column_stack([frames[:len(counts) - L], np.ones(len(counts) - L)]), dt, 1.0)[:-1]
        for L in lags]), "use the same rows for every lag"),
    ("ex5-lagged", lambda counts, frames, lags, dt: np.column_stack([fit_rf(
        counts[max(lags):], frames[max(lags) - L: len(counts) - L], dt, 1.0) for L in lags]), "the rate R is unknown"),
])
def test_mistakes_found_by_probing_get_their_hints(part, wrong, hint_words):
    assert_fails_with_hint(part, wrong, hint_words)
