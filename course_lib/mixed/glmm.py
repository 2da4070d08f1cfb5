r"""Generalised linear mixed models (``glmer``): Poisson and binomial, by Laplace's method.

The model
---------
.. math::

    y_i \mid b \sim \text{Poisson}(\mu_i) \;\text{or}\; \text{Binomial}(n_i, \mu_i) / n_i,
    \qquad g(\mu) = \eta = X\beta + Zb + \text{offset}, \qquad b = \Lambda_\theta u,
    \quad u \sim N(0, I),

with the log link for counts and the logit (or probit, or cloglog) link for proportions
(n_i, the numbers of trials, are the prior ``weights``; a 0/1 response has n_i = 1). The
likelihood integrates over u; lme4's default (nAGQ = 1) replaces the integral by Laplace's
approximation at the conditional mode u-hat(theta, beta), which penalised iteratively
reweighted least squares (PIRLS) finds on the same blocked factorisation as
:mod:`course_lib.mixed.pls`, with the IRLS weights W = n mu'(eta)^2 / V(mu) in place of the
prior weights (with a single random-effects term the blocks are solved level by level, beta
by their Schur complement):

.. math::

    -2 \ell(\theta, \beta) \approx \sum_i -2 \log p(y_i \mid \hat u) + \lVert \hat u
    \rVert^2 + \log\lvert L_\theta \rvert^2

(lme4's ``glmResp::Laplace``: ``ldL2 + sqrL + aic``). As in lme4, a first stage optimises
theta with beta updated inside PIRLS (nAGQ = 0), and a second optimises theta and beta
together with BOBYQA. The standard errors of beta come from the Hessian H of -2 l in
(theta, beta), vcov = 2 H^-1 restricted to beta (lme4's ``use.hessian``), by central
differences, every evaluation starting PIRLS at the same mode.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import pandas as pd
import scipy.special
import scipy.stats
from statsmodels.tools.sm_exceptions import ConvergenceWarning

from course_lib._validate import require_frame, require_positive_int
from course_lib.mixed.fit import (
    SINGULAR_TOL,
    LmerFit,
    _blas_threads,
)
from course_lib.mixed.formula import cbind_parts, parse_formula
from course_lib.mixed.frame import model_frame
from course_lib.mixed.optimize import bobyqa
from course_lib.mixed.pls import BlockedPLS, _batched_cholesky
from course_lib.mixed.simulate import draw_responses
from course_lib.mixed.summary import LmerSummary, _quantile_block, _r_format, _table
from course_lib.mixed.terms import random_terms

#: PIRLS stops when the penalised deviance changes by less than this, relatively (lme4's
#: ``tolPwrss``), or after ``PIRLS_MAXIT`` iterations.
PIRLS_TOL, PIRLS_MAXIT = 1e-10, 50
#: In stage 1, which only starts stage 2 and stops at ftol 1e-4, PIRLS stops at 1e-8.
PIRLS_TOL_STAGE1 = 1e-8

#: BOBYQA's stopping rules for the second stage (theta and beta: the estimates), and the
#: first (theta with beta inside PIRLS, lme4's nAGQ = 0), which only gives the second its
#: start, so stops earlier; the second starts near its optimum, so its first trust region is
#: small. Measured on the 9 Laplace designs of tests/test_mixed_glmm.py: 701 evaluations in
#: all instead of 1,016 with the second stage's rules and step 0.2 for both, estimates
#: unchanged to < 5e-5 relative.
GLMER_OPTIMIZER = {"ftol_abs": 1e-9, "xtol_rel": 1e-8, "maxeval": 100_000,
                   "initial_step": 0.01}
GLMER_STAGE1 = {**GLMER_OPTIMIZER, "ftol_abs": 1e-4, "xtol_rel": 1e-3,
                "initial_step": 0.2}


# --------------------------------------------------------------------------------------------
# Families
# --------------------------------------------------------------------------------------------

#: R's bounds: a probit's eta is clamped at +-qnorm(eps), a cloglog's mu within [eps, 1 - eps]
_EPS = np.finfo(float).eps
_PROBIT_MAX = float(-scipy.special.ndtri(_EPS))


@dataclass(frozen=True)
class Family:
    """An exponential family and its link, as R's ``poisson()``/``binomial(link = ...)``:
    Poisson with the log link; binomial with the logit (canonical), probit or cloglog link,
    each computed as R's ``make.link`` computes it (its clamps included)."""

    name: str
    link: str

    def linkinv(self, eta):
        if self.link == "log":
            return np.exp(eta)
        if self.link == "logit":
            return scipy.special.expit(eta)
        if self.link == "probit":
            return scipy.special.ndtr(np.clip(eta, -_PROBIT_MAX, _PROBIT_MAX))
        return np.clip(-np.expm1(-np.exp(eta)), _EPS, 1 - _EPS)  # cloglog

    def linkfun(self, mu):
        return {"log": np.log, "logit": scipy.special.logit, "probit": scipy.special.ndtri,
                "cloglog": lambda m: np.log(-np.log1p(-m))}[self.link](mu)

    def mu_eta(self, eta):
        """d mu / d eta."""
        if self.link == "log":
            return np.maximum(np.exp(eta), _EPS)
        if self.link == "logit":
            mu = scipy.special.expit(eta)
            return np.maximum(mu * (1 - mu), _EPS)
        if self.link == "probit":
            return np.maximum(scipy.stats.norm.pdf(eta), _EPS)
        eta = np.minimum(eta, 700.0)
        return np.maximum(np.exp(eta - np.exp(eta)), _EPS)  # cloglog

    def variance(self, mu):
        return mu if self.name == "poisson" else mu * (1 - mu)

    def dev_resid(self, y, mu, w):
        if self.name == "poisson":
            return 2 * w * (scipy.special.xlogy(y, y / mu) - (y - mu))
        return 2 * w * (scipy.special.xlogy(y, y / mu)
                        + scipy.special.xlogy(1 - y, (1 - y) / (1 - mu)))

    def aic(self, y, mu, w):
        """-2 log-likelihood of the observations given mu (R's ``family$aic`` less 2p)."""
        return float(np.sum(self.row_aic(y, mu, w)))

    def row_aic(self, y, mu, w):
        """-2 log p(y_i | mu_i), row by row."""
        if self.name == "poisson":
            return -2 * w * (scipy.special.xlogy(y, mu) - mu - scipy.special.gammaln(y + 1))
        n = np.round(w)
        k = np.round(n * y)
        return -2 * (scipy.special.gammaln(n + 1) - scipy.special.gammaln(k + 1)
                     - scipy.special.gammaln(n - k + 1) + scipy.special.xlogy(k, mu)
                     + scipy.special.xlog1py(n - k, -mu))

    def m2ll_eta(self, y, eta, w):
        """-2 log p(y | eta) less the terms free of eta (see :meth:`m2ll_const`), from the
        linear predictor itself: with a canonical link, y log mu - b(mu) is y eta - b(eta)
        (Poisson: b = exp; binomial: b = log(1 + e^eta)), so no log of mu is taken. One
        pass over n where dev_resid and row_aic take several."""
        if self.name == "poisson":
            return 2.0 * float(w @ (np.exp(eta) - y * eta))
        if self.link == "logit":
            return 2.0 * float(w @ (np.logaddexp(0.0, eta) - y * eta))
        return -2.0 * float(np.sum(self.ll_eta(y, eta, w)))

    def ll_eta(self, y, eta, w):
        """log p(y_i | eta_i) row by row (any shape broadcasting with y), less the terms free
        of eta (:meth:`row_m2ll_const`): w (y eta - b(eta)) with a canonical link, else
        w (y log mu + (1 - y) log(1 - mu)) with R's mu (probit: by the normal's log cdf)."""
        if self.name == "poisson":
            return w * (y * eta - np.exp(eta))
        if self.link == "logit":
            return w * (y * eta - np.logaddexp(0.0, eta))
        if self.link == "probit":
            eta = np.clip(eta, -_PROBIT_MAX, _PROBIT_MAX)
            return w * (y * scipy.special.log_ndtr(eta) + (1 - y) * scipy.special.log_ndtr(-eta))
        mu = self.linkinv(eta)
        return w * (y * np.log(mu) + (1 - y) * np.log1p(-mu))

    def row_m2ll_const(self, y, w):
        """The terms of -2 log p(y_i | mu_i) free of mu, row by row."""
        if self.name == "poisson":
            return 2.0 * w * scipy.special.gammaln(y + 1)
        n = np.round(w)
        k = np.round(n * y)
        return -2.0 * (scipy.special.gammaln(n + 1) - scipy.special.gammaln(k + 1)
                       - scipy.special.gammaln(n - k + 1))

    def m2ll_const(self, y, w):
        """The terms of -2 log p(y | mu) free of mu: ``aic(y, mu, w) = m2ll_eta + this``."""
        return float(np.sum(self.row_m2ll_const(y, w)))

    def initial_mu(self, y, w):
        """R's ``family$initialize``."""
        if self.name == "poisson":
            return y + 0.1
        return (w * y + 0.5) / (w + 1)


