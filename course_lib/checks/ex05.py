r"""Checks of exercise 5 (LNP receptive fields): the sampler, the likelihood and its
gradient, the maximum-likelihood fit, binning at the triggers, lagged fits, the SVD, a
ridge fit, and the plots that go with them.

Every part recognises the chapter's common mistakes and names them in its hint:

1. ``w * s`` averaged instead of the dot product ``wᵀ s_t`` (sampler, likelihood);
2. a stimulus outside the ensemble (e.g. each frame scaled by a random factor): the
   sampler's output is tested for mean 0, variance ``v``, no correlation between pixels or
   frames, and no frame-to-frame change of scale;
3. the gradient of ``log L`` returned with ``-log L`` (sign);
4. ``log(factorial(c))``: non-finite values on large counts, or the constant
   ``Σ log c_t!`` kept in the objective;
5. the optimiser's ``jac`` returned instead of ``x``;
6. the optimiser started at the true receptive field: ``collect`` records every ``x0``
   passed to ``scipy.optimize.minimize`` (the student's fit never receives the true ``w``,
   but one of the check's problems uses the notebook's receptive field, so a fit that
   starts from the notebook's global ``w_true`` is caught);
7. the estimate normalised by its sum;
8. counts and frames misaligned by one bin, or lags shifted the wrong way;
9. the second singular vector, or a column of ``Vᵀ`` instead of a row;
10. a global ``w`` inside the likelihood: the function is called at several ``w`` on the
    same data, and one that ignores its argument returns the same value every time.

As in :mod:`course_lib.checks`, ``collect`` runs the student's code and returns plain data
(lists, numbers, strings); ``judge`` redraws the cases from the seed and recomputes every
reference, with scipy, numpy and statsmodels (the ridge reference is
:func:`course_lib.lnp.fit_regularized`, itself tested against glum's penalised Poisson GLM).
Plots are judged from the Axes' contents (the image array, the lines' data, the label
strings), never by comparing pictures.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import statsmodels.api as sm
from scipy import special, stats

from course_lib import lnp
from course_lib.checks.legacy import (
    Case,
    Check,
    CheckFailure,
    Returned,
    Verdict,
    collect_cases,
    drawn_cases,
    fmt,
    read_collected,
    reference_cache,
    register,
    to_data,
)

# ---------------------------------------------------------------------------------------
# Machinery: a check whose answer returns several values or draws a plot.


class Mistake(CheckFailure):
    """A failed step, with a hint when the check recognises the mistake."""

    def __init__(self, message: str, hint: str = ""):
        super().__init__(message)
        self.hint = hint


@dataclass
class CaseCheck(Check):
    """Run the student's answer on drawn cases; judge each case's plain-data record.

    Parameters
    ----------
    part, points, function
        Part id, points, and the name the student knows the function by.
    draw : callable(rng) -> list of Case
        The inputs (deterministic given the generator).
    run : callable(answer, case) -> dict
        Runs the answer on one case in the student's kernel and returns plain data.
    judge_cases : callable(records, cases) -> None
        Raises :class:`Mistake` (or :class:`CheckFailure`) at the first wrong result.
    error_hint : callable(text) -> str, optional
        A hint for an exception the student's code raised.
    """

    part: str
    points: float
    function: str
    draw: Callable[[np.random.Generator], Sequence[Case]]
    run: Callable[[Any, Case], dict]
    judge_cases: Callable[[list, Sequence[Case]], None]
    seed: int = 0
    success: str = "{function} is right on {n} inputs the check drew."
    error_hint: Callable[[str], str] | None = None
    hidden: bool = True  # every exercise-5 generator is proven on many seeds

    def cases(self) -> Sequence[Case]:
        return drawn_cases(self.draw, self.seed)

    def collect(self, answer=None, *extra) -> dict:
        return collect_cases(self, answer, self.run, "records")

    def judge(self, collected) -> Verdict:
        cases = self.cases()
        records = read_collected(self, collected, "records", len(cases), self.error_hint)
        if isinstance(records, Verdict):
            return records
        try:
            self.judge_cases(records, cases)
        except CheckFailure as failure:
            return self.verdict("failed", str(failure), getattr(failure, "hint", ""))
        except Exception:  # malformed or forged records never pass
            return self.verdict("error", "the check could not read your results")
        return self.verdict("passed", self.success.format(function=self.function, n=len(cases)))


def _tuple_data(out, n: int) -> dict:
    """A returned tuple of ``n`` values as plain data (or a note of what came back)."""
    if isinstance(out, (tuple, list)) and len(out) == n:
        return {"kind": "tuple", "items": [to_data(x) for x in out]}
    length = len(out) if isinstance(out, (tuple, list)) else None
    return {"kind": "not-tuple", "type": type(out).__name__, "len": length}


def _items(rec: dict, what: str, names: str, n: int) -> list[Returned]:
    if rec.get("kind") != "tuple":
        got = f"a {rec.get('type')}" + (f" of length {rec['len']}" if rec.get("len") else "")
        raise Mistake(f"type: {what} should return a tuple ({names}), got {got}")
    items = rec["items"]
    if not isinstance(items, list) or len(items) != n:
        raise CheckFailure("the check's record of your result is malformed")
    return [Returned.from_data(x) for x in items]


def _array(got: Returned, shape, what: str) -> np.ndarray:
    """Type, then shape, then finiteness of one returned array."""
    if got.kind == "other":
        raise Mistake(f"type: {what} should be an array of numbers, got a {got.type_name}")
    arr = got.array
    if arr.shape != tuple(shape):
        if arr.size == math.prod(shape) and arr.squeeze().ndim <= 1 and len(shape) == 1:
            raise Mistake(f"shape: {what} should have shape {tuple(shape)}, got {arr.shape} "
                          "(same numbers, wrong shape: flatten it with .ravel())")
        raise Mistake(f"shape: {what} should have shape {tuple(shape)}, got {arr.shape}")
    return arr


def _close(a, b, rtol=1e-6, atol=1e-9) -> bool:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=rtol, atol=atol))


def _rel(a, b) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-300))


def _corr(a, b) -> float:
    a, b = np.ravel(a), np.ravel(b)
    if a.size < 2 or np.std(a) == 0 or np.std(b) == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


# ---------------------------------------------------------------------------------------
# Hints shared by several parts (each names one of the chapter's common mistakes).

HINT_DOT = ("the drive of frame t is the dot product wᵀs_t = s @ w (a sum over pixels); "
            "you multiplied w and s element-wise and averaged.")
HINT_ENSEMBLE = ("every pixel of every frame must be an independent draw from N(0, v), "
                 "for example rng.normal(0, np.sqrt(v), size=(n_t, P)); your frames change "
                 "their scale from frame to frame (a random factor per frame?).")
HINT_SIGN = ("you returned the gradient of log L, not of −log L: the gradient of the "
             "negative log-likelihood is Σ_t (r_t − c_t) s_t.")
HINT_FACTORIAL = ("log(factorial(c)) overflows for counts above 170; log c_t! does not "
                  "depend on w, so leave it out (scipy.special.gammaln(c + 1) if you ever "
                  "need it).")
HINT_CONSTANT = ("you kept Σ_t log c_t! in the objective: it does not depend on w, so it "
                 "changes neither the fit nor the gradient; drop it (computing it is "
                 "slow and, as log(factorial(c)), overflows).")
HINT_JAC = ("you returned the optimiser's jac, the gradient at the optimum (close to 0); "
            "the estimate is res.x.")
HINT_X0 = ("your optimiser starts at the true receptive field, which real data never give "
           "you: start from zeros, np.zeros(P), and use only the arguments.")
HINT_SUM = ("you normalised the estimate by its sum; the maximum-likelihood estimate has its "
            "own scale and sign, so return res.x as it is.")
HINT_GLOBAL = ("negloglik returns the same value for different w: it ignores its argument "
               "w and uses a global variable (the true w?). Compute everything from the "
               "arguments.")
HINT_MISALIGNED = ("your counts are shifted by one frame: counts[k] must be the spikes "
                   "between trigger k and trigger k + 1, so that it pairs with frame k.")
HINT_LAG_DIRECTION = ("your lags go the wrong way: lag L pairs counts[t] with frames[t - L], "
                      "the frame shown L steps *before*; use counts[m:] with "
                      "frames[m - L : n - L], m = max(lags).")
HINT_LAG_OFF_BY_ONE = ("your lagged filters are shifted by one lag: for lag L use "
                       "frames[m - L : n - L] with counts[m:], m = max(lags).")
HINT_SECOND_SV = ("you took the second singular vector: the first (largest singular value, "
                  "index 0) is the best rank-one approximation.")
HINT_VT_COLUMN = ("you took a column of Vᵀ (Vt[:, 0]); the time course is its first *row*, "
                  "Vt[0, :] (the first column of V).")


# ---------------------------------------------------------------------------------------
# Task 1.2 (ex5-sampler): sample_lnp(w, n_t, dt, R, v, seed) -> (c, r, s)


def _draw_sampler(rng):
    w1 = lnp.gaussian_rf(3, 1.0)
    w2 = rng.normal(size=9)
    w2 /= np.linalg.norm(w2)
    return [
        Case((w1, 3000, 0.1, 20.0, 1.0, int(rng.integers(1_000_000))),
             "w = 3 × 3 Gaussian blob, n_t = 3000, dt = 0.1, R = 20, v = 1"),
        Case((w2, 3000, 0.05, 40.0, 3.0, int(rng.integers(1_000_000))),
             "w = random unit vector of 9 pixels, n_t = 3000, dt = 0.05, R = 40, v = 3"),
    ]


def _run_sampler(answer, case):
    out = answer(*case.args)
    again = answer(*copy.deepcopy(case.args))
    try:
        same = all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(out, again))
    except Exception:
        same = False
    return {"out": _tuple_data(out, 3), "repeatable": bool(same)}


def _judge_sampler(records, cases):
    for rec, case in zip(records, cases):
        w, n_t, dt, R, v, _ = case.args
        P = w.size
        what = f"sample_lnp(…) on {case.label}"
        c_got, r_got, s_got = _items(rec["out"], "sample_lnp", "c, r, s", 3)
        s = _array(s_got, (n_t, P), f"s from {what}")
        r = _array(r_got, (n_t,), f"r from {what}")
        c = _array(c_got, (n_t,), f"c from {what}")
        if not (np.all(np.isfinite(s)) and np.all(np.isfinite(r)) and np.all(np.isfinite(c))):
            raise Mistake(f"values: {what} returned NaN or infinite values")
        # -- the stimulus ensemble: mean 0, variance v, independent pixels and frames
        N = s.size
        var = s.var()
        scale = (s**2).mean(axis=1)  # per-frame mean square; Var = 2 v² / P for N(0, v)
        mixing = scale.var() / (2 * var**2 / P) if var > 0 else np.inf
        if mixing > 1.5:
            raise Mistake(
                f"values: the stimulus of {what} should be white noise of variance v = {v:g} "
                f"in every frame; the spread of the frames' mean squares is {mixing:.1f} times "
                "what independent N(0, v) pixels give", HINT_ENSEMBLE)
        if abs(s.mean()) > 5 * math.sqrt(v / N):
            raise Mistake(f"values: the stimulus of {what} should have mean 0, "
                          f"got {s.mean():.4g}")
        if abs(var / v - 1) > 0.05:
            hint = ""
            if abs(var / v**2 - 1) < 0.05 or abs(var / math.sqrt(v) - 1) < 0.05:
                hint = ("numpy's scale argument is the standard deviation: "
                        "rng.normal(0, np.sqrt(v), ...) has variance v.")
            raise Mistake(f"values: the stimulus of {what} should have variance v = {v:g}, "
                          f"got {var:.4g}", hint)
        # N(0, v) itself, not only its first two moments: uniform or ±√v pixels have the
        # same mean and variance; the fourth moment (3 v² for a normal; 1.8 v² and v² for
        # those) and a Kolmogorov–Smirnov test against N(0, v) tell them apart
        kurt = float((s**4).mean() / var**2)
        ks = stats.kstest(s.ravel()[:20000] / math.sqrt(v), "norm").pvalue
        if abs(kurt - 3) > 0.3 or ks < 1e-6:
            raise Mistake(
                f"values: the stimulus of {what} should be Gaussian, N(0, v = {v:g}); its "
                f"pixels' fourth moment is {kurt:.2f} v² (3 v² for a normal)",
                "draw the pixels from a normal distribution: rng.normal(0, np.sqrt(v), size=(n_t, P)); "
                "uniform or ±√v values have the right mean and variance but are not N(0, v).")
        cp = np.corrcoef(s.T)
        worst_pixels = np.max(np.abs(cp[~np.eye(P, dtype=bool)]))
        frame_corr = abs(_corr(s[1:].ravel(), s[:-1].ravel()))
        if worst_pixels > 6 / math.sqrt(n_t) or frame_corr > 6 / math.sqrt(N):
            raise Mistake(
                f"values: the stimulus of {what} should be independent across pixels and "
                f"frames; the largest correlation between two pixels is {worst_pixels:.3f}, "
                f"between consecutive frames {frame_corr:.3f}", HINT_ENSEMBLE)
        # -- the expected counts, from the student's own stimulus
        eta = s @ w
        r_ref = np.exp(eta) * dt * R
        if not _close(r, r_ref, rtol=1e-6):
            hint = ""
            if _close(r, np.exp((s * w).mean(axis=1)) * dt * R, rtol=1e-6):
                hint = HINT_DOT
            elif _close(r, np.exp(eta), rtol=1e-6) or _close(r, np.exp(eta) * R, rtol=1e-6):
                hint = "r_t is the expected count per bin: exp(wᵀs_t) · dt · R (both factors)."
            raise Mistake(f"values: r from {what} should be exp(s @ w) * dt * R = "
                          f"{fmt(r_ref)}, got {fmt(r)}", hint)
        # -- the counts: whole numbers drawn from Poisson(r)
        if np.any(c < 0) or np.any(c != np.round(c)):
            raise Mistake(f"values: c from {what} should hold whole, non-negative spike "
                          f"counts, got {fmt(c)}", "draw the counts with rng.poisson(r).")
        z = (c - r).sum() / math.sqrt(r.sum())
        busy = r > 1
        dispersion = float(np.mean((c[busy] - r[busy]) ** 2 / r[busy]))
        if abs(z) > 5 or not 0.8 < dispersion < 1.25:
            raise Mistake(
                f"values: c from {what} should be Poisson(r): mean of c − r near 0 and "
                f"variance near r; got a standardised mean of {z:.2f} and a variance/mean "
                f"ratio of {dispersion:.2f}", "draw the counts with rng.poisson(r), one per bin.")
        if rec.get("repeatable") is not True:
            raise Mistake(f"values: {what} should give the same draw for the same seed",
                          "make a generator from the seed, rng = np.random.default_rng(seed), "
                          "and draw everything from it.")


register(CaseCheck(
    part="ex5-sampler", points=0.5, function="sample_lnp", draw=_draw_sampler,
    run=_run_sampler, judge_cases=_judge_sampler, seed=501,
    success="{function} draws white noise of variance v and Poisson counts with rate "
            "exp(wᵀs)·dt·R on {n} problems the check drew.",
))

# ---------------------------------------------------------------------------------------
# Task 1.4 (ex5-negloglik): negloglik(w, c, s, dt, R) -> (f, grad)


def _draw_negloglik(rng):
    cases = []
    wa = lnp.gaussian_rf(15, 2.0)  # the lab's receptive field, as in the notebook
    ca, _, sa = lnp.sample_lnp(wa, n_t=300, dt=0.1, R=50.0, v=5.0, seed=int(rng.integers(10**6)))
    for k, w_eval in enumerate([np.zeros(225), 0.5 * wa, rng.normal(scale=0.05, size=225)]):
        cases.append(Case((w_eval, ca, sa, 0.1, 50.0),
                          f"data set A (300 bins, counts up to {int(ca.max())}), w number {k + 1}"))
    wb = lnp.gaussian_rf(15, 1.5, center=(4.0, 10.0))
    cb, _, sb = lnp.sample_lnp(wb, n_t=200, dt=0.05, R=30.0, v=2.0, seed=int(rng.integers(10**6)))
    for k, w_eval in enumerate([rng.normal(scale=0.05, size=225), 0.8 * wb]):
        cases.append(Case((w_eval, cb, sb, 0.05, 30.0), f"data set B (200 bins), w number {k + 1}"))
    return cases


@reference_cache
def _nll_reference(w, c, s, dt, R):
    """-log L without the constant: scipy's Poisson log-pmf, less the constant it includes."""
    r = np.exp(s @ w) * dt * R
    full = -stats.poisson.logpmf(c, r).sum()
    constant = special.gammaln(c + 1).sum() - c.sum() * math.log(dt * R)
    grad = s.T @ (r - c)  # Σ_t (r_t − c_t) s_t
    return full - constant, grad


