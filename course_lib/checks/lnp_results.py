"""Reading and comparing exercise 5's LNP results (sampler, likelihood, fits) for its checks.

Shipped in the student tree, so it holds no reference: ``output`` functions run an answer on
a case and record plain data (for a fit, also every ``scipy.optimize.minimize`` call's ``x0``
and ``jac``, or the answer on the neighbouring problems where a known mistake lands);
``compare`` functions test properties (the sampler's N(0, v) pixels and Poisson counts) or
compare with the stored expected data at a fit's tolerance, and name the mistake.
"""

from __future__ import annotations

import copy
import math
import threading

import numpy as np
from scipy import stats
from threadpoolctl import threadpool_limits

from course_lib.checks.core import CheckFailure, Returned, fmt, to_data

HINT_DOT = ("the drive of frame t is the dot product wᵀs_t = s @ w (a sum over pixels); you multiplied w and s "
            "element-wise and averaged.")
HINT_FACTORIAL = ("log(factorial(c)) overflows for counts above 170; log c_t! does not depend on w, so leave it "
                  "out (scipy.special.gammaln(c + 1) if you ever need it).")
_ENSEMBLE = ("every pixel of every frame must be an independent draw from N(0, v), for example rng.normal(0, "
             "np.sqrt(v), size=(n_t, P)); your frames change their scale from frame to frame (a random factor?).")
_PER_BIN = "r_t is the expected count per bin: exp(wᵀs_t)·dt·R."
#: Relative distance ‖a − b‖ / ‖b‖ within which a fitted w is the expected one (an honest fit: < 1e-3).
FIT_TOL = 3e-3
_NEIGHBOURS = {  # where a fit lands when it makes a mistake: the hint
    "reversed": "your lags go the wrong way: lag L pairs counts[t] with frames[t - L], the frame shown L steps "
                "*before*; use counts[m:] with frames[m - L : n - L], m = max(lags).",
    "none": "this is the unpenalised fit: add alpha * (w @ w) to −log L and 2 * alpha * w to its gradient.",
    "half": "the penalty is α‖w‖² = alpha * (w @ w); its gradient is 2 * alpha * w (you used half of it).",
    "double": "the penalty is α‖w‖² and its gradient 2 * alpha * w: yours is twice too strong.",
}


def _first_failure(steps) -> None:
    """Raise the first of ``(failed, message, hint)`` that failed."""
    for failed, message, hint in steps:
        if failed:
            raise CheckFailure(message, hint)


def _arrays(data, what: str, finite: bool = True, **shapes) -> list[np.ndarray]:
    """The arrays of a returned tuple, named and shaped as ``shapes`` says (type, shape, NaN)."""
    items = data.get("items") if isinstance(data, dict) and data.get("kind") == "tuple" else None
    if not isinstance(items, list) or len(items) != len(shapes):
        raise CheckFailure(f"type: {what} should return a tuple ({', '.join(shapes)}), "
                           f"got {Returned.from_data(data).described()}")
    out = [Returned.from_data(item) for item in items]
    for (name, shape), got in zip(shapes.items(), out):
        came = got.described() if got.kind == "other" else got.array.shape
        if came != shape:
            raise CheckFailure(f"shape: {name} from {what} should be an array of shape {shape}, got "
                               f"{came if got.kind == 'other' else f'shape {came}'}")
        if finite and not np.all(np.isfinite(got.array)):
            raise CheckFailure(f"values: {name} from {what} is not finite")
    return [got.array for got in out]


def sampled(fn, args) -> dict:
    """``fn(*args)`` as plain data, and whether a second call with the same seed repeats it."""
    out, again = fn(*args), fn(*copy.deepcopy(args))
    try:
        same = all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(out, again, strict=True))
    except Exception:  # not a sequence, or of another length
        same = False
    return {"out": to_data(out), "repeatable": bool(same)}