FAMILIES = {"poisson": Family("poisson", "log"), "binomial": Family("binomial", "logit")}
#: The links each family takes here, the default first.
LINKS = {"poisson": ("log",), "binomial": ("logit", "probit", "cloglog")}


def _family(family) -> Family:
    if isinstance(family, Family):
        return family
    name = str(family).strip().lower().replace("()", "")
    link = None
    if "(" in name:  # e.g. binomial(link = "logit")
        name, _, rest = name.partition("(")
        link = rest.strip(") ").split("=")[-1].strip(" '\"")
    if name not in FAMILIES:
        raise ValueError(f"family {family!r} is not supported; use 'poisson' (log link) or "
                         f"'binomial' (logit, probit or cloglog link)")
    if link not in (None, *LINKS[name]):
        raise ValueError(f"link {link!r} is not supported for {name}; the links here are "
                         f"{', '.join(repr(k) for k in LINKS[name])}")
    return Family(name, link or LINKS[name][0])


def _binomial_factor(data: pd.DataFrame, name: str) -> pd.DataFrame:
    """A Categorical binomial response as R's binomial family reads a factor: its first level
    is failure (0), every other level success (1); text gets an error showing how to code it."""
    if name not in data.columns or pd.api.types.is_numeric_dtype(data[name]) \
            or pd.api.types.is_bool_dtype(data[name]):
        return data
    column = data[name]
    if not isinstance(column.dtype, pd.CategoricalDtype):
        example = column.dropna().iloc[0] if column.notna().any() else "yes"
        raise ValueError(f"the binomial response {name!r} holds {column.dtype} values; code "
                         f"success as 1 and failure as 0, e.g. data.assign({name}=data[{name!r}] "
                         f"== {example!r}), or make it a Categorical whose first level is failure")
    success = (column != column.cat.categories[0]).astype(float).where(column.notna())
    return data.assign(**{name: success})


