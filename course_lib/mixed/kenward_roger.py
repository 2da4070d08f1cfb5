r"""Kenward-Roger's small-sample t tests of fixed effects (pbkrtest's, as lmerTest uses it).

Satterthwaite's method (:mod:`course_lib.mixed.inference`) keeps the standard error of a
REML fit and corrects only the degrees of freedom. Kenward and Roger (1997) also inflate the
covariance of beta-hat for the uncertainty of the variance parameters, and choose the
degrees of freedom of the scaled Wald statistic by matching moments. With the marginal
covariance of y written as a linear function of the covariance parameters,

.. math::

    \Sigma = \sum_r \gamma_r G_r, \qquad \Phi = (X^T \Sigma^{-1} X)^{-1},

(gamma_r: every variance and covariance of each random term, then sigma^2; G_r the matching
n x n patterns of Z, and I for sigma^2), and

.. math::

    P_r = -X^T \Sigma^{-1} G_r \Sigma^{-1} X, \quad
    Q_{rs} = X^T \Sigma^{-1} G_r \Sigma^{-1} G_s \Sigma^{-1} X, \quad
    I_{rs} = \mathrm{tr}(\Sigma^{-1} G_r \Sigma^{-1} G_s) - 2\,\mathrm{tr}(\Phi Q_{rs})
             + \mathrm{tr}(\Phi P_r \Phi P_s),

W = 2 I^{-1} (the covariance of gamma-hat), the adjusted covariance is
Phi_A = Phi + 2 Phi U Phi with U = sum_rs W_rs (Q_rs - P_r Phi P_s), and a contrast L
(one coefficient in ``coef_table``) gets the df of pbkrtest's ``Lb_ddf`` from
A1 = sum W_rs tr(T P_r) tr(T P_s), A2 = sum W_rs tr(T P_r T P_s), T = Theta Phi,
Theta = L^T (L Phi L^T)^-1 L. A q-row L (a type III F test of a term) is tested by the
Wald statistic on Phi_A over q, scaled as pbkrtest's ``KRmodcomp``, as lmerTest's ``anova``
does. The code follows pbkrtest 0.5's ``vcovAdj``, ``Lb_ddf`` and ``KRmodcomp``
step by step (no Python library implements Kenward-Roger for mixed models), with dense
n x n matrices as pbkrtest does, so it is refused above ``KR_MAX_ROWS`` rows.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.stats

#: Largest number of rows for the dense n x n computation (a few seconds at this size).
KR_MAX_ROWS = 1500


def _patterns(fit) -> tuple[list[np.ndarray], np.ndarray]:
    """The G_r (n x n) and the covariance parameters gamma_r, sigma^2 last."""
    n = fit.nobs
    G, gamma = [], []
    for t, lam in zip(fit.terms, fit._lambda, strict=True):
        psi = fit.sigma ** 2 * lam @ lam.T
        same = t.codes[:, None] == t.codes[None, :]
        for i in range(t.q):
            for j in range(i + 1):
                outer = np.outer(t.Z[:, i], t.Z[:, j])
                G.append(same * (outer if i == j else outer + outer.T))
                gamma.append(psi[i, j])
    G.append(np.eye(n))
    gamma.append(fit.sigma ** 2)
    return G, np.array(gamma)


def kenward_roger(fit) -> dict:
    """Phi (lme4's vcov), the adjusted Phi_A, and the P_r and W that the df need."""
    if not fit.REML:
        raise ValueError("Kenward-Roger's method is defined for REML fits; refit with "
                         "REML=True (or use ddf='Satterthwaite')")
    if fit.frame.has_weights:
        raise ValueError("Kenward-Roger's method is not available with prior weights; use "
                         "ddf='Satterthwaite'")
    if fit.nobs > KR_MAX_ROWS:
        raise ValueError(f"Kenward-Roger here uses dense n x n matrices (as pbkrtest does); "
                         f"{fit.nobs} rows is over the limit of {KR_MAX_ROWS}: use "
                         f"ddf='Satterthwaite'")
    X = fit.X
    G, gamma = _patterns(fit)
    sigma = sum(g * Gr for g, Gr in zip(gamma, G, strict=True))
    S = scipy.linalg.cho_solve(scipy.linalg.cho_factor(sigma), np.eye(len(sigma)))
    SX = S @ X
    Phi = np.linalg.inv(X.T @ SX)
    HH = [Gr @ S for Gr in G]
    OO = [H @ X for H in HH]
    k = len(G)
    P = [-(O.T @ SX) for O in OO]
    Q = {(r, s): OO[r].T @ S @ OO[s] for r in range(k) for s in range(r, k)}
    info = np.empty((k, k))
    for r in range(k):
        for s in range(r, k):
            info[r, s] = info[s, r] = (np.sum(HH[r] * HH[s].T) - 2 * np.sum(Phi * Q[r, s])
                                       + np.sum((Phi @ P[r]) * (P[s] @ Phi)))
    W = 2 * np.linalg.pinv(info) if min(abs(np.linalg.eigvalsh(info))) <= 1e-10 \
        else 2 * np.linalg.inv(info)
    U = np.zeros_like(Phi)
    for r in range(k):
        for s in range(r + 1, k):
            U += W[r, s] * (Q[r, s] - P[r] @ Phi @ P[s])
    U = U + U.T
    for r in range(k):
        U += W[r, r] * (Q[r, r] - P[r] @ Phi @ P[r])
    return {"Phi": Phi, "PhiA": Phi + 2 * Phi @ U @ Phi, "P": P, "W": W}


def _moments(L: np.ndarray, kr: dict) -> tuple[float, float]:
    """The denominator df of the rows L and the scaling of the F statistic, as pbkrtest's
    ``KRmodcomp`` (its ``Lb_ddf`` is the same df for one row)."""
    V0, P, W = kr["Phi"], kr["P"], kr["W"]
    theta = L.T @ np.linalg.solve(L @ V0 @ L.T, L)
    TV = theta @ V0
    u = [TV @ Pr @ V0 for Pr in P]
    a1 = a2 = 0.0
    for i in range(len(P)):
        for j in range(i, len(P)):
            e = 1.0 if i == j else 2.0
            a1 += e * W[i, j] * np.trace(u[i]) * np.trace(u[j])
            a2 += e * W[i, j] * np.sum(u[i] * u[j].T)
    q = L.shape[0]
    B = (a1 + 6 * a2) / (2 * q)
    g = ((q + 1) * a1 - (q + 4) * a2) / ((q + 2) * a2)
    c1 = g / (3 * q + 2 * (1 - g))
    c2 = (q - g) / (3 * q + 2 * (1 - g))
    c3 = (q + 2 - g) / (3 * q + 2 * (1 - g))
    v0 = 1 + c1 * B
    v0 = 0.0 if abs(v0) < 1e-10 else v0
    v1, v2 = 1 - c2 * B, 1 - c3 * B
    ratio = (1 - a2 / q) / v1 if v1 != 0 else 0.0  # pbkrtest's .divZero
    rho = ratio ** 2 * v0 / (q * v2)
    df2 = 4 + (q + 2) / (q * rho - 1)
    scaling = 1.0 if abs(df2 - 2) < 1e-2 else df2 * (1 - a2 / q) / (df2 - 2)
    return float(df2), float(scaling)


def ddf(L: np.ndarray, kr: dict) -> float:
    """pbkrtest's ``Lb_ddf``: Kenward-Roger's denominator df of the contrast rows L."""
    return _moments(np.atleast_2d(L), kr)[0]


def f_test(L: np.ndarray, beta: np.ndarray, kr: dict) -> tuple[float, int, float, float]:
    """F value, numerator df, denominator df and p of the joint test L beta = 0, as
    lmerTest's ``anova(ddf = "Kenward-Roger")``: the Wald statistic on Phi_A over q, scaled
    as pbkrtest's ``KRmodcomp`` for q > 1 rows, the square of the t value for one row."""
    L = np.atleast_2d(L)
    q = L.shape[0]
    Lb = L @ beta
    wald = float(Lb @ np.linalg.solve(L @ kr["PhiA"] @ L.T, Lb))
    df2, scaling = _moments(L, kr)
    F = wald / q * (scaling if q > 1 else 1.0)
    return F, q, df2, float(scipy.stats.f.sf(F, q, df2))


class KenwardRoger:
    """The F tests of one fit (the interface of inference.Satterthwaite's ``f_test``)."""

    def __init__(self, fit):
        self.kr = kenward_roger(fit)
        self.beta = fit.fixef.to_numpy()

    def f_test(self, L: np.ndarray) -> tuple[float, int, float, float]:
        return f_test(L, self.beta, self.kr)


def coef_table(fit) -> pd.DataFrame:
    """lmerTest's ``coef(summary(fit, ddf = "Kenward-Roger"))``: Estimate, Std. Error
    (from the adjusted covariance Phi_A), df, t value, Pr(>|t|)."""
    kr = kenward_roger(fit)
    beta = fit.fixef.to_numpy()
    se = np.sqrt(np.diag(kr["PhiA"]))
    df = np.array([ddf(row, kr) for row in np.eye(len(beta))])
    t = beta / se
    return pd.DataFrame({"Estimate": beta, "Std. Error": se, "df": df, "t value": t,
                         "Pr(>|t|)": 2 * scipy.stats.t.sf(np.abs(t), df)},
                        index=fit.fixef.index)
