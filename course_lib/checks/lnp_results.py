"""Reading and comparing exercise 5's LNP results (sampler, likelihood, fits) for its checks.

Shipped in the student tree, so it holds no reference: ``output`` functions run an answer
on one case and record plain data (for a fit, also the ``x0`` and ``jac`` of every
``scipy.optimize.minimize`` call, or the answer on the neighbouring problems where a
known mistake lands); ``compare`` functions test properties (the sampler's N(0, v) pixels
and Poisson counts) or compare with the stored expected data at a fit's tolerance.
"""

from __future__ import annotations

import copy
import math
import threading

import numpy as np
from scipy import stats

from course_lib.checks.core import CheckFailure, Returned, fmt, to_data

HINT_DOT = ("the drive of frame t is the dot product wᵀs_t = s @ w (a sum over pixels); "
            "you multiplied w and s element-wise and averaged.")
HINT_ENSEMBLE = ("every pixel of every frame must be an independent draw from N(0, v), for example "
                 "rng.normal(0, np.sqrt(v), size=(n_t, P)); your frames change their scale from frame "
                 "to frame (a random factor per frame?).")
HINT_FACTORIAL = ("log(factorial(c)) overflows for counts above 170; log c_t! does not depend on w, "
                  "so leave it out (scipy.special.gammaln(c + 1) if you ever need it).")
#: Relative distance (‖a − b‖ / ‖b‖) within which a fitted w counts as the expected one.
FIT_TOL = 3e-3
_FIT_HINTS = {  # where the answer lands when it makes the mistake: the hint
    "reversed": "your lags go the wrong way: lag L pairs counts[t] with frames[t - L], the frame shown "
                "L steps *before*; use counts[m:] with frames[m - L : n - L], m = max(lags).",
    "none": "this is the unpenalised fit: add alpha * (w @ w) to −log L and 2 * alpha * w to its gradient.",
    "half": "the penalty is α‖w‖² = alpha * (w @ w); its gradient is 2 * alpha * w (you used half of it).",
    "double": "the penalty is α‖w‖² and its gradient 2 * alpha * w: yours is twice too strong.",
}


def _arrays(data, what: str, finite: bool = True, **shapes) -> list[np.ndarray]:
    """The arrays of a returned tuple, named and shaped as ``shapes`` says (type, shape, NaN)."""
    items = data.get("items") if isinstance(data, dict) and data.get("kind") == "tuple" else None
    if not isinstance(items, list) or len(items) != len(shapes):
        raise CheckFailure(f"type: {what} should return a tuple ({', '.join(shapes)}), "
                           f"got {Returned.from_data(data).described()}")
    out = []
    for (name, shape), item in zip(shapes.items(), items):
        got = Returned.from_data(item)
        if got.kind == "other" or got.array.shape != shape:
            came = got.described() if got.kind == "other" else f"shape {got.array.shape}"
            raise CheckFailure(f"shape: {name} from {what} should be an array of shape {shape}, got {came}")
        if finite and not np.all(np.isfinite(got.array)):
            raise CheckFailure(f"values: {name} from {what} contains NaN or infinite values")
        out.append(got.array)
    return out


# ---------------------------------------------------------------------------------------
# ex5-sampler: sample_lnp(w, n_t, dt, R, v, seed) -> (c, r, s), judged by its properties


def sampled(fn, args) -> dict:
    """``fn(*args)`` as plain data, and whether a second call with the same seed repeats it."""
    out, again = fn(*args), fn(*copy.deepcopy(args))
    try:
        same = all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(out, again, strict=True))
    except Exception:  # not a sequence, or of another length
        same = False
    return {"out": to_data(out), "repeatable": bool(same)}