def _check_response(fam: Family, y: np.ndarray, w: np.ndarray, has_weights: bool,
                    name: str) -> None:
    if fam.name == "poisson":
        if np.any(y < 0):
            raise ValueError(f"the Poisson response {name!r} has negative values "
                             f"(min {y.min():g}); counts must be >= 0")
        if np.any(y != np.round(y)):
            bad = y[y != np.round(y)][:3]
            raise ValueError(f"the Poisson response {name!r} has non-integer values "
                             f"(e.g. {bad.tolist()}); counts must be whole numbers")
        if not np.any(y):
            raise ValueError(f"the Poisson response {name!r} is 0 in every row: the rates' "
                             f"maximum-likelihood estimate is 0, whose log (the model's scale) "
                             f"is -inf, so there is nothing to fit")
        return
    if np.any((y < 0) | (y > 1)):
        raise ValueError(f"the binomial response {name!r} must lie in [0, 1] (0/1, or a "
                         f"proportion with weights = number of trials); got values from "
                         f"{y.min():g} to {y.max():g}")
    if not has_weights and np.any((y != 0) & (y != 1)):
        raise ValueError(f"the binomial response {name!r} has proportions but no weights; "
                         f"pass weights = the number of trials of each row")
    if has_weights and np.any(np.abs(w * y - np.round(w * y)) > 1e-7):
        raise ValueError("binomial weights times the response must be whole numbers of "
                         "successes (weights = number of trials)")
    if np.all(y == y[0]) and y[0] in (0.0, 1.0):
        raise ValueError(f"the binomial response {name!r} is {y[0]:g} in every row: the "
                         f"probability's estimate is {y[0]:g}, at the edge of the link's scale, "
                         f"so there is nothing to fit")


# --------------------------------------------------------------------------------------------
# PIRLS and the Laplace deviance
# --------------------------------------------------------------------------------------------