def sampler(got, expected, what, args) -> None:
    """sample_lnp by its properties (no reference: the draw is the answer's): N(0, v) pixels,
    independent and of one scale in every frame (uniform or ±√v pixels have mean 0 and variance
    v too: their fourth moment, 1.8 v² or v² against 3 v², and a Kolmogorov–Smirnov test tell),
    ``r = exp(s @ w)·dt·R`` on the answer's own ``s``, Poisson counts, and the same draw for the
    same seed. Each threshold is ≥ 4.4 standard errors away from what N(0, v) gives."""
    w, n_t, dt, R, v, _ = args
    c, r, s = _arrays(got["out"], what, c=(n_t,), r=(n_t,), s=(n_t, w.size))
    var, mean, bad, busy = s.var(), s.mean(), f"values: the stimulus of {what} should be", r > 1
    with np.errstate(all="ignore"):
        mixing = ((s**2).mean(axis=1)).var() / (2 * var**2 / w.size)  # 1 for N(0, v) pixels
        kurt, want = float((s**4).mean() / var**2), np.exp(s @ w) * dt * R  # the model, on the answer's s
        pixels = np.abs(np.corrcoef(s.T)[~np.eye(w.size, dtype=bool)]).max()
        frames = abs(np.corrcoef(s[1:].ravel(), s[:-1].ravel())[0, 1])
        z, dispersion = (c - r).sum() / np.sqrt(r.sum()), np.mean((c[busy] - r[busy]) ** 2 / r[busy])
    sd = min(abs(var / v**2 - 1), abs(var / math.sqrt(v) - 1)) < 0.05
    _first_failure([
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
         f"{fmt(want)}, got {fmt(r)}", next((h for alt, h in ((np.exp((s * w).mean(axis=1)) * dt * R, HINT_DOT),
                                                                (want / dt, _PER_BIN), (want / dt / R, _PER_BIN))
                                              if np.allclose(r, alt, rtol=1e-6, atol=0)), "")),
        (np.any(c < 0) or np.any(c != np.round(c)) or abs(z) > 5 or not 0.8 < dispersion < 1.25, f"values: c from "
         f"{what} should be whole counts drawn from Poisson(r), c − r of mean 0 and variance r; got {fmt(c)}, a "
         f"standardised mean of {z:.2f} and a variance/mean of {dispersion:.2f}", "draw them with rng.poisson(r)."),
        (got["repeatable"] is not True, f"values: {what} should give the same draw for the same seed", "make one "
         "generator from the seed, np.random.default_rng(seed), and draw everything from it."),
    ])


def at_two_points(fn, args) -> dict:
    """negloglik's ``fn(*args)``, and ``fn`` at another ``w`` on the same data (an f that ignores w repeats)."""
    w, *data = args
    return {"at w": to_data(fn(*args)), "moved": to_data(fn(np.asarray(w) * 0.5 + 0.01, *copy.deepcopy(data)))}


def negloglik(got, expected, what, args) -> None:
    """f and grad to float32's precision (f within 2e-5 relative, grad 1e-4 and 1e-5 of its
    largest entry); an ``f`` that is not finite or does not change with ``w`` gets its hint."""
    shapes = {"f": (), "grad": (args[0].size,)}
    (f, g), (f2, _) = (_arrays(got[k], what, finite=False, **shapes) for k in ("at w", "moved"))
    want_f, want_g = _arrays(expected["at w"], what, **shapes)
    _first_failure([
        (not np.isfinite(f), f"values: f from {what} should be {float(want_f):.8g}, got {f}", HINT_FACTORIAL),
        (f == f2, f"values: f from {what} should change with w, got {float(f):.8g} at two w", "negloglik returns the "
         "same value for different w: it ignores its argument w and uses a global variable (the true w?). Compute "
         "everything from the arguments."),
        (abs(f - want_f) > 2e-5 * max(abs(want_f), 1.0), f"values: f from {what} should be {float(want_f):.8g}, got "
                                                         f"{float(f):.8g}", ""),
        (not np.allclose(g, want_g, rtol=1e-4, atol=1e-5 * np.abs(want_g).max()), f"values: grad from {what} should "
         f"be {fmt(want_g)}, got {fmt(g)}", "")])


_SPYING = threading.Lock()  # scipy.optimize.minimize is patched for one fit at a time


def fitted(fn, args) -> dict:
    """fit_rf(c, s, dt, R) = ``fn(*args[:4])`` (``args[4]``, the true w, stays with the check)
    with ``scipy.optimize.minimize`` watched, also under a name the answer imported it by: the
    estimate, and the ``x0`` and ``jac`` of each call (the last 20). BLAS on one thread, as for
    every fit here: scipy's idle OpenBLAS threads otherwise slow a small fit tenfold on 2 busy cores."""
    import scipy.optimize as opt

    original, calls = opt.minimize, []

    def spy(fun, x0, *rest, **kwargs):
        res = original(fun, x0, *rest, **kwargs)
        calls.append({"x0": np.ravel(np.asarray(x0, dtype=float)).tolist(),
                      "jac": np.ravel(np.asarray(res.get("jac", np.nan), dtype=float)).tolist()})
        return res

    names = getattr(fn, "__globals__", {})
    rebound = [name for name, val in list(names.items()) if val is original]
    with _SPYING, threadpool_limits(1, user_api="blas"):
        opt.minimize = spy
        names.update(dict.fromkeys(rebound, spy))
        try:
            w = fn(*args[:4])
        finally:
            opt.minimize = original
            names.update(dict.fromkeys(rebound, original))
    return {"w": to_data(w), "calls": calls[-20:]}


