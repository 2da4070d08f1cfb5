r"""Checks of exercise 5 (LNP receptive fields: counts c_t ~ Poisson(exp(wᵀs_t)·Δt·R)). The chapter's ten
common mistakes get their own hints, as declared mistakes or from the shipped readers and comparisons
(:mod:`~course_lib.checks.lnp_results`, :mod:`~course_lib.checks.figures`); references from :mod:`course_lib.lnp`."""

import functools
import warnings

import numpy as np
from matplotlib.figure import Figure
from scipy import special

from course_lib import lnp
from course_lib.checks import figures, lnp_results
from course_lib.checks.core import Case, FunctionCheck, register

_W_LAB = lnp.gaussian_rf(15, 2.0)  # the notebook's true receptive field
_FIT_SAME = (lnp_results.FIT_TOL, 2e-3)  # (rtol, atol) within which a fit is a mistake's (honest: 3e-5, sloppy 1e-3)
_FACTORIAL = ("log(factorial(c)) overflows for counts above 170; log c_t! does not depend on w, so leave it out "
              "(scipy.special.gammaln(c + 1) if you ever need it).")
_PLOT = functools.partial(FunctionCheck, points=0.5, compare=figures.compare)  # a plot part: its description's hints


def _seed(rng) -> int:
    return int(rng.integers(10**6))


def _draw_sampler(rng):  # ‖w‖ is not 1, so that a sampler that normalises w fails
    w = rng.normal(size=9)
    return [Case((1.5 * lnp.gaussian_rf(3, 1.0), 2000, 0.1, 20.0, 1.0, _seed(rng)), "a 3 × 3 blob, |w| = 1.5, v = 1"),
            Case((0.7 * w / np.linalg.norm(w), 2000, 0.05, 40.0, 3.0, _seed(rng)),
                 "9 random weights, |w| = 0.7, dt = 0.05, v = 3")]


register(FunctionCheck(
    part="ex5-sampler", points=0.5, function="sample_lnp", seed=501, draw=_draw_sampler, reference=lnp.sample_lnp,
    output=lnp_results.sampled, compare=lnp_results.sampler,
    success="{function} draws N(0, v) pixels and Poisson counts of mean exp(wᵀs)·dt·R on {n} problems."))


def _draw_negloglik(rng):
    wb = lnp.gaussian_rf(15, 1.5, center=(4.0, 10.0))  # 15 × 15 pixels too: a global w_true runs
    ca, _, sa = lnp.sample_lnp(_W_LAB, 100, 0.1, 50.0, 5.0, _seed(rng))  # counts over 170 (≥ 219 in 200 seeds)
    cb, _, sb = lnp.sample_lnp(wb, 60, 0.05, 30.0, 2.0, _seed(rng))
    return [Case((0.5 * _W_LAB, ca, sa, 0.1, 50.0), f"the lab's set-up (counts up to {ca.max()}), w = w_true / 2"),
            Case((rng.normal(scale=0.05, size=225), cb, sb, 0.05, 30.0), "60 bins of another neuron, a random w"),
            Case((0.8 * wb, cb, sb, 0.05, 30.0), "60 bins of another neuron, w = 0.8 w_true")]


def _nll_plus(constant):
    """−log L plus a ``constant(c, dt, R)`` that does not depend on w; the same gradient."""
    def wrong(w, c, s, dt, R):
        f, g = lnp.negloglik(w, c, s, dt, R)
        return f + constant(c, dt, R), g
    return wrong


register(FunctionCheck(
    part="ex5-negloglik", points=0.5, function="negloglik", seed=502, draw=_draw_negloglik, reference=lnp.negloglik,
    output=lnp_results.at_two_points, compare=lnp_results.negloglik,
    mistakes=[(lambda *a: (lnp.negloglik(*a)[0], -lnp.negloglik(*a)[1]), "you returned the gradient of log L, not "
               "of −log L, which is Σ_t (r_t − c_t) s_t."),
              (lambda *a: tuple(-x for x in lnp.negloglik(*a)), "you returned log L; the optimiser minimises, so "
               "return −log L and its gradient."),
              (_nll_plus(lambda c, dt, R: special.gammaln(c + 1).sum()), "you kept Σ_t log c_t! in the objective: it "
               "does not depend on w; drop it (as log(factorial(c)) it is slow and overflows)."),
              (_nll_plus(lambda c, dt, R: -c.sum() * np.log(dt * R)), "you kept the constant −Σ c_t log(Δt R); "
               "it does not depend on w: drop it, as the formula says."),
              (_nll_plus(lambda c, dt, R: np.log(special.factorial(c)).sum()), _FACTORIAL),
              (_nll_plus(lambda c, dt, R: special.gammaln(c + 1).sum() - c.sum() * np.log(dt * R)), "you kept both "
               "constants, Σ log c_t! and −Σ c_t log(Δt R) (as scipy.stats.poisson.logpmf does): drop them."),
              (lambda w, c, s, dt, R: lnp.negloglik(w / s.shape[1], c, s, dt, R), lnp_results.HINT_DOT),  # s @ w / P
              (lambda w, c, s, dt, R: (lnp.negloglik(w, c, s, dt, R)[0], s.T @ (np.exp(s @ w) - c)), "the gradient "
               "is Σ_t (r_t − c_t) s_t with r_t = exp(wᵀs_t)·dt·R, the expected count per bin: keep dt·R in it.")],
    error_hints=[(word, _FACTORIAL) for word in ("factorial", "Overflow", "too large")],
    success="{function} gives −log L (without constants) and its gradient at {n} points the check drew."))


