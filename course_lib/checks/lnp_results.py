"""Reading and comparing exercise 5's LNP results (sampler, likelihood, fits); shipped, so no reference.
``output`` functions record an answer's result as plain data (a fit also each ``scipy.optimize.minimize``
call's ``x0`` and ``jac``); ``compare`` functions test properties or compare with the expected data."""

import copy
import inspect
import math
import sys

import numpy as np
from scipy import stats
from threadpoolctl import threadpool_limits

from course_lib.checks.core import CheckFailure, Returned, compare_arrays, compare_data, first_failure, fmt, to_data

HINT_DOT = ("the drive of frame t is the dot product wᵀs_t = s @ w (a sum over pixels); you multiplied w and s "
            "element-wise and averaged.")
_ENSEMBLE = ("every pixel of every frame must be an independent draw from N(0, v), for example rng.normal(0, "
             "np.sqrt(v), size=(n_t, P)); your frames change their scale from frame to frame (a random factor?).")
_PER_BIN = "r_t is the expected count per bin: exp(wᵀs_t)·dt·R."
#: Relative distance ‖a − b‖ / ‖b‖ within which a fitted w is the expected one (an honest fit: < 1e-3).
FIT_TOL = 3e-3
#: Nats of −log L within which a w is the maximum-likelihood one: a likelihood-ratio statistic of 0.02, far below
#: sampling noise (an honest float64 fit: < 1e-4; one on a float32 objective, which L-BFGS-B stops early: < 5e-3).
ML_GAP = 0.01
_ANY = (0.0, 1e300)  # tolerances at which core's comparisons check only type, shape and NaN


def _arrays(got, expected, what: str) -> list[np.ndarray]:
    """A returned tuple's arrays, after compare_data's type, shape and NaN checks."""
    compare_data(got, expected, what, *_ANY)
    return [Returned.from_data(item).array for item in got["items"]]


def sampled(fn, args) -> dict:
    """``fn(*args)`` as plain data; whether a call with the same seed repeats it, and one with another seed does not."""
    out, other = to_data(fn(*args)), to_data(fn(*copy.deepcopy(args[:-1]), args[-1] + 1))
    return {"out": out, "repeatable": out == to_data(fn(*copy.deepcopy(args))), "seeded": out != other}