def ridge_path(fn, args) -> dict:
    """fit_ridge at the case's alpha ("w"), and at no, half and twice that penalty."""
    *data, alpha = args
    with threadpool_limits(1, user_api="blas"):
        return {key: to_data(fn(*copy.deepcopy(data), a)) for key, a in
                (("w", alpha), ("none", 0.0), ("half", alpha / 2), ("double", 2 * alpha))}


def lags_both_ways(fn, args) -> dict:
    """fit_lags on the recording ("w") and reversed in time, where lags the wrong way (counts[t]
    with frames[t + L]) land."""
    counts, frames, lags, dt = copy.deepcopy(args)
    with threadpool_limits(1, user_api="blas"):
        return {"w": to_data(fn(*args)), "reversed": to_data(fn(counts[::-1].copy(), frames[::-1].copy(), lags, dt))}


def _rel(a, b) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def fit(got, expected, what, args) -> None:
    """The expected w within :data:`FIT_TOL`; a result at a neighbouring problem
    (:data:`_NEIGHBOURS`) gets its hint, and for fit_rf an ``x0`` at the true w, the
    optimiser's jac, a normalised, flipped or shrunk estimate, or one still at x0 theirs."""
    want, w = Returned.from_data(expected["w"]).array, Returned.from_data(got["w"])
    calls = got.get("calls", [])
    x0s = [np.asarray(call["x0"], dtype=float) for call in calls]
    _first_failure([
        (w.kind == "other" or w.array.shape != want.shape, f"shape: {what} should be an array of shape {want.shape}, "
         f"got {w.described() if w.kind == 'other' else f'shape {w.array.shape}'}", "stack the filters as columns: "
         "np.column_stack." if w.kind != "other" and w.array.shape == want.shape[::-1] else ""),
        (any(x0.shape == args[4].shape and np.std(x0) > 0 and np.corrcoef(x0, args[4])[0, 1] > 0.999 for x0 in x0s),
         f"start: {what} should start the optimiser without knowing the true receptive field; your x0 is it (up to "
         "scale)", "your optimiser starts at the "
         "true receptive field, which real data never give you: start from zeros, np.zeros(P); use the arguments.")])
    w = w.array
    if np.all(np.isfinite(w)) and _rel(w, want) < FIT_TOL:
        return
    norm, total = np.linalg.norm(w) / np.linalg.norm(want), want.sum()
    with np.errstate(all="ignore"):
        hints = [(k in expected and _rel(w, Returned.from_data(expected[k]).array) < FIT_TOL, h)
                 for k, h in _NEIGHBOURS.items()] + ([] if "calls" not in got else [
            (any(np.array_equal(w, call["jac"]) for call in calls), "you returned the optimiser's jac, the gradient "
             "at the optimum (close to 0); the estimate is res.x."),
            (abs(total) > 1e-12 and _rel(w, want / total) < 1e-2, "you normalised the estimate by its sum; the "
             "maximum-likelihood estimate has its own scale and sign, so give res.x as it is."),
            (_rel(w, -want) < 1e-2, "your estimate has the wrong sign: minimise −log L, don't maximise it."),
            (norm < 1 and np.corrcoef(w, want)[0, 1] > 0.9, "your estimate is shrunk towards zero: a penalised "
             "(ridge) fit, or an optimiser stopped early; the maximum-likelihood estimate minimises −log L alone."),
            (any(x0.shape == w.shape and np.allclose(w, x0) for x0 in x0s), "the optimiser did not move from x0: "
             "check that your objective changes with w and returns (f, grad) when you pass jac=True.")])
    _first_failure([(True, f"values: {what} should be {fmt(want)} (within {FIT_TOL:g} relative), got {fmt(w)}",
                     next((h for hit, h in hints if hit), ""))])