def _draw_fit(rng):  # args[4], the true w (15 × 15: a fit started there runs), spots an x0 at it; fit_rf gets 4
    return [Case((*lnp.sample_lnp(w, 400, dt, R, 1.0, _seed(rng))[::2], dt, R, w), f"400 bins of {whose} (v = 1)")
            for w, dt, R, whose in ((_W_LAB, 0.1, 50.0, "the lab's receptive field"), (lnp.gaussian_rf(
                15, 1.5, center=(5.0, 9.0)), 0.05, 40.0, "another neuron (dt = 0.05, R = 40)"))]


register(FunctionCheck(
    part="ex5-fit", points=1, function="fit_rf", seed=503, draw=_draw_fit,
    reference=lambda c, s, dt, R: lnp.fit_rf(c, s, dt, R).w, output=lnp_results.fitted, compare=lnp_results.ml_fit,
    success="{function} gives the maximum-likelihood w on {n} data sets the check drew."))


def _images(ws, titles, shape, axes=None):
    """Each w as a frame-shaped image on one diverging scale, ±max |w|, titled and labelled."""
    m = max(np.abs(w).max() for w in ws)
    for ax, w, title in zip(axes or Figure().subplots(1, len(ws), squeeze=False)[0], ws, titles):
        ax.imshow(np.reshape(w, shape), cmap="RdBu_r", vmin=-m, vmax=m)
        ax.set(title=title, xlabel="column", ylabel="row")
    return ax.figure


def _plot_response(ax, c, r, dt):
    ax.plot(np.arange(len(c)) * dt, np.c_[c, r], label=["observed count c", "expected count r"])
    ax.set(title="response", xlabel="time (s)", ylabel="spikes per bin")
    ax.legend()


register(_PLOT(
    part="ex5-response-plot", function="plot_response", seed=504, reference=_plot_response,
    draw=lambda rng: [Case(lnp.sample_lnp(lnp.gaussian_rf(3, 1.0), 60, 0.1, 20.0, 1.0, _seed(rng))[:2] + (0.1,),
                           "60 bins of 0.1 s")], output=figures.response_plot,
    success="{function} draws c and r against time in seconds, with a title, axis labels and a legend."))


register(_PLOT(
    part="ex5-rf-plot", function="plot_rf", seed=505, reference=lambda ax, w, shape: _images([w], ["w"], shape, [ax]),
    draw=lambda rng: [Case((rng.normal(size=35), (5, 7)), "a random w of 35 pixels, shape (5, 7)"),
                      Case((lnp.gaussian_rf(4, 1.0, center=tuple(rng.uniform(0, 3, 2))), (4, 4)), "a 4 × 4 blob")],
    output=figures.rf_plot,
    success="{function} shows w as an image on a diverging scale centred on zero, labelled, for {n} inputs."))


def _recording(rng, n, d):
    """n frames of d s; spikes (µs) around them, 3 at triggers, one late in the last frame, one where it ends."""
    triggers = np.round(2.0 + np.cumsum(np.r_[0, d + rng.normal(0, d / 125, n - 1)]), 6)
    around = np.r_[rng.uniform(triggers[0] - 0.5, triggers[-1] + d + 0.5, 6 * n), triggers[-1] + 0.75 * d]
    spikes = np.sort(np.r_[np.round(around, 6), triggers[rng.choice(n - 1, 3, False)], triggers[-1] + d])
    return Case((spikes, triggers, d), f"{n} frames of {1000 * d:g} ms, {spikes.size} spikes")