def sampler(got, expected, what, args) -> None:
    """sample_lnp by its properties: N(0, v) pixels, independent, of one scale in every frame (the fourth
    moment and a Kolmogorov–Smirnov test tell uniform or ±√v pixels), ``r = exp(s @ w)·dt·R`` on the answer's
    ``s``, Poisson counts, the same draw for the same seed; each threshold ≥ 4.4 SE from N(0, v)'s value."""
    w, n_t, dt, R, v, _ = args
    c, r, s = _arrays(got["out"], expected["out"], what)
    var, mean, bad, busy = s.var(), s.mean(), f"values: the stimulus of {what} should be", r > 1
    with np.errstate(all="ignore"):
        mixing = ((s**2).mean(axis=1)).var() / (2 * var**2 / w.size)  # 1 for N(0, v) pixels
        kurt, want = float((s**4).mean() / var**2), np.exp(s @ w) * dt * R  # the model, on the answer's s
        pixels = np.abs(np.corrcoef(s.T)[~np.eye(w.size, dtype=bool)]).max()
        frames = abs(np.corrcoef(s[1:].ravel(), s[:-1].ravel())[0, 1])
        z, dispersion = (c - r).sum() / np.sqrt(r.sum()), np.mean((c[busy] - r[busy]) ** 2 / r[busy])
        rates = ((np.exp((s * w).mean(axis=1)) * dt * R, HINT_DOT), (want / dt, _PER_BIN), (want / dt / R, _PER_BIN),
                 (np.exp(s @ w / np.linalg.norm(w)) * dt * R, "use w as it is given, r_t = exp(wᵀs_t)·dt·R: don't "
                                                              "normalise it."))
    sd = min(abs(var / v**2 - 1), abs(var / math.sqrt(v) - 1)) < 0.05
    first_failure([
        (not mixing <= 1.5, f"{bad} white noise of variance v = {v:g} in every frame; the spread of the frames' "
                            f"mean squares is {mixing:.1f} times that of N(0, v) pixels", _ENSEMBLE),
        (abs(mean) > 5 * math.sqrt(v / s.size) or abs(var / v - 1) > 0.05, f"{bad} of mean 0 and variance v = {v:g}, "
         f"got {mean:.3g} and {var:.4g}", "numpy's scale argument is the standard deviation: rng.normal(0, "
                                          "np.sqrt(v), ...) has variance v." if sd else ""),
        (abs(kurt - 3) > 0.3 or stats.kstest(s.ravel() / math.sqrt(v), "norm").pvalue < 1e-6, f"{bad} Gaussian, "
         f"N(0, v = {v:g}); its fourth moment is {kurt:.2f} v² (3 v² for a normal)", "draw the pixels from a normal "
         "distribution, rng.normal(0, np.sqrt(v), size=(n_t, P)); uniform or ±√v values have the right mean and "
         "variance but are not N(0, v)."),
        (pixels > 6 / math.sqrt(n_t) or frames > 6 / math.sqrt(s.size), f"{bad} independent across pixels and frames;"
         f" the largest correlation of two pixels is {pixels:.3f}, of consecutive frames {frames:.3f}", _ENSEMBLE),
        (not np.allclose(r, want, rtol=1e-6, atol=0), f"values: r from {what} should be exp(s @ w) * dt * R = "
         f"{fmt(want)}, got {fmt(r)}", next((h for alt, h in rates if np.allclose(r, alt, rtol=1e-6, atol=0)), "")),
        (np.any(c < 0) or np.any(c != np.round(c)) or abs(z) > 5 or not 0.8 < dispersion < 1.25, f"values: c from "
         f"{what} should be whole counts drawn from Poisson(r), c − r of mean 0 and variance r; got {fmt(c)}, a "
         f"standardised mean of {z:.2f} and a variance/mean of {dispersion:.2f}", "draw them with rng.poisson(r)."),
        (got["repeatable"] is not True, f"values: {what} should give the same draw for the same seed", "make one "
         "generator from the seed, np.random.default_rng(seed), and draw everything from it."),
        (got["seeded"] is not True, f"values: {what} should give another draw for another seed", "make the generator "
         "from the seed argument, np.random.default_rng(seed): a fixed seed gives every call the same draw.")])


def at_two_points(fn, args) -> dict:
    """negloglik's ``fn(*args)``, and ``fn`` at another ``w`` on the same data (an f that ignores w repeats)."""
    w, *data = args
    return {"at w": to_data(fn(*args)), "moved": to_data(fn(np.asarray(w) * 0.5 + 0.01, *copy.deepcopy(data)))}


def negloglik(got, expected, what, args) -> None:
    """f (2e-5 relative) and grad (1e-4, and 1e-5 of its largest entry): float32's precision; an f
    that does not change with w gets its hint."""
    (f, g), (f2, _) = (_arrays(got[k], expected[k], what) for k in ("at w", "moved"))
    want_f, want_g = (Returned.from_data(item).array for item in expected["at w"]["items"])
    first_failure([
        (f == f2, f"values: f from {what} should change with w, got {float(f):.8g} at two w", "negloglik ignores its "
         "argument w and uses a global variable (the true w?): compute everything from the arguments."),
        (abs(f - want_f) > 2e-5 * max(abs(want_f), 1.0), f"values: f from {what} should be {float(want_f):.8g}, got "
                                                         f"{float(f):.8g}", ""),
        (not np.allclose(g, want_g, rtol=1e-4, atol=1e-5 * np.abs(want_g).max()), f"values: grad from {what} should "
         f"be {fmt(want_g)}, got {fmt(g)}", "")])