class _Laplace:
    """The Laplace deviance of one model as a function of theta (and beta)."""

    def __init__(self, fam, terms, X, y, prior_w, offset, nagq: int = 1):
        self.nagq = nagq
        self.tol = PIRLS_TOL
        if nagq > 1:  # Gauss-Hermite nodes and weights for the weight function exp(-x^2)
            self.gh_x, self.gh_w = np.polynomial.hermite.hermgauss(nagq)
            t = terms[0]
            self.gh_const = -0.5 * np.bincount(t.codes, minlength=t.n_levels,
                                               weights=fam.row_m2ll_const(y, prior_w))
            self.gh_codes = (np.arange(nagq)[:, None] * t.n_levels + t.codes[None, :]).ravel()
        self.fam, self.terms, self.X, self.y = fam, terms, X, y
        self.w, self.offset = prior_w, offset
        self.n, self.p = X.shape
        self.pls = BlockedPLS(terms, X, y, prior_w)  # structure; systems set by PIRLS
        self.nu = sum(t.q * t.n_levels for t in terms)
        self.u = np.zeros(self.nu)
        self.beta = np.zeros(self.p)
        mu0 = fam.initial_mu(y, prior_w)
        self.eta0 = fam.linkfun(mu0)
        self.m2ll_const = fam.m2ll_const(y, prior_w)
        # -2 log p(y | mu = y), so that m2ll_eta - this is the deviance (>= 0), the scale
        # of PIRLS's relative convergence test
        self.saturated = fam.aic(y, np.clip(y, 1e-300, 1 - 1e-16) if fam.name == "binomial"
                                 else np.maximum(y, 1e-300), prior_w) - self.m2ll_const
        # one random-effects term: with beta fixed, the levels' modes are separate problems
        self.single = len(terms) == 1
        if self.single:
            t = terms[0]
            self._pairs = [(a, b) for a in range(t.q) for b in range(a + 1)]

    def _level_system(self, zl: np.ndarray, W: np.ndarray, zt: np.ndarray, joint: bool):
        """The penalised weighted least squares of one PIRLS step with a single term.

        Per level j: H_j = sum_i W_i l_i l_i^T + I (l_i: row i of Z Lambda) and
        r_j = sum_i W_i l_i zt_i. With beta fixed (``joint=False``), the levels are separate
        problems: u_j = H_j^-1 r_j. With beta (stage 1), beta comes from the Schur
        complement of the levels' blocks, S = X^T W X - sum_j C_j^T H_j^-1 C_j with
        C_j = sum_i W_i l_i x_i^T, then u_j = H_j^-1 (r_j - C_j beta): the same solution
        as the blocked factor's. Returns u (levels, q), beta (or None) and the lower
        Cholesky factors L_j (levels, q, q); log|L_Z|^2 = sum_j log det H_j.
        """
        t = self.terms[0]
        q, m = t.q, t.n_levels
        wl = zl * W[:, None]
        H = np.empty((m, q, q))
        for a, b in self._pairs:
            H[:, a, b] = H[:, b, a] = np.bincount(t.codes, weights=wl[:, a] * zl[:, b],
                                                  minlength=m)
        H[:, range(q), range(q)] += 1.0
        r = np.empty((m, q))
        for a in range(q):
            r[:, a] = np.bincount(t.codes, weights=wl[:, a] * zt, minlength=m)
        if q == 1:
            L = np.sqrt(H)
            inv = 1.0 / L
        else:
            L, inv = _batched_cholesky(H)
            if L is None:
                return None, None, None
        Hinv = np.einsum("jba,jbc->jac", inv, inv)  # H_j^-1 = L_j^-T L_j^-1
        beta = None
        if joint:
            X = self.X
            p = X.shape[1]
            C = np.empty((m, q, p))
            for a in range(q):
                for k in range(p):
                    C[:, a, k] = np.bincount(t.codes, weights=wl[:, a] * X[:, k], minlength=m)
            HC = Hinv @ C                                   # (m, q, p)
            S = (X.T * W) @ X - np.einsum("jap,jaq->pq", C, HC)
            rhs = X.T @ (W * zt) - np.einsum("jap,ja->p", HC, r)
            try:
                beta = np.linalg.solve(S, rhs)
            except np.linalg.LinAlgError:
                return None, None, None
            r = r - C @ beta
        return np.einsum("jab,jb->ja", Hinv, r), beta, L

    def set_mode_system(self, theta, beta) -> None:
        """The blocked system at the current modes (beta fixed), for the fit's accessors
        (conditional variances): the single-term path does not form it."""
        fam, eta, mu = self.fam, self.eta, self.mu
        me = fam.mu_eta(eta)
        z = eta - self.offset + (self.y - mu) / me - self.X @ beta
        self.pls.set_system(np.zeros((self.n, 0)), z, self.w * me ** 2 / fam.variance(mu))

    def pirls(self, theta, beta=None):
        """Conditional modes u (and beta when beta is None) at theta; the Laplace deviance.

        Returns the deviance, and leaves u, beta, mu and the factor at the optimum on self.
        PIRLS starts from the previous evaluation's modes; if that start diverges (modes
        found at a near-singular theta can overflow exp(eta) at the next theta), it starts
        again from u = 0, so one bad evaluation does not poison every later one.
        """
        u_start, beta_start = self.u.copy(), self.beta.copy()
        if np.any(u_start):  # a diverging warm start is caught below: no numpy warnings
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                dev = self._pirls(theta, beta)
        else:
            dev = self._pirls(theta, beta)
        if not np.isfinite(dev) and np.any(u_start):
            self.u = np.zeros_like(u_start)
            if beta is None:
                self.beta = np.zeros_like(beta_start)  # start from the data's eta, as at first
            dev = self._pirls(theta, beta)
        if not np.isfinite(dev):
            self.u, self.beta = u_start, beta_start
        return dev

    def _pirls(self, theta, beta=None):
        """Penalised IRLS: Newton steps on the penalised deviance, halved while it does not
        decrease, until it changes by less than ``tol`` relatively; then log|L|^2 at the
        mode's own weights. Each step is a penalised weighted least-squares solve: level by
        level for one random-effects term (:meth:`_level_system`, a third of the cost),
        by the blocked factor (:class:`~course_lib.mixed.pls.BlockedPLS`) otherwise."""
        fam, X, y, w, off = self.fam, self.X, self.y, self.w, self.offset
        joint = beta is None
        u = self.u.copy()
        b = self.beta.copy() if joint else np.asarray(beta, dtype=float)
        first = joint and not np.any(u) and not np.any(b)
        zl = self._zl(theta)
        step, at_mode = (self._level_solver(zl[0], joint) if self.single
                         else self._blocked_solver(theta, joint))
        eta = self.eta0 if first else X @ b + self._zb(zl, u) + off  # first: from the data
        mu = fam.linkinv(eta)
        # the penalised deviance at the start: a warm start (modes of a nearby theta) that
        # one Newton step barely moves is converged (the error left is the square of the
        # step's), so PIRLS can stop after one step instead of two
        old = np.inf if first else (fam.m2ll_eta(y, eta, w) - self.saturated + u @ u)
        for _ in range(PIRLS_MAXIT):
            me = fam.mu_eta(eta)
            z = eta - off + (y - mu) / me - (0 if joint else X @ b)
            solved = step(w * me ** 2 / fam.variance(mu), z)
            if solved is None:
                return np.inf
            u_new, b_new = solved
            if not joint:
                b_new = b
            pdev = np.inf
            for _half in range(20):
                eta_new = X @ b_new + self._zb(zl, u_new) + off
                pdev = fam.m2ll_eta(y, eta_new, w) - self.saturated + u_new @ u_new
                if np.isfinite(pdev) and pdev <= old * (1 + 1e-12):
                    break
                u_new, b_new = (u + u_new) / 2, (b + b_new) / 2 if joint else b
            u, b, eta = u_new, b_new, eta_new
            mu = fam.linkinv(eta)
            if abs(old - pdev) < self.tol * abs(pdev):
                break
            old = pdev
        self.u, self.mu, self.eta = u, mu, eta
        if joint:
            self.beta = b
        # log|L|^2 at the weights of the mode itself (the loop's last solve used the
        # weights of the iterate before it, off by O(last step) in the deviance)
        me = fam.mu_eta(eta)
        mode = at_mode(w * me ** 2 / fam.variance(mu),
                       eta - off + (y - mu) / me - (0 if joint else X @ b))
        if mode is None:
            return np.inf
        L11, ldL2 = mode
        if self.nagq > 1 and not joint:
            return self._agq(theta, eta, L11)
        return float(ldL2 + u @ u + fam.m2ll_eta(y, eta, w) + self.m2ll_const)

    def _level_solver(self, zl: np.ndarray, joint: bool):
        """PIRLS's step and log|L|^2 at the mode, level by level (one term)."""
        def step(W, z):
            u, beta, _ = self._level_system(zl, W, z, joint)
            return None if u is None else (u.ravel(), beta)

        def at_mode(W, z):
            _, _, L = self._level_system(zl, W, z, False)
            if L is None:
                return None
            return L, 2.0 * float(np.sum(np.log(np.diagonal(L, axis1=1, axis2=2))))
        return step, at_mode

    def _blocked_solver(self, theta, joint: bool):
        """PIRLS's step and log|L|^2 at the mode, by the blocked factor."""
        Xs = self.X if joint else np.zeros((self.n, 0))

        def factor(W, z):
            self.pls.set_system(Xs, z, W)
            return self.pls.factor(theta)

        def step(W, z):
            f = factor(W, z)
            if f is None:
                return None
            beta, us = self.pls.solve(f)
            return np.concatenate([x.ravel() for x in us]), beta

        def at_mode(W, z):
            f = factor(W, z)
            return None if f is None else (f.L11, f.ldL2)
        return step, at_mode

    def _zl(self, theta) -> list[np.ndarray]:
        """Each term's rows of Z Lambda(theta), (n, q): made once per PIRLS call."""
        return [t.Z @ lam for t, lam in zip(self.terms, self.pls.split_theta(theta),
                                             strict=True)]

    def _zb(self, zl, u) -> np.ndarray:
        """Z Lambda u, one value per row, from :meth:`_zl`'s rows."""
        total, start = None, 0
        for t, rows in zip(self.terms, zl, strict=True):
            size = t.q * t.n_levels
            ut = u[start:start + size].reshape(t.n_levels, t.q)[t.codes]
            part = rows[:, 0] * ut[:, 0] if t.q == 1 else np.einsum("nq,nq->n", rows, ut)
            total = part if total is None else total + part
            start += size
        return total

    def _agq(self, theta, eta, L11) -> float:
        """Adaptive Gauss-Hermite deviance for one scalar random effect (lme4's nAGQ > 1).

        Group j's integral over u of p(y_j | u) phi(u) is taken around the conditional mode
        u_j with the scale s_j = 1 / L11_j (the curvature there):
        sqrt(2) s_j sum_k w_k exp(x_k^2) p(y_j | u_j + sqrt(2) s_j x_k) phi(u_j + ...).
        With one node it is exactly the Laplace deviance."""
        t = self.terms[0]
        m = t.n_levels
        s = 1.0 / L11[:, 0, 0]                      # (groups,)
        u_hat = self.u
        zl = t.Z[:, 0] * theta[0]                   # d eta / d u per row
        base = eta - zl * u_hat[t.codes]
        x = self.gh_x[:, None]
        uk = u_hat[None, :] + np.sqrt(2.0) * s[None, :] * x          # (nodes, groups)
        ll_rows = self.fam.ll_eta(self.y, base[None, :] + zl[None, :] * uk[:, t.codes],
                                  self.w)                              # (nodes, rows)
        ll = np.bincount(self.gh_codes, weights=ll_rows.ravel(),
                         minlength=len(self.gh_x) * m).reshape(-1, m) + self.gh_const
        logs = ll - 0.5 * uk ** 2 - 0.5 * np.log(2 * np.pi) + x ** 2
        top = logs.max(axis=0)
        integral = top + np.log(np.sum(self.gh_w[:, None] * np.exp(logs - top), axis=0))
        return float(-2.0 * np.sum(np.log(np.sqrt(2.0) * s) + integral))