def sampler(got, expected, what, args) -> None:
    """White N(0, v) pixels (mean, variance, fourth moment, Kolmogorov–Smirnov, no correlation
    or frame-to-frame change of scale), ``r = exp(s @ w)·dt·R`` from the answer's own ``s``,
    Poisson counts, and the same draw for the same seed. Thresholds are ≥ 4.4 standard errors."""
    w, n_t, dt, R, v, _ = args
    c, r, s = _arrays(got["out"], what, c=(n_t,), r=(n_t,), s=(n_t, w.size))
    var, bad = s.var(), f"values: the stimulus of {what} should be"
    mixing = ((s**2).mean(axis=1)).var() / (2 * var**2 / w.size) if var > 0 else np.inf  # 1 for N(0, v)
    if not mixing <= 1.5:
        raise CheckFailure(f"{bad} white noise of variance v = {v:g} in every frame; the spread of the "
                           f"frames' mean squares is {mixing:.1f} times that of N(0, v) pixels", HINT_ENSEMBLE)
    if abs(s.mean()) > 5 * math.sqrt(v / s.size) or abs(var / v - 1) > 0.05:
        sd = min(abs(var / v**2 - 1), abs(var / math.sqrt(v) - 1)) < 0.05
        raise CheckFailure(f"{bad} of mean 0 and variance v = {v:g}, got {s.mean():.3g} and {var:.4g}",
                           "numpy's scale argument is the standard deviation: rng.normal(0, np.sqrt(v), ...) "
                           "has variance v." if sd else "")
    # uniform or ±√v pixels have mean 0 and variance v too: their fourth moment (1.8 v², v²; 3 v²
    # for a normal) and a Kolmogorov–Smirnov test against N(0, v) tell them apart
    kurt = float((s**4).mean() / var**2)
    if abs(kurt - 3) > 0.3 or stats.kstest(s.ravel() / math.sqrt(v), "norm").pvalue < 1e-6:
        raise CheckFailure(f"{bad} Gaussian, N(0, v = {v:g}); its fourth moment is {kurt:.2f} v² (3 v² for a "
                           "normal)", "draw the pixels from a normal distribution: rng.normal(0, np.sqrt(v), "
                           "size=(n_t, P)); uniform or ±√v values have the right mean and variance but are not N(0, v).")
    pixels = np.abs(np.corrcoef(s.T)[~np.eye(w.size, dtype=bool)]).max()
    frames = abs(np.corrcoef(s[1:].ravel(), s[:-1].ravel())[0, 1])
    if pixels > 6 / math.sqrt(n_t) or frames > 6 / math.sqrt(s.size):
        raise CheckFailure(f"{bad} independent across pixels and frames; the largest correlation between "
                           f"two pixels is {pixels:.3f}, between consecutive frames {frames:.3f}", HINT_ENSEMBLE)
    want = np.exp(s @ w) * dt * R  # the model's definition, applied to the answer's own stimulus
    if not np.allclose(r, want, rtol=1e-6, atol=0):
        hint = next((h for alt, h in ((np.exp((s * w).mean(axis=1)) * dt * R, HINT_DOT),
                                      (want / dt, "r_t is the expected count per bin: exp(wᵀs_t)·dt·R."),
                                      (want / R / dt, "r_t is the expected count per bin: exp(wᵀs_t)·dt·R."))
                     if np.allclose(r, alt, rtol=1e-6, atol=0)), "")
        raise CheckFailure(f"values: r from {what} should be exp(s @ w) * dt * R = {fmt(want)}, got {fmt(r)}", hint)
    busy = r > 1
    z, dispersion = (c - r).sum() / math.sqrt(r.sum()), np.mean((c[busy] - r[busy]) ** 2 / r[busy])
    if np.any(c < 0) or np.any(c != np.round(c)) or abs(z) > 5 or not 0.8 < dispersion < 1.25:
        raise CheckFailure(f"values: c from {what} should be whole counts drawn from Poisson(r): mean of c − r "
                           f"near 0, variance near r; got {fmt(c)}, a standardised mean of {z:.2f} and a "
                           f"variance/mean ratio of {dispersion:.2f}", "draw the counts with rng.poisson(r), one per bin.")
    if got["repeatable"] is not True:
        raise CheckFailure(f"values: {what} should give the same draw for the same seed", "make one generator from "
                           "the seed, np.random.default_rng(seed), and draw everything from it.")


# ---------------------------------------------------------------------------------------
# ex5-negloglik: negloglik(w, c, s, dt, R) -> (f, grad), also at another w


def at_two_points(fn, args) -> dict:
    """``fn(*args)`` and ``fn`` at another ``w`` on the same data (an f that ignores w repeats)."""
    w, *data = args
    return {"at w": to_data(fn(*args)), "moved": to_data(fn(np.asarray(w) * 0.5 + 0.01, *copy.deepcopy(data)))}


def negloglik(got, expected, what, args) -> None:
    """f and grad to float32's precision (f within 2e-5 relative, grad 1e-4 and 1e-5 of its
    largest entry): ``f`` that is not finite or does not change with ``w`` gets its hint."""
    shapes = {"f": (), "grad": (args[0].size,)}
    (f, g), (f2, _) = (_arrays(got[k], what, finite=False, **shapes) for k in ("at w", "moved"))
    want_f, want_g = _arrays(expected["at w"], what, **shapes)
    f, f2, want_f = float(f), float(f2), float(want_f)
    if not np.isfinite(f):
        raise CheckFailure(f"values: f from {what} should be {want_f:.8g}, got {f}", HINT_FACTORIAL)
    if f == f2:
        raise CheckFailure(f"values: f from {what} should change with w, got {f:.8g} at two w", "negloglik returns "
                           "the same value for different w: it ignores its argument w and uses a global variable "
                           "(the true w?). Compute everything from the arguments.")
    if abs(f - want_f) > 2e-5 * max(abs(want_f), 1.0):
        raise CheckFailure(f"values: f from {what} should be {want_f:.8g}, got {f:.8g}")
    if not np.allclose(g, want_g, rtol=1e-4, atol=1e-5 * np.abs(want_g).max()):
        raise CheckFailure(f"values: grad from {what} should be {fmt(want_g)}, got {fmt(g)}")