def _run_pair(answer, case):
    return {"out": _tuple_data(answer(*case.args), 2)}


def _f_close(a, b) -> bool:
    # float32 arithmetic (about 7 digits, summed over hundreds of bins) is a valid answer:
    # 2e-5 relative is far above its rounding and far below every recognised mistake
    return abs(a - b) <= 2e-5 * max(abs(b), 1.0)


def _judge_negloglik(records, cases):
    outs = []
    for rec, case in zip(records, cases):
        what = f"negloglik(…) on {case.label}"
        f_got, g_got = _items(rec["out"], "negloglik", "f, grad", 2)
        f = _array(f_got, (), f"f from {what}") if f_got.kind != "other" else None
        if f is None:
            raise Mistake(f"type: f from {what} should be a number, got a {f_got.type_name}")
        g = _array(g_got, (case.args[0].size,), f"grad from {what}")
        outs.append((float(f), g))
    # a function that ignores w gives the same value at different w on the same data
    for label in ("data set A", "data set B"):
        idx = [i for i, case in enumerate(cases) if case.label.startswith(label)]
        fs = [outs[i][0] for i in idx]
        refs = [_nll_reference(*cases[i].args)[0] for i in idx]
        same = np.all(np.isfinite(fs)) and np.ptp(fs) <= 1e-12 * max(abs(fs[0]), 1.0)
        if same and np.ptp(refs) > 1e-6:
            raise Mistake(f"values: negloglik(…) on {label} should change with w "
                          f"({fmt(refs)} at the check's w values), got {fmt(fs)}", HINT_GLOBAL)
    for (f, g), case in zip(outs, cases):
        w, c, s, dt, R = case.args
        what = f"negloglik(…) on {case.label}"
        f_ref, g_ref = _nll_reference(w, c, s, dt, R)
        if not np.isfinite(f):
            raise Mistake(f"values: f from {what} should be {f_ref:.8g}, got {f}", HINT_FACTORIAL)
        if not _f_close(f, f_ref):
            log_fact = special.gammaln(c + 1).sum()
            c_log = c.sum() * math.log(dt * R)
            eta_mean = (s * w).mean(axis=1)
            f_mean = np.sum(np.exp(eta_mean) * dt * R - c * eta_mean)
            hint = ""
            if _f_close(-f, f_ref):
                hint = ("you returned log L; the optimiser minimises, so return the negative "
                        "log-likelihood −log L and its gradient.")
            elif any(_f_close(f, f_ref + k) for k in (log_fact, log_fact - c_log)):
                hint = HINT_CONSTANT
            elif _f_close(f, f_ref - c_log):
                hint = ("you kept the constant −Σ c_t log(Δt R); it does not depend on w: "
                        "drop it, as the formula says.")
            elif _f_close(f, f_mean):
                hint = HINT_DOT
            raise Mistake(f"values: f from {what} should be {f_ref:.8g}, got {f:.8g}", hint)
        g_tol = {"rtol": 1e-4, "atol": 1e-5 * np.abs(g_ref).max()}  # float32 passes, as for f
        if not np.all(np.isfinite(g)) or not _close(g, g_ref, **g_tol):
            hint = HINT_SIGN if _close(g, -g_ref, **g_tol) else ""
            raise Mistake(f"values: grad from {what} should be {fmt(g_ref)}, got {fmt(g)}", hint)