register(FunctionCheck(
    part="ex5-binning", points=0.5, function="bin_counts", seed=511, reference=lnp.bin_spikes,
    draw=lambda rng: [_recording(rng, 12, 0.05), _recording(rng, 80, float(rng.choice([0.02, 0.04, 0.1])))],
    mistakes=[(lambda sp, tr, d: np.r_[0, np.histogram(sp, bins=tr)[0]], "your counts are shifted by one frame: "
               "counts[k] must be the spikes between trigger k and trigger k + 1, so that it pairs with frame k."),
              (lambda sp, tr, d: np.histogram(sp, bins=tr)[0], "np.histogram with the n trigger times as edges gives "
               "n − 1 counts: append the end of the last frame, trigger_times[-1] + frame_duration."),
              (lambda sp, tr, d: np.histogram(sp, bins=np.append(tr, tr[-1] + d))[0], "the last count is off: a spike "
               "exactly at trigger_times[-1] + frame_duration, where the last frame ends, belongs to no frame."),
              (lambda sp, tr, d: lnp.bin_spikes(sp, tr, d) / d, "return spike counts per frame, not rates.")],
    success="{function} counts each frame's spikes on {n} recordings the check drew."))


def _draw_lagged(rng):
    cases = []
    for lags, kernel in (([0, 1, 2, 3], [0.2, 1.0, -0.5, -0.3]), ([0, 2, 3], [0.0, 0.6, 0.0, -0.8])):
        spatial, frames = rng.normal(size=9), rng.choice([-1.0, 1.0], size=(1000, 9))
        drive = sum(0.6 * k / np.linalg.norm(spatial) * np.r_[np.zeros(L), frames[: 1000 - L] @ spatial]
                    for L, k in enumerate(kernel))
        cases.append(Case((rng.poisson(np.exp(drive)), frames, lags, 0.05), f"1000 frames of 9 pixels, lags {lags}"))
    return cases


def _fit_lagged(counts, frames, lags, dt):  # "did not converge" at 1e-8 per bin (reversed recordings): not theirs
    with warnings.catch_warnings(action="ignore", category=RuntimeWarning):
        return lnp.fit_lagged(counts, frames, lags, dt, R=None)


def _each_lag(counts, frames, lags, dt, own_rows=False, R=None):
    """fit_rf per lag on each lag's own rows (counts[L:], frames[:n - L]) or at a known rate R: two mistakes."""
    m, n = max(lags), len(counts)
    with warnings.catch_warnings(action="ignore", category=RuntimeWarning):
        return np.column_stack([lnp.fit_rf(counts[L if own_rows else m:], frames[(L if own_rows else m) - L: n - L],
                                           dt, R).w for L in lags])


register(FunctionCheck(
    part="ex5-lagged", points=1, function="fit_lags", seed=512, draw=_draw_lagged, reference=_fit_lagged,
    output=lnp_results.single_threaded, compare=lnp_results.fit, tolerance=_FIT_SAME,
    mistakes=[(lambda counts, frames, *rest: _fit_lagged(counts[::-1], frames[::-1], *rest),  # = frames[t + L]
               "your lags go the wrong way: lag L pairs counts[t] with frames[t - L], the frame shown L steps "
               "*before*; use counts[m:] with frames[m - L : n - L], m = max(lags)."),
              (lambda *args: _fit_lagged(*args).T, "stack the filters as columns: np.column_stack."),
              (functools.partial(_each_lag, own_rows=True), "use the same rows for every lag, as the task says: "
               "counts[m:] with frames[m - L : n - L], m = max(lags)."),
              (functools.partial(_each_lag, R=1.0), "the rate R is unknown: append a column of ones to the frames, "
               "call fit_rf(..., dt, 1.0), and drop the last weight (it estimates log R).")],
    success="{function} fits each lag (counts[t] with frames[t − L], rate estimated) on {n} recordings."))


register(_PLOT(
    part="ex5-lagged-plots", function="plot_lagged_filters", seed=513,
    reference=lambda W, shape, lags: _images(list(W.T), [f"lag {lag}" for lag in lags], shape),
    draw=lambda rng: [Case((rng.normal(size=(12, 3)), (4, 3), [0, 1, 2]), "W of shape (12, 3), frames 4 × 3"),
                      Case((rng.normal(size=(20, 4)), (5, 4), [0, 2, 3, 5]), "W of shape (20, 4), lags [0, 2, 3, 5]")],
    output=figures.lagged_plots,
    success="{function} shows each lag's filter as a frame-shaped image titled with its lag, for {n} inputs."))


def _rank_one(rng, P, n_lags):
    """W of shape (P, n_lags): 3 u vᵀ (u, v of unit norm), noise of SD 0.3 and an offset of 0.2."""
    u, v = (x / np.linalg.norm(x) for x in (rng.normal(size=P), rng.normal(size=n_lags)))
    W = 3.0 * np.outer(u, v) + 0.3 * rng.normal(size=(P, n_lags)) + 0.2
    return Case((W,), f"W of shape {W.shape}")