def glmer(formula: str, data: pd.DataFrame, family="poisson", weights=None, offset=None,
          nAGQ: int = 1) -> GlmerFit:  # noqa: N803
    r"""Fit a generalised linear mixed model written as an lme4 formula (lme4's ``glmer``).

    Parameters
    ----------
    formula : str
        lme4 syntax, as for :func:`~course_lib.mixed.lmer`; ``offset(log(exposure))`` adds a
        known log exposure to a Poisson model's linear predictor.
    data : pandas.DataFrame
        One row per observation; rows with missing values in used columns are dropped.
    family : {"poisson", "binomial"}
        Poisson with log link (counts), or binomial with the logit link, or
        ``"binomial(link = 'probit')"`` or ``'cloglog'`` (a 0/1 or True/False
        response, a Categorical whose first level is failure, a proportion with ``weights`` =
        number of trials, or lme4's ``cbind(successes, failures)``).
    weights : str or array-like, optional
        Prior weights; for the binomial family, the number of trials per row.
    offset : str or array-like, optional
        Known term of the linear predictor (e.g. ``np.log(duration)``).
    nAGQ : int, default 1
        Points of Gauss-Hermite quadrature; 1 is Laplace's approximation (lme4's default).
        Values above 1 are allowed for a single scalar random effect, as in lme4. The
        log-likelihood stays comparable across nAGQ here; lme4's, for nAGQ > 1, leaves out
        the saturated model's -2 log p(y | mu = y) (zero for 0/1 data, not for counts).

    Returns
    -------
    GlmerFit
        lme4's accessors: ``fixef``, ``fixef_se``, ``vcov``, ``VarCorr``, ``ranef``, ``coef``,
        ``logLik``, ``AIC``, ``BIC``, ``deviance``, ``predict(type=)``, ``fitted``,
        ``resid(type=)``, ``overdispersion()``, ``simulate()``, ``summary()``.

    Raises
    ------
    ValueError
        An unsupported family or link, negative or non-integer counts, a binomial response
        outside [0, 1], and every error :func:`~course_lib.mixed.lmer` raises.
    """
    require_frame(data)
    fam = _family(family)
    require_positive_int(nAGQ, "nAGQ")
    parsed = parse_formula(formula)
    if not parsed.random:
        raise ValueError(f"formula {formula!r} has no random-effects term such as "
                         f"(1 | group); for a GLM use statsmodels.formula.api.glm")
    if fam.name != "binomial" and cbind_parts(parsed.response):
        raise ValueError(f"the response {parsed.response!r} counts successes and failures, a "
                         f"binomial response: use family='binomial', not {fam.name!r}")
    data = _binomial_factor(data, parsed.response) if fam.name == "binomial" else data
    frame = model_frame(parsed, data, weights=weights, offset=offset)
    _check_response(fam, frame.y, frame.weights, frame.has_weights, parsed.response)
    terms = random_terms(parsed.random, frame.data, residual=False)
    if nAGQ > 1 and (len(terms) > 1 or terms[0].q > 1):
        raise ValueError("nAGQ > 1 is only available for models with a single scalar random "
                         "effect, e.g. (1 | group), as in lme4")
    model = _Laplace(fam, terms, frame.X, frame.y, frame.weights, frame.offset, int(nAGQ))
    # (a trial theta may overflow exp(eta): PIRLS then returns inf, which the optimiser
    # avoids; numpy's warnings about it would only bury the fit's own)
    with _blas_threads(model.pls), np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        theta, beta, evals = _optimise(model)
        dev = model.pirls(theta, beta)
        u_hat = model.u.copy()

        def from_mode(x):  # every evaluation starts PIRLS at the same u: no path noise
            model.u = u_hat.copy()
            return _stage2(model, x)

        grad, hess = _central_derivatives(from_mode, np.append(theta, beta))
        model.u = u_hat
        dev = model.pirls(theta, beta)
        model.set_mode_system(theta, beta)
    fit = GlmerFit(parsed=parsed, frame=frame, terms=terms, REML=False, y=frame.y,
                   pls=model.pls, theta=theta, n_evals=evals, family=fam, beta=beta,
                   u=model.u.copy(), mu=model.mu.copy(), eta=model.eta.copy(),
                   laplace=dev, hessian=hess, grad=grad)
    fit._check_convergence()
    return fit