def _factorial_error_hint(text: str) -> str:
    if "factorial" in text or "Overflow" in text or "too large" in text:
        return HINT_FACTORIAL
    return ""


register(CaseCheck(
    part="ex5-negloglik", points=0.5, function="negloglik", draw=_draw_negloglik,
    run=_run_pair, judge_cases=_judge_negloglik, seed=502, error_hint=_factorial_error_hint,
    success="{function} gives −log L (without constants) and its gradient, as scipy's "
            "Poisson log-pmf does, at {n} points the check drew.",
))

# ---------------------------------------------------------------------------------------
# Task 1.5 (ex5-fit): fit_rf(c, s, dt, R) -> w_hat


def _draw_fit(rng):
    wa = lnp.gaussian_rf(15, 2.0)  # the notebook's true receptive field, new data
    ca, _, sa = lnp.sample_lnp(wa, n_t=1000, dt=0.1, R=50.0, v=5.0, seed=int(rng.integers(10**6)))
    wb = lnp.gaussian_rf(15, 1.5, center=(5.0, 9.0))
    # few spikes per weight (about 1,300 for 225): a penalised fit (ridge, alpha = 10) is
    # 4% away from the maximum-likelihood one here, 100 times an honest fit's error
    cb, _, sb = lnp.sample_lnp(wb, n_t=800, dt=0.1, R=10.0, v=1.0, seed=int(rng.integers(10**6)))
    return [Case((ca, sa, 0.1, 50.0), "1,000 bins of the lab's set-up (new data)"),
            Case((cb, sb, 0.1, 10.0), "800 bins of another neuron (R = 10, v = 1)")]