def _svd(W, k=0, column=False, centre=True, sign=1.0):
    """Singular vectors ``k`` (``v`` a column of Vᵀ if ``column``), u's largest entry of sign ``sign``."""
    U, S, Vt = np.linalg.svd(W - W.mean() if centre else W, full_matrices=False)
    sign *= np.sign(U[np.argmax(np.abs(U[:, k])), k])
    return sign * U[:, k], sign * (Vt[:, k] if column else Vt[k]), S[k]


_SECOND = "you took the second singular vector: the first (largest singular value, index 0) is the best rank-one fit."
register(FunctionCheck(
    part="ex5-svd", points=0.5, function="space_time_svd", seed=521, reference=lnp.separate_space_time,
    draw=lambda rng: [_rank_one(rng, 30, 5), _rank_one(rng, 12, 4)],
    mistakes=[(lambda W: _svd(W, k=1), _SECOND), (lambda W: _svd(W, k=1, sign=-1.0), _SECOND),
              (lambda W: _svd(W, column=True), "you took a column of Vᵀ (Vt[:, 0]); the time course is its first "
                                               "*row*, Vt[0, :] (the first column of V)."),
              *[(flip, "fix the sign: flip u1 and v1 together so that the entry of u1 with the largest magnitude is "
                 "positive.") for flip in (lambda W: _svd(W, sign=-1.0),
                                           lambda W: (lambda u, v, s: (u, -v, s))(*_svd(W)))],  # v1 alone flipped
              (lambda W: _svd(W, centre=False), "subtract the mean of W (W - W.mean()) before the SVD.")],
    success="{function} gives the first singular vectors of the centred W, sign fixed, on {n} matrices."))


def _plot_space_time(u, v, shape, lag_times):
    axes = Figure().subplots(1, 2)
    axes[1].plot(lag_times, v)
    axes[1].set(title="time course v1", xlabel="lag (s)", ylabel="weight")
    return _images([u], ["spatial map u1"], shape, axes[:1])


register(_PLOT(
    part="ex5-space-time-plots", function="plot_space_time", seed=522, reference=_plot_space_time,
    draw=lambda rng: [Case((rng.normal(size=20), rng.normal(size=5), (5, 4), 0.05 * np.arange(5)),
                           "u of 20 pixels (5 × 4), v over 5 lags")], output=figures.space_time_plots,
    success="{function} shows the spatial map as an image and the time course against the lag times, labelled."))


def _ridge(c, s, dt, R, alpha, times=1.0):
    return lnp.fit_regularized(c, s, dt, R, alpha=times * alpha, penalty="l2").w


def _draw_ridge(rng):
    c, _, s = lnp.sample_lnp(lnp.gaussian_rf(7, 1.2), n_t=300, dt=0.1, R=20.0, v=1.0, seed=_seed(rng))
    return [Case((c, s, 0.1, 20.0, alpha), f"300 bins, 49 pixels, alpha = {alpha:g}") for alpha in (10.0, 100.0)]


register(FunctionCheck(
    part="ex5-ridge", points=1, function="fit_ridge", seed=531, draw=_draw_ridge, reference=_ridge,
    output=lnp_results.single_threaded, compare=lnp_results.fit, tolerance=_FIT_SAME,
    mistakes=[(functools.partial(_ridge, times=times), hint) for times, hint in (
        (0.0, "this is the unpenalised fit: add alpha * (w @ w) to −log L and 2 * alpha * w to its gradient."),
        (0.5, "the penalty is α‖w‖² = alpha * (w @ w); its gradient is 2 * alpha * w (you used half of it; or was "
              "your penalty α‖w‖, without the square? It pulls about as hard)."),
        (2.0, "the penalty is α‖w‖² and its gradient 2 * alpha * w: yours is twice too strong."))]
    + [(lambda c, *a: _ridge(c, *a, times=len(c) / 2), "glum and scikit-learn divide −log L by the number of bins n "
        "and the ridge penalty by 2: to minimise −log L + α‖w‖² with them, pass alpha = 2 * alpha / n.")],
    success="{function} minimises −log L + α‖w‖² (a ridge-penalised Poisson GLM) on {n} problems."))


register(_PLOT(
    part="ex5-alpha-plots", function="plot_filters_by_alpha", seed=532,
    reference=lambda ws, alphas, shape: _images(ws, [f"α = {a:g}" for a in alphas], shape),
    draw=lambda rng: [Case(([rng.normal(size=12) for _ in range(3)], [0.0, 10.0, 1000.0], (3, 4)),
                           "3 filters of 12 pixels (3 × 4), alphas [0, 10, 1000]")], output=figures.alpha_plots,
    success="{function} shows one filter per alpha, in order, titled, on one diverging scale."))
