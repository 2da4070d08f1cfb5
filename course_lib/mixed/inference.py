r"""Small-sample inference for the fixed effects of a linear mixed model (lmerTest's).

With few groups, a Wald z-test of a fixed effect is overconfident: the standard error is
computed as if the variance parameters were known. Satterthwaite's method gives the
t-statistic of a contrast L beta a t distribution with

.. math::

    \nu = \frac{2\, (L V_\beta L^T)^2}{g^T A\, g}, \qquad
    g_i = L \frac{\partial V_\beta}{\partial \varphi_i} L^T,

degrees of freedom, where V_beta = sigma^2 (X^T V^-1 X)^-1 is the covariance of beta-hat as a
function of the variance parameters phi = (theta, sigma), and A = 2 H^-1 their asymptotic
covariance, H the Hessian of the (REML or ML) deviance in phi at the estimate. A q-row L
(an F test of a factor with q + 1 levels) is decomposed into q independent t-statistics by
the eigenvectors of L V_beta L^T, as in lmerTest's ``contestMD``.

The derivatives are numerical, as lmerTest's (numDeriv): central differences refined by
Richardson extrapolation, which agree with numDeriv to many digits.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.stats

#: numDeriv's defaults: relative step d (1e-4 for jacobian, 0.1 for hessian), absolute
#: step eps near zero, r extrapolations
_EPS, _R, _ZERO_TOL = 1e-4, 4, np.sqrt(np.finfo(float).eps / 7e-7)


def _steps(x: np.ndarray, d: float) -> np.ndarray:
    return d * np.abs(x) + _EPS * (np.abs(x) < _ZERO_TOL)


def _richardson(values: list[np.ndarray]) -> np.ndarray:
    """Richardson extrapolation of estimates made at steps h, h/2, h/4, ... (error O(h^2))."""
    a = list(values)
    for m in range(1, len(a)):
        a = [(a[k + 1] * 4 ** m - a[k]) / (4 ** m - 1) for k in range(len(a) - 1)]
    return a[0]


def jacobian(f, x: np.ndarray) -> np.ndarray:
    """d f / d x_i for an array-valued f, stacked on the last axis."""
    h0 = _steps(x, 1e-4)
    out = []
    for i in range(len(x)):
        ests = []
        for k in range(_R):
            e = np.zeros(len(x))
            e[i] = h0[i] / 2 ** k
            ests.append((np.asarray(f(x + e)) - np.asarray(f(x - e))) / (2 * e[i]))
        out.append(_richardson(ests))
    return np.stack(out, axis=-1)


def hessian(f, x: np.ndarray) -> np.ndarray:
    """Hessian of a scalar f by central second differences with Richardson extrapolation."""
    k = len(x)
    h0 = _steps(x, 0.1)
    f0 = f(x)
    H = np.zeros((k, k))
    for i in range(k):
        for j in range(i + 1):
            ests = []
            for r in range(_R):
                hi, hj = h0[i] / 2 ** r, h0[j] / 2 ** r
                ei, ej = np.zeros(k), np.zeros(k)
                ei[i], ej[j] = hi, hj
                if i == j:
                    ests.append((f(x + ei) - 2 * f0 + f(x - ei)) / hi ** 2)
                else:
                    ests.append((f(x + ei + ej) - f(x + ei - ej) - f(x - ei + ej)
                                 + f(x - ei - ej)) / (4 * hi * hj))
            H[i, j] = H[j, i] = _richardson(ests)
    return H


class Satterthwaite:
    """The pieces of Satterthwaite's approximation for one fit (lmerTest's
    ``as_lmerModLT``): A = cov(phi-hat) and the Jacobian of V_beta in phi."""

    def __init__(self, fit):
        pls, reml = fit.pls, fit.REML
        n, p = pls.n, pls.p
        phi = np.append(fit.theta, fit.sigma)

        def deviance(varpar):  # lmerTest's devfun_vp: the deviance with sigma not profiled
            f = pls.factor(varpar[:-1])
            s2 = varpar[-1] ** 2
            dev = f.ldL2 - pls.sum_log_w + f.r2 / s2 + n * np.log(2 * np.pi * s2)
            return dev + f.ldRX2 - p * np.log(2 * np.pi * s2) if reml else dev

        def cov_beta(varpar):
            return varpar[-1] ** 2 * pls.rx_inverse(pls.factor(varpar[:-1]))

        H = hessian(deviance, phi)
        vals, vecs = np.linalg.eigh(H)
        pos = vals > 1e-8
        # Moore-Penrose inverse, as lmerTest (a boundary fit has a zero eigenvalue)
        self.A = 2 * (vecs[:, pos] / vals[pos]) @ vecs[:, pos].T
        self.jac = jacobian(cov_beta, phi)  # (p, p, k)
        self.vcov = fit.vcov.to_numpy()
        self.beta = fit.fixef.to_numpy()

    def df(self, L: np.ndarray) -> float:
        """Denominator df of the t-statistic of one contrast L (p,)."""
        var = L @ self.vcov @ L
        g = np.einsum("i,ijk,j->k", L, self.jac, L)
        return float(2 * var ** 2 / (g @ self.A @ g))

    def t_test(self, L: np.ndarray) -> tuple[float, float, float, float, float]:
        est = float(L @ self.beta)
        se = float(np.sqrt(L @ self.vcov @ L))
        df = self.df(L)
        t = est / se
        return est, se, df, t, float(2 * scipy.stats.t.sf(abs(t), df))

    def f_test(self, L: np.ndarray) -> tuple[float, int, float, float]:
        """F value, numerator df, denominator df and p of the joint test L beta = 0."""
        L = np.atleast_2d(L)
        vals, vecs = np.linalg.eigh(L @ self.vcov @ L.T)
        order = np.argsort(vals)[::-1]
        vals, vecs = vals[order], vecs[:, order]
        keep = vals > max(vals[0] * np.finfo(float).eps ** 0.5, 0)
        q = int(keep.sum())
        PtL = vecs[:, keep].T @ L
        t2 = (PtL @ self.beta) ** 2 / vals[keep]
        F = float(t2.sum() / q)
        nus = np.array([self.df(row) for row in PtL])
        ddf = _f_ddf(nus)
        return F, q, ddf, float(scipy.stats.f.sf(F, q, ddf))


def _f_ddf(nu: np.ndarray, tol: float = 1e-8) -> float:
    """lmerTest's ``get_Fstat_ddf``: the df of a mean of q squared t-statistics."""
    if len(nu) == 1:
        return float(nu[0])
    if np.all(np.abs(np.diff(nu)) < tol):
        return float(np.mean(nu))
    if np.any(nu <= 2):
        return 2.0
    E = np.sum(nu / (nu - 2))
    return float(2 * E / (E - len(nu)))