def _true_w_of_fit_case(k: int) -> np.ndarray:
    return lnp.gaussian_rf(15, 2.0) if k == 0 else lnp.gaussian_rf(15, 1.5, center=(5.0, 9.0))


@reference_cache
def _glm_fit(c, s, dt, R):
    """statsmodels' Poisson GLM with offset log(dt R): the maximum-likelihood w."""
    offset = np.full(c.size, math.log(dt * R))
    return sm.GLM(c, s, family=sm.families.Poisson(), offset=offset).fit(tol=1e-10).params


def _run_fit(answer, case):
    """Run the fit with scipy.optimize.minimize wrapped, recording each x0, x and jac."""
    import scipy.optimize as opt

    original = opt.minimize
    calls: list[dict] = []

    def spy(fun, x0, *args, **kwargs):
        res = original(fun, x0, *args, **kwargs)
        call = {"x0": np.asarray(x0, dtype=float).ravel().tolist()}
        for key in ("x", "jac"):
            try:
                call[key] = np.asarray(res[key], dtype=float).ravel().tolist()
            except Exception:
                pass
        calls.append(call)
        return res

    globs = getattr(answer, "__globals__", {})
    rebound = [name for name, val in list(globs.items()) if val is original]
    opt.minimize = spy
    for name in rebound:
        globs[name] = spy
    try:
        out = answer(*case.args)
    finally:
        opt.minimize = original
        for name in rebound:
            globs[name] = original
    return {"out": to_data(out), "calls": calls[-20:]}


def _judge_fit(records, cases):
    for k, (rec, case) in enumerate(zip(records, cases)):
        c, s, dt, R = case.args
        P = s.shape[1]
        what = f"fit_rf(…) on {case.label}"
        w_true = _true_w_of_fit_case(k)
        calls = rec.get("calls", [])
        if not isinstance(calls, list):
            raise CheckFailure("the check's record of your result is malformed")
        for call in calls:
            x0 = np.asarray(call["x0"], dtype=float)
            if x0.size == P and _corr(x0, w_true) > 0.95:
                raise Mistake(f"start: {what} should start the optimiser without knowing the "
                              f"true receptive field; your x0 equals it (correlation "
                              f"{_corr(x0, w_true):.3f})", HINT_X0)
        got = Returned.from_data(rec["out"])
        w = _array(got, (P,), what)
        ref = _glm_fit(c, s, dt, R)
        if np.all(np.isfinite(w)) and _rel(w, ref) < 5e-3:
            continue
        hint = ""
        jacs = [np.asarray(cl["jac"]) for cl in calls if "jac" in cl]
        x0s = [np.asarray(cl["x0"]) for cl in calls]
        total = ref.sum()
        if any(_close(w, j, rtol=1e-9, atol=1e-12) for j in jacs) or np.linalg.norm(w) < 0.05 * np.linalg.norm(ref):
            hint = HINT_JAC
        elif abs(total) > 1e-12 and _rel(w, ref / total) < 1e-2:
            hint = HINT_SUM
        elif _rel(w, -ref) < 1e-2:
            hint = "your estimate has the wrong sign: minimise −log L, don't maximise it."
        elif any(_rel(w, _ridge_reference(c, s, dt, R, a)) < 5e-3 for a in (1.0, 10.0, 100.0)):
            hint = ("this is a penalised (ridge) fit: the maximum-likelihood estimate minimises "
                    "−log L alone, with no penalty on w.")
        elif any(x0.shape == w.shape and _close(w, x0) for x0 in x0s):
            hint = ("the optimiser did not move from x0: check that your objective changes "
                    "with w and returns (f, grad) when you pass jac=True.")
        raise Mistake(f"values: {what} should be the maximum-likelihood estimate "
                      f"{fmt(ref)} (statsmodels' Poisson GLM), got {fmt(w)}", hint)


register(CaseCheck(
    part="ex5-fit", points=1, function="fit_rf", draw=_draw_fit, run=_run_fit,
    judge_cases=_judge_fit, seed=503,
    success="{function} agrees with statsmodels' Poisson GLM (offset log(dt·R)) on {n} "
            "data sets the check drew.",
))

# ---------------------------------------------------------------------------------------
# Plots: the contents of the Axes, as plain data.


def _axes_data(ax) -> dict:
    """What a plot shows, as plain data: images, lines, labels, legend."""
    images = []
    for im in ax.get_images():
        arr = np.ma.filled(np.ma.asarray(im.get_array(), dtype=float), np.nan)
        vmin, vmax = im.get_clim()
        ramp = np.asarray(im.cmap(np.linspace(0.0, 1.0, 5)), dtype=float)[:, :3]
        images.append({"array": to_data(arr), "clim": [float(vmin), float(vmax)],
                       "ramp": to_data(ramp)})
    lines = [{"x": to_data(np.asarray(ln.get_xdata(), dtype=float)),
              "y": to_data(np.asarray(ln.get_ydata(), dtype=float))} for ln in ax.get_lines()]
    legend = ax.get_legend()
    return {
        "images": images, "lines": lines, "title": ax.get_title(),
        "xlabel": ax.get_xlabel(), "ylabel": ax.get_ylabel(),
        "legend": [t.get_text() for t in legend.get_texts()] if legend else [],
    }


