r"""Power by simulation for linear mixed models, in the manner of R's simr.

A study's power to detect a fixed effect is the probability that its test rejects at level
alpha when the effect has a stated size. For a mixed model it has no closed form worth
trusting with few groups, so it is estimated by simulation: draw data sets from the model
with stated parameters on the planned design,

.. math::  y = X\beta + Zb + \varepsilon,\quad b \sim N(0, \Sigma),\quad
           \varepsilon \sim N(0, \sigma^2 I),

fit the model to each, test the effect (Satterthwaite's t-test by default, as lmerTest), and
count rejections. The proportion is binomial, so it comes with a Clopper-Pearson interval.
Each data set reuses the first fit's structure (``LmerFit.refit``), so a thousand fits of a
chapter-sized model take seconds.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
import scipy.stats

from course_lib._validate import require_frame
from course_lib.mixed.fit import lmer
from course_lib.mixed.formula import parse_formula
from course_lib.mixed.frame import model_frame
from course_lib.mixed.terms import random_terms

__all__ = ["simulate_lmm", "power_sim", "power_curve", "power_chart"]


def simulate_lmm(formula: str, design: pd.DataFrame, fixef: dict, varcorr: dict,
                 sigma: float, nsim: int = 1, seed: int = 0) -> np.ndarray:
    """Responses simulated from stated parameters on a design that has no data yet.

    Parameters
    ----------
    formula : str
        The lme4 formula; its response column need not exist in ``design``.
    design : pandas.DataFrame
        One row per planned observation, with every predictor and grouping column.
    fixef : dict
        Fixed effects by lme4 name, e.g. ``{"(Intercept)": 1.0, "stim": 0.2}``.
    varcorr : dict or list
        Covariance matrix (q x q, in the term's column order) of each random term, by
        grouping factor name, e.g. ``{"mouse": [[0.25, 0.0], [0.0, 0.01]]}``; or a list
        with one matrix per term in lme4's term order (terms sharing a factor).
    sigma : float
        Residual standard deviation.
    nsim : int
        Number of data sets.
    seed : int

    Returns
    -------
    numpy.ndarray, shape (rows, nsim)
    """
    require_frame(design, "design")
    parsed = parse_formula(formula)
    frame_data = design.assign(**{parsed.response: 0.0}) \
        if parsed.response not in design.columns else design
    frame = model_frame(parsed, frame_data)
    terms = random_terms(parsed.random, frame.data)
    missing = [n for n in frame.names if n not in fixef]
    if missing or set(fixef) - set(frame.names):
        raise ValueError(f"fixef must give exactly the model's fixed effects "
                         f"{frame.names}; got {sorted(fixef)}")
    beta = np.array([fixef[n] for n in frame.names], dtype=float)
    factors = []
    if isinstance(varcorr, list | tuple) and len(varcorr) != len(terms):
        raise ValueError(f"varcorr lists {len(varcorr)} matrices for {len(terms)} terms")
    for k, t in enumerate(terms):
        if isinstance(varcorr, list | tuple):
            cov = varcorr[k]
        elif t.term.group not in varcorr:
            raise ValueError(f"varcorr has no covariance for '{t.term.group}'; give a "
                             f"{t.q} x {t.q} matrix for {t.names}")
        else:
            cov = varcorr[t.term.group]
        cov = np.atleast_2d(np.asarray(cov, dtype=float))
        if cov.shape != (t.q, t.q):
            raise ValueError(f"varcorr['{t.term.group}'] must be {t.q} x {t.q} "
                             f"({t.names}), got shape {cov.shape}")
        vals, vecs = np.linalg.eigh(cov)
        if vals.min() < -1e-10 * max(vals.max(), 1e-300):
            raise ValueError(f"varcorr['{t.term.group}'] is not a covariance matrix "
                             f"(eigenvalues {vals.round(6).tolist()})")
        factors.append(vecs * np.sqrt(np.clip(vals, 0, None)))
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    rng = np.random.default_rng(seed)
    mean = frame.X @ beta + frame.offset
    out = np.empty((len(frame.data), nsim))
    for k in range(nsim):
        zb = np.zeros(len(mean))
        for t, f in zip(terms, factors, strict=True):
            b = rng.standard_normal((t.n_levels, t.q)) @ f.T
            zb += np.einsum("nq,nq->n", t.Z, b[t.codes])
        out[:, k] = mean + zb + rng.normal(0.0, sigma, len(mean))
    return out


def _p_value(fit, term: str, method: str) -> float:
    if term not in fit.fixef.index:
        raise ValueError(f"term {term!r} is not a fixed effect of the model "
                         f"({list(fit.fixef.index)})")
    if method == "satterthwaite":
        return float(fit.coef_table().loc[term, "Pr(>|t|)"])
    if method == "z":
        z = fit.fixef[term] / fit.fixef_se[term]
        return float(2 * scipy.stats.norm.sf(abs(z)))
    raise ValueError(f"method must be 'satterthwaite' or 'z', got {method!r}")


def power_sim(formula: str, design: pd.DataFrame, fixef: dict, varcorr: dict, sigma: float,
              term: str, nsim: int = 200, alpha: float = 0.05, method: str = "satterthwaite",
              seed: int = 0) -> dict:
    """Power of the test of one fixed effect on one design (simr's ``powerSim``).

    Returns
    -------
    dict
        ``power`` (share of data sets with p < alpha), ``lower`` and ``upper`` (95 %
        Clopper-Pearson interval), ``successes``, ``nsim``, ``singular`` (share of singular
        fits, worth knowing: a singular fit's test is not to be trusted blindly).
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
    if not isinstance(nsim, int | np.integer) or nsim < 1:
        raise ValueError(f"nsim must be a positive integer, got {nsim!r}")
    parsed = parse_formula(formula)
    ys = simulate_lmm(formula, design, fixef, varcorr, sigma, nsim, seed)
    data = design.assign(**{parsed.response: ys[:, 0]})
    hits, singular = 0, 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # singular fits are counted, not warned one by one
        fit = lmer(formula, data)
        for k in range(nsim):
            f = fit if k == 0 else fit.refit(ys[:, k])
            hits += _p_value(f, term, method) < alpha
            singular += f.is_singular
    ci = scipy.stats.binomtest(int(hits), int(nsim)).proportion_ci(0.95, method="exact")
    return {"power": hits / nsim, "lower": ci.low, "upper": ci.high, "successes": int(hits),
            "nsim": int(nsim), "singular": singular / nsim}


def power_curve(formula: str, make_design: Callable[[int, int], pd.DataFrame],
                n_groups, n_per_group, fixef: dict, varcorr: dict, sigma: float, term: str,
                nsim: int = 200, alpha: float = 0.05, method: str = "satterthwaite",
                seed: int = 0, progress: bool = True) -> pd.DataFrame:
    """Power over a grid of numbers of groups x observations per group (simr's
    ``powerCurve``), as a tidy DataFrame.

    Parameters
    ----------
    make_design : callable (n_groups, n_per_group) -> DataFrame
        Builds the planned design (predictors and grouping columns) for one cell.
    n_groups, n_per_group : sequences of int
        The grid.

    Returns
    -------
    pandas.DataFrame
        Columns n_groups, n_per_group, power, lower, upper, successes, nsim, singular.
    """
    cells = [(g, m) for g in n_groups for m in n_per_group]
    iterator = cells
    if progress:
        from tqdm.auto import tqdm
        iterator = tqdm(cells, desc="power", unit="design")
    rows = []
    for i, (g, m) in enumerate(iterator):
        res = power_sim(formula, make_design(int(g), int(m)), fixef, varcorr, sigma, term,
                        nsim, alpha, method, seed + 7919 * i)
        rows.append({"n_groups": int(g), "n_per_group": int(m), **res})
    return pd.DataFrame(rows)


def power_chart(curve: pd.DataFrame, title: str = "Power by simulation"):
    """Power curves: power against the number of groups, one line per observations per
    group, with the Clopper-Pearson intervals as error bars (an Altair chart)."""
    import altair as alt
    base = alt.Chart(curve).encode(
        x=alt.X("n_groups:Q", title="number of groups"),
        color=alt.Color("n_per_group:O", title="per group"))
    lines = base.mark_line(point=True).encode(
        y=alt.Y("power:Q", title="power", scale=alt.Scale(domain=[0, 1])),
        tooltip=["n_groups", "n_per_group", alt.Tooltip("power:Q", format=".2f")])
    bars = base.mark_errorbar().encode(y="lower:Q", y2="upper:Q")
    rule = alt.Chart(pd.DataFrame({"y": [0.8]})).mark_rule(strokeDash=[4, 4]).encode(y="y:Q")
    return (bars + lines + rule).properties(title=title, width=420, height=280)