def _central_derivatives(f, x: np.ndarray, h: float = 1e-3) -> tuple[np.ndarray, np.ndarray]:
    """Gradient and Hessian by central differences (as lme4's ``deriv12``, with a step of
    1e-3: the deviance, every PIRLS started at the same mode, is smooth to ~1e-9, so the
    error is the O(h^2) truncation, far below the 3 digits asked).

    An off-diagonal entry reuses the points on the axes:
    H_ij = [f(x+ei+ej) + f(x-ei-ej) - f(x+ei) - f(x-ei) - f(x+ej) - f(x-ej) + 2 f(x)] / 2h^2,
    also exact to O(h^2), so the k(k-1)/2 pairs cost 2 evaluations each instead of 4:
    1 + 2k + k(k-1) evaluations in all (31 instead of 51 for k = 5)."""
    k = len(x)
    f0 = f(x)
    fp, fm = np.empty(k), np.empty(k)
    grad, hess = np.empty(k), np.empty((k, k))
    for i in range(k):
        e = np.zeros(k)
        e[i] = h
        fp[i], fm[i] = f(x + e), f(x - e)
        grad[i] = (fp[i] - fm[i]) / (2 * h)
        hess[i, i] = (fp[i] - 2 * f0 + fm[i]) / h ** 2
    for i in range(k):
        for j in range(i):
            e = np.zeros(k)
            e[i], e[j] = h, h
            hess[i, j] = hess[j, i] = (f(x + e) + f(x - e) - fp[i] - fm[i] - fp[j] - fm[j]
                                       + 2 * f0) / (2 * h * h)
    return grad, hess


def _stage2(model: _Laplace, x: np.ndarray) -> float:
    k = len(model.pls.theta0)
    return model.pirls(x[:k], x[k:])


def _optimise(model: _Laplace) -> tuple[np.ndarray, np.ndarray, int]:
    """lme4's two stages: theta with beta inside PIRLS (nAGQ = 0), then theta and beta."""
    k = len(model.pls.theta0)
    lower = model.pls.lower
    model.tol = PIRLS_TOL_STAGE1
    theta, _, n1 = bobyqa(model.pirls, model.pls.theta0, lower, **GLMER_STAGE1)
    model.tol = PIRLS_TOL
    model.pirls(theta)  # beta at stage 1's optimum
    x, _, n2 = bobyqa(lambda x: _stage2(model, x), np.append(theta, model.beta),
                      np.append(lower, np.full(model.p, -np.inf)), **GLMER_OPTIMIZER)
    return x[:k], x[k:], n1 + n2


# --------------------------------------------------------------------------------------------
# The fitted model
# --------------------------------------------------------------------------------------------