def _run_on_axes(answer, case):
    """Call answer(ax, *args) on a fresh Axes; record the Axes; close the figure."""
    import matplotlib.pyplot as plt

    before = set(plt.get_fignums())
    fig, ax = plt.subplots()
    try:
        answer(ax, *case.args)
        return {"axes": [_axes_data(ax)]}
    finally:
        for num in set(plt.get_fignums()) - before:
            plt.close(num)


def _run_returning_figure(answer, case):
    """Call answer(*args), which returns a Figure; record every Axes; close it."""
    import matplotlib.pyplot as plt
    from matplotlib.figure import Figure

    before = set(plt.get_fignums())
    try:
        fig = answer(*case.args)
        if not isinstance(fig, Figure):
            return {"not_figure": type(fig).__name__}
        return {"axes": [_axes_data(ax) for ax in fig.axes]}
    finally:
        for num in set(plt.get_fignums()) - before:
            plt.close(num)


def _image(img: dict) -> np.ndarray:
    return Returned.from_data(img["array"]).array


def _judge_image(img: dict, expected: np.ndarray, what: str) -> None:
    arr = _image(img)
    if arr.shape == expected.shape and np.allclose(arr, expected, equal_nan=False):
        return
    hint = ""
    if arr.shape == expected.T.shape and np.allclose(arr, expected.T):
        hint = "the image is transposed: reshape the flat vector with .reshape(rows, columns) and don't transpose it."
    elif arr.shape == expected.shape and np.allclose(arr, expected.ravel().reshape(expected.shape, order="F")):
        hint = "reshape in C (row-major) order, w.reshape(rows, columns), as the frames were flattened."
    elif arr.size == expected.size and arr.shape != expected.shape:
        hint = f"reshape the flat vector to the frame's shape {expected.shape} (rows, columns)."
    raise Mistake(f"values: {what} should show the array {fmt(expected)} with shape "
                  f"{expected.shape}, got {fmt(arr)} with shape {arr.shape}", hint)


def _diverging(img: dict) -> bool:
    """Whether an image's colormap is diverging: two ends of different colours, and a
    neutral (grey, white or black) middle, clearly lighter or darker than both ends, where
    zero lies on a centred scale (RdBu, coolwarm, seismic, PuOr, ... but not viridis, gray
    or jet)."""
    ramp = Returned.from_data(img["ramp"]).array
    chroma = ramp.max(axis=1) - ramp.min(axis=1)
    light = ramp @ np.array([0.2126, 0.7152, 0.0722])  # relative luminance of each colour
    ends, mid = light[[0, -1]], light[2]
    return bool(chroma[2] < 0.3 and max(chroma[0], chroma[-1]) > 0.15
                and np.linalg.norm(ramp[0] - ramp[-1]) > 0.3
                and (mid > ends.max() + 0.2 or mid < ends.min() - 0.2))


def _judge_colour_scale(imgs: list, m: float, what: str) -> None:
    """One colour scale, centred on zero and covering ±m, and a diverging colormap."""
    clims = {tuple(float(v) for v in img["clim"]) for img in imgs}
    hint = ("pass vmin=-m, vmax=m with m the largest |w|" + (" over all the filters" if len(imgs) > 1 else
            " (np.abs(w).max())") + ", and a diverging colormap (cmap='RdBu_r'), so that zero weight "
            "has one colour" + (" and every panel the same scale: the shrinkage shows." if len(imgs) > 1 else "."))
    if len(clims) > 1:
        raise Mistake(f"colours: {what} should use one colour scale for every panel, got "
                      f"{len(clims)} different (vmin, vmax)", hint)
    vmin, vmax = clims.pop()
    if not (vmax > 0 and abs(vmin + vmax) <= 1e-9 * vmax and vmax >= m * (1 - 1e-9)):
        raise Mistake(f"colours: {what} should have a colour scale centred on zero "
                      f"(vmin = −vmax ≥ max |w|), got vmin = {vmin:.3g}, vmax = {vmax:.3g}", hint)
    if not all(_diverging(img) for img in imgs):
        raise Mistake(f"colours: {what} should use a diverging colormap (one colour for "
                      "positive weights, another for negative, light or dark at zero)", hint)


def _need_labels(ax: dict, what: str, need=("title", "xlabel", "ylabel")) -> None:
    for key in need:
        if not isinstance(ax.get(key), str) or not ax[key].strip():
            word = {"title": "a title", "xlabel": "an x-axis label", "ylabel": "a y-axis label"}[key]
            raise Mistake(f"labels: {what} should have {word}",
                          "every figure needs a title and axis labels with units.")


def _need_axes(rec: dict, what: str) -> list:
    if "not_figure" in rec:
        raise Mistake(f"type: {what} should return a matplotlib Figure, got a {rec['not_figure']}",
                      "create it with fig, axes = plt.subplots(...) and return fig.")
    axes = rec["axes"]
    if not isinstance(axes, list):
        raise CheckFailure("the check's record of your result is malformed")
    return axes


# ---------------------------------------------------------------------------------------
# Task 1.3 (ex5-response-plot): plot_response(ax, c, r, dt)


def _draw_response(rng):
    w = lnp.gaussian_rf(3, 1.0)
    c, r, _ = lnp.sample_lnp(w, n_t=60, dt=0.1, R=20.0, v=1.0, seed=int(rng.integers(10**6)))
    return [Case((c, r, 0.1), "60 bins of 0.1 s")]


def _judge_response(records, cases):
    for rec, case in zip(records, cases):
        c, r, dt = case.args
        what = "the Axes that plot_response draws on"
        (ax,) = rec["axes"]
        t = np.arange(c.size) * dt
        times = (t, t + dt / 2)  # bin starts or bin centres: both are the bins' times
        lines = [(Returned.from_data(ln["x"]).array, Returned.from_data(ln["y"]).array)
                 for ln in ax["lines"]]
        for name, y in (("the counts c", c), ("the expected counts r", r)):
            if any(ly.shape == y.shape and np.allclose(ly, y) and lx.shape == t.shape
                   and any(np.allclose(lx, tt) for tt in times) for lx, ly in lines):
                continue
            hint = ""
            if any(ly.shape == y.shape and np.allclose(ly, y) for _, ly in lines):
                hint = "the x values should be time in seconds: the bin index times dt."
            raise Mistake(f"lines: {what} should have a line of {name} against time "
                          f"({fmt(t)} s) drawn with ax.plot or ax.step; found {len(lines)} "
                          "line(s) without it", hint)
        _need_labels(ax, what)
        if len(ax["legend"]) < 2:
            raise Mistake(f"legend: {what} should have a legend naming both lines",
                          "label each line (label=...) and call ax.legend().")


