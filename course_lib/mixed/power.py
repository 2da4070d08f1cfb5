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

import pandas as pd
import scipy.stats

from course_lib._validate import require_positive_int
from course_lib.mixed.fit import lmer
from course_lib.mixed.formula import parse_formula
from course_lib.mixed.simulate import simulate_lmm

__all__ = ["simulate_lmm", "power_sim", "power_curve", "power_chart"]




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
    require_positive_int(nsim, "nsim")
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