@dataclass(eq=False)
class GlmerFit(LmerFit):
    """A fitted generalised linear mixed model, read with lme4's names (create with
    :func:`glmer`). Shares lmer's accessors where they mean the same; sigma is 1."""

    family: Family = None
    beta: np.ndarray = field(default=None, repr=False)
    u: np.ndarray = field(default=None, repr=False)
    mu: np.ndarray = field(default=None, repr=False)
    eta: np.ndarray = field(default=None, repr=False)
    laplace: float = 0.0
    hessian: np.ndarray = field(default=None, repr=False)
    grad: np.ndarray = field(default=None, repr=False)

    @cached_property
    def _solution(self):
        us, start = [], 0
        for t in self.terms:
            size = t.q * t.n_levels
            us.append(self.u[start:start + size].reshape(t.n_levels, t.q))
            start += size
        return self.beta, us

    @cached_property
    def _factor(self):
        return self.pls.factor(self.theta)

    @property
    def sigma(self) -> float:
        return 1.0

    @property
    def n_par(self) -> int:
        """Fixed effects and theta (no residual variance), as R counts them."""
        return len(self.frame.names) + len(self.theta)

    @cached_property
    def vcov(self) -> pd.DataFrame:
        """Covariance of beta-hat from the Hessian of -2 log L in (theta, beta), as lme4."""
        k = len(self.theta)
        try:
            inv = np.linalg.inv(self.hessian)
            cov = (inv + inv.T)[k:, k:]
            if np.min(np.linalg.eigvalsh(cov)) <= 0:
                raise np.linalg.LinAlgError
        except np.linalg.LinAlgError:
            warnings.warn("glmer: the finite-difference Hessian is not positive definite; "
                          "vcov falls back to the RX-based estimate", stacklevel=2)
            cov = self.pls.rx_inverse(self._rx_factor())
        return pd.DataFrame(cov, index=self.frame.names, columns=self.frame.names)

    def _rx_factor(self):
        fam = self.family
        me = fam.mu_eta(self.eta)
        W = self.frame.weights * me ** 2 / fam.variance(self.mu)
        z = self.eta - self.frame.offset + (self.y - self.mu) / me  # the working response
        self.pls.set_system(self.X, z, W)
        return self.pls.factor(self.theta)

    @cached_property
    def VarCorr(self) -> pd.DataFrame:  # noqa: N802
        """Variance components (no residual row: a GLMM's scale is fixed at 1)."""
        return LmerFit.VarCorr.func(self).iloc[:-1].reset_index(drop=True)

    @property
    def logLik(self) -> float:  # noqa: N802
        """Laplace approximation of the log-likelihood."""
        return -0.5 * self.laplace

    @property
    def deviance(self) -> float:
        """-2 logLik (lme4's ``deviance()`` of a GLMM differs: see ``REMLcrit``)."""
        return self.laplace

    @cached_property
    def fitted(self) -> pd.Series:
        """Fitted means mu on the response scale (rates for Poisson, probabilities)."""
        return pd.Series(self.mu, index=self.data.index, name="fitted")

    def resid(self, type: str = "deviance") -> pd.Series:  # noqa: A002
        """Residuals: ``"deviance"`` (lme4's default), ``"pearson"`` or ``"response"``."""
        y, mu, w = self.y, self.mu, self.frame.weights
        if type == "response":
            r = y - mu
        elif type == "pearson":
            r = (y - mu) * np.sqrt(w / self.family.variance(mu))
        elif type == "deviance":
            r = np.sign(y - mu) * np.sqrt(np.maximum(self.family.dev_resid(y, mu, w), 0))
        else:
            raise ValueError(f"type must be 'deviance', 'pearson' or 'response', got {type!r}")
        return pd.Series(r, index=self.data.index, name="resid")

    def overdispersion(self) -> dict:
        """Pearson chi^2 / residual df: about 1 for Poisson or binomial data, well above 1
        when the counts vary more than the model allows. Returns chisq, df, ratio and the
        p-value of chisq against a chi^2(df) distribution."""
        chisq = float(np.sum(self.resid("pearson") ** 2))
        df = self.nobs - self.n_par
        return {"chisq": chisq, "df": df, "ratio": chisq / df,
                "p": float(scipy.stats.chi2.sf(chisq, df))}

    def predict(self, newdata: pd.DataFrame | None = None, re_form=None,
                allow_new_levels: bool = False, type: str = "link") -> pd.Series:  # noqa: A002
        """Predictions on the link scale (``type="link"``, lme4's default) or the response
        scale (``type="response"``); ``re_form=NA`` for the population level."""
        if type not in ("link", "response"):
            raise ValueError(f"type must be 'link' or 'response', got {type!r}")
        eta = LmerFit.predict(self, newdata, re_form, allow_new_levels)
        return eta if type == "link" else self.family.linkinv(eta).rename("predict")

    @property
    def gradient(self) -> np.ndarray:
        """Gradient of -2 log L in (theta, beta) at the optimum."""
        return self.grad

    @property
    def max_abs_gradient(self) -> float:
        """lme4's convergence measure on (theta, beta): max |gradient| scaled by the
        Hessian's Cholesky factor where that exists (``min(|scaled|, |raw|)``)."""
        grad = self.grad
        if grad.size == 0:
            return 0.0
        try:
            scaled = np.linalg.solve(np.linalg.cholesky(self.hessian).T, grad)
            grad = np.minimum(np.abs(scaled), np.abs(grad))
        except np.linalg.LinAlgError:
            pass
        return float(np.max(np.abs(grad)))

    def _check_convergence(self) -> None:
        if self.is_singular:
            warnings.warn(
                f"glmer {self.formula!r}: boundary (singular) fit: theta = "
                f"{np.round(self.theta, 6).tolist()} has a diagonal element below "
                f"{SINGULAR_TOL:g}", ConvergenceWarning, stacklevel=3)
            return
        edge = 10 * _EPS
        if self.family.name == "binomial" and np.any((self.mu < edge) | (self.mu > 1 - edge)):
            size = pd.Series(np.abs(self.fixef.to_numpy()) * self.frame.X.std(axis=0),
                             index=self.frame.names).drop("(Intercept)", errors="ignore")
            worst = f" (largest: {size.idxmax()}, {self.fixef[size.idxmax()]:.3g})" if size.size else ""
            warnings.warn(f"glmer {self.formula!r}: fitted probabilities numerically 0 or 1 "
                          f"occurred (R's glm warning): a predictor may separate the 0s from the "
                          f"1s, so its estimate is unbounded and its SE meaningless{worst}; "
                          f"drop or merge predictors, or fit with a prior (numpyro)",
                          ConvergenceWarning, stacklevel=3)
            return
        if self.max_abs_gradient > 2e-3:
            warnings.warn(f"glmer {self.formula!r}: model failed to converge: max |gradient| "
                          f"= {self.max_abs_gradient:.2e} (tolerance 0.002){self._rescale_hint()}",
                          ConvergenceWarning, stacklevel=3)

    def _rescale_hint(self) -> str:
        """lme4's "Rescale variables?", naming the columns: fixed-effect columns whose sizes
        (root mean squares) differ a hundredfold make the deviance's curvature uneven."""
        rms = pd.Series(np.sqrt(np.mean(self.frame.X ** 2, axis=0)), index=self.frame.names)
        rms = rms[rms > 0]
        if rms.size < 2 or rms.max() < 100 * rms.min():
            return ""
        return (f"; the fixed-effect columns differ in size from {rms.min():.3g} "
                f"({rms.idxmin()}) to {rms.max():.3g} ({rms.idxmax()}): rescale variables, "
                f"e.g. center and scale with scale(x), and fit again")

    def summary(self) -> GlmerSummary:
        return GlmerSummary(self)

    def refit(self, newresp):
        raise ValueError("refit of a GLMM is not available: call glmer again with the new "
                         "response")

    def confint(self, method: str = "Wald", level: float = 0.95, **kwargs) -> pd.DataFrame:
        """Wald intervals of the fixed effects (beta-hat -/+ z SE); profile and bootstrap
        intervals of a GLMM are not available here yet."""
        if method != "Wald":
            raise ValueError(f"confint(method={method!r}) is not available for a GLMM; use "
                             f"method='Wald' (fixed effects)")
        from course_lib.mixed.intervals import wald_intervals
        if not 0 < level < 1:
            raise ValueError(f"level must lie in (0, 1), got {level!r}")
        return wald_intervals(self, level).loc[list(self.fixef.index)]

    def coef_table(self, ddf: str = "z") -> pd.DataFrame:
        """lme4's table for a GLMM: Estimate, Std. Error, z value, Pr(>|z|) (Wald z tests;
        small-sample df do not apply to a GLMM's fixed scale)."""
        if ddf != "z":
            raise ValueError(f"a GLMM's fixed effects are tested by z (ddf='z'), got {ddf!r}")
        z = self.fixef / self.fixef_se
        return pd.DataFrame({"Estimate": self.fixef, "Std. Error": self.fixef_se,
                             "z value": z, "Pr(>|z|)": 2 * scipy.stats.norm.sf(np.abs(z))})

    def simulate(self, nsim: int = 1, seed: int = 0, newdata=None) -> np.ndarray:
        """Responses simulated from the fitted model on the fitted rows (lme4's ``simulate``,
        ``use.u=FALSE``): new random effects b = Lambda u, u ~ N(0, I), then
        y ~ Poisson(exp(eta)), or a binomial proportion of ``weights`` trials with
        p = g^-1(eta) (the link inverted), eta = X beta + offset + Z b: for a parametric
        bootstrap, or a check of the model against its data.

        Returns
        -------
        numpy.ndarray, shape (rows, nsim)
            Counts, or proportions of successes (0/1 for a 0/1 response).
        """
        require_positive_int(nsim, "nsim")
        if newdata is not None:
            raise ValueError("simulate(newdata=...) of a GLMM is not available; simulate on the "
                             "fitted rows, or fit the model to a design with placeholder data")
        trials = self.frame.weights
        if self.family.name == "poisson" and np.any(trials != 1):
            raise ValueError("simulate() of a Poisson GLMM with prior weights is not defined "
                             "(a weighted count has no Poisson distribution)")
        eta = draw_responses(self.X @ self.fixef.to_numpy() + self.frame.offset, self.terms,
                             self._lambda, 0.0, nsim, seed)
        rng = np.random.default_rng([seed, 1])  # the responses' own stream, after the effects'
        mu = self.family.linkinv(eta)
        if self.family.name == "poisson":
            return rng.poisson(mu).astype(float)
        size = np.round(trials).astype(int)[:, None]
        return rng.binomial(size, mu) / size

    def __repr__(self) -> str:
        return (f"<GlmerFit {self.family.name}: {self.formula}; nobs={self.nobs}, "
                f"groups={self.ngrps}>")