register(CaseCheck(
    part="ex5-response-plot", points=0.5, function="plot_response", draw=_draw_response,
    run=_run_on_axes, judge_cases=_judge_response, seed=504,
    success="{function} draws the counts and the expected counts against time in seconds, "
            "with a title, axis labels and a legend.",
))

# ---------------------------------------------------------------------------------------
# Task 1.6 (ex5-rf-plot): plot_rf(ax, w, shape)


def _draw_rf_plot(rng):
    return [Case((rng.normal(size=35), (5, 7)), "a random w of 35 pixels, shape (5, 7)"),
            Case((lnp.gaussian_rf(4, 1.0, center=(1.0, 2.0)), (4, 4)), "a 4 × 4 blob")]


def _judge_rf_plot(records, cases):
    for rec, case in zip(records, cases):
        w, shape = case.args
        what = f"the Axes that plot_rf draws on, for {case.label}"
        (ax,) = rec["axes"]
        if not ax["images"]:
            raise Mistake(f"image: {what} should hold an image of w", "draw it with ax.imshow(...).")
        _judge_image(ax["images"][0], w.reshape(shape), what)
        _judge_colour_scale(ax["images"][:1], float(np.abs(w).max()), what)
        _need_labels(ax, what)


register(CaseCheck(
    part="ex5-rf-plot", points=0.5, function="plot_rf", draw=_draw_rf_plot,
    run=_run_on_axes, judge_cases=_judge_rf_plot, seed=505,
    success="{function} shows w as a (rows, columns) image on a colour scale centred on zero, "
            "with a title and axis labels, for {n} inputs.",
))

# ---------------------------------------------------------------------------------------
# Task 2.1 (ex5-binning): bin_counts(spike_times, trigger_times, frame_duration) -> counts


def _draw_binning(rng):
    cases = []
    for n_frames in (12, 80):
        dur = 0.05
        triggers = 2.0 + np.cumsum(np.r_[0, dur + rng.normal(0, 4e-4, n_frames - 1)])
        end = triggers[-1] + dur
        spikes = np.r_[rng.uniform(triggers[0] - 0.5, end + 0.5, 6 * n_frames),
                       triggers[rng.choice(n_frames, 3, replace=False)],  # exactly on a trigger
                       end]  # exactly at the end of the last frame: belongs to no frame
        spikes = np.round(np.sort(spikes), 6)
        cases.append(Case((spikes, np.round(triggers, 6), dur),
                          f"{n_frames} frames of 50 ms, {spikes.size} spikes"))
    return cases


@reference_cache
def _counts_reference(spikes, triggers, dur):
    edges = np.append(triggers, triggers[-1] + dur)
    inside = spikes[spikes < edges[-1]]  # frame k is [trigger k, trigger k + 1)
    return np.histogram(inside, bins=edges)[0]


def _run_single(answer, case):
    return {"out": to_data(answer(*case.args))}


def _judge_binning(records, cases):
    for rec, case in zip(records, cases):
        spikes, triggers, dur = case.args
        what = f"bin_counts(…) on {case.label}"
        ref = _counts_reference(spikes, triggers, dur)
        got = Returned.from_data(rec["out"])
        if got.kind == "other":
            raise Mistake(f"type: {what} should be an array of counts, got a {got.type_name}")
        arr = got.array.ravel() if got.array.ndim == 1 else got.array
        if arr.shape == (ref.size - 1,):
            raise Mistake(f"shape: {what} should have one count per frame, shape {ref.shape}, "
                          f"got {arr.shape}",
                          "np.histogram with the n trigger times as edges gives n − 1 counts: "
                          "append the end of the last frame, trigger_times[-1] + frame_duration.")
        if arr.shape != ref.shape:
            raise Mistake(f"shape: {what} should have shape {ref.shape}, got {arr.shape}")
        if np.array_equal(arr, ref):
            continue
        hint = ""
        if np.array_equal(arr[1:], ref[:-1]) or np.array_equal(arr[:-1], ref[1:]):
            hint = HINT_MISALIGNED
        elif np.array_equal(arr[:-1], ref[:-1]):
            hint = ("the last count is off: the last frame ends at trigger_times[-1] + "
                    "frame_duration, and a spike exactly there belongs to no frame.")
        elif np.array_equal(arr[1:], ref[1:]):
            hint = "spikes before the first trigger belong to no frame: don't count them."
        raise Mistake(f"values: {what} should be {fmt(ref, max_items=8)}, got {fmt(arr, max_items=8)}", hint)


register(CaseCheck(
    part="ex5-binning", points=0.5, function="bin_counts", draw=_draw_binning,
    run=_run_single, judge_cases=_judge_binning, seed=511,
    success="{function} counts the spikes of each frame, from its trigger to the next, "
            "on {n} recordings the check drew.",
))

# ---------------------------------------------------------------------------------------
# Task 2.2 (ex5-lagged): fit_lags(counts, frames, lags, dt) -> W, shape (P, n_lags)


def _draw_lagged(rng):
    cases = []
    for lags, kernel in (([0, 1, 2, 3], [0.2, 1.0, -0.5, -0.3]), ([0, 2, 3], [0.0, 0.6, 0.0, -0.8])):
        P, n, dt = 16, 1500, 0.05
        spatial = rng.normal(size=P)
        spatial /= np.linalg.norm(spatial)
        frames = rng.choice([-1.0, 1.0], size=(n, P))
        drive = np.zeros(n)
        for L, k in enumerate(kernel):
            drive[L:] += 0.6 * k * (frames[: n - L] @ spatial)
        counts = rng.poisson(20.0 * dt * np.exp(drive))
        cases.append(Case((counts, frames, lags, dt), f"{n} frames of {P} pixels, lags {lags}"))
    return cases


@reference_cache
def _poisson_fit_with_rate(y, X, dt):
    """statsmodels' Poisson GLM with an intercept (log R) and offset log(dt); w only."""
    design = np.column_stack([X, np.ones(len(y))])
    fit = sm.GLM(y, design, family=sm.families.Poisson(), offset=np.full(len(y), math.log(dt)))
    return fit.fit(tol=1e-10).params[:-1]