def fitted(fn, args) -> dict:
    """fit_rf(c, s, dt, R) = ``fn(*args[:4])`` (``args[4]`` is the true w) as :func:`single_threaded`, and the
    ``[x0, jac]`` of its last 20 ``scipy.optimize.minimize`` calls, however it was imported."""
    from scipy.optimize import minimize

    code, calls, previous = inspect.unwrap(minimize).__code__, [], sys.getprofile()  # (a decorated minimize too)

    def watch(frame, event, result):  # this thread's calls: x0 as minimize is called, jac as it returns
        if frame.f_code is code and event == "call":
            calls.append([np.ravel(np.asarray(frame.f_locals["x0"], dtype=float)).tolist(), []])
        elif frame.f_code is code and event == "return" and result is not None:
            calls[-1][1] = np.ravel(np.asarray(result.get("jac", np.nan), dtype=float)).tolist()

    sys.setprofile(watch)
    try:
        out = single_threaded(fn, args[:4])
    finally:
        sys.setprofile(previous)
    return out | {"calls": calls[-20:]}


def single_threaded(fn, args) -> dict:
    """``fn(*args)``, a fit, as plain data, with BLAS on one thread, as for every fit here: idle OpenBLAS
    threads otherwise slow a small fit tenfold on 2 busy cores."""
    with threadpool_limits(1, user_api="blas"):
        return {"w": to_data(fn(*args))}


def _rel(a, b) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def _w(got, expected, what: str) -> tuple[np.ndarray, np.ndarray]:
    """A fit's w and the expected one, after compare_data's type, shape and NaN checks."""
    want, w = Returned.from_data(expected["w"]).array, Returned.from_data(got["w"])
    compare_arrays(w, want, what, *_ANY)
    return w.array, want


def fit(got, expected, what, args) -> None:
    """The expected w within :data:`FIT_TOL` (relative)."""
    w, want = _w(got, expected, what)
    if _rel(w, want) >= FIT_TOL:
        raise CheckFailure(f"values: {what} should be {fmt(want)} (within {FIT_TOL:g} relative), got {fmt(w)}")


def ml_fit(got, expected, what, args) -> None:
    """fit_rf's w, judged by its likelihood: −log L (float64, scipy's Poisson log pmf) within :data:`ML_GAP` of the
    expected w's; hints for an ``x0`` at the true w (``args[4]``), the optimiser's jac, a normalised, flipped or
    shrunk estimate, or one still at x0."""
    (w, want), (c, s, dt, R), calls = _w(got, expected, what), args[:4], got.get("calls", [])
    x0s = [np.asarray(x0, dtype=float) for x0, _ in calls]
    with np.errstate(all="ignore"):
        gap = float(np.subtract(*(-stats.poisson.logpmf(c, np.exp(s @ v) * dt * R).sum() for v in (w, want))))
        hints = [
            (any(np.array_equal(w, jac) for _, jac in calls), "you returned the optimiser's jac, the gradient "
             "at the optimum (close to 0); the estimate is res.x."),
            (abs(want.sum()) > 1e-12 and _rel(w, want / want.sum()) < 1e-2, "you normalised the estimate by its sum; "
             "the maximum-likelihood estimate has its own scale and sign, so give res.x as it is."),
            (_rel(w, -want) < 1e-2, "your estimate has the wrong sign: minimise −log L, don't maximise it."),
            (w @ w < want @ want and np.corrcoef(w, want)[0, 1] > 0.9, "your estimate is shrunk towards zero: a "
             "penalised (ridge) fit, or an optimiser stopped early (a low maxiter, a loose tolerance); maximum "
             "likelihood minimises −log L alone."),
            (any(x0.shape == w.shape and np.allclose(w, x0) for x0 in x0s), "the optimiser did not move from x0: "
             "check that your objective changes with w and returns (f, grad) when you pass jac=True.")]
        first_failure([
            (any(x0.shape == w.shape and np.std(x0) > 0 and np.corrcoef(x0, args[4])[0, 1] > 0.999 for x0 in x0s),
             f"start: {what} should start the optimiser without knowing the true receptive field; your x0 is it (up "
             "to scale)", "your optimiser starts at the true receptive field, which real data never give you: start "
             "from zeros, np.zeros(P); use the arguments."),
            (not gap <= ML_GAP, f"values: {what} should be {fmt(want)}, whose −log L is the least, got {fmt(w)}, "
                                f"{gap:.3g} above it (within {ML_GAP:g} passes)", next((h for hit, h in hints if hit), ""))])