@dataclass
class GlmerSummary(LmerSummary):
    """lme4's summary of a GLMM: family, information criteria, random effects, and the
    fixed effects with z tests."""

    def _header(self) -> list[str]:
        f = self.fit
        stats = [f.AIC, f.BIC, f.logLik, f.deviance]
        cells = [f"{v:.1f}" for v in stats] + [str(f.nobs - f.n_par)]
        heads = ["AIC", "BIC", "logLik", "deviance", "df.resid"]
        w = max(8, *(len(c) for c in cells))
        return ["Generalized linear mixed model fit by maximum likelihood (Laplace "
                "Approximation) ['glmerMod']",
                f" Family: {f.family.name}  ( {f.family.link} )",
                f"Formula: {f.formula}", *f._summary_extra_lines(), "",
                " ".join(h.rjust(w) for h in heads), " ".join(c.rjust(w) for c in cells)]

    def _residuals(self) -> list[str]:
        return _quantile_block(np.quantile(self.fit.resid("pearson"), [0, 0.25, 0.5, 0.75, 1]))

    def _fixed(self) -> list[str]:
        f = self.fit
        z = f.fixef / f.fixef_se
        p = 2 * scipy.stats.norm.sf(np.abs(z))
        est_se = _r_format(np.concatenate([f.fixef, f.fixef_se]), 4)
        zs = _r_format(z, 3)
        k = len(f.fixef)
        rows = [["", "Estimate", "Std. Error", "z value", "Pr(>|z|)"]]
        rows += [[name, est_se[i], est_se[k + i], zs[i], format_p(p[i])]
                 for i, name in enumerate(f.fixef.index)]
        return ["Fixed effects:"] + _table(rows, ["l", "r", "r", "r", "r"])


def format_p(p: float) -> str:
    """A p-value as R's ``format.pval`` prints it: ``< 2e-16`` below machine precision."""
    if p < 2.2e-16:
        return "< 2e-16"
    return f"{p:.3g}" if p >= 1e-4 else f"{p:.2e}"


__all__ = ["glmer", "GlmerFit", "Family", "FAMILIES"]