@reference_cache
def _lagged_reference(counts, frames, lags, dt, direction=+1):
    m, n = max(lags), len(counts)
    cols = []
    for L in lags:
        if direction > 0:  # counts[t] with frames[t - L]
            cols.append(_poisson_fit_with_rate(counts[m:], frames[m - L: n - L], dt))
        else:  # the wrong way: counts[t] with frames[t + L]
            cols.append(_poisson_fit_with_rate(counts[: n - m], frames[L: n - m + L], dt))
    return np.column_stack(cols)


def _judge_lagged(records, cases):
    for rec, case in zip(records, cases):
        counts, frames, lags, dt = case.args
        P = frames.shape[1]
        what = f"fit_lags(…) on {case.label}"
        got = Returned.from_data(rec["out"])
        if got.kind != "other" and got.array.shape == (len(lags), P):
            raise Mistake(f"shape: {what} should have shape {(P, len(lags))} (one column per "
                          f"lag), got {got.array.shape}", "stack the filters as columns: np.column_stack.")
        W = _array(got, (P, len(lags)), what)
        ref = _lagged_reference(counts, frames, lags, dt)
        if np.all(np.isfinite(W)) and _rel(W, ref) < 1e-2:
            continue
        hint = ""
        if _rel(W, _lagged_reference(counts, frames, lags, dt, direction=-1)) < 5e-2:
            hint = HINT_LAG_DIRECTION
        else:
            m, n = max(lags), len(counts)
            for shift in (+1, -1):
                shifted = [L + shift for L in lags]
                if min(shifted) < 0 or max(shifted) >= n - m:
                    continue
                alt = np.column_stack([_poisson_fit_with_rate(counts[m + 1:], frames[m + 1 - L: n - L], dt)
                                       for L in shifted])
                if W.shape == alt.shape and _rel(W, alt) < 0.2:
                    hint = HINT_LAG_OFF_BY_ONE
        raise Mistake(f"values: {what} should be {fmt(ref)} (column 0 shown first), got {fmt(W)}", hint)


register(CaseCheck(
    part="ex5-lagged", points=1, function="fit_lags", draw=_draw_lagged, run=_run_single,
    judge_cases=_judge_lagged, seed=512,
    success="{function} agrees with statsmodels' Poisson GLM lag by lag (counts[t] with "
            "frames[t − L], rate estimated) on {n} recordings the check drew.",
))

# ---------------------------------------------------------------------------------------
# Task 2.3 (ex5-lagged-plots): plot_lagged_filters(W, frame_shape, lags) -> Figure


def _draw_lagged_plots(rng):
    return [Case((rng.normal(size=(12, 3)), (4, 3), [0, 1, 2]), "W of shape (12, 3), frames 4 × 3"),
            Case((rng.normal(size=(20, 4)), (5, 4), [0, 2, 3, 5]), "W of shape (20, 4), lags [0, 2, 3, 5]")]


def _judge_lagged_plots(records, cases):
    for rec, case in zip(records, cases):
        W, shape, lags = case.args
        what = f"the figure of plot_lagged_filters for {case.label}"
        axes = [ax for ax in _need_axes(rec, what) if ax["images"]]
        if len(axes) != len(lags):
            raise Mistake(f"images: {what} should have one image per lag ({len(lags)}), got {len(axes)}",
                          "make one Axes per lag, plt.subplots(1, len(lags)), and imshow each column.")
        for j, (ax, lag) in enumerate(zip(axes, lags)):
            _judge_image(ax["images"][0], W[:, j].reshape(shape), f"{what}, panel {j + 1}")
            if str(lag) not in ax["title"]:
                raise Mistake(f"labels: panel {j + 1} of {what} should say its lag ({lag}) in "
                              f"its title, got {ax['title']!r}", "title each panel, e.g. f'lag {lag}'.")


register(CaseCheck(
    part="ex5-lagged-plots", points=0.5, function="plot_lagged_filters",
    draw=_draw_lagged_plots, run=_run_returning_figure, judge_cases=_judge_lagged_plots,
    seed=513, success="{function} shows each lag's filter as a frame-shaped image titled with "
                      "its lag, for {n} inputs.",
))

# ---------------------------------------------------------------------------------------
# Task 3.1 (ex5-svd): space_time_svd(W) -> (u1, v1, s1)


def _draw_svd(rng):
    cases = []
    for P, n_lags in ((30, 5), (12, 4)):
        u = rng.normal(size=P)
        v = rng.normal(size=n_lags)
        W = 3.0 * np.outer(u / np.linalg.norm(u), v / np.linalg.norm(v)) + 0.3 * rng.normal(size=(P, n_lags)) + 0.2
        cases.append(Case((W,), f"W of shape {W.shape}"))
    return cases


@reference_cache
def _svd_reference(W, center=True):
    M = W - W.mean() if center else W
    U, S, Vt = np.linalg.svd(M, full_matrices=False)
    u1, v1 = U[:, 0], Vt[0]
    flip = -1.0 if u1[np.argmax(np.abs(u1))] < 0 else 1.0
    return flip * u1, flip * v1, float(S[0]), (U, S, Vt)


def _run_triple(answer, case):
    return {"out": _tuple_data(answer(*case.args), 3)}


def _judge_svd(records, cases):
    for rec, case in zip(records, cases):
        (W,) = case.args
        P, n_lags = W.shape
        what = f"space_time_svd(…) on {case.label}"
        u_got, v_got, s_got = _items(rec["out"], "space_time_svd", "u1, v1, s1", 3)
        u = _array(u_got, (P,), f"u1 from {what}")
        v = _array(v_got, (n_lags,), f"v1 from {what}")
        s1 = _array(s_got, (), f"s1 from {what}") if s_got.kind != "other" else None
        u_ref, v_ref, s_ref, (U, S, Vt) = _svd_reference(W)
        if _close(u, u_ref) and _close(v, v_ref) and s1 is not None and _close(s1, s_ref):
            continue

        def pm(a, b):
            return _close(a, b) or _close(a, -b)

        hint = ""
        if pm(u, U[:, 1]) or pm(v, Vt[1]):
            hint = HINT_SECOND_SV
        elif pm(v, Vt[:, 0]) and not pm(v, Vt[0]):
            hint = HINT_VT_COLUMN
        elif _close(u, -u_ref) and _close(v, -v_ref):
            hint = ("fix the sign: flip u1 and v1 together so that the entry of u1 with the "
                    "largest magnitude is positive.")
        elif pm(u, _svd_reference(W, center=False)[0]):
            hint = "subtract the mean of W (W - W.mean()) before the SVD."
        elif pm(u, u_ref) and pm(v, v_ref):
            hint = "flip u1 and v1 together: their product must stay the same."
        if not pm(u, u_ref) or hint == HINT_SECOND_SV:
            raise Mistake(f"values: u1 from {what} should be {fmt(u_ref)}, got {fmt(u)}", hint)
        if not _close(v, v_ref):
            raise Mistake(f"values: v1 from {what} should be {fmt(v_ref)}, got {fmt(v)}", hint)
        if not _close(u, u_ref):
            raise Mistake(f"values: u1 from {what} should be {fmt(u_ref)}, got {fmt(u)}", hint)
        got_s = "a " + s_got.type_name if s1 is None else fmt(s1)
        raise Mistake(f"values: s1 from {what} should be {s_ref:.6g}, got {got_s}",
                      "s1 is the largest singular value, S[0].")