def coef_table(fit, ddf: str = "Satterthwaite") -> pd.DataFrame:
    """lmerTest's table of fixed effects: Estimate, Std. Error, df, t value, Pr(>|t|).

    Parameters
    ----------
    fit : LmerFit
    ddf : {"Satterthwaite", "Kenward-Roger", "lme4"}
        "Kenward-Roger" adjusts the standard errors too (REML fits; see
        :mod:`course_lib.mixed.kenward_roger`); "lme4" gives lme4's own table (no df, no
        p-value).
    """
    if ddf == "lme4":
        return pd.DataFrame({"Estimate": fit.fixef, "Std. Error": fit.fixef_se,
                             "t value": fit.fixef / fit.fixef_se})
    if ddf == "Kenward-Roger":
        from course_lib.mixed.kenward_roger import coef_table as kr_table
        return kr_table(fit)
    if ddf != "Satterthwaite":
        raise ValueError(f"ddf must be 'Satterthwaite' or 'lme4' or 'Kenward-Roger', got "
                         f"{ddf!r}")
    s = fit._satterthwaite
    rows = [s.t_test(row) for row in np.eye(len(fit.fixef))]
    return pd.DataFrame(rows, index=fit.fixef.index,
                        columns=["Estimate", "Std. Error", "df", "t value", "Pr(>|t|)"])


def anova_table(fit, ddf: str = "Satterthwaite") -> pd.DataFrame:
    """lmerTest's type III ANOVA table: one F test per term of the fixed part, with
    Satterthwaite's or Kenward-Roger's (REML fits) denominator df.

    Each term is tested by the joint hypothesis that all its coefficients are zero, which is
    lmerTest's type III test for every term not contained in an interaction (a multi-level
    factor included). A term contained in an interaction (``a`` beside ``a:b``) has a type
    III hypothesis that depends on more than its own columns; it is refused with a message.

    Returns
    -------
    pandas.DataFrame
        Columns Sum Sq, Mean Sq, NumDF, DenDF, F value, Pr(>F), one row per term.
    """
    if ddf not in ("Satterthwaite", "Kenward-Roger"):
        raise ValueError(f"ddf must be 'Satterthwaite' or 'Kenward-Roger', got {ddf!r}")
    terms = _term_columns(fit)
    if ddf == "Kenward-Roger":
        from course_lib.mixed.kenward_roger import KenwardRoger
        s = KenwardRoger(fit)
    else:
        s = fit._satterthwaite
    rows, names = [], []
    for term, cols in terms.items():
        contained = [other for other in terms if other != term
                     and set(term.split(":")) < set(other.split(":"))]
        if contained:
            raise ValueError(
                f"the term '{term}' is contained in {contained}; its type III hypothesis is "
                f"not implemented here. Test the interaction, or refit without it")
        L = np.zeros((len(cols), len(fit.fixef)))
        L[np.arange(len(cols)), cols] = 1.0
        F, q, den, p = s.f_test(L)
        ms = F * fit.sigma ** 2
        rows.append([ms * q, ms, q, den, F, p])
        names.append(term)
    return pd.DataFrame(rows, index=names, columns=["Sum Sq", "Mean Sq", "NumDF", "DenDF",
                                                    "F value", "Pr(>F)"])


def _term_columns(fit) -> dict[str, list[int]]:
    """Columns of X that belong to each term of the fixed part (the intercept excluded)."""
    design = fit.frame.design
    kept = {int(k): pos for pos, k in enumerate(fit.frame.keep)}
    if not hasattr(design, "info"):  # numeric columns only: one column per term
        return {n: [kept[k]] for k, n in enumerate(design.names)
                if n != "(Intercept)" and k in kept}
    info = design.info
    out = {}
    for term in info.terms:
        name = term.name()
        if name == "Intercept":
            continue
        sl = info.term_slices[term]
        cols = sorted(kept[fit.frame.design.order.index(c)] for c in range(sl.start, sl.stop)
                      if fit.frame.design.order.index(c) in kept)
        if cols:
            out[_r_term_name(name)] = cols
    return out


def _r_term_name(name: str) -> str:
    return name.replace("**", "^").replace(" ", "")
