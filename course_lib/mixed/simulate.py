r"""Responses simulated from a linear mixed model,

.. math::  y = X\beta + Zb + \varepsilon,\quad b_j = F u_j,\ u_j \sim N(0, I),\quad
           \varepsilon \sim N(0, \sigma^2 / w),

with F a factor of each term's covariance (:math:`\Sigma = F F^\top`): from a fitted model
(``LmerFit.simulate``) or from stated parameters on a design that has no data yet
(:func:`simulate_lmm`, what a power analysis draws from).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from course_lib._validate import require_frame
from course_lib.mixed.formula import parse_formula
from course_lib.mixed.frame import model_frame
from course_lib.mixed.terms import random_terms

__all__ = ["simulate_lmm", "draw_responses"]


def draw_responses(mean: np.ndarray, terms, factors, noise_sd, nsim: int, seed: int) -> np.ndarray:
    """``nsim`` responses around ``mean`` (shape (rows,)): for each term new random effects
    ``u @ F.T`` per level (``factors``: one q x q F per term), then noise of SD ``noise_sd``
    (a number or one per row). Returns shape (rows, nsim)."""
    rng = np.random.default_rng(seed)
    out = np.empty((len(mean), nsim))
    for k in range(nsim):
        zb = np.zeros(len(mean))
        for t, f in zip(terms, factors, strict=True):
            b = rng.standard_normal((t.n_levels, t.q)) @ f.T
            zb += np.einsum("nq,nq->n", t.Z, b[t.codes])
        out[:, k] = mean + zb + rng.standard_normal(len(mean)) * noise_sd
    return out


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
    return draw_responses(frame.X @ beta + frame.offset, terms, factors, sigma, nsim, seed)