# ---------------------------------------------------------------------------------------
# Fits: ex5-fit (x0 and jac watched), ex5-ridge and ex5-lagged (neighbouring problems too)

_SPYING = threading.Lock()  # scipy.optimize.minimize is patched for one fit at a time


def fitted(fn, args) -> dict:
    """``fn(*args[:4])`` (fit_rf(c, s, dt, R); ``args[4]`` is the true w, which the answer
    never sees) with ``scipy.optimize.minimize`` watched: the estimate, and the ``x0`` and
    ``jac`` of each call (the last 20), also through a name the answer imported it by."""
    import scipy.optimize as opt

    with _SPYING:
        original, calls = opt.minimize, []

        def spy(fun, x0, *rest, **kwargs):
            res = original(fun, x0, *rest, **kwargs)
            calls.append({key: np.ravel(np.asarray(val, dtype=float)).tolist()
                          for key, val in (("x0", x0), ("jac", res.get("jac", np.nan)))})
            return res

        names = getattr(fn, "__globals__", {})
        rebound = [name for name, val in list(names.items()) if val is original]
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
    return {key: to_data(fn(*copy.deepcopy(data), a)) for key, a in
            (("w", alpha), ("none", 0.0), ("half", alpha / 2), ("double", 2 * alpha))}


def lags_both_ways(fn, args) -> dict:
    """fit_lags on the recording ("w") and on it reversed in time, where lags that go the
    wrong way (counts[t] with frames[t + L]) land."""
    counts, frames, lags, dt = args
    return {"w": to_data(fn(*copy.deepcopy(args))),
            "reversed": to_data(fn(np.asarray(counts)[::-1].copy(), np.asarray(frames)[::-1].copy(), lags, dt))}


def _estimate(data, shape, what: str) -> np.ndarray:
    got = Returned.from_data(data)
    if got.kind != "other" and got.array.shape == shape[::-1] != shape:
        raise CheckFailure(f"shape: {what} should have shape {shape} (one column per lag), got {got.array.shape}",
                           "stack the filters as columns: np.column_stack.")
    if got.kind == "other" or got.array.shape != shape:
        raise CheckFailure(f"shape: {what} should be an array of shape {shape}, got "
                           f"{got.described() if got.kind == 'other' else got.array.shape}")
    return got.array


def _rel(a, b) -> float:
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def fit(got, expected, what, args) -> None:
    """The maximum-likelihood w within :data:`FIT_TOL`; also for ridge and lagged fits, whose
    neighbouring problems (``_FIT_HINTS``) name the mistake; for fit_rf, an ``x0`` at the true
    w, the optimiser's jac, a normalised, flipped or shrunk estimate get their hints."""
    want = Returned.from_data(expected["w"]).array
    w = _estimate(got["w"], want.shape, what)
    calls = got.get("calls", [])
    x0s = [np.asarray(call["x0"], dtype=float) for call in calls]
    if any(x0.shape == args[4].shape and _rel(x0, args[4]) < 1e-3 for x0 in x0s):  # fit_rf: args[4] is the truth
        raise CheckFailure(f"start: {what} should start the optimiser without knowing the true receptive field; "
                           "your x0 equals it", "your optimiser starts at the true receptive field, which real "
                           "data never give you: start from zeros, np.zeros(P), and use only the arguments.")
    if np.all(np.isfinite(w)) and _rel(w, want) < FIT_TOL:
        return
    norm, total = np.linalg.norm(w) / np.linalg.norm(want), want.sum()
    hints = [(_rel(w, Returned.from_data(expected[k]).array) < FIT_TOL, h) for k, h in _FIT_HINTS.items() if k in expected]
    hints += [] if "calls" not in got else [
        (any(np.array_equal(w, call["jac"]) for call in calls),
         "you returned the optimiser's jac, the gradient at the optimum (close to 0); the estimate is res.x."),
        (abs(total) > 1e-12 and _rel(w, want / total) < 1e-2, "you normalised the estimate by its sum; the maximum-"
         "likelihood estimate has its own scale and sign, so give res.x as it is."),
        (_rel(w, -want) < 1e-2, "your estimate has the wrong sign: minimise −log L, don't maximise it."),
        (norm < 1 and np.corrcoef(w, want)[0, 1] > 0.9, "your estimate is shrunk towards zero: a penalised (ridge) "
         "fit, or an optimiser stopped early; the maximum-likelihood estimate minimises −log L alone, to convergence."),
        (any(x0.shape == w.shape and np.allclose(w, x0) for x0 in x0s), "the optimiser did not move from x0: check "
         "that your objective changes with w and returns (f, grad) when you pass jac=True."),
    ]
    raise CheckFailure(f"values: {what} should be {fmt(want)} (within {FIT_TOL:g} relative), got {fmt(w)}",
                       next((h for hit, h in hints if hit), ""))
