r"""Linear–nonlinear–Poisson (LNP) receptive fields, as chapter 5 teaches them.

The model
---------
Time is cut into bins of width :math:`\Delta t` (argument ``dt``, seconds). In bin
:math:`t` the neuron sees one stimulus frame :math:`s_t \in \mathbb{R}^{P}` (a row of
``s``, shape ``(n_t, P)``; :math:`P` pixels, flattened) and fires :math:`c_t` spikes
(entry of ``c``):

.. math::

    c_t \sim \mathrm{Poisson}(r_t), \qquad r_t = \exp(w^\top s_t)\,\Delta t\,R,

where :math:`w \in \mathbb{R}^P` is the receptive field (argument ``w``) and :math:`R`
(argument ``R``, spikes/s) sets the rate at a blank stimulus (:math:`s_t = 0`).
:math:`r_t` is the *expected count* in bin :math:`t`; :math:`\exp(w^\top s_t) R` is the rate
in spikes/s. This is a Poisson GLM with log link and offset :math:`\log(\Delta t R)`.

The log-likelihood of the counts is

.. math::

    \log L(w) = \sum_t c_t \log r_t - r_t - \log c_t!
              = \sum_t c_t\, w^\top s_t - e^{w^\top s_t} \Delta t R + \text{const},

with the gradient

.. math::

    \nabla_w \log L(w) = \sum_t \bigl(c_t - e^{w^\top s_t} \Delta t R\bigr)\, s_t ,

each frame weighted by observed minus predicted count. The constant collects
:math:`-\sum_t \log c_t!` and :math:`\sum_t c_t \log(\Delta t R)`: neither depends on
:math:`w`, so neither changes the maximiser or the gradient, and dropping them avoids
evaluating :math:`\log c_t!` at all (``log(factorial(c))`` overflows for large counts;
:func:`scipy.special.gammaln` would be the safe way when the full value is wanted, as in
:func:`cv_alpha`). :func:`negloglik` returns :math:`-\log L` without the constant and its
gradient; :func:`fit_rf` minimises it with L-BFGS-B.

Regularised fits minimise :math:`C(w) = -\log L(w) + \alpha \lVert w \rVert_p^p` with
:math:`p = 2` (ridge, :func:`fit_regularized` with ``penalty="l2"``) or :math:`p = 1`
(lasso, ``penalty="l1"``); :func:`cv_alpha` chooses :math:`\alpha` by K-fold
cross-validation.

Recorded-format data
--------------------
A recording in the lab's layout is a movie (one frame per row), the trigger times at which
the frames appeared, and spike times. :func:`bin_spikes` counts the spikes of each frame
(count ``k`` belongs to frame ``k``, shown from trigger ``k`` to trigger ``k + 1``);
:func:`fit_lagged` fits one receptive field per lag (counts at frame ``t`` predicted from the
frame at ``t - lag``); :func:`separate_space_time` splits the stack of lagged filters into a
spatial map and a time course with the SVD. :func:`load_recorded_neuron` loads a simulated
neuron in that layout and :func:`load_grasshopper` a real auditory receptor from ``nitime``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize
from scipy.special import gammaln
from threadpoolctl import ThreadpoolController, threadpool_limits

from course_lib._validate import as_float_array

__all__ = [
    "LNPFit",
    "CVResult",
    "RecordedNeuron",
    "GrasshopperRecording",
    "gaussian_rf",
    "sample_lnp",
    "negloglik",
    "fit_rf",
    "fit_regularized",
    "cv_alpha",
    "bin_spikes",
    "lagged_design",
    "fit_lagged",
    "fit_joint",
    "spike_triggered_average",
    "separate_space_time",
    "simulate_recording",
    "write_recorded_neuron",
    "load_recorded_neuron",
    "load_grasshopper",
    "temporal_design",
]


# ---------------------------------------------------------------------------------------
# Validation (course_lib._validate.as_float_array does the numeric/shape/NaN part)
# ---------------------------------------------------------------------------------------


def _positive_scalar(x, name: str) -> float:
    try:
        val = float(x)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive number, got {x!r}") from None
    if not np.isfinite(val) or val <= 0:
        raise ValueError(f"{name} must be a positive, finite number, got {x!r}")
    return val


def _nonneg_scalar(x, name: str) -> float:
    try:
        val = float(x)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a non-negative number, got {x!r}") from None
    if not np.isfinite(val) or val < 0:
        raise ValueError(f"{name} must be a non-negative, finite number, got {x!r}")
    return val


def _counts(c, name: str = "c") -> np.ndarray:
    """Spike counts: 1-D, finite, non-negative whole numbers; returned as float."""
    arr = as_float_array(c, name, ndim=1)
    if arr.size == 0:
        raise ValueError(f"{name} is empty; it needs one spike count per time bin")
    neg = np.flatnonzero(arr < 0)
    if neg.size:
        raise ValueError(
            f"{name} must hold non-negative spike counts; {neg.size} value(s) are negative "
            f"(first {arr[neg[0]]!r} at index {neg[0]})"
        )
    frac = np.flatnonzero(arr != np.round(arr))
    if frac.size:
        raise ValueError(
            f"{name} must hold whole-number spike counts; {frac.size} value(s) are not "
            f"integers (first {arr[frac[0]]!r} at index {frac[0]})"
        )
    return arr


def _design(s, n_t: int, name: str = "s", check_finite: bool = True) -> np.ndarray:
    """Stimulus matrix: 2-D float, one row per time bin."""
    if check_finite:
        arr = as_float_array(s, name, ndim=2)
    else:
        try:
            arr = np.asarray(s, dtype=float)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{name} must be numeric, got {type(s).__name__}: {err}") from None
        if arr.ndim != 2:
            raise ValueError(f"{name} must be 2-dimensional, got shape {arr.shape}")
    if arr.shape[0] != n_t:
        raise ValueError(
            f"{name} has {arr.shape[0]} rows (time bins) but the counts have {n_t}; "
            f"{name} must have shape (n_t, n_pixels) = ({n_t}, n_pixels)"
        )
    return arr


def _weights(w, n_pixels: int, name: str = "w") -> np.ndarray:
    arr = as_float_array(w, name, ndim=1)
    if arr.shape[0] != n_pixels:
        raise ValueError(
            f"{name} has {arr.shape[0]} entries but the stimulus has {n_pixels} pixels "
            f"(columns of s)"
        )
    return arr


def _times(t, name: str, strictly_increasing: bool) -> np.ndarray:
    arr = as_float_array(t, name, ndim=1)
    if strictly_increasing:
        if arr.size < 1:
            raise ValueError(f"{name} is empty")
        steps = np.diff(arr)
        bad = np.flatnonzero(steps <= 0)
        if bad.size:
            i = bad[0]
            raise ValueError(
                f"{name} must be strictly increasing; {name}[{i + 1}] = {arr[i + 1]!r} "
                f"is not after {name}[{i}] = {arr[i]!r}"
            )
    return arr


def _lags(lags, n_frames: int) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(lags))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"lags must be a non-empty 1-D sequence of integers, got {lags!r}")
    if not np.issubdtype(arr.dtype, np.integer):
        if not (np.issubdtype(arr.dtype, np.floating) and np.all(arr == np.round(arr))):
            raise ValueError(f"lags must be whole numbers of frames, got {lags!r}")
        arr = arr.astype(int)
    if np.any(arr < 0):
        raise ValueError(
            f"lags must be >= 0 (counts at t are predicted from the frame at t - lag, "
            f"so a negative lag would use the future), got {arr.tolist()}"
        )
    if np.unique(arr).size != arr.size:
        raise ValueError(f"lags must not repeat, got {arr.tolist()}")
    if arr.max() >= n_frames:
        raise ValueError(
            f"the largest lag ({arr.max()}) must be smaller than the number of frames "
            f"({n_frames})"
        )
    return arr


def _penalty(penalty: str) -> str:
    if penalty not in ("l1", "l2"):
        raise ValueError(f"penalty must be 'l1' or 'l2', got {penalty!r}")
    return penalty


# ---------------------------------------------------------------------------------------
# The simulated neuron of Task 1
# ---------------------------------------------------------------------------------------


def gaussian_rf(D: int = 15, width: float = 2.0, center=None, normalize: str = "norm"
                ) -> np.ndarray:
    r"""A Gaussian-blob receptive field on a ``D`` × ``D`` grid, normalised to unit norm or sum.

    The normalisation sets the neuron's firing rate. With white noise of variance ``v``
    (:func:`sample_lnp`) the drive :math:`w^\top s_t` is :math:`N(0, v \lVert w\rVert^2)`,
    so the mean rate is :math:`R \exp(v \lVert w\rVert^2 / 2)` spikes/s. The lab's text
    says ``‖w‖ = 1``: with ``v = 5`` and ``R = 50`` that is :math:`50 e^{2.5}` ≈ 610
    spikes/s, which no neuron fires. The lab's code divides by the **sum** instead
    (``normalize="sum"``); for the 15 × 15 blob of width 2 that gives ``‖w‖ ≈ 0.14`` and a
    mean rate near 53 spikes/s.

    Parameters
    ----------
    D : int
        Side of the square grid, in pixels.
    width : float
        Standard deviation of the Gaussian, in pixels.
    center : tuple of float, optional
        ``(row, column)`` of the peak, in pixels from the top-left pixel (0-based);
        default the grid centre ``((D - 1) / 2, (D - 1) / 2)``.
    normalize : {"norm", "sum"}, default "norm"
        ``"norm"`` divides by the Euclidean norm (``‖w‖₂ = 1``, the lab's text);
        ``"sum"`` divides by the sum of the weights (``Σ w = 1``, the lab's code, a
        realistic rate at ``v = 5``).

    Returns
    -------
    w : ndarray, shape (D * D,)
        The receptive field **flattened** in C (row-major) order, so
        ``w.reshape(D, D)[i, j]`` is pixel (row ``i``, column ``j``); ``‖w‖₂ = 1`` or
        ``Σ w = 1``. Dimensionless (a weight per unit of stimulus).
    """
    if isinstance(D, bool) or not isinstance(D, (int, np.integer)) or D < 1:
        raise ValueError(f"D must be a positive integer number of pixels, got {D!r}")
    width = _positive_scalar(width, "width")
    if normalize not in ("norm", "sum"):
        raise ValueError(f"normalize must be 'norm' (unit Euclidean norm) or 'sum' (weights "
                         f"summing to 1), got {normalize!r}")
    if center is None:
        center = ((D - 1) / 2, (D - 1) / 2)
    center = as_float_array(center, "center", ndim=1)
    if center.shape != (2,):
        raise ValueError(f"center must be (row, column), got {center.tolist()}")
    rows, cols = np.mgrid[0:D, 0:D]
    blob = np.exp(-((rows - center[0]) ** 2 + (cols - center[1]) ** 2) / (2 * width**2))
    w = blob.ravel()
    return w / (w.sum() if normalize == "sum" else np.linalg.norm(w))


def sample_lnp(w, n_t: int = 1000, dt: float = 0.1, R: float = 50.0, v: float = 5.0,
               seed: int = 0):
    """Draw a stimulus and spike counts from the LNP model.

    The stimulus ensemble is uncorrelated Gaussian white noise ("Gaussian checkerboard"):
    every pixel of every frame is an independent draw from N(0, v), so the stimulus
    covariance is ``v * I`` in space and time.

    Parameters
    ----------
    w : array_like, shape (P,)
        Receptive field (flattened), dimensionless.
    n_t : int
        Number of time bins (frames).
    dt : float
        Bin width, in seconds.
    R : float
        Rate at a blank stimulus, in spikes/s.
    v : float
        Variance of each pixel's stimulus value (stimulus units squared).
    seed : int
        Seed for :func:`numpy.random.default_rng`; the same seed gives the same draw.

    Returns
    -------
    c : ndarray of int, shape (n_t,)
        Spike counts per bin, ``c[t] ~ Poisson(r[t])``.
    r : ndarray, shape (n_t,)
        Expected count per bin, ``r[t] = exp(w @ s[t]) * dt * R`` (spikes per bin; divide by
        ``dt`` for the rate in spikes/s).
    s : ndarray, shape (n_t, P)
        The stimulus, one frame per row, stored column-major (Fortran order), which makes
        :func:`negloglik` and :func:`fit_rf` about twice as fast; the values do not depend
        on the order.
    """
    w = as_float_array(w, "w", ndim=1)
    if isinstance(n_t, bool) or not isinstance(n_t, (int, np.integer)) or n_t < 1:
        raise ValueError(f"n_t must be a positive integer number of bins, got {n_t!r}")
    dt = _positive_scalar(dt, "dt")
    R = _positive_scalar(R, "R")
    v = _positive_scalar(v, "v")
    rng = np.random.default_rng(seed)
    # Column-major: the likelihood's two products over s run about twice as fast (see
    # _nll_core); the values are those of the row-major draw.
    s = np.asfortranarray(rng.normal(0.0, np.sqrt(v), size=(n_t, w.size)))
    r = np.exp(s @ w) * dt * R
    c = rng.poisson(r)
    return c, r, s


# ---------------------------------------------------------------------------------------
# Likelihood and maximum-likelihood fit
# ---------------------------------------------------------------------------------------


#: Bytes of stimulus per block of :func:`_nll_core`: a block stays in the CPU's cache
#: between the two products that read it.
_BLOCK_BYTES = 6 * 2**20


def _nll_core(w, c, s, log_dtR):
    """-log L without constants, and its gradient; ``log_dtR`` is a scalar.

    Blocked by hand, because numpy has no fused product for it: ``eta = s @ w`` and
    ``grad = (mu - c) @ s`` each stream the whole (n_t, P) stimulus, and at 225 x 100,000
    (180 MB) memory bandwidth is the whole cost. A few MB of rows at a time, the second
    product finds its block still in cache, so the stimulus is read from memory once. Each
    block is vectorised (two BLAS products and one ``exp``); the loop runs over blocks of
    thousands of bins, never over bins. Both products are also about twice as fast on a
    column-major (Fortran-ordered) ``s``, which is why :func:`sample_lnp` returns one.
    Measured on 2 cores, 225 x 100,000: 31-37 ms row-major unblocked, 20-23 ms
    column-major unblocked, 16-17 ms column-major in blocks of 4-8 MB.
    """
    n_t, P = s.shape
    rows = max(512, _BLOCK_BYTES // (8 * max(P, 1)))  # one block when s fits in one
    eta = np.empty(n_t)
    grad = np.zeros(P)
    f = mu_sum = 0.0
    for i in range(0, n_t, rows):
        block, cb = s[i:i + rows], c[i:i + rows]
        e = eta[i:i + rows] = block @ w
        mu = np.exp(e + log_dtR)
        part = mu.sum()
        mu_sum += part
        f += part - cb @ e
        mu -= cb
        grad += mu @ block
    return f, grad, eta, mu_sum


def negloglik(w, c, s, dt: float, R: float):
    """Negative Poisson log-likelihood of the LNP model and its gradient.

    ``f(w) = Σ_t exp(wᵀs_t) Δt R − c_t wᵀs_t`` and
    ``∇f(w) = Σ_t (exp(wᵀs_t) Δt R − c_t) s_t``:
    the terms ``log c_t!`` and ``c_t log(Δt R)`` are dropped because they do not depend
    on ``w`` (see the module docstring). Vectorised: two matrix–vector products and one
    ``exp``, no loop over time.

    Parameters
    ----------
    w : array_like, shape (P,)
        Receptive field (flattened), dimensionless.
    c : array_like, shape (n_t,)
        Spike counts per bin (non-negative integers).
    s : array_like, shape (n_t, P)
        Stimulus, one frame per row.
    dt : float
        Bin width, in seconds.
    R : float
        Rate at a blank stimulus, in spikes/s.

    Returns
    -------
    f : float
        ``-log L(w)`` up to the constant, in nats.
    grad : ndarray, shape (P,)
        Gradient of ``f`` with respect to ``w`` (the gradient of the *negative*
        log-likelihood), in nats per unit of ``w``.
    """
    c = _counts(c)
    # The stimulus is checked for NaN/inf through w @ s_t below: one pass over n_t values
    # instead of a second pass over the whole (n_t, P) matrix on every call.
    s = _design(s, c.size, check_finite=False)
    w = _weights(w, s.shape[1])
    log_dtR = np.log(_positive_scalar(dt, "dt")) + np.log(_positive_scalar(R, "R"))
    f, grad, eta, _ = _nll_core(w, c, s, log_dtR)
    if not np.all(np.isfinite(eta)):
        bad = np.flatnonzero(~np.isfinite(eta))
        if not np.all(np.isfinite(s[bad[0]])):
            raise ValueError(
                f"s contains NaN or infinite values (first in row {bad[0]}); "
                f"drop or fill those frames first"
            )
        raise ValueError(f"w @ s[t] is not finite at t = {bad[0]}; w or s is too large")
    return float(f), grad


@dataclass(frozen=True)
class LNPFit:
    """A fitted LNP model.

    Attributes
    ----------
    w : ndarray, shape (P,)
        Estimated receptive field (the optimiser's ``x``, never its ``jac``).
    R : float
        Rate at a blank stimulus, in spikes/s: the value given, or the estimate when the
        fit was asked to estimate it (``R=None``).
    R_estimated : bool
        Whether ``R`` was estimated (an unpenalised intercept ``log R``).
    alpha : float
        Penalty weight (0 for maximum likelihood).
    penalty : str
        ``"none"``, ``"l2"`` or ``"l1"``.
    negloglik : float
        Penalised negative log-likelihood at the estimate (without the constant).
    n_iter : int
        Optimiser iterations.
    converged : bool
        Whether the optimiser reported convergence.
    """

    w: np.ndarray
    R: float
    R_estimated: bool
    alpha: float
    penalty: str
    negloglik: float
    n_iter: int
    converged: bool


@lru_cache(maxsize=1)
def _foreign_blas() -> ThreadpoolController:
    """The BLAS libraries loaded by packages other than numpy (scipy's, in pip wheels)."""
    numpy_home = Path(np.__file__).resolve().parent
    owned = (str(numpy_home), str(numpy_home) + ".libs")
    controller = ThreadpoolController()  # inspects every loaded library: made once
    return controller.select(
        filepath=[lib.filepath for lib in controller.lib_controllers
                  if lib.user_api == "blas" and not lib.filepath.startswith(owned)])


def _quiet_foreign_blas():
    """Run scipy's BLAS on one thread while numpy's BLAS does the likelihood.

    pip's numpy and scipy each bring their own OpenBLAS. L-BFGS-B's small vector
    operations wake scipy's threads, which then spin and take the cores from numpy's
    products: a fit on 225 x 20,000 took 330-530 ms with both pools free and 120-140 ms
    with scipy's on one thread (threadpoolctl; the same iterations and the same result).
    """
    return _foreign_blas().limit(limits=1)


def _fit_smooth(c, s, dt, R, alpha, w0, gtol, maxiter, what):
    """Minimise -log L + alpha ||w||_2^2 with L-BFGS-B and the analytic gradient.

    Written by hand (the objective only; scipy does the optimisation) because the
    vectorised likelihood with its exact gradient is 10-20x faster than statsmodels' IRLS
    here (see benchmarks/bench_lnp.py) and gives the same MLE.
    """
    n_t, P = s.shape
    log_dt = np.log(dt)
    estimate_R = R is None
    if w0 is None:
        w0 = np.zeros(P)  # never the truth: the fit must find w from the data alone
    else:
        w0 = _weights(w0, P, "w0")
    if estimate_R:
        # log R starts at its MLE for w = 0: the mean count per second
        b0 = np.log(max(c.mean(), 0.5 / n_t) / dt)
        theta0 = np.r_[w0, b0]
    else:
        theta0 = w0.copy()
        log_dtR = log_dt + np.log(R)
    c_sum = c.sum()
    scale = 1.0 / n_t  # per-bin objective: tolerances do not depend on the data length

    def fun(theta):
        if estimate_R:
            w, b = theta[:-1], theta[-1]
            f, g_w, _, mu_sum = _nll_core(w, c, s, log_dt + b)
            # the intercept b = log R adds -b * sum(c); d/db = sum(mu) - sum(c)
            f = f - b * c_sum
            g = np.r_[g_w, mu_sum - c_sum]
        else:
            w = theta
            f, g, _, _ = _nll_core(w, c, s, log_dtR)
        if alpha > 0:
            f = f + alpha * (w @ w)
            g = g.copy()
            g[:P] += 2 * alpha * w
        return f * scale, g * scale

    with np.errstate(over="ignore"), _quiet_foreign_blas():
        res = optimize.minimize(
            fun, theta0, jac=True, method="L-BFGS-B",
            options={"maxiter": maxiter, "gtol": gtol, "ftol": 1e3 * np.finfo(float).eps,
                     "maxcor": 20},
        )
    theta = res.x
    f_final, g_final = fun(theta)
    if not np.isfinite(f_final):
        raise ValueError(f"{what}: the likelihood overflowed; is the stimulus scaled sensibly?")
    gmax = float(np.max(np.abs(g_final)))
    converged = bool(res.success) or gmax <= 10 * gtol
    if not converged:
        warnings.warn(
            f"{what} did not converge after {res.nit} iterations: largest |gradient| per bin "
            f"is {gmax:.2e}, tolerance {gtol:.0e} ({res.message})",
            RuntimeWarning,
            stacklevel=3,
        )
    if estimate_R:
        w, R_hat = theta[:-1], float(np.exp(theta[-1]))
    else:
        w, R_hat = theta, float(R)
    return LNPFit(
        w=w, R=R_hat, R_estimated=estimate_R, alpha=float(alpha),
        penalty="l2" if alpha > 0 else "none", negloglik=float(f_final / scale),
        n_iter=int(res.nit), converged=converged,
    )


def fit_rf(c, s, dt: float, R: float | None, w0=None, *, gtol: float = 1e-9,
           maxiter: int = 2000) -> LNPFit:
    """Maximum-likelihood LNP receptive field.

    Minimises :func:`negloglik` with :func:`scipy.optimize.minimize` (L-BFGS-B) and the
    analytic gradient. This is the Poisson GLM with log link and offset ``log(dt * R)``;
    the estimate equals statsmodels' ``GLM(c, s, family=Poisson(),
    offset=log(dt * R)).fit()`` (tested to 1e-4 relative).

    Parameters
    ----------
    c : array_like, shape (n_t,)
        Spike counts per bin (non-negative integers).
    s : array_like, shape (n_t, P)
        Stimulus, one frame per row.
    dt : float
        Bin width, in seconds.
    R : float or None
        Rate at a blank stimulus, in spikes/s. ``None`` estimates it as well (an
        unpenalised intercept ``log R``), which real data need.
    w0 : array_like, shape (P,), optional
        Starting point; default zeros. Never start at the true receptive field.
    gtol : float
        Stop when the largest gradient entry of the per-bin objective is below this.
    maxiter : int
        Most L-BFGS-B iterations.

    Returns
    -------
    LNPFit
        ``.w`` (shape (P,)) is the estimate; ``.R`` the rate at a blank stimulus.
    """
    c = _counts(c)
    s = _design(s, c.size)
    dt = _positive_scalar(dt, "dt")
    R = None if R is None else _positive_scalar(R, "R")
    return _fit_smooth(c, s, dt, R, 0.0, w0, gtol, maxiter, "fit_rf")


# ---------------------------------------------------------------------------------------
# Regularisation and cross-validation
# ---------------------------------------------------------------------------------------


def _fit_l1(c, s, dt, R, alpha):
    """Lasso-penalised Poisson GLM with glum.

    glum rather than statsmodels: ``GLM.fit_regularized`` runs coordinate descent in Python
    and rebuilds a one-variable GLM for every coordinate of every sweep; on 225 pixels x
    1,000 bins it took 8.7 s and stopped unconverged after 100 sweeps, where glum (a
    maintained, compiled coordinate-descent solver with the Poisson family and offsets)
    took 0.3 s. glum minimises  deviance / (2 n) + a ||w||_1  =  (-log L + const) / n +
    a ||w||_1, so a = alpha / n gives our  -log L + alpha ||w||_1.
    """
    from glum import GeneralizedLinearRegressor  # imported here: only L1 fits need it

    n_t = c.size
    estimate_R = R is None
    offset = np.full(n_t, np.log(dt) if estimate_R else np.log(dt * R))
    model = GeneralizedLinearRegressor(
        family="poisson", link="log", alpha=alpha / n_t, l1_ratio=1.0,
        fit_intercept=estimate_R, gradient_tol=1e-8, max_iter=1000,
    )
    # glum warns when a line search stalls, which it also does right at the optimum; we
    # judge convergence ourselves below, from the lasso's optimality conditions. Its OpenMP
    # threads run on one core: on 2 shared cores a pool of threads made a cross-validation of
    # the recorded neuron's lag-1 filter ~20x slower (same numbers either way).
    with warnings.catch_warnings(), threadpool_limits(limits=1, user_api="openmp"):
        warnings.simplefilter("ignore")
        model.fit(s, c, offset=offset)
    w = np.asarray(model.coef_, dtype=float).copy()
    b = float(model.intercept_) if estimate_R else 0.0
    R_hat = float(np.exp(b)) if estimate_R else float(R)
    lin = s @ w
    mu = np.exp(lin + offset + b)
    f = float(mu.sum() - c @ lin - b * c.sum() + alpha * np.abs(w).sum())
    # KKT: d(-log L)/dw_j = -alpha sign(w_j) where w_j != 0, |d(-log L)/dw_j| <= alpha at 0
    grad = s.T @ (mu - c)
    nz = w != 0
    viol = max(
        float(np.max(np.abs(grad[nz] + alpha * np.sign(w[nz])), initial=0.0)),
        float(np.max(np.abs(grad[~nz]) - alpha, initial=0.0)),
        abs(float(mu.sum() - c.sum())) if estimate_R else 0.0,
    ) / n_t
    tol = 1e-5
    converged = viol <= tol
    if not converged:
        warnings.warn(
            f"fit_regularized (l1, alpha={alpha:g}) did not converge: the optimality "
            f"conditions are violated by {viol:.2e} per bin, tolerance {tol:.0e}",
            RuntimeWarning,
            stacklevel=3,
        )
    return LNPFit(w=w, R=R_hat, R_estimated=estimate_R, alpha=float(alpha), penalty="l1",
                  negloglik=f, n_iter=int(model.n_iter_), converged=converged)


def fit_regularized(c, s, dt: float, R: float | None, alpha: float,
                    penalty: str = "l2") -> LNPFit:
    """Penalised LNP fit: minimise ``-log L(w) + alpha * ||w||_p^p``.

    The Poisson noise model and the offset ``log(dt * R)`` are kept; only ``w`` is
    penalised (never the intercept ``log R`` when ``R=None``).

    Parameters
    ----------
    c : array_like, shape (n_t,)
        Spike counts per bin (non-negative integers).
    s : array_like, shape (n_t, P)
        Stimulus, one frame per row.
    dt : float
        Bin width, in seconds.
    R : float or None
        Rate at a blank stimulus, in spikes/s; ``None`` estimates it (unpenalised).
    alpha : float
        Penalty weight, >= 0, in nats per unit of ``||w||_p^p`` (the likelihood is summed,
        not averaged, over bins).
    penalty : {"l2", "l1"}
        ``"l2"`` (ridge, p = 2: shrinks every weight; smooth, so L-BFGS-B with the
        analytic gradient) or ``"l1"`` (lasso, p = 1: sets weights exactly to zero; the
        kink at zero needs a coordinate-descent solver, here glum).

    Returns
    -------
    LNPFit
        ``.w`` shape (P,).
    """
    c = _counts(c)
    s = _design(s, c.size)
    dt = _positive_scalar(dt, "dt")
    R = None if R is None else _positive_scalar(R, "R")
    alpha = _nonneg_scalar(alpha, "alpha")
    penalty = _penalty(penalty)
    if penalty == "l1":
        return _fit_l1(c, s, dt, R, alpha)
    return _fit_smooth(c, s, dt, R, alpha, None, 1e-9, 2000, "fit_regularized")


def _poisson_loglik(c, mu):
    """Full Poisson log-likelihood, including -log c! via gammaln (no overflow)."""
    return float(np.sum(c * np.log(mu) - mu - gammaln(c + 1)))


def _poisson_deviance(c, mu):
    with np.errstate(divide="ignore", invalid="ignore"):
        term = np.where(c > 0, c * np.log(c / mu), 0.0)
    return float(2 * np.sum(term - (c - mu)))


@dataclass(frozen=True)
class CVResult:
    """Cross-validation of the penalty weight.

    Attributes
    ----------
    table : pandas.DataFrame
        Tidy: one row per (alpha, fold) with columns ``alpha``, ``fold``, ``n_test``,
        ``heldout_loglik`` (full Poisson log-likelihood of the held-out bins, nats, per
        bin), ``heldout_deviance`` (per bin) and ``n_zero`` (exact zeros in ``w``).
    summary : pandas.DataFrame
        One row per alpha: mean and standard error over folds of the held-out
        log-likelihood per bin, mean deviance per bin.
    best_alpha : float
        The alpha with the highest mean held-out log-likelihood.
    penalty : str
        ``"l1"`` or ``"l2"``.
    """

    table: pd.DataFrame
    summary: pd.DataFrame
    best_alpha: float
    penalty: str


def cv_alpha(c, s, dt: float, R: float | None, alphas, penalty: str = "l2",
             n_folds: int = 5, seed: int = 0) -> CVResult:
    """Choose the penalty weight by K-fold cross-validation on held-out log-likelihood.

    Bins are shuffled with ``numpy.random.default_rng(seed)`` and dealt into ``n_folds``
    folds (valid for the LNP model, whose bins are conditionally independent given the
    stimulus; for data with slow drifts prefer contiguous blocks). Each alpha is fitted on
    ``n_folds - 1`` folds with :func:`fit_regularized` and scored on the held-out fold.

    Parameters
    ----------
    c : array_like, shape (n_t,)
        Spike counts per bin.
    s : array_like, shape (n_t, P)
        Stimulus, one frame per row.
    dt : float
        Bin width, in seconds.
    R : float or None
        Rate at a blank stimulus, spikes/s; ``None`` estimates it in every fold.
    alphas : array_like, shape (n_alpha,)
        Penalty weights to try (>= 0), as in :func:`fit_regularized`.
    penalty : {"l2", "l1"}
        Penalty type.
    n_folds : int
        Number of folds, >= 2.
    seed : int
        Seed for the fold assignment.

    Returns
    -------
    CVResult
        ``.table`` (tidy, per alpha and fold), ``.summary`` (per alpha) and ``.best_alpha``.
    """
    c = _counts(c)
    s = _design(s, c.size)
    dt = _positive_scalar(dt, "dt")
    R = None if R is None else _positive_scalar(R, "R")
    penalty = _penalty(penalty)
    alphas = as_float_array(alphas, "alphas", ndim=1)
    if alphas.size == 0 or np.any(alphas < 0):
        raise ValueError(f"alphas must be a non-empty list of values >= 0, got {alphas.tolist()}")
    if isinstance(n_folds, bool) or not isinstance(n_folds, (int, np.integer)) or not (
        2 <= n_folds <= c.size
    ):
        raise ValueError(
            f"n_folds must be an integer between 2 and n_t = {c.size}, got {n_folds!r}"
        )
    rng = np.random.default_rng(seed)
    fold_of = np.empty(c.size, dtype=int)
    fold_of[rng.permutation(c.size)] = np.arange(c.size) % n_folds
    rows = []
    for k in range(n_folds):
        test = fold_of == k
        train = ~test
        for a in alphas:
            fit = fit_regularized(c[train], s[train], dt, R, a, penalty)
            mu = np.exp(s[test] @ fit.w) * dt * fit.R
            n_test = int(test.sum())
            rows.append({
                "alpha": float(a), "fold": k, "n_test": n_test,
                "heldout_loglik": _poisson_loglik(c[test], mu) / n_test,
                "heldout_deviance": _poisson_deviance(c[test], mu) / n_test,
                "n_zero": int(np.sum(fit.w == 0)),
            })
    table = pd.DataFrame(rows)
    grouped = table.groupby("alpha", sort=True)
    summary = pd.DataFrame({
        "mean_heldout_loglik": grouped["heldout_loglik"].mean(),
        "se_heldout_loglik": grouped["heldout_loglik"].std(ddof=1) / np.sqrt(n_folds),
        "mean_heldout_deviance": grouped["heldout_deviance"].mean(),
        "mean_n_zero": grouped["n_zero"].mean(),
    }).reset_index()
    best = float(summary.loc[summary["mean_heldout_loglik"].idxmax(), "alpha"])
    return CVResult(table=table, summary=summary, best_alpha=best, penalty=penalty)


# ---------------------------------------------------------------------------------------
# Recorded-format data: binning, lags, STA, space-time separation
# ---------------------------------------------------------------------------------------


def bin_spikes(spike_times, trigger_times, last_frame_duration: float | None = None):
    """Count the spikes that fall in each stimulus frame.

    Convention: frame ``k`` is on the screen from ``trigger_times[k]`` (inclusive) to
    ``trigger_times[k + 1]`` (exclusive), and ``counts[k]`` is the number of spikes in
    that interval, so ``counts[k]`` pairs with ``frames[k]`` (lag 0). A spike exactly at a
    trigger belongs to the frame that starts there. The last frame has no closing trigger:
    it is closed at ``trigger_times[-1] + last_frame_duration``. Spikes before the first
    trigger or at/after the end of the last frame are not counted.

    ``np.histogram`` does the counting; its last bin is closed on the right, so spikes
    exactly at the final edge (which belong to no frame) are removed from the last count.

    Parameters
    ----------
    spike_times : array_like, shape (n_spikes,)
        Spike times, in seconds (any order).
    trigger_times : array_like, shape (n_frames,)
        Onset time of each frame, in seconds, strictly increasing.
    last_frame_duration : float, optional
        How long the last frame stayed on, in seconds; default the median interval between
        triggers (or, with a single trigger, an error).

    Returns
    -------
    counts : ndarray of int, shape (n_frames,)
        Spikes per frame.
    """
    spikes = _times(spike_times, "spike_times", strictly_increasing=False)
    trig = _times(trigger_times, "trigger_times", strictly_increasing=True)
    if last_frame_duration is None:
        if trig.size < 2:
            raise ValueError("with a single trigger time, give last_frame_duration (seconds)")
        last_frame_duration = float(np.median(np.diff(trig)))
    last_frame_duration = _positive_scalar(last_frame_duration, "last_frame_duration")
    edges = np.append(trig, trig[-1] + last_frame_duration)
    counts, _ = np.histogram(spikes, bins=edges)
    counts[-1] -= int(np.sum(spikes == edges[-1]))
    return counts.astype(int)


def lagged_design(frames, lags):
    """Stack lagged copies of the stimulus, so that row ``i`` holds the frames that
    precede count ``i + max(lags)``.

    Direction: the count at time ``t`` is predicted from the frame at ``t - lag``; a
    positive lag looks into the past. Rows ``t < max(lags)`` have no complete history and
    are dropped, so pair the result with ``counts[max(lags):]``.

    Parameters
    ----------
    frames : array_like, shape (n_t, P) or (n_t,)
        Stimulus, one frame per row (a 1-D time series is treated as P = 1).
    lags : sequence of int, shape (n_lags,)
        Lags in frames (bins), each >= 0.

    Returns
    -------
    X : ndarray, shape (n_t - max(lags), n_lags * P)
        Columns ``j * P : (j + 1) * P`` hold the frames at lag ``lags[j]``; a coefficient
        vector of length ``n_lags * P`` reshapes to ``(n_lags, P)``.
    """
    X = as_float_array(frames, "frames")
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise ValueError(f"frames must be 1- or 2-dimensional, got shape {X.shape}")
    lags = _lags(lags, X.shape[0])
    m = int(lags.max())
    n = X.shape[0]
    return np.hstack([X[m - lag: n - lag] for lag in lags])


def _counts_and_frames(counts, frames, lags):
    c = _counts(counts, "counts")
    X = as_float_array(frames, "frames")
    if X.ndim == 1:
        X = X[:, None]
    if X.ndim != 2:
        raise ValueError(f"frames must be 1- or 2-dimensional, got shape {X.shape}")
    if X.shape[0] != c.size:
        raise ValueError(
            f"frames has {X.shape[0]} rows but counts has {c.size} entries; bin the spikes "
            f"at the frame triggers so that counts[k] pairs with frames[k]"
        )
    lags = _lags(lags, c.size)
    return c, X, lags


def fit_lagged(counts, frames, lags=(0, 1, 2, 3, 4), dt: float = 1.0, R: float | None = None,
               alpha: float = 0.0, penalty: str = "l2") -> np.ndarray:
    """Fit one receptive field per lag, one lag at a time.

    For each lag ``L`` the counts at frame ``t`` are regressed on the frame at ``t - L``
    (so lag 0 is the frame on screen while the spikes were counted, lag 1 the frame
    before). All lags use the same rows (``t >= max(lags)``), so their fits are
    comparable. With a white stimulus the frames at different lags are independent, so
    each one-lag fit is consistent for that lag's filter (the other lags only add noise
    that the intercept absorbs); the joint fit (:func:`fit_joint`) has ``n_lags`` times more
    parameters and is unstable with little data.

    Parameters
    ----------
    counts : array_like, shape (n_t,)
        Spike counts per frame (from :func:`bin_spikes`).
    frames : array_like, shape (n_t, P)
        Stimulus, one frame per row, e.g. contrast ``2 * movie - 1`` for a binary movie.
    lags : sequence of int, shape (n_lags,)
        Lags in frames, each >= 0.
    dt : float
        Frame duration, in seconds (only scales the reported rate).
    R : float or None
        Rate at a blank frame, spikes/s; ``None`` (default) estimates it per lag.
    alpha, penalty
        Optional penalty, as in :func:`fit_regularized`.

    Returns
    -------
    W : ndarray, shape (P, n_lags)
        Column ``j`` is the receptive field at lag ``lags[j]``.
    """
    c, X, lags = _counts_and_frames(counts, frames, lags)
    m = int(lags.max())
    y = c[m:]
    n = X.shape[0]
    W = np.empty((X.shape[1], lags.size))
    for j, lag in enumerate(lags):
        Xl = X[m - lag: n - lag]
        if alpha > 0:
            W[:, j] = fit_regularized(y, Xl, dt, R, alpha, penalty).w
        else:
            W[:, j] = fit_rf(y, Xl, dt, R).w
    return W


def fit_joint(counts, frames, lags=(0, 1, 2, 3, 4), dt: float = 1.0, R: float | None = None,
              alpha: float = 0.0, penalty: str = "l2") -> np.ndarray:
    """Fit the full space–time receptive field: all lags in one model.

    ``log r_t = log(dt R) + Σ_j w_jᵀ s_{t - lags[j]}``, fitted jointly. It has
    ``P * n_lags`` weights; with little data use ``alpha > 0``.

    Parameters
    ----------
    counts : array_like, shape (n_t,)
        Spike counts per frame or bin.
    frames : array_like, shape (n_t, P) or (n_t,)
        Stimulus, one frame per row (1-D for a temporal receptive field).
    lags : sequence of int, shape (n_lags,)
        Lags in frames, each >= 0 (count at ``t`` from the frame at ``t - lag``).
    dt : float
        Bin width, in seconds.
    R : float or None
        Rate at a blank stimulus, spikes/s; ``None`` estimates it.
    alpha, penalty
        Optional penalty, as in :func:`fit_regularized`.

    Returns
    -------
    W : ndarray, shape (P, n_lags)
        Column ``j`` is the filter at lag ``lags[j]``.
    """
    c, X, lags = _counts_and_frames(counts, frames, lags)
    P = X.shape[1]
    design = lagged_design(X, lags)
    y = c[int(lags.max()):]
    if alpha > 0:
        w = fit_regularized(y, design, dt, R, alpha, penalty).w
    else:
        w = fit_rf(y, design, dt, R).w
    return w.reshape(lags.size, P).T


def spike_triggered_average(counts, frames, lags=(0,)) -> np.ndarray:
    """Spike-triggered average of the mean-subtracted stimulus at each lag.

    ``STA[:, j] = Σ_t c_t (s_{t - lags[j]} - s̄) / Σ_t c_t`` over the rows
    ``t >= max(lags)``, where ``s̄`` is the mean frame over those rows. For white Gaussian
    stimuli the STA is proportional to the LNP filter; for correlated stimuli it is the
    filter blurred by the stimulus covariance.

    Parameters
    ----------
    counts : array_like, shape (n_t,)
        Spike counts per frame or bin.
    frames : array_like, shape (n_t, P) or (n_t,)
        Stimulus, one frame per row.
    lags : sequence of int, shape (n_lags,)
        Lags in frames, each >= 0.

    Returns
    -------
    sta : ndarray, shape (P, n_lags)
        In stimulus units.
    """
    c, X, lags = _counts_and_frames(counts, frames, lags)
    m = int(lags.max())
    y = c[m:]
    if y.sum() == 0:
        raise ValueError("counts has no spikes in the rows used; the STA is undefined")
    design = lagged_design(X, lags)
    design = design - design.mean(axis=0)
    sta = (y @ design) / y.sum()
    return sta.reshape(lags.size, X.shape[1]).T


def separate_space_time(W, center: bool = True):
    """Split a space–time receptive field into one spatial map and one time course (SVD).

    ``W - mean(W) ≈ s1 * outer(u1, v1)``, with ``u1`` and ``v1`` the first left and right
    singular vectors (the first *row* of ``Vᵀ``) and ``s1`` the largest singular value.

    Sign convention: the SVD fixes ``u1`` and ``v1`` only up to a common sign; we flip
    both so that the entry of ``u1`` with the largest magnitude is positive (an ON centre
    reads positive), which leaves ``s1 * outer(u1, v1)`` unchanged.

    Parameters
    ----------
    W : array_like, shape (P, n_lags)
        Lagged filters, one column per lag (as from :func:`fit_lagged`).
    center : bool
        Subtract the mean over all entries of ``W`` first (default).

    Returns
    -------
    u1 : ndarray, shape (P,)
        Spatial receptive field, unit norm.
    v1 : ndarray, shape (n_lags,)
        Temporal kernel, unit norm.
    s1 : float
        First singular value (units of ``W``).
    """
    W = as_float_array(W, "W", ndim=2)
    if min(W.shape) < 1:
        raise ValueError(f"W must have at least one pixel and one lag, got shape {W.shape}")
    if center:
        W = W - W.mean()
    U, S, Vt = np.linalg.svd(W, full_matrices=False)
    u1, v1, s1 = U[:, 0].copy(), Vt[0, :].copy(), float(S[0])
    if u1[np.argmax(np.abs(u1))] < 0:
        u1, v1 = -u1, -v1
    return u1, v1, s1


# ---------------------------------------------------------------------------------------
# The recorded-format neuron (simulated) and its files
# ---------------------------------------------------------------------------------------

RECORDED_SEED = 2024
_REC = {
    "frame_shape": (20, 15),  # (rows, columns); frames are stored flattened in C order
    "n_frames": 1500,
    "frame_interval_us": 50_000,  # nominal 50 ms per frame (20 Hz)
    "jitter_sd_us": 400,  # SD of the frame-interval jitter
    "first_trigger_us": 1_000_000,  # stimulus starts 1 s into the recording
    "tail_us": 1_000_000,  # recording goes on 1 s after the last frame ends
    "baseline_hz": 40.0,  # rate at a grey (zero-contrast) screen
    "gain": 1.0,  # W_true = gain * outer(spatial, temporal)
    "centre": (9.0, 6.0),  # (row, column) of the RF centre, pixels
    "sigma_centre": 1.5,  # pixels
    "sigma_surround": 3.0,  # pixels
    "temporal": (0.3, 1.0, 0.2, -0.8, -0.7),  # lags 0-4 frames, before normalising
}
_RECORDED_DIR = "recorded_neuron"


def _recorded_truth():
    p = _REC
    rows, cols = np.mgrid[0:p["frame_shape"][0], 0:p["frame_shape"][1]]
    d2 = (rows - p["centre"][0]) ** 2 + (cols - p["centre"][1]) ** 2
    sc, ss = p["sigma_centre"], p["sigma_surround"]
    # balanced difference of Gaussians: both normalised to unit volume
    dog = np.exp(-d2 / (2 * sc**2)) / (2 * np.pi * sc**2) - np.exp(-d2 / (2 * ss**2)) / (
        2 * np.pi * ss**2
    )
    spatial = dog.ravel() / np.linalg.norm(dog)
    temporal = np.asarray(p["temporal"], dtype=float)
    temporal = temporal / np.linalg.norm(temporal)
    return spatial, temporal


def simulate_recording(seed: int = RECORDED_SEED):
    """Simulate a neuron recorded in the lab's file layout (binary checkerboard movie).

    The neuron is LNP with a separable space–time filter
    ``W_true = gain * outer(spatial, temporal)`` (shape (300, 5)): ``spatial`` a balanced
    difference of Gaussians (ON centre, OFF surround) on a 20 × 15 grid, ``temporal`` a
    biphasic kernel over lags 0–4 frames, both unit norm. Each frame ``k`` is 300 binary
    pixels (0 = dark, 1 = bright, fair coin flips); with contrast ``x_k = 2 * movie_k - 1``
    the rate during frame ``k`` is
    ``baseline_hz * exp(Σ_L W_true[:, L] · x_{k - L})`` (frames before the first one are a
    grey screen, contrast 0). Frame intervals are 50 ms with Gaussian jitter (SD 0.4 ms);
    spikes are a Poisson process, piecewise constant in rate over frames, spontaneous at
    ``baseline_hz`` before the first and after the last frame. Times are whole
    microseconds.

    Parameters
    ----------
    seed : int
        Seed for :func:`numpy.random.default_rng` (the shipped files use
        ``RECORDED_SEED = 2024``).

    Returns
    -------
    stimulus : ndarray of uint8, shape (1500, 300)
        The movie, one flattened (C order) 20 × 15 frame per row.
    trigger_times : ndarray, shape (1500,)
        Frame onsets, in seconds.
    spike_times : ndarray, shape (n_spikes,)
        Spike times, in seconds, increasing.
    """
    p = _REC
    rng = np.random.default_rng(seed)
    n, P = p["n_frames"], p["frame_shape"][0] * p["frame_shape"][1]
    stimulus = rng.integers(0, 2, size=(n, P), dtype=np.uint8)
    intervals = np.round(
        p["frame_interval_us"] + p["jitter_sd_us"] * rng.standard_normal(n)
    ).astype(np.int64)
    onsets = p["first_trigger_us"] + np.r_[0, np.cumsum(intervals)[:-1]]
    ends = onsets + intervals  # the last frame stays on for its own interval

    spatial, temporal = _recorded_truth()
    contrast = 2.0 * stimulus - 1.0
    drive_per_frame = contrast @ spatial  # (n,)
    drive = np.zeros(n)
    for lag, k in enumerate(temporal):
        drive[lag:] += p["gain"] * k * drive_per_frame[: n - lag]
    rate_hz = p["baseline_hz"] * np.exp(drive)

    # Piecewise-constant Poisson process: counts per segment, then uniform times in it,
    # drawn as whole microseconds in [start, end - 1] so no spike sits on the next trigger.
    seg_start = np.r_[0, onsets, ends[-1]]
    seg_end = np.r_[onsets[0], ends, ends[-1] + p["tail_us"]]
    seg_rate = np.r_[p["baseline_hz"], rate_hz, p["baseline_hz"]]
    seg_counts = rng.poisson(seg_rate * (seg_end - seg_start) * 1e-6)
    starts = np.repeat(seg_start, seg_counts)
    lengths = np.repeat(seg_end - seg_start, seg_counts)
    spikes_us = np.sort(starts + rng.integers(0, lengths))
    return stimulus, onsets / 1e6, spikes_us / 1e6


def write_recorded_neuron(directory, seed: int = RECORDED_SEED) -> list[Path]:
    """Write the simulated recording in the lab's layout (what ``make_data.py`` runs).

    Files: ``stimulus.npy`` (uint8, (1500, 300)), ``trigger_times.txt`` and
    ``spike_times.txt`` (seconds, one per line, 6 decimals = whole microseconds).

    Parameters
    ----------
    directory : str or Path
        Where to write (created if missing).
    seed : int
        Simulation seed.

    Returns
    -------
    paths : list of Path
        The files written.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    stimulus, triggers, spikes = simulate_recording(seed)
    paths = [directory / "stimulus.npy", directory / "trigger_times.txt",
             directory / "spike_times.txt"]
    np.save(paths[0], stimulus, allow_pickle=False)
    np.savetxt(paths[1], triggers, fmt="%.6f",
               header=f"frame onset times in seconds, one per frame (simulated, seed {seed})")
    np.savetxt(paths[2], spikes, fmt="%.6f",
               header=f"spike times in seconds (simulated, seed {seed})")
    return paths


@dataclass(frozen=True)
class RecordedNeuron:
    """A neuron in the lab's file layout, with its (simulated) ground truth.

    Attributes
    ----------
    stimulus : ndarray of uint8, shape (n_frames, 300)
        Binary movie (0 dark, 1 bright), one flattened 20 × 15 frame (C order) per row.
    trigger_times : ndarray, shape (n_frames,)
        Frame onsets, seconds.
    spike_times : ndarray, shape (n_spikes,)
        Spike times, seconds.
    frame_shape : tuple of int
        ``(rows, columns)`` = (20, 15).
    frame_interval : float
        Nominal frame duration, seconds (0.05).
    true_spatial_rf : ndarray, shape (300,)
        The simulated spatial receptive field (unit norm, largest entry positive).
    true_temporal_kernel : ndarray, shape (5,)
        The simulated time course over lags 0–4 frames (unit norm).
    true_gain : float
        ``W_true = true_gain * outer(true_spatial_rf, true_temporal_kernel)``, per unit
        contrast (``2 * stimulus - 1``).
    true_baseline_hz : float
        Rate at a grey screen, spikes/s.
    seed : int
        The simulation seed.
    """

    stimulus: np.ndarray
    trigger_times: np.ndarray
    spike_times: np.ndarray
    frame_shape: tuple
    frame_interval: float
    true_spatial_rf: np.ndarray
    true_temporal_kernel: np.ndarray
    true_gain: float
    true_baseline_hz: float
    seed: int
    lags: tuple = field(default=(0, 1, 2, 3, 4))

    @property
    def contrast(self) -> np.ndarray:
        """The movie as contrast, ``2 * stimulus - 1`` (-1 dark, +1 bright), float."""
        return 2.0 * self.stimulus - 1.0


def load_recorded_neuron(directory=None) -> RecordedNeuron:
    """Load the recorded-format neuron shipped in ``course_lib/data/recorded_neuron/``.

    The data are SIMULATED by :func:`simulate_recording` (seed 2024); see the README there.

    Parameters
    ----------
    directory : str or Path, optional
        Folder holding ``stimulus.npy``, ``trigger_times.txt`` and ``spike_times.txt``;
        default the shipped copy.

    Returns
    -------
    RecordedNeuron
    """
    d = Path(directory) if directory is not None else Path(
        str(files("course_lib") / "data" / _RECORDED_DIR))
    for name in ("stimulus.npy", "trigger_times.txt", "spike_times.txt"):
        if not (d / name).is_file():
            raise ValueError(f"{name} not found in {d}; run make_data.py there to regenerate it")
    stimulus = np.load(d / "stimulus.npy", allow_pickle=False)
    triggers = np.loadtxt(d / "trigger_times.txt", ndmin=1)
    spikes = np.loadtxt(d / "spike_times.txt", ndmin=1)
    spatial, temporal = _recorded_truth()
    return RecordedNeuron(
        stimulus=stimulus, trigger_times=triggers, spike_times=spikes,
        frame_shape=tuple(_REC["frame_shape"]), frame_interval=_REC["frame_interval_us"] / 1e6,
        true_spatial_rf=spatial, true_temporal_kernel=temporal, true_gain=float(_REC["gain"]),
        true_baseline_hz=float(_REC["baseline_hz"]), seed=RECORDED_SEED,
    )


# ---------------------------------------------------------------------------------------
# The grasshopper auditory receptor (real data shipped with nitime, BSD-3)
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class GrasshopperRecording:
    """An auditory receptor of *Locusta migratoria* (Rokem et al. 2006), from ``nitime``.

    Attributes
    ----------
    stimulus : ndarray, shape (200000,)
        Amplitude envelope of the sound (a 2.5 kHz tone amplitude-modulated by low-pass
        Gaussian noise), as stored in the file: relative amplitude, maximum 1.
    stimulus_db : ndarray, shape (200000,)
        The envelope in dB SPL, ``intensity_db + 20 log10(stimulus / max(stimulus))``: the
        file header's intensity assigned to the maximum, as nitime's own example does.
    sampling_interval : float
        Time between stimulus samples, seconds (50 µs, i.e. 20 kHz).
    spike_times : ndarray, shape (n_spikes,)
        Spike times, seconds from the start of the stimulus (stored in µs).
    header : dict
        The spike file's header (cut-off frequency, intensity, ...), as strings.
    recording : int
        1 (noise cut-off 200 Hz) or 2 (800 Hz).
    """

    stimulus: np.ndarray
    stimulus_db: np.ndarray
    sampling_interval: float
    spike_times: np.ndarray
    header: dict
    recording: int

    @property
    def duration(self) -> float:
        """Length of the stimulus, seconds."""
        return self.stimulus.size * self.sampling_interval


@lru_cache(maxsize=2)
def _read_grasshopper(recording: int):
    try:
        data = files("nitime") / "data"
    except ModuleNotFoundError:
        raise ValueError(
            "load_grasshopper needs the nitime package (BSD-3), which ships the recordings; "
            "pip install nitime"
        ) from None
    stim = np.loadtxt(data / f"grasshopper_stimulus{recording}.txt")
    spike_path = data / f"grasshopper_spike_times{recording}.txt"
    header = {}
    for line in spike_path.read_text().splitlines():
        if line.startswith("#") and ":" in line:
            key, val = line[1:].split(":", 1)
            header[key.strip()] = val.strip()
    spikes_us = np.loadtxt(spike_path, comments="#", ndmin=1)
    return stim, spikes_us, header


def load_grasshopper(recording: int = 1) -> GrasshopperRecording:
    """Load a real grasshopper auditory-receptor recording shipped with ``nitime``.

    Source: the ``nitime`` package (BSD-3-Clause, © NIPY Developers), files
    ``nitime/data/grasshopper_stimulus{1,2}.txt`` and ``grasshopper_spike_times{1,2}.txt``;
    originally Rokem et al. (2006), J Neurophysiol 95:2541–52, via CRCNS. Stimulus column
    0 is time in µs (every 50 µs), column 1 the envelope; spike times are in µs.

    Parameters
    ----------
    recording : {1, 2}
        1: noise cut-off 200 Hz; 2: the same cell with an 800 Hz cut-off.

    Returns
    -------
    GrasshopperRecording
    """
    if recording not in (1, 2):
        raise ValueError(f"recording must be 1 or 2, got {recording!r}")
    stim, spikes_us, header = _read_grasshopper(recording)
    step = np.diff(stim[:, 0])
    if not np.all(step == step[0]):
        raise ValueError("grasshopper stimulus is not evenly sampled; the file has changed")
    envelope = stim[:, 1].copy()
    intensity = float(header["intensity (dB)"])
    db = intensity + 20 * np.log10(envelope / envelope.max())
    return GrasshopperRecording(
        stimulus=envelope, stimulus_db=db, sampling_interval=float(step[0]) * 1e-6,
        spike_times=spikes_us * 1e-6, header=dict(header), recording=recording,
    )


def temporal_design(stimulus, sampling_interval: float, spike_times, bin_width: float,
                    lags, standardize: bool = False):
    """Counts and a lagged stimulus design for a temporal receptive field.

    The stimulus is averaged in consecutive bins of ``bin_width`` (a whole number of
    samples; a trailing partial bin is dropped) and its mean is subtracted; spikes are
    counted in the same bins with :func:`bin_spikes`. Row ``i`` of ``X`` then holds the
    binned stimulus at bins ``i + m - lags`` for the count in bin ``i + m``
    (``m = max(lags)``): the stimulus *before* the spikes.

    Parameters
    ----------
    stimulus : array_like, shape (n_samples,)
        Stimulus samples (e.g. ``GrasshopperRecording.stimulus_db``, dB).
    sampling_interval : float
        Time between samples, seconds.
    spike_times : array_like, shape (n_spikes,)
        Spike times, seconds, on the stimulus clock (sample 0 at time 0).
    bin_width : float
        Bin width, seconds; a whole multiple of ``sampling_interval``.
    lags : sequence of int, shape (n_lags,)
        Lags in bins, each >= 0.
    standardize : bool
        Also divide the binned stimulus by its standard deviation (``X`` in SD units).
        Filters are then comparable across stimuli, and the optimiser converges faster.

    Returns
    -------
    counts : ndarray of int, shape (n_bins - max(lags),)
        Spikes per bin, for bins ``max(lags)`` onwards.
    X : ndarray, shape (n_bins - max(lags), n_lags)
        Mean-subtracted binned stimulus at each lag (stimulus units, or SD units when
        ``standardize``).
    lag_times : ndarray, shape (n_lags,)
        The lags in seconds.
    """
    x = as_float_array(stimulus, "stimulus", ndim=1)
    dt_s = _positive_scalar(sampling_interval, "sampling_interval")
    bw = _positive_scalar(bin_width, "bin_width")
    per_bin = bw / dt_s
    if abs(per_bin - round(per_bin)) > 1e-9 * per_bin or round(per_bin) < 1:
        raise ValueError(
            f"bin_width ({bw} s) must be a whole multiple of sampling_interval ({dt_s} s)"
        )
    per_bin = int(round(per_bin))
    n_bins = x.size // per_bin
    xb = x[: n_bins * per_bin].reshape(n_bins, per_bin).mean(axis=1)
    xb = xb - xb.mean()
    if standardize:
        xb = xb / xb.std()
    # Edges and spikes are rounded to 1 ps, so that a spike exactly on a bin edge (the
    # grasshopper's are whole multiples of 100 us) is not moved by floating-point error.
    spikes = np.round(_times(spike_times, "spike_times", strictly_increasing=False), 12)
    edges = np.round(np.arange(n_bins) * per_bin * dt_s, 12)
    counts = bin_spikes(spikes, edges, last_frame_duration=per_bin * dt_s)
    lags = _lags(lags, n_bins)
    X = lagged_design(xb, lags)
    return counts[int(lags.max()):], X, lags * bw
