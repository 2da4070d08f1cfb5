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

The type III ANOVA table (``anova_table``) tests each term by lmerTest's type III hypothesis
(``type3_contrasts``, after lmerTest's ``get_contrasts_type3``): for a term contained in
another (``a`` in ``a:b``; a covariate ``x`` in ``a:x``), the part of its columns orthogonal
to the terms that contain it, computed on the rank-deficient design of every level, so that
F does not depend on the reference level of a factor.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import patsy
import scipy.stats

from course_lib.mixed.frame import _independent_columns, _lme4_name

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

    Each term is tested by lmerTest's type III hypothesis (:func:`type3_contrasts`): all its
    coefficients zero for a term not contained in an interaction, and for a term contained
    in one (``a`` beside ``a:b``) the part of its columns orthogonal to the terms that
    contain it, so that the test does not depend on the reference level.

    Returns
    -------
    pandas.DataFrame
        Columns Sum Sq, Mean Sq, NumDF, DenDF, F value, Pr(>F), one row per term, in R's
        order of terms (by degree, then as written).
    """
    if ddf not in ("Satterthwaite", "Kenward-Roger"):
        raise ValueError(f"ddf must be 'Satterthwaite' or 'Kenward-Roger', got {ddf!r}")
    hypotheses = type3_contrasts(fit)
    if ddf == "Kenward-Roger":
        from course_lib.mixed.kenward_roger import KenwardRoger
        s = KenwardRoger(fit)
    else:
        s = fit._satterthwaite
    rows, names = [], []
    for term, L in hypotheses.items():
        F, q, den, p = s.f_test(L)
        ms = F * fit.sigma ** 2
        if ddf == "Kenward-Roger":  # lmerTest's Mean Sq: the Wald F before KR's scaling
            Lb = L @ s.beta
            ms = float(Lb @ np.linalg.solve(L @ s.kr["PhiA"] @ L.T, Lb)) / q * fit.sigma ** 2
        rows.append([ms * q, ms, q, den, F, p])
        names.append(term)
    return pd.DataFrame(rows, index=names, columns=["Sum Sq", "Mean Sq", "NumDF", "DenDF",
                                                    "F value", "Pr(>F)"])


@dataclass(frozen=True)
class _Term:
    """One term of the fixed part: its R label, its columns in the fit's X, its degree, the
    variables R codes with contrasts in it (code 1 of R's ``attr(terms, "factors")``) with
    the numeric ones (one-column numeric covariates) among them, and patsy's term."""

    name: str
    cols: list[int]
    degree: int
    variables: frozenset
    numeric: frozenset
    patsy_term: object = field(default=None, compare=False)

    def contained_in(self, other: _Term) -> bool:
        """lmerTest's ``term_contain`` (SAS's definition on R's coded variables): ``other``
        has every variable of this term and more, and the same numeric covariates."""
        return (self.variables < other.variables) and self.numeric == other.numeric


def _terms(fit) -> list[_Term]:
    """The terms of the fixed part (the intercept excluded) in R's order: by degree, then as
    written (the order of their first column in R's model matrix)."""
    design = fit.frame.design
    kept = {int(k): pos for pos, k in enumerate(fit.frame.keep)}
    if not hasattr(design, "info"):  # numeric columns only: one column per term
        return [_Term(n, [kept[k]], 1, frozenset([n]), frozenset([n]))
                for k, n in enumerate(design.names) if n != "(Intercept)" and k in kept]
    info = design.info
    r_index = {c: design.order.index(c) for c in range(len(design.order))}
    rank = _variable_rank(fit)
    found = []
    for term in info.terms:
        if not term.factors:
            continue
        sl = info.term_slices[term]
        rcols = sorted(r_index[c] for c in range(sl.start, sl.stop))
        names = sorted((f.name() for f in term.factors), key=lambda v: rank.get(v, len(rank)))
        found.append((rcols[0], term, names, [kept[c] for c in rcols if c in kept]))
    found.sort(key=lambda item: item[0])
    numeric = {f.name() for f, fi in info.factor_infos.items()
               if fi.type == "numerical" and fi.num_columns == 1}
    out = []
    for i, (_, term, names, cols) in enumerate(found):
        # R's TermCode: a variable is coded with contrasts (1) when the term without it is
        # empty or lies within a term before this one; otherwise by indicators (2), and
        # lmerTest's containment then ignores it
        before = [set(t.factors) for _, t, _, _ in found[:i]]
        coded = frozenset(f.name() for f in term.factors
                          if not (rest := set(term.factors) - {f})
                          or any(rest <= b for b in before))
        out.append(_Term(_r_term_name(":".join(names)), cols, len(term.factors), coded,
                         coded & numeric, term))
    return out


def _variable_rank(fit) -> dict[str, int]:
    """R's order of the variables: as they first appear in the formula (R names a term, and
    picks the factor a model without intercept codes by indicators, in this order)."""
    rank: dict = {}
    for term in patsy.ModelDesc.from_formula(fit.parsed.fixed).rhs_termlist:
        for factor in term.factors:
            rank.setdefault(factor.name(), len(rank))
    return rank


def _zapsmall(x: np.ndarray, digits: int = 7) -> np.ndarray:
    """R's ``zapsmall``: round to ``digits`` decimals relative to the largest entry."""
    mx = np.max(np.abs(x)) if x.size else 0.0
    if not mx > 0:
        return x
    return np.round(x, max(0, digits - int(np.ceil(np.log10(mx)))))


def _full_columns(fit, terms: list[_Term]) -> tuple[np.ndarray, list[str], list, np.ndarray]:
    """lmerTest's ``get_rdX``: the rank-deficient model matrix with every level of every
    factor in every term (R's ``model.matrix(~ 0 + term)`` per term) and the intercept.

    Returns the matrix (n, m), its column names (patsy's style), the patsy term of each
    column (None for the intercept), and which columns R's treatment-coded model matrix has
    (each factor the term codes with contrasts away from its first level; in a model without
    intercept the first factor of the first term with one keeps every level, as in R).
    """
    info, data = fit.frame.design.info, fit.frame.data
    n = len(data)
    coded = {t.patsy_term: t.variables for t in terms}
    has_intercept = any(not term.factors for term in info.terms)
    full_factor = None
    if not has_intercept:  # R's modelmatrix: the first factor of the first term with one
        rank = _variable_rank(fit)
        for t in terms:
            cats = [f for f in t.patsy_term.factors if info.factor_infos[f].type
                    == "categorical" and f.name() in t.variables]
            if cats:
                full_factor = (t.patsy_term, min(cats, key=lambda f: rank.get(f.name(), 0)))
                break
    blocks, names, owner, treatment = [], [], [], []
    for term in info.terms:
        cols, labs, keep = np.ones((n, 1)), [""], [True]
        for factor in term.factors:
            fi = info.factor_infos[factor]
            values = factor.eval(fi.state, data)
            if fi.type == "categorical":
                codes = np.asarray(patsy.categorical.categorical_to_int(
                    values, fi.categories, patsy.NAAction(NA_types=[]), origin=factor))
                m = (codes[:, None] == np.arange(len(fi.categories))[None, :]).astype(float)
                lab = [f"{factor.name()}[{c}]" for c in fi.categories]
                contrasts = (factor.name() in coded.get(term, ())
                             and full_factor != (term, factor))
                ok = [k > 0 or not contrasts for k in range(len(fi.categories))]
            else:
                m = np.asarray(values, dtype=float).reshape(n, -1)
                lab = ([factor.name()] if m.shape[1] == 1 else
                       [f"{factor.name()}[{i}]" for i in range(m.shape[1])])
                ok = [True] * m.shape[1]
            cols = (cols[:, :, None] * m[:, None, :]).reshape(n, -1)
            labs = [f"{a}:{b}" if a else b for a in labs for b in lab]
            keep = [a and b for a in keep for b in ok]
        blocks.append(cols)
        names.extend(labs if term.factors else ["Intercept"])
        owner.extend([term if term.factors else None] * cols.shape[1])
        treatment.extend(keep)
    return np.column_stack(blocks), names, owner, np.array(treatment)


def type3_contrasts(fit) -> dict[str, np.ndarray]:
    r"""lmerTest's type III hypothesis matrices, one per term of the fixed part.

    lmerTest's ``get_contrasts_type3`` and ``extract_contrasts_type3`` (contrast_utils.R),
    step by step: with R the rank-deficient matrix of every level of every term and X_t
    R's treatment-coded model matrix, its redundant columns dropped (both from
    :func:`_full_columns`), the rows of M = (X_t^+ R)^T express each column of R in the
    coefficients of X_t. Terms are taken from the highest degree down; the columns of M that
    belong to a term contained in others (:meth:`_Term.contained_in`) are replaced by their
    residuals on the columns of the terms that contain it. The hypothesis of a term is its
    columns of M, on the rows of R that are columns of X_t, transposed, rows that vanish
    dropped; it is carried to the fit's own coefficients by X_t^+ X (the identity for R's
    default coding), so that the hypothesis does not depend on the coding. A term contained
    in none is tested on its own coefficients. Rounding follows R's ``zapsmall`` where
    lmerTest applies it.

    Returns
    -------
    dict
        Term label -> L, shape (rows, p): the term is tested by L beta = 0.
    """
    terms = _terms(fit)
    p = fit.X.shape[1]
    terms_with_cols = [t for t in terms if t.cols]
    if not any(t.contained_in(o) for t in terms for o in terms):
        return {t.name: np.eye(p)[t.cols] for t in terms_with_cols}
    rd, rd_names, owner, treatment = _full_columns(fit, terms)
    empty = [name for name, col in zip(rd_names, rd.T, strict=True) if not col.any()]
    if empty:  # lmerTest's message
        warnings.warn(f"Missing cells for: {', '.join(map(_lme4_name, empty))}. Interpret "
                      f"type III hypotheses with care.", UserWarning, stacklevel=3)
    cand = np.flatnonzero(treatment)
    xt = cand[_independent_columns(rd[:, cand])]  # columns of R that make X_t
    Xt = rd[:, xt]
    if np.linalg.matrix_rank(Xt) < np.linalg.matrix_rank(fit.X):
        raise ValueError("the type III hypotheses could not be formed: R's treatment-coded "
                         "model matrix does not span the model's columns")
    cols_t = {t.name: [k for k, j in enumerate(xt) if owner[j] is t.patsy_term]
              for t in terms}
    # MASS::ginv, as lmerTest: X_t has full column rank, so this is the least-squares solve
    M = _zapsmall(np.linalg.pinv(Xt) @ rd).T  # (columns of R, columns of X_t)
    for term in sorted(terms, key=lambda t: -t.degree):  # stable, as R's order()
        containing = [c for o in terms if term.contained_in(o) for c in cols_t[o.name]]
        if containing and cols_t[term.name]:
            C, Y = M[:, containing], M[:, cols_t[term.name]]
            coef = np.linalg.lstsq(C, Y, rcond=None)[0]
            M[:, cols_t[term.name]] = _zapsmall(Y - C @ coef)
    M = M[xt]
    to_fit = _zapsmall(np.linalg.pinv(Xt) @ fit.X)  # lmerTest's map between codings
    out = {}
    for t in terms_with_cols:
        L = M[:, cols_t[t.name]].T
        out[t.name] = L[np.abs(L).sum(axis=1) > 1e-8] @ to_fit
    return out


def _r_term_name(name: str) -> str:
    return name.replace("**", "^").replace(" ", "")