register(CaseCheck(
    part="ex5-svd", points=0.5, function="space_time_svd", draw=_draw_svd, run=_run_triple,
    judge_cases=_judge_svd, seed=521,
    success="{function} gives the first singular vectors of the centred W, with the sign "
            "fixed, as numpy's SVD does, on {n} matrices the check drew.",
))

# ---------------------------------------------------------------------------------------
# Task 3.2 (ex5-space-time-plots): plot_space_time(u, v, frame_shape, lag_times) -> Figure


def _draw_space_time_plots(rng):
    return [Case((rng.normal(size=20), rng.normal(size=5), (5, 4), 0.05 * np.arange(5)),
                 "u of 20 pixels (5 × 4), v over 5 lags")]


def _judge_space_time_plots(records, cases):
    for rec, case in zip(records, cases):
        u, v, shape, lag_times = case.args
        what = "the figure of plot_space_time"
        axes = _need_axes(rec, what)
        with_image = [ax for ax in axes if ax["images"]]
        if not with_image:
            raise Mistake(f"images: {what} should show u1 as an image", "use imshow on one Axes.")
        _judge_image(with_image[0]["images"][0], u.reshape(shape), f"the spatial map of {what}")
        for ax in axes:
            for ln in ax["lines"]:
                x, y = Returned.from_data(ln["x"]).array, Returned.from_data(ln["y"]).array
                if x.shape == lag_times.shape and np.allclose(x, lag_times) and y.shape == v.shape and np.allclose(y, v):
                    _need_labels(ax, f"the time-course panel of {what}")
                    break
            else:
                continue
            break
        else:
            raise Mistake(f"lines: {what} should have a line of v1 against the lag times "
                          f"({fmt(lag_times)} s)", "ax.plot(lag_times, v1) on a second Axes.")


register(CaseCheck(
    part="ex5-space-time-plots", points=0.5, function="plot_space_time",
    draw=_draw_space_time_plots, run=_run_returning_figure, judge_cases=_judge_space_time_plots,
    seed=522, success="{function} shows the spatial map as an image and the time course "
                      "against the lag times, labelled.",
))

# ---------------------------------------------------------------------------------------
# Task 4.1 (ex5-ridge): fit_ridge(c, s, dt, R, alpha) -> w


def _draw_ridge(rng):
    w = lnp.gaussian_rf(7, 1.2)
    c, _, s = lnp.sample_lnp(w, n_t=300, dt=0.1, R=20.0, v=1.0, seed=int(rng.integers(10**6)))
    return [Case((c, s, 0.1, 20.0, 10.0), "300 bins, 49 pixels, alpha = 10"),
            Case((c, s, 0.1, 20.0, 100.0), "300 bins, 49 pixels, alpha = 100")]


@reference_cache
def _ridge_reference(c, s, dt, R, alpha):
    return lnp.fit_regularized(c, s, dt, R, alpha=alpha, penalty="l2").w


def _judge_ridge(records, cases):
    for rec, case in zip(records, cases):
        c, s, dt, R, alpha = case.args
        what = f"fit_ridge(…) on {case.label}"
        w = _array(Returned.from_data(rec["out"]), (s.shape[1],), what)
        ref = _ridge_reference(c, s, dt, R, alpha)
        if np.all(np.isfinite(w)) and _rel(w, ref) < 5e-3:
            continue
        hint = ""
        if _rel(w, lnp.fit_rf(c, s, dt, R).w) < 5e-3:
            hint = "this is the unpenalised fit: add alpha * (w @ w) to −log L and 2 * alpha * w to its gradient."
        elif _rel(w, _ridge_reference(c, s, dt, R, alpha / 2)) < 5e-3:
            hint = "the penalty is α‖w‖² = alpha * (w @ w); its gradient is 2 * alpha * w (you used half of it)."
        elif _rel(w, _ridge_reference(c, s, dt, R, 2 * alpha)) < 5e-3:
            hint = "the penalty is α‖w‖² and its gradient 2 * alpha * w: yours is twice too strong."
        raise Mistake(f"values: {what} should be {fmt(ref)}, got {fmt(w)}", hint)


register(CaseCheck(
    part="ex5-ridge", points=1, function="fit_ridge", draw=_draw_ridge, run=_run_single,
    judge_cases=_judge_ridge, seed=531,
    success="{function} minimises −log L + α‖w‖² (as a ridge-penalised Poisson GLM does) "
            "on {n} problems the check drew.",
))

# ---------------------------------------------------------------------------------------
# Task 4.2 (ex5-alpha-plots): plot_filters_by_alpha(ws, alphas, frame_shape) -> Figure


def _draw_alpha_plots(rng):
    return [Case(([rng.normal(size=12) for _ in range(3)], [0.0, 10.0, 1000.0], (3, 4)),
                 "3 filters of 12 pixels (3 × 4), alphas [0, 10, 1000]")]


def _judge_alpha_plots(records, cases):
    for rec, case in zip(records, cases):
        ws, alphas, shape = case.args
        what = "the figure of plot_filters_by_alpha"
        axes = [ax for ax in _need_axes(rec, what) if ax["images"]]
        if len(axes) != len(alphas):
            raise Mistake(f"images: {what} should have one image per alpha ({len(alphas)}), "
                          f"got {len(axes)}", "one Axes per alpha, in the order given.")
        for ax, w, a in zip(axes, ws, alphas):
            _judge_image(ax["images"][0], np.asarray(w).reshape(shape), f"the panel of alpha = {a:g}")
            if f"{a:g}" not in ax["title"]:
                raise Mistake(f"labels: the panel of alpha = {a:g} should say its alpha in its "
                              f"title, got {ax['title']!r}", "title each panel, e.g. f'α = {alpha:g}'.")
        _judge_colour_scale([ax["images"][0] for ax in axes],
                            max(float(np.abs(w).max()) for w in ws), what)


register(CaseCheck(
    part="ex5-alpha-plots", points=0.5, function="plot_filters_by_alpha",
    draw=_draw_alpha_plots, run=_run_returning_figure, judge_cases=_judge_alpha_plots,
    seed=532, success="{function} shows one filter per alpha, in order, titled with its alpha.",
))
